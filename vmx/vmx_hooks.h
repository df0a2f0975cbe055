/*
 * vmx_hooks.h - what the VMX layer asks of the layers above it, given to it
 * by the composition root (init/main.c) before any CPU is launched.
 *
 * Offers: struct vmx_hooks and vmx_set_hooks().  Every field has a default
 * that keeps the exit handlers' own behaviour (no poll, nothing handled,
 * every write allowed), so vmx/ runs alone and calls no folder above it.
 * Every hook runs in vCPU context (the vCPU's own core in root mode, its
 * VMCS current), with v->regs valid, except poll, which also runs while a
 * vCPU waits in root mode.
 */
#ifndef HV_VMX_HOOKS_H
#define HV_VMX_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

#include "acpi_power.h"

struct vcpu;

struct vmx_hooks {
    /* Every poll interval (VMX-preemption timer) and while a vCPU waits in
     * root mode: the network and what is received over it. */
    void (*poll)(void);
    /* Before every VM entry, after the request word was served: true when
     * it ran work (serve the request word again and call it again). */
    bool (*before_entry)(struct vcpu *v);
    /* MOV to CR0/CR3/CR4 (also CLTS, LMSW): *val may be changed; false:
     * the write fails (#GP). */
    bool (*cr_write)(struct vcpu *v, unsigned cr, uint64_t old, uint64_t *val);
    /* WRMSR that exited: 0 go on writing *val; 1 done here (skip the
     * instruction); -1 #GP. */
    int (*wrmsr)(struct vcpu *v, uint32_t msr, uint64_t *val);
    /* XSETBV with the new value: false = refuse (#GP). */
    bool (*xsetbv)(struct vcpu *v, uint64_t val);
    /* An exception exit (#BP, #DB): true = handled. */
    bool (*exception)(struct vcpu *v, uint32_t intr_info);
    /* A VMCALL that is not the debug hypercall: true = served. */
    bool (*vmcall)(struct vcpu *v);
    /* An EPT violation: true = handled. */
    bool (*ept_violation)(struct vcpu *v, uint64_t qual, uint64_t gpa);
    /* Monitor-trap-flag exit. */
    void (*mtf)(struct vcpu *v);
    /* Descriptor-table exit (reason 46 GDTR/IDTR, 47 LDTR/TR). */
    void (*desc)(struct vcpu *v, unsigned reason);
    /* The debug hypercall HV_HC_KVMI_UNHOOK: its RAX result. */
    int (*unhook)(struct vcpu *v);
    /* Counters of the layers above, printed before every vCPU's statistics. */
    void (*print_stats)(void);
    /* The guest asks for a power-off, reset or sleep that will go through:
     * unhook the introspector and scrub secrets first (vmx/power.c). */
    void (*power)(struct vcpu *v, enum power_action a);
    /* S3 (on_sleep = resume): the layers above stop their devices before the
     * sleep, and take them back after it (or after a sleep that did not
     * happen) on the BSP before any vCPU runs: 0, or -1 when the guest must
     * not run (DMA protection not back). */
    void (*suspend)(void);
    int (*resume)(void);
};

/* The hooks in force (defaults until vmx_set_hooks()). */
extern struct vmx_hooks vmx_hooks;

/* Takes a copy of *h; a NULL field keeps its default.  BSP, before any
 * launch. */
void vmx_set_hooks(const struct vmx_hooks *h);

#endif
