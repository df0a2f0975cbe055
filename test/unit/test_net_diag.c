/*
 * Unit tests of net/diag.c, the diagnostic service, against a fake stream
 * whose send queue is a small txring (so back-pressure is exercised).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "net_internal.h"
#include "txring.h"

struct net_stream {
    struct txring q;
    uint8_t buf[2048];
    int closed; /* 1 = flush, 2 = abort */
};

static struct net_stream fake;

int net_stream_send(struct net_stream *s, const void *data, size_t len)
{
    if (s->closed)
        return NET_ENOTCONN;
    return txring_put(&s->q, data, len) ? 0 : NET_EAGAIN;
}

size_t net_stream_room(struct net_stream *s)
{
    return txring_room(&s->q);
}

void net_stream_close(struct net_stream *s, bool flush)
{
    s->closed = flush ? 1 : 2;
}

size_t diag_status_line(char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "ip=10.0.2.15 fake=1");
}

static struct net_stream_handler h;
static struct diag d;
static bool quit;
static char out[1 << 16];
static size_t out_len;

/* Drains what the service queued, as the pump would. */
static void drain(void)
{
    const uint8_t *p;
    size_t n;
    while ((n = txring_peek(&fake.q, &p)) > 0) {
        assert_true(out_len + n < sizeof(out));
        memcpy(out + out_len, p, n);
        out_len += n;
        txring_consume(&fake.q, n);
    }
    out[out_len] = '\0';
}

/* Feeds all of text, draining between partial takes; returns how many rounds it took. */
static int feed(const void *data, size_t len)
{
    int rounds = 0;
    size_t off = 0;
    while (off < len) {
        off += h.rx(&fake, h.ctx, (const uint8_t *)data + off, len - off);
        if (h.writable)
            h.writable(&fake, h.ctx);
        drain();
        assert_true(++rounds < 10000);
    }
    return rounds;
}

static int setup(void **state)
{
    (void)state;
    memset(&fake, 0, sizeof(fake));
    txring_init(&fake.q, fake.buf, sizeof(fake.buf));
    quit = false;
    out_len = 0;
    diag_handler(&h, &d, &quit);
    h.up(&fake, h.ctx);
    drain();
    return 0;
}

static void test_greeting_ping_status(void **state)
{
    (void)state;
    assert_string_equal(out, "hv-diag 1\n");
    out_len = 0;
    feed("ping\nstatus\r\nbogus cmd\n", 23);
    assert_string_equal(out, "pong\nstatus ip=10.0.2.15 fake=1\nerror unknown command 'bogus'\n");
}

static void test_echo_with_back_pressure(void **state)
{
    (void)state;
    out_len = 0;
    static uint8_t data[20000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13 + 5);
    char cmd[32];
    int k = snprintf(cmd, sizeof(cmd), "echo %zu\n", sizeof(data));
    feed(cmd, (size_t)k);
    /* The queue holds 2048 bytes: 20000 must take many rounds and lose nothing. */
    int rounds = feed(data, sizeof(data));
    assert_true(rounds >= 9);
    assert_int_equal(out_len, sizeof(data));
    assert_memory_equal(out, data, sizeof(data));
    /* back in command mode */
    out_len = 0;
    feed("ping\n", 5);
    assert_string_equal(out, "pong\n");
}

static void test_sink_and_source(void **state)
{
    (void)state;
    out_len = 0;
    feed("sink 5000\n", 10);
    static uint8_t junk[5000];
    memset(junk, 'p', sizeof(junk)); /* looks like commands if misparsed */
    feed(junk, sizeof(junk));
    assert_string_equal(out, "ok 5000\n");

    out_len = 0;
    h.rx(&fake, h.ctx, "source 10000\nping\n", 18);
    for (int i = 0; i < 100 && out_len < 10000; i++) {
        h.writable(&fake, h.ctx);
        drain();
    }
    assert_int_equal(out_len, 10000);
    for (size_t i = 0; i < 10000; i++)
        assert_int_equal((uint8_t)out[i], diag_pattern(i));
    /* the command after "source" waited for the transfer, then ran */
    out_len = 0;
    feed("ping\n", 5);
    assert_string_equal(out, "pong\n");
}

static void test_quit_closes_after_flush(void **state)
{
    (void)state;
    out_len = 0;
    assert_false(quit);
    feed("quit\nping\n", 10);
    assert_true(quit);
    assert_int_equal(fake.closed, 1);
    assert_string_equal(out, "bye\n");
}

static void test_bad_counts_and_long_lines(void **state)
{
    (void)state;
    out_len = 0;
    feed("echo\necho x1\nsink -3\n", 21);
    assert_non_null(strstr(out, "unknown command 'echo'"));
    assert_int_equal(strlen(out), 3 * strlen("error unknown command 'echo'\n") + 0);
    out_len = 0;
    char line[400];
    memset(line, 'z', sizeof(line));
    line[sizeof(line) - 1] = '\n';
    feed(line, sizeof(line)); /* longer than the line buffer: truncated, not overflowed */
    assert_non_null(strstr(out, "error unknown command 'zzzz"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_greeting_ping_status, setup),
        cmocka_unit_test_setup(test_echo_with_back_pressure, setup),
        cmocka_unit_test_setup(test_sink_and_source, setup),
        cmocka_unit_test_setup(test_quit_closes_after_flush, setup),
        cmocka_unit_test_setup(test_bad_counts_and_long_lines, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
