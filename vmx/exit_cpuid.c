/*
 * exit_cpuid.c - CPUID (exits unconditionally, SDM 26.1.2).  The guest sees
 * the processor's answers except that VMX is hidden (CPUID.1:ECX[5] = 0, so
 * no guest tries VMXON) and, only with `cpuid_hv_bit = yes`, the
 * hypervisor-present bit (CPUID.1:ECX[31]) and the hypervisor leaves at
 * 0x40000000 (max leaf, vendor "HVKVMIHVKVMI").  Without it, leaves
 * 0x40000000+ pass through like any other, as on bare metal.
 */
#include "core.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"

void exit_cpuid(struct vcpu *v)
{
    struct guest_regs *r = v->regs;
    uint32_t leaf = (uint32_t)r->rax, sub = (uint32_t)r->rcx;
    uint32_t a, b, c, d;
    bool hv = g_bi->config.cpuid_hv_bit;

    if (hv && leaf >= 0x40000000u && leaf <= 0x400000ffu) {
        a = b = c = d = 0;
        if (leaf == 0x40000000u) {
            a = 0x40000000u;
            /* "HVKVMIHVKVMI" in EBX, ECX, EDX */
            b = 'H' | 'V' << 8 | 'K' << 16 | 'V' << 24;
            c = 'M' | 'I' << 8 | 'H' << 16 | 'V' << 24;
            d = 'K' | 'V' << 8 | 'M' << 16 | 'I' << 24;
        }
    } else {
        cpuid(leaf, sub, &a, &b, &c, &d);
        if (leaf == 1) {
            c &= ~CPUID1_ECX_VMX;
            if (hv)
                c |= CPUID1_ECX_HYPERVISOR;
            else
                c &= ~CPUID1_ECX_HYPERVISOR;
        }
    }
    r->rax = a;
    r->rbx = b;
    r->rcx = c;
    r->rdx = d;
    vmx_skip_insn(v);
}
