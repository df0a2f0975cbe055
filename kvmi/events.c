/*
 * events.c - vCPU events (spec §3.9, §4.2): the 544-byte common part, the
 * per-event payloads, the wait for the reply (serving jobs meanwhile), the
 * reply checks (fatal cases close the connection), SET_REGISTERS applied at
 * reply time, and the actions each event accepts.
 */
#include "internal.h"
#include "x86_arch.h"

#define EV_HDR  (sizeof(struct kvmi_msg_hdr) + sizeof(struct kvmi_event))
#define RPL_HDR (sizeof(struct kvmi_vcpu_hdr) + sizeof(struct kvmi_event_reply))

unsigned kvmi_vcpu_mode(const struct kvm_sregs *s)
{
    bool lma = s->efer & (1u << 10);
    if (lma && s->cs.l)
        return 8;
    if ((lma || (s->cr0 & 1)) && s->cs.db)
        return 4;
    return s->cs.db ? 4 : 2;
}

bool kvmi_is_event_hypercall(const struct kvm_regs *r, unsigned mode)
{
    if ((uint32_t)r->rax != KVM_HC_XEN_HVM_OP)
        return false;
    if (mode == 8)
        return r->rdi == KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT && r->rsi == 0;
    return (uint32_t)r->rbx == KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT && (uint32_t)r->rcx == 0;
}

static uint64_t msr_or_zero(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr)
{
    uint64_t v = 0;
    if (kvmi_arch_get_msr(vm, vcpu, msr, &v))
        v = 0;
    return v;
}

static void fill_arch(struct kvmi_vm *vm, unsigned vcpu, struct kvmi_event_arch *a)
{
    kvmi_arch_get_regs(vm, vcpu, &a->regs);
    kvmi_arch_get_sregs(vm, vcpu, &a->sregs);
    a->mode = (uint8_t)kvmi_vcpu_mode(&a->sregs);
    a->msrs.sysenter_cs = msr_or_zero(vm, vcpu, MSR_IA32_SYSENTER_CS);
    a->msrs.sysenter_esp = msr_or_zero(vm, vcpu, MSR_IA32_SYSENTER_ESP);
    a->msrs.sysenter_eip = msr_or_zero(vm, vcpu, MSR_IA32_SYSENTER_EIP);
    a->msrs.efer = a->sregs.efer;
    a->msrs.star = msr_or_zero(vm, vcpu, MSR_IA32_STAR);
    a->msrs.lstar = msr_or_zero(vm, vcpu, MSR_IA32_LSTAR);
    a->msrs.cstar = msr_or_zero(vm, vcpu, MSR_IA32_CSTAR);
    a->msrs.pat = msr_or_zero(vm, vcpu, MSR_IA32_PAT);
    a->msrs.shadow_gs = msr_or_zero(vm, vcpu, MSR_IA32_KERNEL_GS_BASE);
}

/* Which actions each event accepts (spec §4.2). */
static bool action_ok(uint8_t event, uint8_t action)
{
    if (action == KVMI_EVENT_ACTION_CONTINUE || action == KVMI_EVENT_ACTION_CRASH)
        return true;
    return action == KVMI_EVENT_ACTION_RETRY &&
           (event == KVMI_EVENT_BREAKPOINT || event == KVMI_EVENT_PF ||
            event == KVMI_EVENT_DESCRIPTOR);
}

static size_t build_event(struct kvmi_vm *vm, uint8_t *buf, unsigned vcpu, uint8_t event,
                          const void *payload, size_t plen, uint32_t seq, bool with_arch)
{
    struct kvmi_msg_hdr h = {
        .id = KVMI_EVENT, .size = (uint16_t)(sizeof(struct kvmi_event) + plen), .seq = seq};
    struct kvmi_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.size = sizeof(ev);
    ev.vcpu = (uint16_t)vcpu;
    ev.event = event;
    if (with_arch)
        fill_arch(vm, vcpu, &ev.arch);
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), &ev, sizeof(ev));
    if (plen)
        memcpy(buf + EV_HDR, payload, plen);
    return EV_HDR + plen;
}

int kvmi_send_unhook_event(struct kvmi_vm *vm)
{
    uint32_t gen = kvmi_load(&vm->gen);
    /* Built under the send lock's protection of nothing else: evbuf is only
     * used here, by the one context that may ask for an unhook. */
    uint32_t seq = __atomic_add_fetch(&vm->ev_seq, 1, __ATOMIC_ACQ_REL);
    size_t len = build_event(vm, vm->evbuf, 0, KVMI_EVENT_UNHOOK, NULL, 0, seq, false);
    return kvmi_send(vm, gen, vm->evbuf, len, -1);
}

enum kvmi_verdict kvmi_send_vcpu_event(struct kvmi_vm *vm, unsigned vcpu, uint8_t event,
                                       const void *payload, size_t plen, void *rpl, size_t rpl_size)
{
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    uint32_t gen = kvmi_load(&vm->gen);
    if (rpl)
        memset(rpl, 0, rpl_size);
    v->replied = false;
    if (v->gen != gen || !kvmi_session_active(vm))
        return KVMI_V_CONTINUE;

    uint32_t seq = __atomic_add_fetch(&vm->ev_seq, 1, __ATOMIC_ACQ_REL);
    size_t len = build_event(vm, v->evbuf, vcpu, event, payload, plen, seq, true);
    /* armed before sending: the reply may be queued before send returns */
    v->wait_seq = seq;
    v->wait_rpl_size = rpl_size;
    v->regs_pending = false;
    v->wait_state = KVMI_WAIT_PENDING;
    if (kvmi_send(vm, gen, v->evbuf, len, (int)vcpu)) {
        v->wait_state = KVMI_WAIT_NONE;
        return KVMI_V_CONTINUE;
    }
    uint64_t t0 = kvmi_arch_now_ms(vm);
    while (v->wait_state == KVMI_WAIT_PENDING) {
        kvmi_run_jobs(vm, vcpu);
        if (v->wait_state != KVMI_WAIT_PENDING)
            break;
        if (kvmi_load(&vm->gen) != gen || !kvmi_session_active(vm)) {
            v->wait_state = KVMI_WAIT_FAILED; /* introspection ended: CONTINUE */
            break;
        }
        /* A PAUSE_VCPU event is the tool holding the vCPU on purpose, for as
         * long as it likes (as with KVM): only other events have a deadline. */
        if (event != KVMI_EVENT_PAUSE_VCPU &&
            kvmi_deadline_passed(vm, t0, vm->cfg.reply_timeout_ms)) {
            /* No answer in time: the session ends, the guest goes on (CONTINUE). */
            kvmi_fatal(vm, "event reply timed out (ms)", vm->cfg.reply_timeout_ms);
            v->wait_state = KVMI_WAIT_FAILED;
            break;
        }
        kvmi_arch_poll(vm, (int)vcpu);
    }
    int st = v->wait_state;
    v->wait_state = KVMI_WAIT_NONE;
    v->regs_pending = false;
    if (st != KVMI_WAIT_DONE)
        return KVMI_V_CONTINUE;
    v->replied = true;
    if (rpl)
        memcpy(rpl, v->reply_data, rpl_size);

    uint8_t action = v->reply.action;
    if (!action_ok(event, action)) {
        kvmi_arch_log(vm, "unsupported event action", action);
        return KVMI_V_FAIL;
    }
    if (action == KVMI_EVENT_ACTION_CRASH) {
        kvmi_arch_crash(vm, vcpu);
        return KVMI_V_CRASH;
    }
    return action == KVMI_EVENT_ACTION_RETRY ? KVMI_V_RETRY : KVMI_V_CONTINUE;
}

/* An EVENT_REPLY job on its vCPU.  Every failure ends the session; the
 * waiting event then continues as CONTINUE. */
void kvmi_event_reply_job(struct kvmi_vm *vm, unsigned vcpu, const struct kvmi_msg_hdr *hdr,
                          const uint8_t *body)
{
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    const char *why = NULL;
    struct kvmi_event_reply er;
    memcpy(&er, body + sizeof(struct kvmi_vcpu_hdr), sizeof(er));

    if (v->wait_state != KVMI_WAIT_PENDING)
        why = "event reply with no event outstanding";
    else if (hdr->seq != v->wait_seq)
        why = "event reply with the wrong seq";
    else if (hdr->size < RPL_HDR)
        why = "event reply too short";
    else if (er.padding1 || er.padding2)
        why = "event reply padding";
    else if (hdr->size - RPL_HDR > v->wait_rpl_size)
        why = "event reply too long";
    if (why) {
        if (v->wait_state == KVMI_WAIT_PENDING)
            v->wait_state = KVMI_WAIT_FAILED;
        kvmi_fatal(vm, why, hdr->seq);
        return;
    }
    /* shorter specific parts are zero-extended (the job buffer is zeroed
     * past the message), so a CR reply without new_val writes 0 as in KVM */
    memcpy(v->reply_data, body + RPL_HDR, v->wait_rpl_size);
    if (v->wait_rpl_size == sizeof(struct kvmi_event_pf_reply)) {
        struct kvmi_event_pf_reply *pf = (struct kvmi_event_pf_reply *)(void *)v->reply_data;
        if (pf->ctx_size > KVMI_PF_CTX_DATA_MAX) {
            v->wait_state = KVMI_WAIT_FAILED;
            kvmi_fatal(vm, "PF reply ctx_size above 256", pf->ctx_size);
            return;
        }
    }
    v->reply = er;
    if (v->regs_pending) {
        kvmi_arch_set_regs(vm, vcpu, &v->pending_regs);
        v->regs_pending = false;
    }
    v->wait_state = KVMI_WAIT_DONE;
}

/* ---- the events, one per guest action ------------------------------------ */

static bool enabled(struct kvmi_vm *vm, unsigned vcpu, unsigned id)
{
    return kvmi_event_enabled(vm, vcpu, id);
}

enum kvmi_verdict kvmi_event_cr(struct kvmi_vm *vm, unsigned vcpu, unsigned cr, uint64_t old_value,
                                uint64_t *new_value)
{
    if (!enabled(vm, vcpu, KVMI_EVENT_CR) || !kvmi_cr_monitored(vm, vcpu, cr) ||
        old_value == *new_value)
        return KVMI_V_NONE;
    struct kvmi_event_cr e = {.cr = (uint16_t)cr, .old_value = old_value, .new_value = *new_value};
    struct kvmi_event_cr_reply r;
    enum kvmi_verdict vd =
        kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_CR, &e, sizeof(e), &r, sizeof(r));
    if (vd == KVMI_V_CONTINUE && vm->vcpus[vcpu].replied)
        *new_value = r.new_val;
    return vd;
}

enum kvmi_verdict kvmi_event_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr,
                                 uint64_t old_value, uint64_t *new_value)
{
    if (!enabled(vm, vcpu, KVMI_EVENT_MSR) || !kvmi_msr_monitored(vm, vcpu, msr) ||
        old_value == *new_value)
        return KVMI_V_NONE;
    struct kvmi_event_msr e = {.msr = msr, .old_value = old_value, .new_value = *new_value};
    struct kvmi_event_msr_reply r;
    enum kvmi_verdict vd =
        kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_MSR, &e, sizeof(e), &r, sizeof(r));
    if (vd == KVMI_V_CONTINUE && vm->vcpus[vcpu].replied)
        *new_value = r.new_val;
    return vd;
}

enum kvmi_verdict kvmi_event_xsetbv(struct kvmi_vm *vm, unsigned vcpu)
{
    if (!enabled(vm, vcpu, KVMI_EVENT_XSETBV))
        return KVMI_V_NONE;
    return kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_XSETBV, NULL, 0, NULL, 0);
}

enum kvmi_verdict kvmi_event_breakpoint(struct kvmi_vm *vm, unsigned vcpu, uint64_t gpa,
                                        uint8_t insn_len)
{
    if (!enabled(vm, vcpu, KVMI_EVENT_BREAKPOINT))
        return KVMI_V_NONE;
    struct kvmi_event_breakpoint e = {.gpa = gpa, .insn_len = insn_len};
    return kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_BREAKPOINT, &e, sizeof(e), NULL, 0);
}

enum kvmi_verdict kvmi_event_hypercall(struct kvmi_vm *vm, unsigned vcpu, uint64_t *rax_result)
{
    if (!enabled(vm, vcpu, KVMI_EVENT_HYPERCALL)) {
        *rax_result = (uint64_t) - (int64_t)KVM_ENOSYS;
        return KVMI_V_NONE;
    }
    *rax_result = 0;
    return kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_HYPERCALL, NULL, 0, NULL, 0);
}

enum kvmi_verdict kvmi_event_pf(struct kvmi_vm *vm, unsigned vcpu, uint64_t gpa, uint64_t gva,
                                uint8_t access, struct kvmi_event_pf_reply *rpl)
{
    memset(rpl, 0, sizeof(*rpl));
    if (!enabled(vm, vcpu, KVMI_EVENT_PF))
        return KVMI_V_NONE;
    struct kvmi_event_pf e = {.gva = gva, .gpa = gpa, .access = access};
    enum kvmi_verdict vd =
        kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_PF, &e, sizeof(e), rpl, sizeof(*rpl));
    /* v6 code: RETRY + singlestep steps the instruction (MTF); the arch
     * reports the end of the step with kvmi_event_singlestep(). */
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    if (vd == KVMI_V_RETRY && rpl->singlestep && !v->ss_on &&
        kvmi_arch_control_singlestep(vm, vcpu, true) == 0)
        v->ss_on = true;
    return vd;
}

enum kvmi_verdict kvmi_event_trap(struct kvmi_vm *vm, unsigned vcpu, uint32_t vector, uint32_t type,
                                  uint32_t error_code, uint64_t cr2)
{
    if (!enabled(vm, vcpu, KVMI_EVENT_TRAP))
        return KVMI_V_NONE;
    struct kvmi_event_trap e = {
        .vector = vector, .type = type, .error_code = error_code, .cr2 = cr2};
    return kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_TRAP, &e, sizeof(e), NULL, 0);
}

enum kvmi_verdict kvmi_exception_collided(struct kvmi_vm *vm, unsigned vcpu, uint32_t vector,
                                          unsigned intr_type, uint32_t error_code, uint64_t cr2)
{
    /* KVMI_EVENT_TRAP's type is the interruption type shifted left by 8, 0 for an NMI
     * (spec, KVMI_EVENT_TRAP). */
    uint32_t type = intr_type == 2 ? 0 : (uint32_t)(intr_type & 7) << 8;
    return kvmi_event_trap(vm, vcpu, vector, type, error_code, cr2);
}

enum kvmi_verdict kvmi_event_descriptor(struct kvmi_vm *vm, unsigned vcpu, uint8_t descriptor,
                                        bool write)
{
    if (!enabled(vm, vcpu, KVMI_EVENT_DESCRIPTOR))
        return KVMI_V_NONE;
    struct kvmi_event_descriptor e = {.descriptor = descriptor, .write = write};
    return kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_DESCRIPTOR, &e, sizeof(e), NULL, 0);
}

enum kvmi_verdict kvmi_event_singlestep(struct kvmi_vm *vm, unsigned vcpu)
{
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    if (v->ss_on) {
        kvmi_arch_control_singlestep(vm, vcpu, false);
        v->ss_on = false;
    }
    if (!enabled(vm, vcpu, KVMI_EVENT_SINGLESTEP))
        return KVMI_V_NONE;
    return kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_SINGLESTEP, NULL, 0, NULL, 0);
}
