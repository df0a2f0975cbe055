/*
 * lwipopts.h - lwIP 2.1.3 configuration of the hypervisor's stack.
 *
 * One TCP peer (the introspector) plus a diagnostic connection, polled
 * from service_poll() under one lock: no OS, no threads, raw API only.
 * Sizes favour a full TCP window for bulk transfers (guest memory reads)
 * while keeping all of lwIP's memory (its heap and pools are static arrays
 * in the core image's .bss, i.e. in the hypervisor region) near 1 MiB.
 */
#ifndef HV_LWIPOPTS_H
#define HV_LWIPOPTS_H

/* ---- system model ---------------------------------------------------------- */
#define NO_SYS               1 /* no threads: raw API, timers from sys_check_timeouts() */
#define SYS_LIGHTWEIGHT_PROT 0 /* lwIP is entered only under the service lock */
#define LWIP_SOCKET          0
#define LWIP_NETCONN         0
#define LWIP_TIMERS          1
/* lwIP's internal heap and pools, not newlib's malloc (whose sbrk fails by design). */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT   8
#define MEM_SIZE        (512 * 1024) /* PBUF_RAM: TCP segments being sent */
/* The heap comes from the page allocator (net_boot sets it before lwip_init),
 * not from .bss, so the core image stays small. */
extern void *net_lwip_heap;
#define LWIP_RAM_HEAP_POINTER  net_lwip_heap
#define LWIP_NOASSERT_ON_ERROR 0

/* ---- protocols -------------------------------------------------------------- */
#define LWIP_IPV4                     1
#define LWIP_IPV6                     0
#define LWIP_ARP                      1
#define LWIP_ETHERNET                 1
#define LWIP_ICMP                     1 /* answers ping */
#define LWIP_RAW                      0
#define LWIP_UDP                      1 /* DHCP only */
#define LWIP_TCP                      1
#define LWIP_DHCP                     1
#define LWIP_DNS                      0
#define LWIP_IGMP                     0
#define LWIP_AUTOIP                   0
#define IP_REASSEMBLY                 0 /* the peer's TCP never needs fragments at MSS 1460 */
#define IP_FRAG                       0
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define ARP_TABLE_SIZE                8
/* Check the DHCP offer's address with ARP first?  Off: slirp and most
 * appliance networks hand out unique leases, and it costs seconds. */
#define DHCP_DOES_ARP_CHECK 0

/* ---- TCP ---------------------------------------------------------------------- */
#define TCP_MSS 1460
/* 44 segments = 64240 bytes: the largest window without window scaling. */
#define TCP_WND                 (44 * TCP_MSS)
#define TCP_SND_BUF             (44 * TCP_MSS)
#define TCP_SND_QUEUELEN        ((4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS)
#define TCP_QUEUE_OOSEQ         1
#define MEMP_NUM_TCP_SEG        256 /* >= TCP_SND_QUEUELEN */
#define MEMP_NUM_TCP_PCB        4   /* KVMI connection, diag connection, spares */
#define MEMP_NUM_TCP_PCB_LISTEN 2
#define LWIP_TCP_KEEPALIVE      1 /* notice a vanished introspector */
#define TCP_KEEPIDLE_DEFAULT    10000
#define TCP_KEEPINTVL_DEFAULT   2000
#define TCP_KEEPCNT_DEFAULT     5
#define LWIP_TCP_TIMESTAMPS     0

/* ---- buffers ----------------------------------------------------------------- */
/* Received frames are copied from the NIC's DMA buffers into pool pbufs:
 * enough for one full receive window plus ARP/DHCP/ACK traffic. */
#define PBUF_POOL_SIZE       128
#define PBUF_POOL_BUFSIZE    1536
#define MEMP_NUM_PBUF        64
#define MEMP_NUM_SYS_TIMEOUT 8

/* ---- netif -------------------------------------------------------------------- */
#define LWIP_NETIF_STATUS_CALLBACK 1 /* log the address DHCP gave */
#define LWIP_NETIF_LINK_CALLBACK   1
#define LWIP_NETIF_HOSTNAME        0
#define LWIP_SINGLE_NETIF          1

/* ---- checksums: computed in software (the driver uses no offloads) ------------ */
#define CHECKSUM_GEN_IP    1
#define CHECKSUM_GEN_TCP   1
#define CHECKSUM_GEN_UDP   1
#define CHECKSUM_GEN_ICMP  1
#define CHECKSUM_CHECK_IP  1
#define CHECKSUM_CHECK_TCP 1
#define CHECKSUM_CHECK_UDP 1

/* ---- diagnostics -------------------------------------------------------------- */
#define LWIP_STATS 0
#define LWIP_DEBUG 0

#endif
