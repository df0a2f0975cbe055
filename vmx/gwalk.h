/*
 * gwalk.h - translate a guest-linear address to guest-physical through the
 * guest's own paging structures, in every paging mode a firmware or OS uses:
 * none (CR0.PG=0), 32-bit (with 4 MiB pages under CR4.PSE), PAE, and 4-level
 * IA-32e (SDM Vol. 3A 4.3 32-Bit Paging, 4.4 PAE Paging, 4.5 4-Level Paging and 5-Level Paging).
 * Pure: physical memory is read through a callback, so it is host-tested.  Used to fetch the bytes
 * of a guest instruction that must be emulated.
 */
#ifndef HV_GWALK_H
#define HV_GWALK_H

#include <stdint.h>

struct gwalk_regs {
    uint64_t cr0, cr3, cr4, efer;
};

/* Reads 8 bytes of guest-physical memory at gpa (8-aligned); 0 or -1 (not memory). */
typedef int (*gwalk_read_fn)(void *ctx, uint64_t gpa, uint64_t *val);

#define GWALK_OK          0
#define GWALK_NOT_PRESENT (-1)
#define GWALK_BAD_MEMORY  (-2)
#define GWALK_UNSUPPORTED (-3) /* 5-level paging */

int gwalk(const struct gwalk_regs *r, uint64_t gla, gwalk_read_fn read, void *ctx, uint64_t *gpa);

#endif
