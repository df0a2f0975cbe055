/*
 * msr_policy.c - the MSR table and the checks of msr_policy.h.  Pure:
 * no MSR is touched here, so the host tests run every rule.
 */
#include "msr_policy.h"

#include "vmx_defs.h"
#include "vmx_policy.h"

/* Sorted by first MSR, no overlaps (test_msr_policy checks both). */
static const struct msr_rule rules[] = {
    {0x010, 0x010, MSR_PASS, MSR_EMULATE, MSR_K_TSC, "IA32_TIME_STAMP_COUNTER"},
    {0x01b, 0x01b, MSR_HW, MSR_EMULATE, MSR_K_APIC_BASE, "IA32_APIC_BASE"},
    {0x03a, 0x03a, MSR_EMULATE, MSR_GP, MSR_K_FEATURE_CONTROL, "IA32_FEATURE_CONTROL"},
    {0x03b, 0x03b, MSR_EMULATE, MSR_EMULATE, MSR_K_TSC_ADJUST, "IA32_TSC_ADJUST"},
    {0x048, 0x048, MSR_EMULATE, MSR_EMULATE, MSR_K_SPEC_CTRL, "IA32_SPEC_CTRL"},
    {0x049, 0x049, MSR_PASS, MSR_PASS, 0, "IA32_PRED_CMD"},
    {0x079, 0x079, MSR_HW, MSR_DROP, 0, "IA32_BIOS_UPDT_TRIG"},
    {0x08b, 0x08b, MSR_HW, MSR_HW, 0, "IA32_BIOS_SIGN_ID"},
    {0x09b, 0x09b, MSR_GP, MSR_GP, 0, "IA32_SMM_MONITOR_CTL"},
    {0x0c1, 0x0c8, MSR_HW, MSR_HW, 0, "IA32_PMCx"},
    {0x0e1, 0x0e1, MSR_HW, MSR_HW, 0, "IA32_UMWAIT_CONTROL"},
    {0x0e7, 0x0e8, MSR_HW, MSR_HW, 0, "IA32_MPERF/APERF"},
    {0x0fe, 0x0fe, MSR_HW, MSR_GP, 0, "IA32_MTRRCAP"},
    {0x10b, 0x10b, MSR_PASS, MSR_PASS, 0, "IA32_FLUSH_CMD"},
    {0x122, 0x123, MSR_HW, MSR_HW, 0, "IA32_TSX_CTRL/MCU_OPT_CTRL"},
    {0x140, 0x140, MSR_HW, MSR_HW, 0, "MISC_FEATURE_ENABLES"},
    {0x174, 0x176, MSR_PASS, MSR_PASS, 0, "IA32_SYSENTER_CS/ESP/EIP"},
    {0x179, 0x179, MSR_HW, MSR_GP, 0, "IA32_MCG_CAP"},
    {0x17a, 0x17b, MSR_HW, MSR_HW, 0, "IA32_MCG_STATUS/CTL"},
    {0x186, 0x18d, MSR_HW, MSR_HW, 0, "IA32_PERFEVTSELx"},
    {0x198, 0x19c, MSR_HW, MSR_HW, 0, "IA32_PERF_STATUS..THERM_STATUS"},
    {0x1a0, 0x1a0, MSR_HW, MSR_EMULATE, MSR_K_MISC_ENABLE, "IA32_MISC_ENABLE"},
    {0x1b0, 0x1b2, MSR_HW, MSR_HW, 0, "IA32_ENERGY_PERF_BIAS, PACKAGE_THERM_*"},
    {0x1d9, 0x1d9, MSR_EMULATE, MSR_EMULATE, MSR_K_DEBUGCTL, "IA32_DEBUGCTL"},
    {0x200, 0x21f, MSR_HW, MSR_EMULATE, MSR_K_MTRR, "IA32_MTRR_PHYSBASE/MASKx"},
    {0x250, 0x250, MSR_HW, MSR_EMULATE, MSR_K_MTRR, "IA32_MTRR_FIX64K"},
    {0x258, 0x259, MSR_HW, MSR_EMULATE, MSR_K_MTRR, "IA32_MTRR_FIX16K"},
    {0x268, 0x26f, MSR_HW, MSR_EMULATE, MSR_K_MTRR, "IA32_MTRR_FIX4K"},
    {0x277, 0x277, MSR_PASS, MSR_PASS, 0, "IA32_PAT"},
    {0x2ff, 0x2ff, MSR_HW, MSR_EMULATE, MSR_K_MTRR, "IA32_MTRR_DEF_TYPE"},
    {0x309, 0x30b, MSR_HW, MSR_HW, 0, "IA32_FIXED_CTRx"},
    {0x345, 0x345, MSR_HW, MSR_GP, 0, "IA32_PERF_CAPABILITIES"},
    {0x38d, 0x390, MSR_HW, MSR_HW, 0, "IA32_FIXED_CTR_CTRL..PERF_GLOBAL_OVF_CTRL"},
    {0x3f1, 0x3f1, MSR_GP, MSR_GP, 0, "IA32_PEBS_ENABLE"},
    {0x400, 0x47f, MSR_HW, MSR_HW, 0, "IA32_MCi_CTL/STATUS/ADDR/MISC"},
    {MSR_IA32_VMX_FIRST, MSR_IA32_VMX_LAST, MSR_GP, MSR_GP, 0, "IA32_VMX_*"},
    {0x4c1, 0x4c8, MSR_HW, MSR_HW, 0, "IA32_A_PMCx"},
    {0x560, 0x561, MSR_GP, MSR_GP, 0, "IA32_RTIT_OUTPUT_BASE/MASK_PTRS"},
    {0x570, 0x572, MSR_GP, MSR_GP, 0, "IA32_RTIT_CTL/STATUS/CR3_MATCH"},
    {0x580, 0x587, MSR_GP, MSR_GP, 0, "IA32_RTIT_ADDRx"},
    {0x600, 0x600, MSR_GP, MSR_GP, 0, "IA32_DS_AREA"},
    {0x6a0, 0x6a8, MSR_HW, MSR_HW, 0, "IA32_U_CET..INTERRUPT_SSP_TABLE_ADDR"},
    {0x6e0, 0x6e0, MSR_PASS, MSR_PASS, 0, "IA32_TSC_DEADLINE"},
    {0x6e1, 0x6e1, MSR_HW, MSR_HW, 0, "IA32_PKRS"},
    {0x770, 0x777, MSR_HW, MSR_HW, 0, "IA32_PM_ENABLE..HWP_STATUS"},
    {0x800, 0x82f, MSR_PASS, MSR_PASS, 0, "x2APIC registers"},
    {MSR_X2APIC_ICR, MSR_X2APIC_ICR, MSR_PASS, MSR_EMULATE, MSR_K_X2APIC_ICR, "x2APIC ICR"},
    {0x831, 0x8ff, MSR_PASS, MSR_PASS, 0, "x2APIC registers"},
    {0xd90, 0xd90, MSR_HW, MSR_HW, 0, "IA32_BNDCFGS"},
    {0xda0, 0xda0, MSR_HW, MSR_HW, 0, "IA32_XSS"},
    {0xc0000080, 0xc0000080, MSR_PASS, MSR_PASS, 0, "IA32_EFER"},
    {0xc0000081, 0xc0000084, MSR_PASS, MSR_PASS, 0, "IA32_STAR/LSTAR/CSTAR/FMASK"},
    {0xc0000100, 0xc0000102, MSR_PASS, MSR_PASS, 0, "IA32_FS_BASE/GS_BASE/KERNEL_GS_BASE"},
    {0xc0000103, 0xc0000103, MSR_PASS, MSR_PASS, 0, "IA32_TSC_AUX"},
};

#define NRULES (sizeof(rules) / sizeof(rules[0]))

static const struct msr_rule default_rule = {0, 0xffffffffu, MSR_HW, MSR_GP, 0, "(unlisted)"};

const struct msr_rule *msr_rules(unsigned *count)
{
    *count = (unsigned)NRULES;
    return rules;
}

const struct msr_rule *msr_rule_of(uint32_t msr)
{
    unsigned lo = 0, hi = (unsigned)NRULES;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (msr < rules[mid].first)
            hi = mid;
        else if (msr > rules[mid].last)
            lo = mid + 1;
        else
            return &rules[mid];
    }
    return &default_rule;
}

void msr_policy_bitmap(uint8_t *bitmap)
{
    /* The two ranges the bitmap covers (SDM 25.6.9 MSR-Bitmap Address); every other MSR
     * always exits. */
    static const uint32_t first[2] = {0, 0xc0000000u};
    for (unsigned i = 0; i < 4096; i++)
        bitmap[i] = 0;
    for (unsigned r = 0; r < 2; r++) {
        for (uint32_t m = first[r]; m <= first[r] + 0x1fffu; m++) {
            const struct msr_rule *rule = msr_rule_of(m);
            msr_bitmap_intercept(bitmap, m, rule->read != MSR_PASS, rule->write != MSR_PASS);
        }
    }
}

#define APIC_BASE_BSP  (1ull << 8)
#define APIC_BASE_EXTD (1ull << 10)
#define APIC_BASE_EN   (1ull << 11)

bool apic_base_write_ok(uint64_t cur, uint64_t val, unsigned phys_bits)
{
    uint64_t addr_mask = (phys_bits >= 64 ? ~0ull : (1ull << phys_bits) - 1) & ~0xfffull;
    uint64_t defined = addr_mask | APIC_BASE_BSP | APIC_BASE_EXTD | APIC_BASE_EN;
    if (val & ~defined)
        return false; /* reserved bits: #GP on hardware too */
    if ((val & addr_mask) != (cur & addr_mask) || (val & APIC_BASE_BSP) != (cur & APIC_BASE_BSP))
        return false; /* the APIC stays where the hypervisor protects and kicks it */
    if (!(val & APIC_BASE_EN))
        return false; /* a disabled APIC would take the kicks (NMIs) with it */
    if ((cur & APIC_BASE_EXTD) && !(val & APIC_BASE_EXTD))
        return false; /* x2APIC -> xAPIC is invalid (SDM Vol. 3 11.12.5) */
    return true;
}

/* Bits an OS may change: 0 fast strings, 3 automatic thermal control, 16 EIST,
 * 18 MONITOR FSM, 22 limit CPUID maxval, 23 xTPR message disable, 38 turbo disable. */
#define MISC_ENABLE_OS_BITS                                                                        \
    ((1ull << 0) | (1ull << 3) | (1ull << 16) | (1ull << 18) | (1ull << 22) | (1ull << 23) |       \
     (1ull << 38))

bool misc_enable_write_ok(uint64_t cur, uint64_t val)
{
    return ((cur ^ val) & ~MISC_ENABLE_OS_BITS) == 0;
}

static int fixed_index(uint32_t msr)
{
    if (msr == MSR_IA32_MTRR_FIX64K_00000)
        return 0;
    if (msr == MSR_IA32_MTRR_FIX16K_80000)
        return 1;
    if (msr == MSR_IA32_MTRR_FIX16K_A0000)
        return 2;
    if (msr >= MSR_IA32_MTRR_FIX4K_C0000 && msr <= MSR_IA32_MTRR_FIX4K_C0000 + 7)
        return 3 + (int)(msr - MSR_IA32_MTRR_FIX4K_C0000);
    return -1;
}

bool mtrr_write_ok(const struct mtrr_state *cur, uint32_t msr, uint64_t val, uint64_t region,
                   uint64_t size)
{
    struct mtrr_state next = *cur;
    int f = fixed_index(msr);
    if (f >= 0) {
        next.fixed[f] = val;
    } else if (msr == MSR_IA32_MTRR_DEF_TYPE) {
        next.def_type = val;
    } else if (msr >= MSR_IA32_MTRR_PHYSBASE(0) &&
               msr <= MSR_IA32_MTRR_PHYSMASK(MTRR_MAX_VAR - 1)) {
        unsigned n = (msr - MSR_IA32_MTRR_PHYSBASE(0)) / 2;
        if (n >= MTRRCAP_VCNT(cur->cap))
            return false; /* a pair the CPU does not have */
        if ((msr - MSR_IA32_MTRR_PHYSBASE(0)) % 2)
            next.var_mask[n] = val;
        else
            next.var_base[n] = val;
    } else {
        return false;
    }
    return size == 0 || mtrr_range_type(&next, region, size) == mtrr_range_type(cur, region, size);
}

uint64_t spec_ctrl_hw_value(uint64_t guest, uint64_t host)
{
    return guest | host;
}

/* IA32_DEBUGCTL bits 6 TR, 7 BTS, 8 BTINT (SDM Vol. 3 18.4.1). */
#define DEBUGCTL_TRACE_STORE ((1ull << 6) | (1ull << 7) | (1ull << 8))

bool debugctl_write_ok(uint64_t val)
{
    return !(val & DEBUGCTL_TRACE_STORE);
}

const char *msr_write_refused(uint32_t msr, uint64_t val)
{
    const struct msr_rule *r = msr_rule_of(msr);
    if (r->write == MSR_GP)
        return "the MSR policy refuses writes to this MSR";
    if (r->write == MSR_EMULATE && r->kind == MSR_K_DEBUGCTL && !debugctl_write_ok(val))
        return "IA32_DEBUGCTL TR/BTS/BTINT (trace stores)";
    return 0;
}
