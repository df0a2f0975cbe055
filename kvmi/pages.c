/*
 * pages.c - the page restrictions the introspector set (SET_PAGE_ACCESS),
 * kept so that GET_PAGE_ACCESS reports the tool's own bits and so that every
 * restriction can be lifted when the session ends.  Fixed-capacity open
 * addressing (linear probing, backward-shift deletion) over storage the
 * platform gave to kvmi_init(): no allocation, bounded work per operation.
 * Setting rwx forgets the page.
 */
#include "internal.h"

static uint32_t hash(uint64_t gfn, uint32_t cap)
{
    return (uint32_t)((gfn * 0x9e3779b97f4a7c15ull) >> 32) % cap;
}

static int find(struct kvmi_vm *vm, uint64_t gfn)
{
    if (!vm->page_cap)
        return -1;
    uint32_t i = hash(gfn, vm->page_cap);
    for (uint32_t n = 0; n < vm->page_cap; n++, i = (i + 1) % vm->page_cap) {
        if (vm->pages[i].gfn_plus1 == 0)
            return -1;
        if (vm->pages[i].gfn_plus1 == gfn + 1)
            return (int)i;
    }
    return -1;
}

static void remove_at(struct kvmi_vm *vm, uint32_t i)
{
    uint32_t cap = vm->page_cap;
    vm->pages[i].gfn_plus1 = 0;
    vm->page_count--;
    /* backward shift: move later members of the probe run into the hole */
    for (uint32_t j = (i + 1) % cap; vm->pages[j].gfn_plus1; j = (j + 1) % cap) {
        uint32_t home = hash(vm->pages[j].gfn_plus1 - 1, cap);
        bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            vm->pages[i] = vm->pages[j];
            vm->pages[j].gfn_plus1 = 0;
            i = j;
        }
    }
}

uint8_t kvmi_page_get(struct kvmi_vm *vm, uint64_t gfn)
{
    spin_lock(&vm->pages_lock);
    int i = find(vm, gfn);
    uint8_t a = i < 0 ? KVMI_PAGE_ACCESS_RWX : vm->pages[i].access;
    spin_unlock(&vm->pages_lock);
    return a;
}

int kvmi_page_set(struct kvmi_vm *vm, uint64_t gfn, uint8_t access)
{
    if (gfn > kvmi_arch_max_gfn(vm))
        return -KVM_EINVAL; /* no guest memory there (KVM: no memslot) */
    spin_lock(&vm->pages_lock);
    int i = find(vm, gfn);
    int err = 0;
    if (i < 0 && access != KVMI_PAGE_ACCESS_RWX && vm->page_count >= vm->page_cap)
        err = -KVM_ENOMEM; /* KVM: the tracking allocation failed */
    if (!err)
        err = kvmi_arch_set_page_access(vm, gfn, access);
    if (!err) {
        if (access == KVMI_PAGE_ACCESS_RWX) {
            if (i >= 0)
                remove_at(vm, (uint32_t)i);
        } else if (i >= 0) {
            vm->pages[i].access = access;
        } else {
            uint32_t j = hash(gfn, vm->page_cap);
            while (vm->pages[j].gfn_plus1)
                j = (j + 1) % vm->page_cap;
            vm->pages[j].gfn_plus1 = gfn + 1;
            vm->pages[j].access = access;
            vm->page_count++;
        }
    }
    spin_unlock(&vm->pages_lock);
    return err;
}

void kvmi_page_reset_all(struct kvmi_vm *vm)
{
    spin_lock(&vm->pages_lock);
    for (uint32_t i = 0; i < vm->page_cap; i++) {
        if (vm->pages[i].gfn_plus1) {
            kvmi_arch_set_page_access(vm, vm->pages[i].gfn_plus1 - 1, KVMI_PAGE_ACCESS_RWX);
            vm->pages[i].gfn_plus1 = 0;
        }
    }
    vm->page_count = 0;
    spin_unlock(&vm->pages_lock);
}
