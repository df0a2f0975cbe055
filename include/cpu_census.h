/*
 * cpu_census.h - whether the hypervisor can take every CPU the OS could
 * run, decided by the loader before any CPU enters VMX (docs/security.md,
 * "Fail closed").  A CPU left outside VMX runs the guest unobserved and can
 * reach everything the hypervisor hides, so any doubt is a refusal: the
 * firmware then boots on without the hypervisor.  Pure, host-tested.
 */
#ifndef HV_CPU_CENSUS_H
#define HV_CPU_CENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the loader learnt about the CPUs. */
struct cpu_census {
    bool mp_services;    /* EFI MP services answered GetNumberOfProcessors */
    uint64_t mp_total;   /* processors MP services knows */
    uint64_t mp_enabled; /* of which enabled (StartupAllAPs/StartupThisAP run on these) */
    bool madt_found;     /* the ACPI MADT was found and parsed */
    uint32_t madt_cpus;  /* processors the MADT says the OS may run (enabled or online capable) */
    uint32_t max_cpus;   /* what the hypervisor supports (BI_MAX_CPUS) */
};

/* NULL when every CPU the OS could run will be launched; else why not. */
const char *cpu_census_refusal(const struct cpu_census *c);

/*
 * Processors in an ACPI MADT (ACPI 6.5 5.2.12: Processor Local APIC, type 0,
 * and Processor Local x2APIC, type 9) whose flags say enabled or online
 * capable.  -1 when the table is malformed (too short, an entry shorter than
 * its type or past the end).
 */
int cpu_census_madt(const uint8_t *madt, size_t len);

#endif
