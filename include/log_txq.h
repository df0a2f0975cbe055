/*
 * log_txq.h - the serial port's transmit queue.  Log lines are queued under
 * the log lock (memory only, never waiting on the UART) and sent afterwards
 * by one CPU at a time without the lock, so a guest that slows or stops COM1
 * (a huge divisor, loopback, FIFO off) delays only the CPU that sends, and
 * only by a bounded wait per byte.  A line that does not fit is dropped whole
 * and counted; the next line that fits is preceded by a note saying how many
 * were dropped.  Pure code (no hardware), host-tested.
 *
 * Concurrency: one producer at a time (the caller holds the log lock) and
 * one consumer at a time (the caller holds the drain flag); head and tail
 * are free-running counters published with release/acquire.
 */
#ifndef HV_LOG_TXQ_H
#define HV_LOG_TXQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_TXQ_BYTES 8192 /* a power of two */

struct log_txq {
    uint32_t head;          /* consumer: bytes ever sent */
    uint32_t tail;          /* producer: bytes ever queued */
    uint32_t pending_drops; /* lines dropped since the last note */
    uint32_t pad;
    uint64_t dropped_lines; /* lines ever dropped */
    char data[LOG_TXQ_BYTES];
};

/* Queues one whole line (with its drop note first when lines were dropped);
 * returns false and counts the line when it does not fit. */
bool log_txq_put(struct log_txq *q, const char *s, size_t n);

/* The oldest queued bytes that are contiguous in the buffer; returns their count (0: empty). */
size_t log_txq_peek(const struct log_txq *q, const char **p);

/* Marks n bytes (at most what log_txq_peek returned) as sent. */
void log_txq_consume(struct log_txq *q, size_t n);

/* Bytes waiting. */
size_t log_txq_used(const struct log_txq *q);

#endif
