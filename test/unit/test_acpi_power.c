/* Unit tests of core/acpi_power.c: the FADT and \_Sx parse, and which port
 * writes are sleep, power-off or reset requests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "acpi_power.h"

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A FADT like acpitab.efi's (PIIX4 at 0xb000) or, with x = 1, with GAS
 * fields and a reset register at 0xcf9 (value 6). */
static size_t fadt(uint8_t *f, int x)
{
    memset(f, 0, 276);
    memcpy(f, "FACP", 4);
    put32(f + 56, 0xb000); /* PM1a_EVT_BLK */
    put32(f + 64, 0xb004); /* PM1a_CNT_BLK */
    put32(f + 112, 0);     /* flags */
    if (!x)
        return 132;
    put32(f + 112, 1u << 10); /* RESET_REG_SUP */
    f[116] = 1;               /* RESET_REG: system I/O */
    put32(f + 120, 0xcf9);
    f[128] = 6;
    f[172] = 1; /* X_PM1a_CNT_BLK: system I/O at 0x604 (wins over the legacy field) */
    put32(f + 176, 0x604);
    f[184] = 1; /* X_PM1b_CNT_BLK at 0x608 */
    put32(f + 188, 0x608);
    return 276;
}

/* Name(_S3_, Package(4){0x05, 0x05, 0, 0}), Name(\_S5_, Package(2){Zero, One}) */
static const uint8_t dsdt[] = {'D',  'S',  'D',  'T',  0,    0,    0,    0,    0,    0,
                               0,    0,    0x08, '_',  'S',  '3',  '_',  0x12, 0x08, 0x04,
                               0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00, 0x08, '\\', '_',  'S',
                               '5',  '_',  0x12, 0x04, 0x02, 0x00, 0x01};

static void test_parse(void **state)
{
    (void)state;
    uint8_t f[276];
    struct acpi_power p;
    assert_null(acpi_power_parse(f, fadt(f, 0), dsdt, sizeof(dsdt), &p));
    assert_int_equal(p.pm1a_cnt, 0xb004);
    assert_int_equal(p.pm1a_evt, 0xb000);
    assert_int_equal(p.pm1b_cnt, 0);
    assert_int_equal(p.reset_port, 0);
    assert_int_equal(p.sx_valid, (1 << 3) | (1 << 5));
    assert_int_equal(p.slp_typa[3], 5);
    assert_int_equal(p.slp_typa[5], 0);
    assert_int_equal(p.slp_typb[5], 1);
    assert_null(acpi_power_parse(f, fadt(f, 1), NULL, 0, &p));
    assert_int_equal(p.pm1a_cnt, 0x604);
    assert_int_equal(p.pm1b_cnt, 0x608);
    assert_int_equal(p.reset_port, 0xcf9);
    assert_int_equal(p.reset_value, 6);
    assert_int_equal(p.sx_valid, 0);
    assert_non_null(acpi_power_parse(f, 100, NULL, 0, &p)); /* too short */
}

/* A FACS with the OS's vectors (ACPI 6.5 Table 5.14). */
static void facs(uint8_t *f, uint32_t vector, uint64_t x, uint32_t ospm)
{
    memset(f, 0, 64);
    memcpy(f, "FACS", 4);
    put32(f + 4, 64);
    put32(f + 12, vector);
    put32(f + 24, (uint32_t)x);
    put32(f + 28, (uint32_t)(x >> 32));
    put32(f + 36, ospm);
}

static void test_facs(void **state)
{
    (void)state;
    uint8_t f[276], s[64];
    struct acpi_power p;
    /* FIRMWARE_CTRL, and X_FIRMWARE_CTRL winning over it. */
    fadt(f, 1);
    put32(f + 36, 0x7fe0000);
    assert_null(acpi_power_parse(f, 276, NULL, 0, &p));
    assert_int_equal(p.facs, 0x7fe0000);
    put32(f + 132, 0x7fd0040);
    assert_null(acpi_power_parse(f, 276, NULL, 0, &p));
    assert_int_equal(p.facs, 0x7fd0040);

    struct acpi_wake w;
    facs(s, 0x9a123, 0, 0); /* Linux: real mode, CS:IP = 0x9a12:0x3 */
    assert_null(acpi_facs_wake(s, 64, &w));
    assert_int_equal(w.mode, WAKE_REAL);
    assert_int_equal(w.cs, 0x9a12);
    assert_int_equal(w.rip, 3);
    facs(s, 0x9a000, 0x100000, 0); /* X_ wins: flat 32-bit */
    assert_null(acpi_facs_wake(s, 64, &w));
    assert_int_equal(w.mode, WAKE_PROT32);
    assert_int_equal(w.rip, 0x100000);
    /* Refused: a 64-bit wake, X_ above 4 GiB, no vector, a vector above 1 MiB, no
     * signature, too short. */
    facs(s, 0, 0x100000, 1);
    assert_non_null(acpi_facs_wake(s, 64, &w));
    facs(s, 0, 0x100000000ull, 0);
    assert_non_null(acpi_facs_wake(s, 64, &w));
    facs(s, 0, 0, 0);
    assert_non_null(acpi_facs_wake(s, 64, &w));
    facs(s, 0x100000, 0, 0);
    assert_non_null(acpi_facs_wake(s, 64, &w));
    facs(s, 0x9a000, 0, 0);
    s[0] = 'X';
    assert_non_null(acpi_facs_wake(s, 64, &w));
    facs(s, 0x9a000, 0, 0);
    assert_non_null(acpi_facs_wake(s, 63, &w));
    assert_non_null(acpi_facs_wake(NULL, 64, &w));
}

static void test_truncated_dsdt_is_ignored(void **state)
{
    (void)state;
    uint8_t f[276];
    struct acpi_power p;
    for (size_t n = 0; n < sizeof(dsdt); n++) {
        assert_null(acpi_power_parse(f, fadt(f, 0), dsdt, n, &p));
        if (n < sizeof(dsdt) - 1)
            assert_int_equal(p.sx_valid & (1 << 5), 0); /* \_S5 needs its two elements */
    }
}

static void test_classify(void **state)
{
    (void)state;
    uint8_t f[276];
    struct acpi_power p;
    assert_null(acpi_power_parse(f, fadt(f, 0), dsdt, sizeof(dsdt), &p));
    /* PM1a_CNT: SLP_TYP in bits 12:10, SLP_EN bit 13, by word or by its high byte. */
    assert_int_equal(power_classify(&p, 0xb004, 2, (0u << 10) | (1u << 13), 0), POWER_OFF_S5);
    assert_int_equal(power_classify(&p, 0xb005, 1, ((0u << 10) | (1u << 13)) >> 8, 0),
                     POWER_OFF_S5);
    assert_int_equal(power_classify(&p, 0xb004, 4, (5u << 10) | (1u << 13), 0), POWER_SLEEP_S3);
    assert_int_equal(power_classify(&p, 0xb003, 4, ((5u << 10) | (1u << 13)) << 8, 0),
                     POWER_SLEEP_S3); /* unaligned: the bytes it covers count */
    assert_int_equal(power_classify(&p, 0xb004, 2, (7u << 10) | (1u << 13), 0), POWER_SLEEP_OTHER);
    assert_int_equal(power_classify(&p, 0xb004, 2, 5u << 10, 0), POWER_NONE); /* no SLP_EN */
    assert_int_equal(power_classify(&p, 0xb004, 1, 0xff, 0), POWER_NONE);     /* low byte */
    /* Legacy resets. */
    assert_int_equal(power_classify(&p, 0xcf9, 1, 0x06, 0), POWER_RESET);
    assert_int_equal(power_classify(&p, 0xcf9, 1, 0x02, 0), POWER_NONE);
    assert_int_equal(power_classify(&p, 0xcf8, 4, 0x80000000u, 0), POWER_NONE);
    assert_int_equal(power_classify(&p, 0xcf8, 4, 0x80000400u, 0), POWER_NONE); /* CONFIG_ADDRESS */
    assert_int_equal(power_classify(&p, 0xcf8, 4, 0x80000600u, 0), POWER_NONE); /* dev 0 fn 6 */
    /* Wider writes that carry a reset port's byte are that byte's write. */
    assert_int_equal(power_classify(&p, 0xcf8, 2, 0x0600, 0), POWER_RESET);
    assert_int_equal(power_classify(&p, 0x91, 2, 0x0300, 0x02), POWER_RESET);
    assert_int_equal(power_classify(&p, 0x63, 2, 0xfe00, 0), POWER_RESET);
    /* With 0xCF9 as the FADT reset register (what acpitab.efi declares), a
     * CONFIG_ADDRESS of function 6 carries the reset value in its byte 1. */
    struct acpi_power q = p;
    q.reset_port = 0xcf9;
    q.reset_value = 6;
    assert_int_equal(power_classify(&q, 0xcf8, 4, 0x80000600u, 0), POWER_NONE);
    assert_int_equal(power_classify(&q, 0xcf9, 1, 0x06, 0), POWER_RESET);
    assert_int_equal(power_classify(&q, 0xcf8, 2, 0x0600, 0), POWER_RESET);
    assert_int_equal(power_classify(&p, 0x64, 2, 0x00fe, 0), POWER_RESET);
    assert_int_equal(power_classify(&p, 0x92, 1, 0x03, 0x02), POWER_RESET);
    assert_int_equal(power_classify(&p, 0x92, 1, 0x03, 0x03), POWER_NONE); /* no edge */
    assert_int_equal(power_classify(&p, 0x64, 1, 0xfe, 0), POWER_RESET);
    assert_int_equal(power_classify(&p, 0x64, 1, 0xd1, 0), POWER_NONE);
    assert_int_equal(power_classify(&p, 0x60, 1, 0xfe, 0), POWER_NONE);
    /* The FADT's reset register and PM1b. */
    assert_null(acpi_power_parse(f, fadt(f, 1), dsdt, sizeof(dsdt), &p));
    assert_int_equal(power_classify(&p, 0x608, 2, (1u << 10) | (1u << 13), 0), POWER_OFF_S5);
    assert_int_equal(power_classify(&p, 0x604, 2, (0u << 10) | (1u << 13), 0), POWER_OFF_S5);
    assert_int_equal(power_classify(&p, 0xb004, 2, 1u << 13, 0), POWER_NONE); /* not PM1 now */
}

/* A reset through a port is carried out by root mode itself (vmx/power.c):
 * it writes the byte that asks for the reset, then makes sure the platform
 * resets, since 0x92's fast reset, 0xCF9 with RST_CPU alone and the keyboard
 * controller's pulse may only INIT the CPUs.  The byte and port it writes are
 * the ones that made the write a reset, whatever the access's width. */
static void test_reset_byte(void **state)
{
    (void)state;
    uint8_t f[276];
    struct acpi_power p;
    assert_null(acpi_power_parse(f, fadt(f, 0), dsdt, sizeof(dsdt), &p));
    static const struct {
        uint16_t port;
        unsigned size;
        uint32_t val;
        uint8_t prev92;
        uint16_t rport;
        uint8_t rval;
    } cases[] = {
        {0x92, 1, 0x01, 0x00, 0x92, 0x01},   /* fast reset alone: an INIT on many chipsets */
        {0x92, 1, 0x03, 0x02, 0x92, 0x03},   /* with A20 kept */
        {0x91, 2, 0x0300, 0x02, 0x92, 0x03}, /* the same byte inside a word */
        {0xcf9, 1, 0x04, 0, 0xcf9, 0x04},    /* RST_CPU without SYS_RST: a soft reset */
        {0xcf9, 1, 0x06, 0, 0xcf9, 0x06},    {0xcf8, 2, 0x0400, 0, 0xcf9, 0x04},
        {0x64, 1, 0xfe, 0, 0x64, 0xfe},      {0x63, 2, 0xfe00, 0, 0x64, 0xfe},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint16_t rport = 0;
        uint8_t rval = 0;
        assert_true(power_reset_byte(&p, cases[i].port, cases[i].size, cases[i].val,
                                     cases[i].prev92, &rport, &rval));
        assert_int_equal(rport, cases[i].rport);
        assert_int_equal(rval, cases[i].rval);
    }
    /* The FADT's reset register first (acpitab.efi declares 0xCF9 <- 6). */
    struct acpi_power q = p;
    q.reset_port = 0xcf9;
    q.reset_value = 6;
    uint16_t rport;
    uint8_t rval;
    assert_true(power_reset_byte(&q, 0xcf9, 1, 0x06, 0, &rport, &rval));
    assert_true(rport == 0xcf9 && rval == 0x06);
    /* It agrees with power_classify() on every write near the reset ports. */
    static const uint32_t vals[] = {0,      1,           2,           3,           4,
                                    6,      0xfe,        0x0400,      0x0600,      0xfe00,
                                    0x0300, 0x80000400u, 0x00fe0000u, 0xfe000000u, 0x06060606u};
    for (uint16_t port = 0x5c; port < 0xd00; port++) {
        if (port == 0x100)
            port = 0xcf0;
        for (unsigned size = 1; size <= 4; size *= 2)
            for (unsigned k = 0; k < sizeof(vals) / sizeof(vals[0]); k++)
                for (uint8_t prev92 = 0; prev92 < 2; prev92++) {
                    bool reset = power_classify(&p, port, size, vals[k], prev92) == POWER_RESET;
                    assert_int_equal(
                        power_reset_byte(&p, port, size, vals[k], prev92, &rport, &rval), reset);
                }
    }
}

/* RESET_REG in system memory (space 0): the address and value are parsed, the
 * I/O port is not, and a store classifies as a reset exactly when the byte it
 * puts at that address is the reset value, whatever the store's width or
 * alignment around it. */
static void test_reset_in_memory(void **state)
{
    (void)state;
    uint8_t f[276];
    struct acpi_power p;
    fadt(f, 1);
    f[116] = 0; /* RESET_REG: system memory at 0xfed00040, value 0x0e */
    put32(f + 120, 0xfed00040u);
    put32(f + 124, 0);
    f[128] = 0x0e;
    assert_null(acpi_power_parse(f, 276, NULL, 0, &p));
    assert_int_equal(p.reset_port, 0);
    assert_int_equal(p.reset_mem, 0xfed00040u);
    assert_int_equal(p.reset_value, 0x0e);
    assert_int_equal(power_classify_mem(&p, 0xfed00040u, 1, 0x0e), POWER_RESET);
    assert_int_equal(power_classify_mem(&p, 0xfed00040u, 1, 0x06), POWER_NONE);
    assert_int_equal(power_classify_mem(&p, 0xfed00040u, 4, 0xaabbcc0eu), POWER_RESET);
    assert_int_equal(power_classify_mem(&p, 0xfed0003fu, 2, 0x0e00), POWER_RESET);
    assert_int_equal(power_classify_mem(&p, 0xfed0003cu, 8, 0x0e00000000ull), POWER_RESET);
    assert_int_equal(power_classify_mem(&p, 0xfed0003cu, 4, 0x0e0e0e0eu),
                     POWER_NONE); /* ends before */
    assert_int_equal(power_classify_mem(&p, 0xfed00041u, 1, 0x0e), POWER_NONE);
    assert_int_equal(power_classify_mem(&p, 0xfed00040u, 0, 0x0e), POWER_NONE);
    assert_int_equal(power_classify_mem(&p, 0xfed00040u, 9, 0x0e), POWER_NONE);
    /* No overflow at the top of the address space. */
    assert_int_equal(power_classify_mem(&p, ~0ull - 3, 8, ~0ull), POWER_NONE);
    /* Reset not supported (flag clear): nothing is parsed. */
    put32(f + 112, 0);
    assert_null(acpi_power_parse(f, 276, NULL, 0, &p));
    assert_int_equal(p.reset_mem, 0);
    assert_int_equal(power_classify_mem(&p, 0xfed00040u, 1, 0x0e), POWER_NONE);
    /* Page 0 and addresses past the 48-bit walk are refused. */
    put32(f + 112, 1u << 10);
    put32(f + 120, 0x40);
    assert_null(acpi_power_parse(f, 276, NULL, 0, &p));
    assert_int_equal(p.reset_mem, 0);
    put32(f + 120, 0);
    put32(f + 124, 0x10000);
    assert_null(acpi_power_parse(f, 276, NULL, 0, &p));
    assert_int_equal(p.reset_mem, 0);
    /* An I/O reset register leaves reset_mem 0. */
    assert_null(acpi_power_parse(f, fadt(f, 1), NULL, 0, &p));
    assert_int_equal(p.reset_mem, 0);
    assert_int_equal(power_classify_mem(&p, 0xcf9, 1, 6), POWER_NONE);
}

/* Where a refused sleep's WAK_STS (PM1a status bit 15) shows in an IN of
 * the status block: the high byte's place in every width and alignment. */
static void test_wak_shift(void **state)
{
    (void)state;
    uint8_t f[276];
    struct acpi_power p;
    unsigned shift = 99;
    assert_null(acpi_power_parse(f, fadt(f, 0), dsdt, sizeof(dsdt), &p));
    assert_true(power_wak_shift(&p, 0xb000, 2, &shift)); /* inw: bits 15:8 */
    assert_int_equal(shift, 8);
    assert_true(power_wak_shift(&p, 0xb001, 1, &shift)); /* inb of the high byte */
    assert_int_equal(shift, 0);
    assert_true(power_wak_shift(&p, 0xb000, 4, &shift)); /* inl with PM1 enable above */
    assert_int_equal(shift, 8);
    assert_true(power_wak_shift(&p, 0xaffe, 4, &shift));
    assert_int_equal(shift, 24);
    assert_false(power_wak_shift(&p, 0xb000, 1, &shift)); /* the low byte only */
    assert_false(power_wak_shift(&p, 0xb002, 2, &shift)); /* PM1 enable */
    assert_false(power_wak_shift(&p, 0xaffd, 4, &shift)); /* ends below the high byte */
    assert_false(power_wak_shift(&p, 0xb000, 0, &shift));
    struct acpi_power none = {0};
    assert_false(power_wak_shift(&none, 0x0, 2, &shift)); /* no status block: never */
    assert_false(power_wak_shift(&none, 0x1, 1, &shift));
}

static void test_ports(void **state)
{
    (void)state;
    uint8_t f[276];
    struct acpi_power p;
    uint16_t ports[12];
    unsigned n;
    assert_null(acpi_power_parse(f, fadt(f, 0), dsdt, sizeof(dsdt), &p));
    power_ports(&p, ports, &n);
    assert_int_equal(n, 7); /* PM1a status (2), PM1a control (2), 0xcf9, 0x92, 0x64 */
    struct acpi_power none = {0};
    power_ports(&none, ports, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ports[0], 0xcf9);
    assert_string_equal(power_action_name(POWER_OFF_S5), "S5 power-off");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),           cmocka_unit_test(test_truncated_dsdt_is_ignored),
        cmocka_unit_test(test_classify),        cmocka_unit_test(test_reset_byte),
        cmocka_unit_test(test_reset_in_memory), cmocka_unit_test(test_wak_shift),
        cmocka_unit_test(test_ports),           cmocka_unit_test(test_facs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
