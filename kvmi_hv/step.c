/*
 * step.c - one-instruction steps: what the engine cannot do without an
 * instruction emulator is done by running one guest instruction with an
 * intercept lifted and taking it back after it.
 */

#include "log.h"
#include "vmx/vmx_insn.h"
#include "vmx/vmx_int.h"
#include "internal.h"

/* ---- one-instruction steps ------------------------------------------------------------ */

/*
 * Two ways to get control back after one guest instruction:
 *  - the monitor trap flag (SDM Vol. 3C 26.5.2 Monitor Trap Flag): exits after the instruction;
 * with blocking by STI (allowed only with IF=1, SDM Vol. 3C 27.3.1.5 Checks on Guest Non-Register
 *    State) no interrupt
 *    handler runs first.  The natural choice;
 *  - RFLAGS.TF with #DB in the exception bitmap: the single-step trap after
 *    the instruction exits instead of being delivered.  Used where MTF is
 *    not offered or does not fire: Bochs 2.7 accepts the MTF control but
 *    never exits for it (seen in this project's KVMI scenario).  An interrupt
 *    may run before the instruction (its handler runs unstepped, TF cleared
 *    by the delivery and restored by its IRET); an instruction that clears TF
 *    itself (POPF, IRET) ends the step late, at the next #DB.
 * MTF is tried first; an exit after the instruction that is not the MTF exit
 * proves it does not work on this CPU, and TF is used from then on.
 */
static volatile bool mtf_unreliable;

#define DB_BS (1ull << 14) /* single-step bit of DR6 / pending debug exceptions */

void khv_step_begin(struct vcpu *v)
{
    struct hv_vcpu *h = &khv[v->index];
    h->ss_active = true;
    h->ss_rip = vmread(VMCS_GUEST_RIP);
    uint64_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
    uint64_t rfl = vmread(VMCS_GUEST_RFLAGS);
    if (khv_have_mtf() && !mtf_unreliable) {
        h->ss_tf = false;
        if (rfl & RFLAGS_IF)
            vmwrite(VMCS_GUEST_INTERRUPTIBILITY, intr | VMX_INTERRUPTIBILITY_STI);
        vmx_set_proc_ctls(v, PROC_MTF, 0);
        return;
    }
    h->ss_tf = true;
    h->ss_tf_guest = rfl & RFLAGS_TF;
    vmwrite(VMCS_GUEST_RFLAGS, rfl | RFLAGS_TF);
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
    } else {
        vmx_set_proc_ctls(v, 0, PROC_MTF);
    }
    if (h->ss_npages) {
        /* back to the tool's rights, on every vCPU before this one goes on */
        spin_lock(&khv_ept_lock);
        for (unsigned i = 0; i < h->ss_npages; i++)
            ept_set_rights(&g_ept, h->ss_gpa[i], kvmi_rights_get(&khv_rights, h->ss_gpa[i] >> 12),
                           EPT_FIX_DROP, NULL);
        spin_unlock(&khv_ept_lock);
        h->ss_npages = 0;
        vmx_invept_all();
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

/* Before every entry: an MTF step whose instruction completed without the
 * MTF exit shows that MTF does not work here (see above). */
void khv_step_check(struct vcpu *v)
{
    struct hv_vcpu *h = &khv[v->index];
    if (!h->ss_active || h->ss_tf)
        return;
    unsigned reason = EXIT_REASON_BASIC((uint32_t)vmread(VMCS_EXIT_REASON));
    if (reason == EXIT_REASON_MTF || vmread(VMCS_GUEST_RIP) == h->ss_rip)
        return;
    if (!mtf_unreliable)
        log_warn("kvmi: the monitor trap flag did not fire (exit %u after the step): "
                 "single-stepping with RFLAGS.TF from now on",
                 reason);
    mtf_unreliable = true;
    khv_step_end(v);
}

/* Relax the page to allow `right` (on top of what it has now) for one
 * instruction; only this core is invalidated (others keep the stricter
 * view, at worst one more exit).  A violation on another page while the step
 * is pending (the same instruction touching a second restricted page) adds
 * that page to the step.  EPT_FIX_ADD_READ: a relaxation may grant more than
 * asked, never less. */
void khv_step_page(struct vcpu *v, uint64_t gpa, uint8_t right)
{
    struct hv_vcpu *h = &khv[v->index];
    uint64_t page = gpa & ~0xfffull;
    bool known = false;
    for (unsigned i = 0; i < h->ss_npages; i++)
        known |= h->ss_gpa[i] == page;
    if (!known && h->ss_npages == STEP_PAGES) {
        log_warn("kvmi: vCPU %u: one instruction touches more than %u restricted pages", v->index,
                 STEP_PAGES);
        return; /* it faults again; the tool sees the event again */
    }
    spin_lock(&khv_ept_lock);
    unsigned cur = 0;
    ept_get_rights(&g_ept, page, &cur);
    ept_set_rights(&g_ept, page, cur | right, EPT_FIX_ADD_READ, NULL);
    spin_unlock(&khv_ept_lock);
    vmx_flush_ept();
    if (!known)
        h->ss_gpa[h->ss_npages++] = page;
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
