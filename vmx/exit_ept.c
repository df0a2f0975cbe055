/*
 * exit_ept.c - EPT violations and misconfigurations (SDM Vol. 3C 29.3.3 EPT-Induced VM Exits; exit
 * qualification 28.2.1, Table 28-7).  Three violations are expected:
 *   - writes to the xAPIC page, which is read-only so that ICR writes can be
 *     seen (apic.c decodes and emulates the store);
 *   - writes to the page of an FADT reset register in memory space, which is
 *     read-only so that the reset can be seen (power.c emulates the store);
 *   - writes into the hidden hypervisor region (mapped read-only onto a zero
 *     page) or the hidden NIC's BARs/ECAM pages (read-only onto a page of
 *     0xff, hide.c): the store is decoded only for its length and dropped;
 *   - writes to the ECAM pages of the functions on the NIC's path (mapped
 *     read-only onto themselves, hide.c): performed through the PCI filter.
 * Anything else is a hypervisor bug or a guest touching what is not there:
 * it is diagnosed (GPA, GLA, RIP, qualification) with a VMCS dump and the
 * vCPU stops, never a silent hang.
 */
#include "core.h"
#include "insn.h"
#include "log.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_hooks.h"

static uint64_t dropped_writes;

/* Decodes the store at guest RIP (insn.c); false if it is not one we understand. */
bool guest_decode_store(struct vcpu *v, struct insn_store *s)
{
    uint8_t bytes[15];
    uint64_t rip = vmread(VMCS_GUEST_RIP);
    uint64_t cs_ar = vmread(VMCS_GUEST_CS_AR);
    enum insn_mode mode;
    if ((vmread(VMCS_ENTRY_CTLS) & ENTRY_IA32E_GUEST) && (cs_ar & (1u << 13)))
        mode = INSN_64;
    else
        mode = (cs_ar & (1u << 14)) ? INSN_32 : INSN_16;
    uint64_t gla = mode == INSN_64 ? rip : vmread(VMCS_GUEST_CS_BASE) + (rip & 0xffffffffull);
    int n = guest_fetch_insn(v, gla, bytes, sizeof(bytes));
    if (n < 0)
        return false;
    return insn_decode_store(bytes, (size_t)n, mode, s) == 0;
}

static void diagnose(struct vcpu *v, const char *what, uint64_t q, uint64_t gpa)
{
    uint64_t gla = (q & EPT_VIOL_GLA_VALID) ? vmread(VMCS_GUEST_LINEAR_ADDR) : 0;
    log_error("vCPU %u %s: GPA 0x%llx GLA 0x%llx%s RIP 0x%llx qualification 0x%llx (%s%s%s)",
              v->index, what, (unsigned long long)gpa, (unsigned long long)gla,
              (q & EPT_VIOL_GLA_VALID) ? "" : " (invalid)",
              (unsigned long long)vmread(VMCS_GUEST_RIP), (unsigned long long)q,
              (q & EPT_VIOL_READ) ? "read " : "", (q & EPT_VIOL_WRITE) ? "write " : "",
              (q & EPT_VIOL_FETCH) ? "fetch" : "");
}

void exit_ept_violation(struct vcpu *v)
{
    uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
    uint64_t gpa = vmread(VMCS_GUEST_PHYS_ADDR);

    /* An IRET that unblocked NMIs faulted: blocking comes back (SDM Vol. 3C 28.2.3 Information
     * About NMI Unblocking Due to IRET). */
    if ((q & EPT_VIOL_NMI_UNBLOCK) && !(vmread(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID))
        vmwrite(VMCS_GUEST_INTERRUPTIBILITY,
                vmread(VMCS_GUEST_INTERRUPTIBILITY) | VMX_INTERRUPTIBILITY_NMI);

    if ((q & EPT_VIOL_WRITE) && (gpa & ~0xfffull) == g_vmx.apic_base) {
        if (apic_mmio_write(v, gpa))
            return;
        diagnose(v, "APIC write not decoded", q, gpa);
        vmx_fatal(v, "cannot emulate a write to the APIC page");
    }
    if ((q & EPT_VIOL_WRITE) && vmx_guarded_write(v, gpa))
        return;
    if ((q & EPT_VIOL_WRITE) && vmx_power_mem_write(v, gpa)) /* the FADT reset register's page */
        return;
    if ((q & EPT_VIOL_WRITE) && (gpa_hidden(gpa) || vmx_hidden_device_gpa(gpa))) {
        struct insn_store s;
        if (guest_decode_store(v, &s)) {
            if (dropped_writes++ < 4)
                diagnose(v, "write to the hidden region dropped", q, gpa);
            vmx_advance_rip(v, s.len);
            return;
        }
    }
    if (vmx_hooks.ept_violation(v, q, gpa)) /* KVMI: a page the introspector restricted */
        return;
    diagnose(v, "EPT violation", q, gpa);
    vmx_fatal(v, "unexpected EPT violation");
}

void exit_ept_misconfig(struct vcpu *v)
{
    uint64_t gpa = vmread(VMCS_GUEST_PHYS_ADDR);
    log_error("EPT misconfiguration: GPA 0x%llx RIP 0x%llx", (unsigned long long)gpa,
              (unsigned long long)vmread(VMCS_GUEST_RIP));
    vmx_fatal(v, "EPT misconfiguration");
}
