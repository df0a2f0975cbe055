/*
 * service.c - bring-up of the dedicated NIC and the service loop (see
 * net.h).  net_boot() runs once on the BSP; service_poll() is what every
 * core calls from root mode afterwards.  With net_selftest = yes the BSP
 * serves the network itself until a diag client says "quit", because no
 * CPU runs a guest yet that would exit into the hypervisor to poll.  The
 * pieces that need core.h live in pci_io.c.
 */
#include <stdio.h>
#include <string.h>

#include "boot_info.h"
#include "vtd/dma_core.h"
#include "log.h"
#include "net_internal.h"
#include "net_io.h"
#include "pci.h"
#include "spinlock.h"

#include "lwip/timeouts.h"

#define MAX_PCI    64
#define RX_BUDGET  64  /* frames per poll: bounds one core's time in the lock */
#define SELFTEST_S 600 /* safety net: TSC seconds before the self-test gives up */
#define REG_RAL0   0x5400

static spinlock_t svc_lock = SPINLOCK_INIT;
static volatile bool ready;
static struct pci_mcfg mcfg;
static struct pci_cfg_ops cfg;
static struct pci_dev devs[MAX_PCI];
static struct pci_dev *nic_dev;
static struct nic *nic;
static const struct hv_config *conf;
static struct net_stream *transport, *diag_stream;
static struct net_stream_handler h_transport, h_diag;
static struct diag diag_on_transport, diag_on_port;
static bool quit;
static uint64_t polls;
/* TSC spent in polls that received at least one frame, and how many such
 * polls: the stack's cost per frame, independent of the host's speed in
 * Bochs (where one TSC tick is one emulated instruction). */
static uint64_t busy_tsc, busy_polls;

bool net_up(void)
{
    return ready;
}

const struct pci_dev *net_nic_dev(void)
{
    return nic_dev;
}

void service_poll(void)
{
    if (!ready || !spin_trylock(&svc_lock))
        return;
    polls++;
    uint64_t t0 = net_tsc();
    unsigned frames = netif_glue_poll(RX_BUDGET);
    sys_check_timeouts();
    net_streams_pump();
    if (frames) {
        busy_tsc += net_tsc() - t0;
        busy_polls++;
    }
    spin_unlock(&svc_lock);
}

size_t diag_status_line(char *buf, size_t cap)
{
    size_t k = netif_glue_status(buf, cap);
    int r = snprintf(
        buf + k, cap - k,
        " uptime_ms=%llu polls=%llu busy_polls=%llu busy_tsc=%llu tsc_hz=%llu dma_faults=%llu",
        (unsigned long long)net_now_ms(), (unsigned long long)polls, (unsigned long long)busy_polls,
        (unsigned long long)busy_tsc, (unsigned long long)net_tsc_hz(),
        (unsigned long long)dma_core_faults());
    if (r > 0)
        k += (size_t)r < cap - k ? (size_t)r : cap - k - 1;
    return k;
}

static void enable_device(const struct pci_dev *d)
{
    uint32_t cmd = cfg.read32(cfg.ctx, d->bus, d->dev, d->fn, PCI_COMMAND);
    /* Memory decode for BAR0, bus mastering for DMA; INTx off: we poll. */
    cmd = (cmd & 0xffff) | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF;
    cfg.write32(cfg.ctx, d->bus, d->dev, d->fn, PCI_COMMAND, cmd);
}

static void disable_device(const struct pci_dev *d)
{
    uint32_t cmd = cfg.read32(cfg.ctx, d->bus, d->dev, d->fn, PCI_COMMAND);
    cfg.write32(cfg.ctx, d->bus, d->dev, d->fn, PCI_COMMAND, (cmd & 0xffff) & ~PCI_CMD_MASTER);
}

/* For nic = MAC: the address the device loaded from its EEPROM into RAL0/RAH0. */
static bool mac_of(void *ctx, const struct pci_dev *d, uint8_t mac[6])
{
    (void)ctx;
    if ((d->bar_is_io & 1) || !d->bar[0])
        return false;
    uint32_t cmd = cfg.read32(cfg.ctx, d->bus, d->dev, d->fn, PCI_COMMAND);
    cfg.write32(cfg.ctx, d->bus, d->dev, d->fn, PCI_COMMAND, (cmd & 0xffff) | PCI_CMD_MEM);
    volatile uint32_t *r = (volatile uint32_t *)(uintptr_t)d->bar[0];
    uint32_t lo = r[REG_RAL0 / 4], hi = r[REG_RAL0 / 4 + 1];
    cfg.write32(cfg.ctx, d->bus, d->dev, d->fn, PCI_COMMAND, cmd & 0xffff);
    for (int i = 0; i < 4; i++)
        mac[i] = (uint8_t)(lo >> (8 * i));
    mac[4] = (uint8_t)hi;
    mac[5] = (uint8_t)(hi >> 8);
    return true;
}

static int choose(const struct boot_info *bi, int n)
{
    const char *why;
    if (bi->nic_claimed) {
        /* The loader already chose (and freed it from the firmware's driver). */
        for (int i = 0; i < n && i < MAX_PCI; i++)
            if (devs[i].bus == bi->nic_bus && devs[i].dev == bi->nic_dev &&
                devs[i].fn == bi->nic_fn && nic_supported(devs[i].vendor, devs[i].device))
                return i;
        log_warn("net: the loader's NIC %02x:%02x.%x is gone; choosing again", bi->nic_bus,
                 bi->nic_dev, bi->nic_fn);
    }
    int i = pci_select_nic(&bi->config, devs, n < MAX_PCI ? n : MAX_PCI, nic_supported, mac_of,
                           NULL, &why);
    if (i < 0)
        log_warn("net: no network: %s", why);
    return i;
}

struct net_stream *net_transport_open(const struct net_stream_handler *h)
{
    if (!ready)
        return NULL;
    if (conf->transport == TRANSPORT_LISTEN)
        return net_stream_listen(conf->listen_port, h);
    return net_stream_connect(conf->peer_ip, conf->peer_port, conf->reconnect_ms, h);
}

static void selftest(void)
{
    log_info("net: self-test: serving until a diag client sends \"quit\" (safety limit %u s of "
             "TSC time)",
             SELFTEST_S);
    uint64_t t0 = net_now_ms();
    while (!quit && net_now_ms() - t0 < SELFTEST_S * 1000ull)
        service_poll();
    /* Let "bye" and the FIN reach the peer. */
    uint64_t t1 = net_now_ms();
    while (net_now_ms() - t1 < 500)
        service_poll();
    char st[400];
    diag_status_line(st, sizeof(st));
    if (quit)
        log_info("net: self-test ended by quit: %s", st);
    else
        log_warn("net: self-test ended by its time limit (%u s): %s", SELFTEST_S, st);
    ready = false;
    net_streams_stop();
    nic->ops->stop(nic);
    disable_device(nic_dev);
    log_info("net: NIC stopped, bus mastering off");
}

void net_suspend(void)
{
    if (!ready)
        return;
    spin_lock(&svc_lock);
    net_time_suspend();
    nic->ops->stop(nic);
    spin_unlock(&svc_lock);
}

void net_resume(void)
{
    if (!ready)
        return;
    spin_lock(&svc_lock);
    net_time_resume();
    const struct pci_dev *d = nic_dev;
    for (unsigned i = 0; i < 6; i++) {
        if (!d->bar[i])
            continue;
        unsigned off = PCI_BAR0 + 4 * i;
        uint32_t lo = cfg.read32(cfg.ctx, d->bus, d->dev, d->fn, off) & 0xf; /* type bits */
        cfg.write32(cfg.ctx, d->bus, d->dev, d->fn, off, (uint32_t)d->bar[i] | lo);
        if (d->bar_is_64 & (1u << i))
            cfg.write32(cfg.ctx, d->bus, d->dev, d->fn, off + 4, (uint32_t)(d->bar[i] >> 32));
        if (d->bar_is_64 & (1u << i))
            i++;
    }
    enable_device(d);
    bool ok = nic->ops->restart(nic);
    spin_unlock(&svc_lock);
    if (ok)
        log_info("net: the NIC is set up again after S3");
    else
        log_error("net: the NIC did not come back after S3: no network");
    ready = ok;
}

void net_abandon(void)
{
    if (!nic_dev)
        return;
    ready = false;
    if (nic) {
        net_streams_stop();
        nic->ops->stop(nic);
    }
    disable_device(nic_dev);
    nic_dev = NULL;
    log_info("net: NIC stopped, bus mastering off");
}

void net_boot(struct boot_info *bi)
{
    conf = &bi->config;
    if (conf->nic_select == NIC_NONE) {
        log_info("net: nic = none: no network");
        return;
    }
    net_time_init(bi->tsc_hz);
    bool have_ecam = pci_mcfg_from_acpi(bi->acpi_rsdp, &mcfg);
    pci_io_ops(&cfg, have_ecam ? &mcfg : NULL);
    int n = pci_scan(&cfg, devs, MAX_PCI);
    if (have_ecam)
        log_info("net: %d PCI functions (ECAM at 0x%llx, buses %u-%u)", n,
                 (unsigned long long)mcfg.e[0].base, mcfg.e[0].start_bus, mcfg.e[0].end_bus);
    else
        log_info("net: %d PCI functions (0xCF8/0xCFC; no ACPI MCFG)", n);
    int i = choose(bi, n);
    if (i < 0)
        return;
    nic_dev = &devs[i];
    const struct nic_model *m = nic_model_find(nic_dev->vendor, nic_dev->device);
    log_info("net: NIC %02x:%02x.%x %04x:%04x (%s) BAR0 0x%llx", nic_dev->bus, nic_dev->dev,
             nic_dev->fn, nic_dev->vendor, nic_dev->device, m->name,
             (unsigned long long)nic_dev->bar[0]);
    if ((nic_dev->bar_is_io & 1) || !nic_dev->bar[0]) {
        log_error("net: BAR0 of the NIC is not an assigned memory BAR; no network");
        nic_dev = NULL;
        return;
    }
    pci_size_bars(&cfg, nic_dev); /* the VMX side hides exactly what the BARs decode */
    enable_device(nic_dev);
    const char *why;
    /* rings and buffers come mapped in the NIC's own DMA domain (vtd/dma_core.c) */
    nic = e1000_start((volatile void *)(uintptr_t)nic_dev->bar[0], m, dma_core_nic_alloc, &why);
    if (!nic) {
        log_error("net: %s: %s; no network", m->name, why);
        disable_device(nic_dev);
        nic_dev = NULL;
        return;
    }
    log_info("net: %s MAC %02x:%02x:%02x:%02x:%02x:%02x, link %s", m->name, nic->mac[0],
             nic->mac[1], nic->mac[2], nic->mac[3], nic->mac[4], nic->mac[5],
             nic->ops->link_up(nic) ? "up" : "down");
    int guarded = pci_io_guard(&cfg, nic_dev, have_ecam ? &mcfg : NULL);
    if (guarded < 0) {
        log_error("net: too many registers to protect on the NIC's path; no network");
        nic->ops->stop(nic);
        disable_device(nic_dev);
        nic_dev = NULL;
        return;
    }
    log_info("net: guest config accesses filtered: NIC hidden, %d function(s) on its path "
             "protected, %u MCFG entr%s",
             guarded, mcfg.n, mcfg.n == 1 ? "y" : "ies");
    if (netif_glue_start(nic, conf)) {
        log_error("net: lwIP interface setup failed; no network");
        nic->ops->stop(nic);
        disable_device(nic_dev);
        return;
    }
    ready = true;
    if (conf->diag_port) {
        diag_handler(&h_diag, &diag_on_port, &quit);
        diag_stream = net_stream_listen(conf->diag_port, &h_diag);
    }
    if (conf->net_selftest) {
        /* With net_selftest no KVMI engine takes the transport: serve diag there too. */
        diag_handler(&h_transport, &diag_on_transport, &quit);
        transport = net_transport_open(&h_transport);
        selftest();
    }
}
