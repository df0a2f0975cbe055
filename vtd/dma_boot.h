/*
 * dma_boot.h - the loader's DMA-protection step (hv.conf `dma_protection`):
 * find and check the ACPI DMAR, size the VT-d tables, then program every
 * remapping unit with them before the region holds anything secret.  The
 * tables live in the region right after the boot info (bi->vtd_area), where
 * the core finds them (dma_core.h).
 */
#ifndef HV_DMA_BOOT_H
#define HV_DMA_BOOT_H

#include <stdbool.h>
#include <stdint.h>

#include "boot_info.h"
#include "dmar.h"

/* What the DMAR is renamed to once hidden from the guest (acpi_hide). */
#define DMA_HIDDEN_SIG "HVDM"

struct dma_boot {
    bool protect;   /* the units get programmed */
    uint64_t pages; /* table area in 4 KiB pages (0 without protection) */
    uint64_t top;   /* identity-mapped address space */
    uint64_t dmar;  /* the DMAR's physical address */
    struct dmar_info info;
};

/*
 * Decides from bi->config.dma_protection, bi->acpi_rsdp and the memory map
 * in bi.  0: go on (db->pages may be 0); -1: refuse to start (`require`
 * without a usable DMAR), the reason logged.  Without a DMAR under `auto`
 * it warns on COM1 that devices can reach the hypervisor's memory.
 */
int dma_boot_plan(const struct boot_info *bi, struct dma_boot *db);

/*
 * Builds the tables at `area` (db->pages pages inside the region), turns
 * remapping on, records the area in bi->vtd_area and removes the DMAR from
 * the ACPI view the OS will get.  0: go on; -1: refuse (`require`).
 */
int dma_boot_enable(struct dma_boot *db, struct boot_info *bi, uint64_t area);

#endif
