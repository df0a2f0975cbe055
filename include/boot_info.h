/*
 * boot_info.h - what the EFI loader hands the core: the reserved region,
 * the memory map, the ACPI RSDP, the CPUs (APIC IDs from EFI MP services),
 * the TSC frequency and the parsed configuration.  Lives in the reserved
 * region so it outlives the loader.  Pure helpers (validation, memory map
 * normalisation) are host-tested.
 */
#ifndef HV_BOOT_INFO_H
#define HV_BOOT_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi_power.h"
#include "hv_config.h"

#define BOOT_INFO_MAGIC   0x4f464e49544f4f42ull /* "BOOTINFO" */
#define BOOT_INFO_VERSION 1
#define BI_MAX_MEM        256
#define BI_MAX_CPUS       64

/* UEFI memory types we care about (UEFI 2.x, EFI_MEMORY_TYPE). */
enum bi_mem_type {
    BI_EFI_RESERVED = 0,
    BI_EFI_LOADER_CODE = 1,
    BI_EFI_LOADER_DATA = 2,
    BI_EFI_BS_CODE = 3,
    BI_EFI_BS_DATA = 4,
    BI_EFI_RT_CODE = 5,
    BI_EFI_RT_DATA = 6,
    BI_EFI_CONVENTIONAL = 7,
    BI_EFI_UNUSABLE = 8,
    BI_EFI_ACPI_RECLAIM = 9,
    BI_EFI_ACPI_NVS = 10,
    BI_EFI_MMIO = 11,
    BI_EFI_MMIO_PORT = 12,
    BI_EFI_PAL_CODE = 13,
    BI_EFI_PERSISTENT = 14,
    BI_HV_REGION = 0x80000000u, /* our reserved region, marked by the loader */
};

struct bi_mem_range {
    uint64_t base;
    uint64_t size;
    uint32_t type; /* enum bi_mem_type */
    uint32_t pad;
    uint64_t attr; /* EFI attribute bits */
};

#define BI_CPU_BSP     1u
#define BI_CPU_ENABLED 2u
#define BI_CPU_PARKED  4u /* set by the core: its launch failed after others entered VMX */

struct bi_cpu {
    uint32_t apic_id;
    uint32_t flags;
};

struct boot_info {
    uint64_t magic;
    uint32_t version;
    uint32_t size;                     /* sizeof(struct boot_info), checked by the core */
    uint64_t region_base, region_size; /* the reserved region (EfiReservedMemoryType) */
    uint64_t image_base, image_size;   /* the core image inside it */
    uint64_t acpi_rsdp;                /* physical address, 0 if none */
    uint64_t tsc_hz;                   /* calibrated against the firmware's Stall() */
    uint32_t ncpus, bsp;
    struct bi_cpu cpus[BI_MAX_CPUS];
    uint32_t nmem, pad;
    struct bi_mem_range mem[BI_MAX_MEM];
    struct hv_config config;
    /* The dedicated NIC the loader chose and freed from the firmware's driver
     * (boot/nic_claim.c); nic_claimed = 0: the core chooses by itself. */
    uint32_t nic_claimed;
    uint8_t nic_bus, nic_dev, nic_fn, nic_pad;
    uint16_t nic_vendor, nic_device;
    uint32_t nic_pad2;
    /* VT-d state and tables (vtd/vtd.h) the loader put in the region after
     * the boot info; 0: no DMA protection. */
    uint64_t vtd_area;
    /* The guest's ways to sleep, power off and reset (ACPI FADT and DSDT, the
     * legacy reset ports), found by the loader; intercepted by the VMX layer. */
    struct acpi_power power;
    /* Set by the core: its UART feeder flag, which the loader's log takes for
     * the rest of its run (log_share_drain). */
    uint64_t log_drain_flag;
    /* on_sleep = resume: the page below 1 MiB the loader reserved for the
     * wake trampoline (include/wake.h); 0: none, a sleep is refused. */
    uint64_t wake_page;
};

/* NULL if bi is usable by the core, otherwise what is wrong. */
const char *boot_info_check(const struct boot_info *bi);

/*
 * Sorts the memory map by base and merges neighbours of the same type and
 * attributes that touch.  Returns the new count.
 */
uint32_t bi_mem_normalize(struct bi_mem_range *m, uint32_t n);

/* True for ranges that hold RAM the guest may use (everything but MMIO). */
bool bi_mem_is_ram(uint32_t type);

/* The highest address + 1 of any range in the map (RAM or not). */
uint64_t bi_mem_top(const struct bi_mem_range *m, uint32_t n);

/* True for range types root mode may read on a guest's say-so: memory that is
 * plain RAM to the guest.  MMIO, reserved and unusable ranges and the
 * hypervisor's region are not (a read may have side effects or reveal us). */
bool bi_mem_is_guest_ram(uint32_t type);

/* True when every byte of [gpa, gpa + len) lies in ranges of bi's sorted map
 * that bi_mem_is_guest_ram accepts, outside the region: no hole, nothing above
 * the map, no wrap-around.  len = 0 is false. */
bool bi_guest_ram(const struct boot_info *bi, uint64_t gpa, uint64_t len);

#endif
