/*
 * exit_cpuid.c - CPUID (exits unconditionally, SDM Vol. 3C 26.1.2 Instructions That Cause VM Exits
 * Unconditionally).  The guest sees the processor's answers except that VMX is hidden
 * (CPUID.1:ECX[5] = 0, so no guest tries VMXON) and, only with `cpuid_hv_bit = yes`, the
 * hypervisor-present bit (CPUID.1:ECX[31]) and the hypervisor leaves at
 * 0x40000000 (max leaf, vendor "HVKVMIHVKVMI").  Without it, leaves
 * 0x40000000+ pass through like any other, as on bare metal.
 */
#include "core.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_policy.h"

void exit_cpuid(struct vcpu *v)
{
    struct guest_regs *r = v->regs;
    uint32_t leaf = (uint32_t)r->rax, sub = (uint32_t)r->rcx;
    uint32_t x[4];
    bool hv = g_bi->config.cpuid_hv_bit;
    if (!cpuid_hv_leaf(leaf, hv, x)) {
        cpuid(leaf, sub, &x[0], &x[1], &x[2], &x[3]);
        cpuid_filter(leaf, hv, x);
    }
    r->rax = x[0];
    r->rbx = x[1];
    r->rcx = x[2];
    r->rdx = x[3];
    vmx_skip_insn(v);
}
