/*
 * Unit tests of vmx/controls.c: control fields computed from capability
 * MSRs of real CPUs (values recorded in Bochs 2.7's cpudb), allowed-0 bits
 * forced, allowed-1 limits honoured, missing required controls named.
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

struct reports {
    int n;
    char feature[32][96];
    char detail[32][256];
};

static void collect(void *ctx, const char *feature, const char *detail)
{
    struct reports *r = ctx;
    assert_true(r->n < 32);
    snprintf(r->feature[r->n], sizeof(r->feature[0]), "%s", feature);
    snprintf(r->detail[r->n], sizeof(r->detail[0]), "%s", detail);
    r->n++;
}

static struct vmx_cpu_facts sandy_bridge(void)
{
    struct vmx_cpu_facts f = {
        .cpuid1_ecx = CPUID1_ECX_VMX,
        .have_vmx_msrs = true,
        .feature_control = 5,
        .basic = 0x00da040000000010ull,
        .pinbased = 0x0000007f00000016ull,
        .procbased = 0xfff9fffe0401e172ull,
        .exit = 0x007fffff00036dffull,
        .entry = 0x0000ffff000011ffull,
        .procbased2 = 0x000000ff00000000ull,
        .ept_vpid_cap = 0x00000f0106114141ull,
        .true_pin = 0x0000007f00000016ull,
        .true_proc = 0xfff9fffe04006172ull,
        .true_exit = 0x007fffff00036dfbull,
        .true_entry = 0x0000ffff000011fbull,
    };
    return f;
}

static struct vmx_cpu_facts penryn(void)
{
    struct vmx_cpu_facts f = {
        .cpuid1_ecx = CPUID1_ECX_VMX,
        .have_vmx_msrs = true,
        .feature_control = 5,
        .basic = 0x005a08000000000dull,
        .pinbased = 0x0000003f00000016ull,
        .procbased = 0xf7f9fffe0401e172ull,
        .exit = 0x0003ffff00036dffull,
        .entry = 0x00003fff000011ffull,
        .procbased2 = 0x0000004100000000ull,
    };
    return f;
}

/* Every field obeys its capability MSR: allowed-0 bits set, nothing outside allowed-1. */
static void assert_within_caps(const struct vmx_cpu_facts *f, const struct vmx_controls *c)
{
    for (int k = 0; k < VMX_CTL_COUNT; k++) {
        if (k == VMX_CTL_PROC2 && !(c->v[VMX_CTL_PROC] & PROC_SECONDARY_CTLS)) {
            assert_int_equal(c->v[k], 0);
            continue;
        }
        uint64_t cap = vmx_caps_ctl_msr(f, (enum vmx_ctl_kind)k);
        uint32_t a0 = (uint32_t)cap, a1 = (uint32_t)(cap >> 32);
        assert_int_equal(c->v[k] & a0, a0);
        assert_int_equal(c->v[k] & ~a1, 0);
    }
}

static void hv_request_on_sandy_bridge(void **state)
{
    (void)state;
    struct vmx_cpu_facts f = sandy_bridge();
    struct vmx_controls_request req;
    struct vmx_controls c;
    struct reports r = {0};

    vmx_controls_hv_request(&req);
    assert_int_equal(vmx_controls_compute(&f, &req, &c, collect, &r), 0);
    assert_int_equal(r.n, 0);
    assert_within_caps(&f, &c);

    assert_int_equal(c.v[VMX_CTL_PIN],
                     0x16 | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS | PIN_PREEMPT_TIMER);
    /* TRUE controls free CR3-load/store exiting: not set since not asked. */
    assert_int_equal(c.v[VMX_CTL_PROC] & (PROC_CR3_LOAD_EXITING | PROC_CR3_STORE_EXITING), 0);
    /* TSC offsetting is desired (a guest's TSC writes move its offset only). */
    assert_int_equal(c.v[VMX_CTL_PROC], 0x04006172u | PROC_USE_MSR_BITMAPS | PROC_USE_IO_BITMAPS |
                                            PROC_SECONDARY_CTLS | PROC_TSC_OFFSETTING);
    /* Sandy Bridge offers RDTSCP but not INVPCID/XSAVES: desired ones only when offered. */
    assert_int_equal(c.v[VMX_CTL_PROC2],
                     PROC2_EPT | PROC2_VPID | PROC2_UNRESTRICTED | PROC2_RDTSCP);
    assert_int_equal(
        c.v[VMX_CTL_EXIT] &
            (EXIT_HOST_ADDR64 | EXIT_LOAD_EFER | EXIT_SAVE_EFER | EXIT_LOAD_PAT | EXIT_SAVE_PAT),
        EXIT_HOST_ADDR64 | EXIT_LOAD_EFER | EXIT_SAVE_EFER | EXIT_LOAD_PAT | EXIT_SAVE_PAT);
    assert_int_equal(c.v[VMX_CTL_ENTRY] & ENTRY_IA32E_GUEST, 0);
    assert_int_equal(c.v[VMX_CTL_ENTRY] & ENTRY_LOAD_EFER, ENTRY_LOAD_EFER);
}

static void non_true_controls_force_default1(void **state)
{
    (void)state;
    struct vmx_cpu_facts f = sandy_bridge();
    struct vmx_controls_request req;
    struct vmx_controls c;

    f.basic &= ~VMX_BASIC_TRUE_CTLS;
    vmx_controls_hv_request(&req);
    assert_int_equal(vmx_controls_compute(&f, &req, &c, NULL, NULL), 0);
    assert_within_caps(&f, &c);
    /* The plain MSR forces CR3-load/store exiting (bits 15/16 in allowed-0). */
    assert_int_equal(c.v[VMX_CTL_PROC] & (PROC_CR3_LOAD_EXITING | PROC_CR3_STORE_EXITING),
                     PROC_CR3_LOAD_EXITING | PROC_CR3_STORE_EXITING);
}

static void penryn_names_each_missing_required_control(void **state)
{
    (void)state;
    struct vmx_cpu_facts f = penryn();
    struct vmx_controls_request req;
    struct vmx_controls c;
    struct reports r = {0};

    vmx_controls_hv_request(&req);
    int n = vmx_controls_compute(&f, &req, &c, collect, &r);
    assert_int_equal(n, 4);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.feature[0], "activate VMX-preemption timer");
    assert_non_null(strstr(r.detail[0], "IA32_VMX_PINBASED_CTLS (0x481)"));
    assert_non_null(strstr(r.detail[0], "bit 38 is 0"));
    assert_string_equal(r.feature[1], "enable EPT");
    assert_string_equal(r.feature[2], "enable VPID");
    assert_string_equal(r.feature[3], "unrestricted guest");
    assert_non_null(strstr(r.detail[3], "secondary processor-based"));
    /* Even so, what was computed stays within the CPU's limits. */
    assert_within_caps(&f, &c);
    assert_int_equal(c.v[VMX_CTL_PIN] & PIN_PREEMPT_TIMER, 0);
}

static void secondary_activation_follows_request(void **state)
{
    (void)state;
    struct vmx_cpu_facts f = sandy_bridge();
    struct vmx_controls_request req = {0};
    struct vmx_controls c;

    /* Nothing secondary asked: not activated, field 0. */
    assert_int_equal(vmx_controls_compute(&f, &req, &c, NULL, NULL), 0);
    assert_int_equal(c.v[VMX_CTL_PROC] & PROC_SECONDARY_CTLS, 0);
    assert_int_equal(c.v[VMX_CTL_PROC2], 0);

    /* Only a desired secondary control the CPU lacks: activation dropped. */
    req.desired[VMX_CTL_PROC2] = PROC2_XSAVES;
    assert_int_equal(vmx_controls_compute(&f, &req, &c, NULL, NULL), 0);
    assert_int_equal(c.v[VMX_CTL_PROC] & PROC_SECONDARY_CTLS, 0);
    assert_int_equal(c.v[VMX_CTL_PROC2], 0);

    /* A desired one it has: activated. */
    req.desired[VMX_CTL_PROC2] = PROC2_XSAVES | PROC2_WBINVD_EXITING;
    assert_int_equal(vmx_controls_compute(&f, &req, &c, NULL, NULL), 0);
    assert_int_equal(c.v[VMX_CTL_PROC] & PROC_SECONDARY_CTLS, PROC_SECONDARY_CTLS);
    assert_int_equal(c.v[VMX_CTL_PROC2], PROC2_WBINVD_EXITING);

    /* Required secondary control on a CPU without secondary controls: both named. */
    f.true_proc &= ~((uint64_t)PROC_SECONDARY_CTLS << 32);
    f.procbased &= ~((uint64_t)PROC_SECONDARY_CTLS << 32);
    req.required[VMX_CTL_PROC2] = PROC2_EPT;
    struct reports r = {0};
    assert_int_equal(vmx_controls_compute(&f, &req, &c, collect, &r), 2);
    assert_string_equal(r.feature[0], "activate secondary controls");
    assert_string_equal(r.feature[1], "enable EPT");
    assert_int_equal(c.v[VMX_CTL_PROC2], 0);
}

static void consistency_rules(void **state)
{
    (void)state;
    struct reports r = {0};
    struct vmx_controls c = {{0}};

    c.v[VMX_CTL_PIN] = PIN_VIRTUAL_NMIS;
    c.v[VMX_CTL_PROC] = PROC_NMI_WINDOW | PROC_SECONDARY_CTLS;
    c.v[VMX_CTL_PROC2] = PROC2_UNRESTRICTED;
    c.v[VMX_CTL_EXIT] = EXIT_SAVE_PREEMPT_TIMER;
    assert_int_equal(vmx_controls_check_consistency(&c, collect, &r), 3);
    assert_string_equal(r.feature[0], "virtual NMIs");
    assert_string_equal(r.feature[1], "unrestricted guest");
    assert_string_equal(r.feature[2], "save VMX-preemption timer value");

    c.v[VMX_CTL_PIN] = PIN_VIRTUAL_NMIS | PIN_NMI_EXITING | PIN_PREEMPT_TIMER;
    c.v[VMX_CTL_PROC2] = PROC2_UNRESTRICTED | PROC2_EPT;
    assert_int_equal(vmx_controls_check_consistency(&c, NULL, NULL), 0);

    /* NMI-window without virtual NMIs. */
    c.v[VMX_CTL_PIN] = PIN_NMI_EXITING | PIN_PREEMPT_TIMER;
    assert_int_equal(vmx_controls_check_consistency(&c, NULL, NULL), 1);

    /* Unrestricted guest without EPT is harmless when secondary is inactive. */
    c.v[VMX_CTL_PIN] = PIN_VIRTUAL_NMIS | PIN_NMI_EXITING | PIN_PREEMPT_TIMER;
    c.v[VMX_CTL_PROC] = 0;
    c.v[VMX_CTL_PROC2] = PROC2_UNRESTRICTED;
    assert_int_equal(vmx_controls_check_consistency(&c, NULL, NULL), 0);

    /* And compute reports an inconsistent request. */
    struct vmx_cpu_facts f = sandy_bridge();
    struct vmx_controls_request req = {0};
    req.required[VMX_CTL_PIN] = PIN_VIRTUAL_NMIS;
    r.n = 0;
    assert_int_equal(vmx_controls_compute(&f, &req, &c, collect, &r), 1);
    assert_string_equal(r.feature[0], "virtual NMIs");
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(vmx_ctl_bit_name(VMX_CTL_PROC2, 7), "unrestricted guest");
    assert_string_equal(vmx_ctl_bit_name(VMX_CTL_PIN, 6), "activate VMX-preemption timer");
    assert_string_equal(vmx_ctl_bit_name(VMX_CTL_EXIT, 9), "host address-space size");
    assert_string_equal(vmx_ctl_bit_name(VMX_CTL_ENTRY, 9), "IA-32e mode guest");
    assert_string_equal(vmx_ctl_bit_name(VMX_CTL_PROC, 28), "use MSR bitmaps");
    assert_null(vmx_ctl_bit_name(VMX_CTL_PIN, 1));
    assert_null(vmx_ctl_bit_name(VMX_CTL_PIN, 32));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hv_request_on_sandy_bridge),
        cmocka_unit_test(non_true_controls_force_default1),
        cmocka_unit_test(penryn_names_each_missing_required_control),
        cmocka_unit_test(secondary_activation_follows_request),
        cmocka_unit_test(consistency_rules),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
