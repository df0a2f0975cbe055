/*
 * vcpu_cmds.c - commands run by the target vCPU itself (spec §4.1 "V"):
 * vCPU info, event/CR/MSR controls, registers, CPUID, XSAVE, exception
 * injection, MTRR type; plus the reset of a vCPU's intercepts when a session
 * ends.  The vCPU header was checked when the job was queued (dispatch.c).
 */
#include "internal.h"

/* Events CONTROL_EVENTS accepts (VM-scoped UNHOOK/CREATE_VCPU are not). */
#define VCPU_EVENTS                                                                                \
    (KVMI_BIT(KVMI_EVENT_CR) | KVMI_BIT(KVMI_EVENT_MSR) | KVMI_BIT(KVMI_EVENT_XSETBV) |            \
     KVMI_BIT(KVMI_EVENT_BREAKPOINT) | KVMI_BIT(KVMI_EVENT_HYPERCALL) | KVMI_BIT(KVMI_EVENT_PF) |  \
     KVMI_BIT(KVMI_EVENT_TRAP) | KVMI_BIT(KVMI_EVENT_DESCRIPTOR) |                                 \
     KVMI_BIT(KVMI_EVENT_PAUSE_VCPU) | KVMI_BIT(KVMI_EVENT_SINGLESTEP))

#define VH sizeof(struct kvmi_vcpu_hdr)

struct job {
    struct kvmi_vm *vm;
    unsigned idx;
    struct kvmi_vcpu *v;
    const struct kvmi_job_hdr *jh;
    struct kvmi_msg_hdr h;
    const uint8_t *req; /* after the vCPU header */
};

static void reply(struct job *j, int err, size_t len, bool always_data)
{
    kvmi_reply(j->vm, j->jh->gen, j->v->out, &j->h, err, len, j->jh->replies_disabled, always_data,
               false, (int)j->idx);
}

static uint8_t *out(struct job *j)
{
    return kvmi_reply_data(j->v->out);
}

static bool msr_bit(struct kvmi_vcpu *v, uint32_t msr, uint8_t **byte, uint8_t *mask)
{
    uint32_t i;
    if (msr < 0x2000) {
        i = msr;
        *byte = &v->msr_low[i / 8];
    } else if (msr >= 0xc0000000u && msr < 0xc0002000u) {
        i = msr - 0xc0000000u;
        *byte = &v->msr_high[i / 8];
    } else
        return false;
    *mask = (uint8_t)(1u << (i % 8));
    return true;
}

bool kvmi_msr_monitored(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr)
{
    uint8_t *b, m;
    return vcpu < vm->max_vcpus && msr_bit(&vm->vcpus[vcpu], msr, &b, &m) && (*b & m);
}

bool kvmi_cr_monitored(struct kvmi_vm *vm, unsigned vcpu, unsigned cr)
{
    return vcpu < vm->max_vcpus && cr < 8 && (vm->vcpus[vcpu].cr_mask & (1u << cr));
}

bool kvmi_event_enabled(struct kvmi_vm *vm, unsigned vcpu, unsigned event)
{
    if (event == KVMI_EVENT_UNHOOK || event == KVMI_EVENT_CREATE_VCPU)
        return kvmi_load(&vm->vm_events) & KVMI_BIT(event);
    return vcpu < vm->max_vcpus && event < 32 && vm->vcpus[vcpu].gen == kvmi_load(&vm->gen) &&
           kvmi_session_active(vm) && (vm->vcpus[vcpu].events & KVMI_BIT(event));
}

static int set_event(struct kvmi_vm *vm, unsigned idx, unsigned id, bool on)
{
    struct kvmi_vcpu *v = &vm->vcpus[idx];
    int err = 0;
    if (id == KVMI_EVENT_BREAKPOINT && v->bp_on != on) {
        err = kvmi_arch_control_bp(vm, idx, on);
        if (!err)
            v->bp_on = on;
    } else if (id == KVMI_EVENT_DESCRIPTOR && v->desc_on != on) {
        err = kvmi_arch_control_desc(vm, idx, on);
        if (!err)
            v->desc_on = on;
    }
    if (!err) {
        if (on)
            v->events |= (uint32_t)KVMI_BIT(id);
        else
            v->events &= ~(uint32_t)KVMI_BIT(id);
    }
    return err;
}

static void control_events(struct job *j)
{
    struct kvmi_control_events req;
    memcpy(&req, j->req, sizeof(req));
    int err;
    if (req.padding1 || req.padding2)
        err = -KVM_EINVAL;
    else if (req.event_id >= 64 || !(VCPU_EVENTS & KVMI_BIT(req.event_id)))
        err = -KVM_EINVAL;
    else if (!(j->vm->allow_events & KVMI_BIT(req.event_id)))
        err = -KVM_EPERM;
    else
        err = set_event(j->vm, j->idx, req.event_id, req.enable);
    reply(j, err, 0, false);
}

static void control_cr(struct job *j)
{
    struct kvmi_control_cr req;
    memcpy(&req, j->req, sizeof(req));
    int err = 0;
    if (req.padding1 || req.padding2)
        err = -KVM_EINVAL;
    else if (req.cr != 0 && req.cr != 3 && req.cr != 4)
        err = -KVM_EINVAL;
    else {
        uint8_t bit = (uint8_t)(1u << req.cr);
        bool on = req.enable;
        if (on != !!(j->v->cr_mask & bit))
            err = kvmi_arch_control_cr(j->vm, j->idx, req.cr, on);
        if (!err)
            j->v->cr_mask = on ? (j->v->cr_mask | bit) : (j->v->cr_mask & ~bit);
    }
    reply(j, err, 0, false);
}

static void control_msr(struct job *j)
{
    struct kvmi_control_msr req;
    memcpy(&req, j->req, sizeof(req));
    uint8_t *b, m;
    int err = 0;
    if (req.padding1 || req.padding2)
        err = -KVM_EINVAL;
    else if (!msr_bit(j->v, req.msr, &b, &m))
        err = -KVM_EINVAL;
    else if (req.enable != !!(*b & m)) {
        err = kvmi_arch_control_msr(j->vm, j->idx, req.msr, req.enable);
        if (!err) {
            *b = req.enable ? (uint8_t)(*b | m) : (uint8_t)(*b & ~m);
            j->v->msr_count += req.enable ? 1 : (uint32_t)-1;
        }
    }
    reply(j, err, 0, false);
}

static void get_vcpu_info(struct job *j)
{
    struct kvmi_get_vcpu_info_reply r = {.tsc_speed = kvmi_arch_tsc_hz(j->vm)};
    memcpy(out(j), &r, sizeof(r));
    reply(j, 0, sizeof(r), true);
}

static void get_registers(struct job *j)
{
    struct kvmi_get_registers req;
    memcpy(&req, j->req, sizeof(req));
    size_t have = j->h.size;
    size_t need = VH + sizeof(req) + (size_t)req.nmsrs * sizeof(uint32_t);
    size_t len = sizeof(struct kvmi_get_registers_reply) + req.nmsrs * sizeof(struct kvm_msr_entry);
    int err = 0;
    if (req.padding1 || req.padding2 || have < need)
        err = -KVM_EINVAL;
    else if (len > KVMI_OUT_BUF_SIZE - 16)
        err = -KVM_ENOMEM; /* our fixed reply buffer, KVM's kzalloc */
    struct kvmi_get_registers_reply r;
    memset(&r, 0, sizeof(r));
    if (!err)
        err = kvmi_arch_get_regs(j->vm, j->idx, &r.regs);
    if (!err)
        err = kvmi_arch_get_sregs(j->vm, j->idx, &r.sregs);
    uint8_t *o = out(j);
    for (unsigned i = 0; !err && i < req.nmsrs; i++) {
        struct kvm_msr_entry e = {0};
        memcpy(&e.index, j->req + sizeof(req) + 4 * i, sizeof(e.index));
        if (kvmi_arch_get_msr(j->vm, j->idx, e.index, &e.data))
            err = -KVM_EINVAL;
        memcpy(o + sizeof(r) + sizeof(e) * i, &e, sizeof(e));
    }
    if (!err) {
        r.mode = kvmi_vcpu_mode(&r.sregs);
        r.msrs.nmsrs = req.nmsrs;
        memcpy(o, &r, sizeof(r));
    }
    reply(j, err, len, false);
}

static void set_registers(struct job *j)
{
    /* Only meaningful while an event waits for its reply: the registers are
     * applied when that reply arrives (events.c).  Otherwise dropped but
     * still answered 0, as in KVM.  Values the vCPU could not run with are
     * refused (-KVM_EINVAL) and never applied (docs/protocol.md). */
    struct kvm_regs regs;
    memcpy(&regs, j->req, sizeof(regs));
    int err = kvmi_arch_check_regs(j->vm, j->idx, &regs);
    if (!err && j->v->wait_state == KVMI_WAIT_PENDING) {
        j->v->pending_regs = regs;
        j->v->regs_pending = true;
    }
    reply(j, err, 0, false);
}

static void get_cpuid(struct job *j)
{
    struct kvmi_get_cpuid req;
    memcpy(&req, j->req, sizeof(req));
    struct kvmi_get_cpuid_reply r = {0};
    int err = kvmi_arch_get_cpuid(j->vm, j->idx, req.function, req.index, &r);
    memcpy(out(j), &r, sizeof(r));
    reply(j, err, sizeof(r), true);
}

static void get_xsave(struct job *j)
{
    int err = kvmi_arch_get_xsave(j->vm, j->idx, (struct kvm_xsave *)(void *)out(j));
    reply(j, err, sizeof(struct kvm_xsave), false);
}

static void inject_exception(struct job *j)
{
    struct kvmi_inject_exception req;
    memcpy(&req, j->req, sizeof(req));
    int err = req.padding ? -KVM_EINVAL
                          : kvmi_arch_inject_exception(j->vm, j->idx, req.nr, req.has_error != 0,
                                                       req.error_code, req.address);
    reply(j, err, 0, false);
}

static void get_mtrr_type(struct job *j)
{
    struct kvmi_get_mtrr_type req;
    memcpy(&req, j->req, sizeof(req));
    struct kvmi_get_mtrr_type_reply r = {0};
    int err = kvmi_arch_get_mtrr_type(j->vm, j->idx, req.gpa, &r.type);
    memcpy(out(j), &r, sizeof(r));
    reply(j, err, sizeof(r), true);
}

void kvmi_vcpu_command(struct kvmi_vm *vm, unsigned vcpu, const struct kvmi_job_hdr *jh)
{
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    struct job j = {.vm = vm, .idx = vcpu, .v = v, .jh = jh};
    memcpy(&j.h, v->job, sizeof(j.h));
    const uint8_t *body = v->job + sizeof(j.h);
    j.req = body + VH;

    switch (j.h.id) {
    case KVMI_EVENT_REPLY:
        kvmi_event_reply_job(vm, vcpu, &j.h, body);
        break;
    case KVMI_GET_VCPU_INFO:
        get_vcpu_info(&j);
        break;
    case KVMI_CONTROL_EVENTS:
        control_events(&j);
        break;
    case KVMI_CONTROL_CR:
        control_cr(&j);
        break;
    case KVMI_CONTROL_MSR:
        control_msr(&j);
        break;
    case KVMI_GET_REGISTERS:
        get_registers(&j);
        break;
    case KVMI_SET_REGISTERS:
        set_registers(&j);
        break;
    case KVMI_GET_CPUID:
        get_cpuid(&j);
        break;
    case KVMI_GET_XSAVE:
        get_xsave(&j);
        break;
    case KVMI_INJECT_EXCEPTION:
        inject_exception(&j);
        break;
    case KVMI_GET_MTRR_TYPE:
        get_mtrr_type(&j);
        break;
    default:
        break;
    }
}

void kvmi_vcpu_reset(struct kvmi_vm *vm, unsigned vcpu)
{
    struct kvmi_vcpu *v = &vm->vcpus[vcpu];
    /* v6 left these on at unhook; v7 and our design restore them. */
    for (unsigned cr = 0; cr < 8; cr++)
        if (v->cr_mask & (1u << cr))
            kvmi_arch_control_cr(vm, vcpu, cr, false);
    v->cr_mask = 0;
    for (uint32_t i = 0; v->msr_count && i < 0x2000; i++) {
        if (v->msr_low[i / 8] & (1u << (i % 8)))
            kvmi_arch_control_msr(vm, vcpu, i, false);
        if (v->msr_high[i / 8] & (1u << (i % 8)))
            kvmi_arch_control_msr(vm, vcpu, 0xc0000000u + i, false);
    }
    memset(v->msr_low, 0, sizeof(v->msr_low));
    memset(v->msr_high, 0, sizeof(v->msr_high));
    v->msr_count = 0;
    if (v->bp_on)
        kvmi_arch_control_bp(vm, vcpu, false);
    if (v->desc_on)
        kvmi_arch_control_desc(vm, vcpu, false);
    if (v->ss_on)
        kvmi_arch_control_singlestep(vm, vcpu, false);
    v->bp_on = v->desc_on = v->ss_on = false;
    v->events = 0;
    v->regs_pending = false;
}
