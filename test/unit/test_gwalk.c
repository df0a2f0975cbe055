/*
 * Unit tests of vmx/gwalk.c: guest-linear to guest-physical in every paging
 * mode, over a fake guest memory built in the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmx/gwalk.h"

#define MEM (4u << 20)
static uint8_t mem[MEM];

static int rd(void *ctx, uint64_t gpa, uint64_t *val)
{
    (void)ctx;
    if (gpa + 8 > MEM)
        return -1;
    memcpy(val, mem + gpa, 8);
    return 0;
}

static void put64(uint64_t a, uint64_t v)
{
    memcpy(mem + a, &v, 8);
}

static void put32(uint64_t a, uint32_t v)
{
    memcpy(mem + a, &v, 4);
}

#define CR0_PG  (1ull << 31)
#define CR0_PE  1ull
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define LMA     (1ull << 10)

static void no_paging(void **st)
{
    (void)st;
    struct gwalk_regs r = {CR0_PE, 0, 0, 0};
    uint64_t gpa;
    assert_int_equal(gwalk(&r, 0x123456789ull, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x23456789ull);
}

static void four_level(void **st)
{
    (void)st;
    memset(mem, 0, MEM);
    /* PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000. */
    uint64_t gla = 0xffff800000201234ull; /* PML4 256, PDPT 0, PD 1, PT 1 */
    put64(0x1000 + 256 * 8, 0x2000 | 3);
    put64(0x2000 + 0 * 8, 0x3000 | 3);
    put64(0x3000 + 1 * 8, 0x4000 | 3);
    put64(0x4000 + 1 * 8, 0x77000 | 3);
    struct gwalk_regs r = {CR0_PG | CR0_PE, 0x1000, CR4_PAE, LMA | (1ull << 8)};
    uint64_t gpa;
    assert_int_equal(gwalk(&r, gla, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x77234ull);
    /* a 2 MiB page at PD index 2 */
    put64(0x3000 + 2 * 8, 0x200000 | 0x83);
    assert_int_equal(gwalk(&r, 0xffff800000412345ull, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x212345ull);
    /* a 1 GiB page at PDPT index 1 */
    put64(0x2000 + 1 * 8, 0x40000000 | 0x83);
    assert_int_equal(gwalk(&r, 0xffff800040000010ull, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x40000010ull);
    /* not present */
    assert_int_equal(gwalk(&r, 0x1000, rd, NULL, &gpa), GWALK_NOT_PRESENT);
    /* 5-level paging is refused, not misread */
    r.cr4 |= 1ull << 12;
    assert_int_equal(gwalk(&r, gla, rd, NULL, &gpa), GWALK_UNSUPPORTED);
}

static void pae(void **st)
{
    (void)st;
    memset(mem, 0, MEM);
    put64(0x1000 + 3 * 8, 0x2000 | 1); /* PDPTE 3 */
    put64(0x2000 + 5 * 8, 0x3000 | 3);
    put64(0x3000 + 7 * 8, 0x9000 | 3);
    struct gwalk_regs r = {CR0_PG | CR0_PE, 0x1000, CR4_PAE, 0};
    uint64_t gpa;
    uint64_t gla = (3ull << 30) | (5ull << 21) | (7ull << 12) | 0xabc;
    assert_int_equal(gwalk(&r, gla, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x9abcull);
}

static void legacy_32bit(void **st)
{
    (void)st;
    memset(mem, 0, MEM);
    put32(0x1000 + 1 * 4, 0x2000 | 3);        /* PDE 1 */
    put32(0x2000 + 2 * 4, 0x5000 | 3);        /* PTE 2 */
    put32(0x1000 + 3 * 4, 0x00c00000 | 0x83); /* PDE 3: 4 MiB page at 12 MiB */
    struct gwalk_regs r = {CR0_PG | CR0_PE, 0x1000, CR4_PSE, 0};
    uint64_t gpa;
    assert_int_equal(gwalk(&r, (1u << 22) | (2u << 12) | 0x10, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x5010ull);
    assert_int_equal(gwalk(&r, (3u << 22) | 0x12345, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0xc12345ull);
    /* without CR4.PSE the PS bit is ignored and the entry is a table pointer */
    r.cr4 = 0;
    assert_int_equal(gwalk(&r, (3u << 22) | 0x12345, rd, NULL, &gpa), GWALK_BAD_MEMORY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_paging),
        cmocka_unit_test(four_level),
        cmocka_unit_test(pae),
        cmocka_unit_test(legacy_32bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
