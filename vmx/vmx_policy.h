/*
 * vmx_policy.h - what the guest is shown and allowed, as pure functions the
 * exit handlers call and host tests check: CPUID filtering, the guest's view
 * of IA32_FEATURE_CONTROL, which MSRs are ours, the CR4 write rule, and which
 * vCPUs an IPI reaches (shorthands, physical and logical destinations).
 */
#ifndef HV_VMX_POLICY_H
#define HV_VMX_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/* CPUID: fills regs (EAX, EBX, ECX, EDX) for the hypervisor leaves 0x40000000-0x400000ff
 * and returns true when hv_bit is on; otherwise returns false (ask the CPU). */
bool cpuid_hv_leaf(uint32_t leaf, bool hv_bit, uint32_t regs[4]);
/* Adjusts the CPU's answer for `leaf`: VMX and the debug store hidden in leaf 1, bit 31
 * per hv_bit. */
void cpuid_filter(uint32_t leaf, bool hv_bit, uint32_t regs[4]);

/* IA32_FEATURE_CONTROL as a guest without VMX sees it: locked, both VMX enables clear. */
uint64_t feature_control_guest_view(uint64_t hw);

/* The VMX capability MSRs (0x480-0x492): #GP for the guest, as without VMX. */
bool msr_is_vmx_capability(uint32_t msr);

/* A guest MOV to CR4 is allowed unless it sets VMXE (VMX is hidden) or a bit the CPU does
 * not support (IA32_VMX_CR4_FIXED1 = 0). */
bool cr4_write_allowed(uint64_t value, uint64_t cr4_fixed1);

/* MSR bitmap (SDM Vol. 3C 25.6.9 MSR-Bitmap Address; 4 KiB: read-low, read-high, write-low,
 * write-high, 1 KiB each, for MSRs 0-0x1fff and 0xc0000000-0xc0001fff): make RDMSR/WRMSR of msr
 * exit.  MSRs outside both ranges always exit and are ignored here.  msr_bitmap_exits tells whether
 * an access exits. */
void msr_bitmap_intercept(uint8_t *bitmap, uint32_t msr, bool read, bool write);
bool msr_bitmap_exits(const uint8_t *bitmap, uint32_t msr, bool write);

/* I/O bitmaps A (ports 0-0x7fff) and B (0x8000-0xffff), SDM Vol. 3C 25.6.4 I/O-Bitmap Addresses:
 * make port exit. */
void io_bitmap_intercept(uint8_t *a, uint8_t *b, uint16_t port);

/* One vCPU as an IPI destination. */
struct ipi_target {
    uint32_t apic_id;
    uint32_t xapic_ldr, xapic_dfr; /* what the guest programmed (xAPIC logical mode) */
    bool self;                     /* the sender */
};

/* Does the ICR value (low 32 bits, destination `dest`: bits 63:56 xAPIC, 63:32 x2APIC)
 * reach t?  SDM Vol. 3A 11.6.2 Determining IPI Destination, 11.6.1 Interrupt Command Register (ICR)
 * (shorthands), 11.12.10 Determining IPI Destination in x2APIC Mode. */
bool ipi_reaches(const struct ipi_target *t, uint32_t icr_low, uint32_t dest, bool x2apic);

#endif
