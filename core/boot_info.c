/*
 * boot_info.c - checks and memory-map helpers for the boot info (see
 * boot_info.h).  No C library: it is linked into the loader as well.
 */
#include "boot_info.h"

const char *boot_info_check(const struct boot_info *bi)
{
    if (!bi)
        return "no boot info";
    if (bi->magic != BOOT_INFO_MAGIC)
        return "bad magic";
    if (bi->version != BOOT_INFO_VERSION)
        return "unsupported version";
    if (bi->size != sizeof(*bi))
        return "size mismatch between loader and core";
    if (bi->region_size == 0 || (bi->region_base & 0xfff) || (bi->region_size & 0xfff))
        return "reserved region not page aligned";
    if (bi->image_base < bi->region_base ||
        bi->image_base + bi->image_size > bi->region_base + bi->region_size)
        return "core image outside the reserved region";
    if (bi->ncpus == 0 || bi->ncpus > BI_MAX_CPUS)
        return "bad CPU count";
    if (bi->bsp >= bi->ncpus || !(bi->cpus[bi->bsp].flags & BI_CPU_BSP))
        return "BSP not in the CPU list";
    if (bi->nmem == 0 || bi->nmem > BI_MAX_MEM)
        return "bad memory map size";
    for (uint32_t i = 1; i < bi->nmem; i++)
        if (bi->mem[i].base < bi->mem[i - 1].base + bi->mem[i - 1].size)
            return "memory map not sorted or overlapping";
    return 0;
}

uint32_t bi_mem_normalize(struct bi_mem_range *m, uint32_t n)
{
    /* insertion sort: maps are a few hundred entries at most */
    for (uint32_t i = 1; i < n; i++) {
        struct bi_mem_range t = m[i];
        uint32_t j = i;
        while (j > 0 && m[j - 1].base > t.base) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = t;
    }
    uint32_t out = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (m[i].size == 0)
            continue;
        if (out && m[out - 1].type == m[i].type && m[out - 1].attr == m[i].attr &&
            m[out - 1].base + m[out - 1].size == m[i].base) {
            m[out - 1].size += m[i].size;
            continue;
        }
        m[out++] = m[i];
    }
    return out;
}

bool bi_mem_is_ram(uint32_t type)
{
    return type != BI_EFI_MMIO && type != BI_EFI_MMIO_PORT;
}

uint64_t bi_mem_top(const struct bi_mem_range *m, uint32_t n)
{
    uint64_t top = 0;
    for (uint32_t i = 0; i < n; i++)
        if (m[i].base + m[i].size > top)
            top = m[i].base + m[i].size;
    return top;
}

bool bi_mem_is_guest_ram(uint32_t type)
{
    switch (type) {
    case BI_EFI_LOADER_CODE:
    case BI_EFI_LOADER_DATA:
    case BI_EFI_BS_CODE:
    case BI_EFI_BS_DATA:
    case BI_EFI_RT_CODE:
    case BI_EFI_RT_DATA:
    case BI_EFI_CONVENTIONAL:
    case BI_EFI_ACPI_RECLAIM:
    case BI_EFI_ACPI_NVS:
    case BI_EFI_PERSISTENT:
        return true;
    default:
        return false;
    }
}

bool bi_guest_ram(const struct boot_info *bi, uint64_t gpa, uint64_t len)
{
    if (!len || gpa + len < gpa)
        return false;
    uint64_t end = gpa + len;
    if (gpa < bi->region_base + bi->region_size && bi->region_base < end)
        return false;
    /* The map is sorted (boot_info_check): walk the ranges that cover [gpa, end). */
    for (uint32_t i = 0; i < bi->nmem && i < BI_MAX_MEM; i++) {
        const struct bi_mem_range *m = &bi->mem[i];
        if (gpa >= m->base + m->size)
            continue;
        if (gpa < m->base || !bi_mem_is_guest_ram(m->type))
            return false; /* a hole before this range, or not RAM */
        if (end <= m->base + m->size)
            return true;
        gpa = m->base + m->size;
    }
    return false;
}
