/*
 * dmar.h - the ACPI DMA Remapping Reporting table (Intel VT-d
 * specification 3.x, chapter 8 "BIOS Considerations"): the remapping units
 * (DRHD) with their register base, INCLUDE_PCI_ALL flag and device scopes,
 * and the reserved memory regions (RMRR) devices keep using.  Pure parser:
 * every length is checked against its container, so any byte string is safe
 * input (fuzzed by test/fuzz/fuzz_dmar.c).
 */
#ifndef HV_DMAR_H
#define HV_DMAR_H

#include <stdint.h>

#define DMAR_MAX_DRHD  16
#define DMAR_MAX_RMRR  16
#define DMAR_MAX_SCOPE 16
#define DMAR_MAX_PATH  8

#define DMAR_INCLUDE_PCI_ALL 0x01u /* DRHD flags bit 0 */

enum dmar_scope_type {
    DMAR_SCOPE_ENDPOINT = 1,
    DMAR_SCOPE_BRIDGE = 2,
    DMAR_SCOPE_IOAPIC = 3,
    DMAR_SCOPE_HPET = 4,
    DMAR_SCOPE_ACPI = 5,
};

struct dmar_scope {
    uint8_t type; /* enum dmar_scope_type */
    uint8_t enum_id;
    uint8_t bus; /* start bus */
    uint8_t npath;
    uint8_t path[DMAR_MAX_PATH][2]; /* (device, function) hops from bus */
};

struct dmar_drhd {
    uint64_t reg_base; /* 4 KiB aligned register page */
    uint16_t segment;
    uint8_t flags; /* DMAR_INCLUDE_PCI_ALL */
    uint8_t size;  /* register set is 2^size pages (0 on older tables: one page) */
    uint32_t nscope;
    uint32_t scopes_dropped; /* beyond DMAR_MAX_SCOPE or path too long */
    struct dmar_scope scope[DMAR_MAX_SCOPE];
};

struct dmar_rmrr {
    uint64_t base, limit; /* limit is the last byte */
    uint16_t segment;
    uint32_t nscope;
    struct dmar_scope scope[DMAR_MAX_SCOPE];
};

struct dmar_info {
    uint8_t haw; /* host address width - 1, as in the table */
    uint8_t flags;
    uint32_t ndrhd, nrmrr;
    uint32_t other; /* structures of other types (ATSR, RHSA, ANDD, SATC), skipped */
    struct dmar_drhd drhd[DMAR_MAX_DRHD];
    struct dmar_rmrr rmrr[DMAR_MAX_RMRR];
};

/*
 * Parses the whole table (header included, len bytes).  Returns NULL and
 * fills *out, or what is wrong.  More remapping units than DMAR_MAX_DRHD is
 * an error (a unit left out would be a unit left unprotected); excess RMRRs
 * are an error too (their devices would fault).
 */
const char *dmar_parse(const uint8_t *t, uint32_t len, struct dmar_info *out);

#endif
