/*
 * wake.h - the wake trampoline: one 4 KiB page below 1 MiB that a CPU enters
 * in real mode and leaves in 64-bit mode on the hypervisor's own page tables
 * and stack.  Two ways lead in, both with CS base = the page's address and
 * IP = 0:
 *   - after S3, the firmware jumps to the FACS waking vector in real mode
 *     (ACPI 6.5 5.2.10 Firmware ACPI Control Structure: CS:IP =
 *     (vector >> 4):(vector & 0xF)), so the vector written is the page's
 *     physical address;
 *   - an AP woken by INIT-SIPI-SIPI with SIPI vector = address >> 12 (SDM
 *     Vol. 3A 9.4.4 MP Initialization Example).
 * Each CPU that arrives takes the next slot (an atomic increment of
 * next_slot), switches to long mode with cr0/cr3/cr4/efer, loads
 * stack_top[slot] and calls entry(slot) (SysV: the slot in EDI), which never
 * returns.  A CPU whose slot is >= ncpus halts with interrupts off.
 *
 * Pure data handling here (wake.c copies and patches); the mode switch is
 * core/wake_blob.S.  Runs in the loader, the core and the host tests.
 */
#ifndef HV_WAKE_H
#define HV_WAKE_H

#include <stdint.h>

#define WAKE_PAGE_SIZE 4096u
#define WAKE_MAX_CPUS  64u

/* What a woken CPU is given.  cr3 must lie below 4 GiB (it is loaded in
 * 32-bit protected mode) and must identity-map the trampoline's page. */
struct wake_params {
    uint64_t cr0, cr3, cr4, efer; /* the long mode to enter (CR4.VMXE is masked off) */
    uint64_t entry;               /* void entry(uint32_t slot), 64-bit, never returns */
    uint32_t next_slot;           /* taken with LOCK XADD by each arriving CPU */
    uint32_t ncpus;               /* slots available (at most WAKE_MAX_CPUS) */
    uint64_t stack_top[WAKE_MAX_CPUS];
};

/* Copies the trampoline into page (WAKE_PAGE_SIZE bytes, which the CPU
 * will see at physical address phys) and fills in p.  Returns NULL, or what
 * is wrong (phys not page aligned or not below 1 MiB, cr3 at or above
 * 4 GiB, ncpus out of range, a stack or entry of 0). */
const char *wake_install(void *page, uint64_t phys, const struct wake_params *p);

/* The parameters inside an installed page (to rearm next_slot, read it back). */
struct wake_params *wake_params_of(void *page);

#endif
