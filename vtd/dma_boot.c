/*
 * dma_boot.c - the loader's DMA-protection step (see dma_boot.h).  Runs in
 * the EFI loader with the firmware's identity mapping, so physical
 * addresses are pointers.
 */
#include "dma_boot.h"

#include "acpi_find.h"
#include "log.h"
#include "vtd.h"

#define GIB (1ull << 30)

static const uint8_t *identity_map(void *ctx, uint64_t phys, uint64_t len)
{
    (void)ctx;
    if (!phys || phys + len < phys)
        return 0;
    return (const uint8_t *)(uintptr_t)phys;
}

static const char *mode_name(uint32_t m)
{
    return m == DMA_PROT_REQUIRE ? "require" : m == DMA_PROT_OFF ? "off" : "auto";
}

/* `require`: refuse; `auto`: say loudly what is left open and go on. */
static int no_protection(uint32_t mode, const char *why)
{
    if (mode == DMA_PROT_REQUIRE) {
        log_error("refusing to start: dma_protection = require but %s; "
                  "the firmware continues without a hypervisor",
                  why);
        return -1;
    }
    log_warn("DMA PROTECTION OFF: %s; any bus master the guest programs can read and write "
             "the hypervisor's memory (dma_protection = auto)",
             why);
    return 0;
}

int dma_boot_plan(const struct boot_info *bi, struct dma_boot *db)
{
    uint32_t mode = bi->config.dma_protection;
    db->protect = false;
    db->pages = 0;
    if (mode == DMA_PROT_OFF) {
        log_warn("DMA protection disabled by hv.conf (dma_protection = off)");
        return 0;
    }
    struct acpi_found f;
    const char *why = acpi_find(identity_map, 0, bi->acpi_rsdp, "DMAR", &f);
    if (why) {
        log_info("ACPI DMAR: %s", why);
        return no_protection(mode, "the firmware reports no VT-d DMA remapping (no ACPI DMAR)");
    }
    why = dmar_parse(f.data, f.len, &db->info);
    if (why) {
        log_error("ACPI DMAR at 0x%llx: %s", (unsigned long long)f.phys, why);
        return no_protection(mode, "the ACPI DMAR table is invalid");
    }
    db->dmar = f.phys;
    db->top = bi_mem_top(bi->mem, bi->nmem);
    if (db->top < 4 * GIB)
        db->top = 4 * GIB; /* MMIO below 4 GiB stays reachable for peer traffic */
    unsigned levels;
    bool large;
    why = vtd_size(&db->info, db->top, &db->pages, &levels, &large);
    if (why) {
        log_error("VT-d: %s", why);
        db->pages = 0;
        return no_protection(mode, "the remapping units cannot be used");
    }
    for (uint32_t i = 0; i < db->info.ndrhd; i++) {
        const struct dmar_drhd *d = &db->info.drhd[i];
        log_info("VT-d unit %u: registers 0x%llx segment %u%s, %u device scope(s)", i,
                 (unsigned long long)d->reg_base, d->segment,
                 (d->flags & DMAR_INCLUDE_PCI_ALL) ? " INCLUDE_PCI_ALL" : "", d->nscope);
        if (d->segment)
            return no_protection(mode, "a remapping unit serves a PCI segment other than 0");
    }
    for (uint32_t i = 0; i < db->info.nrmrr; i++) {
        const struct dmar_rmrr *r = &db->info.rmrr[i];
        if (r->limit >= bi->region_base && r->base < bi->region_base + bi->region_size)
            return no_protection(mode, "a firmware-reserved DMA range (RMRR) overlaps the region");
    }
    log_info("VT-d: %u unit(s), %u-level tables%s, %llu table pages, map below 0x%llx "
             "(dma_protection = %s)",
             db->info.ndrhd, levels, large ? " with 2 MiB pages" : "",
             (unsigned long long)db->pages, (unsigned long long)db->top, mode_name(mode));
    db->protect = true;
    return 0;
}

int dma_boot_enable(struct dma_boot *db, struct boot_info *bi, uint64_t area)
{
    if (!db->protect)
        return 0;
    struct vtd_plan p = {
        .top = db->top,
        .region_base = bi->region_base,
        .region_len = bi->region_size,
        .nic = bi->nic_claimed != 0,
        .nic_bus = bi->nic_bus,
        .nic_dev = bi->nic_dev,
        .nic_fn = bi->nic_fn,
    };
    const char *why = vtd_protect(area, db->pages, &db->info, &p);
    if (why) {
        log_error("VT-d: %s", why);
        /* A unit that failed half way may still point at the tables: the
         * caller keeps the region reserved. */
        return no_protection(bi->config.dma_protection, "programming the remapping units failed");
    }
    bi->vtd_area = area;
    /* The guest does not get the IOMMU: no DMAR in its ACPI view (its
     * registers are unmapped in EPT by the core, dma_core.c). */
    int n = acpi_hide(identity_map, 0, bi->acpi_rsdp, "DMAR", DMA_HIDDEN_SIG);
    if (n < 0)
        log_warn("ACPI: the DMAR could not be removed from the guest's view");
    else
        log_info("ACPI: DMAR hidden from the guest (%d root entr%s removed, table renamed %s)", n,
                 n == 1 ? "y" : "ies", DMA_HIDDEN_SIG);
    log_info("DMA protection on: %u remapping unit(s) translate; devices reach all memory but "
             "0x%llx-0x%llx%s",
             db->info.ndrhd, (unsigned long long)bi->region_base,
             (unsigned long long)(bi->region_base + bi->region_size - 1),
             p.nic ? "; the hypervisor's NIC has a domain of its own" : "");
    return 0;
}
