/*
 * vtd_pt.c - second-level page tables for VT-d remapping (Intel VT-d
 * specification 3.x, 3.7 "Second-Level Translation", 9.8 "Second-Level
 * Paging Entries").  Non-leaf entries carry R and W so that only leaves
 * decide; 2 MiB leaves (PS) are used where a whole aligned 2 MiB lies
 * outside the hole.
 */
#include "vtd_pt.h"

#define PAGE  4096ull
#define LARGE (2ull << 20)

int vtd_pt_init(struct vtd_pt *pt, const struct vtd_mem *mem, unsigned levels, bool large)
{
    pt->mem = mem;
    pt->levels = levels;
    pt->large = large;
    pt->root = levels == 3 || levels == 4 ? mem->alloc(mem->ctx) : 0;
    return pt->root ? 0 : -1;
}

static unsigned index_at(uint64_t iova, unsigned level)
{
    return (unsigned)(iova >> (12 + 9 * (level - 1))) & 511;
}

/* The entry for iova at `level` (1 = 4 KiB leaves), creating tables above it. */
static uint64_t *entry_at(struct vtd_pt *pt, uint64_t iova, unsigned level)
{
    uint64_t *t = pt->mem->virt(pt->mem->ctx, pt->root);
    for (unsigned l = pt->levels; l > level; l--) {
        uint64_t *e = &t[index_at(iova, l)];
        if (*e & VTD_PTE_PS)
            return 0; /* a large leaf covers it: not split */
        if (!(*e & (VTD_PTE_R | VTD_PTE_W))) {
            uint64_t p = pt->mem->alloc(pt->mem->ctx);
            if (!p)
                return 0;
            *e = p | VTD_PTE_R | VTD_PTE_W;
        }
        t = pt->mem->virt(pt->mem->ctx, *e & VTD_PTE_ADDR);
    }
    return &t[index_at(iova, level)];
}

int vtd_pt_map(struct vtd_pt *pt, uint64_t iova, uint64_t phys, uint64_t len, uint64_t perm)
{
    if ((iova | phys | len) & (PAGE - 1))
        return -1;
    uint64_t limit = 1ull << (12 + 9 * pt->levels);
    if (iova >= limit || len > limit - iova)
        return -1;
    perm &= VTD_PTE_R | VTD_PTE_W;
    for (uint64_t off = 0; off < len;) {
        uint64_t a = iova + off, p = phys + off;
        bool big = pt->large && !(a & (LARGE - 1)) && !(p & (LARGE - 1)) && len - off >= LARGE;
        uint64_t *e = entry_at(pt, a, big ? 2 : 1);
        if (!e)
            return -1;
        if (big && (*e & (VTD_PTE_R | VTD_PTE_W)) && !(*e & VTD_PTE_PS))
            return -1; /* a table of 4 KiB leaves is there: keep it */
        *e = p | perm | (big ? VTD_PTE_PS : 0);
        off += big ? LARGE : PAGE;
    }
    return 0;
}

int vtd_pt_identity(struct vtd_pt *pt, uint64_t top, uint64_t hole, uint64_t hole_len)
{
    top = (top + PAGE - 1) & ~(PAGE - 1);
    uint64_t hs = hole & ~(PAGE - 1), he = (hole + hole_len + PAGE - 1) & ~(PAGE - 1);
    uint64_t rw = VTD_PTE_R | VTD_PTE_W;
    if (!hole_len || hs >= top)
        return vtd_pt_map(pt, 0, 0, top, rw);
    if (hs && vtd_pt_map(pt, 0, 0, hs, rw))
        return -1;
    if (he < top && vtd_pt_map(pt, he, he, top - he, rw))
        return -1;
    return 0;
}

/* Replaces the 2 MiB leaf *e by a table of the same 512 4 KiB mappings. */
static int split(struct vtd_pt *pt, uint64_t *e)
{
    uint64_t p = pt->mem->alloc(pt->mem->ctx);
    if (!p)
        return -1;
    uint64_t *t = pt->mem->virt(pt->mem->ctx, p);
    uint64_t base = *e & VTD_PTE_ADDR & ~(LARGE - 1), perm = *e & (VTD_PTE_R | VTD_PTE_W);
    for (unsigned i = 0; i < 512; i++)
        t[i] = (base + i * PAGE) | perm;
    *e = p | VTD_PTE_R | VTD_PTE_W; /* one 64-bit store: never half a table */
    return 0;
}

int vtd_pt_unmap(struct vtd_pt *pt, uint64_t iova, uint64_t len)
{
    uint64_t end = (iova + len + PAGE - 1) & ~(PAGE - 1);
    for (uint64_t a = iova & ~(PAGE - 1); a < end; a += PAGE) {
        if (a >> (12 + 9 * pt->levels))
            return 0;
        uint64_t *t = pt->mem->virt(pt->mem->ctx, pt->root);
        for (unsigned l = pt->levels; l >= 1; l--) {
            uint64_t *e = &t[index_at(a, l)];
            if (!(*e & (VTD_PTE_R | VTD_PTE_W)))
                break; /* not mapped */
            if (l == 1) {
                *e = 0;
                break;
            }
            if (*e & VTD_PTE_PS) {
                if (l != 2)
                    return -1; /* 1 GiB leaves are never built here */
                if (!(a & (LARGE - 1)) && end - a >= LARGE) {
                    *e = 0; /* the whole 2 MiB goes */
                    a += LARGE - PAGE;
                    break;
                }
                if (split(pt, e))
                    return -1;
            }
            t = pt->mem->virt(pt->mem->ctx, *e & VTD_PTE_ADDR);
        }
    }
    return 0;
}

uint64_t vtd_pt_lookup(const struct vtd_pt *pt, uint64_t iova, uint64_t *perm)
{
    if (iova >> (12 + 9 * pt->levels))
        return ~0ull;
    const uint64_t *t = pt->mem->virt(pt->mem->ctx, pt->root);
    for (unsigned l = pt->levels; l >= 1; l--) {
        uint64_t e = t[index_at(iova, l)];
        if (!(e & (VTD_PTE_R | VTD_PTE_W)))
            return ~0ull;
        if (l == 1 || (e & VTD_PTE_PS)) {
            uint64_t span = 1ull << (12 + 9 * (l - 1));
            *perm = e & (VTD_PTE_R | VTD_PTE_W);
            return (e & VTD_PTE_ADDR & ~(span - 1)) | (iova & (span - 1));
        }
        t = pt->mem->virt(pt->mem->ctx, e & VTD_PTE_ADDR);
    }
    return ~0ull;
}

uint64_t vtd_pt_identity_pages(uint64_t top, unsigned levels, bool large)
{
    uint64_t gib = (top + (1ull << 30) - 1) >> 30;
    uint64_t n = 1 + (levels == 4 ? (gib + 511) / 512 : 0) + gib;
    /* 4 KiB leaf tables: every 2 MiB without large pages, else the hole's two edges */
    n += large ? 2 : gib * 512;
    return n;
}
