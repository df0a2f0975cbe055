/*
 * ept_pool.h - the page allocator the EPT unit tests give vmx/ept.c and
 * vmx/ept_view.c: host pages stand in for physical ones (the address is the
 * pointer), every page is counted so a test can check that all came back, and
 * `limit` makes the pool run dry on purpose.  Include after cmocka.h.
 */
#ifndef TEST_EPT_POOL_H
#define TEST_EPT_POOL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pool {
    long allocated, freed, limit;
};

static inline void *pool_alloc(void *ctx, uint64_t *phys)
{
    struct pool *p = ctx;
    if (p->limit && p->allocated - p->freed >= p->limit)
        return NULL;
    void *page = aligned_alloc(4096, 4096);
    assert_non_null(page);
    memset(page, 0, 4096);
    p->allocated++;
    *phys = (uint64_t)(uintptr_t)page;
    return page;
}

static inline void *pool_virt(void *ctx, uint64_t phys)
{
    (void)ctx;
    return (void *)(uintptr_t)phys;
}

static inline void pool_free(void *ctx, void *page, uint64_t phys)
{
    struct pool *p = ctx;
    assert_ptr_equal(page, (void *)(uintptr_t)phys);
    free(page);
    p->freed++;
}

#endif /* TEST_EPT_POOL_H */
