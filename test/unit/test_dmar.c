/* Unit tests of vtd/dmar.c and vtd/acpi_find.c: good tables parse to the
 * right fields; every kind of bad length or checksum is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vtd/acpi_find.h"
#include "vtd/dmar.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static void fix_sum(uint8_t *t, uint32_t len, unsigned at)
{
    t[at] = 0;
    t[at] = (uint8_t)(0x100 - acpi_sum(t, len));
}

/* A DMAR: one INCLUDE_PCI_ALL unit with an IOAPIC scope, one unit for
 * endpoint 00:02.0, one RMRR for 00:14.0.  Returns its length. */
static uint32_t build_dmar(uint8_t *t)
{
    memset(t, 0, 256);
    memcpy(t, "DMAR", 4);
    t[8] = 1;
    t[36] = 38; /* HAW - 1 */
    t[37] = 1;
    uint32_t o = 48;
    /* DRHD 1: graphics endpoint 00:02.0 */
    put16(t + o, 0);
    put16(t + o + 2, 16 + 8);
    t[o + 4] = 0;
    put64(t + o + 8, 0xfed90000);
    t[o + 16] = 1; /* endpoint */
    t[o + 17] = 8;
    t[o + 21] = 0; /* bus 0 */
    t[o + 22] = 2; /* dev 2 fn 0 */
    o += 24;
    /* DRHD 2: everything else, IOAPIC 8 behind 00:1f.0 */
    put16(t + o, 0);
    put16(t + o + 2, 16 + 8);
    t[o + 4] = DMAR_INCLUDE_PCI_ALL;
    put64(t + o + 8, 0xfed91000);
    t[o + 16] = 3;
    t[o + 17] = 8;
    t[o + 20] = 8;    /* enumeration id */
    t[o + 21] = 0xf0; /* bus */
    t[o + 22] = 0x1f;
    o += 24;
    /* RMRR for 00:14.0 */
    put16(t + o, 1);
    put16(t + o + 2, 24 + 8);
    put64(t + o + 8, 0x7b800000);
    put64(t + o + 16, 0x7fffffff);
    t[o + 24] = 1;
    t[o + 25] = 8;
    t[o + 30] = 0x14;
    o += 32;
    /* an ATSR, skipped */
    put16(t + o, 2);
    put16(t + o + 2, 8);
    o += 8;
    put32(t + 4, o);
    fix_sum(t, o, 9);
    return o;
}

static void test_dmar_good(void **state)
{
    (void)state;
    uint8_t t[256];
    static struct dmar_info d;
    uint32_t len = build_dmar(t);
    assert_null(dmar_parse(t, len, &d));
    assert_int_equal(d.haw, 38);
    assert_int_equal(d.ndrhd, 2);
    assert_int_equal(d.nrmrr, 1);
    assert_int_equal(d.other, 1);
    assert_int_equal(d.drhd[0].reg_base, 0xfed90000);
    assert_int_equal(d.drhd[0].flags, 0);
    assert_int_equal(d.drhd[0].nscope, 1);
    assert_int_equal(d.drhd[0].scope[0].type, DMAR_SCOPE_ENDPOINT);
    assert_int_equal(d.drhd[0].scope[0].npath, 1);
    assert_int_equal(d.drhd[0].scope[0].path[0][0], 2);
    assert_int_equal(d.drhd[1].flags, DMAR_INCLUDE_PCI_ALL);
    assert_int_equal(d.drhd[1].reg_base, 0xfed91000);
    assert_int_equal(d.drhd[1].scope[0].type, DMAR_SCOPE_IOAPIC);
    assert_int_equal(d.drhd[1].scope[0].enum_id, 8);
    assert_int_equal(d.drhd[1].scope[0].bus, 0xf0);
    assert_int_equal(d.rmrr[0].base, 0x7b800000);
    assert_int_equal(d.rmrr[0].limit, 0x7fffffff);
    assert_int_equal(d.rmrr[0].scope[0].path[0][0], 0x14);
}

static void test_dmar_bad(void **state)
{
    (void)state;
    uint8_t t[256];
    static struct dmar_info d;
    uint32_t len = build_dmar(t);
    assert_non_null(dmar_parse(t, 47, &d));      /* shorter than the header */
    assert_non_null(dmar_parse(t, len - 1, &d)); /* header length differs */
    put16(t + 48 + 2, 0);                        /* zero-length structure */
    assert_non_null(dmar_parse(t, len, &d));
    len = build_dmar(t);
    put16(t + 48 + 2, 0xffff); /* structure beyond the table */
    assert_non_null(dmar_parse(t, len, &d));
    len = build_dmar(t);
    t[48 + 17] = 7; /* odd scope length */
    assert_non_null(dmar_parse(t, len, &d));
    len = build_dmar(t);
    t[48 + 17] = 40; /* scope beyond its unit */
    assert_non_null(dmar_parse(t, len, &d));
    len = build_dmar(t);
    put64(t + 48 + 8, 0xfed90800); /* register page not aligned */
    assert_non_null(dmar_parse(t, len, &d));
    len = build_dmar(t);
    put64(t + 72 + 24 + 16, 0x1000); /* RMRR limit below base */
    assert_non_null(dmar_parse(t, len, &d));
    /* no unit at all */
    len = build_dmar(t);
    put32(t + 4, 48);
    assert_string_equal(dmar_parse(t, 48, &d), "DMAR lists no remapping unit");
}

/* Fake physical memory: phys is an offset into mem. */
static uint8_t mem[8192];
static const uint8_t *map(void *ctx, uint64_t phys, uint64_t len)
{
    (void)ctx;
    if (phys > sizeof(mem) || len > sizeof(mem) - phys)
        return NULL;
    return mem + phys;
}

#define RSDP 0x40
#define XSDT 0x100
#define RSDT 0x200
#define FACP 0x400
#define DMAR 0x800

static void build_acpi(int revision)
{
    memset(mem, 0, sizeof(mem));
    uint8_t *r = mem + RSDP;
    memcpy(r, "RSD PTR ", 8);
    r[15] = (uint8_t)revision;
    put32(r + 16, RSDT);
    put32(r + 20, 36);
    put64(r + 24, revision >= 2 ? XSDT : 0);
    fix_sum(r, 20, 8);
    fix_sum(r, 36, 32);
    uint8_t *f = mem + FACP;
    memcpy(f, "FACP", 4);
    put32(f + 4, 36);
    fix_sum(f, 36, 9);
    build_dmar(mem + DMAR);
    uint8_t *x = mem + XSDT;
    memcpy(x, "XSDT", 4);
    put32(x + 4, 36 + 3 * 8);
    put64(x + 36, FACP);
    put64(x + 44, 0x7000); /* nothing there: zeroes, skipped */
    put64(x + 52, DMAR);
    fix_sum(x, 36 + 24, 9);
    uint8_t *t = mem + RSDT;
    memcpy(t, "RSDT", 4);
    put32(t + 4, 36 + 2 * 4);
    put32(t + 36, FACP);
    put32(t + 40, DMAR);
    fix_sum(t, 36 + 8, 9);
}

static void test_acpi_find_xsdt_and_rsdt(void **state)
{
    (void)state;
    struct acpi_found f;
    build_acpi(2);
    assert_null(acpi_find(map, NULL, RSDP, "DMAR", &f));
    assert_int_equal(f.phys, DMAR);
    assert_true(f.xsdt);
    assert_int_equal(f.root, XSDT);
    assert_int_equal(f.index, 2);
    assert_ptr_equal(f.data, mem + DMAR);
    assert_null(acpi_find(map, NULL, RSDP, "FACP", &f));
    assert_string_equal(acpi_find(map, NULL, RSDP, "APIC", &f), "not found");
    build_acpi(0);
    assert_null(acpi_find(map, NULL, RSDP, "DMAR", &f));
    assert_false(f.xsdt);
    assert_int_equal(f.root, RSDT);
    assert_int_equal(f.index, 1);
}

static void test_acpi_find_refuses_bad_sums_and_lengths(void **state)
{
    (void)state;
    struct acpi_found f;
    assert_non_null(acpi_find(map, NULL, 0, "DMAR", &f));
    build_acpi(2);
    mem[RSDP + 8]++;
    assert_string_equal(acpi_find(map, NULL, RSDP, "DMAR", &f), "RSDP checksum");
    build_acpi(2);
    mem[RSDP + 32]++;
    assert_string_equal(acpi_find(map, NULL, RSDP, "DMAR", &f), "RSDP extended checksum");
    build_acpi(2);
    mem[XSDT + 40]++;
    assert_string_equal(acpi_find(map, NULL, RSDP, "DMAR", &f), "XSDT invalid");
    build_acpi(2);
    mem[DMAR + 60]++;
    assert_string_equal(acpi_find(map, NULL, RSDP, "DMAR", &f), "table length or checksum invalid");
    build_acpi(2);
    put32(mem + DMAR + 4, 0x100000); /* longer than the memory */
    assert_string_equal(acpi_find(map, NULL, RSDP, "DMAR", &f), "table length or checksum invalid");
    build_acpi(2);
    put32(mem + XSDT + 4, 20); /* shorter than a header */
    assert_string_equal(acpi_find(map, NULL, RSDP, "DMAR", &f), "XSDT invalid");
    build_acpi(2);
    put64(mem + XSDT + 52, 0xfffffffffffffff0ull); /* entry pointing nowhere */
    fix_sum(mem + XSDT, 60, 9);
    assert_string_equal(acpi_find(map, NULL, RSDP, "DMAR", &f), "not found");
}

static void test_acpi_hide(void **state)
{
    (void)state;
    struct acpi_found f;
    build_acpi(2);
    assert_int_equal(acpi_hide(map, NULL, RSDP, "DMAR", "HVDM"), 2); /* XSDT and RSDT */
    assert_string_equal(acpi_find(map, NULL, RSDP, "DMAR", &f), "not found");
    assert_string_equal(acpi_find(map, NULL, RSDP, "HVDM", &f), "not found");
    assert_null(acpi_find(map, NULL, RSDP, "FACP", &f)); /* the rest intact, sums valid */
    assert_int_equal(mem[XSDT + 4], 36 + 2 * 8);
    assert_int_equal(mem[RSDT + 4], 36 + 4);
    assert_memory_equal(mem + DMAR, "HVDM", 4);
    assert_int_equal(acpi_sum(mem + DMAR, mem[DMAR + 4] | mem[DMAR + 5] << 8), 0);
    /* twice is harmless */
    assert_int_equal(acpi_hide(map, NULL, RSDP, "DMAR", "HVDM"), 0);
    assert_null(acpi_find(map, NULL, RSDP, "FACP", &f));
    /* ACPI 1.0: the RSDT alone */
    build_acpi(0);
    assert_int_equal(acpi_hide(map, NULL, RSDP, "DMAR", "HVDM"), 1);
    assert_string_equal(acpi_find(map, NULL, RSDP, "DMAR", &f), "not found");
    assert_null(acpi_find(map, NULL, RSDP, "FACP", &f));
    /* broken roots are left alone */
    build_acpi(2);
    mem[XSDT + 40]++;
    assert_int_equal(acpi_hide(map, NULL, RSDP, "DMAR", "HVDM"), -1);
    assert_int_equal(acpi_hide(map, NULL, 0, "DMAR", "HVDM"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dmar_good),
        cmocka_unit_test(test_dmar_bad),
        cmocka_unit_test(test_acpi_find_xsdt_and_rsdt),
        cmocka_unit_test(test_acpi_find_refuses_bad_sums_and_lengths),
        cmocka_unit_test(test_acpi_hide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
