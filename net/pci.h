/*
 * pci.h - PCI configuration space for the dedicated NIC: enumeration over
 * a config-space accessor (legacy 0xCF8/0xCFC or ECAM from the ACPI MCFG
 * table), choice of the NIC from the config, and where ECAM decodes a
 * function.
 *
 * The enumeration, selection and MCFG parsing are pure code, host-tested
 * (test/unit/test_net_pci.c); pci_guard.h judges and performs the guest's
 * config accesses; pci_io.c supplies the hardware accessors in the core.
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

/* A function of segment 0: bus 15:8, device 7:3, function 2:0. */
#define PCI_BDF(b, d, f) ((uint16_t)((unsigned)(b) << 8 | (unsigned)(d) << 3 | (unsigned)(f)))

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
    uint64_t base; /* address of bus 0 (PCI Firmware 3.0 4.1.2, as Linux and FreeBSD read it) */
    uint16_t segment;
    uint8_t start_bus, end_bus;
};

#define PCI_MCFG_MAX 16
struct pci_mcfg {
    unsigned n;
    struct pci_ecam e[PCI_MCFG_MAX];
};

/*
 * Finds the MCFG table from the RSDP (ACPI 1.0 RSDT or 2.0+ XSDT; tables
 * are reached at their physical address, which the core identity-maps) and
 * stores every usable entry (any segment; up to PCI_MCFG_MAX) in *out.
 * False if there is no RSDP, no MCFG, a bad checksum or no usable entry.
 */
bool pci_mcfg_from_acpi(uint64_t rsdp, struct pci_mcfg *out);

/* Address of a function's 4 KiB ECAM config page in e, 0 if outside the range. */
uint64_t pci_ecam_addr(const struct pci_ecam *e, uint8_t bus, uint8_t dev, uint8_t fn);

/* The same in the first segment-0 entry of m whose bus range holds bus; 0 if none. */
uint64_t pci_mcfg_addr(const struct pci_mcfg *m, uint8_t bus, uint8_t dev, uint8_t fn);

/*
 * Every page at which segment 0's ECAM may decode bus:dev.fn: in each
 * segment-0 entry whose range holds bus, base + bus MiB and, when the entry
 * starts above bus 0, the alias base + (bus - start) MiB of firmware that
 * counts from the start bus.  Up to max into out; returns how many there
 * are (more than max: some were left out).
 */
unsigned pci_mcfg_pages(const struct pci_mcfg *m, uint8_t bus, uint8_t dev, uint8_t fn,
                        uint64_t *out, unsigned max);

/* The inverse: the functions (PCI_BDF) and byte offsets addr may address in
 * segment 0's ECAM, by either reading above.  Up to max; returns how many. */
unsigned pci_mcfg_decode(const struct pci_mcfg *m, uint64_t addr, uint16_t *bdf, uint16_t *off,
                         unsigned max);

#endif
