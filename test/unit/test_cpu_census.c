/* Unit tests of core/cpu_census.c: when the loader refuses to start for want of a CPU. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cpu_census.h"

static struct cpu_census mp(uint64_t total, uint64_t enabled)
{
    return (struct cpu_census){
        .mp_services = true, .mp_total = total, .mp_enabled = enabled, .max_cpus = 64};
}

static void test_within_limit_starts(void **state)
{
    (void)state;
    struct cpu_census c = mp(2, 2);
    assert_null(cpu_census_refusal(&c));
    c = mp(64, 64);
    assert_null(cpu_census_refusal(&c));
    c = mp(1, 1);
    assert_null(cpu_census_refusal(&c));
}

static void test_above_limit_refuses(void **state)
{
    (void)state;
    struct cpu_census c = mp(65, 65);
    assert_non_null(cpu_census_refusal(&c));
    c = mp(256, 256);
    assert_string_equal(cpu_census_refusal(&c), "more CPUs than the hypervisor supports");
}

static void test_disabled_cpu_refuses(void **state)
{
    (void)state;
    struct cpu_census c = mp(4, 3);
    assert_non_null(cpu_census_refusal(&c));
}

static void test_no_mp_services(void **state)
{
    (void)state;
    struct cpu_census c = {.max_cpus = 64};
    assert_non_null(cpu_census_refusal(&c)); /* nothing known: refuse */
    c.madt_found = true;
    c.madt_cpus = 4;
    assert_non_null(cpu_census_refusal(&c)); /* APs nobody can launch */
    c.madt_cpus = 1;
    assert_null(cpu_census_refusal(&c)); /* a uniprocessor: the BSP is all */
}

static void test_madt_beyond_mp_services_refuses(void **state)
{
    (void)state;
    struct cpu_census c = mp(2, 2);
    c.madt_found = true;
    c.madt_cpus = 2;
    assert_null(cpu_census_refusal(&c));
    c.madt_cpus = 3;
    assert_non_null(cpu_census_refusal(&c));
}

/* An MADT with the given entries after its 44-byte head. */
static size_t madt(uint8_t *buf, const uint8_t *entries, size_t n)
{
    memset(buf, 0, 44);
    memcpy(buf, "APIC", 4);
    memcpy(buf + 44, entries, n);
    return 44 + n;
}

static void test_madt_counts(void **state)
{
    (void)state;
    uint8_t buf[256];
    const uint8_t e[] = {
        0, 8,  0, 0, 1, 0, 0,    0,                           /* LAPIC 0 enabled */
        0, 8,  1, 1, 0, 0, 0,    0,                           /* LAPIC 1: neither flag (absent) */
        0, 8,  2, 2, 2, 0, 0,    0,                           /* LAPIC 2 online capable */
        1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0,            /* an I/O APIC: not a CPU */
        9, 16, 0, 0, 0, 1, 0,    0,    1, 0, 0, 0, 3, 0, 0, 0 /* x2APIC 256 enabled */
    };
    size_t len = madt(buf, e, sizeof(e));
    assert_int_equal(cpu_census_madt(buf, len), 3);
    assert_int_equal(cpu_census_madt(buf, 44), 0);
}

static void test_madt_malformed(void **state)
{
    (void)state;
    uint8_t buf[256] = {0};
    assert_int_equal(cpu_census_madt(buf, 20), -1);
    assert_int_equal(cpu_census_madt(NULL, 100), -1);
    const uint8_t past_end[] = {0, 8, 0, 0, 1, 0};
    assert_int_equal(cpu_census_madt(buf, madt(buf, past_end, sizeof(past_end))), -1);
    const uint8_t zero_len[] = {0, 0, 0, 0, 1, 0, 0, 0};
    assert_int_equal(cpu_census_madt(buf, madt(buf, zero_len, sizeof(zero_len))), -1);
    const uint8_t short_lapic[] = {0, 4, 0, 0};
    assert_int_equal(cpu_census_madt(buf, madt(buf, short_lapic, sizeof(short_lapic))), -1);
    const uint8_t short_x2[] = {9, 8, 0, 0, 0, 0, 0, 0};
    assert_int_equal(cpu_census_madt(buf, madt(buf, short_x2, sizeof(short_x2))), -1);
    const uint8_t odd_tail[] = {0, 8, 0, 0, 1, 0, 0, 0, 5};
    assert_int_equal(cpu_census_madt(buf, madt(buf, odd_tail, sizeof(odd_tail))), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_within_limit_starts),
        cmocka_unit_test(test_above_limit_refuses),
        cmocka_unit_test(test_disabled_cpu_refuses),
        cmocka_unit_test(test_no_mp_services),
        cmocka_unit_test(test_madt_beyond_mp_services_refuses),
        cmocka_unit_test(test_madt_counts),
        cmocka_unit_test(test_madt_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
