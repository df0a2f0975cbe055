/*
 * e1000.c - polled driver for Intel 8254x/82574L NICs with legacy
 * descriptors (Intel 8254x Software Developer's Manual, "SDM-8254x" below;
 * section numbers from its revision 4.0).  One RX and one TX ring of
 * 2 KiB buffers in the hypervisor region; every interrupt masked.  The
 * device is reached only through its BAR0 registers and DMA, so the same
 * code runs against a fake register file in host tests.
 */
#include <string.h>

#include "nic.h"

/* Registers (SDM-8254x 13.4). */
#define REG_CTRL    0x0000
#define REG_STATUS  0x0008
#define REG_EERD    0x0014
#define REG_IMC     0x00d8
#define REG_RCTL    0x0100
#define REG_TCTL    0x0400
#define REG_TIPG    0x0410
#define REG_RDBAL   0x2800
#define REG_RDBAH   0x2804
#define REG_RDLEN   0x2808
#define REG_RDH     0x2810
#define REG_RDT     0x2818
#define REG_TDBAL   0x3800
#define REG_TDBAH   0x3804
#define REG_TDLEN   0x3808
#define REG_TDH     0x3810
#define REG_TDT     0x3818
#define REG_CRCERRS 0x4000
#define REG_MPC     0x4010
#define REG_RNBC    0x40a0
#define REG_MTA     0x5200
#define REG_RAL0    0x5400
#define REG_RAH0    0x5404

#define CTRL_LRST    (1u << 3)
#define CTRL_ASDE    (1u << 5)
#define CTRL_SLU     (1u << 6)
#define CTRL_ILOS    (1u << 7)
#define CTRL_RST     (1u << 26)
#define CTRL_VME     (1u << 30)
#define CTRL_PHY_RST (1u << 31)
#define STATUS_LU    (1u << 1)
#define RAH_AV       (1u << 31)
#define EERD_START   (1u << 0)

#define RCTL_EN    (1u << 1)
#define RCTL_BAM   (1u << 15) /* accept broadcast: ARP and DHCP need it */
#define RCTL_SECRC (1u << 26) /* strip the FCS so lengths are frame lengths */
#define TCTL_EN    (1u << 1)
#define TCTL_PSP   (1u << 3)
#define TCTL_CT    (0x0fu << 4)  /* collision threshold, 802.3 value */
#define TCTL_COLD  (0x40u << 12) /* full-duplex collision distance */
/* IPGT 10, IPGR1 8, IPGR2 6: the 802.3 copper values (SDM-8254x 13.4.34). */
#define TIPG_COPPER (10u | (8u << 10) | (6u << 20))

#define RXD_DD   (1u << 0)
#define RXD_EOP  (1u << 1)
#define TXD_EOP  (1u << 0)
#define TXD_IFCS (1u << 1)
#define TXD_RS   (1u << 3)
#define TXD_DD   (1u << 0)

#define BUF_SIZE 2048 /* RCTL.BSIZE = 00b with BSEX = 0 */

/* Legacy descriptors (SDM-8254x 3.2.3 and 3.3.3). */
struct rx_desc {
    uint64_t addr;
    uint16_t length;
    uint16_t csum;
    uint8_t status;
    uint8_t errors;
    uint16_t special;
};

struct tx_desc {
    uint64_t addr;
    uint16_t length;
    uint8_t cso;
    uint8_t cmd;
    uint8_t status;
    uint8_t css;
    uint16_t special;
};

_Static_assert(sizeof(struct rx_desc) == 16, "RX descriptor is 16 bytes");
_Static_assert(sizeof(struct tx_desc) == 16, "TX descriptor is 16 bytes");

struct e1000 {
    struct nic nic;
    volatile uint32_t *regs;
    const struct nic_model *model;
    volatile struct rx_desc *rx;
    volatile struct tx_desc *tx;
    uint8_t *rx_bufs, *tx_bufs;
    uint32_t rx_next;  /* next descriptor the device will complete */
    uint32_t tx_next;  /* next descriptor we fill */
    uint32_t tx_clean; /* oldest descriptor still owned by the device */
};

#define E(n) ((struct e1000 *)(n)->priv)

static uint32_t rr(struct e1000 *e, uint32_t reg)
{
    return e->regs[reg / 4];
}

static void wr(struct e1000 *e, uint32_t reg, uint32_t v)
{
    e->regs[reg / 4] = v;
}

/* Reads one EEPROM word through EERD (SDM-8254x 5.3.1); false on timeout. */
static bool eeprom_read(struct e1000 *e, uint8_t addr, uint16_t *out)
{
    uint32_t done = 1u << e->model->eerd_done_bit;
    wr(e, REG_EERD, ((uint32_t)addr << e->model->eerd_addr_shift) | EERD_START);
    for (int i = 0; i < 1000; i++) {
        uint32_t v = rr(e, REG_EERD);
        if (v & done) {
            *out = (uint16_t)(v >> 16);
            return true;
        }
        net_udelay(10);
    }
    return false;
}

static bool mac_valid(const uint8_t m[6])
{
    static const uint8_t zero[6];
    /* not all zeros, not multicast (bit 0 of the first byte) */
    return memcmp(m, zero, 6) != 0 && !(m[0] & 1);
}

static bool read_mac(struct e1000 *e, uint8_t mac[6])
{
    /* After reset the device loads RAL0/RAH0 from the EEPROM (SDM-8254x 5.6.1). */
    uint32_t lo = rr(e, REG_RAL0), hi = rr(e, REG_RAH0);
    for (int i = 0; i < 4; i++)
        mac[i] = (uint8_t)(lo >> (8 * i));
    mac[4] = (uint8_t)hi;
    mac[5] = (uint8_t)(hi >> 8);
    if ((hi & RAH_AV) && mac_valid(mac))
        return true;
    for (uint8_t w = 0; w < 3; w++) {
        uint16_t v;
        if (!eeprom_read(e, w, &v))
            return false;
        mac[2 * w] = (uint8_t)v;
        mac[2 * w + 1] = (uint8_t)(v >> 8);
    }
    return mac_valid(mac);
}

static const void *e1000_rx_peek(struct nic *n, size_t *len)
{
    struct e1000 *e = E(n);
    for (;;) {
        volatile struct rx_desc *d = &e->rx[e->rx_next];
        uint8_t st = d->status;
        if (!(st & RXD_DD))
            return NULL;
        /* Read the rest of the descriptor only after DD (the device writes DD last). */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if ((st & RXD_EOP) && !d->errors && d->length && d->length <= BUF_SIZE) {
            *len = d->length;
            return e->rx_bufs + (size_t)e->rx_next * BUF_SIZE;
        }
        n->stats.rx_errors++;
        n->ops->rx_release(n);
    }
}

static void e1000_rx_release(struct nic *n)
{
    struct e1000 *e = E(n);
    volatile struct rx_desc *d = &e->rx[e->rx_next];
    d->status = 0;
    d->length = 0;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    /* RDT names the last descriptor the device may fill (SDM-8254x 3.2.6). */
    wr(e, REG_RDT, e->rx_next);
    e->rx_next = (e->rx_next + 1) % E1000_RX_RING;
}

static void tx_reclaim(struct e1000 *e)
{
    while (e->tx_clean != e->tx_next && (e->tx[e->tx_clean].status & TXD_DD))
        e->tx_clean = (e->tx_clean + 1) % E1000_TX_RING;
}

static void *e1000_tx_buf(struct nic *n)
{
    struct e1000 *e = E(n);
    tx_reclaim(e);
    /* One slot stays empty so that TDH == TDT means "nothing queued". */
    if ((e->tx_next + 1) % E1000_TX_RING == e->tx_clean) {
        n->stats.tx_busy++;
        return NULL;
    }
    return e->tx_bufs + (size_t)e->tx_next * BUF_SIZE;
}

static void e1000_tx_commit(struct nic *n, size_t len)
{
    struct e1000 *e = E(n);
    volatile struct tx_desc *d = &e->tx[e->tx_next];
    d->addr = (uint64_t)(uintptr_t)(e->tx_bufs + (size_t)e->tx_next * BUF_SIZE);
    d->length = (uint16_t)len;
    d->cso = 0;
    d->css = 0;
    d->special = 0;
    d->status = 0;
    d->cmd = TXD_EOP | TXD_IFCS | TXD_RS;
    e->tx_next = (e->tx_next + 1) % E1000_TX_RING;
    /* The descriptor and buffer must be in memory before the tail moves. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    wr(e, REG_TDT, e->tx_next);
    n->stats.tx_packets++;
    n->stats.tx_bytes += len;
}

static bool e1000_link_up(struct nic *n)
{
    return (rr(E(n), REG_STATUS) & STATUS_LU) != 0;
}

static void e1000_update_stats(struct nic *n)
{
    struct e1000 *e = E(n);
    /* Statistics registers clear on read (SDM-8254x 13.7). */
    n->stats.hw_missed += rr(e, REG_MPC);
    n->stats.hw_no_buf += rr(e, REG_RNBC);
    n->stats.hw_crc += rr(e, REG_CRCERRS);
}

static bool reset(struct e1000 *e)
{
    wr(e, REG_IMC, 0xffffffffu);
    wr(e, REG_RCTL, 0);
    wr(e, REG_TCTL, 0);
    wr(e, REG_CTRL, rr(e, REG_CTRL) | CTRL_RST);
    /* RST self-clears once the reset is done (SDM-8254x 13.4.1); allow 10 ms. */
    net_udelay(10);
    for (int i = 0; i < 1000 && (rr(e, REG_CTRL) & CTRL_RST); i++)
        net_udelay(10);
    if (rr(e, REG_CTRL) & CTRL_RST)
        return false;
    wr(e, REG_IMC, 0xffffffffu); /* reset unmasks nothing, but be explicit */
    return true;
}

static void e1000_stop(struct nic *n)
{
    reset(E(n));
}

/* Reset, MAC, rings (every descriptor reset) and the receiver and transmitter
 * on: at start, and again after S3 took the device's state away.  NULL or
 * why not. */
static const char *hw_setup(struct e1000 *e)
{
    for (uint32_t i = 0; i < E1000_RX_RING; i++)
        e->rx[i] = (struct rx_desc){0};
    for (uint32_t i = 0; i < E1000_TX_RING; i++)
        e->tx[i] = (struct tx_desc){0};
    if (!reset(e)) {
        return "device reset did not complete";
    }
    uint32_t ctrl = rr(e, REG_CTRL);
    ctrl &= ~(CTRL_LRST | CTRL_ILOS | CTRL_VME | CTRL_PHY_RST);
    wr(e, REG_CTRL, ctrl | CTRL_SLU | CTRL_ASDE);

    if (!read_mac(e, e->nic.mac)) {
        return "no valid MAC in RAL0/RAH0 or the EEPROM";
    }
    const uint8_t *a = e->nic.mac;
    wr(e, REG_RAL0, a[0] | (uint32_t)a[1] << 8 | (uint32_t)a[2] << 16 | (uint32_t)a[3] << 24);
    wr(e, REG_RAH0, a[4] | (uint32_t)a[5] << 8 | RAH_AV);
    for (uint32_t i = 0; i < 128; i++)
        wr(e, REG_MTA + 4 * i, 0);

    /* RX ring (SDM-8254x 14.4): every descriptor owned by the device. */
    for (uint32_t i = 0; i < E1000_RX_RING; i++)
        e->rx[i].addr = (uint64_t)(uintptr_t)(e->rx_bufs + (size_t)i * BUF_SIZE);
    uint64_t rxa = (uint64_t)(uintptr_t)e->rx, txa = (uint64_t)(uintptr_t)e->tx;
    wr(e, REG_RDBAL, (uint32_t)rxa);
    wr(e, REG_RDBAH, (uint32_t)(rxa >> 32));
    wr(e, REG_RDLEN, E1000_RX_RING * sizeof(struct rx_desc));
    wr(e, REG_RDH, 0);
    wr(e, REG_RDT, E1000_RX_RING - 1);
    e->rx_next = 0;

    /* TX ring (SDM-8254x 14.5). */
    wr(e, REG_TDBAL, (uint32_t)txa);
    wr(e, REG_TDBAH, (uint32_t)(txa >> 32));
    wr(e, REG_TDLEN, E1000_TX_RING * sizeof(struct tx_desc));
    wr(e, REG_TDH, 0);
    wr(e, REG_TDT, 0);
    e->tx_next = e->tx_clean = 0;
    wr(e, REG_TIPG, TIPG_COPPER);
    wr(e, REG_TCTL, TCTL_EN | TCTL_PSP | TCTL_CT | TCTL_COLD);
    wr(e, REG_RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);

    return NULL;
}

static bool e1000_restart(struct nic *n)
{
    return hw_setup(E(n)) == NULL;
}

static const struct nic_ops e1000_ops = {
    .name = "e1000",
    .rx_peek = e1000_rx_peek,
    .rx_release = e1000_rx_release,
    .tx_buf = e1000_tx_buf,
    .tx_commit = e1000_tx_commit,
    .link_up = e1000_link_up,
    .update_stats = e1000_update_stats,
    .stop = e1000_stop,
    .restart = e1000_restart,
};

#define PAGES(bytes) (((bytes) + 4095) / 4096)

struct nic *e1000_start(volatile void *regs, const struct nic_model *m, nic_alloc_fn alloc,
                        const char **why)
{
    struct e1000 *e = alloc(PAGES(sizeof(struct e1000)));
    if (!e) {
        *why = "no memory for the driver state";
        return NULL;
    }
    e->regs = regs;
    e->model = m;
    e->nic.ops = &e1000_ops;
    e->nic.priv = e;
    e->rx = alloc(PAGES(E1000_RX_RING * sizeof(struct rx_desc)));
    e->tx = alloc(PAGES(E1000_TX_RING * sizeof(struct tx_desc)));
    e->rx_bufs = alloc(PAGES(E1000_RX_RING * BUF_SIZE));
    e->tx_bufs = alloc(PAGES(E1000_TX_RING * BUF_SIZE));
    if (!e->rx || !e->tx || !e->rx_bufs || !e->tx_bufs) {
        *why = "no memory for the rings";
        return NULL;
    }
    *why = hw_setup(e);
    if (*why)
        return NULL;
    e1000_update_stats(&e->nic); /* clear what the firmware left */
    memset(&e->nic.stats, 0, sizeof(e->nic.stats));
    return &e->nic;
}
