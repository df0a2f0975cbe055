/*
 * step.c - one-instruction steps: what the engine cannot do without an
 * instruction emulator is done by running one guest instruction with an
 * intercept lifted and taking it back after it.
 */

#include "log.h"
#include "vmx/ept_view.h"
#include "vmx/step.h"
#include "vmx/vmx_insn.h"
#include "vmx/vmx_int.h"
#include "internal.h"

/* ---- one-instruction steps ------------------------------------------------------------ */

/*
 * Two ways to get control back after one guest instruction:
 *  - the monitor trap flag (SDM Vol. 3C 26.5.2 Monitor Trap Flag): exits
 *    after the instruction; with blocking by STI (allowed only with IF=1, SDM
 *    Vol. 3C 27.3.1.5 Checks on Guest Non-Register State) no interrupt
 *    handler runs first.  Used where the CPU showed it delivers MTF
 *    (vmx/step.c probes every vCPU's first instructions);
 *  - RFLAGS.TF with #DB in the exception bitmap: the single-step trap after
 *    the instruction exits instead of being delivered.  Used where MTF does
 *    not fire (Bochs 2.7 accepts the control and never exits for it).  An
 *    interrupt may run before the instruction (its handler runs unstepped,
 *    TF cleared by the delivery and restored by its IRET); an instruction
 *    that clears TF itself (POPF, IRET) ends the step late, at the next #DB.
 * Either way a page lent for the step is open in this vCPU's own EPT view
 * only (vmx/step.h): however long the step lasts, every other vCPU still
 * runs on the restricted EPT and its accesses still raise events.
 */

#define DB_BS (1ull << 14) /* single-step bit of DR6 / pending debug exceptions */

void khv_step_begin(struct vcpu *v)
{
    struct hv_vcpu *h = &khv[v->index];
    h->ss_active = true;
    h->ss_rip = vmread(VMCS_GUEST_RIP);
    h->ss_inits = v->stats.inits;
    uint64_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
    uint64_t rfl = vmread(VMCS_GUEST_RFLAGS);
    if (vmx_mtf_works(v)) {
        h->ss_tf = false;
        /* Blocking by STI keeps an interrupt from running first; it may not join
         * MOV SS blocking nor an event this entry injects (SDM Vol. 3C 27.3.1.5
         * Checks on Guest Non-Register State): then the MTF exit comes after the
         * event's delivery instead and the instruction faults again. */
        if ((rfl & RFLAGS_IF) &&
            !(intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS)) &&
            !(vmread(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID))
            vmwrite(VMCS_GUEST_INTERRUPTIBILITY, intr | VMX_INTERRUPTIBILITY_STI);
        vmx_set_proc_ctls(v, PROC_MTF, 0);
        return;
    }
    h->ss_tf = true;
    h->ss_tf_guest = rfl & RFLAGS_TF;
    vmwrite(VMCS_GUEST_RFLAGS, rfl | RFLAGS_TF);
    /* DEBUGCTL.BTF would make TF a branch step: the page would stay open up to
     * the guest's next taken branch (SDM Vol. 3B 18.4.3 Single-Stepping on
     * Branches); off for the step, back after it. */
    h->ss_debugctl = vmread(VMCS_GUEST_DEBUGCTL);
    if (h->ss_debugctl & DEBUGCTL_BTF)
        vmwrite(VMCS_GUEST_DEBUGCTL, h->ss_debugctl & ~DEBUGCTL_BTF);
    /* TF with blocking by STI/MOV SS needs BS pending, or VM entry fails
     * (SDM Vol. 3C 27.3.1.5 Checks on Guest Non-Register State); the #DB then comes before the
     * instruction and the step simply goes on (kvmi_hv_exception). */
    if (intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS))
        vmwrite(VMCS_GUEST_PENDING_DBG, vmread(VMCS_GUEST_PENDING_DBG) | DB_BS);
    h->ss_db_added = !(v->exc_bitmap & (1u << 1));
    v->exc_bitmap |= 1u << 1;
    vmwrite(VMCS_EXCEPTION_BITMAP, v->exc_bitmap);
}

/* The instruction has run: take the intercept back, report if asked. */
void khv_step_end(struct vcpu *v)
{
    struct hv_vcpu *h = &khv[v->index];
    h->ss_active = false;
    if (h->ss_tf) {
        if (!h->ss_tf_guest)
            vmwrite(VMCS_GUEST_RFLAGS, vmread(VMCS_GUEST_RFLAGS) & ~RFLAGS_TF);
        if (h->ss_db_added) {
            v->exc_bitmap &= ~(1u << 1);
            vmwrite(VMCS_EXCEPTION_BITMAP, v->exc_bitmap);
        }
        if (h->ss_debugctl & DEBUGCTL_BTF)
            vmwrite(VMCS_GUEST_DEBUGCTL, vmread(VMCS_GUEST_DEBUGCTL) | DEBUGCTL_BTF);
    } else {
        vmx_set_proc_ctls(v, 0, PROC_MTF);
    }
    if (h->ss_npages) {
        /* back to the restricted EPT: nothing shared was relaxed, so no other vCPU
         * needs an invalidation */
        vmx_view_close(v);
        h->ss_npages = 0;
    }
    if (h->ss_desc) {
        h->ss_desc = false;
        khv_set_desc_exiting(h->desc);
    }
    if (h->ss_report) {
        h->ss_report = false;
        khv_crash_check(v, kvmi_event_singlestep(&g_kvmi, v->index));
    }
}

/*
 * Before every entry, for a step whose instruction is not the next one any more:
 *  - the hypervisor completed the instruction itself at this exit (its own
 *    exit: CPUID, HLT, an I/O port, a dropped store; or the tool moved RIP):
 *    the step's own exit will not come, so the step ends here;
 *  - the guest was diverted before it (a fault its handler takes first): the
 *    view closes, so nothing but the instruction runs with the page open, and
 *    the step stays pending: when the handler returns, the instruction faults
 *    again, is let through again (khv_step_refault) and ends at its own exit
 *    (with TF, the TF the handler's IRET restores raises that #DB).
 */
void khv_step_check(struct vcpu *v)
{
    struct hv_vcpu *h = &khv[v->index];
    if (h->ss_active && v->stats.inits != h->ss_inits) {
        /* an INIT came (vmx closed the view): the instruction is gone with the
         * state it ran in, and so is its step, unreported */
        h->ss_report = false;
        khv_step_end(v);
        return;
    }
    if (!h->ss_active || vmread(VMCS_GUEST_RIP) == h->ss_rip)
        return;
    if (v->exit_rip == h->ss_rip)
        khv_step_end(v);
    else
        vmx_view_close(v);
}

/* True when gpa's page was opened with `right` for the step in progress at this RIP: the same
 * instruction faulting again after its view was closed for an event delivered first. */
bool khv_step_refault(struct vcpu *v, uint64_t gpa, uint8_t right)
{
    struct hv_vcpu *h = &khv[v->index];
    if (!h->ss_active || vmread(VMCS_GUEST_RIP) != h->ss_rip)
        return false;
    for (unsigned i = 0; i < h->ss_npages; i++)
        if (h->ss_gpa[i] == (gpa & ~0xfffull) && (h->ss_right[i] & right) == right)
            return true;
    return false;
}

/* Opens the page to allow `right` (on top of what it has) for one
 * instruction, in this vCPU's view only.  A violation on another page while
 * the step is pending (the same instruction touching a second restricted
 * page: MOVS, a split access) adds that page to the view.  A relaxation may
 * grant more than asked (R with W), never less. */
void khv_step_page(struct vcpu *v, uint64_t gpa, uint8_t right)
{
    struct hv_vcpu *h = &khv[v->index];
    spin_lock(&khv_ept_lock); /* no snapshot of a table the tool is editing */
    int rc = vmx_view_open(v, gpa, right);
    spin_unlock(&khv_ept_lock);
    if (rc == EPT_ENOMEM) {
        log_warn("kvmi: vCPU %u: one instruction touches more than %u restricted pages", v->index,
                 EPT_VIEW_MAX_PAGES);
        return; /* it faults again; the tool sees the event again */
    }
    if (rc && rc != VMX_VIEW_BUSY) {
        log_warn("kvmi: vCPU %u: page 0x%llx cannot be opened for a step (%d)", v->index,
                 (unsigned long long)gpa, rc);
        return;
    }
    /* Busy: another vCPU's step holds the large view.  The page is the step's
     * all the same, so the access faulting again is opened without a second
     * event once the large view is free (khv_step_refault). */
    unsigned i = 0;
    while (i < h->ss_npages && h->ss_gpa[i] != (gpa & ~0xfffull))
        i++;
    if (i == h->ss_npages && i < EPT_VIEW_MAX_PAGES) {
        h->ss_gpa[i] = gpa & ~0xfffull;
        h->ss_right[i] = 0;
        h->ss_npages++;
    }
    if (i < h->ss_npages)
        h->ss_right[i] |= right;
    if (!h->ss_active)
        khv_step_begin(v);
}

void kvmi_hv_mtf(struct vcpu *v)
{
    struct hv_vcpu *h = &khv[v->index];
    vmx_set_proc_ctls(v, 0, PROC_MTF);
    if (h->ss_active && !h->ss_tf)
        khv_step_end(v);
}
