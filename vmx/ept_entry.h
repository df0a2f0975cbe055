/*
 * ept_entry.h - the EPT entry format as ept.c and ept_view.c read and write it
 * (SDM Vol. 3C 29.3 The Extended Page Table Mechanism (EPT), tables of EPT
 * entry formats):
 *   bits 2:0   read / write / execute; an entry is present to the CPU iff
 *              one of them is set
 *   bits 5:3   memory type (leaves only)
 *   bit  6     ignore PAT (leaves; kept 0 so the guest's PAT still combines
 *              with the MTRR-derived type, as on bare metal)
 *   bit  7     large page (PDPTE: 1 GiB, PDE: 2 MiB)
 *   bits 51:12 physical address of the next table or of the page
 *   bit  52    ignored by the CPU; every leaf carries it so a page whose
 *              rights were cut to none ("---", not present to the CPU) keeps
 *              its address and type for when rights come back
 * Non-leaf entries are always RWX: access is decided at the leaf only.
 * Private to the EPT code of vmx/.
 */
#ifndef HV_EPT_ENTRY_H
#define HV_EPT_ENTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "ept.h"

#define E_RWX        0x7ull
#define E_MEMTYPE(t) ((uint64_t)(t) << 3)
#define E_LARGE      (1ull << 7)
#define E_SW_LEAF    (1ull << 52)
#define E_ADDR       0x000ffffffffff000ull
#define ENTRIES      512u

static inline uint64_t level_size(int level)
{
    return 1ull << (12 + 9 * (level - 1));
}

static inline unsigned level_index(uint64_t gpa, int level)
{
    return (unsigned)(gpa >> (12 + 9 * (level - 1))) & (ENTRIES - 1);
}

static inline bool mapped(uint64_t ent)
{
    return (ent & (E_RWX | E_SW_LEAF)) != 0;
}

/* A mapped entry at `level` that maps a page rather than a table. */
static inline bool is_leaf(uint64_t ent, int level)
{
    if (level == 1)
        return true;
    if (level == 4)
        return false;
    return (ent & E_LARGE) != 0;
}

static inline uint64_t *table_of(const struct ept *e, uint64_t ent)
{
    return e->pg.phys_to_virt(e->pg.ctx, ent & E_ADDR);
}

/* The 512 entries one level down that together map what the large leaf `ent`
 * at `level` maps, with the same attributes. */
static inline void split_fill(uint64_t *t, uint64_t ent, int level)
{
    uint64_t attrs = ent & ~E_ADDR & ~E_LARGE;
    uint64_t base = ent & E_ADDR;
    uint64_t child = level_size(level - 1);
    for (unsigned i = 0; i < ENTRIES; i++)
        t[i] = (base + i * child) | attrs | (level - 1 > 1 ? E_LARGE : 0);
}

#endif /* HV_EPT_ENTRY_H */
