/*
 * memory.c - guest memory for the KVMI engine: the highest guest frame,
 * physical reads and writes outside the hypervisor's region, and the page
 * rights the introspector sets (EPT).
 */
#include <string.h>

#include "log.h"
#include "vmx/vmx_int.h"
#include "internal.h"

/* ---- guest memory ---------------------------------------------------------------------- */

static bool ram_type(uint32_t t)
{
    return bi_mem_is_ram(t) && t != BI_EFI_RESERVED && t != BI_EFI_UNUSABLE;
}

uint64_t kvmi_arch_max_gfn(struct kvmi_vm *vm)
{
    (void)vm;
    uint64_t top = 0;
    for (uint32_t i = 0; i < g_bi->nmem; i++) {
        const struct bi_mem_range *m = &g_bi->mem[i];
        if (ram_type(m->type) && m->base + m->size > top)
            top = m->base + m->size;
    }
    return top ? (top >> 12) - 1 : 0;
}

/* Guest memory the tool may touch: guest RAM in the memory map (bi_guest_ram:
 * no MMIO, reserved range, hole or address above the map, not the hypervisor
 * region), never the xAPIC page.  The engine keeps [gpa, gpa + size) in one page. */
static bool gpa_is_guest_memory(uint64_t gpa, size_t size)
{
    static uint32_t told; /* the first refusals are logged with their reason, then counted */
    const char *why = NULL;
    if ((gpa & ~0xfffull) == g_vmx.apic_base)
        why = "the xAPIC page";
    else if (!bi_guest_ram(g_bi, gpa, size ? size : 1))
        why = "not guest RAM in the boot memory map";
    if (why && __atomic_add_fetch(&told, 1, __ATOMIC_RELAXED) <= 8)
        log_warn("kvmi: physical access 0x%llx+%zu refused (-KVM_ENOENT): %s",
                 (unsigned long long)gpa, size, why);
    return why == NULL;
}

int kvmi_arch_read_phys(struct kvmi_vm *vm, uint64_t gpa, void *buf, size_t size)
{
    (void)vm;
    if (!gpa_is_guest_memory(gpa, size))
        return -KVM_ENOENT;
    memcpy(buf, (const void *)(uintptr_t)gpa, size); /* identity-mapped in root mode */
    return 0;
}

int kvmi_arch_write_phys(struct kvmi_vm *vm, uint64_t gpa, const void *buf, size_t size)
{
    (void)vm;
    if (!gpa_is_guest_memory(gpa, size))
        return -KVM_ENOENT;
    memcpy((void *)(uintptr_t)gpa, buf, size);
    return 0;
}

/* The tool's rights for gfn (rwx when it never restricted it). */
uint8_t khv_tool_rights(uint64_t gfn)
{
    spin_lock(&khv_ept_lock);
    uint8_t a = kvmi_rights_get(&khv_rights, gfn);
    spin_unlock(&khv_ept_lock);
    return a;
}

int kvmi_arch_set_page_access(struct kvmi_vm *vm, uint64_t gfn, uint8_t access)
{
    (void)vm;
    uint64_t gpa = gfn << 12;
    if (gfn > kvmi_arch_max_gfn(vm) || !gpa_is_guest_memory(gpa, PAGE_SIZE))
        return -KVM_EINVAL;
    spin_lock(&khv_ept_lock);
    struct kvmi_rights_entry *slot = kvmi_rights_slot(&khv_rights, gfn, access != EPT_RWX);
    if (!slot) {
        spin_unlock(&khv_ept_lock);
        return access == EPT_RWX ? 0 : -KVM_ENOMEM;
    }
    /* Never write-without-read in EPT (SDM Vol. 3C 29.3.3.1 EPT Misconfigurations): DROP grants
     * less than asked, so every access the tool wants to see still exits. */
    int rc = ept_set_rights(&g_ept, gpa, access, EPT_FIX_DROP, NULL);
    if (rc == 0)
        slot->access = access;
    spin_unlock(&khv_ept_lock);
    if (rc)
        return rc == EPT_ENOMEM ? -KVM_ENOMEM : -KVM_EINVAL;
    /* Answered only once no vCPU can use a stale translation (SDM Vol. 3C 29.4.3.1 Operations that
     * Invalidate Cached Mappings). */
    vmx_invept_all();
    return 0;
}
