/*
 * boot.h - the loader's file access: hv.conf beside hv.efi, and starting
 * the next loader (`chain`).  Include after <efi.h>.
 */
#ifndef HV_BOOT_H
#define HV_BOOT_H

#include "hv_config.h"

/* The UEFI variable that holds the key between starts: boot-service access only. */
#define HV_KEY_VAR_NAME L"HvKey"
#define HV_KEY_VAR_GUID                                                                            \
    {                                                                                              \
        0x6e1b2c4d, 0x7a3f, 0x4c8e,                                                                \
        {                                                                                          \
            0x9b, 0x51, 0x2d, 0x60, 0xe4, 0x17, 0xa8, 0x3c                                         \
        }                                                                                          \
    }

/*
 * Reads and parses hv.conf from hv.efi's directory into cfg (which holds
 * the defaults).  A missing file means defaults; any parse error is logged
 * as "hv.conf:LINE: ..." and gives EFI_INVALID_PARAMETER.  A key in the
 * file moves into the boot-service variable HvKey and out of the file; a
 * file without one takes the key from HvKey (boot/conf_file.c).
 */
EFI_STATUS boot_load_config(EFI_HANDLE image, struct hv_config *cfg);

/* Overwrites every copy of key[0..n) in loader data, boot-services data and
 * free memory but key itself; returns how many (boot/key_scrub.c). */
unsigned key_scrub(const char *key, size_t n);

/* Zeroes n bytes in a way the compiler keeps (the wipe of a key copy). */
void boot_wipe(void *p, size_t n);

/* Loads and starts `path` (on hv.efi's volume); returns its status. */
EFI_STATUS boot_chain(EFI_HANDLE image, const char *path);

struct boot_info;
/* Chooses the dedicated NIC, disconnects its UEFI driver, records it in bi
 * (boot/nic_claim.c).  Returns -1 (logged) when the configuration names a NIC
 * (nic = PCI address or MAC) that is not there: then nothing would carry
 * the introspection and the loader refuses to start. */
int nic_claim(struct boot_info *bi);

/* Refuses (logged, EFI_UNSUPPORTED) when a CPU the OS could run would stay
 * outside VMX: more than BI_MAX_CPUS, a disabled one, APs without EFI MP
 * services, or ACPI MADT entries MP services does not know (boot/cpus.c). */
EFI_STATUS cpus_check(uint64_t rsdp);

/* Fills bi's CPU list from EFI MP services, index = processor number
 * (boot/cpus.c); after cpus_check. */
EFI_STATUS cpus_collect(struct boot_info *bi);

/* The platform's power interface into bi->power (boot/power_find.c), after
 * bi->acpi_rsdp is set. */
void power_find(struct boot_info *bi);

#endif
