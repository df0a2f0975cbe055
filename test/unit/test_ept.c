/*
 * Unit tests of vmx/ept.c over a host page allocator (host pointers stand in
 * for physical addresses).  Every test ends with ept_destroy and checks that
 * each table page was given back; a walker re-checks the invariants the
 * hardware needs (no write-without-read, valid memory types, large pages
 * only where the CPU offers them) over the raw entries.
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
#include "vmx/mtrr.h"
#include "vmx/vmx_defs.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

/* Sandy Bridge EPT caps: exec-only, 4-level, WB, 2M, INVEPT; no 1G. */
#define CAP_2M 0x0000000006114141ull
#define CAP_1G (CAP_2M | EPT_CAP_PAGE_1G)
#define CAP_4K (CAP_2M & ~EPT_CAP_PAGE_2M & ~EPT_CAP_EXEC_ONLY)

struct fixture {
    struct pool pool;
    struct ept ept;
};

static struct ept *setup(struct fixture *f, uint64_t cap)
{
    memset(f, 0, sizeof(*f));
    struct ept_pager pg = {pool_alloc, pool_virt, pool_free, &f->pool};
    assert_int_equal(ept_init(&f->ept, &pg, cap), 0);
    assert_int_equal(ept_tables(&f->ept), 1);
    return &f->ept;
}

static void teardown(struct fixture *f)
{
    assert_int_equal(ept_tables(&f->ept), f->pool.allocated - f->pool.freed);
    ept_destroy(&f->ept);
    assert_int_equal(f->pool.allocated, f->pool.freed);
}

/* Raw walk: checks hardware invariants of every present entry. */
static void check_tree(const struct ept *e, const uint64_t *t, int level, bool exec_only)
{
    for (int i = 0; i < 512; i++) {
        uint64_t ent = t[i];
        unsigned r = (unsigned)(ent & 7);
        if (r == 0)
            continue; /* not present to the CPU: nothing else matters to it */
        assert_false((r & EPT_W) && !(r & EPT_R));
        if (!exec_only)
            assert_int_not_equal(r, EPT_X);
        bool leaf = level == 1 || (level < 4 && (ent & (1ull << 7)));
        if (level == 4)
            assert_int_equal(ent & (1ull << 7), 0);
        if (leaf) {
            unsigned mt = (unsigned)(ent >> 3) & 7;
            assert_true(mt == 0 || mt == 1 || mt == 4 || mt == 5 || mt == 6);
            if (level == 3)
                assert_true(e->page_1g);
            if (level == 2)
                assert_true(e->page_2m);
            uint64_t size = 1ull << (12 + 9 * (level - 1));
            assert_int_equal((ent & 0x000ffffffffff000ull) & (size - 1), 0);
        } else {
            assert_int_equal(r, EPT_RWX);
            check_tree(e, (const uint64_t *)(uintptr_t)(ent & 0x000ffffffffff000ull), level - 1,
                       exec_only);
        }
    }
}

static void check(const struct ept *e)
{
    check_tree(e, e->pml4, 4, e->exec_only);
}

static void assert_leaf(const struct ept *e, uint64_t gpa, uint64_t hpa, uint64_t size,
                        unsigned rights, unsigned memtype)
{
    struct ept_leaf l;
    assert_int_equal(ept_lookup(e, gpa, &l), 0);
    assert_int_equal(l.hpa, hpa);
    assert_int_equal(l.page_size, size);
    assert_int_equal(l.rights, rights);
    assert_int_equal(l.memtype, memtype);
}

static void assert_leaves(const struct ept *e, uint64_t n4k, uint64_t n2m, uint64_t n1g)
{
    uint64_t c[3];
    ept_count_leaves(e, c);
    assert_int_equal(c[0], n4k);
    assert_int_equal(c[1], n2m);
    assert_int_equal(c[2], n1g);
}

/* ---- tests ---------------------------------------------------------------- */

static void legal_rights_never_write_without_read(void **state)
{
    (void)state;
    for (unsigned r = 0; r < 8; r++) {
        for (int xo = 0; xo < 2; xo++) {
            bool illegal = ((r & EPT_W) && !(r & EPT_R)) || (r == EPT_X && !xo);
            int refuse = ept_legal_rights(r, xo, EPT_FIX_REFUSE);
            int drop = ept_legal_rights(r, xo, EPT_FIX_DROP);
            int add = ept_legal_rights(r, xo, EPT_FIX_ADD_READ);
            assert_int_equal(refuse, illegal ? EPT_EINVAL : (int)r);
            assert_true(drop >= 0 && add >= 0);
            for (int v = 0; v < 2; v++) {
                unsigned got = (unsigned)(v ? drop : add);
                assert_false((got & EPT_W) && !(got & EPT_R));
                if (!xo)
                    assert_int_not_equal(got, EPT_X);
            }
            assert_int_equal((unsigned)drop & ~r, 0); /* DROP never grants more */
            assert_int_equal((unsigned)add & r, r);   /* ADD_READ never grants less */
        }
    }
    assert_int_equal(ept_legal_rights(EPT_W, true, EPT_FIX_DROP), 0);
    assert_int_equal(ept_legal_rights(EPT_W | EPT_X, true, EPT_FIX_DROP), EPT_X);
    assert_int_equal(ept_legal_rights(EPT_W | EPT_X, false, EPT_FIX_DROP), 0);
    assert_int_equal(ept_legal_rights(EPT_W | EPT_X, false, EPT_FIX_ADD_READ), EPT_RWX);
    assert_int_equal(ept_legal_rights(8, true, EPT_FIX_DROP), EPT_EINVAL);
}

static void leaf_count_4g(void **state)
{
    (void)state;
    struct fixture f;
    struct ept_range all = {0, 4 * GiB, MEMTYPE_WB};

    /* With 1G pages: 4 leaves, PML4 + one PDPT. */
    struct ept *e = setup(&f, CAP_1G);
    assert_int_equal(ept_map_identity(e, &all, 1, NULL, 0), 0);
    assert_leaves(e, 0, 0, 4);
    assert_int_equal(ept_tables(e), 2);
    assert_leaf(e, 0x12345678, 0x12345678, 1 * GiB, EPT_RWX, MEMTYPE_WB);
    check(e);
    teardown(&f);

    /* Without (Sandy Bridge): 2048 x 2M, PML4 + PDPT + 4 PDs. */
    e = setup(&f, CAP_2M);
    assert_int_equal(ept_map_identity(e, &all, 1, NULL, 0), 0);
    assert_leaves(e, 0, 2048, 0);
    assert_int_equal(ept_tables(e), 6);
    assert_leaf(e, 0xfee00000, 0xfee00000, 2 * MiB, EPT_RWX, MEMTYPE_WB);
    check(e);
    teardown(&f);

    /* 4K only: 8 MiB = 2048 x 4K, PML4 + PDPT + PD + 4 PTs. */
    struct ept_range small = {0, 8 * MiB, MEMTYPE_WB};
    e = setup(&f, CAP_4K);
    assert_int_equal(ept_map_identity(e, &small, 1, NULL, 0), 0);
    assert_leaves(e, 2048, 0, 0);
    assert_int_equal(ept_tables(e), 7);
    check(e);
    teardown(&f);
}

static void eptp_format(void **state)
{
    (void)state;
    struct fixture f;
    struct ept *e = setup(&f, CAP_1G);
    uint64_t eptp = ept_eptp(e);
    assert_int_equal(eptp & ~0xfffull, e->pml4_phys);
    assert_int_equal(eptp & 7, MEMTYPE_WB);  /* WB paging structures */
    assert_int_equal((eptp >> 3) & 7, 3);    /* 4-level walk */
    assert_int_equal(eptp & (1ull << 6), 0); /* no A/D */
    teardown(&f);
}

static void split_1g_then_2m_preserves_attributes(void **state)
{
    (void)state;
    struct fixture f;
    struct ept *e = setup(&f, CAP_1G);
    /* A non-identity 1G mapping with unusual attributes, to see them carried. */
    assert_int_equal(ept_map(e, 1 * GiB, 5 * GiB, 1 * GiB, MEMTYPE_WT, EPT_R | EPT_X), 0);
    assert_leaves(e, 0, 0, 1);
    assert_int_equal(ept_tables(e), 2);

    assert_int_equal(ept_split(e, 1 * GiB + 5 * MiB, EPT_PAGE_2M), 0);
    assert_leaves(e, 0, 512, 0);
    assert_int_equal(ept_tables(e), 3);
    assert_leaf(e, 1 * GiB + 5 * MiB, 5 * GiB + 5 * MiB, 2 * MiB, EPT_R | EPT_X, MEMTYPE_WT);
    assert_leaf(e, 2 * GiB - 1, 6 * GiB - 1, 2 * MiB, EPT_R | EPT_X, MEMTYPE_WT);

    assert_int_equal(ept_split(e, 1 * GiB + 5 * MiB, EPT_PAGE_4K), 0);
    assert_leaves(e, 512, 511, 0);
    assert_int_equal(ept_tables(e), 4);
    assert_leaf(e, 1 * GiB + 5 * MiB + 123, 5 * GiB + 5 * MiB + 123, 4 * KiB, EPT_R | EPT_X,
                MEMTYPE_WT);
    assert_leaf(e, 1 * GiB + 4 * MiB, 5 * GiB + 4 * MiB, 4 * KiB, EPT_R | EPT_X, MEMTYPE_WT);
    assert_leaf(e, 1 * GiB + 6 * MiB, 5 * GiB + 6 * MiB, 2 * MiB, EPT_R | EPT_X, MEMTYPE_WT);
    /* Splitting what is already small enough does nothing. */
    assert_int_equal(ept_split(e, 1 * GiB + 5 * MiB, EPT_PAGE_4K), 0);
    assert_int_equal(ept_tables(e), 4);
    /* Unmapped: nothing to split. */
    assert_int_equal(ept_split(e, 3 * GiB, EPT_PAGE_4K), EPT_ENOENT);
    check(e);
    teardown(&f);
}

static void restrict_one_page_and_merge_back(void **state)
{
    (void)state;
    struct fixture f;
    struct ept *e = setup(&f, CAP_1G);
    struct ept_range all = {0, 4 * GiB, MEMTYPE_WB};
    assert_int_equal(ept_map_identity(e, &all, 1, NULL, 0), 0);

    uint64_t gpa = 3 * GiB + 17 * MiB + 5 * 4096 + 12;
    unsigned applied = 99;
    assert_int_equal(ept_set_rights(e, gpa, EPT_R, EPT_FIX_REFUSE, &applied), 0);
    assert_int_equal(applied, EPT_R);
    assert_leaves(e, 512, 511, 3);
    assert_int_equal(ept_tables(e), 4);
    unsigned r;
    assert_int_equal(ept_get_rights(e, gpa, &r), 0);
    assert_int_equal(r, EPT_R);
    assert_leaf(e, gpa, gpa, 4 * KiB, EPT_R, MEMTYPE_WB);
    /* Neighbours keep full rights. */
    assert_leaf(e, gpa - 4096, gpa - 4096, 4 * KiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, gpa + 4096, gpa + 4096, 4 * KiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, gpa + 2 * MiB, gpa + 2 * MiB, 2 * MiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 0, 0, 1 * GiB, EPT_RWX, MEMTYPE_WB);
    check(e);

    /* Still restricted: nothing merges. */
    assert_int_equal(ept_merge(e, gpa), 0);
    assert_int_equal(ept_tables(e), 4);

    /* Back to rwx: the 4K table joins into a 2M leaf, then the 2M table into 1G. */
    assert_int_equal(ept_set_rights(e, gpa, EPT_RWX, EPT_FIX_REFUSE, NULL), 0);
    assert_int_equal(ept_merge(e, gpa), 2);
    assert_leaves(e, 0, 0, 4);
    assert_int_equal(ept_tables(e), 2);
    assert_int_equal(f.pool.freed, 2);
    check(e);
    teardown(&f);
}

static void never_write_without_read(void **state)
{
    (void)state;
    struct fixture f;
    struct ept *e = setup(&f, CAP_2M);
    struct ept_range r0 = {0, 4 * MiB, MEMTYPE_WB};
    assert_int_equal(ept_map_identity(e, &r0, 1, NULL, 0), 0);
    unsigned r, applied;

    /* Refused: nothing changes, not even a split. */
    assert_int_equal(ept_set_rights(e, 0x3000, EPT_W, EPT_FIX_REFUSE, &applied), EPT_EINVAL);
    assert_int_equal(ept_tables(e), 3);
    assert_int_equal(ept_get_rights(e, 0x3000, &r), 0);
    assert_int_equal(r, EPT_RWX);

    /* Dropped: "-w-" becomes "---": every access still traps. */
    assert_int_equal(ept_set_rights(e, 0x3000, EPT_W, EPT_FIX_DROP, &applied), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(ept_get_rights(e, 0x3000, &r), 0);
    assert_int_equal(r, 0);
    /* The mapping survives rights of none (address and type kept). */
    assert_leaf(e, 0x3000, 0x3000, 4 * KiB, 0, MEMTYPE_WB);

    /* "-wx" with DROP on an exec-only CPU: "--x". */
    assert_int_equal(ept_set_rights(e, 0x4000, EPT_W | EPT_X, EPT_FIX_DROP, &applied), 0);
    assert_int_equal(applied, EPT_X);

    /* "-wx" with ADD_READ: "rwx". */
    assert_int_equal(ept_set_rights(e, 0x3000, EPT_W | EPT_X, EPT_FIX_ADD_READ, &applied), 0);
    assert_int_equal(applied, EPT_RWX);
    assert_leaf(e, 0x3000, 0x3000, 4 * KiB, EPT_RWX, MEMTYPE_WB);

    /* ept_map refuses W without R outright. */
    assert_int_equal(ept_map(e, 8 * MiB, 8 * MiB, 4096, MEMTYPE_WB, EPT_W), EPT_EINVAL);
    assert_int_equal(ept_map(e, 8 * MiB, 8 * MiB, 4096, MEMTYPE_WB, EPT_W | EPT_X), EPT_EINVAL);
    check(e);
    teardown(&f);

    /* Without exec-only support "--x" is illegal too. */
    e = setup(&f, CAP_4K);
    assert_int_equal(ept_map(e, 0, 0, 8192, MEMTYPE_WB, EPT_RWX), 0);
    assert_int_equal(ept_map(e, 8192, 8192, 4096, MEMTYPE_WB, EPT_X), EPT_EINVAL);
    assert_int_equal(ept_set_rights(e, 0, EPT_X, EPT_FIX_REFUSE, NULL), EPT_EINVAL);
    assert_int_equal(ept_set_rights(e, 0, EPT_W | EPT_X, EPT_FIX_DROP, &applied), 0);
    assert_int_equal(applied, 0);
    check(e);
    teardown(&f);
}

static void holes_are_never_mapped(void **state)
{
    (void)state;
    struct fixture f;
    struct ept *e = setup(&f, CAP_1G);
    struct ept_range all = {0, 4 * GiB, MEMTYPE_WB};
    struct ept_range holes[] = {
        {0x7e000000, 32 * MiB, 0},  /* hypervisor region */
        {0xfebc0000, 128 * KiB, 0}, /* NIC BAR */
        {0x1234, 10, 0},            /* unaligned: rounded out to its page */
    };
    assert_int_equal(ept_map_identity(e, &all, 1, holes, 3), 0);
    struct ept_leaf l;
    unsigned r;

    assert_int_equal(ept_lookup(e, 0x1000, &l), EPT_ENOENT);
    assert_int_equal(ept_lookup(e, 0x1fff, &l), EPT_ENOENT);
    assert_leaf(e, 0x0, 0x0, 4 * KiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 0x2000, 0x2000, 4 * KiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 0x200000, 0x200000, 2 * MiB, EPT_RWX, MEMTYPE_WB);

    assert_int_equal(ept_lookup(e, 0x7e000000, &l), EPT_ENOENT);
    assert_int_equal(ept_lookup(e, 0x7fffffff, &l), EPT_ENOENT);
    assert_leaf(e, 0x7dffffff, 0x7dffffff, 2 * MiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 0x40000000, 0x40000000, 2 * MiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 0x80000000, 0x80000000, 1 * GiB, EPT_RWX, MEMTYPE_WB);

    assert_int_equal(ept_lookup(e, 0xfebc0000, &l), EPT_ENOENT);
    assert_int_equal(ept_lookup(e, 0xfebdffff, &l), EPT_ENOENT);
    assert_leaf(e, 0xfebe0000, 0xfebe0000, 4 * KiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 0xfebbf000, 0xfebbf000, 4 * KiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 0xc0000000, 0xc0000000, 2 * MiB, EPT_RWX, MEMTYPE_WB);

    /* Rights cannot be set on a hole. */
    assert_int_equal(ept_set_rights(e, 0x7e001000, EPT_R, EPT_FIX_DROP, NULL), EPT_ENOENT);
    assert_int_equal(ept_get_rights(e, 0x7e001000, &r), EPT_ENOENT);
    assert_int_equal(r, 0);
    /* The caller may still back a hole page explicitly (e.g. a blank page). */
    assert_int_equal(ept_map(e, 0x7e000000, 0x123000, 4096, MEMTYPE_WB, EPT_R), 0);
    assert_leaf(e, 0x7e000010, 0x123010, 4 * KiB, EPT_R, MEMTYPE_WB);
    check(e);
    teardown(&f);
}

static void memory_types_follow_mtrrs(void **state)
{
    (void)state;
    /* OVMF-shaped MTRRs: WB default, 640K-1M UC, [2G, 4G) UC. */
    struct mtrr_state s;
    memset(&s, 0, sizeof(s));
    s.cap = 8 | MTRRCAP_FIX;
    s.def_type = MTRR_DEF_E | MTRR_DEF_FE | MEMTYPE_WB;
    s.phys_bits = 40;
    s.fixed[0] = s.fixed[1] = 0x0606060606060606ull;
    s.var_base[0] = 2 * GiB | MEMTYPE_UC;
    s.var_mask[0] = (((1ull << 40) - 1) & ~(2 * GiB - 1)) | MTRR_MASK_VALID;

    struct mtrr_range mr[8];
    size_t n = mtrr_split(&s, 6 * GiB, mr, 8);
    assert_int_equal(n, 5);
    struct ept_range er[8];
    for (size_t i = 0; i < n; i++)
        er[i] = (struct ept_range){mr[i].base, mr[i].len, mr[i].type};

    uint64_t caps[] = {CAP_1G, CAP_2M};
    for (int c = 0; c < 2; c++) {
        struct fixture f;
        struct ept *e = setup(&f, caps[c]);
        assert_int_equal(ept_map_identity(e, er, n, NULL, 0), 0);
        check(e);
        assert_leaf(e, 0x9f000, 0x9f000, 4 * KiB, EPT_RWX, MEMTYPE_WB);
        assert_leaf(e, 0xa0000, 0xa0000, 4 * KiB, EPT_RWX, MEMTYPE_UC);
        assert_leaf(e, 0x100000, 0x100000, 4 * KiB, EPT_RWX, MEMTYPE_WB);
        assert_leaf(e, 0x200000, 0x200000, 2 * MiB, EPT_RWX, MEMTYPE_WB);
        uint64_t big = c == 0 ? 1 * GiB : 2 * MiB;
        assert_leaf(e, 2 * GiB + 5, 2 * GiB + 5, big, EPT_RWX, MEMTYPE_UC);
        assert_leaf(e, 4 * GiB, 4 * GiB, big, EPT_RWX, MEMTYPE_WB);

        /* Every leaf lies within one MTRR type and carries that type. */
        for (uint64_t gpa = 0; gpa < 6 * GiB;) {
            struct ept_leaf l;
            assert_int_equal(ept_lookup(e, gpa, &l), 0);
            uint64_t base = gpa & ~(l.page_size - 1);
            assert_int_equal(mtrr_range_type(&s, base, l.page_size), (int)l.memtype);
            gpa = base + l.page_size;
        }
        teardown(&f);
    }
}

static void adjacent_ranges_join(void **state)
{
    (void)state;
    struct fixture f;
    struct ept *e = setup(&f, CAP_2M);
    /* Two ranges of one type meeting at 1 MiB (like two memory-map
     * entries): still one 2M page at 0.  A different type at 3M does not
     * join. */
    struct ept_range r[] = {
        {1 * MiB, 2 * MiB, MEMTYPE_WB},
        {0, 1 * MiB, MEMTYPE_WB},
        {3 * MiB, 1 * MiB, MEMTYPE_UC},
    };
    /* Out of order input: only consecutive entries join, so this one ends
     * up in 4K pages at 0 (callers pass sorted ranges, as mtrr_split gives). */
    assert_int_equal(ept_map_identity(e, r, 3, NULL, 0), 0);
    assert_leaf(e, 0, 0, 4 * KiB, EPT_RWX, MEMTYPE_WB);
    teardown(&f);

    e = setup(&f, CAP_2M);
    struct ept_range sorted[] = {
        {0, 1 * MiB, MEMTYPE_WB},
        {1 * MiB, 2 * MiB, MEMTYPE_WB},
        {3 * MiB, 1 * MiB, MEMTYPE_UC},
    };
    assert_int_equal(ept_map_identity(e, sorted, 3, NULL, 0), 0);
    assert_leaf(e, 0, 0, 2 * MiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 2 * MiB, 2 * MiB, 4 * KiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 3 * MiB, 3 * MiB, 4 * KiB, EPT_RWX, MEMTYPE_UC);
    assert_leaves(e, 256 + 256, 1, 0);
    check(e);
    teardown(&f);
}

static void remap_and_unmap_free_tables(void **state)
{
    (void)state;
    struct fixture f;
    struct ept *e = setup(&f, CAP_1G);
    assert_int_equal(ept_map(e, 0, 0, 1 * GiB, MEMTYPE_WB, EPT_RWX), 0);
    /* Overwrite one 4K in the middle: split twice, the rest keeps WB/RWX. */
    assert_int_equal(ept_map(e, 0x200000, 0x200000, 4096, MEMTYPE_UC, EPT_R), 0);
    assert_int_equal(ept_tables(e), 4);
    assert_leaf(e, 0x200000, 0x200000, 4 * KiB, EPT_R, MEMTYPE_UC);
    assert_leaf(e, 0x201000, 0x201000, 4 * KiB, EPT_RWX, MEMTYPE_WB);
    assert_leaf(e, 0x400000, 0x400000, 2 * MiB, EPT_RWX, MEMTYPE_WB);

    /* Unmapping a 2M-aligned span drops the 4K table below it. */
    assert_int_equal(ept_unmap(e, 0x200000, 2 * MiB), 0);
    assert_int_equal(ept_tables(e), 3);
    struct ept_leaf l;
    assert_int_equal(ept_lookup(e, 0x200000, &l), EPT_ENOENT);
    assert_int_equal(ept_lookup(e, 0x3fffff, &l), EPT_ENOENT);
    assert_leaf(e, 0x1fffff, 0x1fffff, 2 * MiB, EPT_RWX, MEMTYPE_WB);

    /* Mapping the whole 1G again replaces the PD by one leaf. */
    assert_int_equal(ept_map(e, 0, 0, 1 * GiB, MEMTYPE_WB, EPT_RWX), 0);
    assert_int_equal(ept_tables(e), 2);
    assert_leaves(e, 0, 0, 1);
    /* Unmapping nothing twice is harmless. */
    assert_int_equal(ept_unmap(e, 8 * GiB, 1 * GiB), 0);
    assert_int_equal(ept_unmap(e, 8 * GiB, 1 * GiB), 0);
    assert_int_equal(ept_tables(e), 2);
    check(e);
    teardown(&f);
}

static void out_of_memory_keeps_mapping_intact(void **state)
{
    (void)state;
    struct fixture f;
    struct ept *e = setup(&f, CAP_1G);
    assert_int_equal(ept_map(e, 0, 0, 1 * GiB, MEMTYPE_WB, EPT_RWX), 0);
    f.pool.limit = 3; /* PML4 + PDPT + one more: the second split fails */
    assert_int_equal(ept_set_rights(e, 0x5000, EPT_R, EPT_FIX_DROP, NULL), EPT_ENOMEM);
    /* The first split happened (2M now); nothing lost, nothing restricted. */
    for (uint64_t gpa = 0; gpa < 1 * GiB; gpa += 64 * MiB + 4096) {
        struct ept_leaf l;
        assert_int_equal(ept_lookup(e, gpa, &l), 0);
        assert_int_equal(l.hpa, gpa);
        assert_int_equal(l.rights, EPT_RWX);
    }
    assert_leaf(e, 0x5000, 0x5000, 2 * MiB, EPT_RWX, MEMTYPE_WB);
    f.pool.limit = 0;
    assert_int_equal(ept_set_rights(e, 0x5000, EPT_R, EPT_FIX_DROP, NULL), 0);
    assert_leaf(e, 0x5000, 0x5000, 4 * KiB, EPT_R, MEMTYPE_WB);
    check(e);
    teardown(&f);

    /* PML4 allocation failure is reported. */
    struct pool full = {.allocated = 1, .limit = 1};
    struct ept_pager pg = {pool_alloc, pool_virt, pool_free, &full};
    struct ept e2;
    assert_int_equal(ept_init(&e2, &pg, CAP_1G), EPT_ENOMEM);
}

static void bad_arguments(void **state)
{
    (void)state;
    struct fixture f;
    struct ept *e = setup(&f, CAP_1G);
    assert_int_equal(ept_map(e, 0x800, 0, 4096, MEMTYPE_WB, EPT_RWX), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0x800, 4096, MEMTYPE_WB, EPT_RWX), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, 100, MEMTYPE_WB, EPT_RWX), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, 4096, 2, EPT_RWX), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, 4096, 7, EPT_RWX), EPT_EINVAL);
    assert_int_equal(ept_map(e, EPT_GPA_LIMIT, 0, 4096, MEMTYPE_WB, EPT_RWX), EPT_EINVAL);
    assert_int_equal(ept_map(e, EPT_GPA_LIMIT - 4096, 0, 8192, MEMTYPE_WB, EPT_RWX), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 1ull << 52, 4096, MEMTYPE_WB, EPT_RWX), EPT_EINVAL);
    struct ept_range bad = {0x800, 4096, MEMTYPE_WB};
    assert_int_equal(ept_map_identity(e, &bad, 1, NULL, 0), EPT_EINVAL);
    assert_int_equal(ept_set_rights(e, 0, 8, EPT_FIX_DROP, NULL), EPT_EINVAL);
    assert_int_equal(ept_split(e, 0, 3 * 4096), EPT_EINVAL);
    struct ept_leaf l;
    assert_int_equal(ept_lookup(e, EPT_GPA_LIMIT, &l), EPT_ENOENT);
    assert_int_equal(ept_tables(e), 1);
    /* The top of the 48-bit space is reachable. */
    assert_int_equal(ept_map(e, EPT_GPA_LIMIT - 4096, 0x1000, 4096, MEMTYPE_UC, EPT_R), 0);
    assert_leaf(e, EPT_GPA_LIMIT - 1, 0x1fff, 4 * KiB, EPT_R, MEMTYPE_UC);
    check(e);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(legal_rights_never_write_without_read),
        cmocka_unit_test(leaf_count_4g),
        cmocka_unit_test(eptp_format),
        cmocka_unit_test(split_1g_then_2m_preserves_attributes),
        cmocka_unit_test(restrict_one_page_and_merge_back),
        cmocka_unit_test(never_write_without_read),
        cmocka_unit_test(holes_are_never_mapped),
        cmocka_unit_test(memory_types_follow_mtrrs),
        cmocka_unit_test(adjacent_ranges_join),
        cmocka_unit_test(remap_and_unmap_free_tables),
        cmocka_unit_test(out_of_memory_keeps_mapping_intact),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
