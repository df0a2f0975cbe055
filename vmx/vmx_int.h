/*
 * vmx_int.h - what the files of vmx/ share among themselves (internal):
 * exit handlers, event injection, guest memory access, the VMCS dump.
 */
#ifndef HV_VMX_INT_H
#define HV_VMX_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "ept.h"
#include "vmx.h"

#define HOST_STACK_PAGES    4
#define HV_MARKER_LEN       32
#define BOCHS_SHUTDOWN_PORT 0x8900

extern struct ept g_ept;
extern const char hv_marker[HV_MARKER_LEN];
extern uint8_t *g_marker_page;

/* launch.c */
void vmx_cr_masks(struct vcpu *v);
uint64_t vmx_guest_cr0(uint64_t val);
uint64_t vmx_guest_cr4(uint64_t val);

/* exit.c */
/* Past the exiting instruction (VM-exit instruction length, SDM Vol. 3C 28.2.5 Information for VM
 * Exits Due to Instruction Execution), or `len` bytes for an emulated one; a blocking by STI or MOV
 * SS ends with it (SDM Vol. 3C 25.4.2 Guest Non-Register State). */
void vmx_skip_insn(struct vcpu *v);
void vmx_advance_rip(struct vcpu *v, uint64_t len);
void vmx_flush_ept(void);
void vmx_invept_eptp(uint64_t eptp);
/* step.c */
int vmx_views_init(void);
void vmx_view_resync(struct vcpu *v);
void vmx_mtf_probe(struct vcpu *v, unsigned basic);
void vmx_mtf_probe_entry(struct vcpu *v);
void vmx_view_guard(struct vcpu *v);
void vmx_view_extint(struct vcpu *v);
void vmx_flush_vpid(struct vcpu *v);
void vmx_inject_exception(struct vcpu *v, unsigned vector, bool has_error, uint32_t error);
#define inject_gp(v) vmx_inject_exception(v, 13, true, 0)
#define inject_ud(v) vmx_inject_exception(v, 6, false, 0)
void vmx_set_proc_ctls(struct vcpu *v, uint32_t set, uint32_t clear);
__attribute__((noreturn)) void vmx_fatal(struct vcpu *v, const char *why);
struct entry_state;
/* The current VMCS's guest state as entry_rules.h judges new values against it. */
void vmx_entry_state(struct entry_state *s);
/* panic()'s hook (core/panic.c): marks the vCPU of the panicking CPU halted. */
void vmx_cpu_panicked(void);
void vmcs_dump(struct vcpu *v);
const char *exit_reason_name(unsigned reason);
void vmx_idle_wait(struct vcpu *v);

/* The handlers, one family per file (exit_*.c); each advances RIP itself. */
void exit_cpuid(struct vcpu *v);
void exit_rdmsr(struct vcpu *v);
void exit_wrmsr(struct vcpu *v);
void exit_cr(struct vcpu *v);
void exit_xsetbv(struct vcpu *v);
void exit_io(struct vcpu *v);
void exit_ept_violation(struct vcpu *v);
void exit_ept_misconfig(struct vcpu *v);
void exit_vmcall(struct vcpu *v);
void exit_nmi(struct vcpu *v, uint32_t intr_info);
void exit_nmi_window(struct vcpu *v);

/* requests.c: what happens between the exit handler and the next entry */
void vmx_before_entry(struct vcpu *v);
void vmx_root_nmi(uint64_t *rip);
/* exit.c: the trap fixup of the safe_* helpers (registered with trap.c) */
bool extable_fixup(struct trap_frame *f);

/* apic.c: guest ICR writes (INIT/SIPI/NMI are delivered in software) */
void apic_icr_write(struct vcpu *v, uint32_t low, uint32_t dest, bool x2apic);
bool apic_mmio_write(struct vcpu *v, uint64_t gpa);
void apic_send_nmi(uint32_t apic_id);
/* INIT-SIPI-SIPI to a physical CPU from root mode (the S3 wake starts the APs). */
void apic_start_cpu(uint32_t apic_id, uint32_t vector);
void vcpu_start_at_sipi(struct vcpu *v, uint32_t vector);

/* guest.c: guest memory through the guest's paging */
int guest_read_linear(struct vcpu *v, uint64_t gla, void *buf, unsigned len);
/* The bytes of the instruction at guest-linear gla, at most max: its page's,
 * and the next page's when that is guest RAM (gwalk_fetch); the count, or -1. */
int guest_fetch_insn(struct vcpu *v, uint64_t gla, void *buf, unsigned max);
bool gpa_hidden(uint64_t gpa);

/* hide.c: the dedicated NIC is invisible to the guest */
bool vmx_hidden_device_gpa(uint64_t gpa);
bool vmx_hide_io(struct vcpu *v, uint16_t port, unsigned size, bool in);
bool vmx_guarded_write(struct vcpu *v, uint64_t gpa);

/* vmx_entry.S */
int safe_rdmsr(uint32_t msr, uint64_t *out);

/* vmx/power.c: a guest OUT on an intercepted port; false = drop it (a refused
 * sleep).  vmx_power_in adjusts what an IN returns (the wake status). */
bool vmx_power_out(struct vcpu *v, uint16_t port, unsigned size, uint32_t val);
uint32_t vmx_power_in(uint16_t port, unsigned size, uint32_t val);
/* exit_ept.c: decodes the store at the guest's RIP (insn.c); false if not one it knows. */
struct insn_store;
bool guest_decode_store(struct vcpu *v, struct insn_store *s);
/* The page of the FADT's memory-space reset register to make read-only in
 * the EPT (0: none or refused); vmx_power_mem_write emulates a store to that
 * page (a reset when it writes the reset value), false if not ours. */
uint64_t vmx_power_init(void);
bool vmx_power_mem_write(struct vcpu *v, uint64_t gpa);
/* A triple fault (VM exit 2): unhook, scrub, then reset the platform. */
__attribute__((noreturn)) void vmx_power_triple_fault(struct vcpu *v);
/* The platform reset itself (FADT reset register, 0xCF9, 0x64), hooks already run. */
__attribute__((noreturn)) void vmx_platform_reset(struct vcpu *v);
/* A sleep that did not happen: the guest's PM1 status shows WAK_STS. */
void vmx_power_refuse_wake(void);

/* sleep.c / resume.c: S3 with on_sleep = resume (the hypervisor is what wakes). */
#include "acpi_power.h"
struct vmx_wake_saved {
    struct acpi_wake os;        /* where the OS wakes, from the FACS */
    uint32_t vector;            /* the FACS's two vectors as the OS left them */
    uint64_t x_vector;          /* (put back after the wake) */
    volatile uint32_t sleeping; /* between the guest's SLP_EN and the wake */
};
extern struct vmx_wake_saved g_wake_saved;
/* The guest's PM1 write that asks for S3: false = the write is done or dropped. */
bool vmx_sleep_s3(struct vcpu *v, uint16_t port, unsigned size, uint32_t val);
/* A vCPU stops here (vmx_before_entry) while g_vmx.freeze is set. */
void vmx_freeze_park(struct vcpu *v);
void vmx_facs_restore(void);
/* Where the trampoline enters (SysV, on the stack vmx_wake_stack_top()). */
__attribute__((noreturn)) void vmx_wake_entry(uint32_t slot);
uint64_t vmx_wake_stack_top(void);
/* The VMX state a CPU lost in S3: VMXON and a fresh VMCS with this vCPU's
 * controls and host state (launch.c).  NULL or the step that failed. */
const char *vmx_cpu_reenter(struct vcpu *v);
/* Real-mode guest state at cs:ip (apic.c; SIPI and the S3 wake). */
void vcpu_start_real(struct vcpu *v, uint16_t cs, uint64_t ip, uint64_t cr0);
/* vmx_entry.S: run fn(v) on stack rsp; VMLAUNCH with the guest GPRs in *r. */
__attribute__((noreturn)) void vmx_wake_switch(struct vcpu *v, void *rsp,
                                               void (*fn)(struct vcpu *v));
__attribute__((noreturn)) void vmx_relaunch(struct guest_regs *r);
int safe_wrmsr(uint32_t msr, uint64_t value);
int safe_xsetbv(uint32_t xcr, uint64_t value);

#endif
