/*
 * link.c - the KVMI engine on the transport stream of net/ (link.h):
 * connection events and received bytes go to the engine in the receive
 * context (service_poll), and the engine's sends become all-or-nothing
 * queue puts; kvmi_arch_send()/kvmi_arch_close() (start.c) are one-line
 * calls to net_kvmi_send()/net_kvmi_close().  Host-tested by
 * test/unit/test_net_kvmi.c.
 */
#include "kvmi/kvmi.h"
#include "kvmi/kvmi_abi.h"
#include "link.h"

static void k_up(struct net_stream *s, void *ctx)
{
    struct net_kvmi *k = ctx;
    if (kvmi_connected(k->vm) < 0)
        net_stream_close(s, false); /* the handshake could not be queued */
}

static size_t k_rx(struct net_stream *s, void *ctx, const void *data, size_t len)
{
    (void)s;
    struct net_kvmi *k = ctx;
    /* Less than len: a vCPU job queue is full; the stream offers the rest later. */
    return kvmi_rx(k->vm, data, len);
}

static void k_writable(struct net_stream *s, void *ctx)
{
    (void)s;
    struct net_kvmi *k = ctx;
    /* A message parked for a full job queue is retried even when no new
     * bytes arrive (kvmi_rx with len 0 does exactly that). */
    kvmi_rx(k->vm, NULL, 0);
}

static void k_down(struct net_stream *s, void *ctx)
{
    (void)s;
    struct net_kvmi *k = ctx;
    kvmi_disconnected(k->vm);
}

int net_kvmi_attach(struct net_kvmi *k, struct kvmi_vm *vm)
{
    k->vm = vm;
    k->h.up = k_up;
    k->h.rx = k_rx;
    k->h.writable = k_writable;
    k->h.down = k_down;
    k->h.ctx = k;
    k->s = net_transport_open(&k->h);
    return k->s ? 0 : -1;
}

int net_kvmi_send(struct net_kvmi *k, const void *msg, size_t len)
{
    if (!k->s)
        return -KVM_EFAULT;
    int r = net_stream_send(k->s, msg, len);
    if (r == 0)
        return 0;
    return r == NET_EAGAIN ? -KVM_EAGAIN : -KVM_EFAULT; /* any other: connection broken */
}

void net_kvmi_close(struct net_kvmi *k)
{
    if (k->s)
        net_stream_close(k->s, false);
}
