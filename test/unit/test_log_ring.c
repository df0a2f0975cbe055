/* Unit tests of core/log_ring.c, the in-memory log. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "log_ring.h"

static _Alignas(8) char mem[sizeof(struct log_ring) + 64];

static void test_too_small(void **state)
{
    (void)state;
    assert_null(log_ring_init(mem, sizeof(struct log_ring) + 10));
    assert_null(log_ring_init(NULL, 4096));
}

static void test_keeps_order(void **state)
{
    (void)state;
    struct log_ring *r = log_ring_init(mem, sizeof(mem));
    assert_non_null(r);
    char out[128];
    assert_int_equal(log_ring_read(r, out, sizeof(out)), 0);
    log_ring_write(r, "one\n", 4);
    log_ring_write(r, "two\n", 4);
    assert_int_equal(log_ring_read(r, out, sizeof(out)), 8);
    assert_string_equal(out, "one\ntwo\n");
}

static void test_wraps_at_line_boundary(void **state)
{
    (void)state;
    struct log_ring *r = log_ring_init(mem, sizeof(mem));
    char line[32], out[128];
    for (int i = 0; i < 20; i++) {
        int n = snprintf(line, sizeof(line), "line %02d\n", i); /* 8 bytes each */
        log_ring_write(r, line, (size_t)n);
    }
    size_t n = log_ring_read(r, out, sizeof(out));
    /* 64 bytes kept = the last 8 lines exactly; no partial first line */
    assert_int_equal(n, 56); /* the oldest kept line is cut, so it is dropped */
    assert_memory_equal(out, "line 13\n", 8);
    assert_memory_equal(out + n - 8, "line 19\n", 8);
}

static void test_huge_write_keeps_tail(void **state)
{
    (void)state;
    struct log_ring *r = log_ring_init(mem, sizeof(mem));
    char big[200];
    for (int i = 0; i < 200; i++)
        big[i] = (char)('a' + i % 26);
    big[150] = '\n';
    log_ring_write(r, big, sizeof(big));
    assert_int_equal(r->written, 200);
    char out[128];
    size_t n = log_ring_read(r, out, sizeof(out));
    assert_int_equal(n, 49); /* after the newline at 150 */
    assert_memory_equal(out, big + 151, 49);
}

static void test_small_output_buffer(void **state)
{
    (void)state;
    struct log_ring *r = log_ring_init(mem, sizeof(mem));
    log_ring_write(r, "abcdefgh\n", 9);
    char out[5];
    assert_int_equal(log_ring_read(r, out, sizeof(out)), 4);
    assert_string_equal(out, "fgh\n"); /* the newest bytes */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_too_small),
        cmocka_unit_test(test_keeps_order),
        cmocka_unit_test(test_wraps_at_line_boundary),
        cmocka_unit_test(test_huge_write_keeps_tail),
        cmocka_unit_test(test_small_output_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
