/*
 * boot.h - the loader's file access: hv.conf beside hv.efi, and starting
 * the next loader (`chain`).  Include after <efi.h>.
 */
#ifndef HV_BOOT_H
#define HV_BOOT_H

#include "hv_config.h"

/*
 * Reads and parses hv.conf from hv.efi's directory into cfg (which holds
 * the defaults).  A missing file means defaults; any parse error is logged
 * as "hv.conf:LINE: ..." and gives EFI_INVALID_PARAMETER.
 */
EFI_STATUS boot_load_config(EFI_HANDLE image, struct hv_config *cfg);

/* Loads and starts `path` (on hv.efi's volume); returns its status. */
EFI_STATUS boot_chain(EFI_HANDLE image, const char *path);

struct boot_info;
/* Chooses the dedicated NIC, disconnects its UEFI driver, records it in bi
 * (boot/nic_claim.c). */
void nic_claim(struct boot_info *bi);

/* The platform's power interface into bi->power (boot/power_find.c), after
 * bi->acpi_rsdp is set. */
void power_find(struct boot_info *bi);

#endif
