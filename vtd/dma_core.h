/*
 * dma_core.h - the core's side of DMA protection: it finds the remapping
 * state the loader left in the region (bi->vtd_area), maps the pages of its
 * NIC's rings and buffers into the NIC's own domain as the driver allocates
 * them, and collects the units' fault records (logged with the device and
 * the address, counted for the statistics).  Core only.
 */
#ifndef HV_DMA_CORE_H
#define HV_DMA_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "boot_info.h"

/* Attaches to the loader's state, if any; logs what protects the region. */
void dma_core_init(const struct boot_info *bi);

/* A physical range of device registers. */
struct dma_range {
    uint64_t base, len;
};

/* Unmaps every remapping unit's registers for the guest through hide_mmio
 * (the VMX layer's: reads all ones, writes dropped) and removes them and
 * dev_regs (the NIC's registers) from the guest devices' DMA view; after
 * vmx_init and net_boot, before any launch.  0 or -1. */
int dma_core_hide(int (*hide_mmio)(uint64_t base, uint64_t len), const struct dma_range *dev_regs,
                  unsigned n);

/* Zeroed pages from the core's pool that the NIC may reach by DMA (nic.h's nic_alloc_fn). */
void *dma_core_nic_alloc(size_t npages);

/* Collects recorded faults; cheap when there are none.  Any CPU, any time. */
void dma_core_poll(void);

/* After S3: remapping on again in every unit, from the tables in the
 * region, before any guest code runs.  0, or -1 (logged): the guest must
 * not run.  0 without DMA protection. */
int dma_core_resume(void);

/* Faults collected since boot. */
uint64_t dma_core_faults(void);

#endif
