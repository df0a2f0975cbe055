/*
 * hv_config.h - the hypervisor's configuration (hv.conf beside hv.efi) and
 * its parser.  The parser needs no C library: the EFI loader parses the file
 * and hands the result to the core inside the boot info.  Every key is
 * documented in docs/configuration.md.
 */
#ifndef HV_CONFIG_H
#define HV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

enum nic_select { NIC_AUTO = 0, NIC_BY_PCI, NIC_BY_MAC, NIC_NONE };

enum transport_mode { TRANSPORT_CONNECT = 0, TRANSPORT_LISTEN };

/* on_sleep: what the guest's ACPI sleep (S1-S4) request does: refuse it (the
 * OS stays awake), or let S3 happen and take the machine back at the waking
 * vector (docs/kvmi-hv.md, "Power transitions"). */
enum on_sleep { ON_SLEEP_REFUSE = 0, ON_SLEEP_RESUME };

/* dma_protection: VT-d remapping that keeps device DMA out of the region (vtd/). */
enum dma_protection { DMA_PROT_AUTO = 0, DMA_PROT_REQUIRE, DMA_PROT_OFF };

#define HV_CONF_STR 64

struct hv_config {
    uint32_t memory_mib;  /* size of the reserved region */
    uint32_t log_level;   /* enum log_level */
    uint16_t serial_port; /* 16550 I/O base; 0 = no serial log */
    uint16_t pad0;
    uint32_t nic_select; /* enum nic_select */
    uint8_t nic_bus, nic_dev, nic_fn, pad1;
    uint8_t nic_mac[6];
    bool dhcp;
    uint8_t pad2;
    uint32_t ip, netmask, gateway; /* host byte order; ip = 0 with dhcp */
    uint32_t transport;            /* enum transport_mode */
    uint32_t peer_ip;              /* connect = IP:PORT */
    uint16_t peer_port;
    uint16_t listen_port; /* listen = PORT */
    uint32_t reconnect_ms;
    uint32_t unhook_timeout_ms;
    uint32_t poll_interval_us;
    bool cpuid_hv_bit; /* advertise CPUID.1:ECX[31] and leaf 0x40000000 */
    bool has_key;
    bool debug_hypercalls; /* answer the test hypercalls and watch port 0x8900 */
    bool s3_simulate;      /* test: S3 is a simulated power loss (vmx/sleep.c) */
    char key[HV_CONF_STR];
    char name[HV_CONF_STR];
    uint8_t uuid[16];
    bool has_uuid;
    uint8_t pad4[7];
    char chain[128];        /* next loader to start (path on the same volume) */
    uint16_t diag_port;     /* diagnostic TCP service (docs/network.md); 0 = off */
    bool net_selftest;      /* serve the network on the BSP until "quit" (no VMX yet) */
    uint8_t dma_protection; /* enum dma_protection */
    uint8_t on_sleep;       /* enum on_sleep */
    uint8_t pad5[3];
    /* KVMI session deadlines (kvmi/kvmi.h struct kvmi_config); 0 = none */
    uint32_t reply_timeout_ms, send_timeout_ms, handshake_timeout_ms;
    uint32_t pad6;
};

/* Called once per problem: 1-based line number, a message, and the offending text. */
typedef void (*config_error_fn)(void *ctx, unsigned line, const char *msg, const char *what);

/* Fills c with the defaults documented in docs/configuration.md. */
void config_defaults(struct hv_config *c);

/*
 * Parses `key = value` lines (# starts a comment) over the defaults already in
 * c.  Reports every problem (unknown key, bad value, duplicate key, conflicting
 * keys) and returns how many there were; the caller refuses to start on > 0.
 */
int config_parse(struct hv_config *c, const char *text, size_t len, config_error_fn err, void *ctx);

/*
 * Overwrites, in place, every `key = ...` line of an hv.conf text with a
 * comment padded with spaces to the line's length (the text keeps its
 * length, so a file written back over itself leaves no byte of the value in
 * its clusters).  Returns the number of lines overwritten.
 */
size_t config_blank_key(char *text, size_t len);

/* Name of a log level ("error".."debug"). */
const char *config_log_level_name(uint32_t level);

#endif
