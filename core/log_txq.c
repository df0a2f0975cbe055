/*
 * log_txq.c - the serial port's transmit queue (see log_txq.h).
 */
#include "log_txq.h"
#include "fmt.h"

#define MASK (LOG_TXQ_BYTES - 1u)

size_t log_txq_used(const struct log_txq *q)
{
    uint32_t head = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
    uint32_t tail = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
    return (size_t)(tail - head);
}

static void copy_in(struct log_txq *q, uint32_t at, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        q->data[(at + (uint32_t)i) & MASK] = s[i];
}

bool log_txq_put(struct log_txq *q, const char *s, size_t n)
{
    char note[80];
    size_t nn = 0;
    if (q->pending_drops) {
        int k = fmt_sn(note, sizeof(note), "hv: log: %u line(s) dropped: serial port too slow\n",
                       q->pending_drops);
        nn = k > 0 ? (size_t)k : 0;
    }
    size_t room = LOG_TXQ_BYTES - log_txq_used(q);
    if (n + nn > room) {
        q->pending_drops++;
        q->dropped_lines++;
        return false;
    }
    uint32_t tail = q->tail;
    copy_in(q, tail, note, nn);
    copy_in(q, tail + (uint32_t)nn, s, n);
    q->pending_drops = 0;
    __atomic_store_n(&q->tail, tail + (uint32_t)(nn + n), __ATOMIC_RELEASE);
    return true;
}

size_t log_txq_peek(const struct log_txq *q, const char **p)
{
    uint32_t head = q->head;
    size_t used = (size_t)(__atomic_load_n(&q->tail, __ATOMIC_ACQUIRE) - head);
    size_t to_end = LOG_TXQ_BYTES - (head & MASK);
    *p = &q->data[head & MASK];
    return used < to_end ? used : to_end;
}

void log_txq_consume(struct log_txq *q, size_t n)
{
    __atomic_store_n(&q->head, q->head + (uint32_t)n, __ATOMIC_RELEASE);
}
