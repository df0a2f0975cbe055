/*
 * acpi_find.h - finds one ACPI table by signature from the RSDP (through the
 * XSDT, or the RSDT when there is none), checking every length and checksum
 * on the way: the tables come from firmware and, on the fuzz path, from
 * anywhere.  Pure: memory is reached only through the caller's map function,
 * so host tests and the fuzzer run it over a buffer.
 */
#ifndef HV_ACPI_FIND_H
#define HV_ACPI_FIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_HDR_LEN   36u
#define ACPI_MAX_TABLE (1u << 20) /* larger tables are refused as corrupt */

/*
 * Returns a pointer through which `len` bytes at physical address `phys` can
 * be read, or NULL when that range is not readable.
 */
typedef const uint8_t *(*acpi_map_fn)(void *ctx, uint64_t phys, uint64_t len);

struct acpi_found {
    uint64_t phys;       /* the table's physical address */
    uint32_t len;        /* its header's length, checked */
    const uint8_t *data; /* map(phys, len) */
    uint64_t root;       /* the XSDT/RSDT it was found through */
    uint32_t index;      /* its entry number there */
    bool xsdt;           /* root is an XSDT (8-byte entries) */
};

/* Sum of n bytes modulo 256 (0 for a valid ACPI checksum). */
uint8_t acpi_sum(const uint8_t *p, uint64_t n);

/*
 * Looks up table `sig` (4 characters).  Returns NULL and fills *out, or what
 * is wrong ("no RSDP", "RSDP checksum", "not found", ...).  A table whose own
 * length or checksum is bad is skipped and reported only when no good one
 * with that signature exists.
 */
const char *acpi_find(acpi_map_fn map, void *ctx, uint64_t rsdp, const char sig[4],
                      struct acpi_found *out);

/*
 * Hides table `sig` from an OS reading ACPI: every XSDT and RSDT entry that
 * points to it is removed (the later entries move up, the root's length and
 * checksum are fixed), and the table's own signature becomes `newsig` (its
 * checksum fixed), so a root rebuilt later from the firmware's list does not
 * bring it back under its name.  map must give writable memory.  Returns the
 * number of root entries removed, -1 when the roots are invalid.
 */
int acpi_hide(acpi_map_fn map, void *ctx, uint64_t rsdp, const char sig[4], const char newsig[4]);

#endif
