/*
 * txring.h - the send queue of a stream: a byte ring with all-or-nothing
 * puts (so one KVMI message is never split between two attempts) and
 * zero-copy peeks for the consumer.  Pure; the caller locks.
 */
#ifndef HV_NET_TXRING_H
#define HV_NET_TXRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct txring {
    uint8_t *buf;
    size_t cap;
    uint64_t head; /* bytes ever put */
    uint64_t tail; /* bytes ever consumed */
};

void txring_init(struct txring *r, void *buf, size_t cap);
size_t txring_used(const struct txring *r);
size_t txring_room(const struct txring *r);
/* All of data or nothing; false if it does not fit now. */
bool txring_put(struct txring *r, const void *data, size_t len);
/* The oldest queued bytes that are contiguous in memory; returns their count. */
size_t txring_peek(const struct txring *r, const uint8_t **p);
void txring_consume(struct txring *r, size_t n);
void txring_reset(struct txring *r);

#endif
