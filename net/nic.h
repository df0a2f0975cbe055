/*
 * nic.h - what a NIC driver offers the network personality (net/netif.c):
 * a small operations table, so the lwIP glue never sees registers and a
 * second driver (virtio-net, igb) plugs in beside e1000.  The shape follows
 * BitVisor's split of driver and netapi: the driver moves whole Ethernet
 * frames in and out of its DMA rings; the personality owns protocols.
 *
 * All calls are made with the service lock held (one caller at a time);
 * drivers are polled, never interrupt driven.
 */
#ifndef HV_NIC_H
#define HV_NIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NIC_MAX_FRAME 1514 /* Ethernet frame without FCS, no jumbo frames */

struct nic_stats {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
    uint64_t rx_errors;  /* frames the device flagged bad, or not whole (no EOP) */
    uint64_t rx_dropped; /* frames we received but the stack had no buffer for */
    uint64_t tx_busy;    /* sends refused because the TX ring was full */
    uint64_t hw_missed;  /* MPC: frames the device dropped, no descriptor free */
    uint64_t hw_no_buf;  /* RNBC: times the device found the RX ring empty */
    uint64_t hw_crc;     /* CRCERRS */
};

struct nic;

struct nic_ops {
    const char *name;
    /* Next received frame (in a DMA buffer) or NULL; valid until rx_release(). */
    const void *(*rx_peek)(struct nic *n, size_t *len);
    void (*rx_release)(struct nic *n);
    /* A TX buffer of NIC_MAX_FRAME bytes for the next frame, NULL if the ring is full. */
    void *(*tx_buf)(struct nic *n);
    /* Hands the frame written into the last tx_buf() to the device. */
    void (*tx_commit)(struct nic *n, size_t len);
    bool (*link_up)(struct nic *n);
    /* Folds the device's clear-on-read counters into n->stats. */
    void (*update_stats)(struct nic *n);
    /* Stops DMA (reset); the device is left quiet for whoever comes next. */
    void (*stop)(struct nic *n);
    /* Sets the device up again on the same rings (after S3); false if it does not come back. */
    bool (*restart)(struct nic *n);
};

struct nic {
    const struct nic_ops *ops;
    uint8_t mac[6];
    struct nic_stats stats;
    void *priv;
};

/* The devices we have drivers for. */
struct nic_model {
    uint16_t vendor, device;
    const char *name;
    uint8_t eerd_addr_shift; /* EERD layout: 8 on 8254x, 2 on 82574L */
    uint8_t eerd_done_bit;   /* 4 on 8254x, 1 on 82574L */
};

/* NULL if no driver handles vendor:device. */
const struct nic_model *nic_model_find(uint16_t vendor, uint16_t device);
bool nic_supported(uint16_t vendor, uint16_t device);

/* ---- e1000 (net/e1000.c) --------------------------------------------------- */

/* Page allocator for rings and buffers: zeroed, physical = virtual. */
typedef void *(*nic_alloc_fn)(size_t npages);

#define E1000_RX_RING 256 /* descriptors; 16 bytes each, so one page */
#define E1000_TX_RING 256

/*
 * Resets the device at regs (BAR0, identity-mapped), reads its MAC, sets up
 * the rings and turns RX/TX on, with every interrupt masked.  Bus mastering
 * must already be on.  Returns NULL with *why set on failure.
 */
struct nic *e1000_start(volatile void *regs, const struct nic_model *m, nic_alloc_fn alloc,
                        const char **why);

/* Platform hook: busy-wait about us microseconds (TSC in the core). */
void net_udelay(unsigned us);

#endif
