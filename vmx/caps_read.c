/*
 * caps_read.c - gather the VT-x facts of the CPU this runs on (CPUID, RDMSR).
 *
 * Each capability MSR is read only when the SDM guarantees it exists, because
 * RDMSR of an absent MSR raises #GP, which in the EFI loader means a firmware
 * exception screen instead of a clean refusal (SDM Vol. 3 Appendix A).
 * Not host-tested: the judgement lives in caps.c.
 */
#include "vmx_caps.h"
#include "vmx_defs.h"
#include "x86.h"

void vmx_caps_read(struct vmx_cpu_facts *f)
{
    uint32_t a, b, c, d;

    /* Field by field: a struct-wide zeroing could become a memset call, and
     * the EFI build links no libc. */
    f->have_vmx_msrs = false;
    f->feature_control = 0;
    f->basic = f->pinbased = f->procbased = f->exit = f->entry = 0;
    f->procbased2 = f->ept_vpid_cap = f->misc = 0;
    f->true_pin = f->true_proc = f->true_exit = f->true_entry = 0;
    f->cr0_fixed0 = f->cr0_fixed1 = f->cr4_fixed0 = f->cr4_fixed1 = 0;

    cpuid(1, 0, &a, &b, &c, &d);
    f->cpuid1_ecx = c;
    if (!(c & CPUID1_ECX_VMX))
        return; /* SDM Vol. 3C 24.6 Discovering Support for VMX: no VMX, no VMX MSRs */

    f->feature_control = rdmsr(MSR_IA32_FEATURE_CONTROL);
    f->basic = rdmsr(MSR_IA32_VMX_BASIC);
    f->pinbased = rdmsr(MSR_IA32_VMX_PINBASED_CTLS);
    f->procbased = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS);
    f->exit = rdmsr(MSR_IA32_VMX_EXIT_CTLS);
    f->entry = rdmsr(MSR_IA32_VMX_ENTRY_CTLS);
    f->misc = rdmsr(MSR_IA32_VMX_MISC);
    f->cr0_fixed0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0);
    f->cr0_fixed1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
    f->cr4_fixed0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
    f->cr4_fixed1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);

    /* A.2: TRUE_* exist only when IA32_VMX_BASIC[55] = 1. */
    if (f->basic & VMX_BASIC_TRUE_CTLS) {
        f->true_pin = rdmsr(MSR_IA32_VMX_TRUE_PINBASED_CTLS);
        f->true_proc = rdmsr(MSR_IA32_VMX_TRUE_PROCBASED_CTLS);
        f->true_exit = rdmsr(MSR_IA32_VMX_TRUE_EXIT_CTLS);
        f->true_entry = rdmsr(MSR_IA32_VMX_TRUE_ENTRY_CTLS);
    }
    /* A.3.3: PROCBASED_CTLS2 exists only if bit 63 of PROCBASED_CTLS is 1. */
    if ((f->procbased >> 32) & PROC_SECONDARY_CTLS) {
        f->procbased2 = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);
        /* A.10: EPT_VPID_CAP exists only if "enable EPT" or "enable VPID"
         * may be 1 (bits 33 or 37 of PROCBASED_CTLS2). */
        if ((f->procbased2 >> 32) & (PROC2_EPT | PROC2_VPID))
            f->ept_vpid_cap = rdmsr(MSR_IA32_VMX_EPT_VPID_CAP);
    }
    f->have_vmx_msrs = true;
}
