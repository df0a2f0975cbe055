/*
 * kvmi_rules.c - the pure rules of the bare-metal KVMI arch (include/kvmi_rules.h).
 */
#include "rules.h"

#include <string.h>

void kvmi_seg_from_vmcs(struct kvm_segment *s, uint16_t selector, uint64_t base, uint32_t limit,
                        uint32_t ar)
{
    memset(s, 0, sizeof(*s));
    s->selector = selector;
    s->base = base;
    s->limit = limit;
    s->type = ar & 15;
    s->s = (ar >> 4) & 1;
    s->dpl = (ar >> 5) & 3;
    s->present = (ar >> 7) & 1;
    s->avl = (ar >> 12) & 1;
    s->l = (ar >> 13) & 1;
    s->db = (ar >> 14) & 1;
    s->g = (ar >> 15) & 1;
    s->unusable = (ar >> 16) & 1;
}

int kvmi_msr_write_bit(uint32_t msr, unsigned *byte, uint8_t *bit)
{
    unsigned off;
    if (msr <= 0x1fffu)
        off = 2048;
    else if (msr >= 0xc0000000u && msr <= 0xc0001fffu)
        off = 3072;
    else
        return -1;
    *byte = off + (msr & 0x1fffu) / 8;
    *bit = (uint8_t)(1u << (msr & 7u));
    return 0;
}

bool kvmi_exc_has_errcode(unsigned vector, bool protected_mode)
{
    return protected_mode &&
           (vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21);
}

uint8_t kvmi_pf_access(uint64_t q)
{
    if (q & 2)
        return KVMI_PAGE_ACCESS_W;
    if (q & 4)
        return KVMI_PAGE_ACCESS_X;
    return KVMI_PAGE_ACCESS_R;
}

void kvmi_desc_of_exit(unsigned reason, uint32_t instr_info, uint8_t *descriptor, bool *write)
{
    unsigned ident = (instr_info >> 28) & 3; /* 0 S*DT/SLDT, 1 SIDT/STR, 2 L*DT/LLDT, 3 LIDT/LTR */
    if (reason == 46)
        *descriptor = (ident & 1) ? KVMI_DESC_IDTR : KVMI_DESC_GDTR;
    else
        *descriptor = (ident & 1) ? KVMI_DESC_TR : KVMI_DESC_LDTR;
    *write = ident >= 2;
}

void kvmi_rights_init(struct kvmi_rights *t, struct kvmi_rights_entry *storage, uint32_t cap)
{
    t->e = storage;
    t->cap = cap;
    t->used = 0;
    memset(storage, 0, sizeof(*storage) * cap);
}

struct kvmi_rights_entry *kvmi_rights_slot(struct kvmi_rights *t, uint64_t gfn, bool create)
{
    uint32_t h = (uint32_t)((gfn * 0x9e3779b97f4a7c15ull) >> 40) % t->cap;
    for (uint32_t n = 0; n < t->cap; n++, h = (h + 1) % t->cap) {
        struct kvmi_rights_entry *e = &t->e[h];
        if (e->gfn_plus1 == gfn + 1)
            return e;
        if (e->gfn_plus1 == 0) {
            if (!create || t->used >= t->cap / 2)
                return NULL;
            e->gfn_plus1 = gfn + 1;
            e->access = KVMI_PAGE_ACCESS_RWX;
            t->used++;
            return e;
        }
    }
    return NULL;
}

uint8_t kvmi_rights_get(struct kvmi_rights *t, uint64_t gfn)
{
    struct kvmi_rights_entry *e = kvmi_rights_slot(t, gfn, false);
    return e ? e->access : KVMI_PAGE_ACCESS_RWX;
}
