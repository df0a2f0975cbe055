/*
 * gwalk.c - guest page walk (see include/gwalk.h).  Only presence matters
 * here (the guest just executed from or wrote to the address); rights and
 * accessed/dirty bits are left alone.
 */
#include <string.h>

#include "gwalk.h"
#include "x86_arch.h"

#define P      1ull
#define PS     (1ull << 7)
#define ADDR52 0x000ffffffffff000ull

int gwalk(const struct gwalk_regs *r, uint64_t gla, gwalk_read_fn read, void *ctx, uint64_t *gpa)
{
    uint64_t e;
    if (!(r->cr0 & CR0_PG)) {
        *gpa = gla & 0xffffffffull;
        return GWALK_OK;
    }
    if (!(r->cr4 & CR4_PAE)) {
        /* 32-bit paging (4.3): 4-byte entries, 10+10+12. */
        uint32_t la = (uint32_t)gla;
        uint64_t pde_a = (r->cr3 & 0xfffff000u) + ((la >> 22) << 2);
        if (read(ctx, pde_a & ~7ull, &e))
            return GWALK_BAD_MEMORY;
        uint32_t pde = (uint32_t)(e >> ((pde_a & 4) * 8));
        if (!(pde & P))
            return GWALK_NOT_PRESENT;
        if ((pde & PS) && (r->cr4 & CR4_PSE)) {
            /* 4 MiB page: bits 20:13 give address bits 39:32 (PSE-36). */
            *gpa = (pde & 0xffc00000u) | ((uint64_t)((pde >> 13) & 0xff) << 32) | (la & 0x3fffff);
            return GWALK_OK;
        }
        uint64_t pte_a = (pde & 0xfffff000u) + (((la >> 12) & 0x3ff) << 2);
        if (read(ctx, pte_a & ~7ull, &e))
            return GWALK_BAD_MEMORY;
        uint32_t pte = (uint32_t)(e >> ((pte_a & 4) * 8));
        if (!(pte & P))
            return GWALK_NOT_PRESENT;
        *gpa = (pte & 0xfffff000u) | (la & 0xfff);
        return GWALK_OK;
    }
    int level;
    uint64_t table;
    if (r->efer & EFER_LMA) {
        if (r->cr4 & CR4_LA57)
            return GWALK_UNSUPPORTED;
        level = 4;
        table = r->cr3 & ADDR52;
    } else {
        /* PAE (4.4): CR3 points at four PDPTEs, 32-byte aligned. */
        uint32_t la = (uint32_t)gla;
        if (read(ctx, (r->cr3 & 0xffffffe0u) + ((la >> 30) << 3), &e))
            return GWALK_BAD_MEMORY;
        if (!(e & P))
            return GWALK_NOT_PRESENT;
        gla = la;
        level = 2;
        table = e & ADDR52;
    }
    for (; level >= 1; level--) {
        unsigned shift = 12 + 9 * (level - 1);
        if (read(ctx, table + (((gla >> shift) & 511) << 3), &e))
            return GWALK_BAD_MEMORY;
        if (!(e & P))
            return GWALK_NOT_PRESENT;
        if (level == 1 || ((level == 2 || level == 3) && (e & PS))) {
            uint64_t mask = (1ull << shift) - 1;
            *gpa = (e & ADDR52 & ~mask) | (gla & mask);
            return GWALK_OK;
        }
        table = e & ADDR52;
    }
    return GWALK_NOT_PRESENT;
}

int gwalk_read_ram(void *ctx, uint64_t gpa, uint64_t *val)
{
    const struct gwalk_ram *ram = ctx;
    if ((gpa & 7) || !bi_guest_ram(ram->bi, gpa, 8))
        return -1;
    *val = *(const volatile uint64_t *)(ram->host_base + (uintptr_t)gpa);
    return 0;
}

int gwalk_read_linear(const struct gwalk_regs *r, const struct gwalk_ram *ram, uint64_t gla,
                      void *buf, unsigned len)
{
    uint8_t *out = buf;
    while (len) {
        uint64_t gpa;
        int rc = gwalk(r, gla, gwalk_read_ram, (void *)ram, &gpa);
        if (rc)
            return rc;
        unsigned chunk = (unsigned)(0x1000 - (gla & 0xfff));
        if (chunk > len)
            chunk = len;
        if (!bi_guest_ram(ram->bi, gpa, chunk))
            return GWALK_BAD_MEMORY;
        memcpy(out, (const void *)(ram->host_base + (uintptr_t)gpa), chunk);
        out += chunk;
        gla += chunk;
        len -= chunk;
    }
    return GWALK_OK;
}

int gwalk_fetch(const struct gwalk_regs *r, const struct gwalk_ram *ram, uint64_t gla, void *buf,
                unsigned max)
{
    unsigned first = (unsigned)(0x1000 - (gla & 0xfff));
    if (first >= max)
        first = max;
    int rc = gwalk_read_linear(r, ram, gla, buf, first);
    if (rc)
        return rc;
    /* The next page only adds bytes: when it is not readable RAM (MMIO, a
     * hole, not present), what the first page holds may be the whole
     * instruction. */
    if (first < max &&
        gwalk_read_linear(r, ram, gla + first, (uint8_t *)buf + first, max - first) == GWALK_OK)
        return (int)max;
    return (int)first;
}
