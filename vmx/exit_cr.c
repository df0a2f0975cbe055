/*
 * exit_cr.c - control-register access exits (SDM Vol. 3C 26.1.3 Instructions That Cause VM Exits
 * Conditionally; qualification in 28.2.1, Table 28-3).  CR0/CR4 writes exit only when they touch a
 * bit we own (guest/host mask = the VMX fixed bits, CR4.VMXE among them); the guest reads its own
 * value from the read shadow, so CR4.VMXE is never seen set. CR3 exits only when the CPU cannot
 * clear CR3-load/store exiting.
 */
#include "core.h"
#include "entry_rules.h"
#include "log.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_hooks.h"
#include "vmx_policy.h"

/* Toggling CR0.PG with EFER.LME set enters or leaves IA-32e mode (SDM Vol. 3A 10.8.5 Initializing
 * IA-32e Mode); the CPU does this itself for guest writes that do not exit, we do it for those that
 * do. */
static void update_lma(uint64_t old_cr0, uint64_t new_cr0)
{
    if (!((old_cr0 ^ new_cr0) & CR0_PG))
        return;
    uint64_t efer = vmread(VMCS_GUEST_EFER);
    uint32_t entry = (uint32_t)vmread(VMCS_ENTRY_CTLS);
    if ((new_cr0 & CR0_PG) && (efer & EFER_LME)) {
        efer |= EFER_LMA;
        entry |= ENTRY_IA32E_GUEST;
    } else if (!(new_cr0 & CR0_PG)) {
        efer &= ~EFER_LMA;
        entry &= ~ENTRY_IA32E_GUEST;
    }
    vmwrite(VMCS_GUEST_EFER, efer);
    vmwrite(VMCS_ENTRY_CTLS, entry);
}

/* A new CR value, the guest's or the introspector's (KVMI_EVENT_CR reply), is judged by the
 * VM-entry rules before it reaches the VMCS (entry_rules.h): refused with #GP, as MOV to CR would
 * be, never a failed VM entry. */
static bool cr_value_ok(struct vcpu *v, unsigned cr, uint64_t val)
{
    static unsigned logged;
    struct entry_state s;
    vmx_entry_state(&s);
    const char *why = cr == 0   ? entry_check_cr0(&s, val)
                      : cr == 4 ? entry_check_cr4(&s, val)
                                : entry_check_cr3(&s, val);
    if (why && logged < 16) {
        logged++;
        log_warn("vCPU %u: CR%u <- 0x%llx refused (#GP): %s", v->index, cr, (unsigned long long)val,
                 why);
    }
    return !why;
}

static bool guest_write_cr0(struct vcpu *v, uint64_t val)
{
    if (!cr_value_ok(v, 0, val))
        return false;
    uint64_t old = vmread(VMCS_CR0_READ_SHADOW);
    vmwrite(VMCS_CR0_READ_SHADOW, val);
    vmwrite(VMCS_GUEST_CR0, vmx_guest_cr0(val));
    update_lma(old, val);
    return true;
}

static bool guest_write_cr4(struct vcpu *v, uint64_t val)
{
    const struct vmx_cpu_facts *f = &g_vmx.facts;
    /* VMX is hidden: setting VMXE faults as on a CPU without it; so do unsupported bits. */
    if (!cr4_write_allowed(val, f->cr4_fixed1) || !cr_value_ok(v, 4, val))
        return false;
    vmwrite(VMCS_CR4_READ_SHADOW, val);
    vmwrite(VMCS_GUEST_CR4, vmx_guest_cr4(val));
    /* A real MOV to CR4 that changes paging bits flushes the TLB; do it for the guest. */
    vmx_flush_vpid(v);
    return true;
}

void exit_cr(struct vcpu *v)
{
    uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
    unsigned cr = q & 15, type = (q >> 4) & 3, gpr = (q >> 8) & 15;
    bool ok = true;

    switch (type) {
    case 0: { /* MOV to CR */
        uint64_t val = vcpu_gpr(v->regs, gpr);
        /* KVMI: KVMI_EVENT_CR may veto the write or change the value */
        if (cr == 0)
            ok = vmx_hooks.cr_write(v, 0, vmread(VMCS_CR0_READ_SHADOW), &val) &&
                 guest_write_cr0(v, val);
        else if (cr == 4)
            ok = vmx_hooks.cr_write(v, 4, vmread(VMCS_CR4_READ_SHADOW), &val) &&
                 guest_write_cr4(v, val);
        else if (cr == 3 && (!vmx_hooks.cr_write(v, 3, vmread(VMCS_GUEST_CR3), &val) ||
                             !cr_value_ok(v, 3, val)))
            ok = false;
        else if (cr == 3) {
            vmwrite(VMCS_GUEST_CR3, val & ~(1ull << 63));
            if (!(val & (1ull << 63)))
                vmx_flush_vpid(v);
        } else
            vmx_fatal(v, "MOV to CR8 exit (TPR shadowing is not used)");
        break;
    }
    case 1: /* MOV from CR: only CR3 (and CR8) can exit */
        if (cr == 3)
            vcpu_set_gpr(v->regs, gpr, vmread(VMCS_GUEST_CR3));
        else
            vmx_fatal(v, "MOV from CR8 exit (TPR shadowing is not used)");
        break;
    case 2: { /* CLTS */
        uint64_t cur = vmread(VMCS_CR0_READ_SHADOW), val = cur & ~(1ull << 3);
        ok = vmx_hooks.cr_write(v, 0, cur, &val) && guest_write_cr0(v, val); /* KVMI */
        break;
    }
    case 3: { /* LMSW: bits 3:0 only, and it cannot clear PE */
        uint64_t src = (q >> 16) & 0xf, cur = vmread(VMCS_CR0_READ_SHADOW);
        uint64_t val = (cur & ~0xeull) | (src & 0xe) | ((cur | src) & 1);
        ok = vmx_hooks.cr_write(v, 0, cur, &val) && guest_write_cr0(v, val); /* KVMI */
        break;
    }
    }
    if (!ok) {
        inject_gp(v);
        return;
    }
    vmx_skip_insn(v);
}
