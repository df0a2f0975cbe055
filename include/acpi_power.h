/*
 * acpi_power.h - the guest's ways to sleep, power off and reset, as the ACPI
 * tables describe them, and the classification of a port write as one of
 * them.  Pure: the loader parses the tables (acpi_power_parse) into the boot
 * info; the VMX layer asks power_classify() about every write to the ports
 * it intercepts for this; the host tests and the fuzzer run both.
 *
 * ACPI 6.5: 4.8.3.2.1 PM1 Control Registers (SLP_TYPx bits 12:10, SLP_EN
 * bit 13), 4.8.3.6 Reset Register, 4.8.3.7 Sleep Control and Status
 * Registers (hardware-reduced), 5.2.9 FADT, 7.4.2 \_Sx (SLP_TYPa/b values).
 */
#ifndef HV_ACPI_POWER_H
#define HV_ACPI_POWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a port write asks of the machine. */
enum power_action {
    POWER_NONE = 0,
    POWER_SLEEP_S1,
    POWER_SLEEP_S2,
    POWER_SLEEP_S3,
    POWER_SLEEP_S4,
    POWER_OFF_S5,
    POWER_SLEEP_OTHER, /* SLP_EN with an SLP_TYP no \_Sx names */
    POWER_RESET,
};

/* The power interface of the platform, in the boot info. */
struct acpi_power {
    uint16_t pm1a_cnt, pm1b_cnt; /* I/O ports of the PM1 control blocks; 0: none */
    uint16_t pm1a_evt;           /* PM1a status (its first 2 bytes); 0: none */
    uint16_t sleep_ctl;          /* hardware-reduced sleep control (I/O); 0: none */
    uint16_t reset_port;         /* FADT RESET_REG when in I/O space; 0: none */
    uint8_t reset_value;
    uint8_t sx_valid; /* bit n: \_Sn was found */
    uint8_t slp_typa[6], slp_typb[6];
    uint8_t hw_reduced;
    uint8_t pad[5];
    uint64_t reset_mem; /* FADT RESET_REG when in memory space (its byte's address); 0: none */
    uint64_t facs;      /* the FACS (X_FIRMWARE_CTRL, else FIRMWARE_CTRL); 0: none */
};

/* Fills *p from the FADT and the DSDT it points to (dsdt may be NULL: then
 * no \_Sx is known).  Returns NULL or what is wrong with the FADT. */
const char *acpi_power_parse(const uint8_t *fadt, size_t fadt_len, const uint8_t *dsdt,
                             size_t dsdt_len, struct acpi_power *p);

/* The FADT's DSDT address (X_DSDT when present, else DSDT), 0 if none. */
uint64_t acpi_fadt_dsdt(const uint8_t *fadt, size_t fadt_len);

/* The FACS's waking vectors (ACPI 6.5 5.2.10 Firmware ACPI Control Structure). */
#define FACS_LEN_MIN         64u
#define FACS_WAKING_VECTOR   12u /* 4 bytes: real mode, CS:IP = (v >> 4):(v & 0xF) */
#define FACS_X_WAKING_VECTOR 24u /* 8 bytes: protected or 64-bit mode when non-zero */
#define FACS_OSPM_FLAGS      36u /* bit 0: 64BIT_WAKE_F, the OS asks for 64-bit mode */

/* The OS's waking vector as a FACS holds it, and how a CPU is to enter it. */
struct acpi_wake {
    enum { WAKE_REAL = 1, WAKE_PROT32 } mode;
    uint16_t cs;  /* WAKE_REAL: the code segment (vector >> 4) */
    uint64_t rip; /* WAKE_REAL: vector & 0xf; WAKE_PROT32: the linear address */
};

/* Reads the waking vector from a FACS of len bytes.  Returns NULL or what
 * makes it unusable (too short, no "FACS" signature, no vector, a 64-bit
 * wake the hypervisor does not offer, a vector at or above 4 GiB). */
const char *acpi_facs_wake(const uint8_t *facs, size_t len, struct acpi_wake *w);

/* The legacy reset ports intercepted besides the FADT's: the PCI reset
 * control register and the fast reset of system control port A. */
#define PORT_RESET_CONTROL 0xcf9u /* bit 2 RST_CPU (with bit 1 SYS_RST: full reset) */
#define PORT_SYSCTL_A      0x92u  /* bit 0 fast reset (a 0 -> 1 edge) */
#define PORT_KBC_CMD       0x64u  /* command 0xfe pulses the reset line */

/* A guest OUT of size bytes (1, 2, 4) of val to port: what it asks.  prev92
 * is port 0x92's value before the write (the reset is its bit 0's rising
 * edge). */
enum power_action power_classify(const struct acpi_power *p, uint16_t port, unsigned size,
                                 uint32_t val, uint8_t prev92);

/* When power_classify() calls that OUT a reset: the port whose byte asks for
 * it (the FADT reset register, 0xCF9, 0x92 or 0x64) in *rport and that byte
 * in *rval, which root mode writes itself before it makes sure the platform
 * resets (an access of another width or alignment reduces to that byte). */
bool power_reset_byte(const struct acpi_power *p, uint16_t port, unsigned size, uint32_t val,
                      uint8_t prev92, uint16_t *rport, uint8_t *rval);

/* A guest store of size bytes (1-8) of val at guest-physical gpa: a reset
 * when it writes the reset value into the memory-space reset register. */
enum power_action power_classify_mem(const struct acpi_power *p, uint64_t gpa, unsigned size,
                                     uint64_t val);

/* Does an access of size bytes (1, 2, 4) at port cover the PM1a status
 * register's high byte, which holds WAK_STS (bit 15)?  *shift: that byte's
 * bit position in the access.  A refused sleep shows the guest WAK_STS there
 * as after a wake (ACPI 6.5 4.8.3.1.1 PM1 Status Registers). */
bool power_wak_shift(const struct acpi_power *p, uint16_t port, unsigned size, unsigned *shift);

/* The ports to intercept: writes *n ports (at most 12) to out. */
void power_ports(const struct acpi_power *p, uint16_t out[12], unsigned *n);

/* A name for logs ("S5 power-off", "reset", ...). */
const char *power_action_name(enum power_action a);

#endif
