/*
 * vtd.h - DMA protection with Intel VT-d remapping units (Intel VT-d
 * specification 3.x): every device in the guest's domain, whose second-level
 * tables identity-map memory without the hypervisor's region; the
 * hypervisor's own NIC alone in its domain, which maps only the pages the
 * core hands its driver (vtd_nic_map).  The loader programs the units
 * (vtd_protect) before the region holds anything; the core reaches the same
 * state through the boot info to map the NIC's rings and to collect faults.
 * Freestanding: runs in the EFI loader and in VMX root.
 */
#ifndef HV_VTD_H
#define HV_VTD_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar.h"
#include "vtd_pt.h"

#define VTD_STATE_MAGIC 0x64747641444d4152ull /* "RAMDAvtd" */
#define VTD_DID_GUEST   1
#define VTD_DID_NIC     2

struct vtd_unit {
    uint64_t base;  /* register page */
    uint32_t pages; /* register set size (DRHD size field) */
    uint64_t cap, ecap;
    uint64_t faults; /* fault records collected from this unit */
};

/* Lives at the start of the area the loader carves from the region. */
struct vtd_state {
    uint64_t magic;
    uint32_t nunits, levels;
    bool large, flush; /* 2 MiB leaves; wbinvd after table writes (ECAP.C = 0) */
    bool nic;          /* the NIC has its own domain */
    uint8_t nic_bus, nic_devfn, pad[3];
    uint64_t pool_next, pool_end; /* table pages left in the area */
    uint64_t root, ctx_guest, ctx_nic;
    struct vtd_pt guest, nic_pt; /* pt.mem is set by whoever uses them */
    uint64_t faults;             /* all units, since vtd_protect */
    struct vtd_unit unit[DMAR_MAX_DRHD];
};

/* What vtd_protect needs besides the DMAR. */
struct vtd_plan {
    uint64_t top;                     /* identity map [0, top) */
    uint64_t region_base, region_len; /* ... without this */
    bool nic;                         /* the hypervisor's NIC, own domain */
    uint8_t nic_bus, nic_dev, nic_fn;
};

/*
 * Reads every unit's capabilities and says what the tables need: the page
 * count for the area (state page included), the levels and whether 2 MiB
 * leaves can be used.  NULL or why the units cannot be used.
 */
const char *vtd_size(const struct dmar_info *d, uint64_t top, uint64_t *pages, unsigned *levels,
                     bool *large);

/*
 * Builds the tables in [area, area + pages * 4 KiB) (the state first) and
 * turns remapping on in every unit: root table pointer, global context and
 * IOTLB invalidation, translation enable; fault interrupts masked (faults
 * are polled).  NULL or why not; then the units programmed before the one
 * that failed have translation turned off again.
 */
const char *vtd_protect(uint64_t area, uint64_t pages, const struct dmar_info *d,
                        const struct vtd_plan *p);

/* The state vtd_protect left at area, or NULL when there is none. */
struct vtd_state *vtd_attach(uint64_t area);

/* Every unit programmed again from the tables in memory (after S3, which
 * resets the units' registers).  NULL or why not. */
const char *vtd_reprogram(struct vtd_state *st);

/*
 * Maps [phys, phys + len) into the NIC's domain (identity); flushes what the
 * units require (write buffer, caching mode).  0, or -1 when out of table
 * pages.  Without a NIC domain: 0 (the NIC shares the guest's domain).
 */
int vtd_nic_map(struct vtd_state *st, uint64_t phys, uint64_t len);

/*
 * Removes [base, base + len) from the guest's domain (devices the guest
 * owns can no longer reach it, e.g. another device's registers) and
 * invalidates the units' IOTLB for that domain.  0, or -1 (out of table
 * pages, or an invalidation that did not complete).
 */
int vtd_guest_unmap(struct vtd_state *st, uint64_t base, uint64_t len);

struct vtd_fault {
    uint32_t unit;
    uint16_t sid; /* requester: bus << 8 | dev << 3 | fn */
    uint8_t reason;
    bool write;
    uint64_t addr; /* page of the faulting request */
};

/*
 * Collects and clears the recorded faults of every unit, calling report for
 * each.  Returns how many were collected (also added to st->faults).
 */
uint32_t vtd_poll_faults(struct vtd_state *st, void (*report)(const struct vtd_fault *f));

#endif
