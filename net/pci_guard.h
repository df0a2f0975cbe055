/*
 * pci_guard.h - the guest's PCI configuration accesses, performed by the
 * hypervisor: one function is hidden (the dedicated NIC: reads all ones,
 * writes dropped) and chosen registers of other functions are protected
 * (the NIC's upstream bridges' bus numbers, windows and decode bits, the
 * host bridge's ECAM base: a guest write keeps their bits unchanged).
 *
 * Offers the filter (pci_guard_judge for a config register access,
 * pci_guard_port_verdict for an access to ports 0xCF8-0xCFF), the
 * performer of a guest port access (pci_guard_port_access: the
 * CONFIG_ADDRESS shadow and the data access done under one lock over
 * injected port I/O) and the protection the NIC needs
 * (pci_guard_for_nic).  Pure: hardware only through the ops it is handed;
 * host-tested (test/unit/test_net_pci_guard.c) and fuzzed
 * (test/fuzz/fuzz_pci_guard.c).
 */
#ifndef HV_PCI_GUARD_H
#define HV_PCI_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "spinlock.h"

/* CONFIG_ADDRESS (PCI 3.0 3.2.2.3.2): enable 31, bus 23:16, device 15:11,
 * function 10:8, register 7:2.  Bits 30:24 and 1:0 select nothing. */
#define PCI_CF8_ENABLE     0x80000000u
#define PCI_CF8_BDF(a)     ((uint16_t)(((a) >> 8) & 0xffff))
#define PCI_CF8_REG(a)     ((uint16_t)((a)&0xfc))
#define PCI_PORT_ADDR      0xcf8
#define PCI_PORT_DATA      0xcfc
#define PCI_GUARD_MAX_REGS 64

struct pci_guard_reg {
    uint16_t bdf;
    uint16_t off;  /* dword-aligned register offset, 0..0xffc */
    uint32_t keep; /* bits a guest write cannot change */
};

struct pci_guard {
    spinlock_t lock; /* one for the shadow and every data access, on all CPUs */
    uint32_t cf8;    /* the guest's CONFIG_ADDRESS: one per chipset, like the register */
    bool hiding;
    uint16_t hidden; /* the hidden function */
    unsigned nreg;
    struct pci_guard_reg reg[PCI_GUARD_MAX_REGS];
    uint64_t hidden_reads, dropped_writes, filtered_writes;
};

enum pci_verdict {
    PCI_PASS,     /* performed as the guest made it (data ports: CONFIG_ADDRESS loaded first) */
    PCI_HIDE,     /* reads all ones, writes dropped */
    PCI_FILTER,   /* a write performed with the protected bits kept */
    PCI_CFG_ADDR, /* a dword at 0xCF8: the shadow is read or written */
    PCI_SPLIT,    /* covers both halves (or a port outside): judged byte by byte */
};

/* Port I/O for the performer: the hardware in the core, a model in tests. */
struct pci_port_ops {
    uint32_t (*in)(void *ctx, uint16_t port, unsigned size);
    void (*out)(void *ctx, uint16_t port, unsigned size, uint32_t val);
    void *ctx;
};

void pci_guard_init(struct pci_guard *g);

/* Every access to bus:dev.fn reads all ones and has its writes dropped. */
void pci_guard_hide(struct pci_guard *g, uint8_t bus, uint8_t dev, uint8_t fn);

/* A guest write never changes the bits keep of the dword at off (which is
 * rounded down to a dword) of bus:dev.fn.  -1 if the table is full. */
int pci_guard_protect(struct pci_guard *g, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off,
                      uint32_t keep);

/*
 * Judges an access of size bytes (1..8) at byte offset off of function
 * bdf's config space.  PCI_FILTER comes with *keep: the protected bits in
 * the access's own bit positions (bit 0 = the lowest byte accessed).
 * Reads of a protected function pass.
 */
enum pci_verdict pci_guard_judge(struct pci_guard *g, uint16_t bdf, uint16_t off, unsigned size,
                                 bool write, uint64_t *keep);

/*
 * Judges a guest access of size bytes at port, given CONFIG_ADDRESS cf8
 * (the access covers at least one byte of 0xCF8-0xCFF): a dword at 0xCF8
 * is PCI_CFG_ADDR; any other access within 0xCF8-0xCFB is plain I/O
 * (PCI_PASS: 0xCF9 is the reset control register of many chipsets; the
 * shadow reloaded before every data access makes any side effect on the
 * real CONFIG_ADDRESS harmless); an access within 0xCFC-0xCFF is a
 * config access at register (cf8 & 0xfc) + port - 0xCFC, judged by
 * pci_guard_judge (PCI_PASS when the enable bit is clear: the chipset
 * forwards it as plain I/O); anything else is PCI_SPLIT.
 */
enum pci_verdict pci_guard_port_verdict(struct pci_guard *g, uint32_t cf8, uint16_t port,
                                        unsigned size, bool write, uint64_t *keep);

/*
 * Judges a guest access of size bytes (1, 2, 4, 8) at address addr of
 * segment 0's ECAM (m): by every function addr may address in m (each
 * entry, each alias, pci_mcfg_decode), the strictest verdict (PCI_HIDE
 * before PCI_FILTER before PCI_PASS, *keep the union).  An access that
 * leaves its 4 KiB page or has another size is PCI_HIDE.
 */
enum pci_verdict pci_guard_ecam_verdict(struct pci_guard *g, const struct pci_mcfg *m,
                                        uint64_t addr, unsigned size, bool write, uint64_t *keep);

/*
 * Performs a guest access of size bytes at port (covering some byte of
 * 0xCF8-0xCFF) through io, under g's lock, as the verdicts say; returns
 * what a read gives (0 for a write).  In a PCI_SPLIT access each byte is
 * done alone: bytes of 0xCF8-0xCFB (a piece of CONFIG_ADDRESS, which the
 * chipset only takes as a dword) read all ones and drop writes, bytes of
 * 0xCFC-0xCFF are judged as one-byte config accesses, bytes outside are
 * plain I/O.
 */
uint32_t pci_guard_port_access(struct pci_guard *g, const struct pci_port_ops *io, uint16_t port,
                               unsigned size, bool write, uint32_t val);

/* The hypervisor's own config accesses take the same lock (pci_io.c). */
void pci_guard_lock(struct pci_guard *g);
void pci_guard_unlock(struct pci_guard *g);

/*
 * Sets up what keeps the NIC hidden and reachable: hides its function;
 * protects every bridge whose secondary..subordinate range holds its bus
 * (command decode and bus-master bits, bus numbers, I/O and memory
 * windows, secondary bus reset, the PCIe link-disable bit, the power
 * state), and the host bridge's PCIEXBAR (0:0.0 offset 0x60) when it is an
 * Intel host bridge whose PCIEXBAR holds the base of an MCFG entry.
 * Returns how many functions got protected registers; -1 if the table is
 * full.
 */
int pci_guard_for_nic(struct pci_guard *g, const struct pci_cfg_ops *ops, const struct pci_dev *nic,
                      const struct pci_mcfg *m);

/* The functions that have protected registers (their ECAM pages are
 * write-filtered too): up to max BDFs into out, returns how many. */
unsigned pci_guard_functions(const struct pci_guard *g, uint16_t *out, unsigned max);

#endif
