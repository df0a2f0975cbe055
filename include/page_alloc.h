/*
 * page_alloc.h - allocator of 4 KiB pages over the part of the reserved
 * region the core image does not use.  Physical = virtual in the core's own
 * page tables, so a page's address is also its physical address.  Contiguous
 * runs (for stacks, VMCS/EPT pages, NIC rings), always zeroed.  Pure code,
 * host-tested; callers serialise with their own lock.
 */
#ifndef HV_PAGE_ALLOC_H
#define HV_PAGE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define PAGE_SIZE 4096ull

struct page_pool {
    uintptr_t base;  /* first allocatable page */
    size_t npages;   /* allocatable pages */
    size_t used;     /* pages handed out */
    size_t hint;     /* where the next search starts */
    uint8_t *bitmap; /* 1 bit per page, inside the pool's own memory */
};

/* Carves the bitmap from the start of [mem, mem+size); mem must be page aligned. */
int page_pool_init(struct page_pool *p, void *mem, size_t size);

/* npages contiguous zeroed pages, aligned to align_pages (a power of two), or NULL. */
void *page_alloc_aligned(struct page_pool *p, size_t npages, size_t align_pages);
void *page_alloc(struct page_pool *p, size_t npages);
void page_free(struct page_pool *p, void *addr, size_t npages);

#endif
