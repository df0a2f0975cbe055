/*
 * ept_view.c - per-vCPU EPT views over the shared EPT (see ept_view.h).
 *
 * A view's PML4 is a copy of the base's; a path to an opened page is made of
 * private copies of the base's tables (copy-on-open), so the view differs
 * from the base only along those paths.  The EPT walk itself (SDM Vol. 3C
 * 29.3.2 EPT Translation Mechanism) then finds the opened leaf in the view
 * and the base's tables everywhere else.
 */
#include "ept_view.h"
#include "ept_entry.h"

#define PAGE_BYTES 4096u

static void copy_table(uint64_t *dst, const uint64_t *src)
{
    for (unsigned i = 0; i < ENTRIES; i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

int ept_view_init(struct ept_view *v, const struct ept *base)
{
    return ept_view_init_cap(v, base, EPT_VIEW_PAGES);
}

/* Private tables the view's pool holds. */
static unsigned ntab(const struct ept_view *v)
{
    return EPT_VIEW_TABLES_FOR(v->cap);
}

int ept_view_init_cap(struct ept_view *v, const struct ept *base, unsigned pages)
{
    if (pages < 1 || pages > EPT_VIEW_MAX_PAGES)
        return EPT_EINVAL;
    v->base = base;
    v->cap = pages;
    v->used = v->nopen = v->npml4_priv = 0;
    v->stale = false;
    for (unsigned i = 0; i < EPT_VIEW_MAX_TABLES; i++)
        v->tab[i] = NULL;
    for (unsigned i = 0; i < ntab(v); i++) {
        v->tab[i] = base->pg.alloc_page(base->pg.ctx, &v->phys[i]);
        if (!v->tab[i]) {
            v->used = i; /* what destroy gives back */
            ept_view_destroy(v);
            return EPT_ENOMEM;
        }
    }
    copy_table(v->tab[0], base->pml4);
    v->used = 1;
    return 0;
}

void ept_view_destroy(struct ept_view *v)
{
    const struct ept *b = v->base;
    for (unsigned i = 0; i < EPT_VIEW_MAX_TABLES; i++) {
        if (v->tab[i] && b->pg.free_page)
            b->pg.free_page(b->pg.ctx, v->tab[i], v->phys[i]);
        v->tab[i] = NULL;
    }
    v->used = v->nopen = v->npml4_priv = 0;
}

uint64_t ept_view_eptp(const struct ept_view *v)
{
    /* the base's EPTP bits (memory type, walk length) around our PML4 */
    return (ept_eptp(v->base) & ~E_ADDR) | v->phys[0];
}

/* The private table an entry points to, or NULL when it is the base's. */
static uint64_t *private_table(const struct ept_view *v, uint64_t ent)
{
    for (unsigned i = 1; i < v->used; i++)
        if (v->phys[i] == (ent & E_ADDR))
            return v->tab[i];
    return NULL;
}

static uint64_t *take_table(struct ept_view *v, uint64_t *phys)
{
    if (v->used == ntab(v))
        return NULL;
    *phys = v->phys[v->used];
    return v->tab[v->used++];
}

/* Opens one page: path made private, leaf widened.  No bookkeeping of open pages. */
static int open_path(struct ept_view *v, uint64_t gpa, unsigned add, unsigned *applied,
                     uint64_t **leaf_out)
{
    uint64_t *t = v->tab[0];
    for (int level = 4; level > 1; level--) {
        uint64_t *slot = &t[level_index(gpa, level)];
        uint64_t ent = *slot;
        if (!mapped(ent))
            return EPT_ENOENT;
        uint64_t *priv = is_leaf(ent, level) ? NULL : private_table(v, ent);
        if (!priv) {
            uint64_t phys;
            priv = take_table(v, &phys);
            if (!priv)
                return EPT_ENOMEM;
            if (is_leaf(ent, level))
                split_fill(priv, ent, level); /* the base keeps its large page */
            else
                copy_table(priv, table_of(v->base, ent));
            *slot = phys | E_RWX;
            if (level == 4)
                v->pml4_priv[v->npml4_priv++] = (uint8_t)level_index(gpa, 4);
        }
        t = priv;
    }
    uint64_t *leaf = &t[level_index(gpa, 1)];
    if (!mapped(*leaf))
        return EPT_ENOENT;
    *leaf_out = leaf;
    int r = ept_legal_rights((unsigned)(*leaf & E_RWX) | add, v->base->exec_only, EPT_FIX_ADD_READ);
    if (r < 0)
        return r;
    *leaf = (*leaf & ~E_RWX) | (uint64_t)r;
    if (applied)
        *applied = (unsigned)r;
    return 0;
}

/*
 * Cannot fail once the page is known to be mapped: a new page needs at most
 * 3 tables (PDPT, PD, PT) and one PML4 slot; when the pool lacks them (paths
 * kept from earlier steps fill it), the view is rebuilt with only the pages
 * open now, at most cap - 1 of them, which leaves room.  ADD_READ
 * makes any RWX combination legal.
 */
int ept_view_open(struct ept_view *v, uint64_t gpa, unsigned add, unsigned *applied)
{
    if (gpa >= EPT_GPA_LIMIT || (add & ~EPT_RWX))
        return EPT_EINVAL;
    uint64_t page = gpa & ~(uint64_t)(PAGE_BYTES - 1);
    unsigned i = 0, cur;
    while (i < v->nopen && v->open_gpa[i] != page)
        i++;
    if (i == v->nopen && v->nopen == v->cap)
        return EPT_ENOMEM;
    if (v->stale || (i == v->nopen && v->used + 3 > ntab(v))) {
        int rc = ept_view_resync(v);
        if (rc)
            return rc;
        i = 0;
        while (i < v->nopen && v->open_gpa[i] != page)
            i++;
    }
    int rc = ept_view_rights(v, page, &cur);
    if (rc)
        return rc;
    uint64_t *leaf;
    if (i < v->nopen) { /* open already: widen further, keep what it was before */
        v->open_add[i] |= (uint8_t)add;
        return open_path(v, page, v->open_add[i], applied, &leaf);
    }
    rc = open_path(v, page, 0, NULL, &leaf);
    if (rc)
        return rc;
    v->open_old[i] = *leaf;
    rc = open_path(v, page, add, applied, &leaf);
    if (rc)
        return rc;
    v->open_gpa[i] = page;
    v->open_leaf[i] = leaf;
    v->open_add[i] = (uint8_t)add;
    v->nopen++;
    return 0;
}

void ept_view_close(struct ept_view *v)
{
    for (unsigned i = 0; i < v->nopen; i++)
        *v->open_leaf[i] = v->open_old[i];
    v->nopen = 0;
}

void ept_view_mark_stale(struct ept_view *v)
{
    v->stale = true;
}

void ept_view_reset(struct ept_view *v)
{
    for (unsigned i = 0; i < v->npml4_priv; i++) {
        unsigned s = v->pml4_priv[i];
        v->tab[0][s] = __atomic_load_n(&v->base->pml4[s], __ATOMIC_RELAXED);
    }
    v->npml4_priv = 0;
    v->used = 1;
    v->nopen = 0;
}

int ept_view_resync(struct ept_view *v)
{
    unsigned n = v->nopen;
    uint64_t gpa[EPT_VIEW_MAX_PAGES];
    uint8_t add[EPT_VIEW_MAX_PAGES];
    for (unsigned i = 0; i < n; i++) {
        gpa[i] = v->open_gpa[i];
        add[i] = v->open_add[i];
    }
    ept_view_reset(v);
    copy_table(v->tab[0], v->base->pml4);
    v->stale = false;
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        int r = ept_view_open(v, gpa[i], add[i], NULL);
        if (r && !rc)
            rc = r; /* a page the base no longer maps stays closed */
    }
    return rc;
}

int ept_view_take(struct ept_view *to, struct ept_view *from)
{
    if (to->nopen + from->nopen > to->cap)
        return EPT_ENOMEM;
    for (unsigned i = 0; i < from->nopen; i++) {
        int rc = ept_view_open(to, from->open_gpa[i], from->open_add[i], NULL);
        if (rc) {
            ept_view_close(to);
            return rc;
        }
    }
    ept_view_close(from);
    return 0;
}

bool ept_view_is_open(const struct ept_view *v, uint64_t gpa)
{
    for (unsigned i = 0; i < v->nopen; i++)
        if (v->open_gpa[i] == (gpa & ~(uint64_t)(PAGE_BYTES - 1)))
            return true;
    return false;
}

int ept_view_rights(const struct ept_view *v, uint64_t gpa, unsigned *rights)
{
    *rights = 0;
    if (gpa >= EPT_GPA_LIMIT)
        return EPT_EINVAL;
    const uint64_t *t = v->tab[0];
    for (int level = 4; level >= 1; level--) {
        uint64_t ent = t[level_index(gpa, level)];
        if (!mapped(ent))
            return EPT_ENOENT;
        if (is_leaf(ent, level)) {
            *rights = (unsigned)(ent & E_RWX);
            return 0;
        }
        const uint64_t *priv = private_table(v, ent);
        t = priv ? priv : table_of(v->base, ent);
    }
    return EPT_ENOENT;
}
