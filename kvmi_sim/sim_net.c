/*
 * sim_net.c - kvmi-sim's transport: the send and close parts of
 * kvmi_arch.h over a queue a writer thread drains into the socket, and the
 * connection loop of the main thread (dial with retry, or accept; read and
 * feed kvmi_rx()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"

/* ---- arch: transport ----------------------------------------------------
 *
 * kvmi_arch_send() is called under the engine's send spinlock, so it only
 * copies the message into txq; a writer thread makes the send() calls,
 * taking whatever has queued up since its last call.  The queue is FIFO
 * and fed under the engine's lock, so messages keep their order and never
 * interleave.  It belongs to one connection at a time (attach/detach in
 * serve()), so nothing queued for one introspector reaches the next.
 */
#define TXQ_SIZE (1u << 20)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t data_cv; /* to the writer: bytes queued, or attach/detach */
    pthread_cond_t sent_cv; /* from the writer: progress, or it left send() */
    uint64_t head;          /* next byte to send: written by the writer only */
    uint64_t tail;          /* end of the queued bytes: producers (engine lock) */
    int fd;                 /* the connection fed, -1 none (atomic) */
    bool writer_waiting;    /* atomic: the writer sleeps on data_cv */
    bool busy;              /* under mu: the writer is inside send() on fd */
    bool broken;            /* atomic: a send failed; the rest is dropped */
    uint8_t buf[TXQ_SIZE];
} txq = {.mu = PTHREAD_MUTEX_INITIALIZER,
         .data_cv = PTHREAD_COND_INITIALIZER,
         .sent_cv = PTHREAD_COND_INITIALIZER,
         .fd = -1};

void kvmi_arch_relax(struct kvmi_vm *vm)
{
    (void)vm;
    sched_yield();
}

int kvmi_arch_send(struct kvmi_vm *vm, const void *msg, size_t len)
{
    (void)vm;
    if (__atomic_load_n(&txq.fd, __ATOMIC_ACQUIRE) < 0 ||
        __atomic_load_n(&txq.broken, __ATOMIC_ACQUIRE))
        return -KVM_EFAULT;
    uint64_t tail = txq.tail;
    uint64_t head = __atomic_load_n(&txq.head, __ATOMIC_ACQUIRE);
    if (len > TXQ_SIZE - (tail - head))
        return -KVM_EAGAIN; /* nothing taken: the engine polls and retries */
    size_t off = tail % TXQ_SIZE, first = TXQ_SIZE - off;
    if (first > len)
        first = len;
    memcpy(txq.buf + off, msg, first);
    memcpy(txq.buf, (const uint8_t *)msg + first, len - first);
    /* Dekker pair with the writer's sleep check (both sequentially
     * consistent): either it sees the new tail or we see it waiting. */
    __atomic_store_n(&txq.tail, tail + len, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&txq.writer_waiting, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&txq.mu);
        pthread_cond_signal(&txq.data_cv);
        pthread_mutex_unlock(&txq.mu);
    }
    return 0;
}

void *sim_writer_thread(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&txq.mu);
        for (;;) {
            __atomic_store_n(&txq.writer_waiting, true, __ATOMIC_SEQ_CST);
            if (txq.fd >= 0 && !txq.broken &&
                __atomic_load_n(&txq.tail, __ATOMIC_SEQ_CST) != txq.head)
                break;
            pthread_cond_wait(&txq.data_cv, &txq.mu);
        }
        __atomic_store_n(&txq.writer_waiting, false, __ATOMIC_RELAXED);
        int fd = txq.fd;
        txq.busy = true;
        pthread_mutex_unlock(&txq.mu);

        /* Everything queued in one call, both sides of the ring's wrap
         * point together: a message split across two send()s can reach
         * the introspector in two pieces with a gap between them, which
         * libkvmi kvmi-v6 does not survive (it drops a partially received
         * event when it polls with KVMI_NOWAIT). */
        uint64_t head = txq.head, tail = __atomic_load_n(&txq.tail, __ATOMIC_ACQUIRE);
        size_t off = head % TXQ_SIZE, n = tail - head;
        struct iovec iov[2] = {{txq.buf + off, n}, {txq.buf, 0}};
        if (n > TXQ_SIZE - off) {
            iov[0].iov_len = TXQ_SIZE - off;
            iov[1].iov_len = n - iov[0].iov_len;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);

        pthread_mutex_lock(&txq.mu);
        txq.busy = false;
        if (r > 0) {
            __atomic_store_n(&txq.head, head + (uint64_t)r, __ATOMIC_RELEASE);
        } else if (r < 0 && errno != EINTR) {
            /* the peer is gone: make the reader see it, drop the rest */
            shutdown(fd, SHUT_RDWR);
            __atomic_store_n(&txq.broken, true, __ATOMIC_RELEASE);
        }
        pthread_cond_broadcast(&txq.sent_cv);
        pthread_mutex_unlock(&txq.mu);
    }
    return NULL;
}

/* A new connection: the engine is idle, so nothing is being queued. */
static void txq_attach(int fd)
{
    pthread_mutex_lock(&txq.mu);
    txq.head = txq.tail;
    __atomic_store_n(&txq.broken, false, __ATOMIC_RELEASE);
    __atomic_store_n(&txq.fd, fd, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&txq.mu);
}

/* The connection ended (kvmi_disconnected() has run, so nothing more is
 * queued): deliver what is queued if the peer still reads, within a bound,
 * then cut the link and wait until the writer has left send() on fd. */
static void txq_detach(int fd)
{
    pthread_mutex_lock(&txq.mu);
    for (unsigned i = 0; i < 200 && !txq.broken && txq.head != txq.tail; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&txq.sent_cv, &txq.mu, &ts);
    }
    __atomic_store_n(&txq.fd, -1, __ATOMIC_RELEASE);
    shutdown(fd, SHUT_RDWR); /* ends a send() blocked on a peer that stopped reading */
    while (txq.busy)
        pthread_cond_wait(&txq.sent_cv, &txq.mu);
    txq.head = txq.tail;
    pthread_mutex_unlock(&txq.mu);
}

void kvmi_arch_close(struct kvmi_vm *vm)
{
    (void)vm;
    /* Stop reading only: the reader sees the end and runs the end of
     * introspection, and txq_detach() then sends what the engine queued
     * before the fatal error (an error reply, say) ahead of the FIN. */
    pthread_mutex_lock(&g_sim.fd_mu);
    if (g_sim.fd >= 0)
        shutdown(g_sim.fd, SHUT_RD);
    pthread_mutex_unlock(&g_sim.fd_mu);
}

/* ---- connection loop ------------------------------------------------------- */

static int dial(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(opt.host, opt.port, &hints, &res))
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, 0);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int listen_on(const char *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(port)),
                             .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)) {
        perror("kvmi-sim: listen");
        exit(2);
    }
    return fd;
}

static void serve(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pthread_mutex_lock(&g_sim.fd_mu);
    g_sim.fd = fd;
    pthread_mutex_unlock(&g_sim.fd_mu);
    txq_attach(fd);

    if (kvmi_connected(&g_sim.vm) == 0) {
        static uint8_t buf[65536];
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                break;
            size_t off = 0;
            while (off < (size_t)n) {
                size_t used = kvmi_rx(&g_sim.vm, buf + off, (size_t)n - off);
                off += used;
                if (off < (size_t)n) {
                    /* a vCPU queue is full: back-pressure, let it drain */
                    struct timespec ts = {0, 200000};
                    nanosleep(&ts, NULL);
                }
            }
        }
    }
    kvmi_disconnected(&g_sim.vm);
    txq_detach(fd);
    pthread_mutex_lock(&g_sim.fd_mu);
    g_sim.fd = -1;
    close(fd);
    pthread_mutex_unlock(&g_sim.fd_mu);
    __atomic_add_fetch(&g_conn_id, 1, __ATOMIC_ACQ_REL);
    sim_log("connection closed");
}

void sim_connection_loop(void)
{
    bool ready = false;
    if (opt.listen) {
        int lfd = listen_on(opt.port);
        sim_log("listening on port %s", opt.port);
        sim_log("ready");
        for (;;) {
            int fd = accept(lfd, NULL, NULL);
            if (fd < 0)
                continue;
            sim_log("introspector connected");
            serve(fd);
        }
    }
    for (;;) {
        while (__atomic_load_n(&g_exiting, __ATOMIC_ACQUIRE))
            pause(); /* the signal thread is about to exit(0) */
        int fd = dial();
        if (fd >= 0) {
            sim_log("connected to %s:%s", opt.host, opt.port);
            if (!ready) {
                sim_log("ready");
                ready = true;
            }
            serve(fd);
        }
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
    }
}
