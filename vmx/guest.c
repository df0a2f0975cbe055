/*
 * guest.c - reading guest memory from root mode.  Guest-physical equals
 * host-physical (EPT identity map) except for the hidden hypervisor region,
 * which reads as zeros to the guest and is refused here.  Linear addresses go
 * through the guest's own paging (gwalk.c) with the control registers from
 * the current VMCS.
 */
#include <string.h>

#include "core.h"
#include "gwalk.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"

bool gpa_hidden(uint64_t gpa)
{
    return g_bi && gpa >= g_bi->region_base && gpa < g_bi->region_base + g_bi->region_size;
}

static int read_phys8(void *ctx, uint64_t gpa, uint64_t *val)
{
    (void)ctx;
    if (gpa_hidden(gpa)) {
        *val = 0;
        return 0;
    }
    *val = *(volatile uint64_t *)(uintptr_t)gpa;
    return 0;
}

int guest_read_linear(struct vcpu *v, uint64_t gla, void *buf, unsigned len)
{
    (void)v;
    struct gwalk_regs r = {vmread(VMCS_GUEST_CR0), vmread(VMCS_GUEST_CR3), vmread(VMCS_GUEST_CR4),
                           vmread(VMCS_GUEST_EFER)};
    if (!(vmread(VMCS_ENTRY_CTLS) & ENTRY_IA32E_GUEST))
        r.efer &= ~EFER_LMA;
    uint8_t *out = buf;
    while (len) {
        uint64_t gpa;
        if (gwalk(&r, gla, read_phys8, NULL, &gpa))
            return -1;
        unsigned chunk = (unsigned)(PAGE_SIZE - (gla & (PAGE_SIZE - 1)));
        if (chunk > len)
            chunk = len;
        if (gpa_hidden(gpa))
            memset(out, 0, chunk);
        else
            memcpy(out, (const void *)(uintptr_t)gpa, chunk);
        out += chunk;
        gla += chunk;
        len -= chunk;
    }
    return 0;
}
