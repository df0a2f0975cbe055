/*
 * link.h - the KVMI engine on the transport stream of net/ (link.c).
 *
 * Offers: struct net_kvmi and net_kvmi_attach/send/close, which the
 * binding's kvmi_arch_send()/kvmi_arch_close() call.  Connection events and
 * received bytes reach the engine in the receive context (service_poll()).
 */
#ifndef HV_KVMI_HV_LINK_H
#define HV_KVMI_HV_LINK_H

#include <stdbool.h>
#include <stddef.h>

#include "net/net.h"

struct kvmi_vm;
struct net_kvmi {
    struct kvmi_vm *vm;
    struct net_stream *s;
    struct net_stream_handler h;
};

/* Opens the configured transport with the engine as its user: up ->
 * kvmi_connected(), bytes -> kvmi_rx() (partial takes are retried), end ->
 * kvmi_disconnected().  0, or -1 without a network. */
int net_kvmi_attach(struct net_kvmi *k, struct kvmi_vm *vm);
/* For kvmi_arch_send(): 0, -KVM_EAGAIN (nothing queued), or another
 * negative code when the connection is broken. */
int net_kvmi_send(struct net_kvmi *k, const void *msg, size_t len);
/* For kvmi_arch_close(): reset the connection at the next poll. */
void net_kvmi_close(struct net_kvmi *k);

#endif
