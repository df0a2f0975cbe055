/*
 * log_ring.c - byte ring for the in-memory log (see log_ring.h).
 */
#include "log_ring.h"

struct log_ring *log_ring_init(void *mem, size_t total_bytes)
{
    if (!mem || total_bytes < sizeof(struct log_ring) + 64)
        return 0;
    struct log_ring *r = mem;
    r->magic = LOG_RING_MAGIC;
    r->cap = total_bytes - sizeof(struct log_ring);
    r->written = 0;
    return r;
}

void log_ring_write(struct log_ring *r, const char *s, size_t n)
{
    if (!r)
        return;
    /* Only the last cap bytes of a huge write can survive. */
    if (n > r->cap) {
        s += n - r->cap;
        r->written += n - r->cap;
        n = r->cap;
    }
    for (size_t i = 0; i < n; i++)
        r->data[(r->written + i) % r->cap] = s[i];
    r->written += n;
}

size_t log_ring_read(const struct log_ring *r, char *out, size_t cap)
{
    if (!r || !cap)
        return 0;
    uint64_t avail = r->written < r->cap ? r->written : r->cap;
    uint64_t start = r->written - avail;
    if (r->written > r->cap) {
        /* skip the partial first line */
        while (avail && r->data[start % r->cap] != '\n') {
            start++;
            avail--;
        }
        if (avail) {
            start++;
            avail--;
        }
    }
    size_t n = avail < cap - 1 ? (size_t)avail : cap - 1;
    /* keep the newest n bytes if the output is smaller than the ring */
    start += avail - n;
    for (size_t i = 0; i < n; i++)
        out[i] = r->data[(start + i) % r->cap];
    out[n] = '\0';
    return n;
}
