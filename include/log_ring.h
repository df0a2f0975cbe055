/*
 * log_ring.h - the in-memory log: a byte ring in the reserved region that
 * keeps the newest output when the serial port is absent or nobody listens.
 * Pure code (no hardware), host-tested.
 */
#ifndef HV_LOG_RING_H
#define HV_LOG_RING_H

#include <stddef.h>
#include <stdint.h>

#define LOG_RING_MAGIC 0x474e4952474f4cull /* "LOGRING" */

struct log_ring {
    uint64_t magic;
    uint64_t cap;     /* bytes in data[] */
    uint64_t written; /* bytes ever written; data[written % cap] is the next slot */
    char data[];
};

/* Sets up a ring in a buffer of total_bytes (header included). Returns NULL if too small. */
struct log_ring *log_ring_init(void *mem, size_t total_bytes);

/* Appends n bytes, overwriting the oldest when full. */
void log_ring_write(struct log_ring *r, const char *s, size_t n);

/*
 * Copies the retained text, oldest first, into out (NUL-terminated).  When
 * older text was overwritten, the copy starts after the first newline so it
 * never begins mid-line.  Returns the number of bytes copied.
 */
size_t log_ring_read(const struct log_ring *r, char *out, size_t cap);

#endif
