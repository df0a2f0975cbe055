/*
 * exit_msr.c - RDMSR/WRMSR exits.  The MSR bitmap (launch.c) lets every MSR
 * through except the ones we own; MSRs outside the bitmap's two ranges always
 * exit (SDM Vol. 3C 25.6.9 MSR-Bitmap Address) and are executed for the guest here, a fault in root
 * mode becoming the guest's #GP. IA32_FEATURE_CONTROL  reads as locked with VMX off (as on a
 * machine whose firmware disabled VMX); writes #GP (it is locked); VMX capability MSRs   #GP, as on
 * a CPU without VMX (0x480-0x492); x2APIC ICR (0x830)    INIT/SIPI/NMI delivered in software
 * (apic.c).
 */
#include "core.h"
#include "log.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_hooks.h"
#include "vmx_policy.h"

void exit_rdmsr(struct vcpu *v)
{
    struct guest_regs *r = v->regs;
    uint32_t msr = (uint32_t)r->rcx;
    uint64_t val;
    if (msr_is_vmx_capability(msr)) {
        inject_gp(v);
        return;
    }
    if (msr == MSR_IA32_FEATURE_CONTROL) {
        val = feature_control_guest_view(rdmsr(msr));
    } else if (safe_rdmsr(msr, &val)) {
        inject_gp(v);
        return;
    }
    r->rax = (uint32_t)val;
    r->rdx = val >> 32;
    vmx_skip_insn(v);
}

void exit_wrmsr(struct vcpu *v)
{
    struct guest_regs *r = v->regs;
    uint32_t msr = (uint32_t)r->rcx;
    uint64_t val = (r->rdx << 32) | (uint32_t)r->rax;
    if (msr_is_vmx_capability(msr) || msr == MSR_IA32_FEATURE_CONTROL) {
        inject_gp(v);
        return;
    }
    if (msr == MSR_X2APIC_ICR) {
        apic_icr_write(v, (uint32_t)val, (uint32_t)(val >> 32), true);
        vmx_skip_insn(v);
        return;
    }
    int k = vmx_hooks.wrmsr(v, msr, &val); /* KVMI: KVMI_EVENT_MSR, VMCS-held MSRs */
    if (k < 0 || (k == 0 && safe_wrmsr(msr, val))) {
        inject_gp(v);
        return;
    }
    vmx_skip_insn(v);
}
