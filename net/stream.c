/*
 * stream.c - byte-stream endpoints over lwIP TCP (see net.h): one
 * connection per endpoint, dialled (with redial backoff) or accepted.
 *
 * Receive: lwIP's pbufs are queued untouched and offered to the user until
 * taken; tcp_recved() is called only for bytes the user took, so a slow
 * user closes the peer's window instead of losing data.  Send: users on
 * any core put whole messages into a byte ring (own spinlock); the pump,
 * under the service lock, moves what TCP has room for into lwIP.
 */
#include <string.h>

#include "log.h"
#include "net_internal.h"
#include "net_io.h"
#include "spinlock.h"
#include "txring.h"

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"

#define MAX_STREAMS 2

struct net_stream {
    struct net_stream_handler h;
    bool dial;
    uint16_t port;
    uint32_t peer; /* host order */
    struct tcp_pcb *listen_pcb, *pcb;
    bool established;
    bool peer_closed;
    struct pbuf *rxq; /* received, not yet taken by the user */
    size_t rx_off;    /* bytes of rxq's first pbuf already taken */
    spinlock_t tx_lock;
    struct txring tx;
    volatile int close_req; /* 0, 1 = after flush, 2 = at once */
    uint32_t retry_ms, backoff_ms;
    uint64_t next_dial_ms;
    bool dialling;
    uint64_t sessions;
};

static struct net_stream streams[MAX_STREAMS];
static unsigned nstreams;

static struct net_stream *stream_new(const struct net_stream_handler *h)
{
    if (nstreams == MAX_STREAMS)
        return NULL;
    struct net_stream *s = &streams[nstreams];
    /* The send queue lives in the hypervisor region, from the page allocator. */
    void *q = net_alloc_pages(NET_STREAM_TXQ / 4096);
    if (!q)
        return NULL;
    memset(s, 0, sizeof(*s));
    s->h = *h;
    spin_init(&s->tx_lock);
    txring_init(&s->tx, q, NET_STREAM_TXQ);
    nstreams++;
    return s;
}

static void drop_rxq(struct net_stream *s)
{
    if (s->rxq)
        pbuf_free(s->rxq);
    s->rxq = NULL;
    s->rx_off = 0;
}

/* Forget the connection (its pcb is already gone or closed) and tell the user. */
static void conn_ended(struct net_stream *s, const char *why)
{
    bool was = s->established;
    s->pcb = NULL;
    s->established = false;
    s->peer_closed = false;
    s->close_req = 0;
    drop_rxq(s);
    spin_lock(&s->tx_lock);
    txring_reset(&s->tx); /* queued bytes belonged to the session that ended */
    spin_unlock(&s->tx_lock);
    if (was) {
        log_info("net: stream port %u: connection ended (%s)", s->port, why);
        if (s->h.down)
            s->h.down(s, s->h.ctx);
    }
    if (s->dial) {
        s->dialling = false;
        s->next_dial_ms = net_now_ms() + s->backoff_ms;
        if (!was)
            s->backoff_ms =
                s->backoff_ms * 2 > 16 * s->retry_ms ? 16 * s->retry_ms : s->backoff_ms * 2;
    }
}

static void on_err(void *arg, err_t err)
{
    /* lwIP has freed the pcb already (tcp_err contract). */
    struct net_stream *s = arg;
    conn_ended(s, err == ERR_RST    ? "reset by peer"
                  : err == ERR_ABRT ? "aborted"
                  : err == ERR_CLSD ? "closed"
                                    : "connection failed or timed out");
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct net_stream *s = arg;
    (void)pcb;
    if (err != ERR_OK) {
        if (p)
            pbuf_free(p);
        return ERR_OK;
    }
    if (!p) {
        s->peer_closed = true; /* ended once the user took what is queued */
        return ERR_OK;
    }
    if (s->rxq)
        pbuf_cat(s->rxq, p);
    else
        s->rxq = p;
    return ERR_OK;
}

static void attach(struct net_stream *s, struct tcp_pcb *pcb)
{
    s->pcb = pcb;
    s->established = true;
    s->peer_closed = false;
    s->close_req = 0;
    s->backoff_ms = s->retry_ms;
    s->sessions++;
    tcp_arg(pcb, s);
    tcp_recv(pcb, on_recv);
    tcp_err(pcb, on_err);
    tcp_nagle_disable(pcb); /* KVMI replies are small and latency-bound */
    ip_set_option(pcb, SOF_KEEPALIVE);
    spin_lock(&s->tx_lock);
    txring_reset(&s->tx);
    spin_unlock(&s->tx_lock);
    char ip[16];
    ip4addr_ntoa_r(&pcb->remote_ip, ip, sizeof(ip));
    log_info("net: stream port %u: connected to %s:%u", s->port, ip, pcb->remote_port);
    if (s->h.up)
        s->h.up(s, s->h.ctx);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct net_stream *s = arg;
    if (err != ERR_OK || !pcb)
        return ERR_VAL;
    if (s->pcb) {
        log_warn("net: port %u: refusing a second connection", s->port);
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    attach(s, pcb);
    return ERR_OK;
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct net_stream *s = arg;
    s->dialling = false;
    if (err != ERR_OK)
        return err;
    attach(s, pcb);
    return ERR_OK;
}

struct net_stream *net_stream_listen(uint16_t port, const struct net_stream_handler *h)
{
    struct net_stream *s = stream_new(h);
    if (!s)
        return NULL;
    s->port = port;
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (!pcb || tcp_bind(pcb, IP4_ADDR_ANY, port) != ERR_OK) {
        log_error("net: cannot bind TCP port %u", port);
        if (pcb)
            tcp_close(pcb);
        return NULL;
    }
    s->listen_pcb = tcp_listen_with_backlog(pcb, 1);
    if (!s->listen_pcb) {
        tcp_close(pcb);
        return NULL;
    }
    tcp_arg(s->listen_pcb, s);
    tcp_accept(s->listen_pcb, on_accept);
    log_info("net: listening on TCP port %u", port);
    return s;
}

struct net_stream *net_stream_connect(uint32_t ip, uint16_t port, uint32_t retry_ms,
                                      const struct net_stream_handler *h)
{
    struct net_stream *s = stream_new(h);
    if (!s)
        return NULL;
    s->dial = true;
    s->peer = ip;
    s->port = port;
    s->retry_ms = s->backoff_ms = retry_ms ? retry_ms : 1000;
    s->next_dial_ms = 0;
    log_info("net: will connect to %u.%u.%u.%u:%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
             ip & 255, port);
    return s;
}

int net_stream_send(struct net_stream *s, const void *data, size_t len)
{
    if (!s->established || s->close_req)
        return NET_ENOTCONN;
    if (len > NET_STREAM_TXQ)
        return NET_EMSGSIZE;
    spin_lock(&s->tx_lock);
    bool ok = txring_put(&s->tx, data, len);
    spin_unlock(&s->tx_lock);
    return ok ? 0 : NET_EAGAIN;
}

size_t net_stream_room(struct net_stream *s)
{
    if (!s->established)
        return 0;
    spin_lock(&s->tx_lock);
    size_t r = txring_room(&s->tx);
    spin_unlock(&s->tx_lock);
    return r;
}

void net_stream_close(struct net_stream *s, bool flush)
{
    int want = flush ? 1 : 2;
    if (s->close_req < want)
        s->close_req = want;
}

bool net_stream_connected(struct net_stream *s)
{
    return s->established && !s->close_req;
}

static void dial(struct net_stream *s)
{
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (!pcb)
        return;
    ip_addr_t a;
    ip_addr_set_ip4_u32(&a, lwip_htonl(s->peer));
    tcp_arg(pcb, s);
    tcp_err(pcb, on_err);
    s->dialling = true;
    if (tcp_connect(pcb, &a, s->port, on_connected) != ERR_OK) {
        tcp_abort(pcb); /* calls on_err, which schedules the next try */
    }
}

/* Hands queued receive data to the user until it stops taking. */
static void pump_rx(struct net_stream *s)
{
    while (s->rxq && s->established) {
        struct pbuf *p = s->rxq;
        size_t avail = p->len - s->rx_off;
        size_t took = avail ? s->h.rx(s, s->h.ctx, (uint8_t *)p->payload + s->rx_off, avail) : 0;
        if (!s->pcb)
            return; /* the user's callback ended the connection */
        if (took > avail)
            took = avail;
        s->rx_off += took;
        if (took)
            tcp_recved(s->pcb, (u16_t)took);
        if (s->rx_off < p->len)
            return; /* the user is full: back-pressure */
        s->rxq = p->next;
        if (s->rxq)
            pbuf_ref(s->rxq);
        pbuf_free(p);
        s->rx_off = 0;
    }
}

static void pump_tx(struct net_stream *s)
{
    bool wrote = false;
    for (;;) {
        u16_t room = tcp_sndbuf(s->pcb);
        if (room == 0 || tcp_sndqueuelen(s->pcb) >= TCP_SND_QUEUELEN - 2)
            break;
        const uint8_t *p;
        spin_lock(&s->tx_lock);
        size_t n = txring_peek(&s->tx, &p);
        spin_unlock(&s->tx_lock);
        if (n == 0)
            break;
        if (n > room)
            n = room;
        /* Only the pump consumes, so p stays valid while the lock is dropped. */
        if (tcp_write(s->pcb, p, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK)
            break;
        spin_lock(&s->tx_lock);
        txring_consume(&s->tx, n);
        spin_unlock(&s->tx_lock);
        wrote = true;
    }
    if (wrote)
        tcp_output(s->pcb);
}

static size_t queued(struct net_stream *s)
{
    spin_lock(&s->tx_lock);
    size_t n = txring_used(&s->tx);
    spin_unlock(&s->tx_lock);
    return n;
}

static void pump_one(struct net_stream *s)
{
    if (s->dial && !s->pcb && !s->dialling && netif_glue_ip() &&
        (int64_t)(net_now_ms() - s->next_dial_ms) >= 0)
        dial(s);
    if (!s->established)
        return;
    if (s->close_req == 2) {
        tcp_abort(s->pcb); /* on_err reports it */
        return;
    }
    pump_rx(s);
    if (!s->pcb)
        return;
    if (s->h.writable && !s->close_req)
        s->h.writable(s, s->h.ctx);
    pump_tx(s);
    bool drained = queued(s) == 0;
    if ((s->close_req == 1 && drained) || (s->peer_closed && !s->rxq && drained)) {
        struct tcp_pcb *pcb = s->pcb;
        tcp_arg(pcb, NULL);
        tcp_recv(pcb, NULL);
        tcp_err(pcb, NULL);
        if (tcp_close(pcb) != ERR_OK)
            tcp_abort(pcb);
        conn_ended(s, s->peer_closed ? "closed by peer" : "closed by us");
    }
}

void net_streams_pump(void)
{
    for (unsigned i = 0; i < nstreams; i++)
        pump_one(&streams[i]);
}

void net_streams_stop(void)
{
    for (unsigned i = 0; i < nstreams; i++) {
        struct net_stream *s = &streams[i];
        if (s->pcb) {
            tcp_arg(s->pcb, NULL);
            tcp_err(s->pcb, NULL);
            tcp_abort(s->pcb);
            conn_ended(s, "network stopped");
        }
    }
}
