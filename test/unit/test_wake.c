/* Unit tests of core/wake.c with the blob of core/wake_blob.S: what
 * wake_install refuses, the three fields it patches with the page's address
 * (each checked against the instruction or table that uses it), the
 * parameters read back, and the blob and parameters fitting in the page. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "wake.h"

extern const uint8_t wake_blob[], wake_blob_end[], wake_blob_params[], wake_blob_gdt[];
extern const uint8_t wake_blob_pm32[], wake_blob_lm64[];
extern const uint32_t wake_blob_patch[3];

static _Alignas(4096) uint8_t page[WAKE_PAGE_SIZE];

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static struct wake_params good(void)
{
    struct wake_params p;
    memset(&p, 0, sizeof p);
    p.cr0 = 0x80010033;
    p.cr3 = 0x7fc01000;
    p.cr4 = 0x668;
    p.efer = 0xd01;
    p.entry = 0xffff800000123456ull;
    p.ncpus = 2;
    p.stack_top[0] = 0x200000;
    p.stack_top[1] = 0x300000;
    return p;
}

static size_t off(const uint8_t *sym)
{
    return (size_t)(sym - wake_blob);
}

/* A refusal names the problem and writes nothing into the page. */
static void refused(uint64_t phys, const struct wake_params *p)
{
    memset(page, 0xa5, sizeof page);
    assert_non_null(wake_install(page, phys, p));
    for (size_t i = 0; i < sizeof page; i++)
        assert_int_equal(page[i], 0xa5);
}

static void test_refusals(void **state)
{
    (void)state;
    struct wake_params p = good();
    refused(0x100000, &p); /* not below 1 MiB */
    refused(0x200000, &p);
    refused(0x9f800, &p); /* not page aligned */
    refused(0x9f004, &p);
    assert_non_null(wake_install(NULL, 0x9f000, &p));
    assert_non_null(wake_install(page, 0x9f000, NULL));

    p.cr3 = 1ull << 32; /* CR3 is loaded in 32-bit mode */
    refused(0x9f000, &p);
    p.cr3 = 0x123456789000ull;
    refused(0x9f000, &p);

    p = good();
    p.ncpus = 0;
    refused(0x9f000, &p);
    p.ncpus = WAKE_MAX_CPUS + 1;
    refused(0x9f000, &p);
    p.ncpus = 0xffffffffu;
    refused(0x9f000, &p);

    p = good();
    p.entry = 0;
    refused(0x9f000, &p);

    p = good();
    p.stack_top[1] = 0; /* the last CPU's stack */
    refused(0x9f000, &p);
    p = good();
    p.stack_top[0] = 0;
    refused(0x9f000, &p);
}

static void test_limits_accepted(void **state)
{
    (void)state;
    struct wake_params p = good();
    p.cr3 = 0xfffff000;                           /* the last page below 4 GiB */
    assert_null(wake_install(page, 0xff000, &p)); /* the last page below 1 MiB */
    assert_null(wake_install(page, 0, &p));
    p.ncpus = WAKE_MAX_CPUS;
    for (unsigned i = 0; i < WAKE_MAX_CPUS; i++)
        p.stack_top[i] = 0x100000 + 0x1000ull * i;
    assert_null(wake_install(page, 0x9f000, &p));
    p.ncpus = 1;
    p.stack_top[1] = 0; /* a stack beyond ncpus is not looked at */
    assert_null(wake_install(page, 0x9f000, &p));
}

/* Each patched field holds phys + its target's offset, and the code that
 * uses it is the instruction the field belongs to. */
static void check_patched(uint64_t phys)
{
    struct wake_params p = good();
    memset(page, 0, sizeof page);
    assert_null(wake_install(page, phys, &p));

    assert_int_equal(page[0], 0xfa); /* cli at offset 0: the real-mode entry */

    /* The GDT pointer: limit of 4 descriptors, base = the GDT in the page. */
    const uint8_t *gdtr = page + wake_blob_patch[0] - 2;
    assert_int_equal(get16(gdtr), 4 * 8 - 1);
    assert_int_equal(get32(gdtr + 2), phys + off(wake_blob_gdt));
    const uint8_t *gdt = page + (get32(gdtr + 2) - phys);
    uint64_t d[4];
    memcpy(d, gdt, sizeof d);
    assert_int_equal(d[0], 0);
    assert_int_equal(d[1], 0x00cf9b000000ffffull); /* 0x08: 32-bit code, flat */
    assert_int_equal(d[2], 0x00cf93000000ffffull); /* 0x10: data, flat */
    assert_int_equal(d[3], 0x00af9b000000ffffull); /* 0x18: 64-bit code */
    /* lgdtl %cs:disp16 (2e 66 0f 01 16) in the real-mode code names that pointer. */
    const uint8_t lgdt[] = {0x2e, 0x66, 0x0f, 0x01, 0x16};
    const uint8_t *at = NULL;
    for (size_t i = 0; i + sizeof lgdt + 2 <= 32 && !at; i++)
        if (!memcmp(page + i, lgdt, sizeof lgdt))
            at = page + i;
    assert_non_null(at);
    assert_int_equal(get16(at + sizeof lgdt), wake_blob_patch[0] - 2);

    /* 16-bit ljmpl (66 ea imm32 sel16) to the 32-bit code at CS 0x08. */
    const uint8_t *j32 = page + wake_blob_patch[1];
    assert_int_equal(j32[-2], 0x66);
    assert_int_equal(j32[-1], 0xea);
    assert_int_equal(get32(j32), phys + off(wake_blob_pm32));
    assert_int_equal(get16(j32 + 4), 0x08);
    assert_int_equal(off(wake_blob_pm32), wake_blob_patch[1] + 6); /* right after it */

    /* 32-bit ljmp (ea imm32 sel16) to the 64-bit code at CS 0x18. */
    const uint8_t *j64 = page + wake_blob_patch[2];
    assert_int_equal(j64[-1], 0xea);
    assert_int_equal(get32(j64), phys + off(wake_blob_lm64));
    assert_int_equal(get16(j64 + 4), 0x18);
    assert_int_equal(off(wake_blob_lm64), wake_blob_patch[2] + 6);

    /* Everything else is the blob as assembled. */
    size_t size = (size_t)(wake_blob_end - wake_blob);
    for (size_t i = 0; i < off(wake_blob_params); i++) {
        int patched = 0;
        for (int k = 0; k < 3; k++)
            patched |= i >= wake_blob_patch[k] && i < wake_blob_patch[k] + 4;
        if (!patched)
            assert_int_equal(page[i], wake_blob[i]);
    }
    assert_true(size <= sizeof page);
}

static void test_patched_fields(void **state)
{
    (void)state;
    check_patched(0x9f000);
    check_patched(0x8000);
    check_patched(0xff000);
    check_patched(0);
}

static void test_params_read_back(void **state)
{
    (void)state;
    struct wake_params p = good();
    p.next_slot = 0;
    memset(page, 0, sizeof page);
    assert_null(wake_install(page, 0x9f000, &p));
    struct wake_params *w = wake_params_of(page);
    assert_ptr_equal(w, page + off(wake_blob_params));
    assert_memory_equal(w, &p, sizeof p);
    /* The trampoline takes slots from the page: rearming is a write there. */
    w->next_slot = 2;
    assert_int_equal(wake_params_of(page)->next_slot, 2);
    assert_int_equal(get32(page + off(wake_blob_params) + offsetof(struct wake_params, next_slot)),
                     2);
}

static void test_fits_in_page(void **state)
{
    (void)state;
    size_t size = (size_t)(wake_blob_end - wake_blob);
    size_t po = off(wake_blob_params);
    assert_true(size <= WAKE_PAGE_SIZE);
    assert_true(po % 8 == 0);
    assert_true(po + sizeof(struct wake_params) <= size);
    /* The code and GDT end before the parameters begin. */
    for (int k = 0; k < 3; k++)
        assert_true(wake_blob_patch[k] + 4 <= po);
    assert_true(off(wake_blob_lm64) < po && off(wake_blob_gdt) + 32 <= po);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),       cmocka_unit_test(test_limits_accepted),
        cmocka_unit_test(test_patched_fields), cmocka_unit_test(test_params_read_back),
        cmocka_unit_test(test_fits_in_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
