/*
 * power_find.c - the loader finds the platform's power interface (ACPI
 * FADT, the DSDT's \_Sx objects) and puts it in the boot info, so that the
 * core can intercept the guest's sleep, power-off and reset (docs/kvmi-hv.md,
 * "Power transitions").  No FADT (Bochs's OVMF without acpitab.efi): only
 * the legacy reset ports are known, and that is said on COM1.
 */
#include <efi.h>
#include <efilib.h>

#include "boot.h"

#include "acpi_power.h"
#include "boot_info.h"
#include "log.h"
#include "vtd/acpi_find.h"

/* Before ExitBootServices physical memory is identity-mapped. */
static const uint8_t *identity(void *ctx, uint64_t phys, uint64_t len)
{
    (void)ctx, (void)len;
    return phys ? (const uint8_t *)(uintptr_t)phys : 0;
}

/* The DSDT's length from its header, bounded like every other table. */
static const uint8_t *dsdt_of(const uint8_t *fadt, uint32_t len, uint32_t *dlen)
{
    uint64_t at = acpi_fadt_dsdt(fadt, len);
    if (!at)
        return 0;
    const uint8_t *d = (const uint8_t *)(uintptr_t)at;
    uint32_t n = (uint32_t)d[4] | (uint32_t)d[5] << 8 | (uint32_t)d[6] << 16 | (uint32_t)d[7] << 24;
    if (d[0] != 'D' || d[1] != 'S' || d[2] != 'D' || d[3] != 'T' || n < ACPI_HDR_LEN ||
        n > ACPI_MAX_TABLE || acpi_sum(d, n) != 0)
        return 0;
    *dlen = n;
    return d;
}

/* on_sleep = resume: one page below 1 MiB for the wake trampoline
 * (include/wake.h), reserved so that the OS never gets it; the core hides it
 * from the guest and its devices.  Without it every sleep is refused. */
static void reserve_wake_page(struct boot_info *bi)
{
    EFI_PHYSICAL_ADDRESS a = 0x9f000; /* real-mode reachable, below the EBDA */
    EFI_STATUS s = BS->AllocatePages(AllocateMaxAddress, EfiReservedMemoryType, 1, &a);
    if (EFI_ERROR(s) || !bi->power.facs) {
        log_warn("power: on_sleep = resume: %s; every sleep request will be refused",
                 EFI_ERROR(s) ? "no free page below 1 MiB for the wake trampoline"
                              : "the FADT names no FACS");
        if (!EFI_ERROR(s))
            BS->FreePages(a, 1);
        return;
    }
    bi->wake_page = a;
    log_info("power: on_sleep = resume: wake trampoline page at 0x%llx, FACS at 0x%llx",
             (unsigned long long)a, (unsigned long long)bi->power.facs);
}

void power_find(struct boot_info *bi)
{
    struct acpi_found f;
    const char *why = acpi_find(identity, 0, bi->acpi_rsdp, "FACP", &f);
    if (why) {
        log_warn("power: no ACPI FADT (%s): only the legacy reset ports are intercepted; an "
                 "ACPI sleep or power-off reaches no introspector",
                 why);
        bi->power = (struct acpi_power){0};
        return;
    }
    uint32_t dlen = 0;
    const uint8_t *dsdt = dsdt_of(f.data, f.len, &dlen);
    why = acpi_power_parse(f.data, f.len, dsdt, dlen, &bi->power);
    if (why) {
        log_warn("power: ACPI FADT at 0x%llx: %s", (unsigned long long)f.phys, why);
        return;
    }
    const struct acpi_power *p = &bi->power;
    log_info("power: PM1a_CNT 0x%x PM1a_STS 0x%x PM1b_CNT 0x%x%s, reset register 0x%x, \\_S3 %s, "
             "\\_S4 %s, \\_S5 %s (SLP_TYPa %u)",
             p->pm1a_cnt, p->pm1a_evt, p->pm1b_cnt, p->hw_reduced ? " (hardware-reduced)" : "",
             p->reset_port, p->sx_valid & 8 ? "yes" : "no", p->sx_valid & 16 ? "yes" : "no",
             p->sx_valid & 32 ? "yes" : "no", p->slp_typa[5]);
    if (p->reset_mem)
        log_info("power: the FADT reset register is in memory at 0x%llx (value 0x%x)",
                 (unsigned long long)p->reset_mem, p->reset_value);
    if (bi->config.on_sleep == ON_SLEEP_RESUME)
        reserve_wake_page(bi);
}
