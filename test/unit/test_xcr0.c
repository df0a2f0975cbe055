/* Unit tests of vmx/xcr0.c: the XSETBV value rules (SDM Vol. 1 13.3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmx/xcr0.h"

#define ALL 0x2ffull /* x87 SSE AVX BNDREGS BNDCSR opmask ZMM_Hi256 Hi16_ZMM PKRU */

static void rules(void **st)
{
    (void)st;
    assert_true(xcr0_valid(0x1, ALL));
    assert_true(xcr0_valid(0x3, ALL));
    assert_true(xcr0_valid(0x7, ALL));
    assert_true(xcr0_valid(0xe7, ALL));
    assert_true(xcr0_valid(0x1f, ALL));
    assert_false(xcr0_valid(0x0, ALL)); /* x87 must stay on */
    assert_false(xcr0_valid(0x2, ALL));
    assert_false(xcr0_valid(0x5, ALL));            /* AVX without SSE */
    assert_false(xcr0_valid(0x27, ALL));           /* part of AVX-512 */
    assert_false(xcr0_valid(0xe3, ALL));           /* AVX-512 without AVX */
    assert_false(xcr0_valid(0x0b, ALL));           /* BNDREGS without BNDCSR */
    assert_false(xcr0_valid(0x7, 0x3));            /* AVX not supported */
    assert_false(xcr0_valid(0x1ull << 40, ~0ull)); /* x87 missing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(rules)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
