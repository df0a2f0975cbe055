/*
 * policy.c - the guest-visible rules of the VMX core (see
 * include/vmx_policy.h).  Pure: host-tested, called by exit_cpuid.c,
 * exit_msr.c, exit_cr.c and apic.c.
 */
#include "vmx_policy.h"
#include "vmx_defs.h"

bool cpuid_hv_leaf(uint32_t leaf, bool hv_bit, uint32_t regs[4])
{
    if (!hv_bit || leaf < 0x40000000u || leaf > 0x400000ffu)
        return false;
    regs[0] = regs[1] = regs[2] = regs[3] = 0;
    if (leaf == 0x40000000u) {
        /* Max hypervisor leaf, then the vendor "HVKVMIHVKVMI" in EBX, ECX, EDX. */
        regs[0] = 0x40000000u;
        regs[1] = 'H' | 'V' << 8 | 'K' << 16 | (uint32_t)'V' << 24;
        regs[2] = 'M' | 'I' << 8 | 'H' << 16 | (uint32_t)'V' << 24;
        regs[3] = 'K' | 'V' << 8 | 'M' << 16 | (uint32_t)'I' << 24;
    }
    return true;
}

void cpuid_filter(uint32_t leaf, bool hv_bit, uint32_t regs[4])
{
    if (leaf != 1)
        return;
    /* The debug store (BTS, PEBS) writes records through IA32_DS_AREA, which the MSR
     * policy refuses: the guest is told the CPU has none. */
    regs[2] &= ~(CPUID1_ECX_VMX | CPUID1_ECX_DTES64 | CPUID1_ECX_DS_CPL);
    regs[3] &= ~CPUID1_EDX_DS;
    if (hv_bit)
        regs[2] |= CPUID1_ECX_HYPERVISOR;
    else
        regs[2] &= ~CPUID1_ECX_HYPERVISOR;
}

uint64_t feature_control_guest_view(uint64_t hw)
{
    return (hw | FEATURE_CONTROL_LOCK) &
           ~(FEATURE_CONTROL_VMX_INSIDE_SMX | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
}

bool msr_is_vmx_capability(uint32_t msr)
{
    return msr >= MSR_IA32_VMX_FIRST && msr <= MSR_IA32_VMX_LAST;
}

bool cr4_write_allowed(uint64_t value, uint64_t cr4_fixed1)
{
    return !(value & CR4_VMXE) && !(value & ~cr4_fixed1 & ~CR4_VMXE);
}

bool ipi_reaches(const struct ipi_target *t, uint32_t low, uint32_t dest, bool x2)
{
    switch ((low >> 18) & 3) { /* destination shorthand */
    case 1:
        return t->self;
    case 2:
        return true;
    case 3:
        return !t->self;
    }
    if (dest == (x2 ? 0xffffffffu : 0xffu))
        return true;         /* broadcast */
    if (!(low & (1u << 11))) /* physical destination */
        return (x2 ? t->apic_id : (t->apic_id & 0xff)) == dest;
    if (x2) /* x2APIC logical ID: cluster = id[31:4], bit = 1 << id[3:0] (11.12.10.2) */
        return (dest >> 16) == (t->apic_id >> 4) && (dest & (1u << (t->apic_id & 15)));
    uint32_t ldr = t->xapic_ldr >> 24;
    if ((t->xapic_dfr >> 28) == 0xf) /* flat model: a bit per CPU */
        return (ldr & dest) != 0;
    return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf); /* cluster model */
}

static int msr_bitmap_offset(uint32_t msr)
{
    if (msr <= 0x1fffu)
        return 0;
    if (msr >= 0xc0000000u && msr <= 0xc0001fffu)
        return 1024;
    return -1;
}

void msr_bitmap_intercept(uint8_t *bm, uint32_t msr, bool read, bool write)
{
    int off = msr_bitmap_offset(msr);
    if (off < 0)
        return;
    unsigned bit = msr & 0x1fffu;
    if (read)
        bm[off + bit / 8] |= (uint8_t)(1u << (bit % 8));
    if (write)
        bm[2048 + off + bit / 8] |= (uint8_t)(1u << (bit % 8));
}

bool msr_bitmap_exits(const uint8_t *bm, uint32_t msr, bool write)
{
    int off = msr_bitmap_offset(msr);
    if (off < 0)
        return true;
    unsigned bit = msr & 0x1fffu;
    return (bm[(write ? 2048 : 0) + off + bit / 8] >> (bit % 8)) & 1;
}

void io_bitmap_intercept(uint8_t *a, uint8_t *b, uint16_t port)
{
    uint8_t *bm = port < 0x8000 ? a : b;
    unsigned bit = port & 0x7fffu;
    bm[bit / 8] |= (uint8_t)(1u << (bit % 8));
}
