/* Unit tests of net/txring.c, the stream send queue. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "txring.h"

static void test_all_or_nothing(void **state)
{
    (void)state;
    uint8_t buf[16];
    struct txring r;
    txring_init(&r, buf, sizeof(buf));
    assert_int_equal(txring_room(&r), 16);
    assert_true(txring_put(&r, "0123456789", 10));
    assert_false(txring_put(&r, "abcdefg", 7)); /* 7 > 6 free: nothing queued */
    assert_int_equal(txring_used(&r), 10);
    assert_true(txring_put(&r, "abcdef", 6));
    assert_int_equal(txring_room(&r), 0);
    assert_false(txring_put(&r, "x", 1));
}

static void test_wraps_in_order(void **state)
{
    (void)state;
    uint8_t buf[16];
    struct txring r;
    txring_init(&r, buf, sizeof(buf));
    uint8_t out[64];
    size_t got = 0;
    uint8_t next = 0;
    /* Push a counting sequence in odd-sized pieces, drain in peeks of varying size. */
    for (int round = 0; round < 40; round++) {
        uint8_t piece[5];
        size_t len = (size_t)(round % 5) + 1;
        for (size_t i = 0; i < len; i++)
            piece[i] = next++;
        while (!txring_put(&r, piece, len)) {
            const uint8_t *p;
            size_t n = txring_peek(&r, &p);
            assert_true(n > 0);
            if (n > 3)
                n = 3;
            for (size_t i = 0; i < n; i++, got++)
                assert_int_equal(p[i], (uint8_t)got);
            txring_consume(&r, n);
        }
    }
    const uint8_t *p;
    size_t n;
    while ((n = txring_peek(&r, &p)) > 0) {
        /* a peek never crosses the end of the buffer */
        assert_true(p + n <= buf + sizeof(buf));
        memcpy(out, p, n);
        for (size_t i = 0; i < n; i++, got++)
            assert_int_equal(out[i], (uint8_t)got);
        txring_consume(&r, n);
    }
    assert_int_equal(got, next);
}

static void test_reset_and_overconsume(void **state)
{
    (void)state;
    uint8_t buf[8];
    struct txring r;
    txring_init(&r, buf, sizeof(buf));
    assert_true(txring_put(&r, "abcdef", 6));
    txring_consume(&r, 100); /* clamps */
    assert_int_equal(txring_used(&r), 0);
    assert_true(txring_put(&r, "ghijkl", 6));
    txring_reset(&r);
    assert_int_equal(txring_used(&r), 0);
    assert_int_equal(txring_room(&r), 8);
    const uint8_t *p;
    assert_int_equal(txring_peek(&r, &p), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_or_nothing),
        cmocka_unit_test(test_wraps_in_order),
        cmocka_unit_test(test_reset_and_overconsume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
