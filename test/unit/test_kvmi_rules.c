/*
 * Unit tests of vmx/kvmi_rules.c: the pure rules of the bare-metal KVMI arch
 * (segment layout, MSR bitmap bit, exception error codes, PF access, the
 * descriptor of a descriptor-table exit, the introspector's rights table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kvmi_hv/rules.h"

static void segments(void **st)
{
    (void)st;
    struct kvm_segment s;
    /* 64-bit code: type 0xb, S, P, L, G (AR 0xa09b) */
    kvmi_seg_from_vmcs(&s, 0x38, 0, 0xffffffff, 0xa09b);
    assert_int_equal(s.selector, 0x38);
    assert_int_equal(s.limit, 0xffffffffu);
    assert_int_equal(s.type, 0xb);
    assert_int_equal(s.s, 1);
    assert_int_equal(s.dpl, 0);
    assert_int_equal(s.present, 1);
    assert_int_equal(s.l, 1);
    assert_int_equal(s.db, 0);
    assert_int_equal(s.g, 1);
    assert_int_equal(s.avl, 0);
    assert_int_equal(s.unusable, 0);
    /* ring-3 data with AVL and D/B (AR 0xd0f3) */
    kvmi_seg_from_vmcs(&s, 0x2b, 0x1000, 0xfffff, 0xd0f3);
    assert_int_equal(s.base, 0x1000);
    assert_int_equal(s.type, 3);
    assert_int_equal(s.dpl, 3);
    assert_int_equal(s.avl, 1);
    assert_int_equal(s.db, 1);
    assert_int_equal(s.l, 0);
    /* unusable LDTR: bit 16 */
    kvmi_seg_from_vmcs(&s, 0, 0, 0, 0x10000);
    assert_int_equal(s.unusable, 1);
    assert_int_equal(s.present, 0);
    assert_int_equal(s.padding, 0);
}

static void msr_bits(void **st)
{
    (void)st;
    unsigned byte;
    uint8_t bit;
    assert_int_equal(kvmi_msr_write_bit(0x174, &byte, &bit), 0);
    assert_int_equal(byte, 2048 + 0x174 / 8);
    assert_int_equal(bit, 1u << (0x174 % 8));
    assert_int_equal(kvmi_msr_write_bit(0xc0000081, &byte, &bit), 0);
    assert_int_equal(byte, 3072 + 0x81 / 8);
    assert_int_equal(bit, 1u << 1);
    assert_int_equal(kvmi_msr_write_bit(0x1fff, &byte, &bit), 0);
    assert_int_equal(byte, 2048 + 1023);
    assert_int_equal(kvmi_msr_write_bit(0xc0001fff, &byte, &bit), 0);
    assert_int_equal(byte, 4095);
    assert_int_equal(kvmi_msr_write_bit(0x2000, &byte, &bit), -1);
    assert_int_equal(kvmi_msr_write_bit(0xc0002000, &byte, &bit), -1);
    assert_int_equal(kvmi_msr_write_bit(0x40000000, &byte, &bit), -1);
}

static void error_codes(void **st)
{
    (void)st;
    static const unsigned with[] = {8, 10, 11, 12, 13, 14, 17, 21};
    unsigned n = 0;
    for (unsigned v = 0; v < 32; v++) {
        bool want = false;
        for (unsigned i = 0; i < sizeof(with) / sizeof(with[0]); i++)
            want |= with[i] == v;
        assert_int_equal(kvmi_exc_has_errcode(v, true), want);
        assert_false(kvmi_exc_has_errcode(v, false)); /* real mode: never */
        n += want;
    }
    assert_int_equal(n, 8);
}

static void pf_access(void **st)
{
    (void)st;
    assert_int_equal(kvmi_pf_access(1), KVMI_PAGE_ACCESS_R);
    assert_int_equal(kvmi_pf_access(2), KVMI_PAGE_ACCESS_W);
    assert_int_equal(kvmi_pf_access(3), KVMI_PAGE_ACCESS_W); /* read-modify-write: the write */
    assert_int_equal(kvmi_pf_access(4), KVMI_PAGE_ACCESS_X);
    assert_int_equal(kvmi_pf_access(0x1 | 0x8 | 0x20),
                     KVMI_PAGE_ACCESS_R); /* rights bits ignored */
}

static void descriptors(void **st)
{
    (void)st;
    uint8_t d;
    bool w;
    static const struct {
        unsigned reason, ident;
        uint8_t desc;
        bool write;
    } cases[] = {
        {46, 0, KVMI_DESC_GDTR, false}, {46, 1, KVMI_DESC_IDTR, false},
        {46, 2, KVMI_DESC_GDTR, true},  {46, 3, KVMI_DESC_IDTR, true},
        {47, 0, KVMI_DESC_LDTR, false}, {47, 1, KVMI_DESC_TR, false},
        {47, 2, KVMI_DESC_LDTR, true},  {47, 3, KVMI_DESC_TR, true},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* other instruction-information bits must not matter */
        kvmi_desc_of_exit(cases[i].reason, (cases[i].ident << 28) | 0x0fffffffu | (3u << 30), &d,
                          &w);
        assert_int_equal(d, cases[i].desc);
        assert_int_equal(w, cases[i].write);
    }
}

static void rights_table(void **st)
{
    (void)st;
    struct kvmi_rights_entry store[8];
    struct kvmi_rights t;
    kvmi_rights_init(&t, store, 8);
    assert_int_equal(kvmi_rights_get(&t, 0x1234), KVMI_PAGE_ACCESS_RWX);
    assert_null(kvmi_rights_slot(&t, 0x1234, false));
    struct kvmi_rights_entry *e = kvmi_rights_slot(&t, 0x1234, true);
    assert_non_null(e);
    assert_int_equal(e->access, KVMI_PAGE_ACCESS_RWX); /* created untracked */
    e->access = KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X;
    assert_int_equal(kvmi_rights_get(&t, 0x1234), 5);
    assert_ptr_equal(kvmi_rights_slot(&t, 0x1234, true), e); /* found, not recreated */
    /* gfn 0 is a valid page (gfn_plus1 keeps it apart from empty) */
    kvmi_rights_slot(&t, 0, true)->access = 1;
    assert_int_equal(kvmi_rights_get(&t, 0), 1);
    /* at most half full: two more fit, the fifth does not */
    assert_non_null(kvmi_rights_slot(&t, 77, true));
    assert_non_null(kvmi_rights_slot(&t, 78, true));
    assert_int_equal(t.used, 4);
    assert_null(kvmi_rights_slot(&t, 79, true));
    assert_int_equal(kvmi_rights_get(&t, 79), KVMI_PAGE_ACCESS_RWX);
    /* earlier entries are still found */
    assert_int_equal(kvmi_rights_get(&t, 0x1234), 5);
    assert_int_equal(kvmi_rights_get(&t, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(segments),  cmocka_unit_test(msr_bits),    cmocka_unit_test(error_codes),
        cmocka_unit_test(pf_access), cmocka_unit_test(descriptors), cmocka_unit_test(rights_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
