/*
 * sim_arch.c - the vCPU-state, intercept and memory half of kvmi_arch.h
 * over the fake VM of sim_vm.c: registers and MSRs from struct sim_vcpu,
 * intercepts that only have to succeed, guest memory from g_sim.mem.
 */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include "sim.h"
#include "x86_arch.h"

/* ---- arch: vCPU state ----------------------------------------------------- */

unsigned kvmi_arch_vcpu_count(struct kvmi_vm *vm)
{
    (void)vm;
    return sim_nr_vcpus();
}

bool kvmi_arch_vcpu_uninitialized(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm;
    (void)vcpu;
    return false;
}

/* Simulated vCPUs run until the simulator exits. */
bool kvmi_arch_vcpu_halted(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm;
    (void)vcpu;
    return false;
}

/* The simulated CPU runs with any register values. */
int kvmi_arch_check_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *regs)
{
    (void)vm, (void)vcpu, (void)regs;
    return 0;
}

int kvmi_arch_get_regs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_regs *regs)
{
    (void)vm;
    *regs = V(vcpu)->regs;
    return 0;
}

int kvmi_arch_set_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *regs)
{
    (void)vm;
    V(vcpu)->regs = *regs;
    return 0;
}

int kvmi_arch_get_sregs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_sregs *sregs)
{
    (void)vm;
    *sregs = V(vcpu)->sregs;
    return 0;
}

int kvmi_arch_get_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, uint64_t *value)
{
    (void)vm;
    if (msr == MSR_IA32_TSC) {
        *value = V(vcpu)->k * 1000;
        return 0;
    }
    uint64_t *slot = sim_msr_slot(V(vcpu), msr);
    if (!slot)
        return -KVM_EINVAL;
    *value = *slot;
    return 0;
}

int kvmi_arch_get_cpuid(struct kvmi_vm *vm, unsigned vcpu, uint32_t function, uint32_t index,
                        struct kvmi_get_cpuid_reply *out)
{
    (void)vm;
    (void)vcpu;
    (void)index;
    switch (function) {
    case 0: /* max leaf 0xd, "GenuineIntel" */
        *out = (struct kvmi_get_cpuid_reply){0xd, 0x756e6547, 0x6c65746e, 0x49656e69};
        return 0;
    case 1:
        *out = (struct kvmi_get_cpuid_reply){0x000906ea, 0x00010800, 0x04000000 | 0x08000000,
                                             0x078bfbff};
        return 0;
    case 0xd:
        *out = (struct kvmi_get_cpuid_reply){0x7, 0x340, 0x340, 0};
        return 0;
    case 0x80000000:
        *out = (struct kvmi_get_cpuid_reply){0x80000008, 0, 0, 0};
        return 0;
    case 0x80000001:
        *out = (struct kvmi_get_cpuid_reply){0, 0, 0x1, 0x2c100800};
        return 0;
    case 0x80000008:
        *out = (struct kvmi_get_cpuid_reply){0x3027, 0, 0, 0};
        return 0;
    default:
        return -KVM_ENOENT;
    }
}

int kvmi_arch_get_xsave(struct kvmi_vm *vm, unsigned vcpu, struct kvm_xsave *out)
{
    (void)vm;
    memset(out, 0, sizeof(*out));
    out->region[0] = 0x037f;                    /* FCW at reset */
    out->region[6] = 0x1f80;                    /* MXCSR */
    out->region[128] = (uint32_t)V(vcpu)->xcr0; /* XSTATE_BV at byte 512 */
    return 0;
}

int kvmi_arch_get_mtrr_type(struct kvmi_vm *vm, unsigned vcpu, uint64_t gpa, uint8_t *type)
{
    (void)vm;
    (void)vcpu;
    *type = gpa < g_sim.mem_size ? 6 : 0; /* WB RAM, UC elsewhere */
    return 0;
}

int kvmi_arch_inject_exception(struct kvmi_vm *vm, unsigned vcpu, uint8_t nr, bool has_error,
                               uint32_t error_code, uint64_t address)
{
    (void)vm;
    struct sim_vcpu *v = V(vcpu);
    if (v->exc_pending) {
        /* another exception is already being injected: this one will be
         * dropped at entry and kvmi_exception_collided() describes the other */
        v->exc_collided = true;
        return 0;
    }
    v->exc_pending = true;
    v->exc_nr = nr;
    v->exc_has_error = has_error;
    v->exc_error = error_code;
    v->exc_addr = address;
    return 0;
}

/* ---- arch: intercepts (the fake guest asks the engine at every step, so
 * these only have to succeed) ---------------------------------------------- */

int kvmi_arch_control_cr(struct kvmi_vm *vm, unsigned vcpu, unsigned cr, bool enable)
{
    (void)vm, (void)vcpu, (void)cr, (void)enable;
    return 0;
}

int kvmi_arch_control_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, bool enable)
{
    (void)vm, (void)vcpu, (void)msr, (void)enable;
    return 0;
}

int kvmi_arch_control_desc(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm, (void)vcpu, (void)enable;
    return 0;
}

int kvmi_arch_control_bp(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm, (void)vcpu, (void)enable;
    return 0;
}

int kvmi_arch_control_singlestep(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    V(vcpu)->singlestep = enable;
    return 0;
}

/* ---- arch: memory --------------------------------------------------------- */

uint64_t kvmi_arch_max_gfn(struct kvmi_vm *vm)
{
    (void)vm;
    return (g_sim.mem_size >> 12) - 1;
}

int kvmi_arch_read_phys(struct kvmi_vm *vm, uint64_t gpa, void *buf, size_t size)
{
    (void)vm;
    if (gpa >= g_sim.mem_size || size > g_sim.mem_size - gpa)
        return -KVM_ENOENT;
    memcpy(buf, g_sim.mem + gpa, size);
    return 0;
}

int kvmi_arch_write_phys(struct kvmi_vm *vm, uint64_t gpa, const void *buf, size_t size)
{
    (void)vm;
    if (gpa >= g_sim.mem_size || size > g_sim.mem_size - gpa)
        return -KVM_ENOENT;
    memcpy(g_sim.mem + gpa, buf, size);
    return 0;
}

int kvmi_arch_set_page_access(struct kvmi_vm *vm, uint64_t gfn, uint8_t access)
{
    (void)vm;
    if (gfn >= (g_sim.mem_size >> 12))
        return -KVM_EINVAL;
    __atomic_store_n(&g_sim.access[gfn], access, __ATOMIC_RELEASE);
    return 0;
}

uint64_t kvmi_arch_now_ms(struct kvmi_vm *vm)
{
    (void)vm;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t kvmi_arch_tsc_hz(struct kvmi_vm *vm)
{
    (void)vm;
    return 2000000000ull; /* a nominal 2 GHz */
}
