/*
 * txring.c - byte ring of a stream's send queue (see txring.h).
 */
#include <string.h>

#include "txring.h"

void txring_init(struct txring *r, void *buf, size_t cap)
{
    r->buf = buf;
    r->cap = cap;
    r->head = r->tail = 0;
}

size_t txring_used(const struct txring *r)
{
    return (size_t)(r->head - r->tail);
}

size_t txring_room(const struct txring *r)
{
    return r->cap - txring_used(r);
}

bool txring_put(struct txring *r, const void *data, size_t len)
{
    if (len > txring_room(r))
        return false;
    size_t at = (size_t)(r->head % r->cap);
    size_t first = len < r->cap - at ? len : r->cap - at;
    memcpy(r->buf + at, data, first);
    memcpy(r->buf, (const uint8_t *)data + first, len - first);
    r->head += len;
    return true;
}

size_t txring_peek(const struct txring *r, const uint8_t **p)
{
    size_t used = txring_used(r);
    size_t at = (size_t)(r->tail % r->cap);
    *p = r->buf + at;
    return used < r->cap - at ? used : r->cap - at;
}

void txring_consume(struct txring *r, size_t n)
{
    if (n > txring_used(r))
        n = txring_used(r);
    r->tail += n;
}

void txring_reset(struct txring *r)
{
    r->tail = r->head;
}
