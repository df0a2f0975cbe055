/*
 * msr_policy.h - which guest RDMSR/WRMSR reach the hardware, as a table and
 * pure checks that exit_msr.c applies and host tests prove.
 *
 * Deny by default: every MSR exits (the bitmap template is all ones) except
 * an allow-list the guest needs at full speed and that cannot touch what root
 * mode relies on; an MSR the table does not name reads from the hardware and
 * refuses writes with #GP.  Every entry is justified in docs/security.md.
 */
#ifndef HV_MSR_POLICY_H
#define HV_MSR_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "mtrr.h"

/* What an access does. */
enum msr_act {
    MSR_PASS = 0, /* not intercepted: the guest's own, at full speed */
    MSR_HW,       /* intercepted and performed on the hardware (a fault becomes #GP) */
    MSR_GP,       /* #GP, as on a CPU without the MSR or the feature */
    MSR_DROP,     /* a write is ignored (the guest reads the hardware's value) */
    MSR_EMULATE,  /* exit_msr.c emulates it; the rule's kind says how */
};

/* The MSRs exit_msr.c emulates. */
enum msr_kind {
    MSR_K_PLAIN = 0,
    MSR_K_FEATURE_CONTROL, /* locked, VMX off */
    MSR_K_APIC_BASE,       /* apic_base_write_ok */
    MSR_K_X2APIC_ICR,      /* IPIs in software (apic.c) */
    MSR_K_MTRR,            /* mtrr_write_ok */
    MSR_K_MISC_ENABLE,     /* misc_enable_write_ok */
    MSR_K_SPEC_CTRL,       /* spec_ctrl_hw_value */
    MSR_K_TSC,             /* through the TSC offset */
    MSR_K_TSC_ADJUST,      /* through the TSC offset */
    MSR_K_DEBUGCTL,        /* debugctl_write_ok, in the VMCS */
};

struct msr_rule {
    uint32_t first, last; /* inclusive */
    uint8_t read, write;  /* enum msr_act */
    uint8_t kind;         /* enum msr_kind, for MSR_EMULATE */
    const char *name;
};

/* The rule for msr; an MSR the table does not name gets the default rule
 * (read on the hardware, write #GP).  Never NULL. */
const struct msr_rule *msr_rule_of(uint32_t msr);

/* The table itself, for tests and the bitmap: *count entries. */
const struct msr_rule *msr_rules(unsigned *count);

/* Fills a 4 KiB MSR bitmap (SDM 25.6.9 MSR-Bitmap Address) so that every
 * access exits except the MSR_PASS ones of the table. */
void msr_policy_bitmap(uint8_t *bitmap);

/* IA32_APIC_BASE (SDM Vol. 3 11.4.4 Local APIC Status and Location, 11.12.5
 * State Changes From xAPIC Mode to x2APIC Mode): the base stays where the
 * hypervisor protects and kicks it, the APIC stays enabled, the BSP flag and
 * reserved bits stay as they are; xAPIC -> x2APIC is allowed, the invalid
 * x2APIC -> xAPIC transition is refused as hardware refuses it. */
bool apic_base_write_ok(uint64_t cur, uint64_t val, unsigned phys_bits);

/* IA32_MISC_ENABLE: only the bits an OS tunes may change (fast strings,
 * thermal control, EIST, MONITOR, the CPUID limit, xTPR, turbo); XD disable
 * and the rest stay as the firmware left them. */
bool misc_enable_write_ok(uint64_t cur, uint64_t val);

/* A write of val to MTRR msr leaves [region, region + size) of the memory
 * type it has now (the state after the write is checked, not the write
 * alone, so a pair's halves cannot be combined over the region).  An MSR that
 * is not an MTRR the CPU has is refused. */
bool mtrr_write_ok(const struct mtrr_state *cur, uint32_t msr, uint64_t val, uint64_t region,
                   uint64_t size);

/* Why a write of val to msr gets #GP whatever the current state: the rule
 * refuses writes, or the value sets DEBUGCTL bits root mode assumes clear
 * (debugctl_write_ok).  NULL: the rule lets it go on (an emulated MSR's
 * write is still judged against its current value by its own check above).
 * exit_msr.c asks before anything else; KVMI asks again about the value an
 * introspector's MSR event reply puts in place of the guest's, since it writes
 * the MSRs the VMCS holds itself. */
const char *msr_write_refused(uint32_t msr, uint64_t val);

/* IA32_SPEC_CTRL: the hardware keeps at least the protections the firmware
 * set (host), whatever the guest asks; the guest reads its own value back. */
uint64_t spec_ctrl_hw_value(uint64_t guest, uint64_t host);

/* IA32_DEBUGCTL: branch trace store (TR, BTS, BTINT) would write trace
 * records through DS_AREA, which the guest cannot have; refused. */
bool debugctl_write_ok(uint64_t val);

#endif
