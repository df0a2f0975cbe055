/*
 * Unit tests of vmx/policy.c: the guest's view of CPUID and the VMX MSRs,
 * the CR4 write rule, and IPI destination matching for the software
 * INIT/SIPI/NMI delivery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmx/vmx_defs.h"
#include "vmx/vmx_policy.h"

static void cpuid_rules(void **st)
{
    (void)st;
    uint32_t r[4] = {0x906ea, 0x800, 0xffbaffff, 0xbfebfbff};
    cpuid_filter(1, false, r);
    assert_int_equal(r[2] & CPUID1_ECX_VMX, 0);
    assert_int_equal(r[2] & CPUID1_ECX_HYPERVISOR, 0);
    assert_int_equal(r[2] & (CPUID1_ECX_DTES64 | CPUID1_ECX_DS_CPL), 0);
    assert_int_equal(r[3] & CPUID1_EDX_DS, 0); /* no debug store: DS_AREA #GPs */
    assert_int_equal(r[2] | CPUID1_ECX_VMX | CPUID1_ECX_HYPERVISOR | CPUID1_ECX_DTES64 |
                         CPUID1_ECX_DS_CPL,
                     0xffbaffff | (1u << 31));
    assert_int_equal(r[3] | CPUID1_EDX_DS, 0xbfebfbff);
    assert_int_equal(r[0], 0x906ea); /* other registers untouched */
    uint32_t h[4] = {1, 0, 0, 0};
    cpuid_filter(1, true, h);
    assert_int_equal(h[2], CPUID1_ECX_HYPERVISOR);
    uint32_t other[4] = {0, 0, CPUID1_ECX_VMX, 0};
    cpuid_filter(7, false, other); /* only leaf 1 is touched */
    assert_int_equal(other[2], CPUID1_ECX_VMX);

    uint32_t l[4];
    assert_false(cpuid_hv_leaf(0x40000000u, false, l)); /* off: passes through */
    assert_true(cpuid_hv_leaf(0x40000000u, true, l));
    assert_int_equal(l[0], 0x40000000u);
    char vendor[13];
    for (int i = 0; i < 12; i++)
        vendor[i] = (char)(l[1 + i / 4] >> (8 * (i % 4)));
    vendor[12] = 0;
    assert_string_equal(vendor, "HVKVMIHVKVMI");
    assert_true(cpuid_hv_leaf(0x40000001u, true, l));
    assert_int_equal(l[0] | l[1] | l[2] | l[3], 0);
    assert_false(cpuid_hv_leaf(0x3fffffffu, true, l));
    assert_false(cpuid_hv_leaf(0x40000100u, true, l));
}

static void msr_rules(void **st)
{
    (void)st;
    assert_true(feature_control_guest_view(0x5) == 0x1);
    assert_true(feature_control_guest_view(0x0) == 0x1);
    assert_true(feature_control_guest_view(0xff07) == 0xff01); /* other bits kept */
    assert_true(msr_is_vmx_capability(0x480));
    assert_true(msr_is_vmx_capability(0x491));
    assert_false(msr_is_vmx_capability(0x47f));
    assert_false(msr_is_vmx_capability(0x493));
    assert_false(msr_is_vmx_capability(MSR_IA32_FEATURE_CONTROL));
}

static void cr4_rules(void **st)
{
    (void)st;
    uint64_t fixed1 = 0x3727ff; /* a CPU with VMXE, SMXE, FSGSBASE, PCIDE, OSXSAVE, SMEP, SMAP */
    assert_true(cr4_write_allowed(0x6f0, fixed1));
    assert_false(cr4_write_allowed(0x6f0 | CR4_VMXE, fixed1));
    assert_false(cr4_write_allowed(1ull << 12, fixed1)); /* LA57 not supported */
    assert_false(cr4_write_allowed(1ull << 40, fixed1));
}

static struct ipi_target T(uint32_t id, bool self) {
    struct ipi_target t = {id, 0, 0xffffffffu, self};
    return t;
}

#define INIT_PHYS 0x4500u
#define LOGICAL   (1u << 11)
#define SELF      (1u << 18)
#define ALL       (2u << 18)
#define OTHERS    (3u << 18)

static void
ipi_destinations(void **st)
{
    (void)st;
    struct ipi_target me = T(0, true), ap = T(2, false);
    /* shorthands ignore the destination field */
    assert_true(ipi_reaches(&me, INIT_PHYS | SELF, 7, false));
    assert_false(ipi_reaches(&ap, INIT_PHYS | SELF, 2, false));
    assert_true(ipi_reaches(&me, INIT_PHYS | ALL, 7, false));
    assert_true(ipi_reaches(&ap, INIT_PHYS | ALL, 7, false));
    assert_false(ipi_reaches(&me, INIT_PHYS | OTHERS, 0, false));
    assert_true(ipi_reaches(&ap, INIT_PHYS | OTHERS, 0, false));
    /* physical */
    assert_true(ipi_reaches(&ap, INIT_PHYS, 2, false));
    assert_false(ipi_reaches(&ap, INIT_PHYS, 3, false));
    assert_true(ipi_reaches(&ap, INIT_PHYS, 0xff, false)); /* xAPIC broadcast */
    struct ipi_target big = T(0x102, false);
    assert_true(ipi_reaches(&big, INIT_PHYS, 0x102, true));
    assert_false(ipi_reaches(&big, INIT_PHYS, 0x02, true));
    assert_true(ipi_reaches(&big, INIT_PHYS, 0xffffffffu, true));
    /* x2APIC logical: cluster 0x10, bit 2 */
    assert_true(ipi_reaches(&big, INIT_PHYS | LOGICAL, (0x10u << 16) | 4, true));
    assert_false(ipi_reaches(&big, INIT_PHYS | LOGICAL, (0x10u << 16) | 2, true));
    assert_false(ipi_reaches(&big, INIT_PHYS | LOGICAL, (0x11u << 16) | 4, true));
    /* xAPIC logical, flat model: LDR bit set by the guest */
    struct ipi_target flat = {1, 0x02000000u, 0xffffffffu, false};
    assert_true(ipi_reaches(&flat, INIT_PHYS | LOGICAL, 0x03, false));
    assert_false(ipi_reaches(&flat, INIT_PHYS | LOGICAL, 0x04, false));
    /* xAPIC logical, cluster model: cluster 1, member bit 2 */
    struct ipi_target cl = {5, 0x12000000u, 0x0fffffffu, false};
    assert_true(ipi_reaches(&cl, INIT_PHYS | LOGICAL, 0x12, false));
    assert_true(ipi_reaches(&cl, INIT_PHYS | LOGICAL, 0x16, false));
    assert_false(ipi_reaches(&cl, INIT_PHYS | LOGICAL, 0x22, false));
    assert_false(ipi_reaches(&cl, INIT_PHYS | LOGICAL, 0x11, false));
}

static void bitmaps(void **st)
{
    (void)st;
    static uint8_t bm[4096];
    msr_bitmap_intercept(bm, MSR_IA32_FEATURE_CONTROL, true, true); /* 0x3a */
    msr_bitmap_intercept(bm, MSR_X2APIC_ICR, false, true);          /* 0x830 */
    msr_bitmap_intercept(bm, MSR_IA32_EFER, true, false);           /* 0xc0000080 */
    msr_bitmap_intercept(bm, 0x40000000u, true, true);              /* outside: ignored */
    /* the exact bits of SDM 25.6.9 */
    assert_int_equal(bm[0x3a / 8], 1 << (0x3a % 8));
    assert_int_equal(bm[2048 + 0x3a / 8], 1 << (0x3a % 8));
    assert_int_equal(bm[0x830 / 8], 0);
    assert_int_equal(bm[2048 + 0x830 / 8], 1 << (0x830 % 8));
    assert_int_equal(bm[1024 + 0x80 / 8], 1);
    assert_int_equal(bm[3072 + 0x80 / 8], 0);
    unsigned set = 0;
    for (int i = 0; i < 4096; i++)
        set += (unsigned)__builtin_popcount(bm[i]);
    assert_int_equal(set, 4);
    assert_true(msr_bitmap_exits(bm, 0x3a, false));
    assert_true(msr_bitmap_exits(bm, 0x3a, true));
    assert_false(msr_bitmap_exits(bm, 0x830, false));
    assert_true(msr_bitmap_exits(bm, 0x830, true));
    assert_true(msr_bitmap_exits(bm, MSR_IA32_EFER, false));
    assert_false(msr_bitmap_exits(bm, MSR_IA32_EFER, true));
    assert_false(msr_bitmap_exits(bm, 0x1b, false));
    assert_true(msr_bitmap_exits(bm, 0x40000000u, false)); /* outside the ranges: always */

    static uint8_t a[4096], b[4096];
    io_bitmap_intercept(a, b, 0x8900);
    io_bitmap_intercept(a, b, 0xcf8);
    assert_int_equal(b[0x900 / 8], 1 << (0x900 % 8));
    assert_int_equal(a[0xcf8 / 8], 1 << (0xcf8 % 8));
    assert_int_equal(a[0x8900 % 0x8000 / 8], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cpuid_rules), cmocka_unit_test(msr_rules),
        cmocka_unit_test(cr4_rules),   cmocka_unit_test(ipi_destinations),
        cmocka_unit_test(bitmaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
