/*
 * jobs.c - the per-vCPU job ring: messages routed to a vCPU by the receive
 * context and run by that vCPU in root mode.
 *
 * A byte ring of variable-size records (struct kvmi_job_hdr + message) so a
 * single 8 KiB GET_REGISTERS fits as well as hundreds of 24-byte commands.
 * One producer (receive context) and one consumer (the vCPU); the short
 * spinlock also lets kvmi_disconnected() empty it.  The consumer copies the
 * job out before running it so the lock is never held while a job runs.
 */
#include "internal.h"

#define JH sizeof(struct kvmi_job_hdr)

static uint32_t rec_size(size_t len)
{
    return (uint32_t)((JH + len + 7) & ~(size_t)7);
}

static void ring_write(struct kvmi_vcpu *v, uint32_t at, const void *src, size_t len)
{
    uint32_t off = at % KVMI_JOB_RING_SIZE;
    size_t first = KVMI_JOB_RING_SIZE - off;
    if (first > len)
        first = len;
    memcpy(v->ring + off, src, first);
    memcpy(v->ring, (const uint8_t *)src + first, len - first);
}

static void ring_read(struct kvmi_vcpu *v, uint32_t at, void *dst, size_t len)
{
    uint32_t off = at % KVMI_JOB_RING_SIZE;
    size_t first = KVMI_JOB_RING_SIZE - off;
    if (first > len)
        first = len;
    memcpy(dst, v->ring + off, first);
    memcpy((uint8_t *)dst + first, v->ring, len - first);
}

bool kvmi_job_push(struct kvmi_vm *vm, unsigned vcpu, const void *msg, size_t len, uint32_t gen,
                   bool replies_disabled)
{
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    uint32_t need = rec_size(len);
    struct kvmi_job_hdr jh = {
        .len = (uint32_t)len, .gen = gen, .replies_disabled = replies_disabled};
    spin_lock(&v->ring_lock);
    bool ok = KVMI_JOB_RING_SIZE - (v->ring_tail - v->ring_head) >= need;
    if (ok) {
        ring_write(v, v->ring_tail, &jh, JH);
        ring_write(v, v->ring_tail + JH, msg, len);
        v->ring_tail += need;
    }
    spin_unlock(&v->ring_lock);
    return ok;
}

bool kvmi_job_pop(struct kvmi_vcpu *v, struct kvmi_job_hdr *jh)
{
    spin_lock(&v->ring_lock);
    bool ok = v->ring_head != v->ring_tail;
    if (ok) {
        ring_read(v, v->ring_head, jh, JH);
        ring_read(v, v->ring_head + JH, v->job, jh->len);
        v->ring_head += rec_size(jh->len);
    }
    spin_unlock(&v->ring_lock);
    if (ok) {
        /* same zero-extension as the receive buffer (see framing.c) */
        size_t body = jh->len - sizeof(struct kvmi_msg_hdr);
        if (body < 512)
            memset(v->job + jh->len, 0, 512 - body);
    }
    return ok;
}

void kvmi_job_clear(struct kvmi_vcpu *v)
{
    spin_lock(&v->ring_lock);
    v->ring_head = v->ring_tail;
    spin_unlock(&v->ring_lock);
}

bool kvmi_job_pending(struct kvmi_vcpu *v)
{
    spin_lock(&v->ring_lock);
    bool pending = v->ring_head != v->ring_tail;
    spin_unlock(&v->ring_lock);
    return pending;
}

void kvmi_refuse_halted_jobs(struct kvmi_vm *vm)
{
    unsigned n = kvmi_arch_vcpu_count(vm);
    for (unsigned i = 0; i < n && i < vm->max_vcpus; i++) {
        struct kvmi_vcpu *v = &vm->vcpus[i];
        if (!kvmi_arch_vcpu_halted(vm, i) || !kvmi_job_pending(v))
            continue;
        /* The vCPU stopped with work queued and will never run it: the receive
         * context consumes its ring now (nobody else does any more). */
        struct kvmi_job_hdr jh;
        while (kvmi_job_pop(v, &jh)) {
            struct kvmi_msg_hdr h;
            memcpy(&h, v->job, sizeof(h));
            if (jh.gen != kvmi_load(&vm->gen))
                continue;
            if (h.id == KVMI_EVENT_REPLY)
                kvmi_arch_log(vm, "event reply for a halted vCPU dropped", i);
            else
                kvmi_reply(vm, jh.gen, vm->out, &h, -KVM_EAGAIN, 0, jh.replies_disabled, false,
                           false, -1);
        }
    }
}

void kvmi_run_jobs(struct kvmi_vm *vm, unsigned vcpu)
{
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    struct kvmi_job_hdr jh;
    while (kvmi_job_pop(v, &jh)) {
        if (jh.gen != kvmi_load(&vm->gen))
            continue; /* queued by a session that has ended */
        kvmi_vcpu_command(vm, vcpu, &jh);
    }
}
