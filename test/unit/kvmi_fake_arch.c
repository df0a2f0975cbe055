/*
 * kvmi_fake_arch.c - kvmi_arch.h over the fake platform of
 * test_kvmi_fake.h: records every call in F and captures every sent
 * message.  Shared by the engine's unit tests and its fuzz target, which
 * each define fake_fail().
 */
#include <string.h>

#include "test_kvmi_fake.h"

struct fake F;

unsigned kvmi_arch_vcpu_count(struct kvmi_vm *vm)
{
    (void)vm;
    return F.nr_vcpus;
}
bool kvmi_arch_vcpu_uninitialized(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm;
    return F.uninit[vcpu];
}
bool kvmi_arch_vcpu_halted(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm;
    return F.halted[vcpu];
}
int kvmi_arch_get_regs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_regs *regs)
{
    (void)vm;
    *regs = F.regs[vcpu];
    return 0;
}
int kvmi_arch_set_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *regs)
{
    (void)vm;
    F.regs[vcpu] = *regs;
    return 0;
}
int kvmi_arch_check_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *regs)
{
    (void)vm, (void)vcpu;
    return (regs->rflags & 2) ? 0 : -KVM_EINVAL; /* the fake CPU's one rule: RFLAGS bit 1 */
}
int kvmi_arch_get_sregs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_sregs *sregs)
{
    (void)vm;
    *sregs = F.sregs[vcpu];
    return 0;
}
int kvmi_arch_get_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, uint64_t *value)
{
    (void)vm;
    if (msr == 0xdead || (F.odd_msrs_invalid && (msr & 1)))
        return -KVM_EINVAL;
    *value = ((uint64_t)vcpu << 32) | msr;
    return 0;
}
int kvmi_arch_get_cpuid(struct kvmi_vm *vm, unsigned vcpu, uint32_t function, uint32_t index,
                        struct kvmi_get_cpuid_reply *out)
{
    (void)vm, (void)vcpu;
    if (function > 0xd)
        return -KVM_ENOENT;
    *out = (struct kvmi_get_cpuid_reply){function, index, 3, 4};
    return 0;
}
int kvmi_arch_get_xsave(struct kvmi_vm *vm, unsigned vcpu, struct kvm_xsave *out)
{
    (void)vm;
    for (unsigned i = 0; i < 1024; i++)
        out->region[i] = i + vcpu;
    return 0;
}
int kvmi_arch_get_mtrr_type(struct kvmi_vm *vm, unsigned vcpu, uint64_t gpa, uint8_t *type)
{
    (void)vm, (void)vcpu;
    *type = gpa < sizeof(F.mem) ? 6 : 0;
    return 0;
}
int kvmi_arch_inject_exception(struct kvmi_vm *vm, unsigned vcpu, uint8_t nr, bool has_error,
                               uint32_t error_code, uint64_t address)
{
    (void)vm, (void)nr, (void)has_error, (void)error_code, (void)address;
    F.injected[vcpu]++;
    return 0;
}
int kvmi_arch_control_cr(struct kvmi_vm *vm, unsigned vcpu, unsigned cr, bool enable)
{
    (void)vm;
    F.cr_on[vcpu][cr] += enable ? 1 : -1;
    return 0;
}
int kvmi_arch_control_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, bool enable)
{
    (void)vm, (void)msr;
    F.msr_on[vcpu] += enable ? 1 : -1;
    return 0;
}
int kvmi_arch_control_desc(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    if (F.desc_unsupported || F.desc_unsupported_on == (int)vcpu + 1)
        return -KVM_EOPNOTSUPP;
    F.desc_on[vcpu] += enable ? 1 : -1;
    return 0;
}
int kvmi_arch_control_bp(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    F.bp_on[vcpu] += enable ? 1 : -1;
    return 0;
}
int kvmi_arch_control_singlestep(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    F.ss_on[vcpu] += enable ? 1 : -1;
    return 0;
}
uint64_t kvmi_arch_max_gfn(struct kvmi_vm *vm)
{
    (void)vm;
    return FAKE_PAGES - 1;
}
int kvmi_arch_read_phys(struct kvmi_vm *vm, uint64_t gpa, void *buf, size_t size)
{
    (void)vm;
    if (gpa >= sizeof(F.mem) || size > sizeof(F.mem) - gpa)
        return -KVM_ENOENT;
    memcpy(buf, F.mem + gpa, size);
    return 0;
}
int kvmi_arch_write_phys(struct kvmi_vm *vm, uint64_t gpa, const void *buf, size_t size)
{
    (void)vm;
    if (gpa >= sizeof(F.mem) || size > sizeof(F.mem) - gpa)
        return -KVM_ENOENT;
    memcpy(F.mem + gpa, buf, size);
    return 0;
}
int kvmi_arch_set_page_access(struct kvmi_vm *vm, uint64_t gfn, uint8_t access)
{
    (void)vm;
    if (gfn >= FAKE_PAGES)
        return -KVM_EINVAL;
    F.access[gfn] = access;
    return 0;
}
uint64_t kvmi_arch_tsc_hz(struct kvmi_vm *vm)
{
    (void)vm;
    return 1234567890;
}
uint64_t kvmi_arch_random(struct kvmi_vm *vm)
{
    (void)vm;
    return 0x1122334455667788ull;
}
void kvmi_arch_crash(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm, (void)vcpu;
    F.crashes++;
}
void kvmi_arch_kick(struct kvmi_vm *vm, unsigned vcpu, bool wait)
{
    (void)vm;
    F.kicks[vcpu]++;
    if (wait)
        F.kick_waits[vcpu]++;
}
uint64_t kvmi_arch_now_ms(struct kvmi_vm *vm)
{
    (void)vm;
    return F.now_ms;
}
void kvmi_arch_poll(struct kvmi_vm *vm, int vcpu)
{
    (void)vm;
    F.polls++;
    F.now_ms += F.poll_ms;
    if (F.polls > 100000)
        fake_fail("engine polls forever");
    if (vcpu >= 0 && F.on_poll)
        F.on_poll(vcpu);
}
void kvmi_arch_relax(struct kvmi_vm *vm)
{
    /* single-threaded: the send lock is never found taken */
    (void)vm;
    fake_fail("send lock contended in a single-threaded test");
}
int kvmi_arch_send(struct kvmi_vm *vm, const void *msg, size_t len)
{
    (void)vm;
    if (F.send_eagain > 0) {
        F.send_eagain--;
        return -KVM_EAGAIN;
    }
    if (F.out_len + len > sizeof(F.out)) {
        if (!F.out_wrap)
            fake_fail("more output than the capture buffer holds");
        F.out_len = F.out_rd = 0;
    }
    memcpy(F.out + F.out_len, msg, len);
    F.out_len += len;
    return 0;
}
void kvmi_arch_close(struct kvmi_vm *vm)
{
    (void)vm;
    F.closed = true;
}
void kvmi_arch_trace(struct kvmi_vm *vm, bool dir_in, const void *msg, size_t len)
{
    (void)vm, (void)dir_in, (void)msg, (void)len;
}
void kvmi_arch_log(struct kvmi_vm *vm, const char *what, int64_t value)
{
    (void)vm, (void)what, (void)value;
}
