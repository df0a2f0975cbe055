/*
 * Unit tests of vmx/caps.c: the required-feature judgement, on capability
 * MSR values of real CPUs (as recorded in Bochs 2.7's cpudb comments) and on
 * edited copies that remove one feature at a time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "vmx/vmx_caps.h"
#include "vmx/vmx_defs.h"

/* ---- report collector ------------------------------------------------------ */

struct reports {
    int n;
    char feature[32][96];
    char detail[32][256];
};

static void collect(void *ctx, const char *feature, const char *detail)
{
    struct reports *r = ctx;
    assert_true(r->n < 32);
    assert_non_null(feature);
    assert_non_null(detail);
    snprintf(r->feature[r->n], sizeof(r->feature[0]), "%s", feature);
    snprintf(r->detail[r->n], sizeof(r->detail[0]), "%s", detail);
    r->n++;
}

static int find(const struct reports *r, const char *word)
{
    for (int i = 0; i < r->n; i++)
        if (strstr(r->feature[i], word))
            return i;
    return -1;
}

static int run(const struct vmx_cpu_facts *f, struct reports *r)
{
    memset(r, 0, sizeof(*r));
    int missing = vmx_caps_check(f, collect, r);
    assert_int_equal(missing, r->n); /* one line per missing feature */
    return missing;
}

/* ---- CPUs ----------------------------------------------------------------- */

/* Core i7-2600K (Sandy Bridge): everything we need, no 1G EPT pages. */
static struct vmx_cpu_facts sandy_bridge(void)
{
    struct vmx_cpu_facts f = {
        .cpuid1_ecx = 0x1fbae3ff,
        .have_vmx_msrs = true,
        .feature_control = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX,
        .basic = 0x00da040000000010ull,
        .pinbased = 0x0000007f00000016ull,
        .procbased = 0xfff9fffe0401e172ull,
        .exit = 0x007fffff00036dffull,
        .entry = 0x0000ffff000011ffull,
        .misc = 0x00000000100401e5ull,
        .cr0_fixed0 = 0x80000021,
        .cr0_fixed1 = 0xffffffff,
        .cr4_fixed0 = 0x2000,
        .cr4_fixed1 = 0x627ff,
        .procbased2 = 0x000000ff00000000ull,
        .ept_vpid_cap = 0x00000f0106114141ull,
        .true_pin = 0x0000007f00000016ull,
        .true_proc = 0xfff9fffe04006172ull,
        .true_exit = 0x007fffff00036dfbull,
        .true_entry = 0x0000ffff000011fbull,
    };
    return f;
}

/* Core 2 Duo T9600 (Penryn): VMX without EPT, VPID, unrestricted guest or
 * preemption timer; no TRUE controls; no EPT_VPID_CAP MSR. */
static struct vmx_cpu_facts penryn(void)
{
    struct vmx_cpu_facts f = {
        .cpuid1_ecx = 0x0c0ce3bd,
        .have_vmx_msrs = true,
        .feature_control = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX,
        .basic = 0x005a08000000000dull,
        .pinbased = 0x0000003f00000016ull,
        .procbased = 0xf7f9fffe0401e172ull,
        .exit = 0x0003ffff00036dffull,
        .entry = 0x00003fff000011ffull,
        .misc = 0x00000000000403c0ull,
        .cr0_fixed0 = 0x80000021,
        .cr0_fixed1 = 0xffffffff,
        .cr4_fixed0 = 0x2000,
        .cr4_fixed1 = 0x467ff,
        .procbased2 = 0x0000004100000000ull,
    };
    return f;
}

/* Core i5-750 (Lynnfield) as Bochs models it: EPT and VPID but no
 * unrestricted guest. */
static struct vmx_cpu_facts lynnfield(void)
{
    struct vmx_cpu_facts f = sandy_bridge();
    f.procbased2 = 0x0000007f00000000ull;
    return f;
}

/* ---- tests ---------------------------------------------------------------- */

static void full_featured_cpu_passes(void **state)
{
    (void)state;
    struct reports r;
    struct vmx_cpu_facts f = sandy_bridge();
    assert_int_equal(run(&f, &r), 0);
    /* With 1G pages and 5-level walks (Tiger Lake-like) too. */
    f.ept_vpid_cap |= EPT_CAP_PAGE_1G | EPT_CAP_PWL5;
    assert_int_equal(run(&f, &r), 0);
    /* A NULL reporter still counts. */
    assert_int_equal(vmx_caps_check(&f, NULL, NULL), 0);
}

static void no_vmx_reports_only_vmx(void **state)
{
    (void)state;
    struct reports r;
    struct vmx_cpu_facts f = {.cpuid1_ecx = 0x80002201, .have_vmx_msrs = false};
    assert_int_equal(run(&f, &r), 1);
    assert_string_equal(r.feature[0], "VMX");
    assert_non_null(strstr(r.detail[0], "CPUID.1:ECX bit 5"));

    /* MSR garbage is ignored when CPUID says no VMX. */
    f = sandy_bridge();
    f.cpuid1_ecx &= ~CPUID1_ECX_VMX;
    assert_int_equal(run(&f, &r), 1);
    assert_int_equal(find(&r, "VMX"), 0);

    /* VMX claimed but the MSRs were never read: refuse rather than guess. */
    f = sandy_bridge();
    f.have_vmx_msrs = false;
    assert_int_equal(run(&f, &r), 1);
    assert_non_null(strstr(r.detail[0], "not read"));
}

static void penryn_lacks_ept(void **state)
{
    (void)state;
    struct reports r;
    struct vmx_cpu_facts f = penryn();
    assert_int_equal(run(&f, &r), 4);
    int ept = find(&r, "EPT");
    assert_true(ept >= 0);
    assert_string_equal(r.feature[ept], "EPT");
    assert_non_null(strstr(r.detail[ept], "IA32_VMX_PROCBASED_CTLS2 (0x48b)"));
    assert_non_null(strstr(r.detail[ept], "bit 33"));
    assert_true(find(&r, "unrestricted guest") >= 0);
    int vpid = find(&r, "VPID");
    assert_true(vpid >= 0);
    assert_non_null(strstr(r.detail[vpid], "bit 37"));
    int pt = find(&r, "preemption timer");
    assert_true(pt >= 0);
    /* No TRUE controls on Penryn: the plain MSR is named. */
    assert_non_null(strstr(r.detail[pt], "IA32_VMX_PINBASED_CTLS (0x481)"));
    assert_non_null(strstr(r.detail[pt], "= 0x3f00000016"));
    assert_non_null(strstr(r.detail[pt], "bit 38"));
    /* EPT capability details are not repeated once EPT itself is missing. */
    assert_int_equal(find(&r, "INVEPT"), -1);
    assert_int_equal(find(&r, "4-level"), -1);
    /* What Penryn has is not reported. */
    assert_int_equal(find(&r, "NMI exiting"), -1);
    assert_int_equal(find(&r, "virtual NMIs"), -1);
    assert_int_equal(find(&r, "MSR bitmaps"), -1);
    assert_int_equal(find(&r, "I/O bitmaps"), -1);
}

static void lynnfield_lacks_unrestricted_guest(void **state)
{
    (void)state;
    struct reports r;
    struct vmx_cpu_facts f = lynnfield();
    assert_int_equal(run(&f, &r), 1);
    assert_string_equal(r.feature[0], "unrestricted guest");
    assert_non_null(strstr(r.detail[0], "bit 39"));
    assert_non_null(strstr(r.detail[0], "= 0x7f00000000"));
}

static void feature_control_lock(void **state)
{
    (void)state;
    struct reports r;
    struct vmx_cpu_facts f = sandy_bridge();

    f.feature_control = FEATURE_CONTROL_LOCK; /* locked, VMX off */
    assert_int_equal(run(&f, &r), 1);
    assert_non_null(strstr(r.feature[0], "VMX"));
    assert_non_null(strstr(r.feature[0], "disabled by firmware"));
    assert_non_null(strstr(r.detail[0], "IA32_FEATURE_CONTROL (0x3a) = 0x1"));
    assert_int_equal(vmx_caps_feature_control_fixup(f.feature_control), 0);

    /* Locked with only VMX inside SMX: still unusable for us. */
    f.feature_control = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_INSIDE_SMX;
    assert_int_equal(run(&f, &r), 1);

    /* Unlocked: we may enable and lock it ourselves, keeping other bits. */
    f.feature_control = 0x40000; /* e.g. SGX enable left by firmware */
    assert_int_equal(run(&f, &r), 0);
    assert_int_equal(vmx_caps_feature_control_fixup(f.feature_control),
                     0x40000 | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);

    /* Locked on: nothing to write. */
    f.feature_control = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
    assert_int_equal(run(&f, &r), 0);
    assert_int_equal(vmx_caps_feature_control_fixup(f.feature_control), 0);

    /* Combined with other gaps, each is its own line. */
    f = penryn();
    f.feature_control = FEATURE_CONTROL_LOCK;
    assert_int_equal(run(&f, &r), 5);
}

static void true_controls_are_used_when_basic_55(void **state)
{
    (void)state;
    struct reports r;
    struct vmx_cpu_facts f = sandy_bridge();

    /* The TRUE MSR lacks NMI exiting while the plain one has it: the TRUE one
     * must be the one judged (and named). */
    f.true_pin = 0x0000007700000016ull;
    assert_int_equal(run(&f, &r), 1);
    assert_string_equal(r.feature[0], "NMI exiting");
    assert_non_null(strstr(r.detail[0], "IA32_VMX_TRUE_PINBASED_CTLS (0x48d)"));
    assert_non_null(strstr(r.detail[0], "bit 35"));

    /* Without bit 55 the TRUE values are garbage (never read): ignored. */
    f = sandy_bridge();
    f.basic &= ~VMX_BASIC_TRUE_CTLS;
    f.true_pin = f.true_proc = f.true_exit = f.true_entry = 0;
    assert_int_equal(run(&f, &r), 0);
    assert_int_equal(vmx_caps_ctl_msr(&f, VMX_CTL_PIN), f.pinbased);
    assert_int_equal(vmx_caps_ctl_msr_index(&f, VMX_CTL_PROC), MSR_IA32_VMX_PROCBASED_CTLS);

    /* With bit 55, default-1 controls the TRUE MSR frees (CR3-load/store
     * exiting, bits 15/16) are no longer forced. */
    f = sandy_bridge();
    uint64_t proc = vmx_caps_ctl_msr(&f, VMX_CTL_PROC);
    assert_int_equal(proc, f.true_proc);
    assert_int_equal((uint32_t)proc & PROC_CR3_LOAD_EXITING, 0);
    assert_int_equal((uint32_t)f.procbased & PROC_CR3_LOAD_EXITING, PROC_CR3_LOAD_EXITING);
    assert_int_equal(vmx_caps_ctl_msr_index(&f, VMX_CTL_ENTRY), MSR_IA32_VMX_TRUE_ENTRY_CTLS);
    assert_string_equal(vmx_caps_ctl_msr_name(&f, VMX_CTL_EXIT), "IA32_VMX_TRUE_EXIT_CTLS");
    /* PROC2 has no TRUE variant. */
    assert_int_equal(vmx_caps_ctl_msr_index(&f, VMX_CTL_PROC2), MSR_IA32_VMX_PROCBASED_CTLS2);
}

static void each_required_control_is_named(void **state)
{
    (void)state;
    static const struct {
        enum vmx_ctl_kind k;
        uint32_t bit;
        const char *word;
    } cases[] = {
        {VMX_CTL_PIN, PIN_NMI_EXITING, "NMI exiting"},
        {VMX_CTL_PIN, PIN_VIRTUAL_NMIS, "virtual NMIs"},
        {VMX_CTL_PIN, PIN_PREEMPT_TIMER, "preemption timer"},
        {VMX_CTL_PROC, PROC_USE_MSR_BITMAPS, "MSR bitmaps"},
        {VMX_CTL_PROC, PROC_USE_IO_BITMAPS, "I/O bitmaps"},
        {VMX_CTL_PROC, PROC_NMI_WINDOW, "NMI-window exiting"},
        {VMX_CTL_PROC2, PROC2_EPT, "EPT"},
        {VMX_CTL_PROC2, PROC2_VPID, "VPID"},
        {VMX_CTL_PROC2, PROC2_UNRESTRICTED, "unrestricted guest"},
        {VMX_CTL_EXIT, EXIT_HOST_ADDR64, "64-bit host"},
        {VMX_CTL_ENTRY, ENTRY_IA32E_GUEST, "IA-32e mode guest"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct reports r;
        struct vmx_cpu_facts f = sandy_bridge();
        uint64_t clear = ~((uint64_t)cases[i].bit << 32);
        switch (cases[i].k) {
        case VMX_CTL_PIN:
            f.true_pin &= clear;
            break;
        case VMX_CTL_PROC:
            f.true_proc &= clear;
            break;
        case VMX_CTL_PROC2:
            f.procbased2 &= clear;
            break;
        case VMX_CTL_EXIT:
            f.true_exit &= clear;
            break;
        default:
            f.true_entry &= clear;
            break;
        }
        int missing = run(&f, &r);
        assert_true(missing >= 1);
        assert_true(find(&r, cases[i].word) >= 0);
        assert_true(strstr(r.detail[0], "allowed-1") != NULL);
    }
}

static void secondary_controls_missing(void **state)
{
    (void)state;
    struct reports r;
    struct vmx_cpu_facts f = sandy_bridge();
    f.true_proc &= ~((uint64_t)PROC_SECONDARY_CTLS << 32);
    f.procbased &= ~((uint64_t)PROC_SECONDARY_CTLS << 32);
    /* The MSR does not exist then, whatever a stale value says. */
    assert_int_equal(vmx_caps_ctl_msr(&f, VMX_CTL_PROC2), 0);
    assert_int_equal(vmx_caps_ept_vpid(&f), 0);
    assert_int_equal(run(&f, &r), 4);
    assert_int_equal(find(&r, "secondary"), 0);
    int ept = find(&r, "EPT");
    assert_true(ept > 0);
    assert_non_null(strstr(r.detail[ept], "does not exist"));
    assert_true(find(&r, "unrestricted guest") > 0);
    assert_true(find(&r, "VPID") > 0);
}

static void ept_capability_details(void **state)
{
    (void)state;
    struct reports r;
    struct vmx_cpu_facts f = sandy_bridge();

    f.ept_vpid_cap &= ~EPT_CAP_PWL4;
    assert_int_equal(run(&f, &r), 1);
    assert_non_null(strstr(r.feature[0], "EPT"));
    assert_non_null(strstr(r.feature[0], "4-level"));
    assert_non_null(strstr(r.detail[0], "IA32_VMX_EPT_VPID_CAP (0x48c)"));
    assert_non_null(strstr(r.detail[0], "bit 6 "));

    f = sandy_bridge();
    f.ept_vpid_cap &= ~EPT_CAP_MEMTYPE_WB;
    assert_int_equal(run(&f, &r), 1);
    assert_non_null(strstr(r.feature[0], "write-back"));
    assert_non_null(strstr(r.detail[0], "bit 14 "));

    /* INVEPT present but neither single- nor all-context type. */
    f = sandy_bridge();
    f.ept_vpid_cap &= ~(EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL);
    assert_int_equal(run(&f, &r), 1);
    assert_non_null(strstr(r.feature[0], "INVEPT"));
    assert_non_null(strstr(r.detail[0], "none of bits 25, 26"));
    /* One type is enough. */
    f.ept_vpid_cap |= EPT_CAP_INVEPT_ALL;
    assert_int_equal(run(&f, &r), 0);

    /* No INVEPT at all: one line, not two. */
    f = sandy_bridge();
    f.ept_vpid_cap &= ~(EPT_CAP_INVEPT | EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL);
    assert_int_equal(run(&f, &r), 1);
    assert_non_null(strstr(r.detail[0], "bit 20 "));

    /* INVVPID missing: named under VPID. */
    f = sandy_bridge();
    f.ept_vpid_cap &= ~VPID_CAP_INVVPID;
    assert_int_equal(run(&f, &r), 1);
    assert_non_null(strstr(r.feature[0], "VPID"));
    assert_non_null(strstr(r.feature[0], "INVVPID"));
    assert_non_null(strstr(r.detail[0], "bit 32 "));

    f = sandy_bridge();
    f.ept_vpid_cap &= ~(VPID_CAP_INVVPID_SINGLE | VPID_CAP_INVVPID_ALL);
    assert_int_equal(run(&f, &r), 1);
    assert_non_null(strstr(r.detail[0], "none of bits 41, 42"));
}

static void can_set_helper(void **state)
{
    (void)state;
    struct vmx_cpu_facts f = penryn();
    assert_true(vmx_caps_can_set(&f, VMX_CTL_PIN, PIN_NMI_EXITING | PIN_VIRTUAL_NMIS));
    assert_false(vmx_caps_can_set(&f, VMX_CTL_PIN, PIN_NMI_EXITING | PIN_PREEMPT_TIMER));
    assert_true(vmx_caps_can_set(&f, VMX_CTL_PROC2, PROC2_WBINVD_EXITING));
    assert_false(vmx_caps_can_set(&f, VMX_CTL_PROC2, PROC2_EPT));
    /* Penryn has no EPT/VPID, so EPT_VPID_CAP is treated as absent. */
    f.ept_vpid_cap = ~0ull;
    assert_int_equal(vmx_caps_ept_vpid(&f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_featured_cpu_passes),
        cmocka_unit_test(no_vmx_reports_only_vmx),
        cmocka_unit_test(penryn_lacks_ept),
        cmocka_unit_test(lynnfield_lacks_unrestricted_guest),
        cmocka_unit_test(feature_control_lock),
        cmocka_unit_test(true_controls_are_used_when_basic_55),
        cmocka_unit_test(each_required_control_is_named),
        cmocka_unit_test(secondary_controls_missing),
        cmocka_unit_test(ept_capability_details),
        cmocka_unit_test(can_set_helper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
