/*
 * apic.c - the guest's interprocessor interrupts.  INIT and SIPI belong to
 * the hypervisor (a hardware INIT must never reach a core in VMX non-root:
 * it would exit, stay pending on Bochs 2.7, and on real boards do worse), and
 * guest NMI IPIs are counted in software so that a kick NMI can never swallow
 * one.  Every other IPI goes to the hardware unchanged.
 *
 * Interception:
 *   - x2APIC: WRMSR to the ICR (MSR 0x830) exits through the MSR bitmap;
 *   - xAPIC: the APIC page (IA32_APIC_BASE) is read-only in EPT, so reads go
 *     straight to the hardware and every write exits as an EPT violation; the
 *     faulting store is decoded (insn.c) and performed by us.  Chosen over the
 *     APIC-access page because "virtualize APIC accesses" without APIC-register
 *     virtualization still exits on reads too and gives no written value,
 *     while EPT write protection works on every model Bochs offers.
 * Delivery (requests.c does the receiving side): INIT marks the target, which
 * parks in root mode in wait-for-SIPI; a SIPI to a target that had an INIT
 * starts it in real mode at vector << 12 (unrestricted guest); SIPIs to a
 * running target are ignored, as by hardware, so Linux's INIT-SIPI-SIPI with
 * or without delays and repeated SIPIs start a CPU exactly once.
 */
#include "core.h"
#include "log.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "insn.h"
#include "vmx_policy.h"

#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LDR    0x0d0
#define APIC_DFR    0x0e0
#define ICR_BUSY    (1u << 12)

#define DM_NMI  4u
#define DM_INIT 5u
#define DM_SIPI 6u

bool guest_decode_store(struct vcpu *v, struct insn_store *s);

static volatile uint32_t *apic_reg(unsigned off)
{
    return (volatile uint32_t *)(uintptr_t)(g_vmx.apic_base + off);
}

static bool x2apic_mode(void)
{
    return rdmsr(MSR_IA32_APIC_BASE) & (1ull << 10);
}

void apic_send_nmi(uint32_t apic_id)
{
    const uint32_t low = (DM_NMI << 8) | (1u << 14); /* NMI, physical, assert */
    if (x2apic_mode()) {
        wrmsr(MSR_X2APIC_ICR, ((uint64_t)apic_id << 32) | low);
        return;
    }
    /* The guest may be between its own ICR-high and ICR-low writes: keep its high half. */
    while (*apic_reg(APIC_ICR_LO) & ICR_BUSY)
        cpu_relax();
    uint32_t hi = *apic_reg(APIC_ICR_HI);
    *apic_reg(APIC_ICR_HI) = apic_id << 24;
    *apic_reg(APIC_ICR_LO) = low;
    *apic_reg(APIC_ICR_HI) = hi;
}

/* One IPI of delivery mode dm from the root mode of a CPU the firmware has
 * just woken: its APIC is where IA32_APIC_BASE says now (ICR, SDM Vol. 3A
 * 11.6.1 Interrupt Command Register). */
static void send_ipi_now(uint32_t apic_id, uint32_t low)
{
    uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
    if (base & (1ull << 10)) {
        wrmsr(MSR_X2APIC_ICR, ((uint64_t)apic_id << 32) | low);
        return;
    }
    volatile uint32_t *icr = (volatile uint32_t *)(uintptr_t)((base & ~0xfffull) + APIC_ICR_LO);
    while (icr[0] & ICR_BUSY)
        cpu_relax();
    icr[4] = apic_id << 24; /* ICR high, 0x10 bytes on */
    icr[0] = low;
    while (icr[0] & ICR_BUSY)
        cpu_relax();
}

static void delay_us(unsigned us)
{
    uint64_t t0 = rdtsc(), n = g_bi->tsc_hz / 1000000 * us;
    while (rdtsc() - t0 < n)
        cpu_relax();
}

void apic_start_cpu(uint32_t apic_id, uint32_t vector)
{
    /* INIT, 10 ms, SIPI, 200 us, SIPI (SDM Vol. 3A 9.4.4.1 Typical BSP Initialization
     * Sequence); a second SIPI to a CPU that already started is ignored. */
    send_ipi_now(apic_id, (DM_INIT << 8) | (1u << 14));
    delay_us(10000);
    send_ipi_now(apic_id, (DM_SIPI << 8) | (1u << 14) | (vector & 0xff));
    delay_us(200);
    send_ipi_now(apic_id, (DM_SIPI << 8) | (1u << 14) | (vector & 0xff));
}

static bool targets(struct vcpu *self, struct vcpu *t, uint32_t low, uint32_t dest, bool x2)
{
    struct ipi_target it = {t->apic_id, t->xapic_ldr, t->xapic_dfr, t == self};
    return ipi_reaches(&it, low, dest, x2);
}

static void deliver_init(struct vcpu *t)
{
    spin_lock(&t->lock);
    t->init_pending = 1;
    t->pending_sipi = 0;
    spin_unlock(&t->lock);
    kick(t, false);
}

static void deliver_sipi(struct vcpu *t, uint32_t vector)
{
    spin_lock(&t->lock);
    if (t->init_pending || t->state == VCPU_WAIT_SIPI) {
        t->pending_sipi = 1;
        t->sipi_vector = vector;
    }
    spin_unlock(&t->lock);
    kick(t, false);
}

void apic_icr_write(struct vcpu *v, uint32_t low, uint32_t dest, bool x2)
{
    unsigned dm = (low >> 8) & 7;
    if (dm != DM_NMI && dm != DM_INIT && dm != DM_SIPI) {
        if (x2)
            wrmsr(MSR_X2APIC_ICR, ((uint64_t)dest << 32) | low);
        else
            *apic_reg(APIC_ICR_LO) = low; /* ICR high already holds the guest's value */
        return;
    }
    /* INIT level de-assert (level 0, trigger level): a no-op since the Pentium 4. */
    if (dm == DM_INIT && !(low & (1u << 14)) && (low & (1u << 15)))
        return;
    log_debug("ICR %s write 0x%x dest 0x%x", x2 ? "x2APIC" : "xAPIC", low, dest);
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        struct vcpu *t = g_vmx.vcpus[i];
        if (!t || t->state == VCPU_OFF || !targets(v, t, low, dest, x2))
            continue;
        if (dm == DM_INIT) {
            deliver_init(t);
        } else if (dm == DM_SIPI) {
            t->stats.sipis++;
            deliver_sipi(t, low & 0xff);
        } else {
            __atomic_add_fetch(&t->nmi_pending, 1, __ATOMIC_SEQ_CST);
            if (t != v)
                kick(t, false);
        }
    }
}

bool apic_mmio_write(struct vcpu *v, uint64_t gpa)
{
    struct insn_store s;
    if (!guest_decode_store(v, &s))
        return false;
    unsigned off = (unsigned)(gpa & 0xffc);
    uint32_t val =
        (uint32_t)insn_store_value(&s, s.src == INSN_SRC_REG ? vcpu_gpr(v->regs, s.reg) : 0);
    if (s.xchg)
        vcpu_set_gpr(v->regs, s.reg, *apic_reg(off));
    switch (off) {
    case APIC_ICR_LO:
        apic_icr_write(v, val, *apic_reg(APIC_ICR_HI) >> 24, false);
        break;
    case APIC_LDR:
        v->xapic_ldr = val;
        *apic_reg(off) = val;
        break;
    case APIC_DFR:
        v->xapic_dfr = val;
        *apic_reg(off) = val;
        break;
    default:
        *apic_reg(off) = val;
    }
    vmx_advance_rip(v, s.len);
    return true;
}

/*
 * Real mode at cs:ip, as after INIT and a SIPI, or as the firmware enters an
 * OS's waking vector (SDM Vol. 3A 10.1.1 Processor State After Reset, Table
 * 10-1; ACPI 6.5 5.2.10 Firmware ACPI Control Structure).  cr0 is what the
 * guest reads (the shadow).
 */
void vcpu_start_real(struct vcpu *v, uint16_t cs, uint64_t ip, uint64_t cr0)
{
    vmwrite(VMCS_CR0_READ_SHADOW, cr0);
    vmwrite(VMCS_GUEST_CR0, vmx_guest_cr0(cr0));
    vmwrite(VMCS_CR4_READ_SHADOW, 0);
    vmwrite(VMCS_GUEST_CR4, vmx_guest_cr4(0));
    vmwrite(VMCS_GUEST_CR3, 0);
    vmwrite(VMCS_GUEST_DR7, 0x400);
    vmwrite(VMCS_GUEST_EFER, 0);
    vmwrite(VMCS_ENTRY_CTLS, vmread(VMCS_ENTRY_CTLS) & ~(uint64_t)ENTRY_IA32E_GUEST);

    static const uint32_t data_segs[][4] = {
        {VMCS_GUEST_DS_SEL, VMCS_GUEST_DS_BASE, VMCS_GUEST_DS_LIMIT, VMCS_GUEST_DS_AR},
        {VMCS_GUEST_ES_SEL, VMCS_GUEST_ES_BASE, VMCS_GUEST_ES_LIMIT, VMCS_GUEST_ES_AR},
        {VMCS_GUEST_FS_SEL, VMCS_GUEST_FS_BASE, VMCS_GUEST_FS_LIMIT, VMCS_GUEST_FS_AR},
        {VMCS_GUEST_GS_SEL, VMCS_GUEST_GS_BASE, VMCS_GUEST_GS_LIMIT, VMCS_GUEST_GS_AR},
        {VMCS_GUEST_SS_SEL, VMCS_GUEST_SS_BASE, VMCS_GUEST_SS_LIMIT, VMCS_GUEST_SS_AR},
    };
    for (unsigned i = 0; i < 5; i++) {
        vmwrite(data_segs[i][0], 0);
        vmwrite(data_segs[i][1], 0);
        vmwrite(data_segs[i][2], 0xffff);
        vmwrite(data_segs[i][3], 0x93); /* present, read/write, accessed */
    }
    vmwrite(VMCS_GUEST_CS_SEL, cs);
    vmwrite(VMCS_GUEST_CS_BASE, (uint64_t)cs << 4);
    vmwrite(VMCS_GUEST_CS_LIMIT, 0xffff);
    /* Present, read/write, accessed: CS as after a reset (Table 10-1), the type unrestricted guests
     * may give CS (SDM Vol. 3C 27.3.1.2 Checks on Guest Segment Registers).  A code type would tie
     * the selector's RPL to DPL 0, and a waking vector's CS (vector >> 4) has any low bits. */
    vmwrite(VMCS_GUEST_CS_AR, 0x93);
    vmwrite(VMCS_GUEST_TR_SEL, 0);
    vmwrite(VMCS_GUEST_TR_BASE, 0);
    vmwrite(VMCS_GUEST_TR_LIMIT, 0xffff);
    vmwrite(VMCS_GUEST_TR_AR, 0x8b); /* busy TSS: VM entry needs a usable TR (26.3.1.2) */
    vmwrite(VMCS_GUEST_LDTR_SEL, 0);
    vmwrite(VMCS_GUEST_LDTR_BASE, 0);
    vmwrite(VMCS_GUEST_LDTR_LIMIT, 0xffff);
    vmwrite(VMCS_GUEST_LDTR_AR, VMX_AR_UNUSABLE);
    vmwrite(VMCS_GUEST_GDTR_BASE, 0);
    vmwrite(VMCS_GUEST_GDTR_LIMIT, 0xffff);
    vmwrite(VMCS_GUEST_IDTR_BASE, 0);
    vmwrite(VMCS_GUEST_IDTR_LIMIT, 0xffff);
    vmwrite(VMCS_GUEST_RIP, ip);
    vmwrite(VMCS_GUEST_RSP, 0);
    vmwrite(VMCS_GUEST_RFLAGS, 0x2);
    vmwrite(VMCS_GUEST_INTERRUPTIBILITY, 0);
    vmwrite(VMCS_GUEST_ACTIVITY_STATE, VMX_ACTIVITY_ACTIVE);
    vmwrite(VMCS_GUEST_PENDING_DBG, 0);
    vmwrite(VMCS_ENTRY_INTR_INFO, 0);

    struct guest_regs *r = v->regs;
    uint32_t a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    *r = (struct guest_regs){0};
    r->rdx = a; /* EDX = processor signature after INIT (Table 10-1) */
    /* A new address space for this VPID (SDM Vol. 3C 31.3 VMX Instructions, INVVPID). */
    vmx_flush_vpid(v);
}

/* After INIT and a SIPI with `vector`: CS = vector << 8 (base vector << 12),
 * IP 0, caches "disabled" as after INIT (CR0 = 0x60000010, SDM Vol. 3A 9.4.4
 * MP Initialization Example). */
void vcpu_start_at_sipi(struct vcpu *v, uint32_t vector)
{
    log_debug("vCPU %u starts at SIPI vector 0x%x", v->index, vector);
    vcpu_start_real(v, (uint16_t)((vector & 0xff) << 8), 0, 0x60000010ull);
}
