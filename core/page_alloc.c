/*
 * page_alloc.c - first-fit bitmap page allocator (see page_alloc.h).  The
 * hypervisor allocates at boot and rarely afterwards (EPT splits), so a
 * bitmap scan is fast enough and easy to audit.
 */
#include "page_alloc.h"

#include <string.h>

static int test(const struct page_pool *p, size_t i)
{
    return p->bitmap[i / 8] >> (i % 8) & 1;
}

static void set(struct page_pool *p, size_t i, int v)
{
    if (v)
        p->bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
    else
        p->bitmap[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

int page_pool_init(struct page_pool *p, void *mem, size_t size)
{
    uintptr_t start = (uintptr_t)mem;
    if (start & (PAGE_SIZE - 1) || size < 2 * PAGE_SIZE)
        return -1;
    size_t total = size / PAGE_SIZE;
    size_t bitmap_pages = (total / 8 + PAGE_SIZE) / PAGE_SIZE;
    if (bitmap_pages >= total)
        return -1;
    p->bitmap = mem;
    memset(p->bitmap, 0, bitmap_pages * PAGE_SIZE);
    p->base = start + bitmap_pages * PAGE_SIZE;
    p->npages = total - bitmap_pages;
    p->used = 0;
    p->hint = 0;
    return 0;
}

void *page_alloc_aligned(struct page_pool *p, size_t npages, size_t align_pages)
{
    if (npages == 0 || npages > p->npages || (align_pages & (align_pages - 1)))
        return NULL;
    if (align_pages == 0)
        align_pages = 1;
    for (int pass = 0; pass < 2; pass++) {
        size_t i = pass == 0 ? p->hint : 0;
        while (i + npages <= p->npages) {
            uintptr_t addr = p->base + i * PAGE_SIZE;
            size_t mis = (addr / PAGE_SIZE) & (align_pages - 1);
            if (mis) {
                i += align_pages - mis;
                continue;
            }
            size_t j = 0;
            while (j < npages && !test(p, i + j))
                j++;
            if (j == npages) {
                for (j = 0; j < npages; j++)
                    set(p, i + j, 1);
                p->used += npages;
                p->hint = i + npages;
                memset((void *)addr, 0, npages * PAGE_SIZE);
                return (void *)addr;
            }
            i += j + 1;
        }
    }
    return NULL;
}

void *page_alloc(struct page_pool *p, size_t npages)
{
    return page_alloc_aligned(p, npages, 1);
}

void page_free(struct page_pool *p, void *addr, size_t npages)
{
    uintptr_t a = (uintptr_t)addr;
    if (!addr || a < p->base || (a - p->base) % PAGE_SIZE)
        return;
    size_t i = (a - p->base) / PAGE_SIZE;
    for (size_t j = 0; j < npages && i + j < p->npages; j++) {
        if (test(p, i + j)) {
            set(p, i + j, 0);
            p->used--;
        }
    }
    if (i < p->hint)
        p->hint = i;
}
