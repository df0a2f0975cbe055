/*
 * kvmi_hv.h - the KVMI engine bound to the real hypervisor: kvmi_arch.h
 * implemented over the VMX core (the files of kvmi_hv/) and the transport of net/
 * (link.c), as the composition root (init/main.c) sees it.  docs/kvmi-hv.md
 * has the design.
 *
 * Offers:
 *   - kvmi_hv_start(): on the BSP after net_boot(), before the launches:
 *     engine storage from the reserved region, handshake data from the
 *     config, the transport opened (connect with redial, or listen);
 *   - kvmi_hv_vmx_hooks, which the root hands to vmx_set_hooks(): one hook
 *     per exit family; each returns what the exit handler must do.  Every
 *     hook is a no-op (returns "not handled" / "go on") when the engine is
 *     not running (no network, or net_selftest), so the VMX core behaves as
 *     it does alone.
 * All hooks run in vCPU context (the vCPU's own core in root mode, its VMCS
 * current), with v->regs valid.
 */
#ifndef HV_KVMI_HV_H
#define HV_KVMI_HV_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmi/kvmi.h"
#include "vmx/vmx_hooks.h"

struct boot_info;
struct vcpu;

extern struct kvmi_vm g_kvmi;

/* Engine + transport up (init/main.c, BSP, once). */
void kvmi_hv_start(struct boot_info *bi);

/* Logs each vCPU's event counts and the TSC ticks from event to reply (the
 * statistics at shutdown, docs/benchmarks.md). */
void kvmi_hv_print_stats(void);
/* True once kvmi_hv_start() attached the engine to a transport. */
bool kvmi_hv_on(void);
/* Every vCPU's periodic poll: the session deadlines no wait watches (the handshake). */
void kvmi_hv_poll(void);

/* The hooks below, for vmx_set_hooks() (its poll field is left NULL). */
extern const struct vmx_hooks kvmi_hv_vmx_hooks;

/* ---- exit_hooks.c: the hooks of the exit handlers ------------------------------ */

/* vmx_before_entry(), after the request word was served: queued KVMI work
 * (commands, CREATE_VCPU, the pause loop) and the park of a crashed guest
 * (never returns then).  True when it ran KVMI work: serve the request
 * word again and call it again.  False: nothing left; the tool's pending
 * exception (INJECT_EXCEPTION) has been queued for this entry.  Also
 * called from the wait-for-SIPI loop. */
bool kvmi_hv_before_entry(struct vcpu *v);

/* MOV to CR0/CR3/CR4 (also CLTS, LMSW): *val may be changed by the tool.
 * false: the write must fail (#GP). */
bool kvmi_hv_cr_write(struct vcpu *v, unsigned cr, uint64_t old, uint64_t *val);

/* WRMSR that exited.  Returns 0: go on writing *val as usual; 1: done here
 * (the MSR lives in the VMCS; the caller skips the instruction); -1: #GP. */
int kvmi_hv_wrmsr(struct vcpu *v, uint32_t msr, uint64_t *val);

/* XSETBV with new value `val`: false = refuse (#GP). */
bool kvmi_hv_xsetbv(struct vcpu *v, uint64_t val);

/* An exception exit: #BP (bitmap bit 3 set for KVMI_EVENT_BREAKPOINT) or #DB
 * (bit 1, set while a step uses RFLAGS.TF).  true = handled here (re-injected
 * or dropped per the tool's answer). */
bool kvmi_hv_exception(struct vcpu *v, uint32_t intr_info);

/* VMCALL that is not the debug hypercall: true = the KVMI hypercall was
 * served (RAX set, RIP advanced). */
bool kvmi_hv_vmcall(struct vcpu *v);

/* EPT violation: true = it hit a page the introspector restricted and was
 * handled (event, step or retry). */
bool kvmi_hv_ept_violation(struct vcpu *v, uint64_t qual, uint64_t gpa);

/* Monitor-trap-flag exit (the end of a one-instruction step). */
void kvmi_hv_mtf(struct vcpu *v);

/* Descriptor-table exit (reason 46 GDTR/IDTR, 47 LDTR/TR). */
void kvmi_hv_desc(struct vcpu *v, unsigned reason);

/* The unhook trigger (debug hypercall HV_HC_KVMI_UNHOOK): send
 * KVMI_EVENT_UNHOOK and, when it went out, keep serving until the
 * introspector closes or unhook_timeout_ms passes.  Returns the
 * kvmi_unhook_request() result. */
int kvmi_hv_unhook(struct vcpu *v);

/* The guest's power-off, reset or sleep is about to go through (vmx/power.c):
 * the unhook handshake as above; an introspector still connected at the
 * timeout is disconnected, so every hook comes off; then the key is
 * overwritten with random bytes (the region may be readable after a warm
 * reset, and no later session may start keyless). */
void kvmi_hv_power(struct vcpu *v, enum power_action a);

#endif
