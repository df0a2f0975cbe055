/*
 * dmatest.c - hv-dmatest.efi's last step (see dmatest.h): the region's last
 * page becomes the agent's target (a known fill it must find unchanged),
 * one page of the region is mapped in the NIC's domain through the same
 * vtd_nic_map the core uses for the NIC's rings, one ordinary page is taken
 * out of the guest's domain through vtd_guest_unmap (as the core takes out
 * device registers), and the addresses go to the agent in a volatile UEFI
 * variable.
 */
#include <efi.h>
#include <efilib.h>

#include "dmatest.h"
#include "log.h"
#include "vtd/vtd.h"

EFI_STATUS dmatest_finish(struct boot_info *bi)
{
    static EFI_GUID guid = DMATEST_GUID;
    struct dmatest_info info = {
        .magic = DMATEST_MAGIC,
        .region_base = bi->region_base,
        .region_size = bi->region_size,
        .target = bi->region_base + bi->region_size - EFI_PAGE_SIZE,
        .vtd_area = bi->vtd_area,
    };
    uint8_t *t = (uint8_t *)(uintptr_t)info.target;
    for (unsigned i = 0; i < EFI_PAGE_SIZE; i++)
        t[i] = DMATEST_FILL;
    struct vtd_state *st = vtd_attach(bi->vtd_area);
    if (st)
        info.iommu = st->unit[0].base;
    if (st && st->nic) {
        /* a "ring" page: the core maps its NIC's rings the same way */
        info.nic_ring = info.target - EFI_PAGE_SIZE;
        if (vtd_nic_map(st, info.nic_ring, EFI_PAGE_SIZE)) {
            log_error("dmatest: cannot map the NIC's page");
            return EFI_OUT_OF_RESOURCES;
        }
    }
    if (st) {
        /* an ordinary page taken out of the guest's domain, as the core
         * takes out device registers (its 2 MiB leaf gets split) */
        EFI_PHYSICAL_ADDRESS hole = 0xffffffff;
        if (uefi_call_wrapper(BS->AllocatePages, 4, AllocateMaxAddress, EfiLoaderData, 1, &hole) !=
                EFI_SUCCESS ||
            vtd_guest_unmap(st, hole, EFI_PAGE_SIZE)) {
            log_error("dmatest: cannot take a page out of the guest's domain");
            return EFI_OUT_OF_RESOURCES;
        }
        info.hole = hole;
    }
    EFI_STATUS s = uefi_call_wrapper(RT->SetVariable, 5, DMATEST_VAR, &guid,
                                     EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS,
                                     sizeof(info), &info);
    log_info("dmatest: region 0x%llx size 0x%llx, target 0x%llx, NIC page 0x%llx, hole 0x%llx, "
             "VT-d %s; returning to the firmware (variable: status 0x%llx)",
             (unsigned long long)info.region_base, (unsigned long long)info.region_size,
             (unsigned long long)info.target, (unsigned long long)info.nic_ring,
             (unsigned long long)info.hole, bi->vtd_area ? "on" : "OFF", (unsigned long long)s);
    return s;
}
