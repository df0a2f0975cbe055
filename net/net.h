/*
 * net.h - the hypervisor's network service, as seen by the rest of the
 * core: bring-up from the boot info, the service poll every core calls in
 * root mode, and byte-stream endpoints (the KVMI transport, the diagnostic
 * service) over TCP through the dedicated NIC.
 *
 * Threading: everything that touches the NIC or lwIP runs inside
 * service_poll() under one try-lock; stream callbacks run there too.
 * net_stream_send() / net_stream_close() may be called from any core at
 * any time (they only touch the stream's send queue under its own lock).
 */
#ifndef HV_NET_H
#define HV_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct boot_info;
struct net_stream_handler;

/*
 * Finds and claims the dedicated NIC, starts its driver and lwIP (static
 * address or DHCP), and opens the transport endpoint (connect/listen) and
 * the diagnostic port from the config.  With net_selftest = yes it then
 * runs the service loop on this CPU until a diag client says "quit" (or a
 * safety limit of TSC time passes) and stops the NIC.  Logs and returns
 * quietly when there is no NIC: the hypervisor works without a network.
 * Call once, on the BSP, before any guest runs.
 */
void net_boot(struct boot_info *bi);

/* Stops the dedicated NIC (no DMA, bus mastering off) when the core refuses
 * to start after net_boot(). */
void net_abandon(void);

/*
 * S3 (the composition root's vmx_hooks.suspend/resume): net_suspend stops
 * the NIC's DMA and the clock; net_resume, on the BSP after the wake (or
 * after a sleep that did not happen), gives the NIC its PCI configuration
 * back (S3 cleared it), sets it up again on the same rings and starts the
 * clock where it stopped.  The transport's own redial then reaches the
 * introspector again.  No-ops without a network.
 */
void net_suspend(void);
void net_resume(void);

/* True once net_boot() brought a NIC up. */
bool net_up(void);

/*
 * One round of service work: NIC receive/transmit, lwIP timers, stream
 * callbacks and queued sends.  Any core in root mode may call it at any
 * time; if another core is already inside, it returns at once.
 */
void service_poll(void);

/*
 * Opens the transport endpoint the config asks for (connect = IP:PORT with
 * redial, or listen = PORT) with h as its user (the KVMI engine's glue).
 * NULL without a network.
 */
struct net_stream *net_transport_open(const struct net_stream_handler *h);

/*
 * The guest's PCI configuration accesses, performed by the hypervisor so
 * that the dedicated NIC does not exist for the guest and nothing on its
 * path can be moved (net/pci_guard.h).  net_pci_guarding(): true once
 * net_boot() brought a NIC up and set the guard.
 */
bool net_pci_guarding(void);

/* A guest access of size bytes at port (covering any byte of 0xCF8-0xCFF),
 * performed; returns what a read gives. */
uint32_t net_pci_port_access(uint16_t port, unsigned size, bool write, uint32_t val);

/* ECAM pages (addresses of 4 KiB pages, up to max into out; returns how
 * many there are, more than max if some were left out): hidden = the NIC's function in every MCFG
 * entry and alias (the guest must get a page of all ones there), else the pages of the functions
 * with protected registers (the guest reads them, its writes go to net_pci_ecam_access). */
unsigned net_pci_ecam_pages(bool hidden, uint64_t *out, unsigned max);

/* A guest access of size bytes (1, 2, 4, 8) at ECAM address gpa, performed
 * through the filter; returns what a read gives. */
uint64_t net_pci_ecam_access(uint64_t gpa, unsigned size, bool write, uint64_t val);

struct pci_dev;
/* The dedicated NIC (BARs and their sizes), NULL when there is none. */
const struct pci_dev *net_nic_dev(void);

/* ---- byte streams ------------------------------------------------------------ */

struct net_stream;

/* Callbacks of a stream's user; all run inside service_poll(). */
struct net_stream_handler {
    /* A connection is established (send the greeting here). */
    void (*up)(struct net_stream *s, void *ctx);
    /*
     * Received bytes, in order.  Returns how many it took; the rest is
     * offered again at the next poll (TCP's window closes meanwhile: this
     * is the back-pressure towards the peer).  Nothing is ever dropped.
     */
    size_t (*rx)(struct net_stream *s, void *ctx, const void *data, size_t len);
    /* Called each poll while connected (optional): room to produce output. */
    void (*writable)(struct net_stream *s, void *ctx);
    /* The connection ended (peer closed, reset, error, or local close). */
    void (*down)(struct net_stream *s, void *ctx);
    void *ctx;
};

#define NET_EAGAIN   (-11) /* no room now; nothing was queued */
#define NET_ENOTCONN (-107)
#define NET_EMSGSIZE (-90) /* larger than the whole send queue */

/* Bytes of send queue per stream, in the hypervisor region. */
#define NET_STREAM_TXQ (256 * 1024)

/* Listens on TCP port; one connection at a time (others are refused). */
struct net_stream *net_stream_listen(uint16_t port, const struct net_stream_handler *h);
/* Dials ip:port (host byte order) and redials after each end, with a
 * backoff from retry_ms doubling up to 16 x retry_ms. */
struct net_stream *net_stream_connect(uint32_t ip, uint16_t port, uint32_t retry_ms,
                                      const struct net_stream_handler *h);

/*
 * Queues len bytes for sending, all or nothing: 0, NET_EAGAIN (queue full:
 * retry after a poll), NET_ENOTCONN or NET_EMSGSIZE.  Never blocks, never
 * drops queued bytes.  Any context.
 */
int net_stream_send(struct net_stream *s, const void *data, size_t len);
/* Bytes net_stream_send() would accept now. */
size_t net_stream_room(struct net_stream *s);
/* Ends the connection: flush = send what is queued first (FIN after it),
 * otherwise reset at once.  Any context; takes effect at the next poll. */
void net_stream_close(struct net_stream *s, bool flush);
bool net_stream_connected(struct net_stream *s);

#endif
