/*
 * dispatch.c - the receive-side pipeline of one complete message, in the
 * order KVM v6 applies its checks (spec §3.6):
 *   unsupported id -> -KVM_EOPNOTSUPP (sent even with replies off);
 *   not allowed by the host -> -KVM_EPERM (likewise);
 *   VM commands run here; vCPU messages are checked (vCPU header padding is
 *   fatal, bad index -22, not-yet-started or halted vCPU -11) and queued as
 *   jobs on their vCPU, which is then kicked.  A halted vCPU never runs a job,
 *   so nothing is queued to it: one stopped vCPU must not fill its ring and
 *   leave the receive path BUSY for good.
 */
#include "internal.h"

#define VCPU_MESSAGES                                                                              \
    (KVMI_BIT(KVMI_EVENT_REPLY) | KVMI_BIT(KVMI_GET_VCPU_INFO) | KVMI_BIT(KVMI_CONTROL_EVENTS) |   \
     KVMI_BIT(KVMI_CONTROL_CR) | KVMI_BIT(KVMI_CONTROL_MSR) | KVMI_BIT(KVMI_GET_REGISTERS) |       \
     KVMI_BIT(KVMI_SET_REGISTERS) | KVMI_BIT(KVMI_GET_CPUID) | KVMI_BIT(KVMI_GET_XSAVE) |          \
     KVMI_BIT(KVMI_INJECT_EXCEPTION) | KVMI_BIT(KVMI_GET_MTRR_TYPE))

/* Everything with a handler: the VM commands, PAUSE_VCPU and the above. */
#define SUPPORTED                                                                                  \
    (VCPU_MESSAGES | KVMI_BIT(KVMI_GET_VERSION) | KVMI_BIT(KVMI_CHECK_COMMAND) |                   \
     KVMI_BIT(KVMI_CHECK_EVENT) | KVMI_BIT(KVMI_GET_GUEST_INFO) | KVMI_BIT(KVMI_PAUSE_VCPU) |      \
     KVMI_BIT(KVMI_CONTROL_VM_EVENTS) | KVMI_BIT(KVMI_READ_PHYSICAL) |                             \
     KVMI_BIT(KVMI_WRITE_PHYSICAL) | KVMI_BIT(KVMI_GET_PAGE_ACCESS) |                              \
     KVMI_BIT(KVMI_SET_PAGE_ACCESS) | KVMI_BIT(KVMI_GET_MAP_TOKEN) | KVMI_BIT(KVMI_CONTROL_SPP) |  \
     KVMI_BIT(KVMI_GET_PAGE_WRITE_BITMAP) | KVMI_BIT(KVMI_SET_PAGE_WRITE_BITMAP) |                 \
     KVMI_BIT(KVMI_CONTROL_CMD_RESPONSE) | KVMI_BIT(KVMI_GET_MAX_GFN))

bool kvmi_is_vcpu_message(uint16_t id)
{
    return id < 64 && (VCPU_MESSAGES & KVMI_BIT(id));
}

bool kvmi_msg_has_vcpu_hdr(unsigned id)
{
    return id == KVMI_PAUSE_VCPU || kvmi_is_vcpu_message((uint16_t)id);
}

static enum kvmi_disp vcpu_message(struct kvmi_vm *vm, const struct kvmi_msg_hdr *h,
                                   const uint8_t *body)
{
    struct kvmi_vcpu_hdr vh;
    memcpy(&vh, body, sizeof(vh));
    bool disabled = vm->replies_disabled;

    /* KVM returns -EINVAL from the receiving worker here, which ends the
     * session rather than producing an error reply. */
    if (vh.padding1 || vh.padding2) {
        kvmi_fatal(vm, "non-zero vCPU header padding", h->id);
        return KVMI_DISP_OK;
    }
    if (vh.vcpu >= kvmi_arch_vcpu_count(vm) || vh.vcpu >= vm->max_vcpus) {
        if (h->id == KVMI_EVENT_REPLY) {
            /* v6 would answer with id 0, which no client can parse. */
            kvmi_fatal(vm, "event reply for a bad vCPU", vh.vcpu);
            return KVMI_DISP_OK;
        }
        kvmi_reply(vm, vm->gen, vm->out, h, -KVM_EINVAL, 0, disabled, false, false, -1);
        return KVMI_DISP_OK;
    }
    /* A vCPU waiting for a reply is introspectable by definition, so only
     * commands are refused on a not-yet-started vCPU. */
    if (h->id != KVMI_EVENT_REPLY && kvmi_arch_vcpu_uninitialized(vm, vh.vcpu)) {
        kvmi_reply(vm, vm->gen, vm->out, h, -KVM_EAGAIN, 0, disabled, false, false, -1);
        return KVMI_DISP_OK;
    }
    if (kvmi_arch_vcpu_halted(vm, vh.vcpu)) {
        if (h->id == KVMI_EVENT_REPLY) /* it stopped while its event was out: nobody waits */
            kvmi_arch_log(vm, "event reply for a halted vCPU dropped", vh.vcpu);
        else
            kvmi_reply(vm, vm->gen, vm->out, h, -KVM_EAGAIN, 0, disabled, false, false, -1);
        return KVMI_DISP_OK;
    }
    if (!kvmi_job_push(vm, vh.vcpu, vm->rx_buf, sizeof(*h) + h->size, vm->gen, disabled))
        return KVMI_DISP_BUSY;
    kvmi_arch_kick(vm, vh.vcpu, false);
    return KVMI_DISP_OK;
}

enum kvmi_disp kvmi_dispatch(struct kvmi_vm *vm)
{
    struct kvmi_msg_hdr h;
    memcpy(&h, vm->rx_buf, sizeof(h));
    const uint8_t *body = vm->rx_buf + sizeof(h);

    if (h.id >= 64 || !(SUPPORTED & KVMI_BIT(h.id))) {
        kvmi_reply(vm, vm->gen, vm->out, &h, -KVM_EOPNOTSUPP, 0, vm->replies_disabled, false, true,
                   -1);
        return KVMI_DISP_OK;
    }
    if (h.id != KVMI_EVENT_REPLY && !(vm->allow_cmds & KVMI_BIT(h.id))) {
        kvmi_reply(vm, vm->gen, vm->out, &h, -KVM_EPERM, 0, vm->replies_disabled, false, true, -1);
        return KVMI_DISP_OK;
    }
    if (kvmi_is_vcpu_message(h.id))
        return vcpu_message(vm, &h, body);
    return kvmi_vm_command(vm, &h, body);
}
