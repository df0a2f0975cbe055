/*
 * power.c - the guest's sleep, power-off and reset requests (the ports of
 * the boot info's acpi_power, intercepted in the I/O bitmaps by vmx_init).
 * Before any of them reaches the hardware, the layers above get
 * vmx_hooks.power(): the introspector is told (KVMI_EVENT_UNHOOK), its hooks
 * come off and the secrets are scrubbed; then the write goes through exactly
 * as the guest made it, except a reset, which root mode makes sure of
 * (reset_from_port).  A sleep with `on_sleep = refuse` never reaches the
 * hardware: the write is dropped and the guest reads the wake status it
 * polls for (PM1 status WAK_STS), as if the platform had woken at once, so
 * the OS stays awake and watched.  (ACPI 6.5 4.8.3.1.1 PM1 Status Registers,
 * 7.4.2 \_Sx; docs/kvmi-hv.md, "Power transitions".)
 *
 * Two more ways to reset end here: a store into an FADT reset register in
 * memory space (its page is read-only in the EPT, vmx_power_mem_write), and
 * a triple fault, which on real hardware is a shutdown cycle the chipset
 * turns into a platform reset (SDM Vol. 3A 7.15 Exception and Interrupt
 * Reference, Interrupt 8 "Double Fault Exception"; SDM Vol. 3C 26.2
 * Other Causes of VM Exits): the hypervisor resets the platform itself, the
 * way the guest's reset register would.
 */
#include "core.h"
#include "insn.h"
#include "log.h"
#include "vmx.h"
#include "vmx_hooks.h"
#include "vmx_insn.h"
#include "vmx_int.h"

#define WAK_STS (1u << 15)

/* A refused sleep: WAK_STS reads as set until the guest clears it. */
static volatile uint32_t wake_pending;

/* The reset register in memory space when launch accepted it (vmx_power_init); 0: none. */
static uint64_t reset_mem;

__attribute__((noreturn)) static void reset_from_port(struct vcpu *v, uint16_t port, unsigned size,
                                                      uint32_t val, uint8_t prev92);

/* A sleep the hypervisor refuses or takes back.  With on_sleep = resume, S4
 * is none: the platform powers off, and its resume is a boot through the
 * firmware, which starts hv.efi again before the OS loader restores its
 * image; so it goes through as S5 does (UNHOOK, the key scrubbed). */
static bool is_sleep(enum power_action a)
{
    if (a == POWER_SLEEP_S4 && g_bi->config.on_sleep == ON_SLEEP_RESUME)
        return false;
    return a != POWER_NONE && a != POWER_OFF_S5 && a != POWER_RESET;
}

bool vmx_power_out(struct vcpu *v, uint16_t port, unsigned size, uint32_t val)
{
    const struct acpi_power *p = &g_bi->power;
    unsigned shift;
    if (size < 4)
        val &= (1u << (8 * size)) - 1; /* only what the OUT writes (RAX's upper bytes are not) */
    if (power_wak_shift(p, port, size, &shift) && ((val >> shift) & (WAK_STS >> 8)))
        __atomic_store_n(&wake_pending, 0, __ATOMIC_RELEASE); /* write-1-to-clear */
    uint8_t prev92 = port == PORT_SYSCTL_A ? inb(PORT_SYSCTL_A) : 0;
    enum power_action a = power_classify(p, port, size, val, prev92);
    if (a == POWER_NONE)
        return true;
    if (is_sleep(a) && g_bi->config.on_sleep == ON_SLEEP_RESUME && a == POWER_SLEEP_S3) {
        log_info("vCPU %u: the guest asks for %s (port 0x%x <- 0x%x)", v->index,
                 power_action_name(a), port, val);
        return vmx_sleep_s3(v, port, size, val);
    }
    if (is_sleep(a)) {
        /* S1/S2 and undeclared types are refused either way. */
        v->stats.sleeps_refused++;
        log_warn("vCPU %u: the guest's %s is refused (on_sleep = %s): it stays awake and "
                 "introspected",
                 v->index, power_action_name(a),
                 g_bi->config.on_sleep == ON_SLEEP_RESUME ? "resume, which takes S3 and S4 only"
                                                          : "refuse");
        vmx_power_refuse_wake();
        return false;
    }
    log_info("vCPU %u: the guest asks for %s (port 0x%x <- 0x%x%s)", v->index, power_action_name(a),
             port, val,
             a == POWER_RESET && port == p->reset_port && (val & 0xff) == p->reset_value
                 ? ", the FADT reset register"
                 : "");
    vmx_hooks.power(v, a);
    if (a == POWER_RESET)
        reset_from_port(v, port, size, val, prev92);
    log_info("vCPU %u: %s proceeds", v->index, power_action_name(a));
    return true;
}

void vmx_power_refuse_wake(void)
{
    __atomic_store_n(&wake_pending, 1, __ATOMIC_RELEASE);
}

uint32_t vmx_power_in(uint16_t port, unsigned size, uint32_t val)
{
    const struct acpi_power *p = &g_bi->power;
    unsigned shift;
    if (__atomic_load_n(&wake_pending, __ATOMIC_ACQUIRE) && power_wak_shift(p, port, size, &shift))
        val |= (WAK_STS >> 8) << shift;
    return val;
}

uint64_t vmx_power_init(void)
{
    uint64_t gpa = g_bi->power.reset_mem;
    if (!gpa)
        return 0;
    /* The core's own map covers the first 4 GiB (paging.c), where chipsets
     * put the register; never a page of the region or a hidden device. */
    if (gpa >= (4ull << 30) || gpa_hidden(gpa) || vmx_hidden_device_gpa(gpa)) {
        log_warn("power: the FADT reset register at 0x%llx is not intercepted (outside the "
                 "first 4 GiB or on a hidden page)",
                 (unsigned long long)gpa);
        return 0;
    }
    reset_mem = gpa;
    return gpa & ~0xfffull;
}

bool vmx_power_mem_write(struct vcpu *v, uint64_t gpa)
{
    if (!reset_mem || (gpa & ~0xfffull) != (reset_mem & ~0xfffull))
        return false;
    /* A device hidden after launch (the NIC's BARs) keeps its own rule: dropped. */
    if (gpa_hidden(gpa) || vmx_hidden_device_gpa(gpa))
        return false;
    struct insn_store s;
    if (!guest_decode_store(v, &s) || s.xchg)
        return false;
    uint64_t val = insn_store_value(&s, s.src == INSN_SRC_REG ? vcpu_gpr(v->regs, s.reg) : 0);
    if (power_classify_mem(&g_bi->power, gpa, s.size, val) == POWER_RESET) {
        log_info("vCPU %u: the guest asks for reset (memory 0x%llx <- 0x%llx, the FADT reset "
                 "register)",
                 v->index, (unsigned long long)gpa, (unsigned long long)val);
        vmx_hooks.power(v, POWER_RESET);
        log_info("vCPU %u: reset proceeds", v->index);
    }
    /* The store goes through as the guest made it, at its own width (the
     * page's other registers are the chipset's). */
    mmio_write_width(gpa, s.size, val);
    vmx_advance_rip(v, s.len);
    return true;
}

/* Waits about ms milliseconds of the TSC for a reset just issued to take the machine. */
static void reset_wait(unsigned ms)
{
    uint64_t t0 = rdtsc(), limit = g_bi->tsc_hz / 1000 * ms;
    while (rdtsc() - t0 < limit)
        cpu_relax();
}

/* The platform reset a triple fault stands for, through what the guest itself
 * would use: the FADT reset register, else the reset control register (0xcf9
 * <- 0x06: SYS_RST|RST_CPU, a full reset), else the keyboard controller's reset
 * line (0x64 <- 0xfe).  Each is tried in turn if the previous one left the
 * machine running. */
__attribute__((noreturn)) void vmx_platform_reset(struct vcpu *v)
{
    const struct acpi_power *p = &g_bi->power;
    if (p->reset_port) {
        log_info("vCPU %u: platform reset through the FADT reset register (port 0x%x <- 0x%x)",
                 v->index, p->reset_port, p->reset_value);
        outb(p->reset_port, p->reset_value);
        reset_wait(100);
    } else if (reset_mem) {
        log_info("vCPU %u: platform reset through the FADT reset register (memory 0x%llx <- "
                 "0x%x)",
                 v->index, (unsigned long long)reset_mem, p->reset_value);
        *(volatile uint8_t *)(uintptr_t)reset_mem = p->reset_value;
        reset_wait(100);
    }
    log_info("vCPU %u: platform reset through the reset control register (port 0xcf9 <- 0x6)",
             v->index);
    outb(PORT_RESET_CONTROL, 0x02);
    outb(PORT_RESET_CONTROL, 0x06);
    reset_wait(100);
    log_info("vCPU %u: platform reset through the keyboard controller (port 0x64 <- 0xfe)",
             v->index);
    outb(PORT_KBC_CMD, 0xfe);
    reset_wait(100);
    log_error("vCPU %u: the platform did not reset; this vCPU stays halted", v->index);
    /* halted: kicks stop waiting for it and KVMI answers for it (vmx_fatal does the same) */
    __atomic_store_n(&v->state, VCPU_HALTED, __ATOMIC_RELEASE);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* A reset the guest asked for through a port, after the hooks ran (the session
 * is closed, the key scrubbed): the machine must not run on.  0x92's fast
 * reset, 0xCF9 with RST_CPU but not SYS_RST and the keyboard controller's
 * pulse may only INIT the processors, and INIT is blocked in VMX root and a VM
 * exit in non-root (SDM Vol. 3C 24.8 Restrictions on VMX Operation, 26.2 Other
 * Causes of VM Exits), so such a write leaves the hypervisor running with
 * nobody watching.  Root mode writes the guest's reset byte itself and, if the
 * machine is still there shortly after, resets the platform the way a triple
 * fault does. */
static void reset_from_port(struct vcpu *v, uint16_t port, unsigned size, uint32_t val,
                            uint8_t prev92)
{
    uint16_t rport;
    uint8_t rval;
    if (power_reset_byte(&g_bi->power, port, size, val, prev92, &rport, &rval)) {
        log_info("vCPU %u: reset proceeds (port 0x%x <- 0x%x)", v->index, rport, rval);
        outb(rport, rval);
        reset_wait(100);
        log_warn("vCPU %u: the machine still runs after the guest's reset write (an INIT "
                 "only?): a full platform reset follows",
                 v->index);
    }
    vmx_platform_reset(v);
}

void vmx_power_triple_fault(struct vcpu *v)
{
    log_warn("vCPU %u: triple fault at RIP 0x%llx: a shutdown, which the platform turns into a "
             "reset",
             v->index, (unsigned long long)vmread(VMCS_GUEST_RIP));
    vmx_hooks.power(v, POWER_RESET);
    vmx_platform_reset(v);
}
