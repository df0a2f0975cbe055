/*
 * test_kvmi_sha1.c - SHA-1 against FIPS 180 examples and HMAC-SHA1 against
 * RFC 2202 test cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../kvmi/sha1.h"

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < SHA1_DIGEST_SIZE; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void check(const void *msg, size_t len, const char *want)
{
    uint8_t d[SHA1_DIGEST_SIZE];
    char h[41];
    sha1(msg, len, d);
    hex(d, h);
    assert_string_equal(h, want);
}

static void test_sha1_vectors(void **state)
{
    (void)state;
    check("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    check("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check(m448, strlen(m448), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

static void test_sha1_million_a_in_pieces(void **state)
{
    (void)state;
    struct sha1_ctx c;
    uint8_t chunk[1001], d[SHA1_DIGEST_SIZE];
    char h[41];
    memset(chunk, 'a', sizeof(chunk));
    sha1_init(&c);
    for (int i = 0; i < 1000; i++)
        sha1_update(&c, chunk, i % 2 ? 999 : 1001); /* uneven pieces, 1e6 total */
    sha1_final(&c, d);
    hex(d, h);
    assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

static void test_hmac_rfc2202(void **state)
{
    (void)state;
    uint8_t d[SHA1_DIGEST_SIZE];
    char h[41];
    uint8_t k1[20];
    memset(k1, 0x0b, sizeof(k1));
    hmac_sha1(k1, sizeof(k1), "Hi There", 8, d);
    hex(d, h);
    assert_string_equal(h, "b617318655057264e28bc0b6fb378c8ef146be00");

    hmac_sha1("Jefe", 4, "what do ya want for nothing?", 28, d);
    hex(d, h);
    assert_string_equal(h, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");

    uint8_t k6[80];
    memset(k6, 0xaa, sizeof(k6)); /* longer than a block: hashed first */
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    hmac_sha1(k6, sizeof(k6), m6, strlen(m6), d);
    hex(d, h);
    assert_string_equal(h, "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_vectors),
        cmocka_unit_test(test_sha1_million_a_in_pieces),
        cmocka_unit_test(test_hmac_rfc2202),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
