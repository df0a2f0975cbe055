/*
 * sha1.h - SHA-1 (FIPS 180-4) and HMAC-SHA1 (RFC 2104), written for the
 * handshake key check of the KVMI engine.  SHA-1 is what fits the 20-byte
 * cookie_hash field of the v6 handshake; HMAC keeps it sound as a MAC.
 *
 * Offers: struct sha1_ctx, sha1_init/update/final, sha1(), hmac_sha1().
 */
#ifndef KVMI_SHA1_H
#define KVMI_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_DIGEST_SIZE 20
#define SHA1_BLOCK_SIZE  64

struct sha1_ctx {
    uint32_t h[5];
    uint64_t len; /* bytes hashed so far */
    uint8_t block[SHA1_BLOCK_SIZE];
    size_t used;
};

void sha1_init(struct sha1_ctx *c);
void sha1_update(struct sha1_ctx *c, const void *data, size_t len);
void sha1_final(struct sha1_ctx *c, uint8_t out[SHA1_DIGEST_SIZE]);
void sha1(const void *data, size_t len, uint8_t out[SHA1_DIGEST_SIZE]);
void hmac_sha1(const void *key, size_t key_len, const void *msg, size_t msg_len,
               uint8_t out[SHA1_DIGEST_SIZE]);

#endif
