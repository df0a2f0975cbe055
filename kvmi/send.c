/*
 * send.c - whole-message sends and command replies.
 *
 * Every message goes out through kvmi_send(): under the send lock the session
 * is checked (a reply built by a vCPU for a session that has since ended must
 * not reach the next introspector) and the transport takes the whole message
 * or nothing.  The lock is never held while waiting for room: on bare metal
 * the room appears only when someone polls the NIC, possibly the core that
 * would be spinning on this lock.  Nor across a system call: the arch only
 * queues the bytes (kvmi_arch.h), and a waiter yields through
 * kvmi_arch_relax() after a short spin (internal.h).  Waiting for room has a
 * deadline (cfg.send_timeout_ms) that ends the session.
 */
#include "internal.h"

int kvmi_send(struct kvmi_vm *vm, uint32_t gen, const void *msg, size_t len, int poll_vcpu)
{
    uint64_t t0 = kvmi_arch_now_ms(vm);
    for (;;) {
        int rc;
        kvmi_send_lock(vm);
        if (kvmi_load(&vm->gen) != gen || kvmi_load(&vm->state) != KVMI_ST_ACTIVE)
            rc = -KVM_EFAULT;
        else
            rc = kvmi_arch_send(vm, msg, len);
        kvmi_send_unlock(vm);
        if (rc == 0) {
            kvmi_arch_trace(vm, false, msg, len);
            return 0;
        }
        if (rc != -KVM_EAGAIN)
            return rc;
        if (kvmi_deadline_passed(vm, t0, vm->cfg.send_timeout_ms)) {
            /* The introspector stopped reading: end the session, not the sender. */
            kvmi_fatal(vm, "send timed out (ms)", vm->cfg.send_timeout_ms);
            return -KVM_EFAULT;
        }
        kvmi_arch_poll(vm, poll_vcpu);
    }
}

int kvmi_reply(struct kvmi_vm *vm, uint32_t gen, uint8_t *buf, const struct kvmi_msg_hdr *req,
               int err, size_t len, bool disabled, bool always_data, bool force, int poll_vcpu)
{
    if (err)
        len = 0;
    if (disabled && !force) {
        /* spec §3.8: a reply that would carry data cannot be suppressed
         * without desynchronising the client, so KVM ends the session. */
        if (always_data || len) {
            kvmi_fatal(vm, "data reply while replies are disabled", req->id);
            return -KVM_EINVAL;
        }
        if (err)
            kvmi_arch_log(vm, "suppressed error reply", err);
        return 0;
    }
    struct kvmi_msg_hdr h = {
        .id = req->id, .size = (uint16_t)(sizeof(struct kvmi_error_code) + len), .seq = req->seq};
    struct kvmi_error_code ec = {.err = err, .padding = 0};
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), &ec, sizeof(ec));
    return kvmi_send(vm, gen, buf, sizeof(h) + sizeof(ec) + len, poll_vcpu);
}
