/*
 * pci.h - PCI configuration space for the dedicated NIC: enumeration over
 * a config-space accessor (legacy 0xCF8/0xCFC or ECAM from the ACPI MCFG
 * table), choice of the NIC from the config, and the logic that hides that
 * device from the guest (to be called by the VMX I/O-exit handler).
 *
 * The enumeration, selection, MCFG parsing and hiding logic are pure code,
 * host-tested (test/unit/test_net_pci.c); pci_io.c supplies the hardware
 * accessors in the core.
 */
#ifndef HV_PCI_H
#define HV_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "hv_config.h"

#define PCI_VENDOR_ID     0x00
#define PCI_COMMAND       0x04
#define PCI_CLASS_REV     0x08
#define PCI_HEADER_TYPE   0x0c /* byte 0x0e of the dword */
#define PCI_BAR0          0x10
#define PCI_CMD_IO        (1u << 0)
#define PCI_CMD_MEM       (1u << 1)
#define PCI_CMD_MASTER    (1u << 2)
#define PCI_CMD_INTX_OFF  (1u << 10)
#define PCI_CLASS_NETWORK 0x02

/* Reads and writes one aligned dword of a function's config space. */
struct pci_cfg_ops {
    uint32_t (*read32)(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off);
    void (*write32)(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v);
    void *ctx;
};

struct pci_dev {
    uint8_t bus, dev, fn;
    uint8_t class_code, subclass, prog_if;
    uint16_t vendor, device;
    uint64_t bar[6];      /* decoded base (memory or I/O), 0 if unused */
    uint64_t bar_size[6]; /* bytes decoded by each BAR, from pci_size_bars(); 0 if unknown */
    uint8_t bar_is_io;    /* bit i: BAR i is an I/O BAR */
    uint8_t bar_is_64;    /* bit i: BAR i is the low half of a 64-bit BAR */
};

/*
 * Walks every bus 0..255, device, and function (functions 1-7 only behind
 * a multi-function header) and stores up to max functions in out.  Returns
 * how many functions exist (may be > max).
 */
int pci_scan(const struct pci_cfg_ops *ops, struct pci_dev *out, int max);

/* Decodes BARs from config space into d->bar[] (no sizing writes). */
void pci_read_bars(const struct pci_cfg_ops *ops, struct pci_dev *d);

/*
 * Sizes every BAR of d into d->bar_size[] by the all-ones write of PCI 3.0
 * 6.2.5.1, with I/O and memory decode off meanwhile so the device never
 * answers at a bogus address; restores the BARs and the command register.
 * Only for a device nobody else is using (the dedicated NIC at boot).
 */
void pci_size_bars(const struct pci_cfg_ops *ops, struct pci_dev *d);

/*
 * Chooses the dedicated NIC among devs[n] by the config (nic = auto | PCI
 * address | MAC | none).  supported(vendor, device) says which IDs have a
 * driver; mac_of(ctx, dev, mac) reads a candidate's MAC (for nic = MAC) and
 * returns false if it cannot.  Returns the index in devs, or -1 with *why
 * set to the reason.
 */
typedef bool (*pci_supported_fn)(uint16_t vendor, uint16_t device);
typedef bool (*pci_mac_fn)(void *ctx, const struct pci_dev *d, uint8_t mac[6]);
int pci_select_nic(const struct hv_config *c, const struct pci_dev *devs, int n,
                   pci_supported_fn supported, pci_mac_fn mac_of, void *ctx, const char **why);

/* ---- ECAM (PCI Express memory-mapped config) from the ACPI MCFG table --- */

struct pci_ecam {
    uint64_t base; /* address of bus start_bus, device 0, function 0 */
    uint16_t segment;
    uint8_t start_bus, end_bus;
};

/*
 * Finds the MCFG table from the RSDP (ACPI 1.0 RSDT or 2.0+ XSDT; tables
 * are reached at their physical address, which the core identity-maps) and
 * returns the segment-0 range in *out.  False if there is no RSDP, no MCFG,
 * a bad checksum or no segment-0 entry.
 */
bool pci_ecam_from_acpi(uint64_t rsdp, struct pci_ecam *out);

/* Address of a function's 4 KiB ECAM config page, 0 if outside the range. */
uint64_t pci_ecam_addr(const struct pci_ecam *e, uint8_t bus, uint8_t dev, uint8_t fn);

/* ---- hiding the dedicated NIC from the guest ------------------------------ */

struct pci_hide {
    bool active;
    uint8_t bus, dev, fn;
    uint32_t cf8;       /* last CONFIG_ADDRESS the guest wrote (global, like the chipset's) */
    uint64_t ecam_page; /* the device's ECAM page, 0 if no ECAM */
    uint64_t hidden_reads, dropped_writes;
};

void pci_hide_init(struct pci_hide *h, const struct pci_dev *d, const struct pci_ecam *ecam);

/*
 * For the VMX I/O-exit handler, on every guest access to ports
 * 0xCF8-0xCFF (size 1, 2 or 4 bytes).  Returns true if the access was
 * emulated here (a read gets *val; a write is dropped): the handler must
 * then skip the instruction without touching the hardware.  Returns false
 * if the handler must perform the access on the hardware itself.  Guest
 * dword writes to 0xCF8 are recorded (and passed through); data accesses
 * at 0xCFC-0xCFF aimed at the hidden function read all ones ("no device")
 * and writes to it are dropped.  Byte accesses to 0xCF9 (reset control)
 * are not CONFIG_ADDRESS and are passed through.
 */
bool pci_hide_cfg_access(struct pci_hide *h, uint16_t port, unsigned size, bool write,
                         uint32_t *val);

/*
 * The guest-physical page the EPT must not map to the device's real ECAM
 * page (the VMX side maps a page of 0xFF bytes read-only instead, and
 * drops writes).  0 if there is no ECAM.
 */
uint64_t pci_hide_ecam_page(const struct pci_hide *h);

#endif
