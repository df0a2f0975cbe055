/* Unit tests of vtd/vtd_pt.c: the identity map leaves exactly the hole
 * unmapped, at both edges and with and without 2 MiB leaves; single ranges
 * map where asked and nowhere else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vtd/vtd_pt.h"

#define NPAGES 4096
#define MIB    (1ull << 20)
#define GIB    (1ull << 30)

/* Table pages in an array; "physical" address = (index + 1) * 4096. */
static uint64_t (*pages)[512];
static unsigned used, limit;

static uint64_t alloc(void *ctx)
{
    (void)ctx;
    if (used == limit)
        return 0;
    memset(pages[used], 0, 4096);
    return (uint64_t)++used * 4096;
}

static uint64_t *virt(void *ctx, uint64_t phys)
{
    (void)ctx;
    assert_true(phys >= 4096 && phys / 4096 <= used);
    return pages[phys / 4096 - 1];
}

static const struct vtd_mem mem = {alloc, virt, NULL};

static int setup(void **state)
{
    (void)state;
    pages = calloc(NPAGES, 4096);
    used = 0;
    limit = NPAGES;
    return pages ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(pages);
    return 0;
}

static void expect_identity(const struct vtd_pt *pt, uint64_t a)
{
    uint64_t perm = 0;
    assert_int_equal(vtd_pt_lookup(pt, a, &perm), a);
    assert_int_equal(perm, VTD_PTE_R | VTD_PTE_W);
}

static void expect_unmapped(const struct vtd_pt *pt, uint64_t a)
{
    uint64_t perm;
    assert_int_equal(vtd_pt_lookup(pt, a, &perm), ~0ull);
}

static void check_hole(unsigned levels, bool large, uint64_t hole, uint64_t len)
{
    struct vtd_pt pt;
    used = 0;
    assert_int_equal(vtd_pt_init(&pt, &mem, levels, large), 0);
    uint64_t top = 4 * GIB;
    assert_int_equal(vtd_pt_identity(&pt, top, hole, len), 0);
    assert_true(used <= vtd_pt_identity_pages(top, levels, large));
    expect_identity(&pt, 0);
    expect_identity(&pt, hole - 1);
    expect_identity(&pt, hole - 4096);
    expect_unmapped(&pt, hole);
    expect_unmapped(&pt, hole + 4095);
    expect_unmapped(&pt, hole + len / 2);
    expect_unmapped(&pt, hole + len - 1);
    expect_identity(&pt, hole + len);
    expect_identity(&pt, hole + len + 12345);
    expect_identity(&pt, top - 1);
    expect_unmapped(&pt, top);
}

static void test_identity_hole_large(void **state)
{
    (void)state;
    check_hole(4, true, 0x7e000000, 64 * MIB);
    check_hole(4, true, 0x7e000000, 17 * MIB); /* ends inside a 2 MiB page */
    check_hole(3, true, 0x40000000, 16 * MIB);
}

static void test_identity_hole_small(void **state)
{
    (void)state;
    check_hole(4, false, 0x7e000000, 17 * MIB);
    check_hole(3, false, 0x1000000, 2 * MIB);
}

static void test_map_single_range(void **state)
{
    (void)state;
    struct vtd_pt pt;
    used = 0;
    assert_int_equal(vtd_pt_init(&pt, &mem, 4, true), 0);
    expect_unmapped(&pt, 0x7e003000);
    assert_int_equal(vtd_pt_map(&pt, 0x7e003000, 0x7e003000, 3 * 4096, VTD_PTE_R | VTD_PTE_W), 0);
    expect_unmapped(&pt, 0x7e002fff);
    expect_identity(&pt, 0x7e003000);
    expect_identity(&pt, 0x7e005fff);
    expect_unmapped(&pt, 0x7e006000);
    /* misaligned or beyond the width: refused */
    assert_int_equal(vtd_pt_map(&pt, 0x1001, 0x1001, 4096, VTD_PTE_R), -1);
    assert_int_equal(vtd_pt_map(&pt, 1ull << 48, 0, 4096, VTD_PTE_R), -1);
    /* a 2 MiB leaf is not silently split by a later 4 KiB map */
    assert_int_equal(vtd_pt_map(&pt, 0x200000, 0x200000, 2 * MIB, VTD_PTE_R), 0);
    assert_int_equal(vtd_pt_map(&pt, 0x201000, 0x201000, 4096, VTD_PTE_R), -1);
}

static void test_unmap_splits_large_pages(void **state)
{
    (void)state;
    struct vtd_pt pt;
    used = 0;
    assert_int_equal(vtd_pt_init(&pt, &mem, 4, true), 0);
    assert_int_equal(vtd_pt_identity(&pt, 4 * GIB, 0x7e000000, 64 * MIB), 0);
    unsigned before = used;
    /* a 128 KiB BAR inside a 2 MiB leaf: one split, the rest still mapped */
    assert_int_equal(vtd_pt_unmap(&pt, 0xfebc0000, 0x20000), 0);
    assert_int_equal(used, before + 1);
    expect_identity(&pt, 0xfebbf000);
    expect_unmapped(&pt, 0xfebc0000);
    expect_unmapped(&pt, 0xfebdffff);
    expect_identity(&pt, 0xfebe0000);
    expect_identity(&pt, 0xfea00000);
    /* an unaligned one-byte range takes its page */
    assert_int_equal(vtd_pt_unmap(&pt, 0xfed90123, 1), 0);
    expect_unmapped(&pt, 0xfed90000);
    expect_identity(&pt, 0xfed91000);
    expect_identity(&pt, 0xfed8f000);
    /* whole 2 MiB pages go without a split; the hole stays a hole */
    before = used;
    assert_int_equal(vtd_pt_unmap(&pt, 0x40000000, 4 * MIB), 0);
    assert_int_equal(used, before);
    expect_unmapped(&pt, 0x40000000);
    expect_unmapped(&pt, 0x403fffff);
    expect_identity(&pt, 0x40400000);
    assert_int_equal(vtd_pt_unmap(&pt, 0x7e000000, 4096), 0);
    expect_unmapped(&pt, 0x7e000000);
    /* beyond the width: nothing to do */
    assert_int_equal(vtd_pt_unmap(&pt, 1ull << 48, 4096), 0);
}

static void test_out_of_pages(void **state)
{
    (void)state;
    struct vtd_pt pt;
    used = 0;
    limit = 3;
    assert_int_equal(vtd_pt_init(&pt, &mem, 4, false), 0);
    assert_int_equal(vtd_pt_identity(&pt, GIB, 0, 0), -1);
    limit = NPAGES;
    assert_int_equal(vtd_pt_init(&pt, &mem, 5, true), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_hole_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_hole_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_single_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmap_splits_large_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_pages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
