/* Unit tests of core/log_txq.c, the serial port's transmit queue. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "log_txq.h"

static struct log_txq q;

static void reset(void)
{
    memset(&q, 0, sizeof(q));
}

/* Everything queued, as the UART would get it. */
static size_t drain_all(char *out, size_t cap)
{
    size_t got = 0;
    for (;;) {
        const char *p;
        size_t n = log_txq_peek(&q, &p);
        if (!n)
            break;
        assert_true(got + n <= cap);
        memcpy(out + got, p, n);
        got += n;
        log_txq_consume(&q, n);
    }
    out[got] = '\0';
    return got;
}

static void test_lines_in_order(void **state)
{
    (void)state;
    reset();
    char out[64];
    assert_int_equal(log_txq_used(&q), 0);
    assert_true(log_txq_put(&q, "one\n", 4));
    assert_true(log_txq_put(&q, "two\n", 4));
    assert_int_equal(log_txq_used(&q), 8);
    assert_int_equal(drain_all(out, sizeof(out)), 8);
    assert_string_equal(out, "one\ntwo\n");
    assert_int_equal(log_txq_used(&q), 0);
}

/* A stalled UART: the queue fills, later lines are dropped whole and counted,
 * and the next line that fits is preceded by the count. */
static void test_full_drops_whole_lines_and_says_so(void **state)
{
    (void)state;
    reset();
    char line[100];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    unsigned fit = 0;
    while (log_txq_put(&q, line, sizeof(line)))
        fit++;
    assert_int_equal(fit, LOG_TXQ_BYTES / sizeof(line)); /* 81 lines, 92 bytes left */
    assert_false(log_txq_put(&q, line, sizeof(line)));
    assert_int_equal(q.dropped_lines, 2); /* the one that ended the loop and this one */
    assert_int_equal(q.pending_drops, 2);
    assert_int_equal(log_txq_used(&q), fit * sizeof(line));
    /* 92 bytes hold the note (51) and a short line */
    assert_true(log_txq_put(&q, "after\n", 6));
    assert_int_equal(q.pending_drops, 0);
    assert_int_equal(q.dropped_lines, 2); /* the total stays */
    static char out[LOG_TXQ_BYTES + 1];
    size_t got = drain_all(out, sizeof(out) - 1);
    const char *tail = "xx\nhv: log: 2 line(s) dropped: serial port too slow\nafter\n";
    size_t nl = strlen(tail);
    assert_int_equal(got, fit * sizeof(line) + nl - 3);
    assert_memory_equal(out + got - nl, tail, nl);
}

/* The note and the line go in together or not at all. */
static void test_note_needs_room_too(void **state)
{
    (void)state;
    reset();
    static char big[LOG_TXQ_BYTES];
    memset(big, 'y', sizeof(big));
    assert_true(log_txq_put(&q, big, LOG_TXQ_BYTES - 10));
    assert_false(log_txq_put(&q, "0123456789A\n", 12)); /* 12 > 10 */
    assert_int_equal(q.pending_drops, 1);
    log_txq_consume(&q, 20); /* 30 free: the line fits, line + note do not */
    assert_false(log_txq_put(&q, "0123456789A\n", 12));
    assert_int_equal(q.pending_drops, 2);
    assert_int_equal(q.dropped_lines, 2);
    assert_int_equal(log_txq_used(&q), LOG_TXQ_BYTES - 30);
}

/* Lines wrap around the end of the buffer and come out whole, in two peeks. */
static void test_wraps(void **state)
{
    (void)state;
    reset();
    static char fill[LOG_TXQ_BYTES - 3];
    memset(fill, 'z', sizeof(fill));
    assert_true(log_txq_put(&q, fill, sizeof(fill)));
    const char *p;
    assert_int_equal(log_txq_peek(&q, &p), sizeof(fill));
    log_txq_consume(&q, sizeof(fill));
    assert_true(log_txq_put(&q, "wrapped\n", 8));
    assert_int_equal(log_txq_peek(&q, &p), 3); /* up to the end of the buffer */
    assert_memory_equal(p, "wra", 3);
    log_txq_consume(&q, 3);
    assert_int_equal(log_txq_peek(&q, &p), 5);
    assert_memory_equal(p, "pped\n", 5);
    log_txq_consume(&q, 5);
    assert_int_equal(log_txq_used(&q), 0);
}

/* The free-running counters survive their own wrap at 2^32. */
static void test_counter_wrap(void **state)
{
    (void)state;
    reset();
    q.head = q.tail = 0xfffffffcu;
    assert_true(log_txq_put(&q, "abcdefgh\n", 9));
    assert_int_equal(log_txq_used(&q), 9);
    char out[32];
    assert_int_equal(drain_all(out, sizeof(out)), 9);
    assert_string_equal(out, "abcdefgh\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_in_order),
        cmocka_unit_test(test_full_drops_whole_lines_and_says_so),
        cmocka_unit_test(test_note_needs_room_too),
        cmocka_unit_test(test_wraps),
        cmocka_unit_test(test_counter_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
