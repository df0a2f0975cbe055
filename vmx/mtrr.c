/*
 * mtrr.c - memory type of physical addresses and ranges from an MTRR
 * snapshot (SDM Vol. 3A 12.11 Memory Type Range Registers (MTRRs)).  Pure: used by the EPT builder
 * in the core and by host unit tests.
 */
#include "mtrr.h"
#include "vmx_defs.h"

/* Fixed-range layout (SDM Vol. 3A 12.11.2.2 Fixed Range MTRRs, Table 12-9): MSR index, first
 * address and sub-range size, in address order. */
#define FIXED_END 0x100000ull

static bool valid_type(unsigned t)
{
    return t == MEMTYPE_UC || t == MEMTYPE_WC || t == MEMTYPE_WT || t == MEMTYPE_WP ||
           t == MEMTYPE_WB;
}

static unsigned sanitize(unsigned t)
{
    /* Reserved encodings would make VM entry or the EPT walk fail (EPT
     * misconfiguration, SDM Vol. 3C 29.3.3.1 EPT Misconfigurations); UC is the safe reading. */
    return valid_type(t) ? t : MEMTYPE_UC;
}

static bool mtrrs_enabled(const struct mtrr_state *s)
{
    return (s->def_type & MTRR_DEF_E) != 0;
}

static bool fixed_enabled(const struct mtrr_state *s)
{
    return mtrrs_enabled(s) && (s->def_type & MTRR_DEF_FE) && (s->cap & MTRRCAP_FIX);
}

/* Fixed sub-range containing addr (< 1 MiB): its type, and its end. */
static unsigned fixed_lookup(const struct mtrr_state *s, uint64_t addr, uint64_t *end)
{
    unsigned msr, idx;
    uint64_t size, first;
    if (addr < 0x80000) { /* FIX64K_00000: 8 x 64 KiB */
        msr = 0;
        first = 0;
        size = 0x10000;
    } else if (addr < 0xc0000) { /* FIX16K_80000, FIX16K_A0000: 16 x 16 KiB */
        msr = 1 + (unsigned)((addr - 0x80000) / 0x20000);
        first = 0x80000 + (uint64_t)(msr - 1) * 0x20000;
        size = 0x4000;
    } else { /* FIX4K_C0000 .. FIX4K_F8000: 64 x 4 KiB */
        msr = 3 + (unsigned)((addr - 0xc0000) / 0x8000);
        first = 0xc0000 + (uint64_t)(msr - 3) * 0x8000;
        size = 0x1000;
    }
    idx = (unsigned)((addr - first) / size);
    *end = first + (uint64_t)(idx + 1) * size;
    return sanitize((unsigned)(s->fixed[msr] >> (8 * idx)) & 0xffu);
}

static uint64_t addr_mask(const struct mtrr_state *s)
{
    unsigned bits =
        s->phys_bits ? s->phys_bits
                     : 36; /* SDM Vol. 3A 12.11.1 MTRR Feature Identification: 36 if not reported */
    if (bits > 52)
        bits = 52;
    return ((1ull << bits) - 1) & ~0xfffull;
}

static unsigned var_count(const struct mtrr_state *s)
{
    unsigned n = MTRRCAP_VCNT(s->cap);
    return n > MTRR_MAX_VAR ? MTRR_MAX_VAR : n;
}

static bool var_matches(const struct mtrr_state *s, unsigned i, uint64_t addr)
{
    uint64_t m = s->var_mask[i] & addr_mask(s);
    return ((addr ^ s->var_base[i]) & m) == 0;
}

/* Precedence of overlapping variable ranges (SDM Vol. 3A 12.11.4.1 MTRR Precedences). */
static unsigned combine(unsigned a, unsigned b)
{
    if (a == b)
        return a;
    if (a == MEMTYPE_UC || b == MEMTYPE_UC)
        return MEMTYPE_UC;
    if ((a == MEMTYPE_WT && b == MEMTYPE_WB) || (a == MEMTYPE_WB && b == MEMTYPE_WT))
        return MEMTYPE_WT;
    return MEMTYPE_UC; /* undefined by the SDM: the conservative choice */
}

unsigned mtrr_type_of(const struct mtrr_state *s, uint64_t addr)
{
    if (!mtrrs_enabled(s))
        return MEMTYPE_UC;
    /* Beyond MAXPHYADDR nothing is addressable; the masks would alias it
     * back onto low ranges.  Give it the default so splits stay simple. */
    if (addr >= addr_mask(s) + 0x1000)
        return sanitize(MTRR_DEF_TYPE(s->def_type));
    if (addr < FIXED_END && fixed_enabled(s)) {
        uint64_t end;
        return fixed_lookup(s, addr, &end);
    }
    bool matched = false;
    unsigned type = 0;
    for (unsigned i = 0; i < var_count(s); i++) {
        if (!(s->var_mask[i] & MTRR_MASK_VALID) || !var_matches(s, i, addr))
            continue;
        unsigned t = sanitize((unsigned)(s->var_base[i] & 0xffu));
        type = matched ? combine(type, t) : t;
        matched = true;
    }
    return matched ? type : sanitize(MTRR_DEF_TYPE(s->def_type));
}

/*
 * The first address above addr where the type might change.  A contiguous
 * mask describes one aligned power-of-two block, whose two ends are the only
 * change points; a non-contiguous mask (allowed, never seen in practice)
 * changes at most at multiples of its lowest set bit.
 */
static uint64_t next_boundary(const struct mtrr_state *s, uint64_t addr, uint64_t limit)
{
    uint64_t next = limit;
    if (!mtrrs_enabled(s))
        return next;
    if (addr < FIXED_END && fixed_enabled(s)) {
        uint64_t end;
        (void)fixed_lookup(s, addr, &end);
        return end < next ? end : next;
    }
    uint64_t all = addr_mask(s);
    uint64_t space = all + 0x1000; /* 2^phys_bits */
    if (addr >= space)
        return next;
    for (unsigned i = 0; i < var_count(s); i++) {
        if (!(s->var_mask[i] & MTRR_MASK_VALID))
            continue;
        uint64_t m = s->var_mask[i] & all;
        uint64_t cand;
        if (m == 0) {
            continue; /* matches every address: never changes */
        }
        uint64_t low = m & (~m + 1);
        if (m == (all & ~(low - 1))) {
            uint64_t start = s->var_base[i] & m;
            uint64_t end = start + low;
            if (addr < start)
                cand = start;
            else if (addr < end)
                cand = end;
            else
                continue;
        } else {
            cand = (addr | (low - 1)) + 1;
        }
        if (cand > addr && cand < next)
            next = cand;
    }
    /* The type switches to the default at 2^phys_bits (see mtrr_type_of). */
    if (space < next)
        next = space;
    return next;
}

int mtrr_range_type(const struct mtrr_state *s, uint64_t base, uint64_t len)
{
    uint64_t end = base + len;
    if (end < base)
        end = UINT64_MAX; /* clamp a range that wraps */
    unsigned t = mtrr_type_of(s, base);
    for (uint64_t a = next_boundary(s, base, end); a < end; a = next_boundary(s, a, end))
        if (mtrr_type_of(s, a) != t)
            return MTRR_TYPE_MIXED;
    return (int)t;
}

size_t mtrr_split(const struct mtrr_state *s, uint64_t top, struct mtrr_range *out, size_t max)
{
    size_t n = 0;
    uint64_t a = 0;
    while (a < top) {
        unsigned t = mtrr_type_of(s, a);
        uint64_t b = next_boundary(s, a, top);
        while (b < top && mtrr_type_of(s, b) == t)
            b = next_boundary(s, b, top);
        if (n < max) {
            out[n].base = a;
            out[n].len = b - a;
            out[n].type = (uint8_t)t;
        }
        n++;
        a = b;
    }
    return n;
}
