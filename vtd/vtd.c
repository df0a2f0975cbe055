/*
 * vtd.c - programs the remapping units (Intel VT-d specification 3.x,
 * 6.5 "Invalidation of Translation Caches", 10.4.4 "Global Command
 * Register", 10.4.14 "Fault Recording Registers") with the tables that
 * vtd_pt.c builds.  One root table serves every unit: all 256 buses point to
 * one context table whose 256 entries all name the guest's domain, except
 * the NIC's bus, whose context table differs in the NIC's entry.
 * Invalidation is register based (6.5.1); queued invalidation, when the
 * firmware left it on, is turned off first.
 */
#include "vtd.h"

#include <string.h>

#include "vtd_regs.h"
#include "x86.h"

#define PAGE     4096ull
#define SPIN_MAX 100000000u /* register polls before a unit counts as stuck */

static volatile uint32_t *reg32(const struct vtd_unit *u, unsigned off)
{
    return (volatile uint32_t *)(uintptr_t)(u->base + off);
}

static volatile uint64_t *reg64(const struct vtd_unit *u, unsigned off)
{
    return (volatile uint64_t *)(uintptr_t)(u->base + off);
}

static uint64_t pool_alloc(void *ctx)
{
    struct vtd_state *st = ctx;
    if (st->pool_next >= st->pool_end)
        return 0;
    uint64_t p = st->pool_next;
    st->pool_next += PAGE;
    memset((void *)(uintptr_t)p, 0, PAGE);
    return p;
}

static uint64_t *pool_virt(void *ctx, uint64_t phys)
{
    (void)ctx;
    return (uint64_t *)(uintptr_t)phys;
}

/* The allocator lives here, not in the state: loader and core differ in code addresses. */
static struct vtd_mem mem_of(struct vtd_state *st)
{
    return (struct vtd_mem){pool_alloc, pool_virt, st};
}

/* Page walks that do not snoop (ECAP.C = 0) read memory: write the tables back. */
static void flush_tables(const struct vtd_state *st)
{
    if (st->flush)
        __asm__ volatile("wbinvd" ::: "memory");
}

const char *vtd_size(const struct dmar_info *d, uint64_t top, uint64_t *pages, unsigned *levels,
                     bool *large)
{
    unsigned sagaw = 0x1f, sllps = 0xf;
    for (uint32_t i = 0; i < d->ndrhd; i++) {
        uint64_t cap = *(volatile uint64_t *)(uintptr_t)(d->drhd[i].reg_base + VTD_REG_CAP);
        if (cap == ~0ull || cap == 0)
            return "a remapping unit's registers do not answer";
        sagaw &= VTD_CAP_SAGAW(cap);
        sllps &= VTD_CAP_SLLPS(cap);
    }
    if (sagaw & 4)
        *levels = 4;
    else if (sagaw & 2)
        *levels = 3;
    else
        return "the remapping units share no 3- or 4-level table format";
    if (top > 1ull << (12 + 9 * *levels))
        return "memory reaches beyond the remapping units' address width";
    *large = sllps & 1;
    /* state, root, two context tables, the guest's tables, the NIC's (16
     * pages), splits of the guest's 2 MiB leaves around holes (8) */
    *pages = 4 + vtd_pt_identity_pages(top, *levels, *large) + 16 + 8;
    return NULL;
}

static bool wait32(const struct vtd_unit *u, unsigned off, uint32_t mask, uint32_t want)
{
    for (uint32_t i = 0; i < SPIN_MAX; i++) {
        if ((*reg32(u, off) & mask) == want)
            return true;
        cpu_relax();
    }
    return false;
}

static bool wait64_clear(const struct vtd_unit *u, unsigned off, uint64_t bit)
{
    for (uint32_t i = 0; i < SPIN_MAX; i++) {
        if (!(*reg64(u, off) & bit))
            return true;
        cpu_relax();
    }
    return false;
}

/* Issues one GCMD command bit (set or clear) keeping the others as GSTS shows them. */
static bool gcmd(const struct vtd_unit *u, uint32_t cmd, bool on, uint32_t sts)
{
    uint32_t cur = *reg32(u, VTD_REG_GSTS) & VTD_GSTS_PERSIST;
    *reg32(u, VTD_REG_GCMD) = on ? cur | cmd : cur & ~cmd;
    return wait32(u, VTD_REG_GSTS, sts, on ? sts : 0);
}

/* One-shot commands (SRTP, WBF) whose status bit means "done" when set (RTPS) or clear (WBFS). */
static bool gcmd_once(const struct vtd_unit *u, uint32_t cmd, uint32_t sts, bool done_when_set)
{
    uint32_t cur = *reg32(u, VTD_REG_GSTS) & VTD_GSTS_PERSIST;
    *reg32(u, VTD_REG_GCMD) = cur | cmd;
    return wait32(u, VTD_REG_GSTS, sts, done_when_set ? sts : 0);
}

static const char *invalidate_all(const struct vtd_unit *u)
{
    if ((u->cap & VTD_CAP_RWBF) && !gcmd_once(u, VTD_GCMD_WBF, VTD_GSTS_WBFS, false))
        return "write buffer flush did not complete";
    *reg64(u, VTD_REG_CCMD) = VTD_CCMD_ICC | VTD_CCMD_CIRG_GLOBAL;
    if (!wait64_clear(u, VTD_REG_CCMD, VTD_CCMD_ICC))
        return "context-cache invalidation did not complete";
    unsigned iotlb = VTD_ECAP_IRO(u->ecap) * 16 + VTD_IOTLB_REG;
    *reg64(u, iotlb) = VTD_IOTLB_IVT | VTD_IOTLB_IIRG_GLOBAL | VTD_IOTLB_DR | VTD_IOTLB_DW;
    if (!wait64_clear(u, iotlb, VTD_IOTLB_IVT))
        return "IOTLB invalidation did not complete";
    return NULL;
}

static const char *program_unit(struct vtd_state *st, struct vtd_unit *u)
{
    if (*reg32(u, VTD_REG_GSTS) & VTD_GSTS_QIES) {
        /* register-based invalidation is refused while queued invalidation is on */
        if (!gcmd(u, VTD_GCMD_QIE, false, VTD_GSTS_QIES))
            return "queued invalidation would not turn off";
    }
    *reg32(u, VTD_REG_FECTL) = VTD_FECTL_IM; /* polled: no fault event to the guest's APIC */
    *reg64(u, VTD_REG_RTADDR) = st->root;    /* legacy-mode root table (TTM = 00) */
    if (!gcmd_once(u, VTD_GCMD_SRTP, VTD_GSTS_RTPS, true))
        return "root table pointer was not latched";
    const char *why = invalidate_all(u);
    if (why)
        return why;
    if (!gcmd(u, VTD_GCMD_TE, true, VTD_GSTS_TES))
        return "translation would not turn on";
    /* Protected memory ranges a firmware's pre-boot DMA protection left on
     * would also block the NIC's rings in the region; translation covers
     * what they protected (10.4.16 "Protected Memory Enable Register"). */
    if ((u->cap & (VTD_CAP_PLMR | VTD_CAP_PHMR)) && (*reg32(u, VTD_REG_PMEN) & VTD_PMEN_EPM)) {
        *reg32(u, VTD_REG_PMEN) = 0;
        if (!wait32(u, VTD_REG_PMEN, VTD_PMEN_PRS, 0))
            return "protected memory ranges would not turn off";
    }
    return NULL;
}

/* Fills one context table: every entry the guest's domain, one optional exception. */
static void fill_context(struct vtd_state *st, uint64_t table, int nic_devfn)
{
    uint64_t *c = (uint64_t *)(uintptr_t)table;
    for (int devfn = 0; devfn < 256; devfn++) {
        bool nic = devfn == nic_devfn;
        const struct vtd_pt *pt = nic ? &st->nic_pt : &st->guest;
        c[2 * devfn] = pt->root | VTD_CTX_P;
        c[2 * devfn + 1] = VTD_CTX_AW(st->levels) | VTD_CTX_DID(nic ? VTD_DID_NIC : VTD_DID_GUEST);
    }
}

const char *vtd_protect(uint64_t area, uint64_t pages, const struct dmar_info *d,
                        const struct vtd_plan *p)
{
    struct vtd_state *st = (struct vtd_state *)(uintptr_t)area;
    memset(st, 0, sizeof(*st));
    st->pool_next = area + PAGE;
    st->pool_end = area + pages * PAGE;
    const char *why = vtd_size(d, p->top, &pages, &st->levels, &st->large);
    if (why)
        return why;
    if (pages > (st->pool_end - area) / PAGE)
        return "the table area is too small";
    st->nunits = d->ndrhd;
    for (uint32_t i = 0; i < d->ndrhd; i++) {
        struct vtd_unit *u = &st->unit[i];
        u->base = d->drhd[i].reg_base;
        u->pages = 1u << (d->drhd[i].size & 7);
        u->cap = *reg64(u, VTD_REG_CAP);
        u->ecap = *reg64(u, VTD_REG_ECAP);
        if (!(u->ecap & VTD_ECAP_C))
            st->flush = true;
    }
    struct vtd_mem m = mem_of(st);
    st->root = pool_alloc(st);
    st->ctx_guest = pool_alloc(st);
    if (vtd_pt_init(&st->guest, &m, st->levels, st->large) ||
        vtd_pt_init(&st->nic_pt, &m, st->levels, st->large))
        return "out of table pages";
    if (vtd_pt_identity(&st->guest, p->top, p->region_base, p->region_len))
        return "out of table pages for the guest's map";
    fill_context(st, st->ctx_guest, -1);
    st->nic = p->nic;
    if (p->nic) {
        st->nic_bus = p->nic_bus;
        st->nic_devfn = (uint8_t)(p->nic_dev << 3 | p->nic_fn);
        st->ctx_nic = pool_alloc(st);
        fill_context(st, st->ctx_nic, st->nic_devfn);
    }
    uint64_t *root = (uint64_t *)(uintptr_t)st->root;
    for (int bus = 0; bus < 256; bus++)
        root[2 * bus] = (p->nic && bus == p->nic_bus ? st->ctx_nic : st->ctx_guest) | VTD_ROOT_P;
    st->guest.mem = st->nic_pt.mem = NULL; /* m dies here */
    st->magic = VTD_STATE_MAGIC;
    flush_tables(st);
    for (uint32_t i = 0; i < st->nunits; i++) {
        why = program_unit(st, &st->unit[i]);
        if (why) {
            /* All or nothing: the units already on would block the NIC,
             * whose rings the core then has no state to map. */
            while (i-- > 0)
                gcmd(&st->unit[i], VTD_GCMD_TE, false, VTD_GSTS_TES);
            st->magic = 0;
            return why;
        }
    }
    return NULL;
}

const char *vtd_reprogram(struct vtd_state *st)
{
    flush_tables(st);
    for (uint32_t i = 0; i < st->nunits; i++) {
        const char *why = program_unit(st, &st->unit[i]);
        if (why)
            return why;
    }
    return NULL;
}

struct vtd_state *vtd_attach(uint64_t area)
{
    struct vtd_state *st = (struct vtd_state *)(uintptr_t)area;
    return area && st->magic == VTD_STATE_MAGIC ? st : NULL;
}

/* After table changes for domain did: write buffer and, when asked, its IOTLB entries. */
static int flush_domain(struct vtd_state *st, unsigned did, bool iotlb)
{
    int rc = 0;
    flush_tables(st);
    for (uint32_t i = 0; i < st->nunits; i++) {
        struct vtd_unit *u = &st->unit[i];
        if ((u->cap & VTD_CAP_RWBF) && !gcmd_once(u, VTD_GCMD_WBF, VTD_GSTS_WBFS, false))
            rc = -1;
        if (iotlb || (u->cap & VTD_CAP_CM)) {
            unsigned reg = VTD_ECAP_IRO(u->ecap) * 16 + VTD_IOTLB_REG;
            *reg64(u, reg) = VTD_IOTLB_IVT | VTD_IOTLB_IIRG_DOMAIN | VTD_IOTLB_DID(did) |
                             VTD_IOTLB_DR | VTD_IOTLB_DW;
            if (!wait64_clear(u, reg, VTD_IOTLB_IVT))
                rc = -1;
        }
    }
    return rc;
}

int vtd_nic_map(struct vtd_state *st, uint64_t phys, uint64_t len)
{
    if (!st || !st->nic)
        return 0;
    struct vtd_mem m = mem_of(st);
    st->nic_pt.mem = &m;
    int rc = vtd_pt_map(&st->nic_pt, phys, phys, len, VTD_PTE_R | VTD_PTE_W);
    st->nic_pt.mem = NULL;
    /* Not-present to present needs no IOTLB invalidation unless the unit
     * caches not-present entries (CAP.CM, 6.1). */
    if (flush_domain(st, VTD_DID_NIC, false))
        rc = -1;
    return rc;
}

int vtd_guest_unmap(struct vtd_state *st, uint64_t base, uint64_t len)
{
    if (!st)
        return 0;
    struct vtd_mem m = mem_of(st);
    st->guest.mem = &m;
    int rc = vtd_pt_unmap(&st->guest, base, len);
    st->guest.mem = NULL;
    /* Present to not-present: the units may hold the old translation. */
    if (flush_domain(st, VTD_DID_GUEST, true))
        rc = -1;
    return rc;
}

uint32_t vtd_poll_faults(struct vtd_state *st, void (*report)(const struct vtd_fault *f))
{
    uint32_t n = 0;
    for (uint32_t i = 0; st && i < st->nunits; i++) {
        struct vtd_unit *u = &st->unit[i];
        uint32_t fsts = *reg32(u, VTD_REG_FSTS);
        if (!(fsts & (VTD_FSTS_PPF | VTD_FSTS_PFO)))
            continue;
        unsigned fro = VTD_CAP_FRO(u->cap) * 16, nfr = VTD_CAP_NFR(u->cap);
        for (unsigned r = 0; r < nfr; r++) {
            uint64_t hi = *reg64(u, fro + r * 16 + 8);
            if (!(hi & VTD_FRCD_F))
                continue;
            struct vtd_fault f = {
                .unit = i,
                .sid = VTD_FRCD_SID(hi),
                .reason = VTD_FRCD_FR(hi),
                .write = !(hi & VTD_FRCD_T_READ),
                .addr = *reg64(u, fro + r * 16) & VTD_FRCD_FI_MASK,
            };
            *reg32(u, fro + r * 16 + 12) = (uint32_t)(VTD_FRCD_F >> 32); /* RW1C */
            u->faults++;
            n++;
            if (report)
                report(&f);
        }
        *reg32(u, VTD_REG_FSTS) = VTD_FSTS_PFO; /* RW1C */
    }
    if (st)
        st->faults += n;
    return n;
}
