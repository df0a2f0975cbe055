/* Unit tests of vmx/msr_policy.c: the MSR table, the bitmap it yields and the
 * checks of emulated writes (APIC base, MTRRs, MISC_ENABLE, SPEC_CTRL, DEBUGCTL). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmx/entry_rules.h"
#include "vmx/msr_policy.h"
#include "vmx/vmx_defs.h"
#include "vmx/vmx_policy.h"

static void test_table_sorted_without_overlap(void **state)
{
    (void)state;
    unsigned n;
    const struct msr_rule *r = msr_rules(&n);
    assert_true(n > 10);
    for (unsigned i = 0; i < n; i++) {
        assert_true(r[i].first <= r[i].last);
        if (i)
            assert_true(r[i - 1].last < r[i].first);
        assert_true(r[i].read <= MSR_EMULATE && r[i].write <= MSR_EMULATE);
        if (r[i].read == MSR_EMULATE || r[i].write == MSR_EMULATE)
            assert_int_not_equal(r[i].kind, MSR_K_PLAIN);
        assert_non_null(r[i].name);
    }
}

static void test_lookup(void **state)
{
    (void)state;
    assert_int_equal(msr_rule_of(0x1b)->kind, MSR_K_APIC_BASE);
    assert_int_equal(msr_rule_of(0x1b)->write, MSR_EMULATE);
    assert_int_equal(msr_rule_of(0x830)->kind, MSR_K_X2APIC_ICR);
    assert_int_equal(msr_rule_of(0x82f)->write, MSR_PASS);
    assert_int_equal(msr_rule_of(0x831)->write, MSR_PASS);
    assert_int_equal(msr_rule_of(0x20f)->kind, MSR_K_MTRR); /* PHYSMASK7 */
    assert_int_equal(msr_rule_of(0x2ff)->kind, MSR_K_MTRR);
    for (uint32_t m = 0x480; m <= 0x492; m++) {
        assert_int_equal(msr_rule_of(m)->read, MSR_GP);
        assert_int_equal(msr_rule_of(m)->write, MSR_GP);
    }
    /* Intel PT and PEBS/DS write trace records to physical addresses EPT never checks. */
    static const uint32_t trace[] = {0x560, 0x561, 0x570, 0x571, 0x572, 0x580, 0x587, 0x600, 0x3f1};
    for (size_t i = 0; i < sizeof(trace) / sizeof(trace[0]); i++)
        assert_int_equal(msr_rule_of(trace[i])->write, MSR_GP);
    assert_int_equal(msr_rule_of(0x9b)->write, MSR_GP);   /* SMM monitor (STM) */
    assert_int_equal(msr_rule_of(0x79)->write, MSR_DROP); /* microcode update */
    /* Unlisted, inside and outside the bitmap's ranges: read on the hardware, write #GP. */
    static const uint32_t unlisted[] = {0x0,        0x2,        0x1fff,    0x4b564d00,
                                        0xc0000104, 0xc0010000, 0xffffffff};
    for (size_t i = 0; i < sizeof(unlisted) / sizeof(unlisted[0]); i++) {
        assert_int_equal(msr_rule_of(unlisted[i])->read, MSR_HW);
        assert_int_equal(msr_rule_of(unlisted[i])->write, MSR_GP);
    }
}

static void test_bitmap_matches_table(void **state)
{
    (void)state;
    static uint8_t bm[4096];
    memset(bm, 0, sizeof(bm));
    msr_policy_bitmap(bm);
    static const uint32_t ranges[][2] = {{0, 0x1fff}, {0xc0000000u, 0xc0001fffu}};
    unsigned passes = 0;
    for (int r = 0; r < 2; r++) {
        for (uint32_t m = ranges[r][0]; m <= ranges[r][1]; m++) {
            const struct msr_rule *rule = msr_rule_of(m);
            for (int w = 0; w < 2; w++) {
                bool exits = msr_bitmap_exits(bm, m, w);
                bool pass = (w ? rule->write : rule->read) == MSR_PASS;
                if (exits == pass)
                    fail_msg("MSR 0x%x %s: bitmap %s, table %s", m, w ? "write" : "read",
                             exits ? "exits" : "passes", pass ? "PASS" : "intercept");
                passes += pass;
            }
        }
    }
    /* The allow-list is small: SYSCALL/SYSENTER, segment bases, PAT, EFER, TSC_AUX,
     * TSC_DEADLINE, PRED/FLUSH_CMD, the 256 x2APIC registers (but ICR writes), TSC reads. */
    assert_true(passes < 2 * (256 + 20));
    assert_false(msr_bitmap_exits(bm, 0xc0000082, true)); /* LSTAR */
    assert_true(msr_bitmap_exits(bm, 0x1b, true));        /* APIC base */
    assert_true(msr_bitmap_exits(bm, 0x830, true));       /* x2APIC ICR */
    assert_false(msr_bitmap_exits(bm, 0x830, false));
}

#define BASE 0xfee00000ull
#define EN   (1ull << 11)
#define EXTD (1ull << 10)
#define BSP  (1ull << 8)

static void test_apic_base(void **state)
{
    (void)state;
    uint64_t cur = BASE | EN | BSP;
    assert_true(apic_base_write_ok(cur, cur, 39));        /* the same */
    assert_true(apic_base_write_ok(cur, cur | EXTD, 39)); /* xAPIC -> x2APIC */
    assert_true(apic_base_write_ok(cur | EXTD, cur | EXTD, 39));
    assert_false(apic_base_write_ok(cur, 0x0e000000ull | EN | BSP, 39)); /* moved */
    assert_false(apic_base_write_ok(cur, (BASE + 0x1000) | EN | BSP, 39));
    assert_false(apic_base_write_ok(cur, BASE | BSP, 39));         /* disabled */
    assert_false(apic_base_write_ok(cur | EXTD, cur, 39));         /* x2APIC -> xAPIC */
    assert_false(apic_base_write_ok(cur, BASE | EN, 39));          /* BSP flag */
    assert_false(apic_base_write_ok(cur, cur | (1ull << 40), 39)); /* above MAXPHYADDR */
    assert_false(apic_base_write_ok(cur, cur | (1ull << 9), 39));  /* reserved */
}

static void test_misc_enable(void **state)
{
    (void)state;
    uint64_t cur = (1ull << 0) | (1ull << 7) | (1ull << 11) | (1ull << 12) | (1ull << 16);
    assert_true(misc_enable_write_ok(cur, cur));
    assert_true(misc_enable_write_ok(cur, cur & ~1ull));          /* fast strings off */
    assert_true(misc_enable_write_ok(cur | (1ull << 22), cur));   /* CPUID limit cleared */
    assert_false(misc_enable_write_ok(cur, cur | (1ull << 34)));  /* XD disable */
    assert_false(misc_enable_write_ok(cur, cur & ~(1ull << 11))); /* BTS unavailable */
    assert_false(misc_enable_write_ok(cur, cur | (1ull << 63)));
}

/* OVMF-like: MTRRs on, default WB, PHYSBASE0/MASK0 = UC above 2 GiB. */
static void mtrrs(struct mtrr_state *s)
{
    memset(s, 0, sizeof(*s));
    s->cap = 8 | MTRRCAP_FIX;
    s->def_type = MTRR_DEF_E | MTRR_DEF_FE | MEMTYPE_WB;
    s->phys_bits = 36;
    s->var_base[0] = 0x80000000ull | 0; /* UC */
    s->var_mask[0] = (0xfull << 32 | 0x80000000ull) | MTRR_MASK_VALID;
}

#define RBASE 0x0e000000ull
#define RSIZE 0x01000000ull

static void test_mtrr(void **state)
{
    (void)state;
    struct mtrr_state s;
    mtrrs(&s);
    /* The free pair 1: base alone (mask not valid) changes nothing; then the mask that would
     * make the region UC is refused. */
    assert_true(mtrr_write_ok(&s, 0x202, RBASE | 0, RBASE, RSIZE));
    s.var_base[1] = RBASE;
    uint64_t mask16m = ((0xfull << 32) | 0xff000000ull) | MTRR_MASK_VALID;
    assert_false(mtrr_write_ok(&s, 0x203, mask16m, RBASE, RSIZE));
    /* A UC range elsewhere is fine. */
    s.var_base[1] = 0x40000000ull;
    assert_true(mtrr_write_ok(&s, 0x203, mask16m, RBASE, RSIZE));
    /* Retyping through the default type, or turning the MTRRs off, is refused ... */
    assert_false(mtrr_write_ok(&s, 0x2ff, MTRR_DEF_E | MTRR_DEF_FE | 0, RBASE, RSIZE));
    assert_false(mtrr_write_ok(&s, 0x2ff, 0, RBASE, RSIZE));
    /* ... writing it back as it is is not (Linux and MtrrLib rewrite every MTRR). */
    assert_true(mtrr_write_ok(&s, 0x2ff, s.def_type, RBASE, RSIZE));
    /* Moving the UC range 0 over the region through its base. */
    assert_false(mtrr_write_ok(&s, 0x200, RBASE & ~0xffffffull, RBASE, RSIZE));
    /* Fixed ranges type the first MiB only. */
    assert_true(mtrr_write_ok(&s, 0x250, 0, RBASE, RSIZE));
    assert_true(mtrr_write_ok(&s, 0x26f, 0, RBASE, RSIZE));
    /* A pair the CPU lacks, and MTRRCAP itself, are not MTRRs one can write. */
    assert_false(mtrr_write_ok(&s, 0x210, 0, RBASE, RSIZE)); /* pair 8 of 8 */
    assert_false(mtrr_write_ok(&s, 0xfe, 0, RBASE, RSIZE));
}

static void test_spec_ctrl_and_debugctl(void **state)
{
    (void)state;
    assert_int_equal(spec_ctrl_hw_value(0, 0), 0);
    assert_int_equal(spec_ctrl_hw_value(0, 5), 5); /* the firmware's IBRS|SSBD stay */
    assert_int_equal(spec_ctrl_hw_value(2, 1), 3);
    assert_true(debugctl_write_ok(0));
    assert_true(debugctl_write_ok(1));          /* LBR */
    assert_false(debugctl_write_ok(1ull << 7)); /* BTS */
    assert_false(debugctl_write_ok(1ull << 6)); /* TR */
}

/* The value of an introspector's MSR event reply replaces the guest's after
 * exit_msr.c judged the guest's, and KVMI writes the MSRs the VMCS holds itself
 * (kvmi_hv_wrmsr): the reply meets the policy too.  The VM-entry rules it met
 * alone accept DEBUGCTL's trace-store bits, which root mode assumes clear. */
static void test_write_refused(void **state)
{
    (void)state;
    struct entry_state s = {
        .cr0 = 0x80000011ull, .cr4 = 0x20, .efer = 0x500, .ia32e = true, .cs_l = true};
    static const uint64_t trace[] = {1ull << 6, 1ull << 7, 1ull << 8, 0x1c1};
    for (unsigned i = 0; i < sizeof(trace) / sizeof(trace[0]); i++) {
        assert_null(entry_check_msr(&s, MSR_IA32_DEBUGCTL, trace[i])); /* not an entry rule */
        assert_non_null(msr_write_refused(MSR_IA32_DEBUGCTL, trace[i]));
    }
    assert_null(msr_write_refused(MSR_IA32_DEBUGCTL, 0));
    assert_null(msr_write_refused(MSR_IA32_DEBUGCTL, 3)); /* LBR, BTF */
    assert_non_null(msr_write_refused(0x570, 0));         /* RTIT_CTL */
    assert_non_null(msr_write_refused(0x600, 0));         /* IA32_DS_AREA */
    assert_non_null(msr_write_refused(0x12345678, 0));    /* not in the table: #GP */
    assert_null(msr_write_refused(0xc0000082, 0));        /* LSTAR */
    assert_null(msr_write_refused(0x174, 0x10));          /* SYSENTER_CS */
    /* Every rule: refused for any value exactly when its writes #GP, DEBUGCTL aside. */
    unsigned n;
    const struct msr_rule *t = msr_rules(&n);
    for (unsigned i = 0; i < n; i++) {
        if (t[i].write == MSR_EMULATE && t[i].kind == MSR_K_DEBUGCTL)
            continue;
        bool gp = t[i].write == MSR_GP;
        assert_int_equal(msr_write_refused(t[i].first, 0) != NULL, gp);
        assert_int_equal(msr_write_refused(t[i].last, ~0ull) != NULL, gp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_sorted_without_overlap),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_bitmap_matches_table),
        cmocka_unit_test(test_apic_base),
        cmocka_unit_test(test_misc_enable),
        cmocka_unit_test(test_mtrr),
        cmocka_unit_test(test_spec_ctrl_and_debugctl),
        cmocka_unit_test(test_write_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
