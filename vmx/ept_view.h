/*
 * ept_view.h - per-vCPU EPT views: a second EPT hierarchy that is the shared
 * one (the base, ept.h) except for a few 4 KiB pages opened wider.
 *
 * A view owns a PML4 and a small fixed pool of tables; everything it does not
 * change points at the base's own tables, so a view costs
 * EPT_VIEW_TABLES pages whatever the size of guest memory.  Opening a page
 * copies the tables on its path (PDPT, PD, PT; a large leaf is split in the
 * private copy only) and sets the leaf's rights to the base's plus the ones
 * asked for.  The base is never written: other vCPUs, which run on the base,
 * never see the opened rights.
 *
 * Closing puts the opened leaves back as they were and keeps the private
 * paths, so the next step on a page of the same table costs one entry, not
 * three table copies.
 *
 * Coherence: the private copies are snapshots of the base.  When the base
 * changes (the caller's INVEPT of the base), the owner calls ept_view_resync
 * (in use: re-copies the paths and re-applies the opened rights on top of the
 * new base rights) or ept_view_mark_stale (not in use: rebuilt at the next
 * open) before it enters the guest again.
 *
 * Used by the VMX core for one-instruction steps (vmx/view.c) and meant as
 * the base of introspector-visible views later (docs/vmx.md, "EPT views").
 * Pure: host-tested through the same pager as ept.c.  A view is used by one
 * CPU at a time; reading the base races with edits the way a CPU's walk does
 * (entries are single 64-bit stores) and the resync after the edit's INVEPT
 * repairs any snapshot taken mid-edit.
 */
#ifndef HV_EPT_VIEW_H
#define HV_EPT_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "ept.h"

#define EPT_VIEW_PAGES             6u  /* pages open at once in a vCPU's own view */
#define EPT_VIEW_MAX_PAGES         32u /* the most any view holds (the shared large view) */
#define EPT_VIEW_TABLES_FOR(pages) (1u + 3u * (pages)) /* PML4 + a path per page */
#define EPT_VIEW_TABLES            EPT_VIEW_TABLES_FOR(EPT_VIEW_PAGES)
#define EPT_VIEW_MAX_TABLES        EPT_VIEW_TABLES_FOR(EPT_VIEW_MAX_PAGES)

struct ept_view {
    const struct ept *base;
    unsigned cap;                       /* pages it can hold open at once */
    uint64_t *tab[EPT_VIEW_MAX_TABLES]; /* tab[0] is the view's PML4; the pool is cap's */
    uint64_t phys[EPT_VIEW_MAX_TABLES];
    unsigned used; /* private tables in use, PML4 included */
    unsigned nopen;
    uint64_t open_gpa[EPT_VIEW_MAX_PAGES];   /* 4 KiB-aligned */
    uint8_t open_add[EPT_VIEW_MAX_PAGES];    /* rights added on top of the base's */
    uint64_t *open_leaf[EPT_VIEW_MAX_PAGES]; /* the opened leaves in the private tables ... */
    uint64_t open_old[EPT_VIEW_MAX_PAGES];   /* ... and what they held before */
    bool stale;                              /* the base changed since the copies were taken */
    uint8_t pml4_priv[EPT_VIEW_MAX_PAGES];   /* PML4 slots pointing at private tables */
    unsigned npml4_priv;
};

/* Takes the pool for EPT_VIEW_PAGES pages from base's pager and starts as a
 * copy of the base (no page open).  EPT_ENOMEM (nothing kept) when the pager
 * runs dry. */
int ept_view_init(struct ept_view *v, const struct ept *base);

/* The same for a view of `pages` pages (1..EPT_VIEW_MAX_PAGES). */
int ept_view_init_cap(struct ept_view *v, const struct ept *base, unsigned pages);

/* Every page open in `from` opened in `to` with the same added rights, then
 * `from` closed: a step that outgrows its view goes on in a larger one.  On
 * an error (`to` lacks room, a page no longer mapped) `to` is closed again and
 * `from` is left as it was. */
int ept_view_take(struct ept_view *to, struct ept_view *from);

/* Gives the pool back.  The view must be unused by every CPU. */
void ept_view_destroy(struct ept_view *v);

/* EPTP of the view (same memory type and walk length as the base's). */
uint64_t ept_view_eptp(const struct ept_view *v);

/*
 * Opens the 4 KiB page holding gpa to (base rights | add) in the view, made
 * legal with EPT_FIX_ADD_READ (a relaxation may grant more, never less);
 * *applied (may be NULL) receives what the leaf now allows.  A page already
 * open gets `add` on top.  EPT_ENOENT when the base does not map gpa,
 * EPT_ENOMEM when the view's cap of pages is open already, EPT_EINVAL for a
 * gpa out of range or rights outside RWX.
 */
int ept_view_open(struct ept_view *v, uint64_t gpa, unsigned add, unsigned *applied);

/* Every opened page back to the base's rights; the private paths stay for
 * the next open. */
void ept_view_close(struct ept_view *v);

/* The base changed while the view was not in use: the next open rebuilds it. */
void ept_view_mark_stale(struct ept_view *v);

/* Back to the plain base: nothing open, the pool free. */
void ept_view_reset(struct ept_view *v);

/* After the base changed: the view is rebuilt from the base as it is now
 * (PML4 included) with the same pages opened. */
int ept_view_resync(struct ept_view *v);

/* True when gpa's page is open in the view. */
bool ept_view_is_open(const struct ept_view *v, uint64_t gpa);

/* Rights of gpa's page as the view's walk sees them (EPT_ENOENT if unmapped). */
int ept_view_rights(const struct ept_view *v, uint64_t gpa, unsigned *rights);

#endif /* HV_EPT_VIEW_H */
