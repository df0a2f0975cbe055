/*
 * Unit tests of net/e1000.c against a fake device: a register file in
 * memory, with the test playing the hardware (reset completion, EEPROM
 * reads, filling RX descriptors, completing TX descriptors).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "net/nic.h"

#define R(off) regs[(off) / 4]
enum {
    CTRL = 0x0000,
    EERD = 0x0014,
    IMC = 0x00d8,
    RCTL = 0x0100,
    TCTL = 0x0400,
    RDBAL = 0x2800,
    RDLEN = 0x2808,
    RDH = 0x2810,
    RDT = 0x2818,
    TDBAL = 0x3800,
    TDLEN = 0x3808,
    TDT = 0x3818,
    MPC = 0x4010,
    RAL0 = 0x5400,
    RAH0 = 0x5404,
};

static uint32_t *regs;
static const struct nic_model *model;
static uint16_t eeprom[64];
static bool reset_hangs;
static unsigned eerd_reads;

/* The "hardware" acts while the driver waits. */
void net_udelay(unsigned us)
{
    (void)us;
    if (!reset_hangs)
        R(CTRL) &= ~(1u << 26);
    uint32_t e = R(EERD);
    uint32_t done = 1u << model->eerd_done_bit;
    if ((e & 1) && !(e & done)) {
        unsigned addr = (e >> model->eerd_addr_shift) & 0xff;
        R(EERD) = (uint32_t)eeprom[addr] << 16 | done | (e & 0xffff);
        eerd_reads++;
    }
}

/* The driver's pages (the page allocator's, in the core), freed after each test. */
static void *allocs[64];
static unsigned nallocs;

static void *alloc(size_t n)
{
    void *p = aligned_alloc(4096, n * 4096);
    memset(p, 0, n * 4096);
    assert_true(nallocs < 64);
    allocs[nallocs++] = p;
    return p;
}

struct rxd {
    uint64_t addr;
    uint16_t len, csum;
    uint8_t status, errors;
    uint16_t special;
};
struct txd {
    uint64_t addr;
    uint16_t len;
    uint8_t cso, cmd, status, css;
    uint16_t special;
};

static int setup(void **state)
{
    (void)state;
    regs = calloc(0x20000 / 4, 4);
    model = nic_model_find(0x8086, 0x100e);
    R(RAL0) = 0x12005452; /* 52:54:00:12:34:56 */
    R(RAH0) = 0x5634 | (1u << 31);
    R(MPC) = 0; /* the firmware left nothing */
    reset_hangs = false;
    eerd_reads = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(regs);
    while (nallocs)
        free(allocs[--nallocs]);
    return 0;
}

static struct nic *start(void)
{
    const char *why = NULL;
    struct nic *n = e1000_start(regs, model, alloc, &why);
    assert_non_null(n);
    assert_null(why);
    return n;
}

static void test_bring_up(void **state)
{
    (void)state;
    R(CTRL) = 1u << 3 | 1u << 31; /* LRST and PHY_RST set by someone before us */
    struct nic *n = start();
    static const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    assert_memory_equal(n->mac, mac, 6);
    assert_int_equal(eerd_reads, 0); /* RAL/RAH valid: no EEPROM access */
    assert_int_equal(R(IMC), 0xffffffffu);
    assert_int_equal(R(CTRL) & (1u << 6), 1u << 6); /* SLU */
    assert_int_equal(R(CTRL) & (1u << 3 | 1u << 31), 0);
    assert_int_equal(R(RDLEN), E1000_RX_RING * 16);
    assert_int_equal(R(RDT), E1000_RX_RING - 1);
    assert_int_equal(R(TDLEN), E1000_TX_RING * 16);
    assert_int_equal(R(TDT), 0);
    assert_int_equal(R(RCTL), 1u << 1 | 1u << 15 | 1u << 26);
    assert_int_equal(R(TCTL) & 3, 2);
    assert_int_equal(R(RAH0), 0x5634 | (1u << 31));
    assert_string_equal(n->ops->name, "e1000");
}

static void test_mac_from_eeprom(void **state)
{
    (void)state;
    R(RAH0) = 0; /* not valid */
    eeprom[0] = 0x0200, eeprom[1] = 0xccbb, eeprom[2] = 0xeedd;
    struct nic *n = start();
    static const uint8_t mac[6] = {0x00, 0x02, 0xbb, 0xcc, 0xdd, 0xee};
    assert_memory_equal(n->mac, mac, 6);
    assert_int_equal(eerd_reads, 3);
    /* and it is programmed into RAL0/RAH0 with Address Valid */
    assert_int_equal(R(RAL0), 0xccbb0200);
    assert_int_equal(R(RAH0), 0xeedd | (1u << 31));

    /* 82574L: EERD address at bit 2, done at bit 1 */
    free(regs);
    setup(NULL);
    R(RAH0) = 0;
    model = nic_model_find(0x8086, 0x10d3);
    n = start();
    assert_memory_equal(n->mac, mac, 6);
}

static void test_refusals(void **state)
{
    (void)state;
    const char *why = NULL;
    reset_hangs = true;
    R(CTRL) = 0;
    assert_null(e1000_start(regs, model, alloc, &why));
    assert_non_null(strstr(why, "reset"));
    reset_hangs = false;
    R(RAH0) = 0;
    memset(eeprom, 0, sizeof(eeprom)); /* all-zero MAC */
    assert_null(e1000_start(regs, model, alloc, &why));
    assert_non_null(strstr(why, "MAC"));
}

static void test_receive(void **state)
{
    (void)state;
    struct nic *n = start();
    struct rxd *ring = (struct rxd *)(uintptr_t)((uint64_t)R(RDBAL) | (uint64_t)R(RDBAL + 4) << 32);
    unsigned hw = 0; /* the device's head */
    size_t len;
    assert_null(n->ops->rx_peek(n, &len));
    /* Three frames: good, bad (errors), good without EOP (counted as error), good. */
    for (int k = 0; k < 600; k++) {
        struct rxd *d = &ring[hw];
        uint8_t *buf = (uint8_t *)(uintptr_t)d->addr;
        int kind = k % 4;
        memset(buf, (uint8_t)k, 64);
        d->len = 64;
        d->errors = kind == 1 ? 0x01 : 0;    /* CE */
        d->status = kind == 2 ? 0x01 : 0x03; /* DD, +EOP */
        hw = (hw + 1) % E1000_RX_RING;
        if (kind != 3)
            continue;
        /* the driver sees exactly the two good frames, in order */
        const uint8_t *f = n->ops->rx_peek(n, &len);
        assert_non_null(f);
        assert_int_equal(len, 64);
        assert_int_equal(f[0], (uint8_t)(k - 3));
        n->ops->rx_release(n);
        f = n->ops->rx_peek(n, &len);
        assert_non_null(f);
        assert_int_equal(f[63], (uint8_t)k);
        n->ops->rx_release(n);
        assert_null(n->ops->rx_peek(n, &len));
        /* every descriptor went back to the device: RDT is the last one handled */
        assert_int_equal(R(RDT), (hw + E1000_RX_RING - 1) % E1000_RX_RING);
    }
    assert_int_equal(n->stats.rx_errors, 300);
}

static void test_transmit_and_full_ring(void **state)
{
    (void)state;
    struct nic *n = start();
    struct txd *ring = (struct txd *)(uintptr_t)((uint64_t)R(TDBAL) | (uint64_t)R(TDBAL + 4) << 32);
    unsigned sent = 0;
    for (;;) {
        uint8_t *b = n->ops->tx_buf(n);
        if (!b)
            break;
        memset(b, (uint8_t)sent, 100);
        n->ops->tx_commit(n, 60 + sent % 8);
        struct txd *d = &ring[sent % E1000_TX_RING];
        assert_int_equal(d->len, 60 + sent % 8);
        assert_int_equal(d->cmd, 0x0b); /* EOP | IFCS | RS */
        assert_int_equal(((uint8_t *)(uintptr_t)d->addr)[0], (uint8_t)sent);
        sent++;
        assert_int_equal(R(TDT), sent % E1000_TX_RING);
    }
    /* one slot stays free so that a full ring never looks empty */
    assert_int_equal(sent, E1000_TX_RING - 1);
    assert_int_equal(n->stats.tx_busy, 1);
    assert_int_equal(n->stats.tx_packets, sent);
    /* the device completes the first 10: exactly 10 more fit */
    for (int i = 0; i < 10; i++)
        ring[i].status = 1;
    for (int i = 0; i < 10; i++) {
        assert_non_null(n->ops->tx_buf(n));
        n->ops->tx_commit(n, 60);
    }
    assert_null(n->ops->tx_buf(n));
    assert_int_equal(R(TDT), (E1000_TX_RING - 1 + 10) % E1000_TX_RING);
}

static void test_counters(void **state)
{
    (void)state;
    R(MPC) = 7; /* left over from before us: cleared at start */
    struct nic *n = start();
    assert_int_equal(n->stats.hw_missed, 0);
    R(MPC) = 5;
    n->ops->update_stats(n);
    R(MPC) = 2;
    n->ops->update_stats(n);
    assert_int_equal(n->stats.hw_missed, 7);
    assert_true(n->ops->link_up(n) == false); /* STATUS.LU clear in the fake */
    regs[0x0008 / 4] = 2;
    assert_true(n->ops->link_up(n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bring_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mac_from_eeprom, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit_and_full_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
