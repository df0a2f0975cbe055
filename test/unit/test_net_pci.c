/* Unit tests of net/pci.c: enumeration, NIC selection, MCFG. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "hv_config.h"
#include "net/nic.h"
#include "net/pci.h"

/* A fake config space: 256 bytes per function of bus 0..3. */
#define FB 4
static uint32_t space[FB][32][8][64];
static unsigned reads;

static uint32_t f_read(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    (void)ctx;
    reads++;
    if (bus >= FB)
        return 0xffffffffu;
    return space[bus][dev][fn][off / 4];
}

static void f_write(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
    (void)ctx;
    if (bus < FB)
        space[bus][dev][fn][off / 4] = v;
}

static const struct pci_cfg_ops ops = {f_read, f_write, NULL};

static void add(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t vendor, uint16_t device,
                uint32_t class_rev, bool multi)
{
    uint32_t *c = space[bus][dev][fn];
    c[0] = vendor | (uint32_t)device << 16;
    c[2] = class_rev;
    c[3] = multi ? 0x800000u : 0;
    for (int i = 4; i < 10; i++)
        c[i] = 0; /* unused BARs read as zero */
}

static int setup(void **state)
{
    (void)state;
    memset(space, 0xff, sizeof(space));
    reads = 0;
    add(0, 0, 0, 0x8086, 0x1237, 0x06000002, false);
    add(0, 1, 0, 0x8086, 0x7000, 0x06010000, true);
    add(0, 1, 1, 0x8086, 0x7010, 0x01018000, true);
    add(0, 1, 3, 0x8086, 0x7113, 0x06800000, true); /* gap at function 2 */
    add(0, 2, 0, 0x8086, 0x100e, 0x02000003, false);
    space[0][2][0][4] = 0xfebc0000;                  /* BAR0: 32-bit memory */
    space[0][2][0][5] = 0x0000c001;                  /* BAR1: I/O */
    add(0, 3, 0, 0x1af4, 0x1000, 0x02000000, false); /* virtio-net: no driver */
    add(2, 5, 0, 0x8086, 0x10d3, 0x02000000, false);
    space[2][5][0][4] = 0x0000000c; /* BAR0: 64-bit prefetchable, high half next */
    space[2][5][0][5] = 0x00000001;
    /* function 0 absent, function 1 present: must not be seen (no device) */
    add(0, 4, 1, 0x8086, 0x100e, 0x02000000, false);
    space[0][4][0][0] = 0xffffffffu;
    return 0;
}

static void test_scan_finds_every_function(void **state)
{
    (void)state;
    struct pci_dev d[16];
    int n = pci_scan(&ops, d, 16);
    assert_int_equal(n, 7);
    assert_int_equal(d[2].dev, 1);
    assert_int_equal(d[2].fn, 1);
    assert_int_equal(d[3].fn, 3);
    assert_int_equal(d[4].device, 0x100e);
    assert_int_equal(d[4].class_code, PCI_CLASS_NETWORK);
    assert_int_equal(d[4].bar[0], 0xfebc0000);
    assert_int_equal(d[4].bar[1], 0xc000);
    assert_int_equal(d[4].bar_is_io, 2);
    assert_int_equal(d[6].bus, 2);
    assert_int_equal(d[6].bar[0], 0x100000000ull);
    assert_int_equal(d[6].bar_is_64, 1);
    /* max bounds the stores, not the count */
    assert_int_equal(pci_scan(&ops, d, 2), 7);
}

static bool supported(uint16_t v, uint16_t d)
{
    return nic_supported(v, d);
}

static bool fake_mac(void *ctx, const struct pci_dev *d, uint8_t mac[6])
{
    (void)ctx;
    uint8_t m[6] = {0x52, 0x54, 0, 0, d->bus, d->dev};
    memcpy(mac, m, 6);
    return true;
}

static void test_select(void **state)
{
    (void)state;
    struct pci_dev d[16];
    int n = pci_scan(&ops, d, 16);
    struct hv_config c;
    config_defaults(&c);
    const char *why;
    assert_int_equal(pci_select_nic(&c, d, n, supported, fake_mac, NULL, &why), 4);

    c.nic_select = NIC_BY_PCI;
    c.nic_bus = 2, c.nic_dev = 5, c.nic_fn = 0;
    assert_int_equal(pci_select_nic(&c, d, n, supported, fake_mac, NULL, &why), 6);
    c.nic_bus = 0, c.nic_dev = 3; /* virtio-net: present but no driver */
    assert_int_equal(pci_select_nic(&c, d, n, supported, fake_mac, NULL, &why), -1);
    assert_non_null(strstr(why, "no driver"));
    c.nic_dev = 9;
    assert_int_equal(pci_select_nic(&c, d, n, supported, fake_mac, NULL, &why), -1);
    assert_non_null(strstr(why, "no PCI function"));

    c.nic_select = NIC_BY_MAC;
    uint8_t want[6] = {0x52, 0x54, 0, 0, 2, 5};
    memcpy(c.nic_mac, want, 6);
    assert_int_equal(pci_select_nic(&c, d, n, supported, fake_mac, NULL, &why), 6);
    c.nic_mac[5] = 9;
    assert_int_equal(pci_select_nic(&c, d, n, supported, fake_mac, NULL, &why), -1);

    c.nic_select = NIC_NONE;
    assert_int_equal(pci_select_nic(&c, d, n, supported, fake_mac, NULL, &why), -1);
    c.nic_select = NIC_AUTO;
    assert_int_equal(pci_select_nic(&c, d, 3, supported, fake_mac, NULL, &why), -1);
}

static void test_models(void **state)
{
    (void)state;
    assert_non_null(nic_model_find(0x8086, 0x100e));
    assert_int_equal(nic_model_find(0x8086, 0x10d3)->eerd_addr_shift, 2);
    assert_int_equal(nic_model_find(0x8086, 0x100f)->eerd_done_bit, 4);
    assert_null(nic_model_find(0x8086, 0x1237));
    assert_null(nic_model_find(0x1af4, 0x1000));
}

/* ---- ACPI: RSDP -> XSDT/RSDT -> MCFG ------------------------------------- */

static uint8_t acpi[4096] __attribute__((aligned(16)));

static void checksum(uint8_t *p, size_t n, size_t at)
{
    uint8_t s = 0;
    p[at] = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    p[at] = (uint8_t)-s;
}

static void put_hdr(uint8_t *t, const char *sig, uint32_t len)
{
    memcpy(t, sig, 4);
    memcpy(t + 4, &len, 4);
    t[8] = 1;
    checksum(t, len, 9);
}

/* Builds RSDP at 0, XSDT (or RSDT) at 64, an "APIC" table at 256, MCFG at 512. */
static uint64_t build_acpi(bool xsdt, bool with_mcfg, uint16_t seg)
{
    memset(acpi, 0, sizeof(acpi));
    uint8_t *apic = acpi + 256, *mcfg = acpi + 512, *sdt = acpi + 64;
    put_hdr(apic, "APIC", 44);
    uint32_t mlen = 36 + 8 + 16;
    uint64_t base = 0xb0000000;
    memcpy(mcfg + 44, &base, 8);
    memcpy(mcfg + 52, &seg, 2);
    mcfg[54] = 0;
    mcfg[55] = 0xff;
    put_hdr(mcfg, with_mcfg ? "MCFG" : "HPET", mlen);
    uint64_t a1 = (uintptr_t)apic, a2 = (uintptr_t)mcfg;
    if (xsdt) {
        memcpy(sdt + 36, &a1, 8);
        memcpy(sdt + 44, &a2, 8);
        put_hdr(sdt, "XSDT", 52);
    } else {
        uint32_t b1 = (uint32_t)a1, b2 = (uint32_t)a2;
        memcpy(sdt + 36, &b1, 4);
        memcpy(sdt + 40, &b2, 4);
        put_hdr(sdt, "RSDT", 44);
    }
    uint8_t *r = acpi;
    memcpy(r, "RSD PTR ", 8);
    uint64_t s = (uintptr_t)sdt;
    uint32_t s32 = (uint32_t)s, len = 36;
    r[15] = xsdt ? 2 : 0;
    memcpy(r + 16, &s32, 4);
    memcpy(r + 20, &len, 4);
    memcpy(r + 24, &s, 8);
    checksum(r, 20, 8);
    checksum(r, 36, 32);
    return (uintptr_t)r;
}

static void test_mcfg(void **state)
{
    (void)state;
    struct pci_mcfg m;
    assert_false(pci_mcfg_from_acpi(0, &m));
    assert_true(pci_mcfg_from_acpi(build_acpi(true, true, 0), &m));
    assert_int_equal(m.n, 1);
    assert_int_equal(m.e[0].base, 0xb0000000);
    assert_int_equal(m.e[0].end_bus, 0xff);
    assert_int_equal(pci_ecam_addr(&m.e[0], 0, 2, 0), 0xb0010000);
    assert_int_equal(pci_ecam_addr(&m.e[0], 1, 0, 1), 0xb0101000);
    assert_int_equal(pci_mcfg_addr(&m, 1, 0, 1), 0xb0101000);
    assert_false(pci_mcfg_from_acpi(build_acpi(true, false, 0), &m)); /* no MCFG */
    /* a segment-1 entry is kept, but segment 0's addresses are not in it */
    assert_true(pci_mcfg_from_acpi(build_acpi(true, true, 1), &m));
    assert_int_equal(m.e[0].segment, 1);
    assert_int_equal(pci_mcfg_addr(&m, 0, 2, 0), 0);
    /* 32-bit machines: the RSDT must only be used when (x86: tables are < 4 GiB) */
    if ((uintptr_t)acpi < 0x100000000ull) {
        assert_true(pci_mcfg_from_acpi(build_acpi(false, true, 0), &m));
        assert_int_equal(m.e[0].base, 0xb0000000);
    }
    /* a corrupted table checksum is refused */
    uint64_t r = build_acpi(true, true, 0);
    acpi[512 + 20] ^= 1;
    assert_false(pci_mcfg_from_acpi(r, &m));
}

/* BARs that decode like hardware: the low bits below the size read as 0. */
static uint64_t sizes[FB][32][8][6];

static void f_write_sized(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
    f_write(ctx, bus, dev, fn, off, v);
    if (bus >= FB || off < 0x10 || off >= 0x28)
        return;
    unsigned i = (off - 0x10u) / 4;
    uint32_t *c = space[bus][dev][fn];
    if (!sizes[bus][dev][fn][i] && !(i > 0 && (c[4 + i - 1] & 7) == 4)) {
        c[4 + i] = 0; /* not implemented: hardwired to zero */
        return;
    }
    if (sizes[bus][dev][fn][i]) {
        uint64_t mask = ~(sizes[bus][dev][fn][i] - 1);
        uint32_t type = c[4 + i] & ((c[4 + i] & 1) ? 3u : 0xfu);
        if (i > 0 && sizes[bus][dev][fn][i - 1] == 0 && (c[4 + i - 1] & 6) == 4)
            return; /* high half handled below */
        c[4 + i] = ((uint32_t)mask & v & ((c[4 + i] & 1) ? ~3u : ~0xfu)) | type;
        if ((c[4 + i] & 7) == 4) /* 64-bit: the high half keeps the upper mask */
            c[4 + i + 1] = (uint32_t)(mask >> 32) & c[4 + i + 1];
    }
}

static void test_size_bars(void **state)
{
    (void)state;
    static const struct pci_cfg_ops sized = {f_read, f_write_sized, NULL};
    memset(sizes, 0, sizeof(sizes));
    sizes[0][2][0][0] = 128 << 10;  /* e1000 BAR0: 128 KiB of registers */
    sizes[0][2][0][1] = 64;         /* BAR1: 64 I/O ports */
    space[0][2][0][1] = 0x00000007; /* command: I/O, memory, master on */
    struct pci_dev d = {.bus = 0, .dev = 2, .fn = 0};
    pci_read_bars(&sized, &d);
    pci_size_bars(&sized, &d);
    assert_int_equal(d.bar_size[0], 128 << 10);
    assert_int_equal(d.bar_size[1], 64);
    assert_int_equal(d.bar_size[2], 0); /* unused BAR */
    /* the BARs and the command register are given back */
    assert_int_equal(space[0][2][0][4], 0xfebc0000);
    assert_int_equal(space[0][2][0][5], 0x0000c001);
    assert_int_equal(space[0][2][0][1], 0x00000007);

    /* a 64-bit BAR: one size for the pair, the high half restored too */
    sizes[2][5][0][0] = 16 << 10;
    struct pci_dev q = {.bus = 2, .dev = 5, .fn = 0};
    pci_read_bars(&sized, &q);
    assert_int_equal(q.bar[0], 0x10000000cull & ~0xfull);
    pci_size_bars(&sized, &q);
    assert_int_equal(q.bar_size[0], 16 << 10);
    assert_int_equal(q.bar_size[1], 0);
    assert_int_equal(space[2][5][0][4], 0x0000000c);
    assert_int_equal(space[2][5][0][5], 0x00000001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_size_bars, setup),
        cmocka_unit_test_setup(test_scan_finds_every_function, setup),
        cmocka_unit_test_setup(test_select, setup),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_mcfg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
