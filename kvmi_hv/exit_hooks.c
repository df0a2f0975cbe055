/*
 * exit_hooks.c - the hooks the VMX exit handlers call through vmx_hooks.h:
 * each turns one exit into a KVMI event (kvmi/events.c) and applies the
 * introspector's answer; also the delivery of the tool's exception before
 * an entry and the unhook trigger.
 */

#include "vmx/entry_rules.h"
#include "vmx/msr_policy.h"
#include "vmx/gwalk.h"
#include "kvmi/kvmi_arch.h"
#include "log.h"
#include "vmx/vmx_insn.h"
#include "vmx/vmx_int.h"
#include "internal.h"

/* ============================ exit-handler hooks ============================================ */

/* The tool's exception at entry (SDM Vol. 3C 27.6.1 Vectored-Event Injection); if something else is
 * already being injected, it is dropped and KVMI_EVENT_TRAP describes the other. */
void khv_deliver_exception(struct vcpu *v)
{
    struct hv_vcpu *h = &khv[v->index];
    if (!h->exc_pending)
        return;
    h->exc_pending = false;
    uint32_t cur = (uint32_t)vmread(VMCS_ENTRY_INTR_INFO);
    if (cur & INTR_INFO_VALID) {
        uint32_t err = 0;
        if (cur & INTR_INFO_ERRCODE)
            err = (uint32_t)vmread(VMCS_ENTRY_EXCEPTION_ERRCODE);
        kvmi_exception_collided(&g_kvmi, v->index, INTR_INFO_VECTOR(cur), INTR_INFO_TYPE(cur), err,
                                read_cr2());
        return;
    }
    unsigned nr = h->exc_nr;
    if (nr > 31 || nr == 2) {
        log_warn("kvmi: INJECT_EXCEPTION vector %u cannot be a hardware exception; dropped", nr);
        return;
    }
    /* An error code exactly when the vector has one in protected mode, or
     * VM entry fails (SDM Vol. 3C 27.2.1.3 VM-Entry Control Fields). */
    bool err = kvmi_exc_has_errcode(nr, khv_guest_cr(0) & CR0_PE);
    if (nr == 14)
        __asm__ volatile("mov %0, %%cr2" : : "r"(h->exc_addr));
    if (nr == 3 || nr == 4) { /* #BP/#OF as software exceptions, after the instruction */
        vmwrite(VMCS_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_SW_EXCEPTION | nr);
        vmwrite(VMCS_ENTRY_INSTR_LEN, 0);
    } else {
        vmx_inject_exception(v, nr, err, h->exc_err);
    }
    if (vmread(VMCS_GUEST_ACTIVITY_STATE) == VMX_ACTIVITY_HLT)
        vmwrite(VMCS_GUEST_ACTIVITY_STATE, VMX_ACTIVITY_ACTIVE);
}

bool kvmi_hv_before_entry(struct vcpu *v)
{
    if (!khv_running)
        return false;
    khv_step_check(v);
    if (__atomic_load_n(&khv_crashed, __ATOMIC_ACQUIRE))
        khv_park(v);
    if (kvmi_vcpu_has_work(&g_kvmi, v->index)) {
        kvmi_vcpu_service(&g_kvmi, v->index);
        if (__atomic_load_n(&khv_crashed, __ATOMIC_ACQUIRE))
            khv_park(v);
        return true; /* requests may have come meanwhile: serve them, then look again */
    }
    if (v->state == VCPU_RUNNING)
        khv_deliver_exception(v);
    return false;
}

unsigned khv_vcpu_mode(void)
{
    struct kvm_sregs s;
    kvmi_arch_get_sregs(NULL, 0, &s);
    return kvmi_vcpu_mode(&s);
}

/* What every hook does with a CRASH verdict: the guest stops here. */
void khv_crash_check(struct vcpu *v, enum kvmi_verdict vd)
{
    if (vd == KVMI_V_CRASH)
        khv_park(v);
}

static void ev_account(struct vcpu *v, unsigned kind, uint64_t t0)
{
    khv[v->index].ev_count[kind]++;
    khv[v->index].ev_tsc[kind] += rdtsc() - t0;
}

void kvmi_hv_print_stats(void)
{
    static const char *const names[KHV_EV_KINDS] = {"pf", "bp", "cr"};
    for (unsigned i = 0; i < g_vmx.ncpus; i++)
        for (unsigned k = 0; k < KHV_EV_KINDS; k++)
            if (khv[i].ev_count[k])
                log_info(
                    "stats vCPU %u: kvmi %s events %llu, TSC from event to reply %llu avg %llu", i,
                    names[k], (unsigned long long)khv[i].ev_count[k],
                    (unsigned long long)khv[i].ev_tsc[k],
                    (unsigned long long)(khv[i].ev_tsc[k] / khv[i].ev_count[k]));
}

bool kvmi_hv_cr_write(struct vcpu *v, unsigned cr, uint64_t old, uint64_t *val)
{
    if (!khv_running || !kvmi_cr_monitored(&g_kvmi, v->index, cr))
        return true;
    uint64_t mask = cr == 3 ? ~(1ull << 63) : ~0ull; /* CR3 bit 63: "no flush", not state */
    if ((old & mask) == (*val & mask))
        return true; /* only writes that change the value are reported */
    uint64_t t0 = rdtsc();
    enum kvmi_verdict vd = kvmi_event_cr(&g_kvmi, v->index, cr, old, val);
    ev_account(v, KHV_EV_CR, t0);
    khv_crash_check(v, vd);
    return vd != KVMI_V_FAIL;
}

int kvmi_hv_wrmsr(struct vcpu *v, uint32_t msr, uint64_t *val)
{
    if (!khv_running)
        return 0;
    uint32_t field;
    bool in_vmcs = khv_vmcs_msr(msr, &field);
    if (kvmi_msr_monitored(&g_kvmi, v->index, msr)) {
        uint64_t old;
        if (khv_guest_msr(msr, &old) == 0 && old != *val) {
            enum kvmi_verdict vd = kvmi_event_msr(&g_kvmi, v->index, msr, old, val);
            khv_crash_check(v, vd);
            if (vd == KVMI_V_FAIL)
                return -1;
        }
    }
    /* The value (the guest's, or the introspector's from its reply) against the VM-entry rules,
     * WRMSR's own and the MSR policy the guest's WRMSR met (a reply must not set what the guest
     * could not, e.g. DEBUGCTL's trace-store bits): refused with #GP, as the guest's own write
     * would be, never a failed VM entry. */
    struct entry_state s;
    vmx_entry_state(&s);
    const char *why = entry_check_msr(&s, msr, *val);
    if (!why)
        why = msr_write_refused(msr, *val);
    if (why) {
        static unsigned logged;
        if (logged++ < 16)
            log_warn("kvmi: vCPU %u: MSR 0x%x <- 0x%llx refused (#GP): %s", v->index, msr,
                     (unsigned long long)*val, why);
        return -1;
    }
    if (!in_vmcs)
        return 0;
    /* Only KVMI makes these exit: the value belongs in the VMCS, never in
     * the host's own MSR.  EFER.LMA follows CR0.PG, not WRMSR (SDM Vol. 3A 10.8.5 Initializing
     * IA-32e Mode). */
    uint64_t nv = *val;
    if (msr == MSR_IA32_EFER)
        nv = (nv & ~EFER_LMA) | (vmread(VMCS_GUEST_EFER) & EFER_LMA);
    vmwrite(field, nv);
    return 1;
}

bool kvmi_hv_xsetbv(struct vcpu *v, uint64_t val)
{
    if (!khv_running)
        return true;
    bool known;
    if (khv_guest_xcr0(&known) == val && known)
        return true;
    enum kvmi_verdict vd = kvmi_event_xsetbv(&g_kvmi, v->index);
    khv_crash_check(v, vd);
    return vd != KVMI_V_FAIL;
}

/* Guest-physical address of a guest-linear one through the guest's paging
 * (~0 when it does not translate, or when a table the guest points at is not
 * guest RAM: gwalk_read_ram never reads MMIO, a hole or the region). */
uint64_t khv_gla_to_gpa(uint64_t gla)
{
    if (!(khv_guest_cr(0) & CR0_PG))
        return gla;
    struct gwalk_regs r = {vmread(VMCS_GUEST_CR0), vmread(VMCS_GUEST_CR3), vmread(VMCS_GUEST_CR4),
                           vmread(VMCS_GUEST_EFER)};
    if (!(vmread(VMCS_ENTRY_CTLS) & ENTRY_IA32E_GUEST))
        r.efer &= ~EFER_LMA;
    struct gwalk_ram ram = {g_bi, 0}; /* root mode's identity map */
    uint64_t gpa;
    return gwalk(&r, gla, gwalk_read_ram, &ram, &gpa) ? ~0ull : gpa;
}

/* #DB of a TF step: past the instruction it ends the step (and is the
 * guest's only if the guest was single-stepping itself); before it (BS was
 * pending at entry) the step goes on. */
static bool step_db(struct vcpu *v, uint32_t info)
{
    struct hv_vcpu *h = &khv[v->index];
    if (!h->ss_active || !h->ss_tf)
        return false;
    /* Before the instruction: the #DB that blocking by STI/MOV SS with BS pending
     * raises (the step goes on); an instruction breakpoint of the guest's own at
     * that RIP (no BS, SDM Vol. 3B 18.2.3 Debug Status Register (DR6)) is the guest's. */
    if (vmread(VMCS_GUEST_RIP) == h->ss_rip)
        return (vmread(VMCS_EXIT_QUALIFICATION) & (1ull << 14)) != 0;
    bool guest_tf = h->ss_tf_guest;
    khv_step_end(v);
    if (guest_tf) {
        vmwrite(VMCS_ENTRY_INTR_INFO, info & ~(INTR_INFO_NMI_UNBLOCK | (1u << 12)));
        vmwrite(VMCS_GUEST_PENDING_DBG, 0);
    }
    return true;
}

bool kvmi_hv_exception(struct vcpu *v, uint32_t info)
{
    if (!khv_running)
        return false;
    if (INTR_INFO_VECTOR(info) == 1)
        return step_db(v, info);
    if (!khv[v->index].bp || INTR_INFO_VECTOR(info) != 3)
        return false;
    uint64_t len = vmread(VMCS_EXIT_INSTR_LEN);
    uint64_t gla = vmread(VMCS_GUEST_CS_BASE) + vmread(VMCS_GUEST_RIP);
    uint64_t t0 = rdtsc();
    enum kvmi_verdict vd =
        kvmi_event_breakpoint(&g_kvmi, v->index, khv_gla_to_gpa(gla), (uint8_t)len);
    ev_account(v, KHV_EV_BP, t0);
    khv_crash_check(v, vd);
    if (vd == KVMI_V_RETRY)
        return true; /* re-enter at the same RIP, nothing injected (the tool fixed it) */
    /* CONTINUE (or no event): the guest's own #BP, as the CPU would deliver it */
    uint32_t e = info & ~(INTR_INFO_NMI_UNBLOCK | (1u << 12));
    vmwrite(VMCS_ENTRY_INTR_INFO, e);
    if ((info & INTR_INFO_TYPE_MASK) >= INTR_TYPE_SW_INTR)
        vmwrite(VMCS_ENTRY_INSTR_LEN, len);
    return true;
}

bool kvmi_hv_vmcall(struct vcpu *v)
{
    if (!khv_running)
        return false;
    struct kvm_regs r;
    kvmi_arch_get_regs(NULL, v->index, &r);
    if (!kvmi_is_event_hypercall(&r, khv_vcpu_mode()))
        return false;
    uint64_t rax;
    enum kvmi_verdict vd = kvmi_event_hypercall(&g_kvmi, v->index, &rax);
    khv_crash_check(v, vd);
    v->regs->rax = rax;
    vmx_skip_insn(v);
    return true;
}

/* ---- EPT violations on restricted pages -------------------------------------------------- */

bool kvmi_hv_ept_violation(struct vcpu *v, uint64_t q, uint64_t gpa)
{
    if (!khv_running)
        return false;
    uint64_t gfn = gpa >> 12;
    spin_lock(&khv_ept_lock);
    bool tracked = kvmi_rights_slot(&khv_rights, gfn, false) != NULL;
    spin_unlock(&khv_ept_lock);
    if (!tracked)
        return false;
    struct hv_vcpu *h = &khv[v->index];
    /* KVMI reports the single right attempted (spec §4.2). */
    uint8_t attempt = kvmi_pf_access(q);
    if ((khv_tool_rights(gfn) & attempt) || khv_step_refault(v, gpa, attempt)) {
        /* Allowed by the tool, refused only because EPT cannot express its
         * rights (write without read), or the access of a step in progress
         * faulting again after an event's handler ran first: step it through
         * silently. */
        khv_step_page(v, gpa, attempt);
        return true;
    }
    uint64_t gva = (q & EPT_VIOL_GLA_VALID) ? vmread(VMCS_GUEST_LINEAR_ADDR) : ~0ull;
    struct kvmi_event_pf_reply rpl;
    h->ss_requested = false;
    uint64_t t0 = rdtsc();
    enum kvmi_verdict vd = kvmi_event_pf(&g_kvmi, v->index, gpa, gva, attempt, &rpl);
    ev_account(v, KHV_EV_PF, t0);
    khv_crash_check(v, vd);
    if (vd == KVMI_V_RETRY) {
        if (h->ss_requested) { /* RETRY + singlestep: step, then KVMI_EVENT_SINGLESTEP */
            h->ss_requested = false;
            h->ss_report = true;
            khv_step_page(v, gpa, attempt);
        }
        return true; /* otherwise re-enter: the access faults again unless the tool relaxed it */
    }
    /* CONTINUE or no event: KVM would emulate the access; we execute it
     * with the right lent for one instruction.  The reply's ctx_data (reads
     * served from the tool's buffer) cannot be honoured without an
     * emulator and is ignored. */
    khv_step_page(v, gpa, attempt);
    return true;
}

/* ---- descriptor-table exits -------------------------------------------------------------- */

void kvmi_hv_desc(struct vcpu *v, unsigned reason)
{
    struct hv_vcpu *h = &khv[v->index];
    uint8_t which;
    bool write;
    kvmi_desc_of_exit(reason, (uint32_t)vmread(VMCS_EXIT_INSTR_INFO), &which, &write);
    enum kvmi_verdict vd = kvmi_event_descriptor(&g_kvmi, v->index, which, write);
    khv_crash_check(v, vd);
    if (vd == KVMI_V_RETRY)
        return; /* re-enter at the same RIP unless the tool moved it */
    /* CONTINUE (or no event): the instruction runs with descriptor-table
     * exiting lifted for it, then the exiting comes back. */
    khv_set_desc_exiting(false);
    h->ss_desc = true;
    if (!h->ss_active)
        khv_step_begin(v);
}

/* ---- unhook ------------------------------------------------------------------------------ */

/* Triggers: the guest's power transitions (vmx/power.c, through
 * kvmi_hv_power) and, in a test configuration (debug_hypercalls = yes), the
 * debug hypercall HV_HC_KVMI_UNHOOK and Bochs's shutdown port (exit_io.c). */

int kvmi_hv_unhook(struct vcpu *v)
{
    if (!khv_running)
        return -KVM_EFAULT;
    __atomic_store_n(&khv_unhook_cpu, me1(), __ATOMIC_RELEASE);
    int rc = kvmi_unhook_request(&g_kvmi);
    if (rc != -KVM_EFAULT) /* (no session: nothing to say) */
        log_info("kvmi: unhook requested by vCPU %u: %s", v->index,
                 rc == 0             ? "event sent, waiting for the introspector to close"
                 : rc == -KVM_ENOENT ? "the introspector did not enable KVMI_EVENT_UNHOOK"
                                     : "no introspection session");
    if (rc == 0) {
        /* The guest keeps running on the other vCPUs; this one serves its
         * own jobs (the tool may pause it or read its registers) and polls. */
        uint64_t t0 = rdtsc();
        uint64_t limit = g_bi->tsc_hz / 1000 * g_bi->config.unhook_timeout_ms;
        while (kvmi_transport_up(&g_kvmi) && rdtsc() - t0 < limit) {
            khv_ack_requests(v);
            if (kvmi_vcpu_has_work(&g_kvmi, v->index))
                kvmi_vcpu_service(&g_kvmi, v->index);
            service_poll();
            cpu_relax();
        }
        log_info("kvmi: unhook %s after %llu ms (TSC)",
                 kvmi_transport_up(&g_kvmi) ? "timed out: going on" : "done: introspector closed",
                 (unsigned long long)((rdtsc() - t0) / (g_bi->tsc_hz / 1000)));
    }
    __atomic_store_n(&khv_unhook_cpu, 0, __ATOMIC_RELEASE);
    return rc;
}

/* Overwrites a secret with random bytes (RDRAND, else the TSC mixed in). */
static void scrub(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r;
        if (!rdrand64(&r))
            r = rdtsc() * 0x9e3779b97f4a7c15ull;
        for (size_t k = 0; k < 8 && i + k < n; k++)
            p[i + k] = (uint8_t)(r >> (8 * k));
    }
}

void kvmi_hv_power(struct vcpu *v, enum power_action a)
{
    int rc = kvmi_hv_unhook(v);
    if (khv_running && kvmi_transport_up(&g_kvmi)) {
        /* UNHOOK not enabled, or the tool did not close in time: end the
         * session here, so that its hooks come off before the guest goes on. */
        log_info("kvmi: %s: closing the introspection session (%s)", power_action_name(a),
                 rc == 0 ? "unhook timed out" : "UNHOOK not enabled");
        kvmi_arch_close(&g_kvmi);
        uint64_t t0 = rdtsc(), limit = g_bi->tsc_hz; /* one second for lwIP to tell the engine */
        while (kvmi_transport_up(&g_kvmi) && rdtsc() - t0 < limit) {
            service_poll();
            khv_ack_requests(v); /* another vCPU's INVEPT must not wait on us */
            cpu_relax();
        }
    }
    /* S4 (let through with on_sleep = resume) powers off like S5; S3 keeps
     * the key, which the hypervisor needs after the wake. */
    if (a == POWER_OFF_S5 || a == POWER_RESET || a == POWER_SLEEP_S4) {
        scrub((uint8_t *)g_bi->config.key, sizeof(g_bi->config.key));
        if (khv_running)
            scrub(g_kvmi.cfg.key, sizeof(g_kvmi.cfg.key));
        log_info("kvmi: %s: the key is scrubbed from the region", power_action_name(a));
    }
}
