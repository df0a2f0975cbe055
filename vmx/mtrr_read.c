/*
 * mtrr_read.c - snapshot of this CPU's MTRR MSRs (SDM Vol. 3A 12.11.1 MTRR Feature Identification).
 * Reads only the MSRs IA32_MTRRCAP says exist; not host-tested.
 */
#include "mtrr.h"
#include "vmx_defs.h"
#include "x86.h"

void mtrr_read(struct mtrr_state *s)
{
    uint32_t a, b, c, d;

    s->cap = 0;
    for (unsigned i = 0; i < MTRR_NUM_FIXED; i++)
        s->fixed[i] = 0;
    for (unsigned i = 0; i < MTRR_MAX_VAR; i++)
        s->var_base[i] = s->var_mask[i] = 0;

    s->phys_bits = 36;
    cpuid(0x80000000u, 0, &a, &b, &c, &d);
    if (a >= 0x80000008u) {
        cpuid(0x80000008u, 0, &a, &b, &c, &d);
        s->phys_bits = a & 0xffu;
    }

    cpuid(1, 0, &a, &b, &c, &d);
    if (!(d & (1u << 12))) {
        /* No MTRRs: caching is decided by PAT alone, i.e. WB from our side. */
        s->def_type = MTRR_DEF_E | MEMTYPE_WB;
        return;
    }
    s->cap = rdmsr(MSR_IA32_MTRRCAP);
    s->def_type = rdmsr(MSR_IA32_MTRR_DEF_TYPE);
    if (s->cap & MTRRCAP_FIX) {
        s->fixed[0] = rdmsr(MSR_IA32_MTRR_FIX64K_00000);
        s->fixed[1] = rdmsr(MSR_IA32_MTRR_FIX16K_80000);
        s->fixed[2] = rdmsr(MSR_IA32_MTRR_FIX16K_A0000);
        for (unsigned i = 0; i < 8; i++)
            s->fixed[3 + i] = rdmsr(MSR_IA32_MTRR_FIX4K_C0000 + i);
    }
    unsigned n = MTRRCAP_VCNT(s->cap);
    if (n > MTRR_MAX_VAR)
        n = MTRR_MAX_VAR;
    for (unsigned i = 0; i < n; i++) {
        s->var_base[i] = rdmsr(MSR_IA32_MTRR_PHYSBASE(i));
        s->var_mask[i] = rdmsr(MSR_IA32_MTRR_PHYSMASK(i));
    }
}
