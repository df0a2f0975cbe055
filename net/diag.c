/*
 * diag.c - the diagnostic service: a line protocol for checking the
 * network path end to end before (and beside) the KVMI engine.  Commands,
 * one per line (docs/network.md):
 *   ping            -> "pong"
 *   status          -> "status <counters>"
 *   echo N          -> the next N bytes are sent back as they come
 *   sink N          -> the next N bytes are read and dropped, then "ok N"
 *   source N        -> N bytes of diag_pattern() follow
 *   quit            -> "bye", the connection closes, net_selftest ends
 * Uses only the stream API, so it is host-tested against a fake stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

enum { MODE_CMD, MODE_ECHO, MODE_SINK, MODE_SOURCE, MODE_QUITTING };

#define REPLY_ROOM 512 /* a command runs only when its reply surely fits */

static void reply(struct net_stream *s, const char *text)
{
    /* Cannot fail for lack of room: callers checked REPLY_ROOM first. */
    (void)net_stream_send(s, text, strlen(text));
}

static bool parse_count(const char *arg, uint64_t *out)
{
    if (!arg || !*arg)
        return false;
    char *end;
    unsigned long long v = strtoull(arg, &end, 0);
    if (*end || v > (1ull << 40))
        return false;
    *out = v;
    return true;
}

static void run_command(struct net_stream *s, struct diag *d)
{
    char *cmd = d->line, *arg = strchr(d->line, ' ');
    if (arg) {
        *arg++ = '\0';
        while (*arg == ' ')
            arg++;
    }
    char out[REPLY_ROOM];
    uint64_t n;
    if (!strcmp(cmd, "ping")) {
        reply(s, "pong\n");
    } else if (!strcmp(cmd, "status")) {
        size_t k = (size_t)snprintf(out, sizeof(out), "status ");
        k += diag_status_line(out + k, sizeof(out) - k - 1);
        out[k++] = '\n';
        out[k] = '\0';
        reply(s, out);
    } else if (!strcmp(cmd, "echo") && parse_count(arg, &n)) {
        d->mode = n ? MODE_ECHO : MODE_CMD;
        d->remaining = d->total = n;
    } else if (!strcmp(cmd, "sink") && parse_count(arg, &n)) {
        d->remaining = d->total = n;
        d->mode = MODE_SINK;
        if (!n) {
            reply(s, "ok 0\n");
            d->mode = MODE_CMD;
        }
    } else if (!strcmp(cmd, "source") && parse_count(arg, &n)) {
        d->remaining = d->total = n;
        d->pattern_at = 0;
        d->mode = n ? MODE_SOURCE : MODE_CMD;
    } else if (!strcmp(cmd, "quit")) {
        reply(s, "bye\n");
        d->mode = MODE_QUITTING;
        if (d->quit_flag)
            *d->quit_flag = true;
        net_stream_close(s, true);
    } else {
        snprintf(out, sizeof(out), "error unknown command '%.64s'\n", cmd);
        reply(s, out);
    }
}

static void d_up(struct net_stream *s, void *ctx)
{
    struct diag *d = ctx;
    d->mode = MODE_CMD;
    d->line_len = 0;
    d->remaining = 0;
    reply(s, "hv-diag 1\n");
}

static size_t d_rx(struct net_stream *s, void *ctx, const void *data, size_t len)
{
    struct diag *d = ctx;
    const char *p = data;
    size_t used = 0;
    while (used < len) {
        size_t left = len - used;
        switch (d->mode) {
        case MODE_ECHO: {
            size_t room = net_stream_room(s);
            size_t n = left < d->remaining ? left : (size_t)d->remaining;
            if (n > room)
                n = room;
            if (n == 0 || net_stream_send(s, p + used, n) != 0)
                return used; /* send queue full: take the rest later */
            used += n;
            d->remaining -= n;
            if (!d->remaining)
                d->mode = MODE_CMD;
            break;
        }
        case MODE_SINK: {
            size_t n = left < d->remaining ? left : (size_t)d->remaining;
            if (n == d->remaining && net_stream_room(s) < REPLY_ROOM)
                return used; /* the final "ok" must fit */
            used += n;
            d->remaining -= n;
            if (!d->remaining) {
                char out[40];
                snprintf(out, sizeof(out), "ok %llu\n", (unsigned long long)d->total);
                reply(s, out);
                d->mode = MODE_CMD;
            }
            break;
        }
        case MODE_SOURCE:
            return used; /* commands wait until the source transfer is done */
        case MODE_QUITTING:
            return len;
        default: {
            char c = p[used];
            if (c == '\n') {
                if (net_stream_room(s) < REPLY_ROOM)
                    return used;
                used++;
                if (d->line_len && d->line[d->line_len - 1] == '\r')
                    d->line_len--;
                d->line[d->line_len] = '\0';
                d->line_len = 0;
                run_command(s, d);
            } else {
                used++;
                if (d->line_len < sizeof(d->line) - 1)
                    d->line[d->line_len++] = c;
            }
            break;
        }
        }
    }
    return used;
}

static void d_writable(struct net_stream *s, void *ctx)
{
    struct diag *d = ctx;
    if (d->mode != MODE_SOURCE)
        return;
    uint8_t chunk[1024];
    while (d->remaining) {
        size_t n = d->remaining < sizeof(chunk) ? (size_t)d->remaining : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = diag_pattern(d->pattern_at + i);
        if (net_stream_send(s, chunk, n) != 0)
            return;
        d->pattern_at += n;
        d->remaining -= n;
    }
    d->mode = MODE_CMD;
}

static void d_down(struct net_stream *s, void *ctx)
{
    (void)s;
    struct diag *d = ctx;
    d->mode = MODE_CMD;
    d->line_len = 0;
}

void diag_handler(struct net_stream_handler *h, struct diag *d, bool *quit_flag)
{
    memset(d, 0, sizeof(*d));
    d->quit_flag = quit_flag;
    h->up = d_up;
    h->rx = d_rx;
    h->writable = d_writable;
    h->down = d_down;
    h->ctx = d;
}
