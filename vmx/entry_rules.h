/*
 * entry_rules.h - the VM-entry checks on guest state (SDM Vol. 3C 27.3.1 Checks on the Guest State
 * Area) that a value root mode applies for someone else can break: registers from the
 * introspector (SET_REGISTERS), new values in its CR and MSR event replies, and guest writes to
 * control registers and MSRs that root mode performs in the guest's place.  A value that would make
 * VM entry fail (and so halt the vCPU) is refused before it reaches the VMCS; so are the values the
 * processor itself refuses with #GP for the same instruction, since root mode stands in for it.
 *
 * Pure (host-tested, test/unit/test_entry_rules.c): each check takes the value and the guest state
 * it is judged against and returns NULL when the value may be applied, otherwise a short reason for
 * the log.
 */
#ifndef HV_ENTRY_RULES_H
#define HV_ENTRY_RULES_H

#include <stdbool.h>
#include <stdint.h>

struct entry_state {
    uint64_t cr0;        /* CR0 as the guest sees it (read shadow for owned bits) */
    uint64_t cr4;        /* CR4 as the guest sees it */
    uint64_t efer;       /* guest IA32_EFER */
    bool ia32e;          /* the "IA-32e mode guest" VM-entry control */
    bool cs_l;           /* CS.L: 64-bit code */
    uint32_t cs_limit;   /* CS limit in bytes */
    uint64_t cr0_fixed1; /* IA32_VMX_CR0_FIXED1: bits that may be 1 */
    uint64_t cr4_fixed1; /* IA32_VMX_CR4_FIXED1 */
    unsigned phys_bits;  /* MAXPHYADDR */
};

/* Canonical for 48-bit linear addresses, or 57-bit with CR4.LA57. */
bool entry_canonical(uint64_t addr, bool la57);

/* 27.3.1.4 Checks on Guest RIP, RFLAGS, and SSP. */
const char *entry_check_rip(const struct entry_state *s, uint64_t rip);
const char *entry_check_rflags(const struct entry_state *s, uint64_t rflags);

/* 27.3.1.1 Checks on Guest Control Registers, Debug Registers, and MSRs; a new CR0/CR4 value is
 * judged against the other registers' current values, the way MOV to CR is. */
const char *entry_check_cr0(const struct entry_state *s, uint64_t cr0);
const char *entry_check_cr3(const struct entry_state *s, uint64_t cr3);
const char *entry_check_cr4(const struct entry_state *s, uint64_t cr4);

/* A new value for an MSR the VMCS holds or that root mode writes for the guest: EFER, the
 * FS/GS/kernel-GS bases, LSTAR, CSTAR, SYSENTER_ESP/EIP, PAT, DEBUGCTL.  Other MSRs: NULL. */
const char *entry_check_msr(const struct entry_state *s, uint32_t msr, uint64_t val);

#endif
