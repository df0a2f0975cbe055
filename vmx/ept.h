/*
 * ept.h - build and edit EPT paging structures (Intel VT-x second-level
 * translation) over a page-allocator callback interface.
 *
 * Used by the VMX core to identity-map guest-physical memory with the largest
 * pages the CPU offers, keep the hypervisor's own region and the dedicated
 * NIC's BARs unmapped (holes), and restrict single 4 KiB pages for the
 * introspector (splitting large pages as needed, preserving attributes).
 * Pure: no CPU access, so it is host-tested; the caller invalidates (INVEPT on
 * every CPU) after edits of a live hierarchy.
 *
 * Entry formats: SDM Vol. 3 "The Extended Page Table Mechanism (EPT)" (29.3
 * in the 2023 edition, 28.3 in some earlier ones), Tables "Format of an EPT
 * PML4 Entry" through "Format of an EPT Page-Table Entry"; misconfigurations
 * in "EPT Misconfigurations".  4-level walks only (48-bit GPAs).
 */
#ifndef HV_EPT_H
#define HV_EPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Access rights (same bits as KVMI's page access and EPT entries bits 2:0). */
#define EPT_R   1u
#define EPT_W   2u
#define EPT_X   4u
#define EPT_RWX 7u

/* Errors (negated errno values, so kvmi/ can pass them on). */
#define EPT_ENOENT (-2)  /* GPA not mapped (a hole) */
#define EPT_ENOMEM (-12) /* the page allocator ran dry */
#define EPT_EINVAL (-22) /* misaligned, out of range, or illegal rights */

#define EPT_PAGE_4K   (1ull << 12)
#define EPT_PAGE_2M   (1ull << 21)
#define EPT_PAGE_1G   (1ull << 30)
#define EPT_GPA_LIMIT (1ull << 48) /* 4-level walk */

/*
 * Where paging-structure pages come from.  alloc_page returns a zeroed,
 * 4 KiB-aligned page (host pointer) and stores its physical address, or
 * returns NULL.  phys_to_virt maps a physical address this allocator handed
 * out back to a host pointer.  free_page (may be NULL: pages are then leaked)
 * receives tables that are no longer referenced; a CPU may still walk them
 * until the caller's next INVEPT on every CPU, so it must defer their reuse
 * until then.
 */
struct ept_pager {
    void *(*alloc_page)(void *ctx, uint64_t *phys);
    void *(*phys_to_virt)(void *ctx, uint64_t phys);
    void (*free_page)(void *ctx, void *page, uint64_t phys);
    void *ctx;
};

struct ept {
    struct ept_pager pg;
    uint64_t *pml4;
    uint64_t pml4_phys;
    bool page_1g, page_2m, exec_only; /* from IA32_VMX_EPT_VPID_CAP */
    unsigned tables;                  /* paging-structure pages in use (PML4 included) */
};

/* A guest-physical range with one memory type (MEMTYPE_* from vmx_defs.h). */
struct ept_range {
    uint64_t base, len;
    uint8_t memtype;
};

/*
 * What to do with rights EPT cannot express (SDM Vol. 3C 29.3.3.1 EPT Misconfigurations):
 * write without read, and execute-only on CPUs without EPT_CAP_EXEC_ONLY.
 *   EPT_FIX_REFUSE  fail with EPT_EINVAL;
 *   EPT_FIX_DROP    remove W (and X) until legal: grants LESS than asked, so
 *                   every access the caller wanted to trap still traps (the
 *                   choice for KVMI page restrictions such as "-w-");
 *   EPT_FIX_ADD_READ add R: grants MORE than asked (what KVM's single-step
 *                   path does with "-wx"); only for deliberate relaxations.
 */
enum ept_fix { EPT_FIX_REFUSE, EPT_FIX_DROP, EPT_FIX_ADD_READ };

/* Legal rights for `rights` under `fix`, or EPT_EINVAL.  Never returns W without R. */
int ept_legal_rights(unsigned rights, bool exec_only_ok, enum ept_fix fix);

/* Allocates the PML4.  ept_vpid_cap decides 1G/2M pages and execute-only. */
int ept_init(struct ept *e, const struct ept_pager *pg, uint64_t ept_vpid_cap);

/* Frees every table through pg.free_page (if any).  The hierarchy must be unused. */
void ept_destroy(struct ept *e);

/* EPTP for the VMCS: PML4 address, WB paging structures, 4-level walk, no A/D (SDM Vol. 3C 25.6.11
 * Extended-Page-Table Pointer (EPTP)). */
uint64_t ept_eptp(const struct ept *e);

/*
 * Maps [gpa, gpa+len) to [hpa, hpa+len) with one memory type and rights,
 * using the largest pages both addresses' alignment and the CPU allow.
 * Whatever was mapped there before is replaced (large pages straddling the
 * edges are split first, so their outside parts keep their attributes).
 * All of gpa, hpa, len 4 KiB-aligned.  Rights must be legal (ept_legal_rights).
 * On EPT_ENOMEM part of the range may be mapped; the rest is unchanged.
 */
int ept_map(struct ept *e, uint64_t gpa, uint64_t hpa, uint64_t len, unsigned memtype,
            unsigned rights);

/* Makes [gpa, gpa+len) not present (a hole), splitting at the edges. */
int ept_unmap(struct ept *e, uint64_t gpa, uint64_t len);

/*
 * Identity map, RWX, of every range (4 KiB-aligned) except the holes (any
 * order, rounded outwards to 4 KiB).  Pieces that are consecutive in the
 * input, contiguous and of one memory type are joined so large pages can
 * span range boundaries: pass ranges sorted (as mtrr_split gives them).  A
 * large page never spans two memory types.
 */
int ept_map_identity(struct ept *e, const struct ept_range *ranges, size_t n,
                     const struct ept_range *holes, size_t nholes);

/*
 * Sets the rights of the 4 KiB page containing gpa, splitting a large page
 * that holds it (the other 511 or 262143 pages keep their attributes).
 * `rights` goes through ept_legal_rights(fix); *applied (may be NULL)
 * receives what was programmed.  EPT_ENOENT if gpa is not mapped.
 */
int ept_set_rights(struct ept *e, uint64_t gpa, unsigned rights, enum ept_fix fix,
                   unsigned *applied);

/* Leaf that translates gpa. */
struct ept_leaf {
    uint64_t hpa;       /* host-physical address of gpa itself */
    uint64_t page_size; /* EPT_PAGE_4K, _2M or _1G */
    unsigned rights, memtype;
};
/* EPT_ENOENT when gpa is not mapped. */
int ept_lookup(const struct ept *e, uint64_t gpa, struct ept_leaf *out);

/* Rights of the page holding gpa (0 with EPT_ENOENT when unmapped). */
int ept_get_rights(const struct ept *e, uint64_t gpa, unsigned *rights);

/* Splits the leaf holding gpa until it is at most page_size (2M or 4K). */
int ept_split(struct ept *e, uint64_t gpa, uint64_t page_size);

/*
 * Joins the table holding gpa's leaf back into one large leaf when all its
 * 512 entries are leaves of one size, contiguous, with equal rights and type
 * (e.g. after the introspector gave every page of a split 2M back to rwx),
 * then tries the level above.  Returns how many tables were released.
 */
int ept_merge(struct ept *e, uint64_t gpa);

/* Leaves in use per size: counts[0] 4K, counts[1] 2M, counts[2] 1G. */
void ept_count_leaves(const struct ept *e, uint64_t counts[3]);

/* Paging-structure pages in use. */
unsigned ept_tables(const struct ept *e);

#endif /* HV_EPT_H */
