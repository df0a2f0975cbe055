/*
 * resume.c - the wake from S3 (on_sleep = resume; sleep.c put the
 * hypervisor's waking vector in the FACS).  The firmware runs its resume
 * path and jumps to the wake trampoline (core/wake.S) in real mode on the
 * BSP; the trampoline brings it to vmx_wake_entry in 64-bit mode on the
 * hypervisor's page tables.  Every CPU lost its VMX state, its tables and
 * its APIC setup; memory (the region, the EPT, every vCPU) is as it was.
 *
 * The BSP:
 *   1. moves to its vCPU's host stack and loads its own GDT/TSS/IDT;
 *   2. lets the layers above take their devices back (vmx_hooks.resume: DMA
 *      remapping on again, the NIC reset and restarted, the introspector
 *      redialled by the transport's own redial);
 *   3. starts every AP through the same trampoline (INIT-SIPI-SIPI, one at a
 *      time, since they share the trampoline's stack until each moves to its
 *      own), and waits until each has re-entered VMX, parked in wait-for-SIPI
 *      as the OS expects its APs after a wake;
 *   4. re-enters VMX itself and launches the OS at the waking vector the OS
 *      wrote in the FACS, in the mode ACPI gives it (real mode CS:IP =
 *      (vector >> 4):(vector & 0xF), or flat 32-bit at X_Firmware_Waking_Vector).
 * Fail closed: if DMA protection, an AP or VMX cannot be brought back, the
 * OS does not run unwatched: the key is scrubbed and the platform reset.
 */
#include "core.h"
#include "log.h"
#include "serial.h"
#include "vmx.h"
#include "vmx_hooks.h"
#include "vmx_insn.h"
#include "vmx_int.h"

#define AP_WAIT_MS 1000u

static uint8_t wake_stack[8192] __attribute__((aligned(16)));

uint64_t vmx_wake_stack_top(void)
{
    return (uint64_t)(uintptr_t)(wake_stack + sizeof(wake_stack));
}

static bool waited_out(uint64_t t0, unsigned ms)
{
    return rdtsc() - t0 > g_bi->tsc_hz / 1000 * ms;
}

/* The guest GPRs at the top of the host stack, where the exit stub keeps them. */
static struct guest_regs *top_regs(struct vcpu *v)
{
    return (struct guest_regs *)(uintptr_t)(v->host_stack_top - sizeof(struct guest_regs));
}

__attribute__((noreturn)) static void fail_closed(struct vcpu *v, const char *why)
{
    log_error("S3 wake: %s: the OS must not run unwatched; the key is scrubbed and the "
              "platform reset",
              why);
    vmx_hooks.power(v, POWER_RESET);
    vmx_platform_reset(v);
}

/* Guest state for the OS's waking vector (ACPI 6.5 5.2.10). */
static void start_os(struct vcpu *v)
{
    const struct acpi_wake *w = &g_wake_saved.os;
    vcpu_start_real(v, w->cs, w->rip, 0x10); /* CR0.ET; caches on, as the firmware leaves them */
    if (w->mode == WAKE_PROT32) {
        /* Flat 32-bit protected mode, paging off. */
        vmwrite(VMCS_CR0_READ_SHADOW, 0x11);
        vmwrite(VMCS_GUEST_CR0, vmx_guest_cr0(0x11));
        static const uint32_t segs[][5] = {
            {VMCS_GUEST_CS_SEL, VMCS_GUEST_CS_BASE, VMCS_GUEST_CS_LIMIT, VMCS_GUEST_CS_AR, 0xc09b},
            {VMCS_GUEST_DS_SEL, VMCS_GUEST_DS_BASE, VMCS_GUEST_DS_LIMIT, VMCS_GUEST_DS_AR, 0xc093},
            {VMCS_GUEST_ES_SEL, VMCS_GUEST_ES_BASE, VMCS_GUEST_ES_LIMIT, VMCS_GUEST_ES_AR, 0xc093},
            {VMCS_GUEST_SS_SEL, VMCS_GUEST_SS_BASE, VMCS_GUEST_SS_LIMIT, VMCS_GUEST_SS_AR, 0xc093},
        };
        for (unsigned i = 0; i < 4; i++) {
            vmwrite(segs[i][0], i ? 0x10 : 0x08);
            vmwrite(segs[i][1], 0);
            vmwrite(segs[i][2], 0xffffffffu);
            vmwrite(segs[i][3], segs[i][4]);
        }
        vmwrite(VMCS_GUEST_RIP, w->rip);
    }
    *v->regs = (struct guest_regs){0};
    v->mtf_probe_rip = w->rip;
}

/* Both kinds of CPU: VMX again, with the vCPU's bookkeeping as after a reset. */
static void reenter(struct vcpu *v)
{
    v->regs = top_regs(v);
    const char *step = vmx_cpu_reenter(v);
    if (step) {
        log_error("S3 wake: CPU %u: %s failed", v->index, step);
        __atomic_store_n(&v->wake_ready, -1, __ATOMIC_RELEASE);
        if (v->index != g_bi->bsp)
            for (;;)
                __asm__ volatile("cli; hlt");
        fail_closed(v, "VMX could not be re-entered");
    }
    spin_lock(&v->lock);
    v->init_pending = 0;
    v->pending_sipi = 0;
    v->nmi_pending = 0;
    spin_unlock(&v->lock);
    v->on_view = false; /* the EPTP is the shared EPT again (write_controls_and_host) */
    v->kick_ack = v->kick_seq;
    v->nmi_seen = v->nmi_sent;
    v->frozen = 0;
}

__attribute__((noreturn)) static void launch(struct vcpu *v)
{
    vmx_before_entry(v); /* an AP waits here for the OS's SIPI */
    v->in_guest = 1;
    vmx_relaunch(v->regs);
}

__attribute__((noreturn)) static void wake_ap(struct vcpu *v)
{
    cpu_load_tables(v->cpu);
    __atomic_store_n(&v->wake_arrived, 1, __ATOMIC_RELEASE); /* the wake stack is free */
    reenter(v);
    vcpu_start_real(v, 0, 0, 0x60000010ull); /* a valid state until the SIPI writes its own */
    __atomic_store_n(&v->state, VCPU_WAIT_SIPI, __ATOMIC_RELEASE);
    __atomic_store_n(&v->wake_ready, 1, __ATOMIC_RELEASE);
    launch(v);
}

__attribute__((noreturn)) static void wake_bsp(struct vcpu *v)
{
    cpu_load_tables(v->cpu);
    serial_init(g_bi->config.serial_port);
    __atomic_store_n(&g_wake_saved.sleeping, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_vmx.freeze, 0, __ATOMIC_RELEASE);
    log_info("S3 wake: CPU %u is back at the hypervisor's waking vector", v->index);
    vmx_facs_restore(); /* the OS finds its own vectors, as it wrote them */
    if (vmx_hooks.resume())
        fail_closed(v, "DMA protection could not be turned back on");

    uint32_t vector = (uint32_t)(g_bi->wake_page >> 12);
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        struct vcpu *o = g_vmx.vcpus[i];
        if (!o || o == v || o->state == VCPU_OFF)
            continue; /* never launched: the firmware keeps it, as at boot */
        o->wake_arrived = 0;
        o->wake_ready = 0;
        apic_start_cpu(o->apic_id, vector);
        uint64_t t0 = rdtsc();
        while (!__atomic_load_n(&o->wake_arrived, __ATOMIC_ACQUIRE))
            if (waited_out(t0, AP_WAIT_MS))
                fail_closed(v, "an AP did not come back through the wake trampoline");
    }
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        struct vcpu *o = g_vmx.vcpus[i];
        if (!o || o == v || o->state == VCPU_OFF)
            continue;
        uint64_t t0 = rdtsc();
        while (__atomic_load_n(&o->wake_ready, __ATOMIC_ACQUIRE) == 0)
            if (waited_out(t0, AP_WAIT_MS))
                break;
        if (__atomic_load_n(&o->wake_ready, __ATOMIC_ACQUIRE) != 1)
            fail_closed(v, "an AP could not re-enter VMX");
    }
    reenter(v);
    start_os(v);
    __atomic_store_n(&v->state, VCPU_RUNNING, __ATOMIC_RELEASE);
    log_info("S3 wake: every CPU is in VMX again; the OS resumes at its waking vector (%s "
             "0x%llx:0x%llx)",
             g_wake_saved.os.mode == WAKE_REAL ? "real mode" : "32-bit",
             (unsigned long long)g_wake_saved.os.cs, (unsigned long long)g_wake_saved.os.rip);
    launch(v);
}

void vmx_wake_entry(uint32_t slot)
{
    (void)slot; /* the CPU is known by its APIC ID, whatever order it came in */
    unsigned idx = cpu_current_index();
    struct vcpu *v = idx < g_vmx.ncpus ? g_vmx.vcpus[idx] : NULL;
    bool bsp = idx == g_bi->bsp;
    /* Only a wake the sleep path armed is taken (the page is the guest's to reach never). */
    if (!v || (bsp && !__atomic_load_n(&g_wake_saved.sleeping, __ATOMIC_ACQUIRE)))
        for (;;)
            __asm__ volatile("cli; hlt");
    /* Below the GPRs the exit stub will keep at the top of this host stack. */
    uint8_t *sp = (uint8_t *)top_regs(v) - 64;
    vmx_wake_switch(v, sp, bsp ? wake_bsp : wake_ap);
}
