/*
 * paging.c - the core's own page tables: an identity map of every physical
 * address below `top` (at least 4 GiB so MMIO such as the local APIC is
 * covered), with 1 GiB pages where the CPU has them (CPUID.80000001:EDX[26])
 * and 2 MiB pages otherwise (SDM Vol. 3A 4.5 4-Level Paging and 5-Level Paging).  Memory types come
 * from the MTRRs with PAT entry 0 (WB), exactly as under the firmware's own map.  The tables live
 * in the reserved region, so they survive the firmware and are what the host state of every VMCS
 * will use.
 */
#include "core.h"
#include "log.h"

#define PTE_P  (1ull << 0)
#define PTE_W  (1ull << 1)
#define PTE_PS (1ull << 7)
#define GIB    (1ull << 30)
#define MIB2   (2ull << 20)

uint64_t paging_build(uint64_t top)
{
    uint32_t a, b, c, d;
    cpuid(0x80000001, 0, &a, &b, &c, &d);
    bool gb_pages = d & (1u << 26);
    if (top < 4 * GIB)
        top = 4 * GIB;
    top = (top + GIB - 1) & ~(GIB - 1);
    uint64_t ngib = top / GIB;
    if (ngib > 512 * 512)
        return 0;

    uint64_t *pml4 = page_alloc(&g_pages, 1);
    uint64_t npdpt = (ngib + 511) / 512;
    uint64_t *pdpt = page_alloc(&g_pages, npdpt);
    uint64_t *pd = gb_pages ? 0 : page_alloc(&g_pages, ngib);
    if (!pml4 || !pdpt || (!gb_pages && !pd))
        return 0;
    for (uint64_t i = 0; i < npdpt; i++)
        pml4[i] = (uint64_t)(uintptr_t)&pdpt[i * 512] | PTE_P | PTE_W;
    for (uint64_t g = 0; g < ngib; g++) {
        if (gb_pages) {
            pdpt[g] = (g * GIB) | PTE_P | PTE_W | PTE_PS;
            continue;
        }
        pdpt[g] = (uint64_t)(uintptr_t)&pd[g * 512] | PTE_P | PTE_W;
        for (uint64_t m = 0; m < 512; m++)
            pd[g * 512 + m] = (g * GIB + m * MIB2) | PTE_P | PTE_W | PTE_PS;
    }
    log_debug("page tables: %llu GiB identity-mapped with %s pages", (unsigned long long)ngib,
              gb_pages ? "1 GiB" : "2 MiB");
    return (uint64_t)(uintptr_t)pml4;
}
