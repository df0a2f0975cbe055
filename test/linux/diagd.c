/*
 * diagd.c - the hypervisor's diagnostic line protocol (net/diag.c,
 * docs/network.md "Diagnostic service") served by a Linux process, so that
 * the host's measurement (test/emu/net_client.py, make bench-net) can be
 * run unchanged against the Linux kernel's e1000 driver and TCP stack on
 * the same emulated NIC.  Packed into the test guest's initramfs by
 * test/linux/mkguest.sh; test/linux/init.sh starts it for hvtest.net=serve.
 *
 *   diagd [PORT [IFACE]]     (defaults 7777, eth0)
 *
 * Greeting "hv-diag 1", then one command per line: ping, status, echo N,
 * sink N, source N (the same byte pattern as diag_pattern()), quit.  One
 * connection at a time; a connection that ends without quit is followed by
 * the next one; quit answers "bye" and ends the program with status 0.
 * Built static (there is no libc in the initramfs) with -std=c11.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK        65536
#define LINE_MAX_LEN 256

static const char *iface = "eth0";

/* Bytes received but not yet used: a command line may arrive together with
 * the start of the data that follows it. */
struct conn {
    int fd;
    unsigned char buf[CHUNK];
    size_t have, at;
};

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)((i * 7 + (i >> 8)) & 0xff); /* net/net_internal.h */
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

static bool say(int fd, const char *text)
{
    return send_all(fd, text, strlen(text));
}

/* Refills an empty buffer; false at the end of the connection. */
static bool fill(struct conn *c)
{
    if (c->at < c->have)
        return true;
    for (;;) {
        ssize_t k = recv(c->fd, c->buf, sizeof(c->buf), 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        c->have = (size_t)k;
        c->at = 0;
        return true;
    }
}

/* One command line without its end (\n, and a \r before it); false when the
 * connection ended first.  Overlong lines are cut, as in net/diag.c. */
static bool read_line(struct conn *c, char *line)
{
    size_t n = 0;
    for (;;) {
        if (!fill(c))
            return false;
        char ch = (char)c->buf[c->at++];
        if (ch == '\n')
            break;
        if (n < LINE_MAX_LEN - 1)
            line[n++] = ch;
    }
    if (n && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    return true;
}

static bool parse_count(const char *arg, uint64_t *out)
{
    if (!arg || !*arg)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 0);
    if (*end || errno || v > (1ull << 40))
        return false;
    *out = v;
    return true;
}

/* Takes up to n buffered or newly received bytes; returns how many (0 = the
 * connection ended). */
static size_t take(struct conn *c, uint64_t n, const unsigned char **p)
{
    if (!fill(c))
        return 0;
    size_t k = c->have - c->at;
    if (k > n)
        k = (size_t)n;
    *p = c->buf + c->at;
    c->at += k;
    return k;
}

static unsigned long long stat_of(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", iface, name);
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* Non-idle and idle CPU time of all CPUs, in ms.  Idle is /proc/stat's
 * idle + iowait (USER_HZ = 100 per second), which with NOHZ (Debian's
 * kernels) the kernel measures at every idle entry and exit; busy is the
 * elapsed time of every online CPU minus that.  The busy fields of
 * /proc/stat are not used: they are sampled at timer ticks, which on a
 * mostly halted CPU rarely land in the interrupt work of a transfer (one
 * 8 MiB sink was charged 10 ms of them, another 320 ms).  With Bochs's
 * clock: sync=none, emulated time is emulated instructions / ips, so busy
 * time x ips is the instructions Linux spent: the bench sets that against
 * the hypervisor's busy_tsc.  Only differences between two calls mean
 * anything (the clocks start at slightly different moments). */
static void cpu_times(unsigned long long *busy_ms, unsigned long long *idle_ms)
{
    unsigned long long v[5] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4]) != 5)
        memset(v, 0, sizeof(v));
    if (f)
        fclose(f);
    *idle_ms = (v[3] + v[4]) * 10; /* idle, iowait */
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned long long all =
        ((unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000) *
        (unsigned long long)(n > 0 ? n : 1);
    *busy_ms = all > *idle_ms ? all - *idle_ms : 0;
}

/* The hypervisor's status keys where Linux has the same counter (rx/tx
 * frames/bytes, errors, drops, missed, CRC), plus who answers and the CPU
 * time spent. */
static bool status(struct conn *c)
{
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    char ip[INET_ADDRSTRLEN] = "?";
    if (!getsockname(c->fd, (struct sockaddr *)&me, &len))
        inet_ntop(AF_INET, &me.sin_addr, ip, sizeof(ip));
    char mac[32] = "?", path[96];
    snprintf(path, sizeof(path), "/sys/class/net/%s/address", iface);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(mac, sizeof(mac), f))
            strcpy(mac, "?");
        mac[strcspn(mac, "\n")] = '\0';
        fclose(f);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long busy_ms, idle_ms;
    cpu_times(&busy_ms, &idle_ms);
    char out[512];
    snprintf(out, sizeof(out),
             "status peer=linux ip=%s mac=%s rx=%llu/%llu tx=%llu/%llu rx_err=%llu "
             "rx_drop=%llu hw_missed=%llu hw_crc=%llu uptime_ms=%llu cpu_busy_ms=%llu "
             "cpu_idle_ms=%llu\n",
             ip, mac, stat_of("rx_packets"), stat_of("rx_bytes"), stat_of("tx_packets"),
             stat_of("tx_bytes"), stat_of("rx_errors"), stat_of("rx_dropped"),
             stat_of("rx_missed_errors"), stat_of("rx_crc_errors"),
             (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000,
             busy_ms, idle_ms);
    return say(c->fd, out);
}

static bool echo(struct conn *c, uint64_t n)
{
    while (n) {
        const unsigned char *p;
        size_t k = take(c, n, &p);
        if (!k || !send_all(c->fd, p, k))
            return false;
        n -= k;
    }
    return true;
}

static bool sink(struct conn *c, uint64_t n)
{
    uint64_t total = n;
    while (n) {
        const unsigned char *p;
        size_t k = take(c, n, &p);
        if (!k)
            return false;
        n -= k;
    }
    char out[40];
    snprintf(out, sizeof(out), "ok %llu\n", (unsigned long long)total);
    return say(c->fd, out);
}

static bool source(struct conn *c, uint64_t n)
{
    static unsigned char chunk[CHUNK];
    uint64_t at = 0;
    while (at < n) {
        size_t k = n - at < sizeof(chunk) ? (size_t)(n - at) : sizeof(chunk);
        for (size_t i = 0; i < k; i++)
            chunk[i] = pattern(at + i);
        if (!send_all(c->fd, chunk, k))
            return false;
        at += k;
    }
    return true;
}

/* Serves one connection; true when it ended with quit. */
static bool serve(struct conn *c)
{
    char line[LINE_MAX_LEN];
    if (!say(c->fd, "hv-diag 1\n"))
        return false;
    while (read_line(c, line)) {
        char *arg = strchr(line, ' ');
        if (arg) {
            *arg++ = '\0';
            while (*arg == ' ')
                arg++;
        }
        uint64_t n;
        bool ok;
        if (!strcmp(line, "ping")) {
            ok = say(c->fd, "pong\n");
        } else if (!strcmp(line, "status")) {
            ok = status(c);
        } else if (!strcmp(line, "echo") && parse_count(arg, &n)) {
            ok = echo(c, n);
        } else if (!strcmp(line, "sink") && parse_count(arg, &n)) {
            ok = sink(c, n);
        } else if (!strcmp(line, "source") && parse_count(arg, &n)) {
            ok = source(c, n);
        } else if (!strcmp(line, "quit")) {
            say(c->fd, "bye\n");
            return true;
        } else {
            char out[128];
            snprintf(out, sizeof(out), "error unknown command '%.64s'\n", line);
            ok = say(c->fd, out);
        }
        if (!ok)
            return false;
    }
    return false;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 7777;
    if (argc > 2)
        iface = argv[2];
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "diagd: bad port '%s'\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (srv < 0 || setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(srv, (struct sockaddr *)&a, sizeof(a)) || listen(srv, 1)) {
        perror("diagd: socket");
        return 1;
    }
    printf("diagd: serving the diag protocol on TCP port %d (%s)\n", port, iface);
    fflush(stdout);
    static struct conn c;
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        int fd = accept(srv, (struct sockaddr *)&peer, &len);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            perror("diagd: accept");
            return 1;
        }
        /* Small replies go out at once, as on the hypervisor's side. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char who[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &peer.sin_addr, who, sizeof(who));
        printf("diagd: connection from %s:%d\n", who, ntohs(peer.sin_port));
        fflush(stdout);
        c.fd = fd;
        c.have = c.at = 0;
        bool quit = serve(&c);
        close(fd);
        printf("diagd: connection ended%s\n", quit ? " by quit" : "");
        fflush(stdout);
        if (quit)
            return 0;
    }
}
