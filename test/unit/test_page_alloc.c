/* Unit tests of core/page_alloc.c over a host buffer standing in for the region. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "page_alloc.h"

#define NPAGES 64

static void *region(void)
{
    void *m = aligned_alloc(PAGE_SIZE, NPAGES * PAGE_SIZE);
    memset(m, 0xee, NPAGES * PAGE_SIZE);
    return m;
}

static void test_init_rejects_bad_input(void **state)
{
    (void)state;
    struct page_pool p;
    char *m = region();
    assert_int_equal(page_pool_init(&p, m + 8, 16 * PAGE_SIZE), -1);
    assert_int_equal(page_pool_init(&p, m, PAGE_SIZE), -1);
    free(m);
}

static void test_alloc_zeroed_distinct_and_full(void **state)
{
    (void)state;
    struct page_pool p;
    char *m = region();
    assert_int_equal(page_pool_init(&p, m, NPAGES * PAGE_SIZE), 0);
    assert_int_equal(p.npages, NPAGES - 1); /* one page of bitmap */
    char *seen[NPAGES] = {0};
    size_t n = 0;
    char *a;
    while ((a = page_alloc(&p, 1))) {
        assert_true((uintptr_t)a % PAGE_SIZE == 0);
        assert_true(a >= m + PAGE_SIZE && a < m + NPAGES * PAGE_SIZE);
        for (size_t i = 0; i < PAGE_SIZE; i++)
            assert_int_equal(a[i], 0);
        for (size_t i = 0; i < n; i++)
            assert_ptr_not_equal(seen[i], a);
        seen[n++] = a;
        memset(a, 0x5a, PAGE_SIZE);
    }
    assert_int_equal(n, NPAGES - 1);
    assert_int_equal(p.used, NPAGES - 1);
    page_free(&p, seen[10], 1);
    a = page_alloc(&p, 1);
    assert_ptr_equal(a, seen[10]);
    assert_int_equal(a[100], 0); /* re-zeroed */
    free(m);
}

static void test_contiguous_and_aligned(void **state)
{
    (void)state;
    struct page_pool p;
    char *m = region();
    page_pool_init(&p, m, NPAGES * PAGE_SIZE);
    char *a = page_alloc(&p, 1);
    char *b = page_alloc_aligned(&p, 4, 4);
    assert_non_null(b);
    assert_true(((uintptr_t)b / PAGE_SIZE) % 4 == 0);
    assert_true(b > a);
    assert_null(page_alloc(&p, NPAGES));       /* larger than the pool */
    assert_null(page_alloc_aligned(&p, 1, 3)); /* not a power of two */
    page_free(&p, b, 4);
    char *c = page_alloc(&p, 4);
    assert_non_null(c);
    assert_int_equal(p.used, 5);
    page_free(&p, m, 1); /* not from the pool: ignored */
    assert_int_equal(p.used, 5);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects_bad_input),
        cmocka_unit_test(test_alloc_zeroed_distinct_and_full),
        cmocka_unit_test(test_contiguous_and_aligned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
