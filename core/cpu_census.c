/*
 * cpu_census.c - may the hypervisor start on these CPUs (see cpu_census.h).
 */
#include "cpu_census.h"

#define MADT_ENTRIES  44 /* ACPI header (36), local APIC address (4), flags (4) */
#define MADT_LAPIC    0
#define MADT_X2APIC   9
#define CPU_ENABLED   1u
#define CPU_ONLINE_OK 2u

const char *cpu_census_refusal(const struct cpu_census *c)
{
    if (!c->mp_services) {
        /* Only the BSP can be launched: any AP would run outside VMX. */
        if (!c->madt_found)
            return "no EFI MP services and no ACPI MADT: the APs can neither be counted nor "
                   "launched";
        if (c->madt_cpus > 1)
            return "no EFI MP services to launch the APs the ACPI MADT lists";
        return 0;
    }
    if (c->mp_total > c->max_cpus)
        return "more CPUs than the hypervisor supports";
    if (c->mp_enabled < c->mp_total)
        return "a CPU is disabled in EFI MP services: it cannot be launched, but the OS can "
               "start it";
    if (c->madt_found && c->madt_cpus > c->mp_total)
        return "the ACPI MADT lists CPUs that EFI MP services does not know";
    return 0;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int cpu_census_madt(const uint8_t *madt, size_t len)
{
    if (!madt || len < MADT_ENTRIES)
        return -1;
    int n = 0;
    for (size_t at = MADT_ENTRIES; at < len;) {
        if (len - at < 2)
            return -1;
        uint8_t type = madt[at], elen = madt[at + 1];
        if (elen < 2 || elen > len - at)
            return -1;
        uint32_t flags;
        if (type == MADT_LAPIC) {
            if (elen < 8)
                return -1;
            flags = le32(madt + at + 4);
        } else if (type == MADT_X2APIC) {
            if (elen < 16)
                return -1;
            flags = le32(madt + at + 8);
        } else {
            at += elen;
            continue;
        }
        if (flags & (CPU_ENABLED | CPU_ONLINE_OK))
            n++;
        at += elen;
    }
    return n;
}
