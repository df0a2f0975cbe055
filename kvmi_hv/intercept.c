/*
 * intercept.c - the intercepts the introspector turns on and off: CR
 * writes, MSR writes, descriptor-table exits, #BP, single-stepping.
 */

#include "vmx/step.h"
#include "vmx/vmx_insn.h"
#include "vmx/vmx_int.h"
#include "internal.h"

/* ---- intercepts -------------------------------------------------------------------- */

int kvmi_arch_control_cr(struct kvmi_vm *vm, unsigned vcpu, unsigned cr, bool enable)
{
    (void)vm;
    struct vcpu *v = vc(vcpu);
    if (cr == 3) {
        /* CR3-load exiting (SDM Vol. 3C 25.6.2 Processor-Based VM-Execution Controls); kept when
         * the CPU forces it (allowed-0). */
        khv[vcpu].cr3 = enable;
        bool forced = g_vmx.ctl.v[VMX_CTL_PROC] & PROC_CR3_LOAD_EXITING;
        if (enable)
            vmx_set_proc_ctls(v, PROC_CR3_LOAD_EXITING, 0);
        else if (!forced)
            vmx_set_proc_ctls(v, 0, PROC_CR3_LOAD_EXITING);
        return 0;
    }
    if (cr != 0 && cr != 4)
        return -KVM_EINVAL;
    /* Owning every bit makes every value-changing MOV to CRn exit (SDM Vol. 3C 26.1.3 Instructions
     * That Cause VM Exits Conditionally). The read shadow takes the guest's full view first, so
     * reads stay right. */
    uint64_t visible = khv_guest_cr(cr);
    if (enable) {
        if (cr == 0) {
            vmwrite(VMCS_CR0_READ_SHADOW, visible);
            v->cr0_mask = 0xffffffffull;
            vmwrite(VMCS_CR0_GUEST_HOST_MASK, v->cr0_mask);
        } else {
            vmwrite(VMCS_CR4_READ_SHADOW, visible);
            v->cr4_mask = 0xffffffffull;
            vmwrite(VMCS_CR4_GUEST_HOST_MASK, v->cr4_mask);
        }
    } else {
        uint64_t keep0 = v->cr0_mask, keep4 = v->cr4_mask;
        vmx_cr_masks(v); /* back to the VMX-fixed bits (and CR4.VMXE) */
        if (cr == 0) {
            vmwrite(VMCS_CR4_GUEST_HOST_MASK, v->cr4_mask = keep4);
        } else {
            vmwrite(VMCS_CR0_GUEST_HOST_MASK, v->cr0_mask = keep0);
        }
    }
    return 0;
}

int kvmi_arch_control_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, bool enable)
{
    (void)vm;
    unsigned byte;
    uint8_t bit;
    if (kvmi_msr_write_bit(msr, &byte, &bit))
        return -KVM_EINVAL;
    uint8_t *bm = (uint8_t *)vc(vcpu)->msr_bitmap;
    const uint8_t *tmpl = (const uint8_t *)g_vmx.msr_bitmap_template;
    if (enable)
        bm[byte] |= bit;
    else /* the hypervisor's own intercepts (template) stay */
        bm[byte] = (uint8_t)((bm[byte] & ~bit) | (tmpl[byte] & bit));
    return 0;
}

bool khv_have_proc2(uint32_t bit)
{
    return (g_vmx.facts.procbased2 >> 32) & bit;
}

bool khv_have_mtf(void)
{
    return vmx_mtf_offered();
}

void khv_set_desc_exiting(bool on)
{
    uint32_t p2 = (uint32_t)vmread(VMCS_PROC2_CTLS);
    p2 = on ? (p2 | PROC2_DESC_TABLE_EXIT) : (p2 & ~PROC2_DESC_TABLE_EXIT);
    vmwrite(VMCS_PROC2_CTLS, p2);
}

int kvmi_arch_control_desc(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    if (!khv_have_proc2(PROC2_DESC_TABLE_EXIT) || !khv_have_mtf())
        return -KVM_EOPNOTSUPP;
    khv[vcpu].desc = enable;
    if (!khv[vcpu].ss_desc) /* a step with it lifted puts it back itself */
        khv_set_desc_exiting(enable);
    return 0;
}

int kvmi_arch_control_bp(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    struct vcpu *v = vc(vcpu);
    khv[vcpu].bp = enable;
    v->exc_bitmap = enable ? (v->exc_bitmap | (1u << 3)) : (v->exc_bitmap & ~(1u << 3));
    vmwrite(VMCS_EXCEPTION_BITMAP, v->exc_bitmap);
    return 0;
}

int kvmi_arch_control_singlestep(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    if (enable && !khv_have_mtf())
        return -KVM_EOPNOTSUPP;
    /* enable: the PF hook starts the step after the event returns; disable:
     * the step (if any) completes, but nothing is reported. */
    khv[vcpu].ss_requested = enable;
    if (!enable)
        khv[vcpu].ss_report = false;
    return 0;
}
