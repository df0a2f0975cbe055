/*
 * mtrr.h - memory types of physical ranges from the MTRRs.
 *
 * With EPT active the processor no longer applies the MTRRs to guest
 * accesses; the EPT leaf's memory type takes their place (SDM Vol. 3C
 * 29.3.7.2 Memory Type Used for Translated Guest-Physical Addresses).  So the EPT builder asks this
 * module for the type the firmware configured for each range and copies it into the leaves.  Pure
 * functions over a snapshot of the MSRs (mtrr_read() takes it on the running CPU).
 *
 * Rules: SDM Vol. 3A 12.11 Memory Type Range Registers (MTRRs) (the MSRs 12.11.1-12.11.3,
 * 12.11.4.1 MTRR Precedences).
 */
#ifndef HV_MTRR_H
#define HV_MTRR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MTRR_MAX_VAR   32 /* IA32_MTRRCAP.VCNT is 8 bits; real parts have <= 32 */
#define MTRR_NUM_FIXED 11

/* IA32_MTRRCAP (0xfe) */
#define MTRRCAP_VCNT(c) ((unsigned)((c)&0xffu))
#define MTRRCAP_FIX     (1ull << 8)
#define MTRRCAP_WC      (1ull << 10)
/* IA32_MTRR_DEF_TYPE (0x2ff) */
#define MTRR_DEF_TYPE(d) ((unsigned)((d)&0xffu))
#define MTRR_DEF_FE      (1ull << 10) /* fixed ranges enabled */
#define MTRR_DEF_E       (1ull << 11) /* MTRRs enabled */
/* IA32_MTRR_PHYSMASKn valid bit */
#define MTRR_MASK_VALID (1ull << 11)

#define MTRR_TYPE_MIXED (-1) /* mtrr_range_type(): the range is not uniform */

struct mtrr_state {
    uint64_t cap;      /* IA32_MTRRCAP */
    uint64_t def_type; /* IA32_MTRR_DEF_TYPE */
    /* FIX64K_00000, FIX16K_80000, FIX16K_A0000, FIX4K_C0000 ... FIX4K_F8000;
     * byte i of each MSR types its i-th sub-range (lowest address in byte 0). */
    uint64_t fixed[MTRR_NUM_FIXED];
    uint64_t var_base[MTRR_MAX_VAR]; /* IA32_MTRR_PHYSBASEn: type 7:0, base 51:12 */
    uint64_t var_mask[MTRR_MAX_VAR]; /* IA32_MTRR_PHYSMASKn: valid 11, mask 51:12 */
    unsigned phys_bits;              /* MAXPHYADDR (CPUID 0x80000008 EAX[7:0]) */
};

/* A range of uniform memory type (a MEMTYPE_* value from vmx_defs.h). */
struct mtrr_range {
    uint64_t base, len;
    uint8_t type;
};

/*
 * Memory type of the byte at physical address addr.  MTRRs disabled: UC.
 * Below 1 MiB with fixed ranges enabled: the fixed range.  Otherwise the
 * matching variable ranges: one match gives its type; several give UC if any
 * is UC, WT if all are WT or WB, their type if all agree, and UC for the
 * combinations the SDM leaves undefined.  No match: the default type.
 * Reserved type encodings count as UC.
 */
unsigned mtrr_type_of(const struct mtrr_state *s, uint64_t addr);

/* Type of [base, base+len) if uniform, else MTRR_TYPE_MIXED.  len > 0. */
int mtrr_range_type(const struct mtrr_state *s, uint64_t base, uint64_t len);

/*
 * Splits [0, top) into maximal ranges of uniform type, in address order.
 * Writes at most max entries to out and returns how many the whole split
 * needs (call again with a bigger array when that exceeds max).
 */
size_t mtrr_split(const struct mtrr_state *s, uint64_t top, struct mtrr_range *out, size_t max);

/* Snapshot of the MTRR MSRs of this CPU (vmx/mtrr_read.c, RDMSR/CPUID; not host-tested).
 * A CPU without MTRRs is described as "enabled, default WB, no ranges". */
void mtrr_read(struct mtrr_state *s);

#endif /* HV_MTRR_H */
