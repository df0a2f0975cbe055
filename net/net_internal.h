/*
 * net_internal.h - how the parts of net/ talk to each other (not for use
 * outside net/).
 */
#ifndef HV_NET_INTERNAL_H
#define HV_NET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "nic.h"

/* port/sys_arch.c: clocks from the calibrated TSC. */
void net_time_init(uint64_t tsc_hz);
uint64_t net_now_ms(void);
/* Around S3: the clock stops at the sleep and goes on from there at the wake. */
void net_time_suspend(void);
void net_time_resume(void);
uint64_t net_tsc(void);
uint64_t net_tsc_hz(void);

/* netif.c: lwIP's interface over a struct nic. */
struct hv_config;
int netif_glue_start(struct nic *n, const struct hv_config *c);
/* Moves up to budget received frames into lwIP; returns how many. */
unsigned netif_glue_poll(unsigned budget);
/* Host byte order; 0 until DHCP (or the static config) gave an address. */
uint32_t netif_glue_ip(void);
struct nic *netif_glue_nic(void);
/* A one-line status (address, counters) for logs and the diag service. */
size_t netif_glue_status(char *buf, size_t cap);

/* stream.c */
void net_streams_pump(void);
void net_streams_stop(void);

/* diag.c: the diagnostic service on a stream (see docs/network.md). */
struct diag {
    int mode;            /* enum in diag.c */
    uint64_t remaining;  /* bytes left in echo/sink/source */
    uint64_t total;      /* size of the current transfer */
    uint64_t pattern_at; /* position in the source pattern */
    size_t line_len;
    char line[128];
    bool *quit_flag; /* set by "quit" */
};
/* A handler serving diag on whatever stream it is attached to. */
void diag_handler(struct net_stream_handler *h, struct diag *d, bool *quit_flag);
/* The status text after "status " (service.c; a fake in host tests). */
size_t diag_status_line(char *buf, size_t cap);
/* Byte i of the "source" pattern (also checked by the host client). */
static inline uint8_t diag_pattern(uint64_t i)
{
    return (uint8_t)((i * 7 + (i >> 8)) & 0xff);
}

#endif
