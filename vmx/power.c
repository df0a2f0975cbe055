/*
 * power.c - the guest's sleep, power-off and reset requests (the ports of
 * the boot info's acpi_power, intercepted in the I/O bitmaps by vmx_init).
 * Before any of them reaches the hardware, the layers above get
 * vmx_hooks.power(): the introspector is told (KVMI_EVENT_UNHOOK), its hooks
 * come off and the secrets are scrubbed; then the write goes through exactly
 * as the guest made it.  A sleep with `on_sleep = refuse` never reaches the
 * hardware: the write is dropped and the guest reads the wake status it
 * polls for (PM1 status WAK_STS), as if the platform had woken at once, so
 * the OS stays awake and watched.  (ACPI 6.5 4.8.3.1.1 PM1 Status Registers,
 * 7.4.2 \_Sx; docs/kvmi-hv.md, "Power transitions".)
 */
#include "core.h"
#include "log.h"
#include "vmx.h"
#include "vmx_hooks.h"
#include "vmx_int.h"

#define WAK_STS (1u << 15)

/* A refused sleep: WAK_STS reads as set until the guest clears it. */
static volatile uint32_t wake_pending;

/* Does an access of size bytes at port cover the PM1a status register's high byte (WAK_STS)?
 * *shift: that byte's position in the access. */
static bool covers_wak(const struct acpi_power *p, uint16_t port, unsigned size, unsigned *shift)
{
    uint32_t hi = (uint32_t)p->pm1a_evt + 1;
    if (!p->pm1a_evt || port > hi || (uint32_t)port + size <= hi)
        return false;
    *shift = 8 * (hi - port);
    return true;
}

static bool is_sleep(enum power_action a)
{
    return a != POWER_NONE && a != POWER_OFF_S5 && a != POWER_RESET;
}

bool vmx_power_out(struct vcpu *v, uint16_t port, unsigned size, uint32_t val)
{
    const struct acpi_power *p = &g_bi->power;
    unsigned shift;
    if (covers_wak(p, port, size, &shift) && ((val >> shift) & (WAK_STS >> 8)))
        __atomic_store_n(&wake_pending, 0, __ATOMIC_RELEASE); /* write-1-to-clear */
    uint8_t prev92 = port == PORT_SYSCTL_A ? inb(PORT_SYSCTL_A) : 0;
    enum power_action a = power_classify(p, port, size, val, prev92);
    if (a == POWER_NONE)
        return true;
    if (is_sleep(a) && g_bi->config.on_sleep == ON_SLEEP_REFUSE) {
        v->stats.sleeps_refused++;
        log_warn("vCPU %u: the guest's %s is refused (on_sleep = refuse): it stays awake and "
                 "introspected",
                 v->index, power_action_name(a));
        __atomic_store_n(&wake_pending, 1, __ATOMIC_RELEASE);
        return false;
    }
    log_info("vCPU %u: the guest asks for %s (port 0x%x <- 0x%x)", v->index, power_action_name(a),
             port, val);
    vmx_hooks.power(v, a);
    log_info("vCPU %u: %s proceeds", v->index, power_action_name(a));
    return true;
}

uint32_t vmx_power_in(uint16_t port, unsigned size, uint32_t val)
{
    const struct acpi_power *p = &g_bi->power;
    unsigned shift;
    if (__atomic_load_n(&wake_pending, __ATOMIC_ACQUIRE) && covers_wak(p, port, size, &shift))
        val |= (WAK_STS >> 8) << shift;
    return val;
}
