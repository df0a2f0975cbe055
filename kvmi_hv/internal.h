/*
 * internal.h - what the files of the bare-metal KVMI binding share: the
 * per-vCPU state of the binding, the session state, and the helpers one
 * file offers the others.  Not for use outside kvmi_hv/.
 */
#ifndef HV_KVMI_HV_INTERNAL_H
#define HV_KVMI_HV_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "boot_info.h"
#include "core.h"
#include "kvmi/kvmi.h"
#include "link.h"
#include "rules.h"
#include "vmx/ept_view.h"
#include "vmx/vmx.h"

#define PAGE_CAP   4096u           /* page restrictions the tool may hold at once */
#define RIGHTS_CAP (2u * PAGE_CAP) /* open addressing, at most half full */

extern struct kvmi_vm g_kvmi;
extern struct net_kvmi khv_link;
extern bool khv_running;
extern volatile uint32_t khv_crashed;
/* cpu index + 1 of a receive context that found the send queue full, and
 * of a vCPU sending the unhook event (outside the receive context). */
extern volatile uint32_t khv_starved_cpu, khv_unhook_cpu;

/* The tool's rights per page (what KVMI_EVENT_PF compares with), under
 * khv_ept_lock with every EPT edit.  An entry never leaves the table; rwx = free. */
extern spinlock_t khv_ept_lock;
extern struct kvmi_rights khv_rights;

enum { KHV_EV_PF, KHV_EV_BP, KHV_EV_CR, KHV_EV_KINDS };

/* Per-vCPU state of this arch (owned by that vCPU unless noted). */
struct hv_vcpu {
    /* INJECT_EXCEPTION, delivered before the next entry */
    bool exc_pending, exc_has_err;
    uint8_t exc_nr;
    uint32_t exc_err;
    uint64_t exc_addr;
    /* intercepts KVMI asked for */
    bool bp, desc, cr3;
    /* a one-instruction step in progress (MTF) */
    bool ss_active, ss_desc, ss_report;
    bool ss_tf, ss_tf_guest, ss_db_added; /* stepping with RFLAGS.TF instead of MTF */
    uint64_t ss_rip;
    uint64_t ss_inits;    /* the vCPU's INIT count when the step began */
    uint64_t ss_debugctl; /* the guest's IA32_DEBUGCTL, BTF off during a TF step */
    /* pages opened in the vCPU's view for the step, and the rights lent (an
     * instruction may touch several: MOVS, a split access) */
    uint64_t ss_gpa[EPT_VIEW_MAX_PAGES];
    uint8_t ss_right[EPT_VIEW_MAX_PAGES];
    unsigned ss_npages;
    /* control_singlestep(true) from the engine during the last PF event */
    bool ss_requested;
    void *xsave; /* a 64-byte aligned page for XSAVE */
    /* events sent and TSC ticks from each event's start to its reply applied
     * (engine, network, the tool), per KHV_EV_* (kvmi_hv_print_stats) */
    uint64_t ev_count[KHV_EV_KINDS], ev_tsc[KHV_EV_KINDS];
};
extern struct hv_vcpu khv[BI_MAX_CPUS];

static inline struct vcpu *vc(unsigned i)
{
    return i < g_vmx.ncpus ? g_vmx.vcpus[i] : NULL;
}

static inline uint32_t me1(void)
{
    return cpu_current_index() + 1;
}

/* intercept.c */
void khv_set_desc_exiting(bool on);
/* intercept.c */
bool khv_have_mtf(void);
/* step.c */
bool khv_step_refault(struct vcpu *v, uint64_t gpa, uint8_t right);
/* intercept.c */
bool khv_have_proc2(uint32_t bit);
/* exit_hooks.c */
void khv_crash_check(struct vcpu *v, enum kvmi_verdict vd);
/* exit_hooks.c */
void khv_deliver_exception(struct vcpu *v);
/* exit_hooks.c */
unsigned khv_vcpu_mode(void);
/* exit_hooks.c */
uint64_t khv_gla_to_gpa(uint64_t gla);
/* sched.c */
__attribute__((noreturn)) void khv_park(struct vcpu *v);
/* sched.c */
void khv_ack_requests(struct vcpu *v);
/* memory.c */
uint8_t khv_tool_rights(uint64_t gfn);
/* vcpu_state.c */
bool khv_vmcs_msr(uint32_t msr, uint32_t *field);
/* vcpu_state.c */
uint64_t khv_guest_xcr0(bool *known);
/* vcpu_state.c */
int khv_guest_msr(uint32_t msr, uint64_t *val);
/* vcpu_state.c */
uint64_t khv_guest_cr(unsigned cr);
/* vcpu_state.c */
bool khv_osxsave_on(uint64_t *saved);
/* step.c */
void khv_step_page(struct vcpu *v, uint64_t gpa, uint8_t right);
/* step.c */
void khv_step_begin(struct vcpu *v);
/* step.c */
void khv_step_end(struct vcpu *v);
/* step.c */
void khv_step_check(struct vcpu *v);
#endif
