/*
 * guest.c - reading guest memory from root mode.  Guest-physical equals
 * host-physical (EPT identity map) except for the hidden hypervisor region,
 * which reads as zeros to the guest and is refused here.  Linear addresses go
 * through the guest's own paging (gwalk.c) with the control registers from
 * the current VMCS; every table entry and byte comes from guest RAM only
 * (gwalk_read_ram): a CR3 or PTE that points at MMIO, a hole, above the
 * memory map or into the region makes the read fail, never a root-mode read
 * with side effects or a root-mode page fault.
 */

#include "core.h"
#include "gwalk.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"

bool gpa_hidden(uint64_t gpa)
{
    return g_bi && gpa >= g_bi->region_base && gpa < g_bi->region_base + g_bi->region_size;
}

static struct gwalk_regs guest_paging(void)
{
    struct gwalk_regs r = {vmread(VMCS_GUEST_CR0), vmread(VMCS_GUEST_CR3), vmread(VMCS_GUEST_CR4),
                           vmread(VMCS_GUEST_EFER)};
    if (!(vmread(VMCS_ENTRY_CTLS) & ENTRY_IA32E_GUEST))
        r.efer &= ~EFER_LMA;
    return r;
}

int guest_read_linear(struct vcpu *v, uint64_t gla, void *buf, unsigned len)
{
    (void)v;
    struct gwalk_regs r = guest_paging();
    struct gwalk_ram ram = {g_bi, 0}; /* root mode's identity map */
    return gwalk_read_linear(&r, &ram, gla, buf, len) == GWALK_OK ? 0 : -1;
}

int guest_fetch_insn(struct vcpu *v, uint64_t gla, void *buf, unsigned max)
{
    (void)v;
    struct gwalk_regs r = guest_paging();
    struct gwalk_ram ram = {g_bi, 0};
    int n = gwalk_fetch(&r, &ram, gla, buf, max);
    return n > 0 ? n : -1;
}
