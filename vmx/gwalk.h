/*
 * gwalk.h - translate a guest-linear address to guest-physical through the
 * guest's own paging structures, in every paging mode a firmware or OS uses:
 * none (CR0.PG=0), 32-bit (with 4 MiB pages under CR4.PSE), PAE, and 4-level
 * IA-32e (SDM Vol. 3A 4.3 32-Bit Paging, 4.4 PAE Paging, 4.5 4-Level Paging and 5-Level Paging).
 * Pure: physical memory is read through a callback, so it is host-tested.  Used to fetch the bytes
 * of a guest instruction that must be emulated and to translate the addresses KVMI events report.
 *
 * Every table entry and instruction byte comes from a guest-chosen address (CR3, a PTE), so root
 * mode reads them only through gwalk_read_ram / gwalk_read_linear, which refuse anything that is
 * not guest RAM in the memory map (bi_guest_ram): MMIO (side effects), holes and addresses above
 * the map (not in the host's identity map: a root-mode page fault), the hypervisor's region.
 */
#ifndef HV_GWALK_H
#define HV_GWALK_H

#include <stdint.h>

#include "boot_info.h"

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

/* Guest RAM as root mode sees it: the memory map, and where guest-physical 0
 * is in the reader's address space (0 in root mode's identity map; a buffer
 * in host tests). */
struct gwalk_ram {
    const struct boot_info *bi;
    uintptr_t host_base;
};

/* A gwalk_read_fn (ctx: struct gwalk_ram): -1 unless the 8 bytes are guest RAM. */
int gwalk_read_ram(void *ctx, uint64_t gpa, uint64_t *val);

/* Copies len bytes at guest-linear gla through the guest's paging, page by
 * page, every table entry and every byte from guest RAM only: GWALK_OK, or
 * the first walk's error (GWALK_BAD_MEMORY also for data outside guest RAM). */
int gwalk_read_linear(const struct gwalk_regs *r, const struct gwalk_ram *ram, uint64_t gla,
                      void *buf, unsigned len);

/* The bytes of an instruction at gla, at most max (<= 4096): what its page
 * holds, and the rest from the next page when that page is guest RAM.  An
 * instruction near a page's end before MMIO or an unmapped page is often
 * complete in its own page; the decoder says when it is not (it runs out of
 * bytes).  Returns the number of bytes read (>= 1), or the first page's error
 * (a GWALK_ code < 0). */
int gwalk_fetch(const struct gwalk_regs *r, const struct gwalk_ram *ram, uint64_t gla, void *buf,
                unsigned max);

#endif
