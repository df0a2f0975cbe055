/*
 * Unit tests of vmx/mtrr.c: memory types from MTRR snapshots shaped like
 * what OVMF and SeaBIOS program on QEMU/Bochs, plus the precedence corner
 * cases of SDM Vol. 3 11.11.4.1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmx/mtrr.h"
#include "vmx/vmx_defs.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

#define BYTES8(t) (0x0101010101010101ull * (t))

static uint64_t mask_for(unsigned phys_bits, uint64_t size)
{
    return (((1ull << phys_bits) - 1) & ~(size - 1)) | MTRR_MASK_VALID;
}

static void set_var(struct mtrr_state *s, unsigned i, uint64_t base, uint64_t size, unsigned t)
{
    s->var_base[i] = base | t;
    s->var_mask[i] = mask_for(s->phys_bits, size);
}

static struct mtrr_state blank(uint64_t def)
{
    struct mtrr_state s;
    memset(&s, 0, sizeof(s));
    s.cap = 8 | MTRRCAP_FIX | MTRRCAP_WC;
    s.def_type = def;
    s.phys_bits = 40;
    return s;
}

/* OVMF's PlatformPei on QEMU/Bochs: default WB, fixed WB below 640K and UC
 * for 640K-1M, one variable UC range over the 32-bit PCI hole [2G, 4G). */
static struct mtrr_state ovmf_like(void)
{
    struct mtrr_state s = blank(MTRR_DEF_E | MTRR_DEF_FE | MEMTYPE_WB);
    s.fixed[0] = BYTES8(MEMTYPE_WB);
    s.fixed[1] = BYTES8(MEMTYPE_WB);
    set_var(&s, 0, 2 * GiB, 2 * GiB, MEMTYPE_UC);
    return s;
}

/* SeaBIOS (Bochs/QEMU BIOS boot): option-ROM/BIOS area WP, VGA UC,
 * 3.5-4 GiB UC. */
static struct mtrr_state seabios_like(void)
{
    struct mtrr_state s = blank(MTRR_DEF_E | MTRR_DEF_FE | MEMTYPE_WB);
    s.fixed[0] = BYTES8(MEMTYPE_WB);
    s.fixed[1] = BYTES8(MEMTYPE_WB);
    s.fixed[2] = BYTES8(MEMTYPE_UC);
    for (int i = 3; i < 11; i++)
        s.fixed[i] = BYTES8(MEMTYPE_WP);
    set_var(&s, 0, 3 * GiB + 512 * MiB, 512 * MiB, MEMTYPE_UC);
    return s;
}

static void assert_range(const struct mtrr_range *r, uint64_t base, uint64_t len, unsigned t)
{
    assert_int_equal(r->base, base);
    assert_int_equal(r->len, len);
    assert_int_equal(r->type, t);
}

static void ovmf_split(void **state)
{
    (void)state;
    struct mtrr_state s = ovmf_like();
    struct mtrr_range r[16];
    size_t n = mtrr_split(&s, 6 * GiB, r, 16);
    assert_int_equal(n, 5);
    assert_range(&r[0], 0, 640 * KiB, MEMTYPE_WB);
    assert_range(&r[1], 640 * KiB, 384 * KiB, MEMTYPE_UC);
    assert_range(&r[2], 1 * MiB, 2 * GiB - 1 * MiB, MEMTYPE_WB);
    assert_range(&r[3], 2 * GiB, 2 * GiB, MEMTYPE_UC);
    assert_range(&r[4], 4 * GiB, 2 * GiB, MEMTYPE_WB);

    assert_int_equal(mtrr_type_of(&s, 0x9ffff), MEMTYPE_WB);
    assert_int_equal(mtrr_type_of(&s, 0xa0000), MEMTYPE_UC);
    assert_int_equal(mtrr_type_of(&s, 0xfee00000), MEMTYPE_UC); /* LAPIC */
    assert_int_equal(mtrr_type_of(&s, 4 * GiB), MEMTYPE_WB);
}

static void seabios_split(void **state)
{
    (void)state;
    struct mtrr_state s = seabios_like();
    struct mtrr_range r[16];
    size_t n = mtrr_split(&s, 4 * GiB, r, 16);
    assert_int_equal(n, 5);
    assert_range(&r[0], 0, 640 * KiB, MEMTYPE_WB);
    assert_range(&r[1], 640 * KiB, 128 * KiB, MEMTYPE_UC);
    assert_range(&r[2], 768 * KiB, 256 * KiB, MEMTYPE_WP);
    assert_range(&r[3], 1 * MiB, 3 * GiB + 511 * MiB, MEMTYPE_WB);
    assert_range(&r[4], 3 * GiB + 512 * MiB, 512 * MiB, MEMTYPE_UC);
}

static void fixed_range_granularity(void **state)
{
    (void)state;
    struct mtrr_state s = ovmf_like();
    /* One 4K page at 0xC8000 (FIX4K_C8000 byte 0) and one 16K at 0x84000
     * (FIX16K_80000 byte 1) get their own types. */
    s.fixed[4] = BYTES8(MEMTYPE_UC) & ~0xffull;
    s.fixed[4] |= MEMTYPE_WT;
    s.fixed[1] = (BYTES8(MEMTYPE_WB) & ~0xff00ull) | ((uint64_t)MEMTYPE_WC << 8);
    assert_int_equal(mtrr_type_of(&s, 0xc8000), MEMTYPE_WT);
    assert_int_equal(mtrr_type_of(&s, 0xc8fff), MEMTYPE_WT);
    assert_int_equal(mtrr_type_of(&s, 0xc9000), MEMTYPE_UC);
    assert_int_equal(mtrr_type_of(&s, 0x84000), MEMTYPE_WC);
    assert_int_equal(mtrr_type_of(&s, 0x87fff), MEMTYPE_WC);
    assert_int_equal(mtrr_type_of(&s, 0x88000), MEMTYPE_WB);
    assert_int_equal(mtrr_range_type(&s, 0xc8000, 4 * KiB), MEMTYPE_WT);
    assert_int_equal(mtrr_range_type(&s, 0xc8000, 8 * KiB), MTRR_TYPE_MIXED);

    struct mtrr_range r[16];
    size_t n = mtrr_split(&s, 2 * MiB, r, 16);
    assert_int_equal(n, 7);
    assert_range(&r[0], 0, 0x84000, MEMTYPE_WB);
    assert_range(&r[1], 0x84000, 0x4000, MEMTYPE_WC);
    assert_range(&r[2], 0x88000, 0xa0000 - 0x88000, MEMTYPE_WB);
    assert_range(&r[3], 0xa0000, 0xc8000 - 0xa0000, MEMTYPE_UC);
    assert_range(&r[4], 0xc8000, 0x1000, MEMTYPE_WT);
    assert_range(&r[5], 0xc9000, 0x100000 - 0xc9000, MEMTYPE_UC);
    /* Above 1 MiB the variable/default rules apply again. */
    assert_range(&r[6], 0x100000, 1 * MiB, MEMTYPE_WB);
}

static void default_uc_with_stacked_ranges(void **state)
{
    (void)state;
    /* Older BIOS style: default UC, WB ranges [0,2G) and [2G,3G), a UC
     * carve-out [2G-16M, 2G) on top of the WB one: UC wins. */
    struct mtrr_state s = blank(MTRR_DEF_E | MTRR_DEF_FE | MEMTYPE_UC);
    for (int i = 0; i < 11; i++)
        s.fixed[i] = BYTES8(MEMTYPE_WB);
    set_var(&s, 0, 0, 2 * GiB, MEMTYPE_WB);
    set_var(&s, 1, 2 * GiB, 1 * GiB, MEMTYPE_WB);
    set_var(&s, 2, 2 * GiB - 16 * MiB, 16 * MiB, MEMTYPE_UC);
    struct mtrr_range r[8];
    size_t n = mtrr_split(&s, 4 * GiB, r, 8);
    assert_int_equal(n, 4);
    assert_range(&r[0], 0, 2 * GiB - 16 * MiB, MEMTYPE_WB);
    assert_range(&r[1], 2 * GiB - 16 * MiB, 16 * MiB, MEMTYPE_UC);
    assert_range(&r[2], 2 * GiB, 1 * GiB, MEMTYPE_WB);
    assert_range(&r[3], 3 * GiB, 1 * GiB, MEMTYPE_UC);
}

static void overlap_precedence(void **state)
{
    (void)state;
    struct mtrr_state s = blank(MTRR_DEF_E | MEMTYPE_UC);
    set_var(&s, 0, 0, 4 * GiB, MEMTYPE_WB);
    set_var(&s, 1, 16 * MiB, 16 * MiB, MEMTYPE_WT); /* WT + WB -> WT */
    set_var(&s, 2, 64 * MiB, 2 * MiB, MEMTYPE_WC);  /* WC + WB: undefined -> UC */
    set_var(&s, 3, 128 * MiB, 1 * MiB, MEMTYPE_WB); /* WB + WB -> WB */
    set_var(&s, 4, 256 * MiB, 4 * MiB, 2);          /* reserved encoding -> UC */
    assert_int_equal(mtrr_type_of(&s, 16 * MiB), MEMTYPE_WT);
    assert_int_equal(mtrr_type_of(&s, 32 * MiB - 1), MEMTYPE_WT);
    assert_int_equal(mtrr_type_of(&s, 32 * MiB), MEMTYPE_WB);
    assert_int_equal(mtrr_type_of(&s, 64 * MiB), MEMTYPE_UC);
    assert_int_equal(mtrr_type_of(&s, 128 * MiB), MEMTYPE_WB);
    assert_int_equal(mtrr_type_of(&s, 256 * MiB), MEMTYPE_UC);
    assert_int_equal(mtrr_type_of(&s, 5 * GiB), MEMTYPE_UC); /* default */
    /* WC alone (no overlap) keeps WC. */
    set_var(&s, 5, 8 * GiB, 1 * GiB, MEMTYPE_WC);
    assert_int_equal(mtrr_type_of(&s, 8 * GiB + 5), MEMTYPE_WC);
    /* Below 1 MiB with fixed ranges disabled (FE=0): variable rules. */
    s.fixed[0] = BYTES8(MEMTYPE_UC);
    assert_int_equal(mtrr_type_of(&s, 0), MEMTYPE_WB);

    struct mtrr_range r[16];
    size_t n = mtrr_split(&s, 512 * MiB, r, 16);
    assert_int_equal(n, 7);
    assert_range(&r[0], 0, 16 * MiB, MEMTYPE_WB);
    assert_range(&r[1], 16 * MiB, 16 * MiB, MEMTYPE_WT);
    assert_range(&r[2], 32 * MiB, 32 * MiB, MEMTYPE_WB);
    assert_range(&r[3], 64 * MiB, 2 * MiB, MEMTYPE_UC);
    assert_range(&r[4], 66 * MiB, 190 * MiB, MEMTYPE_WB); /* 128M WB+WB merges */
    assert_range(&r[5], 256 * MiB, 4 * MiB, MEMTYPE_UC);
    assert_range(&r[6], 260 * MiB, 252 * MiB, MEMTYPE_WB);
}

static void disabled_and_invalid(void **state)
{
    (void)state;
    struct mtrr_state s = ovmf_like();
    s.def_type &= ~MTRR_DEF_E; /* MTRRs off: everything UC, fixed ignored */
    struct mtrr_range r[4];
    assert_int_equal(mtrr_split(&s, 8 * GiB, r, 4), 1);
    assert_range(&r[0], 0, 8 * GiB, MEMTYPE_UC);

    /* Invalid variable range (valid bit clear) is ignored. */
    s = ovmf_like();
    s.var_mask[0] &= ~MTRR_MASK_VALID;
    assert_int_equal(mtrr_type_of(&s, 3 * GiB), MEMTYPE_WB);
    /* Ranges beyond VCNT are ignored. */
    s = ovmf_like();
    s.cap &= ~0xffull;
    assert_int_equal(mtrr_type_of(&s, 3 * GiB), MEMTYPE_WB);
    /* No fixed-range support in MTRRCAP: FE has no effect. */
    s = ovmf_like();
    s.cap &= ~MTRRCAP_FIX;
    assert_int_equal(mtrr_type_of(&s, 0xa0000), MEMTYPE_WB);
    /* Reserved default type reads as UC. */
    s = blank(MTRR_DEF_E | 7);
    assert_int_equal(mtrr_type_of(&s, 1 * GiB), MEMTYPE_UC);
}

static void split_truncation_and_range_type(void **state)
{
    (void)state;
    struct mtrr_state s = ovmf_like();
    struct mtrr_range r[2];
    memset(r, 0xaa, sizeof(r));
    assert_int_equal(mtrr_split(&s, 6 * GiB, r, 2), 5); /* needs 5, wrote 2 */
    assert_range(&r[1], 640 * KiB, 384 * KiB, MEMTYPE_UC);
    assert_int_equal(mtrr_split(&s, 6 * GiB, NULL, 0), 5);
    assert_int_equal(mtrr_split(&s, 0, r, 2), 0);

    assert_int_equal(mtrr_range_type(&s, 1 * MiB, 1 * GiB), MEMTYPE_WB);
    assert_int_equal(mtrr_range_type(&s, 2 * GiB, 2 * GiB), MEMTYPE_UC);
    assert_int_equal(mtrr_range_type(&s, 2 * GiB - 4 * KiB, 8 * KiB), MTRR_TYPE_MIXED);
    assert_int_equal(mtrr_range_type(&s, 0, 2 * MiB), MTRR_TYPE_MIXED);
    /* A 1 GiB page at 1 GiB is uniform WB, at 0 it is not (low MiB). */
    assert_int_equal(mtrr_range_type(&s, 1 * GiB, 1 * GiB), MEMTYPE_WB);
    assert_int_equal(mtrr_range_type(&s, 0, 1 * GiB), MTRR_TYPE_MIXED);
}

static void non_contiguous_mask(void **state)
{
    (void)state;
    /* 36-bit part; a mask that leaves bit 31 free matches two 256 MiB
     * blocks: [1G, 1G+256M) and [3G, 3G+256M). */
    struct mtrr_state s = blank(MTRR_DEF_E | MEMTYPE_WB);
    s.phys_bits = 36;
    s.var_base[0] = 1 * GiB | MEMTYPE_WC;
    s.var_mask[0] = (0xffffff000ull & ~0x80000000ull & ~(256 * MiB - 1)) | MTRR_MASK_VALID;
    struct mtrr_range r[8];
    size_t n = mtrr_split(&s, 4 * GiB, r, 8);
    assert_int_equal(n, 5);
    assert_range(&r[0], 0, 1 * GiB, MEMTYPE_WB);
    assert_range(&r[1], 1 * GiB, 256 * MiB, MEMTYPE_WC);
    assert_range(&r[2], 1 * GiB + 256 * MiB, 2 * GiB - 256 * MiB, MEMTYPE_WB);
    assert_range(&r[3], 3 * GiB, 256 * MiB, MEMTYPE_WC);
    assert_range(&r[4], 3 * GiB + 256 * MiB, 1 * GiB - 256 * MiB, MEMTYPE_WB);
}

static void beyond_maxphyaddr(void **state)
{
    (void)state;
    /* A range covering everything below 2^36 must not alias above it. */
    struct mtrr_state s = blank(MTRR_DEF_E | MEMTYPE_UC);
    s.phys_bits = 36;
    set_var(&s, 0, 0, 64 * GiB, MEMTYPE_WB);
    assert_int_equal(mtrr_type_of(&s, 64 * GiB - 1), MEMTYPE_WB);
    assert_int_equal(mtrr_type_of(&s, 64 * GiB), MEMTYPE_UC);
    struct mtrr_range r[4];
    assert_int_equal(mtrr_split(&s, 128 * GiB, r, 4), 2);
    assert_range(&r[0], 0, 64 * GiB, MEMTYPE_WB);
    assert_range(&r[1], 64 * GiB, 64 * GiB, MEMTYPE_UC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ovmf_split),
        cmocka_unit_test(seabios_split),
        cmocka_unit_test(fixed_range_granularity),
        cmocka_unit_test(default_uc_with_stacked_ranges),
        cmocka_unit_test(overlap_precedence),
        cmocka_unit_test(disabled_and_invalid),
        cmocka_unit_test(split_truncation_and_range_type),
        cmocka_unit_test(non_contiguous_mask),
        cmocka_unit_test(beyond_maxphyaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
