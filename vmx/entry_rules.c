/*
 * entry_rules.c - the guest-state checks of VM entry, applied to values before root mode writes
 * them (see entry_rules.h).  Section numbers are SDM Vol. 3C unless another volume is named.
 */
#include "entry_rules.h"
#include "x86_arch.h"

#define CR0_WP     (1ull << 16)
#define CR0_NW     (1ull << 29)
#define CR0_CD     (1ull << 30)
#define CR4_PCIDE  (1ull << 17)
#define CR4_CET    (1ull << 23)
#define EFER_SCE   (1ull << 0)
#define EFER_NXE   (1ull << 11)
#define RFLAGS_VM  (1ull << 17)
#define RFLAGS_RES (~0x3fffffull | (1ull << 15) | (1ull << 5) | (1ull << 3))

bool entry_canonical(uint64_t addr, bool la57)
{
    unsigned bits = la57 ? 57 : 48;
    int64_t s = (int64_t)(addr << (64 - bits)) >> (64 - bits);
    return (uint64_t)s == addr;
}

const char *entry_check_rip(const struct entry_state *s, uint64_t rip)
{
    if (s->ia32e && s->cs_l)
        return entry_canonical(rip, s->cr4 & CR4_LA57) ? 0 : "RIP not canonical";
    if (rip >> 32)
        return "RIP above 4 GiB outside 64-bit code";
    /* Not an entry check, but the first fetch would fault: the introspector meant otherwise. */
    if (rip > s->cs_limit)
        return "RIP beyond the CS limit";
    return 0;
}

const char *entry_check_rflags(const struct entry_state *s, uint64_t rflags)
{
    if (rflags & RFLAGS_RES)
        return "RFLAGS reserved bit set (63:22, 15, 5 or 3)";
    if (!(rflags & 2))
        return "RFLAGS bit 1 clear";
    if ((rflags & RFLAGS_VM) && (s->ia32e || !(s->cr0 & CR0_PE)))
        return "RFLAGS.VM in IA-32e mode or without CR0.PE";
    return 0;
}

const char *entry_check_cr0(const struct entry_state *s, uint64_t cr0)
{
    if (cr0 & ~s->cr0_fixed1)
        return "CR0 bit set that IA32_VMX_CR0_FIXED1 forbids";
    if ((cr0 & CR0_PG) && !(cr0 & CR0_PE))
        return "CR0.PG without CR0.PE";
    /* MOV to CR0 #GP cases (Vol. 2B MOV-Move to/from Control Registers). */
    if ((cr0 & CR0_NW) && !(cr0 & CR0_CD))
        return "CR0.NW without CR0.CD";
    if ((cr0 & CR0_PG) && !(s->cr0 & CR0_PG) && (s->efer & EFER_LME) && !(s->cr4 & CR4_PAE))
        return "CR0.PG with EFER.LME but without CR4.PAE";
    if (!(cr0 & CR0_PG) && s->ia32e && s->cs_l)
        return "CR0.PG cleared in 64-bit code";
    if (!(cr0 & CR0_WP) && (s->cr4 & CR4_CET))
        return "CR0.WP cleared with CR4.CET set";
    return 0;
}

const char *entry_check_cr3(const struct entry_state *s, uint64_t cr3)
{
    uint64_t addr = cr3 & ~(1ull << 63); /* bit 63: "no flush" with PCIDs, never stored */
    if (s->phys_bits < 64 && (addr >> s->phys_bits))
        return "CR3 bits beyond MAXPHYADDR";
    return 0;
}

const char *entry_check_cr4(const struct entry_state *s, uint64_t cr4)
{
    if (cr4 & CR4_VMXE)
        return "CR4.VMXE (VMX is hidden)";
    if (cr4 & ~s->cr4_fixed1)
        return "CR4 bit set that IA32_VMX_CR4_FIXED1 forbids";
    if (s->ia32e && !(cr4 & CR4_PAE))
        return "CR4.PAE cleared in IA-32e mode";
    if ((cr4 & CR4_PCIDE) && !s->ia32e)
        return "CR4.PCIDE outside IA-32e mode";
    if (s->ia32e && ((cr4 ^ s->cr4) & CR4_LA57))
        return "CR4.LA57 changed in IA-32e mode";
    if ((cr4 & CR4_CET) && !(s->cr0 & CR0_WP))
        return "CR4.CET without CR0.WP";
    return 0;
}

/* Every byte of IA32_PAT a valid memory type: 0, 1, 4, 5, 6 or 7. */
static bool pat_ok(uint64_t pat)
{
    for (unsigned i = 0; i < 8; i++) {
        unsigned t = (pat >> (8 * i)) & 0xff;
        if (t == 2 || t == 3 || t > 7)
            return false;
    }
    return true;
}

const char *entry_check_msr(const struct entry_state *s, uint32_t msr, uint64_t val)
{
    bool la57 = s->cr4 & CR4_LA57;
    switch (msr) {
    case MSR_IA32_EFER:
        /* LMA follows CR0.PG (root mode keeps the current one); SCE, LME, NXE are writable. */
        if (val & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
            return "EFER reserved bit set";
        if ((s->cr0 & CR0_PG) && ((val ^ s->efer) & EFER_LME))
            return "EFER.LME changed with paging on";
        return 0;
    case MSR_IA32_FS_BASE:
    case MSR_IA32_GS_BASE:
    case MSR_IA32_KERNEL_GS_BASE:
    case MSR_IA32_LSTAR:
    case MSR_IA32_CSTAR:
    case MSR_IA32_SYSENTER_ESP:
    case MSR_IA32_SYSENTER_EIP:
        return entry_canonical(val, la57) ? 0 : "address not canonical";
    case MSR_IA32_PAT:
        return pat_ok(val) ? 0 : "IA32_PAT entry not a memory type";
    case MSR_IA32_DEBUGCTL:
        /* LBR, BTF and bits 6-15 (TR, BTS, BTINT, BTS_OFF_*, FREEZE_*, RTM_DEBUG) */
        return (val & ~0xffc3ull) ? "IA32_DEBUGCTL reserved bit set" : 0;
    default:
        return 0;
    }
}
