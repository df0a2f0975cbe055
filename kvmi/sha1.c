/*
 * sha1.c - SHA-1 and HMAC-SHA1 (see sha1.h).
 */
#include <string.h>

#include "sha1.h"

static uint32_t rol(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* FIPS 180-4 §6.1.2: one 512-bit block. */
static void sha1_block(struct sha1_ctx *c, const uint8_t *p)
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = be32(p + 4 * t);
    for (int t = 16; t < 80; t++)
        w[t] = rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);

    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (b & cc) | (~b & d);
            k = 0x5a827999;
        } else if (t < 40) {
            f = b ^ cc ^ d;
            k = 0x6ed9eba1;
        } else if (t < 60) {
            f = (b & cc) | (b & d) | (cc & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ cc ^ d;
            k = 0xca62c1d6;
        }
        uint32_t tmp = rol(a, 5) + f + e + k + w[t];
        e = d;
        d = cc;
        cc = rol(b, 30);
        b = a;
        a = tmp;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
}

void sha1_init(struct sha1_ctx *c)
{
    c->h[0] = 0x67452301;
    c->h[1] = 0xefcdab89;
    c->h[2] = 0x98badcfe;
    c->h[3] = 0x10325476;
    c->h[4] = 0xc3d2e1f0;
    c->len = 0;
    c->used = 0;
}

void sha1_update(struct sha1_ctx *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->len += len;
    while (len) {
        size_t n = SHA1_BLOCK_SIZE - c->used;
        if (n > len)
            n = len;
        memcpy(c->block + c->used, p, n);
        c->used += n;
        p += n;
        len -= n;
        if (c->used == SHA1_BLOCK_SIZE) {
            sha1_block(c, c->block);
            c->used = 0;
        }
    }
}

void sha1_final(struct sha1_ctx *c, uint8_t out[SHA1_DIGEST_SIZE])
{
    uint64_t bits = c->len * 8;
    uint8_t pad = 0x80;
    sha1_update(c, &pad, 1);
    pad = 0;
    while (c->used != 56)
        sha1_update(c, &pad, 1);
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(c, lenbuf, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void sha1(const void *data, size_t len, uint8_t out[SHA1_DIGEST_SIZE])
{
    struct sha1_ctx c;
    sha1_init(&c);
    sha1_update(&c, data, len);
    sha1_final(&c, out);
}

/* RFC 2104: H((K ^ opad) || H((K ^ ipad) || m)), keys longer than a block
 * are hashed first. */
void hmac_sha1(const void *key, size_t key_len, const void *msg, size_t msg_len,
               uint8_t out[SHA1_DIGEST_SIZE])
{
    uint8_t k[SHA1_BLOCK_SIZE] = {0};
    if (key_len > SHA1_BLOCK_SIZE)
        sha1(key, key_len, k);
    else
        memcpy(k, key, key_len);

    uint8_t pad[SHA1_BLOCK_SIZE], inner[SHA1_DIGEST_SIZE];
    struct sha1_ctx c;
    for (int i = 0; i < SHA1_BLOCK_SIZE; i++)
        pad[i] = k[i] ^ 0x36;
    sha1_init(&c);
    sha1_update(&c, pad, sizeof(pad));
    sha1_update(&c, msg, msg_len);
    sha1_final(&c, inner);

    for (int i = 0; i < SHA1_BLOCK_SIZE; i++)
        pad[i] = k[i] ^ 0x5c;
    sha1_init(&c);
    sha1_update(&c, pad, sizeof(pad));
    sha1_update(&c, inner, sizeof(inner));
    sha1_final(&c, out);
}
