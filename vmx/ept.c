/*
 * ept.c - EPT paging structures: build, edit, query (see ept.h; the entry
 * format is in ept_entry.h).
 */
#include "ept.h"
#include "ept_entry.h"
#include "vmx_defs.h"

static bool valid_memtype(unsigned t)
{
    return t == MEMTYPE_UC || t == MEMTYPE_WC || t == MEMTYPE_WT || t == MEMTYPE_WP ||
           t == MEMTYPE_WB;
}

static bool size_allowed(const struct ept *e, int level)
{
    return level == 1 || (level == 2 && e->page_2m) || (level == 3 && e->page_1g);
}

int ept_legal_rights(unsigned rights, bool exec_only_ok, enum ept_fix fix)
{
    if (rights & ~EPT_RWX)
        return EPT_EINVAL;
    /* Write without read is an EPT misconfiguration. */
    if ((rights & EPT_W) && !(rights & EPT_R)) {
        if (fix == EPT_FIX_REFUSE)
            return EPT_EINVAL;
        rights = fix == EPT_FIX_DROP ? rights & ~EPT_W : rights | EPT_R;
    }
    /* Execute-only is a misconfiguration unless the CPU supports it. */
    if (rights == EPT_X && !exec_only_ok) {
        if (fix == EPT_FIX_REFUSE)
            return EPT_EINVAL;
        rights = fix == EPT_FIX_DROP ? 0 : rights | EPT_R;
    }
    return (int)rights;
}

int ept_init(struct ept *e, const struct ept_pager *pg, uint64_t cap)
{
    e->pg = *pg;
    e->page_1g = (cap & EPT_CAP_PAGE_1G) != 0;
    e->page_2m = (cap & EPT_CAP_PAGE_2M) != 0;
    e->exec_only = (cap & EPT_CAP_EXEC_ONLY) != 0;
    e->tables = 0;
    e->pml4 = pg->alloc_page(pg->ctx, &e->pml4_phys);
    if (!e->pml4)
        return EPT_ENOMEM;
    e->tables = 1;
    return 0;
}

uint64_t ept_eptp(const struct ept *e)
{
    return e->pml4_phys | EPTP_MEMTYPE_WB | EPTP_PWL4;
}

unsigned ept_tables(const struct ept *e)
{
    return e->tables;
}

/* Releases the table an entry at `level` points to, and everything below. */
static void free_subtree(struct ept *e, uint64_t ent, int level)
{
    uint64_t *t = table_of(e, ent);
    if (level - 1 > 1) {
        for (unsigned i = 0; i < ENTRIES; i++)
            if (mapped(t[i]) && !is_leaf(t[i], level - 1))
                free_subtree(e, t[i], level - 1);
    }
    if (e->pg.free_page)
        e->pg.free_page(e->pg.ctx, t, ent & E_ADDR);
    e->tables--;
}

void ept_destroy(struct ept *e)
{
    if (!e->pml4)
        return;
    for (unsigned i = 0; i < ENTRIES; i++)
        if (mapped(e->pml4[i]))
            free_subtree(e, e->pml4[i], 4);
    if (e->pg.free_page)
        e->pg.free_page(e->pg.ctx, e->pml4, e->pml4_phys);
    e->pml4 = NULL;
    e->tables = 0;
}

/*
 * Replaces the large leaf in *slot (at `level`) by a table of 512 leaves one
 * level down with the same attributes.  The table is filled before it is
 * linked, so a CPU walking a live hierarchy sees either the old leaf or the
 * complete new table (the caller's INVEPT drops stale cached translations).
 */
static int split_slot(struct ept *e, uint64_t *slot, int level)
{
    uint64_t phys, ent = *slot;
    uint64_t *t = e->pg.alloc_page(e->pg.ctx, &phys);
    if (!t)
        return EPT_ENOMEM;
    split_fill(t, ent, level);
    e->tables++;
    *slot = phys | E_RWX;
    return 0;
}

/* The table below *slot, created (empty) or split out of a leaf if needed.
 * NULL with *err set on allocation failure. */
static uint64_t *child_table(struct ept *e, uint64_t *slot, int level, int *err)
{
    if (!mapped(*slot)) {
        uint64_t phys;
        uint64_t *t = e->pg.alloc_page(e->pg.ctx, &phys);
        if (!t) {
            *err = EPT_ENOMEM;
            return NULL;
        }
        e->tables++;
        *slot = phys | E_RWX;
        return t;
    }
    if (is_leaf(*slot, level)) {
        int rc = split_slot(e, slot, level);
        if (rc) {
            *err = rc;
            return NULL;
        }
    }
    return table_of(e, *slot);
}

/*
 * Sets [gpa, end) within `table` (whose entries are at `level`) to leaves
 * translating a to a + delta with `bits` (rights | memtype | E_SW_LEAF), or
 * to not-present when bits == 0.
 */
static int apply(struct ept *e, uint64_t *table, int level, uint64_t gpa, uint64_t end,
                 uint64_t delta, uint64_t bits)
{
    uint64_t size = level_size(level);
    while (gpa < end) {
        uint64_t *slot = &table[level_index(gpa, level)];
        uint64_t ent_end = (gpa & ~(size - 1)) + size;
        uint64_t b = end < ent_end ? end : ent_end;
        bool whole = (gpa & (size - 1)) == 0 && b == ent_end;

        if (level < 4 && whole &&
            (bits == 0 || (size_allowed(e, level) && ((gpa + delta) & (size - 1)) == 0))) {
            uint64_t old = *slot;
            *slot = bits ? ((gpa + delta) | bits | (level > 1 ? E_LARGE : 0)) : 0;
            if (mapped(old) && !is_leaf(old, level))
                free_subtree(e, old, level);
        } else if (bits == 0 && !mapped(*slot)) {
            /* unmapping what is already a hole */
        } else {
            int err = 0;
            uint64_t *t = child_table(e, slot, level, &err);
            if (!t)
                return err;
            int rc = apply(e, t, level - 1, gpa, b, delta, bits);
            if (rc)
                return rc;
        }
        gpa = b;
    }
    return 0;
}

static bool range_ok(uint64_t gpa, uint64_t len)
{
    return ((gpa | len) & (EPT_PAGE_4K - 1)) == 0 && len <= EPT_GPA_LIMIT &&
           gpa <= EPT_GPA_LIMIT - len;
}

int ept_map(struct ept *e, uint64_t gpa, uint64_t hpa, uint64_t len, unsigned memtype,
            unsigned rights)
{
    if (!range_ok(gpa, len) || (hpa & (EPT_PAGE_4K - 1)) || (hpa & ~E_ADDR) ||
        !valid_memtype(memtype) || ept_legal_rights(rights, e->exec_only, EPT_FIX_REFUSE) < 0)
        return EPT_EINVAL;
    if (len == 0)
        return 0;
    uint64_t bits = E_MEMTYPE(memtype) | rights | E_SW_LEAF;
    return apply(e, e->pml4, 4, gpa, gpa + len, hpa - gpa, bits);
}

int ept_unmap(struct ept *e, uint64_t gpa, uint64_t len)
{
    if (!range_ok(gpa, len))
        return EPT_EINVAL;
    if (len == 0)
        return 0;
    return apply(e, e->pml4, 4, gpa, gpa + len, 0, 0);
}

/* ---- identity map with holes --------------------------------------------- */

struct pending {
    uint64_t base, end;
    unsigned memtype;
    bool live;
};

static int flush(struct ept *e, struct pending *p)
{
    int rc = 0;
    if (p->live)
        rc = ept_map(e, p->base, p->base, p->end - p->base, p->memtype, EPT_RWX);
    p->live = false;
    return rc;
}

/* Joins contiguous same-type pieces so a large page may span them. */
static int add_piece(struct ept *e, struct pending *p, uint64_t base, uint64_t end,
                     unsigned memtype)
{
    if (p->live && p->end == base && p->memtype == memtype) {
        p->end = end;
        return 0;
    }
    int rc = flush(e, p);
    p->base = base;
    p->end = end;
    p->memtype = memtype;
    p->live = true;
    return rc;
}

int ept_map_identity(struct ept *e, const struct ept_range *ranges, size_t n,
                     const struct ept_range *holes, size_t nholes)
{
    struct pending p = {0, 0, 0, false};

    for (size_t i = 0; i < n; i++) {
        uint64_t cur = ranges[i].base, end = ranges[i].base + ranges[i].len;
        if (!range_ok(ranges[i].base, ranges[i].len) || !valid_memtype(ranges[i].memtype))
            return EPT_EINVAL;
        while (cur < end) {
            uint64_t next = end;
            bool in_hole = false;
            for (size_t h = 0; h < nholes; h++) {
                uint64_t hb = holes[h].base & ~(EPT_PAGE_4K - 1);
                uint64_t he = (holes[h].base + holes[h].len + EPT_PAGE_4K - 1) & ~(EPT_PAGE_4K - 1);
                if (holes[h].len == 0)
                    continue;
                if (hb <= cur && cur < he) {
                    in_hole = true;
                    next = he < end ? he : end;
                    break;
                }
                if (hb > cur && hb < next)
                    next = hb;
            }
            if (!in_hole) {
                int rc = add_piece(e, &p, cur, next, ranges[i].memtype);
                if (rc)
                    return rc;
            }
            cur = next;
        }
    }
    return flush(e, &p);
}

/* ---- queries and single-page edits --------------------------------------- */

/* The slot of the leaf translating gpa and its level; NULL if unmapped. */
static uint64_t *find_leaf(const struct ept *e, uint64_t gpa, int *level)
{
    if (gpa >= EPT_GPA_LIMIT)
        return NULL;
    uint64_t *t = e->pml4;
    for (int l = 4; l >= 1; l--) {
        uint64_t *slot = &t[level_index(gpa, l)];
        if (!mapped(*slot))
            return NULL;
        if (is_leaf(*slot, l)) {
            *level = l;
            return slot;
        }
        t = table_of(e, *slot);
    }
    return NULL;
}

int ept_lookup(const struct ept *e, uint64_t gpa, struct ept_leaf *out)
{
    int level;
    uint64_t *slot = find_leaf(e, gpa, &level);
    if (!slot)
        return EPT_ENOENT;
    uint64_t size = level_size(level);
    out->page_size = size;
    out->hpa = (*slot & E_ADDR & ~(size - 1)) + (gpa & (size - 1));
    out->rights = (unsigned)(*slot & E_RWX);
    out->memtype = (unsigned)((*slot >> 3) & 7);
    return 0;
}

int ept_get_rights(const struct ept *e, uint64_t gpa, unsigned *rights)
{
    struct ept_leaf l;
    int rc = ept_lookup(e, gpa, &l);
    *rights = rc ? 0 : l.rights;
    return rc;
}

int ept_split(struct ept *e, uint64_t gpa, uint64_t page_size)
{
    int level;
    if (page_size != EPT_PAGE_4K && page_size != EPT_PAGE_2M)
        return EPT_EINVAL;
    for (;;) {
        uint64_t *slot = find_leaf(e, gpa, &level);
        if (!slot)
            return EPT_ENOENT;
        if (level_size(level) <= page_size)
            return 0;
        int rc = split_slot(e, slot, level);
        if (rc)
            return rc;
    }
}

int ept_set_rights(struct ept *e, uint64_t gpa, unsigned rights, enum ept_fix fix,
                   unsigned *applied)
{
    int legal = ept_legal_rights(rights, e->exec_only, fix);
    if (legal < 0)
        return legal;
    int rc = ept_split(e, gpa, EPT_PAGE_4K);
    if (rc)
        return rc;
    int level;
    uint64_t *slot = find_leaf(e, gpa, &level);
    /* E_SW_LEAF stays set: the mapping survives rights of none. */
    *slot = (*slot & ~E_RWX) | (uint64_t)legal;
    if (applied)
        *applied = (unsigned)legal;
    return 0;
}

int ept_merge(struct ept *e, uint64_t gpa)
{
    int merged = 0;
    for (;;) {
        /* Path of slots from the PML4 down to the leaf. */
        uint64_t *slots[5] = {0};
        uint64_t *t = e->pml4;
        int leaf_level = 0;
        if (gpa >= EPT_GPA_LIMIT)
            return merged;
        for (int l = 4; l >= 1; l--) {
            slots[l] = &t[level_index(gpa, l)];
            if (!mapped(*slots[l]))
                return merged;
            if (is_leaf(*slots[l], l)) {
                leaf_level = l;
                break;
            }
            t = table_of(e, *slots[l]);
        }
        int parent = leaf_level + 1; /* the entry that would become the leaf */
        if (parent > 3 || !size_allowed(e, parent))
            return merged;
        uint64_t *tab = table_of(e, *slots[parent]);
        uint64_t child = level_size(leaf_level);
        uint64_t attrs = tab[0] & ~E_ADDR & ~E_LARGE;
        uint64_t base = tab[0] & E_ADDR;
        if (base & (level_size(parent) - 1))
            return merged;
        for (unsigned i = 0; i < ENTRIES; i++) {
            if (!mapped(tab[i]) || !is_leaf(tab[i], leaf_level) ||
                (tab[i] & ~E_ADDR & ~E_LARGE) != attrs || (tab[i] & E_ADDR) != base + i * child)
                return merged;
        }
        uint64_t old = *slots[parent];
        *slots[parent] = base | attrs | E_LARGE;
        free_subtree(e, old, parent);
        merged++;
    }
}

static void count(const struct ept *e, const uint64_t *t, int level, uint64_t counts[3])
{
    for (unsigned i = 0; i < ENTRIES; i++) {
        if (!mapped(t[i]))
            continue;
        if (is_leaf(t[i], level))
            counts[level - 1]++;
        else
            count(e, table_of(e, t[i]), level - 1, counts);
    }
}

void ept_count_leaves(const struct ept *e, uint64_t counts[3])
{
    counts[0] = counts[1] = counts[2] = 0;
    count(e, e->pml4, 4, counts);
}
