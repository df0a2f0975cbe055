/*
 * Unit tests of vmx/ept_view.c over a host page allocator (host pointers
 * stand in for physical addresses): a view shares every table it does not
 * change with the base, opens only the page asked for, never writes the
 * base, follows the base after a resync, and gives its pool back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ept_pool.h"

#include "vmx/ept.h"
#include "vmx/ept_view.h"
#include "vmx/vmx_defs.h"

#define MiB  (1024ull * 1024)
#define GiB  (1024ull * MiB)
#define ADDR 0x000ffffffffff000ull

/* Sandy Bridge EPT caps: exec-only, 4-level, WB, 2M, INVEPT; no 1G. */
#define CAP_2M 0x0000000006114141ull

struct fixture {
    struct pool pool;
    struct ept ept;
    struct ept_view view;
};

/* A base mapping 0..8 GiB with 2M pages (two PDPT entries' worth of PDs). */
static void setup(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    struct ept_pager pg = {pool_alloc, pool_virt, pool_free, &f->pool};
    assert_int_equal(ept_init(&f->ept, &pg, CAP_2M), 0);
    assert_int_equal(ept_map(&f->ept, 0, 0, 8 * GiB, MEMTYPE_WB, EPT_RWX), 0);
    assert_int_equal(ept_view_init(&f->view, &f->ept), 0);
}

static void teardown(struct fixture *f)
{
    ept_view_destroy(&f->view);
    ept_destroy(&f->ept);
    assert_int_equal(f->pool.allocated, f->pool.freed);
}

static uint64_t *tab(uint64_t ent)
{
    return (uint64_t *)(uintptr_t)(ent & ADDR);
}

static unsigned base_rights(struct ept *e, uint64_t gpa)
{
    unsigned r = 0;
    assert_int_equal(ept_get_rights(e, gpa, &r), 0);
    return r;
}

static unsigned view_rights(struct ept_view *v, uint64_t gpa)
{
    unsigned r = 0;
    assert_int_equal(ept_view_rights(v, gpa, &r), 0);
    return r;
}

/* The restricted page opens in the view only; the base keeps it read-only. */
static void open_is_private(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    uint64_t page = 0x12345000;
    assert_int_equal(ept_set_rights(&f.ept, page, EPT_R, EPT_FIX_DROP, NULL), 0);
    unsigned tables = ept_tables(&f.ept);
    unsigned applied = 0;
    assert_int_equal(ept_view_open(&f.view, page + 0x10, EPT_W, &applied), 0);
    assert_int_equal(applied, EPT_R | EPT_W);
    assert_int_equal(view_rights(&f.view, page), EPT_R | EPT_W);
    assert_int_equal(base_rights(&f.ept, page), EPT_R);
    assert_int_equal(ept_tables(&f.ept), tables); /* the base is not written */
    /* neighbours keep the base's rights in the view */
    assert_int_equal(view_rights(&f.view, page + 0x1000), EPT_RWX);
    assert_int_equal(view_rights(&f.view, page - 0x1000), EPT_RWX);
    assert_true(ept_view_is_open(&f.view, page + 0xfff));
    assert_false(ept_view_is_open(&f.view, page + 0x1000));
    assert_int_not_equal(ept_view_eptp(&f.view), ept_eptp(&f.ept));
    assert_int_equal(ept_view_eptp(&f.view) & ~ADDR, ept_eptp(&f.ept) & ~ADDR);
    teardown(&f);
}

/* Off the opened path, the view's entries are the base's own tables. */
static void unchanged_parts_are_shared(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    uint64_t page = 0x40201000; /* PDPT slot 1, PD slot 1 */
    assert_int_equal(ept_set_rights(&f.ept, page, EPT_R, EPT_FIX_DROP, NULL), 0);
    assert_int_equal(ept_view_open(&f.view, page, EPT_W, NULL), 0);
    uint64_t *vpml4 = f.view.tab[0], *bpml4 = f.ept.pml4;
    for (unsigned i = 1; i < 512; i++)
        assert_int_equal(vpml4[i], bpml4[i]);
    uint64_t *vpdpt = tab(vpml4[0]), *bpdpt = tab(bpml4[0]);
    assert_ptr_not_equal(vpdpt, bpdpt);
    for (unsigned i = 0; i < 512; i++)
        if (i != 1)
            assert_int_equal(vpdpt[i], bpdpt[i]); /* the other PDs are the base's */
    uint64_t *vpd = tab(vpdpt[1]), *bpd = tab(bpdpt[1]);
    for (unsigned i = 0; i < 512; i++)
        if (i != 1)
            assert_int_equal(vpd[i], bpd[i]); /* the other 2M leaves are the base's */
    /* the view holds 1 + 3 of its pool's tables */
    assert_int_equal(f.view.used, 4);
    teardown(&f);
}

/* A page inside a base large page: split in the view only. */
static void large_page_split_in_view_only(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    uint64_t counts[3], after[3];
    ept_count_leaves(&f.ept, counts);
    assert_int_equal(ept_view_open(&f.view, 0x200000 + 0x5000, EPT_X, NULL), 0);
    ept_count_leaves(&f.ept, after);
    assert_memory_equal(counts, after, sizeof(counts));
    assert_int_equal(view_rights(&f.view, 0x205000), EPT_RWX);
    struct ept_leaf leaf;
    assert_int_equal(ept_lookup(&f.ept, 0x205000, &leaf), 0);
    assert_int_equal(leaf.page_size, EPT_PAGE_2M);
    teardown(&f);
}

/* Reset gives the pool back and makes the view the base again. */
static void reset_is_the_base(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    uint64_t page = 0x1000;
    assert_int_equal(ept_set_rights(&f.ept, page, 0, EPT_FIX_DROP, NULL), 0);
    assert_int_equal(ept_view_open(&f.view, page, EPT_W, NULL), 0);
    assert_int_equal(view_rights(&f.view, page), EPT_R | EPT_W); /* W alone is not legal */
    ept_view_reset(&f.view);
    assert_int_equal(f.view.used, 1);
    assert_int_equal(f.view.nopen, 0);
    assert_memory_equal(f.view.tab[0], f.ept.pml4, 4096);
    assert_int_equal(view_rights(&f.view, page), 0);
    teardown(&f);
}

/* After the base changes, resync shows the change and keeps the page open. */
static void resync_follows_the_base(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    uint64_t page = 0x7000, other = 0x9000;
    assert_int_equal(ept_set_rights(&f.ept, page, EPT_R | EPT_X, EPT_FIX_DROP, NULL), 0);
    assert_int_equal(ept_view_open(&f.view, page, EPT_W, NULL), 0);
    /* the introspector restricts another page of the same table, and this one further */
    assert_int_equal(ept_set_rights(&f.ept, other, EPT_R, EPT_FIX_DROP, NULL), 0);
    assert_int_equal(ept_set_rights(&f.ept, page, EPT_R, EPT_FIX_DROP, NULL), 0);
    assert_int_equal(view_rights(&f.view, other), EPT_RWX); /* a stale snapshot ... */
    assert_int_equal(ept_view_resync(&f.view), 0);
    assert_int_equal(view_rights(&f.view, other), EPT_R); /* ... until the resync */
    assert_int_equal(view_rights(&f.view, page), EPT_R | EPT_W);
    assert_true(ept_view_is_open(&f.view, page));
    /* a page the base no longer maps stays closed */
    assert_int_equal(ept_unmap(&f.ept, page, 4096), 0);
    assert_int_equal(ept_view_resync(&f.view), EPT_ENOENT);
    assert_false(ept_view_is_open(&f.view, page));
    teardown(&f);
}

/* EPT_VIEW_PAGES pages on separate paths fit; one more does not; refused opens cost nothing. */
static void limits(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    /* every page on a path of its own: a PML4 slot and 3 tables each, the worst case */
    uint64_t pages[EPT_VIEW_PAGES];
    for (unsigned i = 0; i < EPT_VIEW_PAGES; i++) {
        pages[i] = i * 512 * GiB + 0x1000;
        if (i)
            assert_int_equal(
                ept_map(&f.ept, i * 512 * GiB, i * 512 * GiB, 4 * MiB, MEMTYPE_UC, EPT_RWX), 0);
    }
    /* the base grew PML4 slots after the view's copy: invisible until the resync */
    assert_int_equal(ept_view_open(&f.view, pages[1], EPT_W, NULL), EPT_ENOENT);
    assert_int_equal(ept_view_resync(&f.view), 0);
    assert_int_equal(ept_view_open(&f.view, 9 * GiB, EPT_W, NULL), EPT_ENOENT);
    assert_int_equal(ept_view_open(&f.view, EPT_GPA_LIMIT, EPT_W, NULL), EPT_EINVAL);
    assert_int_equal(ept_view_open(&f.view, 0x1000, 8, NULL), EPT_EINVAL);
    assert_int_equal(f.view.used, 1);
    for (unsigned i = 0; i < EPT_VIEW_PAGES; i++)
        assert_int_equal(ept_view_open(&f.view, pages[i], EPT_X, NULL), 0);
    assert_int_equal(f.view.used, EPT_VIEW_TABLES);
    assert_int_equal(ept_view_open(&f.view, 0x2000, EPT_X, NULL), EPT_ENOMEM);
    assert_int_equal(ept_view_open(&f.view, pages[2], EPT_W, NULL), 0); /* open already */
    assert_int_equal(f.view.nopen, EPT_VIEW_PAGES);
    for (unsigned i = 0; i < EPT_VIEW_PAGES; i++)
        assert_true(ept_view_is_open(&f.view, pages[i]));
    teardown(&f);
}

/* One instruction that touches more restricted pages than a vCPU's view
 * holds: the 7th page does not fit, so the step moves into a larger view
 * (vmx/step.c keeps one, taken by one vCPU at a time) and goes on there; its
 * own view is closed, the base is never written, and the larger view holds
 * up to its own cap, pages on separate paths included. */
static void step_outgrows_its_view(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    for (unsigned i = 1; i < EPT_VIEW_MAX_PAGES + 1; i++)
        assert_int_equal(ept_map(&f.ept, i * 512 * GiB, i * 512 * GiB, 4 * MiB, MEMTYPE_UC, EPT_R),
                         0);
    assert_int_equal(ept_view_resync(&f.view), 0);
    for (unsigned i = 0; i < EPT_VIEW_PAGES; i++)
        assert_int_equal(ept_view_open(&f.view, (i + 1) * 512 * GiB, EPT_W, NULL), 0);
    uint64_t seventh = (EPT_VIEW_PAGES + 1) * 512 * GiB;
    assert_int_equal(ept_view_open(&f.view, seventh, EPT_W, NULL), EPT_ENOMEM);

    struct ept_view big;
    assert_int_equal(ept_view_init_cap(&big, &f.ept, EPT_VIEW_MAX_PAGES + 1), EPT_EINVAL);
    assert_int_equal(ept_view_init_cap(&big, &f.ept, EPT_VIEW_MAX_PAGES), 0);
    ept_view_mark_stale(&big);
    assert_int_equal(ept_view_take(&big, &f.view), 0);
    assert_int_equal(f.view.nopen, 0);
    unsigned r;
    for (unsigned i = 0; i < EPT_VIEW_PAGES; i++) {
        uint64_t gpa = (i + 1) * 512 * GiB;
        assert_true(ept_view_is_open(&big, gpa));
        assert_int_equal(ept_view_rights(&big, gpa, &r), 0);
        assert_int_equal(r, EPT_R | EPT_W);
        assert_int_equal(ept_view_rights(&f.view, gpa, &r), 0); /* closed in the small one */
        assert_int_equal(r, EPT_R);
        assert_int_equal(base_rights(&f.ept, gpa), EPT_R);
    }
    assert_int_equal(ept_view_open(&big, seventh, EPT_W, NULL), 0);
    for (unsigned i = EPT_VIEW_PAGES + 1; i < EPT_VIEW_MAX_PAGES; i++)
        assert_int_equal(ept_view_open(&big, (i + 1) * 512 * GiB, EPT_W, NULL), 0);
    assert_int_equal(big.nopen, EPT_VIEW_MAX_PAGES);
    assert_int_equal(big.used, EPT_VIEW_MAX_TABLES);
    assert_int_equal(ept_view_open(&big, 0x1000, EPT_W, NULL), EPT_ENOMEM);
    for (unsigned i = 0; i < EPT_VIEW_MAX_PAGES; i++)
        assert_int_equal(base_rights(&f.ept, (i + 1) * 512 * GiB), EPT_R);
    ept_view_close(&big);
    assert_int_equal(ept_view_rights(&big, seventh, &r), 0);
    assert_int_equal(r, EPT_R);

    /* a view without room for what another holds takes nothing and leaves it open */
    struct ept_view small2;
    assert_int_equal(ept_view_init_cap(&small2, &f.ept, 2), 0);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(ept_view_open(&big, (i + 1) * 512 * GiB, EPT_W, NULL), 0);
    assert_int_equal(ept_view_take(&small2, &big), EPT_ENOMEM);
    assert_int_equal(big.nopen, 3);
    assert_int_equal(small2.nopen, 0);
    ept_view_destroy(&small2);
    ept_view_destroy(&big);
    teardown(&f);
}

/* Closing restores the rights and keeps the private path for the next step. */
static void close_keeps_the_path(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    uint64_t page = 0x30000000, next = 0x30001000;
    assert_int_equal(ept_set_rights(&f.ept, page, EPT_R, EPT_FIX_DROP, NULL), 0);
    assert_int_equal(ept_set_rights(&f.ept, next, EPT_R | EPT_X, EPT_FIX_DROP, NULL), 0);
    assert_int_equal(ept_view_open(&f.view, page, EPT_W, NULL), 0);
    unsigned used = f.view.used;
    ept_view_close(&f.view);
    assert_int_equal(f.view.nopen, 0);
    assert_int_equal(view_rights(&f.view, page), EPT_R);
    assert_false(ept_view_is_open(&f.view, page));
    /* a page of the same table: no new table */
    assert_int_equal(ept_view_open(&f.view, next, EPT_W, NULL), 0);
    assert_int_equal(f.view.used, used);
    assert_int_equal(view_rights(&f.view, next), EPT_RWX);
    assert_int_equal(view_rights(&f.view, page), EPT_R);
    ept_view_close(&f.view);
    assert_int_equal(view_rights(&f.view, next), EPT_R | EPT_X);
    teardown(&f);
}

/* A base change while the view is closed shows at the next open. */
static void stale_view_rebuilt_at_open(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    uint64_t page = 0x5000, other = 0x6000;
    assert_int_equal(ept_set_rights(&f.ept, page, EPT_R, EPT_FIX_DROP, NULL), 0);
    assert_int_equal(ept_view_open(&f.view, page, EPT_W, NULL), 0);
    ept_view_close(&f.view);
    assert_int_equal(ept_set_rights(&f.ept, other, EPT_R, EPT_FIX_DROP, NULL), 0);
    assert_int_equal(ept_set_rights(&f.ept, page, 0, EPT_FIX_DROP, NULL), 0);
    ept_view_mark_stale(&f.view);
    assert_int_equal(ept_view_open(&f.view, page, EPT_X, NULL), 0);
    assert_int_equal(view_rights(&f.view, other), EPT_R);
    assert_int_equal(view_rights(&f.view, page), EPT_X); /* the CPU has execute-only */
    ept_view_close(&f.view);
    assert_int_equal(view_rights(&f.view, page), 0);
    teardown(&f);
}

/* Paths kept from earlier steps never stop a new page from opening. */
static void kept_paths_make_room(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    for (unsigned i = 1; i <= EPT_VIEW_PAGES; i++)
        assert_int_equal(
            ept_map(&f.ept, i * 512 * GiB, i * 512 * GiB, 4 * MiB, MEMTYPE_UC, EPT_RWX), 0);
    assert_int_equal(ept_view_resync(&f.view), 0);
    for (unsigned i = 0; i < EPT_VIEW_PAGES; i++)
        assert_int_equal(ept_view_open(&f.view, i * 512 * GiB + 0x1000, EPT_X, NULL), 0);
    ept_view_close(&f.view);
    assert_int_equal(f.view.used, EPT_VIEW_TABLES);
    uint64_t fresh = EPT_VIEW_PAGES * 512 * GiB + 0x1000;
    assert_int_equal(ept_view_open(&f.view, fresh, EPT_W, NULL), 0);
    assert_int_equal(view_rights(&f.view, fresh), EPT_RWX);
    assert_int_equal(f.view.used, 4);
    teardown(&f);
}

/* No memory for the pool: nothing kept, nothing leaked. */
static void init_out_of_memory(void **state)
{
    (void)state;
    struct fixture f;
    memset(&f, 0, sizeof(f));
    struct ept_pager pg = {pool_alloc, pool_virt, pool_free, &f.pool};
    assert_int_equal(ept_init(&f.ept, &pg, CAP_2M), 0);
    f.pool.limit = 5;
    assert_int_equal(ept_view_init(&f.view, &f.ept), EPT_ENOMEM);
    assert_int_equal(f.pool.allocated - f.pool.freed, 1);
    ept_destroy(&f.ept);
    assert_int_equal(f.pool.allocated, f.pool.freed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_is_private),
        cmocka_unit_test(unchanged_parts_are_shared),
        cmocka_unit_test(large_page_split_in_view_only),
        cmocka_unit_test(reset_is_the_base),
        cmocka_unit_test(resync_follows_the_base),
        cmocka_unit_test(limits),
        cmocka_unit_test(step_outgrows_its_view),
        cmocka_unit_test(close_keeps_the_path),
        cmocka_unit_test(stale_view_rebuilt_at_open),
        cmocka_unit_test(kept_paths_make_room),
        cmocka_unit_test(init_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
