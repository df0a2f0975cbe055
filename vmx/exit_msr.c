/*
 * exit_msr.c - RDMSR/WRMSR exits.  Deny by default: the MSR bitmap (built
 * from vmx/msr_policy.h's table) lets only an allow-list through, and
 * every access that exits is judged here by the same table: performed on the
 * hardware, refused with #GP, a write dropped, or emulated so that the guest
 * cannot move what root mode relies on (the APIC window and its kicks, the
 * memory type of the region, XD, the firmware's speculation controls, the
 * TSC root mode times its deadlines with).  A fault in root mode becomes the
 * guest's #GP.  MSRs outside the bitmap's two ranges always exit (SDM Vol. 3C
 * 25.6.9 MSR-Bitmap Address) and take the table's default rule.
 */
#include "core.h"
#include "log.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_hooks.h"
#include "msr_policy.h"
#include "mtrr.h"
#include "vmx_policy.h"

static bool tsc_offsetting(const struct vcpu *v)
{
    return v->proc_ctls & PROC_TSC_OFFSETTING;
}

/* Emulated reads; false = #GP. */
static bool emulate_read(struct vcpu *v, enum msr_kind kind, uint32_t msr, uint64_t *val)
{
    switch (kind) {
    case MSR_K_FEATURE_CONTROL:
        *val = feature_control_guest_view(rdmsr(msr));
        return true;
    case MSR_K_TSC_ADJUST: /* the guest's TSC runs VMCS_TSC_OFFSET ahead of the hardware's */
        if (safe_rdmsr(msr, val))
            return false;
        *val += vmread(VMCS_TSC_OFFSET);
        return true;
    case MSR_K_SPEC_CTRL:
        if (safe_rdmsr(msr, val)) /* absent on this CPU: #GP as without us */
            return false;
        *val = v->guest_spec_ctrl;
        return true;
    case MSR_K_DEBUGCTL:
        *val = vmread(VMCS_GUEST_DEBUGCTL);
        return true;
    default:
        return safe_rdmsr(msr, val) == 0;
    }
}

/* Rate-limited: a guest retrying a refused MTRR write must not flood the log. */
static void note_mtrr_drop(struct vcpu *v, uint32_t msr, uint64_t val)
{
    if (v->stats.mtrr_dropped++ < 4)
        log_warn("vCPU %u: MTRR 0x%x <- 0x%llx dropped: it would retype the hypervisor's region",
                 v->index, msr, (unsigned long long)val);
}

/* Emulated writes; false = #GP. */
static bool emulate_write(struct vcpu *v, enum msr_kind kind, uint32_t msr, uint64_t val)
{
    uint64_t cur;
    switch (kind) {
    case MSR_K_APIC_BASE:
        return apic_base_write_ok(rdmsr(msr), val, g_vmx.phys_bits) && safe_wrmsr(msr, val) == 0;
    case MSR_K_MISC_ENABLE:
        return misc_enable_write_ok(rdmsr(msr), val) && safe_wrmsr(msr, val) == 0;
    case MSR_K_MTRR: {
        struct mtrr_state s;
        mtrr_read(&s);
        if (!mtrr_write_ok(&s, msr, val, g_bi->region_base, g_bi->region_size)) {
            note_mtrr_drop(v, msr, val);
            return true;
        }
        return safe_wrmsr(msr, val) == 0;
    }
    case MSR_K_SPEC_CTRL:
        if (safe_wrmsr(msr, spec_ctrl_hw_value(val, v->host_spec_ctrl)))
            return false;
        v->guest_spec_ctrl = val;
        return true;
    case MSR_K_TSC: /* SDM Vol. 3C 26.3 TSC offsetting: the hardware TSC never moves */
        if (!tsc_offsetting(v))
            return false;
        vmwrite(VMCS_TSC_OFFSET, val - rdtsc());
        return true;
    case MSR_K_TSC_ADJUST:
        if (!tsc_offsetting(v) || safe_rdmsr(msr, &cur))
            return false;
        vmwrite(VMCS_TSC_OFFSET, val - cur);
        return true;
    case MSR_K_DEBUGCTL:
        if (!debugctl_write_ok(val) || !(vmread(VMCS_ENTRY_CTLS) & ENTRY_LOAD_DEBUG_CTLS))
            return false;
        vmwrite(VMCS_GUEST_DEBUGCTL, val);
        return true;
    default:
        return false;
    }
}

void exit_rdmsr(struct vcpu *v)
{
    struct guest_regs *r = v->regs;
    uint32_t msr = (uint32_t)r->rcx;
    const struct msr_rule *rule = msr_rule_of(msr);
    uint64_t val = 0;
    bool ok;
    if (rule->read == MSR_GP)
        ok = false;
    else if (rule->read == MSR_EMULATE)
        ok = emulate_read(v, (enum msr_kind)rule->kind, msr, &val);
    else
        ok = safe_rdmsr(msr, &val) == 0;
    if (!ok) {
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
    const struct msr_rule *rule = msr_rule_of(msr);
    if (rule->write == MSR_DROP) {
        vmx_skip_insn(v);
        return;
    }
    if (msr_write_refused(msr, val)) {
        inject_gp(v); /* before KVMI's event: the tool sees only writes the guest may make */
        return;
    }
    if (rule->kind == MSR_K_X2APIC_ICR) {
        apic_icr_write(v, (uint32_t)val, (uint32_t)(val >> 32), true);
        vmx_skip_insn(v);
        return;
    }
    int k = vmx_hooks.wrmsr(v, msr, &val); /* KVMI: KVMI_EVENT_MSR, VMCS-held MSRs */
    bool ok;
    if (k != 0)
        ok = k > 0;
    else if (rule->write == MSR_EMULATE)
        ok = emulate_write(v, (enum msr_kind)rule->kind, msr, val);
    else
        ok = safe_wrmsr(msr, val) == 0;
    if (!ok) {
        inject_gp(v);
        return;
    }
    vmx_skip_insn(v);
}
