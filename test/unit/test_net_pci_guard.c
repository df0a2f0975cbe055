/*
 * Unit tests of net/pci_guard.c: the guest's config accesses against the
 * model chipset of pci_model.h (host bridge with PCIEXBAR, a root port, the
 * NIC behind it, another device), which counts every byte of the NIC's
 * config space it is asked for: the property under test is that no guest
 * access ever makes it count.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "pci_model.h"

static const struct pci_dev nic = {.bus = 1, .dev = 0, .fn = 0};
static const struct pci_mcfg mcfg = {1, {{.base = 0xb0000000, .start_bus = 0, .end_bus = 255}}};
static struct pci_guard g;

static int setup_q35(void **state)
{
    (void)state;
    model_reset(true);
    pci_guard_init(&g);
    if (pci_guard_for_nic(&g, &model_cfg_ops, &nic, &mcfg) != 2) /* the root port and PCIEXBAR */
        return -1;
    model_nic_touched = 0;
    return 0;
}

static uint32_t gio(uint16_t port, unsigned size, bool write, uint32_t val)
{
    return pci_guard_port_access(&g, &model_ports, port, size, write, val);
}

/* ---- verdicts ------------------------------------------------------------------- */

/* Every port of 0xCF8-0xCFF, every size and direction, CONFIG_ADDRESS on the NIC. */
static void test_port_verdict_table(void **state)
{
    (void)state;
    unsigned n = 0;
    for (uint16_t port = 0xcf8; port <= 0xcff; port++)
        for (unsigned size = 1; size <= 4; size *= 2)
            for (int w = 0; w < 2; w++) {
                uint64_t keep;
                enum pci_verdict v =
                    pci_guard_port_verdict(&g, model_cf8_of(F_NIC, 0), port, size, w, &keep);
                unsigned last = port + size - 1u;
                enum pci_verdict want = port == 0xcf8 && size == 4       ? PCI_CFG_ADDR
                                        : last < 0xcfc                   ? PCI_PASS
                                        : port >= 0xcfc && last <= 0xcff ? PCI_HIDE
                                                                         : PCI_SPLIT;
                if (v != want)
                    print_error("port 0x%x size %u %s: verdict %d, want %d\n", port, size,
                                w ? "write" : "read", v, want);
                assert_int_equal(v, want);
                n++;
            }
    assert_int_equal(n, 48);
    uint64_t keep;
    /* the straddling accesses of the attack are judged byte by byte */
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_NIC, 0), 0xcfb, 4, false, &keep),
                     PCI_SPLIT);
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_NIC, 0), 0xcfa, 4, true, &keep),
                     PCI_SPLIT);
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_NIC, 0), 0xcf9, 4, false, &keep),
                     PCI_SPLIT);
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_NIC, 0), 0xcfb, 2, false, &keep),
                     PCI_SPLIT);
    /* another device passes; the enable bit clear is plain I/O */
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_OTHER, 0), 0xcfc, 4, true, &keep),
                     PCI_PASS);
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_NIC, 0) & ~PCI_CF8_ENABLE, 0xcfc, 4,
                                            false, &keep),
                     PCI_PASS);
    /* reserved and low bits of CONFIG_ADDRESS do not make another function */
    assert_int_equal(
        pci_guard_port_verdict(&g, model_cf8_of(F_NIC, 0x10) | 0x7f000003, 0xcfe, 2, false, &keep),
        PCI_HIDE);
    /* the root port's bus numbers: a filtered write, its latency timer byte free */
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_PORT, 0x18), 0xcfc, 4, true, &keep),
                     PCI_FILTER);
    assert_int_equal(keep, 0x00ffffff);
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_PORT, 0x18), 0xcfd, 2, true, &keep),
                     PCI_FILTER);
    assert_int_equal(keep, 0xffff);
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_PORT, 0x18), 0xcff, 1, true, &keep),
                     PCI_PASS);
    assert_int_equal(pci_guard_port_verdict(&g, model_cf8_of(F_PORT, 0x18), 0xcfc, 4, false, &keep),
                     PCI_PASS);
}

/* ---- every access against the model -------------------------------------------- */

/* Every CONFIG_ADDRESS aimed at the NIC (registers, low and reserved bits), every port from
 * 0xCF4 to 0xD00, size and direction: the NIC's config space is never touched, a read gives
 * all ones for each byte of the data window, and the NIC's bytes are unchanged. */
static void test_no_access_reaches_the_nic(void **state)
{
    (void)state;
    static const uint32_t regs[] = {0x00, 0x04, 0x10, 0x3c, 0xfc, 0x01, 0x03, 0x7f000000};
    uint8_t before[256];
    memcpy(before, model_cfg[F_NIC], sizeof(before));
    unsigned n = 0, leaks = 0;
    for (unsigned r = 0; r < sizeof(regs) / sizeof(regs[0]); r++)
        for (uint16_t port = 0xcf4; port <= 0xd00; port++)
            for (unsigned size = 1; size <= 4; size *= 2)
                for (int w = 0; w < 2; w++) {
                    gio(0xcf8, 4, true, model_cf8_of(F_NIC, 0) | regs[r]);
                    uint32_t got = gio(port, size, w, 0x00000000);
                    for (unsigned i = 0; !w && i < size; i++) {
                        unsigned p = port + i;
                        if (p >= 0xcfc && p <= 0xcff && ((got >> (8 * i)) & 0xff) != 0xff)
                            leaks++;
                    }
                    n++;
                }
    if (model_nic_touched || leaks)
        print_error("%u of the NIC's config bytes touched, %u bytes read not all ones, in %u "
                    "accesses\n",
                    model_nic_touched, leaks, n);
    assert_int_equal(n, 8 * 13 * 3 * 2);
    assert_int_equal(model_nic_touched, 0);
    assert_int_equal(leaks, 0);
    assert_memory_equal(before, model_cfg[F_NIC], sizeof(before));
    assert_true(g.hidden_reads > 0 && g.dropped_writes > 0);
}

/* The attacks of the issue, one by one, with the values the guest gets. */
static void test_straddling_accesses(void **state)
{
    (void)state;
    gio(0xcf8, 4, true, model_cf8_of(F_NIC, 0));
    /* inl 0xCFB: 0xCFB is a piece of CONFIG_ADDRESS (all ones), 0xCFC-0xCFE the NIC (hidden) */
    assert_int_equal(gio(0xcfb, 4, false, 0), 0xffffffffu);
    assert_int_equal(gio(0xcfa, 4, false, 0), 0xffffffffu);
    assert_int_equal(gio(0xcf9, 4, false, 0), 0xffffffffu);
    assert_int_equal(gio(0xcfb, 2, false, 0), 0xffff);
    assert_int_equal(gio(0xcf9, 2, false, 0), 0x0000); /* plain I/O at 0xCF9-0xCFA */
    /* outl 0xCFB/0xCFA/0xCF9 aimed at BAR0: dropped */
    gio(0xcf8, 4, true, model_cf8_of(F_NIC, 0x10));
    gio(0xcfb, 4, true, 0x00000000);
    gio(0xcfa, 4, true, 0x00000000);
    gio(0xcf9, 4, true, 0x00000000);
    gio(0xcfb, 2, true, 0x0000);
    assert_int_equal(model_get32(F_NIC, 0x10), 0xfeb80000);
    assert_int_equal(model_nic_touched, 0);
    /* the guest's CONFIG_ADDRESS is the shadow, untouched by the pieces */
    assert_int_equal(gio(0xcf8, 4, false, 0), model_cf8_of(F_NIC, 0x10));
}

/* Everything else behaves as the hardware does. */
static void test_other_accesses_unchanged(void **state)
{
    (void)state;
    gio(0xcf8, 4, true, model_cf8_of(F_OTHER, 0));
    assert_int_equal(gio(0xcfc, 4, false, 0), 0x10001af4);
    assert_int_equal(gio(0xcfe, 2, false, 0), 0x1000);
    assert_int_equal(gio(0xcfd, 1, false, 0), 0x1a);
    /* a straddling read of another device gives its bytes where the data window is */
    assert_int_equal(gio(0xcfb, 4, false, 0), 0x001af4ffu);
    gio(0xcf8, 4, true, model_cf8_of(F_OTHER, 0x40));
    gio(0xcfc, 4, true, 0x12345678);
    assert_int_equal(model_get32(F_OTHER, 0x40), 0x12345678);
    gio(0xcfe, 2, true, 0xabcd);
    assert_int_equal(model_get32(F_OTHER, 0x40), 0xabcd5678);
    /* the reset control register at 0xCF9 is plain I/O and gets the guest's byte */
    gio(0xcf9, 1, true, 0x06);
    assert_int_equal(model_plain[0xcf9 - 0xce0], 0x06);
    assert_int_equal(gio(0xcf9, 1, false, 0), 0x06);
    /* the real CONFIG_ADDRESS is the guest's whenever a data access is made */
    model_cf8 = model_cf8_of(F_NIC, 0); /* as if the hypervisor had used it meanwhile */
    assert_int_equal(gio(0xcfc, 4, false, 0), 0xabcd5678);
    assert_int_equal(model_nic_touched, 0);
    /* an unassigned function reads all ones; the enable bit clear is plain I/O */
    gio(0xcf8, 4, true, PCI_CF8_ENABLE | PCI_BDF(5, 1, 0) << 8);
    assert_int_equal(gio(0xcfc, 4, false, 0), 0xffffffffu);
    gio(0xcf8, 4, true, model_cf8_of(F_NIC, 0) & ~PCI_CF8_ENABLE);
    gio(0xcfc, 1, true, 0x42);
    assert_int_equal(model_plain[0xcfc - 0xce0], 0x42);
    assert_int_equal(model_nic_touched, 0);
}

/* The registers that would move or cut off the NIC keep their values. */
static void test_path_protected(void **state)
{
    (void)state;
    uint8_t before[256];
    memcpy(before, model_cfg[F_PORT], sizeof(before));
    /* bus numbers: renumbering would make the NIC answer at another bus */
    gio(0xcf8, 4, true, model_cf8_of(F_PORT, 0x18));
    gio(0xcfc, 4, true, 0x40020200);
    gio(0xcfd, 1, true, 0x05);
    gio(0xcfe, 2, true, 0x4005);
    gio(0xcfb, 4, true, 0); /* straddling: bytes 0xCFC-0xCFE are bus numbers */
    assert_int_equal(model_get32(F_PORT, 0x18), 0x40010100); /* latency timer is the guest's */
    /* command: I/O, memory and bus master stay on; INTx disable is the guest's */
    gio(0xcf8, 4, true, model_cf8_of(F_PORT, 0x04));
    gio(0xcfc, 2, true, 0x0400);
    assert_int_equal(model_get32(F_PORT, 0x04) & 0xffff, 0x0407);
    /* windows, secondary bus reset, link disable, power state */
    static const struct {
        unsigned reg, port, size;
        uint32_t val;
    } w[] = {{0x1c, 0xcfc, 2, 0},    {0x20, 0xcfc, 4, 0xfff0fff0}, {0x24, 0xcfc, 4, 0},
             {0x28, 0xcfc, 4, 1},    {0x2c, 0xcfc, 4, 1},          {0x30, 0xcfc, 4, 1},
             {0x3c, 0xcfe, 2, 0x40}, {0x50, 0xcfc, 2, 0x10},       {0x84, 0xcfc, 1, 3}};
    for (unsigned i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        gio(0xcf8, 4, true, model_cf8_of(F_PORT, w[i].reg));
        gio((uint16_t)w[i].port, w[i].size, true, w[i].val);
        gio((uint16_t)(w[i].port - 1), 4, true, w[i].val << 8); /* and straddling */
    }
    before[0x04 + 1] = 0x04; /* the INTx disable bit set above */
    before[0x18 + 3] = 0x40; /* the latency timer */
    assert_memory_equal(before, model_cfg[F_PORT], 0x40);
    assert_int_equal(model_get32(F_PORT, 0x50) & 0x10, 0);
    assert_int_equal(model_get32(F_PORT, 0x84) & 3, 0);
    /* Q35's PCIEXBAR: moving ECAM would open a window onto the NIC */
    gio(0xcf8, 4, true, model_cf8_of(F_HOST, 0x60));
    gio(0xcfc, 4, true, 0xc0000001);
    gio(0xcfc, 1, true, 0);
    gio(0xcf8, 4, true, model_cf8_of(F_HOST, 0x64));
    gio(0xcfc, 4, true, 1);
    assert_int_equal(model_get32(F_HOST, 0x60), 0xb0000001);
    assert_int_equal(model_get32(F_HOST, 0x64), 0);
    /* reads of those registers are the hardware's */
    gio(0xcf8, 4, true, model_cf8_of(F_HOST, 0x60));
    assert_int_equal(gio(0xcfc, 4, false, 0), 0xb0000001);
    assert_true(g.filtered_writes > 0);
}

/* i440FX has no PCIEXBAR: its register 0x60 (DRAM rows) is not touched; nor is a Q35 one that
 * does not hold the MCFG base. */
static void test_pciexbar_only_where_it_is(void **state)
{
    (void)state;
    model_reset(false);
    pci_guard_init(&g);
    assert_int_equal(pci_guard_for_nic(&g, &model_cfg_ops, &nic, NULL), 1);
    uint16_t f[8];
    assert_int_equal(pci_guard_functions(&g, f, 8), 1);
    assert_int_equal(f[0], PCI_BDF(0, 0x1c, 0));
    gio(0xcf8, 4, true, model_cf8_of(F_HOST, 0x60));
    gio(0xcfc, 4, true, 0x03030303);
    assert_int_equal(model_get32(F_HOST, 0x60), 0x03030303);

    model_reset(true);
    model_put32(F_HOST, 0x60, 0xe0000001);
    pci_guard_init(&g);
    assert_int_equal(pci_guard_for_nic(&g, &model_cfg_ops, &nic, &mcfg), 1);
    /* a NIC on bus 0 has no bridge on its path */
    model_reset(true);
    pci_guard_init(&g);
    struct pci_dev on0 = {.bus = 0, .dev = 3, .fn = 0};
    assert_int_equal(pci_guard_for_nic(&g, &model_cfg_ops, &on0, &mcfg), 1);
}

/* ---- two vCPUs ------------------------------------------------------------------- */

#define RACE_ROUNDS 200000
static volatile int race_go;
static unsigned race_bad;

static void *flipper(void *arg)
{
    (void)arg;
    while (!race_go)
        ;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        gio(0xcf8, 4, true, model_cf8_of(F_NIC, 0));
        gio(0xcf8, 4, true, model_cf8_of(F_OTHER, 0));
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    while (!race_go)
        ;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        uint32_t v = gio(0xcfc, 4, false, 0);
        if (v != 0xffffffffu && v != 0x10001af4)
            race_bad++;
    }
    return NULL;
}

/* One vCPU flips CONFIG_ADDRESS between the NIC and another device while the other reads
 * 0xCFC: every read is the other device or all ones, the NIC is never reached. */
static void test_cf8_race(void **state)
{
    (void)state;
    pthread_t a, b;
    race_go = 0;
    race_bad = 0;
    gio(0xcf8, 4, true, model_cf8_of(F_OTHER, 0));
    assert_int_equal(pthread_create(&a, NULL, flipper, NULL), 0);
    assert_int_equal(pthread_create(&b, NULL, reader, NULL), 0);
    race_go = 1;
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    if (model_nic_touched || race_bad)
        print_error("race: %u NIC bytes touched, %u reads neither device nor ones\n",
                    model_nic_touched, race_bad);
    assert_int_equal(model_nic_touched, 0);
    assert_int_equal(race_bad, 0);
}

/* ---- ECAM -------------------------------------------------------------------------- */

static void test_ecam(void **state)
{
    (void)state;
    /* segment 0 twice (the second from bus 1, counted from its start bus by some firmware),
     * and a segment 1 that holds other devices */
    struct pci_mcfg m = {3,
                         {{.base = 0xb0000000, .segment = 0, .start_bus = 0, .end_bus = 255},
                          {.base = 0xc0000000, .segment = 0, .start_bus = 1, .end_bus = 1},
                          {.base = 0xd0000000, .segment = 1, .start_bus = 0, .end_bus = 255}}};
    uint64_t pages[8];
    assert_int_equal(pci_mcfg_pages(&m, 1, 0, 0, pages, 8), 3);
    assert_int_equal(pages[0], 0xb0100000);
    assert_int_equal(pages[1], 0xc0100000);
    assert_int_equal(pages[2], 0xc0000000);                     /* the alias */
    assert_int_equal(pci_mcfg_pages(&m, 1, 0, 0, pages, 1), 3); /* says some were left out */
    assert_int_equal(pci_mcfg_pages(&m, 0, 0x1c, 0, pages, 8), 1);
    assert_int_equal(pages[0], 0xb00e0000);
    assert_int_equal(pci_mcfg_addr(&m, 1, 0, 0), 0xb0100000);
    assert_int_equal(pci_mcfg_addr(&m, 0, 2, 1), 0xb0011000);

    uint16_t bdf[4], off[4];
    assert_int_equal(pci_mcfg_decode(&m, 0xc0000010, bdf, off, 4), 1);
    assert_int_equal(bdf[0], PCI_BDF(1, 0, 0));
    assert_int_equal(off[0], 0x10);
    assert_int_equal(pci_mcfg_decode(&m, 0xd0100000, bdf, off, 4), 0); /* segment 1 */

    uint64_t keep;
    /* the NIC's page in every entry and the alias: hidden */
    for (unsigned i = 0; i < 3; i++) {
        uint64_t a = pci_mcfg_pages(&m, 1, 0, 0, pages, 8) ? pages[i] : 0;
        assert_int_equal(pci_guard_ecam_verdict(&g, &m, a + 0x10, 4, true, &keep), PCI_HIDE);
        assert_int_equal(pci_guard_ecam_verdict(&g, &m, a + 0x4, 2, false, &keep), PCI_HIDE);
    }
    /* the root port's bus numbers and the host bridge's PCIEXBAR (8-byte store): filtered */
    assert_int_equal(pci_guard_ecam_verdict(&g, &m, 0xb00e0018, 4, true, &keep), PCI_FILTER);
    assert_int_equal(keep, 0x00ffffff);
    assert_int_equal(pci_guard_ecam_verdict(&g, &m, 0xb00e0018, 4, false, &keep), PCI_PASS);
    assert_int_equal(pci_guard_ecam_verdict(&g, &m, 0xb0000060, 8, true, &keep), PCI_FILTER);
    assert_true(keep == ~0ull);
    assert_int_equal(pci_guard_ecam_verdict(&g, &m, 0xb0000061, 1, true, &keep), PCI_FILTER);
    assert_int_equal(keep, 0xff);
    /* another function's registers pass; a store leaving its page or of an odd size is dropped */
    assert_int_equal(pci_guard_ecam_verdict(&g, &m, 0xb0018040, 4, true, &keep), PCI_PASS);
    assert_int_equal(pci_guard_ecam_verdict(&g, &m, 0xb0018ffc, 8, true, &keep), PCI_HIDE);
    assert_int_equal(pci_guard_ecam_verdict(&g, &m, 0xb0018000, 3, true, &keep), PCI_HIDE);
}

static void test_table_full(void **state)
{
    (void)state;
    struct pci_guard t;
    pci_guard_init(&t);
    for (unsigned i = 0; i < PCI_GUARD_MAX_REGS; i++)
        assert_int_equal(pci_guard_protect(&t, 0, 1, 0, (uint16_t)(4 * i), 1), 0);
    assert_int_equal(pci_guard_protect(&t, 0, 1, 0, 0, 2), 0); /* merges into an entry */
    assert_int_equal(pci_guard_protect(&t, 0, 2, 0, 0, 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_port_verdict_table, setup_q35),
        cmocka_unit_test_setup(test_no_access_reaches_the_nic, setup_q35),
        cmocka_unit_test_setup(test_straddling_accesses, setup_q35),
        cmocka_unit_test_setup(test_other_accesses_unchanged, setup_q35),
        cmocka_unit_test_setup(test_path_protected, setup_q35),
        cmocka_unit_test(test_pciexbar_only_where_it_is),
        cmocka_unit_test_setup(test_cf8_race, setup_q35),
        cmocka_unit_test_setup(test_ecam, setup_q35),
        cmocka_unit_test(test_table_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
