/*
 * dmatest.h - the end of hv-dmatest.efi, the DMA-protection test build of
 * the loader (QEMU TCG with an emulated Intel IOMMU, no VT-x): after the
 * loader's DMA-protection step it returns to the firmware with remapping in
 * force and tells the guest agent where the region is.  Never in hv.efi.
 */
#ifndef HV_DMATEST_H
#define HV_DMATEST_H

#include <efi.h>

#include "boot_info.h"

/* What the agent reads from the volatile variable HvDmaTest. */
struct dmatest_info {
    uint64_t magic; /* DMATEST_MAGIC */
    uint64_t region_base, region_size;
    uint64_t target;   /* a page of the region filled with DMATEST_FILL */
    uint64_t nic_ring; /* a page mapped in the NIC's domain (0: no NIC domain) */
    uint64_t vtd_area;
    uint64_t iommu; /* the first remapping unit's registers (the DMAR is hidden) */
    uint64_t hole;  /* an ordinary page removed from the guest's domain (vtd_guest_unmap) */
};

#define DMATEST_MAGIC 0x54534554414d44ull /* "DMATEST" */
#define DMATEST_FILL  0xa5
#define DMATEST_VAR   L"HvDmaTest"
#define DMATEST_GUID                                                                               \
    {                                                                                              \
        0x6f1c2b5e, 0x41d3, 0x4e0a,                                                                \
        {                                                                                          \
            0x9a, 0x2e, 0x3b, 0x51, 0x7c, 0x0d, 0x88, 0x14                                         \
        }                                                                                          \
    }

/* Fills the target page, publishes HvDmaTest, returns EFI_SUCCESS to efi_main. */
EFI_STATUS dmatest_finish(struct boot_info *bi);

#endif
