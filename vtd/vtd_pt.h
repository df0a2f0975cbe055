/*
 * vtd_pt.h - VT-d second-level page tables (Intel VT-d specification 3.x,
 * 9.8 "Second-Level Paging Entries"): build an identity map of the address
 * space with a hole (the hypervisor's region), map single ranges (the
 * hypervisor NIC's rings), look an address up.  Pure: tables are reached
 * through the caller's allocator and phys->pointer function, so host tests
 * walk them in ordinary memory.
 */
#ifndef HV_VTD_PT_H
#define HV_VTD_PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VTD_PTE_R    (1ull << 0)
#define VTD_PTE_W    (1ull << 1)
#define VTD_PTE_PS   (1ull << 7) /* large page at a non-leaf level */
#define VTD_PTE_ADDR 0x000ffffffffff000ull

struct vtd_mem {
    /* One zeroed, 4 KiB aligned page: its physical address, 0 when out. */
    uint64_t (*alloc)(void *ctx);
    /* Pointer to the page at physical address phys. */
    uint64_t *(*virt)(void *ctx, uint64_t phys);
    void *ctx;
};

struct vtd_pt {
    const struct vtd_mem *mem;
    uint64_t root;   /* physical address of the top-level table */
    unsigned levels; /* 3 (39-bit) or 4 (48-bit) */
    bool large;      /* 2 MiB leaves allowed (CAP.SLLPS bit 0) */
};

/* Allocates the top-level table.  0 on success, -1 when out of pages. */
int vtd_pt_init(struct vtd_pt *pt, const struct vtd_mem *mem, unsigned levels, bool large);

/*
 * Maps [iova, iova + len) to [phys, phys + len) with perm (VTD_PTE_R|W).
 * Page aligned; an existing mapping is replaced only where it is a 4 KiB
 * leaf.  0 on success, -1 when out of pages or the range does not fit.
 */
int vtd_pt_map(struct vtd_pt *pt, uint64_t iova, uint64_t phys, uint64_t len, uint64_t perm);

/*
 * Unmaps [iova, iova + len) (widened to whole pages), splitting a 2 MiB
 * leaf that covers it only in part into 4 KiB leaves.  The caller
 * invalidates the IOTLB.  0, or -1 when out of pages.
 */
int vtd_pt_unmap(struct vtd_pt *pt, uint64_t iova, uint64_t len);

/* Identity-maps [0, top) read/write except [hole, hole + hole_len). */
int vtd_pt_identity(struct vtd_pt *pt, uint64_t top, uint64_t hole, uint64_t hole_len);

/* The physical address iova translates to, or ~0 when unmapped; *perm gets R/W. */
uint64_t vtd_pt_lookup(const struct vtd_pt *pt, uint64_t iova, uint64_t *perm);

/* Pages vtd_pt_identity needs at most for this top (for sizing the pool). */
uint64_t vtd_pt_identity_pages(uint64_t top, unsigned levels, bool large);

#endif
