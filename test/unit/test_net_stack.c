/*
 * Host test of the network personality (net/netif.c) with the real lwIP
 * 2.1.3 core behind it and a fake NIC: the hypervisor answers ARP and ICMP
 * echo, which slirp in the emulator never lets the host observe (slirp
 * learns the guest's MAC from its own frames and never pings a guest).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hv_config.h"
#include "log.h"
#include "net_internal.h"
#include "net_io.h"

#include "lwip/sys.h"
#include "lwip/timeouts.h"

/* ---- what the core would provide ---------------------------------------------- */

void log_printf(uint32_t level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

void *net_alloc_pages(size_t n)
{
    void *p = aligned_alloc(4096, n * 4096);
    if (p)
        memset(p, 0, n * 4096);
    return p;
}

/* The port's (net/port/sys_arch.c) half of lwIP's platform, faked. */
void *net_lwip_heap;

static uint32_t now_ms;
u32_t sys_now(void)
{
    return now_ms;
}

unsigned int hv_rand32(void)
{
    return 12345;
}

void hv_lwip_diag(const char *fmt, ...)
{
    (void)fmt;
}

void hv_lwip_assert(const char *msg, int line, const char *file)
{
    fail_msg("lwIP assertion %s at %s:%d", msg, file, line);
    abort();
}

/* ---- a fake NIC: frames in from the test, frames out captured ------------------ */

#define MAXF 16
static uint8_t rxq[MAXF][NIC_MAX_FRAME];
static size_t rxlen[MAXF];
static unsigned rx_head, rx_tail;
static uint8_t txf[MAXF][NIC_MAX_FRAME];
static size_t txlen[MAXF];
static unsigned ntx;
static uint8_t txbuf[NIC_MAX_FRAME];

static const void *f_rx_peek(struct nic *n, size_t *len)
{
    (void)n;
    if (rx_head == rx_tail)
        return NULL;
    *len = rxlen[rx_head % MAXF];
    return rxq[rx_head % MAXF];
}

static void f_rx_release(struct nic *n)
{
    (void)n;
    rx_head++;
}

static void *f_tx_buf(struct nic *n)
{
    (void)n;
    return ntx < MAXF ? txbuf : NULL;
}

static void f_tx_commit(struct nic *n, size_t len)
{
    (void)n;
    memcpy(txf[ntx], txbuf, len);
    txlen[ntx++] = len;
}

static bool f_link_up(struct nic *n)
{
    (void)n;
    return true;
}

static void f_nop(struct nic *n)
{
    (void)n;
}

static const struct nic_ops fake_ops = {"fake",    f_rx_peek, f_rx_release, f_tx_buf, f_tx_commit,
                                        f_link_up, f_nop,     f_nop,        f_link_up};
static struct nic fake_nic = {.ops = &fake_ops, .mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56}};

static const uint8_t peer_mac[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
static const uint8_t hv_ip[4] = {10, 0, 2, 15}, peer_ip[4] = {10, 0, 2, 2};

static void inject(const uint8_t *f, size_t len)
{
    memcpy(rxq[rx_tail % MAXF], f, len);
    rxlen[rx_tail % MAXF] = len;
    rx_tail++;
}

static uint16_t csum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static int setup_stack(void **state)
{
    (void)state;
    struct hv_config c;
    config_defaults(&c);
    c.dhcp = false;
    c.ip = 0x0a00020f; /* 10.0.2.15/24, gateway 10.0.2.2 */
    c.netmask = 0xffffff00;
    c.gateway = 0x0a000202;
    assert_int_equal(netif_glue_start(&fake_nic, &c), 0);
    assert_int_equal(netif_glue_ip(), 0x0a00020f);
    ntx = 0; /* forget the gratuitous ARP */
    return 0;
}

static void test_answers_arp(void **state)
{
    (void)state;
    uint8_t f[60] = {0};
    memset(f, 0xff, 6);
    memcpy(f + 6, peer_mac, 6);
    f[12] = 0x08, f[13] = 0x06;                 /* ARP */
    f[14] = 0, f[15] = 1, f[16] = 8, f[17] = 0; /* Ethernet, IPv4 */
    f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1; /* request */
    memcpy(f + 22, peer_mac, 6);
    memcpy(f + 28, peer_ip, 4);
    memcpy(f + 38, hv_ip, 4);
    inject(f, sizeof(f));
    ntx = 0;
    assert_int_equal(netif_glue_poll(8), 1);
    assert_int_equal(ntx, 1);
    const uint8_t *r = txf[0];
    assert_memory_equal(r, peer_mac, 6); /* unicast back to the asker */
    assert_memory_equal(r + 6, fake_nic.mac, 6);
    assert_int_equal(r[21], 2);                   /* reply */
    assert_memory_equal(r + 22, fake_nic.mac, 6); /* sender: us */
    assert_memory_equal(r + 28, hv_ip, 4);
    assert_memory_equal(r + 32, peer_mac, 6);
    assert_memory_equal(r + 38, peer_ip, 4);

    /* a request for another address gets no answer */
    f[41] = 99;
    inject(f, sizeof(f));
    ntx = 0;
    netif_glue_poll(8);
    assert_int_equal(ntx, 0);
}

static void test_answers_ping(void **state)
{
    (void)state;
    uint8_t f[14 + 20 + 8 + 32] = {0};
    memcpy(f, fake_nic.mac, 6);
    memcpy(f + 6, peer_mac, 6);
    f[12] = 0x08, f[13] = 0x00;
    uint8_t *ip = f + 14, *icmp = ip + 20;
    ip[0] = 0x45;
    ip[3] = sizeof(f) - 14;
    ip[8] = 64, ip[9] = 1; /* TTL, ICMP */
    memcpy(ip + 12, peer_ip, 4);
    memcpy(ip + 16, hv_ip, 4);
    uint16_t c = csum(ip, 20);
    ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
    icmp[0] = 8;                    /* echo request */
    icmp[4] = 0x12, icmp[5] = 0x34; /* id */
    icmp[6] = 0, icmp[7] = 7;       /* seq */
    for (int i = 0; i < 32; i++)
        icmp[8 + i] = (uint8_t)(i * 3);
    c = csum(icmp, 40);
    icmp[2] = (uint8_t)(c >> 8), icmp[3] = (uint8_t)c;
    inject(f, sizeof(f));
    ntx = 0;
    netif_glue_poll(8);
    assert_int_equal(ntx, 1);
    const uint8_t *r = txf[0];
    assert_int_equal(txlen[0], sizeof(f));
    assert_memory_equal(r, peer_mac, 6);
    const uint8_t *rip = r + 14, *ric = rip + 20;
    assert_memory_equal(rip + 12, hv_ip, 4);
    assert_memory_equal(rip + 16, peer_ip, 4);
    assert_int_equal(csum(rip, 20), 0);
    assert_int_equal(ric[0], 0);                    /* echo reply */
    assert_memory_equal(ric + 4, icmp + 4, 4 + 32); /* id, seq, payload */
    assert_int_equal(csum(ric, 40), 0);

    /* a corrupted checksum is dropped, not answered */
    icmp[2] ^= 0xff;
    inject(f, sizeof(f));
    ntx = 0;
    netif_glue_poll(8);
    assert_int_equal(ntx, 0);
}

static void test_poll_budget(void **state)
{
    (void)state;
    uint8_t junk[60] = {0};
    junk[12] = 0x88, junk[13] = 0xb5; /* an ethertype nobody handles */
    for (int i = 0; i < 5; i++)
        inject(junk, sizeof(junk));
    assert_int_equal(netif_glue_poll(3), 3); /* bounded work per poll */
    assert_int_equal(netif_glue_poll(8), 2);
    assert_int_equal(netif_glue_poll(8), 0);
    assert_int_equal(fake_nic.stats.rx_packets >= 5, 1);
    now_ms += 1000;
    sys_check_timeouts();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_arp),
        cmocka_unit_test(test_answers_ping),
        cmocka_unit_test(test_poll_budget),
    };
    return cmocka_run_group_tests(tests, setup_stack, NULL);
}
