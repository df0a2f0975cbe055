/*
 * cpus.c - the loader's CPU list: every processor EFI MP services knows
 * (UEFI PI spec, volume 2, 13.4), checked against the ACPI MADT, with a
 * refusal when any CPU the OS could run would stay outside VMX
 * (core/cpu_census.c decides; docs/security.md, "Fail closed").
 */
#include <efi.h>
#include <efilib.h>

#include "boot.h"
#include "boot_info.h"
#include "cpu_census.h"
#include "efi_mp.h"
#include "log.h"
#include "vtd/acpi_find.h"
#include "x86.h"

static EFI_GUID mp_guid = EFI_MP_SERVICES_PROTOCOL_GUID;

/* Before ExitBootServices physical memory is identity-mapped. */
static const uint8_t *identity(void *ctx, uint64_t phys, uint64_t len)
{
    (void)ctx, (void)len;
    return phys ? (const uint8_t *)(uintptr_t)phys : 0;
}

EFI_STATUS cpus_check(uint64_t rsdp)
{
    struct cpu_census c = {.max_cpus = BI_MAX_CPUS};
    EFI_MP_SERVICES_PROTOCOL *mp = NULL;
    UINTN n = 0, enabled = 0;
    if (BS->LocateProtocol(&mp_guid, NULL, (void **)&mp) == EFI_SUCCESS &&
        mp->GetNumberOfProcessors(mp, &n, &enabled) == EFI_SUCCESS) {
        c.mp_services = true;
        c.mp_total = n;
        c.mp_enabled = enabled;
    }
    struct acpi_found f;
    if (rsdp && !acpi_find(identity, 0, rsdp, "APIC", &f)) {
        int k = cpu_census_madt(f.data, f.len);
        if (k < 0) {
            log_error("refusing to start: the ACPI MADT at 0x%llx is malformed, so the CPUs "
                      "cannot be counted",
                      (unsigned long long)f.phys);
            return EFI_UNSUPPORTED;
        }
        c.madt_found = true;
        c.madt_cpus = (uint32_t)k;
    }
    const char *why = cpu_census_refusal(&c);
    if (why) {
        log_error("refusing to start: %s (MP services: %s, %llu CPU(s), %llu enabled; ACPI "
                  "MADT: %s%u CPU(s); at most %u supported)",
                  why, c.mp_services ? "yes" : "no", (unsigned long long)c.mp_total,
                  (unsigned long long)c.mp_enabled, c.madt_found ? "" : "absent, ", c.madt_cpus,
                  BI_MAX_CPUS);
        return EFI_UNSUPPORTED;
    }
    return EFI_SUCCESS;
}

EFI_STATUS cpus_collect(struct boot_info *bi)
{
    EFI_MP_SERVICES_PROTOCOL *mp = NULL;
    UINTN n = 0, enabled = 0;
    bi->ncpus = 0;
    if (BS->LocateProtocol(&mp_guid, NULL, (void **)&mp) != EFI_SUCCESS ||
        mp->GetNumberOfProcessors(mp, &n, &enabled) != EFI_SUCCESS) {
        /* cpus_check allowed this only on a uniprocessor: the BSP is all. */
        uint32_t a, b, c, d;
        cpuid(1, 0, &a, &b, &c, &d);
        bi->cpus[0].apic_id = b >> 24;
        bi->cpus[0].flags = BI_CPU_BSP | BI_CPU_ENABLED;
        bi->ncpus = 1;
        bi->bsp = 0;
        log_info("no EFI MP services: a uniprocessor (the ACPI MADT lists one CPU)");
        return EFI_SUCCESS;
    }
    if (n > BI_MAX_CPUS)
        return EFI_UNSUPPORTED; /* cpus_check refused this already */
    /* bi->cpus[i] is MP services' processor number i: the launch starts each by it. */
    for (UINTN i = 0; i < n; i++) {
        EFI_MP_PROCESSOR_INFORMATION info;
        if (mp->GetProcessorInfo(mp, i, &info) != EFI_SUCCESS) {
            log_error("refusing to start: EFI MP services does not describe CPU %llu",
                      (unsigned long long)i);
            return EFI_UNSUPPORTED;
        }
        struct bi_cpu *c = &bi->cpus[i];
        c->apic_id = (uint32_t)info.ProcessorId;
        c->flags = ((info.StatusFlag & PROCESSOR_AS_BSP_BIT) ? BI_CPU_BSP : 0) |
                   ((info.StatusFlag & PROCESSOR_ENABLED_BIT) ? BI_CPU_ENABLED : 0);
        if (c->flags & BI_CPU_BSP)
            bi->bsp = (uint32_t)i;
    }
    bi->ncpus = (uint32_t)n;
    return EFI_SUCCESS;
}
