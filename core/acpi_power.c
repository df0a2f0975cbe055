/*
 * acpi_power.c - the ACPI power interface and the classification of port writes
 * (see acpi_power.h).  Every offset into a table is checked against its length:
 * the tables come from firmware the guest may have rewritten before us.
 */
#include "acpi_power.h"

/* FADT fields (ACPI 6.5 Table 5.9). */
#define FADT_FIRMWARE_CTRL 36
#define FADT_X_FIRMWARE    132
#define FADT_DSDT          40
#define FADT_PM1A_EVT      56
#define FADT_X_PM1A_EVT    148
#define FADT_PM1A_CNT      64
#define FADT_PM1B_CNT      68
#define FADT_FLAGS         112
#define FADT_RESET_REG     116
#define FADT_RESET_VALUE   128
#define FADT_X_DSDT        140
#define FADT_X_PM1A_CNT    172
#define FADT_X_PM1B_CNT    184
#define FADT_SLEEP_CONTROL 244
#define FLAG_RESET_REG_SUP (1u << 10)
#define FLAG_HW_REDUCED    (1u << 20)
#define GAS_SYSTEM_MEMORY  0
#define GAS_SYSTEM_IO      1

#define SLP_EN_PM1  (1u << 13)
#define SLP_EN_HWR  (1u << 5)
#define AML_NAME_OP 0x08
#define AML_PKG_OP  0x12

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* An I/O port from a Generic Address Structure at off, 0 when absent or not I/O. */
static uint16_t gas_port(const uint8_t *t, size_t len, size_t off)
{
    if (off + 12 > len || t[off] != GAS_SYSTEM_IO)
        return 0;
    uint64_t a = le(t + off + 4, 8);
    return a && a <= 0xffff ? (uint16_t)a : 0;
}

/* A memory address from a Generic Address Structure at off, 0 when absent or not memory.
 * Only below the 48-bit guest-physical limit the EPT walks (and never page 0). */
static uint64_t gas_mem(const uint8_t *t, size_t len, size_t off)
{
    if (off + 12 > len || t[off] != GAS_SYSTEM_MEMORY)
        return 0;
    uint64_t a = le(t + off + 4, 8);
    return a >= 0x1000 && a < (1ull << 48) ? a : 0;
}

static uint16_t legacy_port(const uint8_t *t, size_t len, size_t off)
{
    if (off + 4 > len)
        return 0;
    uint64_t a = le(t + off, 4);
    return a <= 0xffff ? (uint16_t)a : 0;
}

uint64_t acpi_fadt_dsdt(const uint8_t *fadt, size_t len)
{
    if (len >= FADT_X_DSDT + 8 && le(fadt + FADT_X_DSDT, 8))
        return le(fadt + FADT_X_DSDT, 8);
    return len >= FADT_DSDT + 4 ? le(fadt + FADT_DSDT, 4) : 0;
}

/* One package element as a byte: Zero, One, Ones, BytePrefix, WordPrefix, DWordPrefix. */
static int aml_int(const uint8_t *d, size_t len, size_t *pos, uint8_t *out)
{
    if (*pos >= len)
        return -1;
    uint8_t op = d[(*pos)++];
    unsigned n = op == 0x0a ? 1 : op == 0x0b ? 2 : op == 0x0c ? 4 : 0;
    if (op == 0x00 || op == 0x01 || op == 0xff) {
        *out = op == 0xff ? 0xff : op;
        return 0;
    }
    if (!n || *pos + n > len)
        return -1;
    *out = d[*pos];
    *pos += n;
    return 0;
}

/* Name(\_Sn_, Package() {SLP_TYPa, SLP_TYPb, ...}) anywhere in the DSDT. */
static void find_sx(const uint8_t *d, size_t len, unsigned n, struct acpi_power *p)
{
    for (size_t i = 0; i + 4 < len; i++) {
        if (d[i] != '_' || d[i + 1] != 'S' || d[i + 2] != (uint8_t)('0' + n) || d[i + 3] != '_')
            continue;
        if (!(i >= 1 && d[i - 1] == AML_NAME_OP) &&
            !(i >= 2 && d[i - 1] == '\\' && d[i - 2] == AML_NAME_OP))
            continue;
        size_t pos = i + 4;
        if (pos >= len || d[pos++] != AML_PKG_OP || pos >= len)
            continue;
        pos += 1 + (d[pos] >> 6); /* PkgLength: its lead byte and 0-3 more */
        if (pos >= len)
            continue;
        unsigned count = d[pos++];
        uint8_t a, b;
        if (count < 1 || aml_int(d, len, &pos, &a))
            continue;
        if (count < 2 || aml_int(d, len, &pos, &b))
            b = a;
        p->slp_typa[n] = a & 7;
        p->slp_typb[n] = b & 7;
        p->sx_valid |= (uint8_t)(1u << n);
        return;
    }
}

const char *acpi_power_parse(const uint8_t *fadt, size_t len, const uint8_t *dsdt, size_t dsdt_len,
                             struct acpi_power *p)
{
    *p = (struct acpi_power){0};
    if (!fadt || len < FADT_FLAGS + 4)
        return "FADT too short";
    uint32_t flags = (uint32_t)le(fadt + FADT_FLAGS, 4);
    p->hw_reduced = (flags & FLAG_HW_REDUCED) != 0;
    p->pm1a_evt = gas_port(fadt, len, FADT_X_PM1A_EVT);
    if (!p->pm1a_evt)
        p->pm1a_evt = legacy_port(fadt, len, FADT_PM1A_EVT);
    p->pm1a_cnt = gas_port(fadt, len, FADT_X_PM1A_CNT);
    if (!p->pm1a_cnt)
        p->pm1a_cnt = legacy_port(fadt, len, FADT_PM1A_CNT);
    p->pm1b_cnt = gas_port(fadt, len, FADT_X_PM1B_CNT);
    if (!p->pm1b_cnt)
        p->pm1b_cnt = legacy_port(fadt, len, FADT_PM1B_CNT);
    p->sleep_ctl = gas_port(fadt, len, FADT_SLEEP_CONTROL);
    if ((flags & FLAG_RESET_REG_SUP) && len >= FADT_RESET_VALUE + 1) {
        p->reset_port = gas_port(fadt, len, FADT_RESET_REG);
        p->reset_mem = gas_mem(fadt, len, FADT_RESET_REG);
        p->reset_value = fadt[FADT_RESET_VALUE];
    }
    if (len >= FADT_X_FIRMWARE + 8)
        p->facs = le(fadt + FADT_X_FIRMWARE, 8);
    if (!p->facs && len >= FADT_FIRMWARE_CTRL + 4)
        p->facs = le(fadt + FADT_FIRMWARE_CTRL, 4);
    if (p->facs >= (1ull << 48))
        p->facs = 0;
    if (dsdt)
        for (unsigned n = 1; n <= 5; n++)
            find_sx(dsdt, dsdt_len, n, p);
    return 0;
}

const char *acpi_facs_wake(const uint8_t *f, size_t len, struct acpi_wake *w)
{
    if (!f || len < FACS_LEN_MIN)
        return "the FACS is missing or too short";
    if (f[0] != 'F' || f[1] != 'A' || f[2] != 'C' || f[3] != 'S' || le(f + 4, 4) < FACS_LEN_MIN)
        return "the FACS has no FACS signature or a bad length";
    uint64_t x = le(f + FACS_X_WAKING_VECTOR, 8);
    if (x) {
        /* The firmware enters a non-zero X_ vector in 64-bit mode when the
         * OS asked for it, else in flat 32-bit protected mode (5.2.10). */
        if (le(f + FACS_OSPM_FLAGS, 4) & 1)
            return "the OS asks for a 64-bit wake, which the hypervisor does not offer";
        if (x >= (1ull << 32))
            return "the OS's X_Firmware_Waking_Vector is above 4 GiB";
        *w = (struct acpi_wake){WAKE_PROT32, 0, x};
        return 0;
    }
    uint32_t v = (uint32_t)le(f + FACS_WAKING_VECTOR, 4);
    if (!v || v >= (1u << 20))
        return "the OS set no real-mode waking vector below 1 MiB";
    *w = (struct acpi_wake){WAKE_REAL, (uint16_t)(v >> 4), v & 0xf};
    return 0;
}

/* The bytes of an OUT that land in [reg, reg + 2): *lo and *hi, with which were written. */
static unsigned covered(uint16_t port, unsigned size, uint32_t val, uint16_t reg, uint8_t *lo,
                        uint8_t *hi)
{
    unsigned got = 0;
    for (unsigned i = 0; i < size && i < 4; i++) {
        uint32_t a = (uint32_t)port + i;
        uint8_t byte = (uint8_t)(val >> (8 * i));
        if (a == reg) {
            *lo = byte;
            got |= 1;
        } else if (a == (uint32_t)reg + 1) {
            *hi = byte;
            got |= 2;
        }
    }
    return got;
}

static enum power_action sleep_type(const struct acpi_power *p, const uint8_t *types, unsigned typ)
{
    static const unsigned order[] = {5, 4, 3, 2, 1}; /* S4 sharing S5's value powers off */
    for (unsigned k = 0; k < 5; k++) {
        unsigned n = order[k];
        if ((p->sx_valid & (1u << n)) && types[n] == typ)
            return (enum power_action)(POWER_SLEEP_S1 + n - 1);
    }
    return POWER_SLEEP_OTHER;
}

enum power_action power_classify(const struct acpi_power *p, uint16_t port, unsigned size,
                                 uint32_t val, uint8_t prev92)
{
    uint8_t lo = 0, hi = 0;
    const uint16_t cnt[2] = {p->pm1a_cnt, p->pm1b_cnt};
    for (unsigned k = 0; k < 2; k++) {
        if (cnt[k] && (covered(port, size, val, cnt[k], &lo, &hi) & 2) &&
            (((unsigned)hi << 8) & SLP_EN_PM1))
            return sleep_type(p, k ? p->slp_typb : p->slp_typa, (hi >> 2) & 7);
    }
    if (p->sleep_ctl && (covered(port, size, val, p->sleep_ctl, &lo, &hi) & 1) && (lo & SLP_EN_HWR))
        return sleep_type(p, p->slp_typa, (lo >> 2) & 7);
    uint16_t rport;
    return power_reset_byte(p, port, size, val, prev92, &rport, &lo) ? POWER_RESET : POWER_NONE;
}

bool power_reset_byte(const struct acpi_power *p, uint16_t port, unsigned size, uint32_t val,
                      uint8_t prev92, uint16_t *rport, uint8_t *rval)
{
    uint8_t lo = 0, hi = 0;
    /* The reset ports are judged by the byte an access of any width writes to
     * them (`outw 0xcf8` carries 0xCF9's byte too), except that a dword at 0xCF8
     * is CONFIG_ADDRESS (PCI Local Bus 3.0, 3.2.2.3.2), whatever its bytes say:
     * a device number must not pass for a reset. */
    bool config_address = port == PORT_RESET_CONTROL - 1 && size == 4;
    if (p->reset_port && !(config_address && p->reset_port == PORT_RESET_CONTROL) &&
        (covered(port, size, val, p->reset_port, &lo, &hi) & 1) && lo == p->reset_value)
        *rport = p->reset_port;
    else if (!config_address && (covered(port, size, val, PORT_RESET_CONTROL, &lo, &hi) & 1) &&
             (lo & 4))
        *rport = PORT_RESET_CONTROL;
    else if ((covered(port, size, val, PORT_SYSCTL_A, &lo, &hi) & 1) && (lo & 1) && !(prev92 & 1))
        *rport = PORT_SYSCTL_A;
    else if ((covered(port, size, val, PORT_KBC_CMD, &lo, &hi) & 1) && lo == 0xfe)
        *rport = PORT_KBC_CMD;
    else
        return false;
    *rval = lo;
    return true;
}

enum power_action power_classify_mem(const struct acpi_power *p, uint64_t gpa, unsigned size,
                                     uint64_t val)
{
    if (!p->reset_mem || size < 1 || size > 8 || gpa > p->reset_mem || p->reset_mem - gpa >= size)
        return POWER_NONE;
    uint8_t byte = (uint8_t)(val >> (8 * (p->reset_mem - gpa)));
    return byte == p->reset_value ? POWER_RESET : POWER_NONE;
}

bool power_wak_shift(const struct acpi_power *p, uint16_t port, unsigned size, unsigned *shift)
{
    uint32_t hi = (uint32_t)p->pm1a_evt + 1;
    if (!p->pm1a_evt || size < 1 || size > 4 || port > hi || (uint32_t)port + size <= hi)
        return false;
    *shift = 8 * (hi - port);
    return true;
}

void power_ports(const struct acpi_power *p, uint16_t out[12], unsigned *n)
{
    unsigned k = 0;
    if (p->pm1a_evt) {
        out[k++] = p->pm1a_evt;
        out[k++] = (uint16_t)(p->pm1a_evt + 1);
    }
    if (p->pm1a_cnt) {
        out[k++] = p->pm1a_cnt;
        out[k++] = (uint16_t)(p->pm1a_cnt + 1);
    }
    if (p->pm1b_cnt) {
        out[k++] = p->pm1b_cnt;
        out[k++] = (uint16_t)(p->pm1b_cnt + 1);
    }
    if (p->sleep_ctl)
        out[k++] = p->sleep_ctl;
    if (p->reset_port)
        out[k++] = p->reset_port;
    out[k++] = PORT_RESET_CONTROL;
    out[k++] = PORT_SYSCTL_A;
    out[k++] = PORT_KBC_CMD;
    *n = k;
}

const char *power_action_name(enum power_action a)
{
    static const char *const names[] = {
        [POWER_NONE] = "none",
        [POWER_SLEEP_S1] = "S1 sleep",
        [POWER_SLEEP_S2] = "S2 sleep",
        [POWER_SLEEP_S3] = "S3 suspend to RAM",
        [POWER_SLEEP_S4] = "S4 hibernation",
        [POWER_OFF_S5] = "S5 power-off",
        [POWER_SLEEP_OTHER] = "sleep of an undeclared type",
        [POWER_RESET] = "reset",
    };
    return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}
