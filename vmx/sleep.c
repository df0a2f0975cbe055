/*
 * sleep.c - the guest's S3 with `on_sleep = resume`: the machine really
 * sleeps, and the hypervisor, not the OS, is what the firmware wakes.
 *
 * Entering (on the vCPU whose PM1 write asked for S3, vmx_sleep_s3):
 *   1. the OS's waking vector is read from the FACS and judged
 *      (acpi_facs_wake: real mode, or flat 32-bit; a 64-bit wake is refused,
 *      and so is everything else this file cannot do: the OS stays awake);
 *   2. the introspector is told (vmx_hooks.power: UNHOOK, the session closes;
 *      the key stays, the hypervisor needs it after the wake);
 *   3. every other vCPU is frozen in root mode (it writes back its caches
 *      and waits with no guest code running), so no guest code runs between
 *      the FACS edit and the loss of power, and none can put its own vector
 *      back: a guest that ran at the waking vector would run outside VMX;
 *   4. the wake trampoline is installed in the page the loader reserved
 *      below 1 MiB (hidden from the guest and its devices), the FACS gets its
 *      address (X_Firmware_Waking_Vector zeroed so the firmware uses it);
 *   5. caches are written back (ACPI 6.5 16.1.6 "Transitioning from the
 *      Working to the Sleeping State": the OS flushes before SLP_EN; our own
 *      writes come after the guest's flush) and the guest's write is made;
 *   6. this CPU waits in root mode for the power to go.  A platform that
 *      does not sleep within a second undoes 3-4 and the guest goes on after
 *      its write, as after a sleep request the hardware ignored.
 * Waking is resume.c.
 */
#include "acpi_power.h"
#include "core.h"
#include "log.h"
#include "vmx.h"
#include "vmx_hooks.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "test_hooks.h"
#include "wake.h"

#define FREEZE_WAIT_MS 2000u
#define SLEEP_WAIT_MS  1000u

struct vmx_wake_saved g_wake_saved;

static void wbinvd(void)
{
    __asm__ volatile("wbinvd" ::: "memory");
}

static void port_out(uint16_t port, unsigned size, uint32_t val)
{
    if (size == 1)
        outb(port, (uint8_t)val);
    else if (size == 2)
        __asm__ volatile("outw %0, %1" : : "a"((uint16_t)val), "Nd"(port));
    else
        outl(port, val);
}

static bool waited_out(uint64_t t0, unsigned ms)
{
    return rdtsc() - t0 > g_bi->tsc_hz / 1000 * ms;
}

static uint8_t *facs_bytes(void)
{
    return (uint8_t *)(uintptr_t)g_bi->power.facs;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/*
 * s3_simulate = yes (the test build only, include/test_hooks.h): Bochs
 * cannot resume from S3 (docs/emulators.md), so the power loss is played
 * instead of the PM1 write: every CPU leaves VMX (VMXOFF) as a power cycle
 * would take it away; the APs halt with VMX off, where the wake's INIT-SIPI-SIPI
 * reaches them and they come back through the trampoline's real-mode start;
 * the BSP, which the firmware would bring to the trampoline, enters the
 * wake path at the trampoline's 64-bit end (the real-mode half on the BSP
 * after a firmware resume is the QEMU test's, make test-wake).
 */
#define FREEZE_ON  1u
#define FREEZE_SIM 2u
#define FROZEN_OFF 2u /* frozen and out of VMX (simulated power loss) */

static void sim_enter_wake(struct vcpu *v)
{
    (void)v;
    vmx_wake_entry(0);
}

__attribute__((noreturn)) static void sim_power_loss(struct vcpu *v)
{
    vmxoff();
    write_cr4(read_cr4() & ~CR4_VMXE);
    if (v->index != g_bi->bsp) {
        __atomic_store_n(&v->frozen, FROZEN_OFF, __ATOMIC_RELEASE);
        for (;;)
            __asm__ volatile("cli; hlt");
    }
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        struct vcpu *o = g_vmx.vcpus[i];
        if (o && o != v && __atomic_load_n(&o->frozen, __ATOMIC_ACQUIRE)) /* the ones frozen */
            while (__atomic_load_n(&o->frozen, __ATOMIC_ACQUIRE) != FROZEN_OFF)
                cpu_relax();
    }
    /* What the firmware would read at the wake: the hypervisor's vector, or
     * a guest that got its own in after all (then a real wake would run the
     * OS outside VMX; the tests forbid this line). */
    const uint8_t *f = facs_bytes();
    uint32_t vec = (uint32_t)get64(f + FACS_WAKING_VECTOR);
    uint64_t x = get64(f + FACS_X_WAKING_VECTOR);
    if (vec == g_bi->wake_page && !x)
        log_info("S3 (simulated): the FACS holds the hypervisor's waking vector 0x%x at the "
                 "power loss",
                 vec);
    else
        log_error("S3 (simulated): the FACS holds the guest's waking vector 0x%x (X 0x%llx) at "
                  "the power loss: a real wake would run the OS outside VMX",
                  vec, (unsigned long long)x);
    log_info("S3 (simulated): every CPU is out of VMX; the BSP enters the wake path");
    vmx_wake_switch(v, (void *)(uintptr_t)vmx_wake_stack_top(), sim_enter_wake);
}

void vmx_freeze_park(struct vcpu *v)
{
    wbinvd(); /* the guest's and our dirty lines reach memory before the power goes */
    __atomic_store_n(&v->frozen, 1, __ATOMIC_RELEASE);
    uint32_t f;
    while ((f = __atomic_load_n(&g_vmx.freeze, __ATOMIC_ACQUIRE)) == FREEZE_ON) {
        /* A kick that waits on us (the sleeping vCPU's INVEPT) is answered. */
        uint64_t seq = __atomic_load_n(&v->kick_seq, __ATOMIC_ACQUIRE);
        if (v->kick_ack != seq)
            __atomic_store_n(&v->kick_ack, seq, __ATOMIC_RELEASE);
        cpu_relax();
    }
    if (TEST_HOOKS && f == FREEZE_SIM)
        sim_power_loss(v);
    __atomic_store_n(&v->frozen, 0, __ATOMIC_RELEASE);
}

static void thaw(void)
{
    __atomic_store_n(&g_vmx.freeze, 0, __ATOMIC_RELEASE);
}

/* Every other vCPU that runs or waits for a SIPI, frozen in root mode; false
 * (and nothing frozen) if one does not get there in FREEZE_WAIT_MS. */
static bool freeze_others(struct vcpu *self)
{
    __atomic_store_n(&g_vmx.freeze, FREEZE_ON, __ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        struct vcpu *o = g_vmx.vcpus[i];
        if (!o || o == self)
            continue;
        uint32_t st = __atomic_load_n(&o->state, __ATOMIC_ACQUIRE);
        if (st != VCPU_RUNNING && st != VCPU_WAIT_SIPI)
            continue; /* never launched, halted or parked: stopped in root mode for good */
        kick(o, false);
        uint64_t t0 = rdtsc();
        while (!__atomic_load_n(&o->frozen, __ATOMIC_ACQUIRE)) {
            if (waited_out(t0, FREEZE_WAIT_MS)) {
                log_warn("S3: vCPU %u did not stop in %u ms (TSC)", o->index, FREEZE_WAIT_MS);
                thaw();
                return false;
            }
            cpu_relax();
        }
    }
    return true;
}

void vmx_facs_restore(void)
{
    uint8_t *f = facs_bytes();
    put32(f + FACS_WAKING_VECTOR, g_wake_saved.vector);
    put64(f + FACS_X_WAKING_VECTOR, g_wake_saved.x_vector);
}

/* Why the hypervisor cannot take this sleep back, or NULL. */
static const char *cannot_resume(void)
{
    if (!g_bi->wake_page)
        return "no wake trampoline page (the loader found no FACS or no page below 1 MiB)";
    /* The FACS sits where the firmware's FADT said at boot, in memory the core maps. */
    if (!g_bi->power.facs || !bi_guest_ram(g_bi, g_bi->power.facs, FACS_LEN_MIN))
        return "the FACS is not in RAM";
    const uint8_t *f = facs_bytes();
    uint32_t len =
        (uint32_t)f[4] | (uint32_t)f[5] << 8 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 24;
    const char *why = acpi_facs_wake(f, len < 4096 ? len : 4096, &g_wake_saved.os);
    if (why)
        return why;
    g_wake_saved.vector = (uint32_t)get64(f + FACS_WAKING_VECTOR);
    g_wake_saved.x_vector = get64(f + FACS_X_WAKING_VECTOR);
    return 0;
}

/* The trampoline's parameters: this root mode, entered at vmx_wake_entry. */
static const char *install(void)
{
    static struct wake_params p;
    p.cr0 = read_cr0();
    p.cr3 = read_cr3();
    p.cr4 = read_cr4();
    p.efer = rdmsr(MSR_IA32_EFER);
    p.entry = (uint64_t)(uintptr_t)vmx_wake_entry;
    p.next_slot = 0;
    p.ncpus = g_vmx.ncpus < WAKE_MAX_CPUS ? g_vmx.ncpus : WAKE_MAX_CPUS;
    /* One stack for every slot: the BSP wakes the APs one at a time and each
     * leaves it for its own host stack first thing (resume.c). */
    for (unsigned i = 0; i < WAKE_MAX_CPUS; i++)
        p.stack_top[i] = vmx_wake_stack_top();
    return wake_install((void *)(uintptr_t)g_bi->wake_page, g_bi->wake_page, &p);
}

bool vmx_sleep_s3(struct vcpu *v, uint16_t port, unsigned size, uint32_t val)
{
    const char *why = cannot_resume();
    if (!why) {
        /* The introspector is told first, with every vCPU running as in KVM. */
        vmx_hooks.power(v, POWER_SLEEP_S3);
        if (!freeze_others(v))
            why = "a vCPU did not stop";
        else if ((why = cannot_resume()) != 0) /* what the OS wrote last, now that none runs */
            thaw();
    }
    if (!why && (why = install()) != 0)
        thaw();
    if (why) {
        v->stats.sleeps_refused++;
        log_warn("vCPU %u: S3 refused: %s; the guest stays awake and introspected", v->index, why);
        vmx_power_refuse_wake();
        return false;
    }
    uint8_t *f = facs_bytes();
    put32(f + FACS_WAKING_VECTOR, (uint32_t)g_bi->wake_page);
    put64(f + FACS_X_WAKING_VECTOR, 0);
    vmx_hooks.suspend();
    log_info("vCPU %u: S3: the OS's waking vector %s 0x%llx:0x%llx is saved, the FACS points at "
             "the hypervisor's (0x%llx); sleeping (port 0x%x <- 0x%x)",
             v->index, g_wake_saved.os.mode == WAKE_REAL ? "real mode" : "32-bit",
             (unsigned long long)g_wake_saved.os.cs, (unsigned long long)g_wake_saved.os.rip,
             (unsigned long long)g_bi->wake_page, port, val);
    __atomic_store_n(&g_wake_saved.sleeping, 1, __ATOMIC_RELEASE);
    wbinvd();
    if (TEST_HOOKS && g_bi->config.s3_simulate) {
        log_info("vCPU %u: S3 (simulated, s3_simulate = yes): the PM1 write is not made", v->index);
        __atomic_store_n(&g_vmx.freeze, FREEZE_SIM, __ATOMIC_SEQ_CST);
        sim_power_loss(v);
    }
    port_out(port, size, val);
    uint64_t t0 = rdtsc();
    while (!waited_out(t0, SLEEP_WAIT_MS))
        cpu_relax();
    /* Still powered: the platform ignored the request; nothing was lost. */
    __atomic_store_n(&g_wake_saved.sleeping, 0, __ATOMIC_RELEASE);
    vmx_facs_restore();
    vmx_hooks.resume();
    thaw();
    log_warn("vCPU %u: S3: the platform did not sleep within %u ms (TSC); the guest goes on",
             v->index, SLEEP_WAIT_MS);
    return false;
}
