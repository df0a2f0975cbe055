/*
 * pause.c - KVMI_PAUSE_VCPU on the receive side and the vCPU's service loop
 * (spec §5.1).
 *
 * The command only counts requests and kicks; the vCPU sends one
 * KVMI_EVENT_PAUSE_VCPU per counted request from kvmi_vcpu_service(), after
 * its queued commands and after any event it was already sending (an
 * exit-time event completes before the vCPU gets back here), and stays in
 * that wait - serving commands - until the tool replies.
 */
#include "internal.h"

void kvmi_cmd_pause_vcpu(struct kvmi_vm *vm, const struct kvmi_msg_hdr *h, const uint8_t *body)
{
    struct kvmi_vcpu_hdr vh;
    struct kvmi_pause_vcpu req;
    memcpy(&vh, body, sizeof(vh));
    memcpy(&req, body + sizeof(vh), sizeof(req));
    bool disabled = vm->replies_disabled;
    int err = 0;
    bool force = false;

    /* The order of KVM v6's handler; its own vhdr check makes bad vhdr
     * padding an error reply here, not a closed connection. */
    if (req.padding1 || req.padding2 || req.padding3)
        err = -KVM_EINVAL;
    else if (vh.padding1 || vh.padding2)
        err = -KVM_EINVAL;
    else if (!(vm->allow_events & KVMI_BIT(KVMI_EVENT_PAUSE_VCPU))) {
        err = -KVM_EPERM;
        force = true; /* "the introspection tool expects a reply" */
    } else if (vh.vcpu >= kvmi_arch_vcpu_count(vm) || vh.vcpu >= vm->max_vcpus)
        err = -KVM_EINVAL;
    else if (kvmi_arch_vcpu_halted(vm, vh.vcpu))
        err = -KVM_EAGAIN; /* it would never send the PAUSE event (docs/protocol.md) */
    else {
        struct kvmi_vcpu *v = &vm->vcpus[vh.vcpu];
        /* Only this context increments, so check-then-add cannot overshoot. */
        if (kvmi_load(&v->pause_requests) > KVMI_MAX_PAUSE)
            err = -KVM_EBUSY;
        else {
            __atomic_add_fetch(&v->pause_requests, 1, __ATOMIC_ACQ_REL);
            /* wait == 1: the reply leaves only once the vCPU is out of
             * guest mode; other values mean "no wait" in v6. */
            kvmi_arch_kick(vm, vh.vcpu, req.wait == 1);
        }
    }
    kvmi_reply(vm, vm->gen, vm->out, h, err, 0, disabled, false, force, -1);
}

/* Take one pause request unless the session reset the counter meanwhile. */
static bool take_pause(struct kvmi_vcpu *v)
{
    uint32_t n = kvmi_load(&v->pause_requests);
    while (n) {
        if (__atomic_compare_exchange_n(&v->pause_requests, &n, n - 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return true;
    }
    return false;
}

bool kvmi_vcpu_has_work(struct kvmi_vm *vm, unsigned vcpu)
{
    if (vcpu >= vm->max_vcpus)
        return false;
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    return v->gen != kvmi_load(&vm->gen) || kvmi_job_pending(v) || kvmi_load(&v->pause_requests) ||
           kvmi_load(&v->create_pending);
}

void kvmi_vcpu_service(struct kvmi_vm *vm, unsigned vcpu)
{
    if (vcpu >= vm->max_vcpus)
        return;
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    for (;;) {
        uint32_t gen = kvmi_load(&vm->gen);
        if (v->gen != gen) {
            /* a session ended or began since we last looked: drop what the
             * old one set up on this vCPU */
            kvmi_vcpu_reset(vm, vcpu);
            v->gen = gen;
        }
        kvmi_run_jobs(vm, vcpu);
        if (__atomic_exchange_n(&v->create_pending, 0, __ATOMIC_ACQ_REL) &&
            (kvmi_load(&vm->vm_events) & KVMI_BIT(KVMI_EVENT_CREATE_VCPU)))
            kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_CREATE_VCPU, NULL, 0, NULL, 0);
        if (!take_pause(v))
            break;
        if (kvmi_session_active(vm))
            kvmi_send_vcpu_event(vm, vcpu, KVMI_EVENT_PAUSE_VCPU, NULL, 0, NULL, 0);
    }
}
