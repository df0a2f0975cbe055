/* Unit tests of core/fmt.c, the loader's and core's formatter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fmt.h"

/* Compares with the C library's snprintf for the conversions both support. */
#define SAME(...)                                                                                  \
    do {                                                                                           \
        char a[128], b[128];                                                                       \
        int na = fmt_sn(a, sizeof(a), __VA_ARGS__);                                                \
        int nb = snprintf(b, sizeof(b), __VA_ARGS__);                                              \
        assert_string_equal(a, b);                                                                 \
        assert_int_equal(na, nb);                                                                  \
    } while (0)

static void test_integers(void **state)
{
    (void)state;
    SAME("%d %i %u", -42, 7, 4000000000u);
    SAME("%x %X %#x %08x", 0xbeefu, 0xbeefu, 0x1fu, 0x2au);
    SAME("%llx %llu %lld", 0xffffffffffffffffull, 18446744073709551615ull, (long long)INT64_MIN);
    SAME("%zu %5d|%-5d|", (size_t)123, 42, 42);
    SAME("%016llx", 0x12345ull);
    SAME("%%%c", 'z');
}

static void test_strings(void **state)
{
    (void)state;
    SAME("[%s] [%10s] [%-6s] [%.3s] [%.*s]", "abc", "right", "left", "truncate", 2, "xyz");
    char buf[16];
    const char *volatile null = NULL; /* hidden from the format checker */
    assert_int_equal(fmt_sn(buf, sizeof(buf), "%s", null), 6);
    assert_string_equal(buf, "(null)");
}

static void test_pointer(void **state)
{
    (void)state;
    char buf[32];
    fmt_sn(buf, sizeof(buf), "%p", (void *)0x1234);
    assert_string_equal(buf, "0x1234");
}

static void test_truncation(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'X', sizeof(buf));
    int n = fmt_sn(buf, sizeof(buf), "hello %s", "world");
    assert_int_equal(n, 11);             /* full length, like snprintf */
    assert_string_equal(buf, "hello w"); /* always NUL-terminated */
    assert_int_equal(fmt_sn(NULL, 0, "%d", 12345), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_pointer),
        cmocka_unit_test(test_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
