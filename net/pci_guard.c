/*
 * pci_guard.c - the guest's PCI configuration accesses judged and performed
 * by the hypervisor (see pci_guard.h).  Pure: port I/O and config reads only
 * through the ops it is handed, so the same code runs in VMX root, in the
 * host unit tests against a model chipset, and under libFuzzer.
 */
#include <string.h>

#include "pci_guard.h"

#define PCI_HEADER_BRIDGE 1
#define PCI_STATUS_CAPS   (1u << 20) /* status bit 4 in the command/status dword */
#define PCI_CAP_PTR       0x34
#define PCI_CAP_PM        0x01
#define PCI_CAP_EXP       0x10
#define INTEL_VENDOR      0x8086
#define PCIEXBAR          0x60

void pci_guard_init(struct pci_guard *g)
{
    memset(g, 0, sizeof(*g));
    spin_init(&g->lock);
}

void pci_guard_hide(struct pci_guard *g, uint8_t bus, uint8_t dev, uint8_t fn)
{
    g->hiding = true;
    g->hidden = PCI_BDF(bus, dev & 31, fn & 7);
}

int pci_guard_protect(struct pci_guard *g, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off,
                      uint32_t keep)
{
    uint16_t bdf = PCI_BDF(bus, dev & 31, fn & 7);
    off &= 0xffc;
    for (unsigned i = 0; i < g->nreg; i++)
        if (g->reg[i].bdf == bdf && g->reg[i].off == off) {
            g->reg[i].keep |= keep;
            return 0;
        }
    if (g->nreg == PCI_GUARD_MAX_REGS)
        return -1;
    g->reg[g->nreg++] = (struct pci_guard_reg){.bdf = bdf, .off = off, .keep = keep};
    return 0;
}

/* The protected bits of the byte at offset off of bdf. */
static uint8_t kept_byte(const struct pci_guard *g, uint16_t bdf, unsigned off)
{
    for (unsigned i = 0; i < g->nreg; i++)
        if (g->reg[i].bdf == bdf && g->reg[i].off == (off & 0xffc))
            return (uint8_t)(g->reg[i].keep >> (8 * (off & 3)));
    return 0;
}

enum pci_verdict pci_guard_judge(struct pci_guard *g, uint16_t bdf, uint16_t off, unsigned size,
                                 bool write, uint64_t *keep)
{
    *keep = 0;
    if (g->hiding && bdf == g->hidden) {
        if (write)
            g->dropped_writes++;
        else
            g->hidden_reads++;
        return PCI_HIDE;
    }
    if (!write)
        return PCI_PASS;
    for (unsigned i = 0; i < size && i < 8; i++)
        *keep |= (uint64_t)kept_byte(g, bdf, (off + i) & 0xfff) << (8 * i);
    if (!*keep)
        return PCI_PASS;
    g->filtered_writes++;
    return PCI_FILTER;
}

enum pci_verdict pci_guard_port_verdict(struct pci_guard *g, uint32_t cf8, uint16_t port,
                                        unsigned size, bool write, uint64_t *keep)
{
    *keep = 0;
    uint32_t first = port, last = (uint32_t)port + size - 1;
    if (port == PCI_PORT_ADDR && size == 4)
        return PCI_CFG_ADDR;
    /* Any other access to CONFIG_ADDRESS's ports is plain I/O to the chipset (PCI 3.0
     * 3.2.2.3.2: only a dword access there is CONFIG_ADDRESS). */
    if (first >= PCI_PORT_ADDR && last < PCI_PORT_DATA)
        return PCI_PASS;
    if (first >= PCI_PORT_DATA && last <= PCI_PORT_DATA + 3) {
        if (!(cf8 & PCI_CF8_ENABLE))
            return PCI_PASS;
        return pci_guard_judge(g, PCI_CF8_BDF(cf8), (uint16_t)(PCI_CF8_REG(cf8) + (port & 3)), size,
                               write, keep);
    }
    return PCI_SPLIT;
}

enum pci_verdict pci_guard_ecam_verdict(struct pci_guard *g, const struct pci_mcfg *m,
                                        uint64_t addr, unsigned size, bool write, uint64_t *keep)
{
    *keep = 0;
    /* an access that leaves its 4 KiB function page is nothing a driver makes */
    if ((size != 1 && size != 2 && size != 4 && size != 8) || (addr & 0xfff) + size > 0x1000)
        return PCI_HIDE;
    uint16_t bdf[2 * PCI_MCFG_MAX], off[2 * PCI_MCFG_MAX];
    unsigned n = pci_mcfg_decode(m, addr, bdf, off, 2 * PCI_MCFG_MAX);
    enum pci_verdict worst = PCI_PASS;
    for (unsigned i = 0; i < n; i++) {
        uint64_t k;
        enum pci_verdict v = pci_guard_judge(g, bdf[i], off[i], size, write, &k);
        *keep |= k;
        if (v == PCI_HIDE || (v == PCI_FILTER && worst == PCI_PASS))
            worst = v;
    }
    return worst;
}

void pci_guard_lock(struct pci_guard *g)
{
    spin_lock(&g->lock);
}

void pci_guard_unlock(struct pci_guard *g)
{
    spin_unlock(&g->lock);
}

static uint32_t ones(unsigned size)
{
    return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

/* One access within a half (or outside 0xCF8-0xCFF), as v says; the lock is held. */
static uint32_t perform(struct pci_guard *g, const struct pci_port_ops *io, enum pci_verdict v,
                        uint64_t keep, uint16_t port, unsigned size, bool write, uint32_t val)
{
    bool data = port >= PCI_PORT_DATA && port <= PCI_PORT_DATA + 3;
    switch (v) {
    case PCI_CFG_ADDR:
        if (write)
            g->cf8 = val;
        return write ? 0 : g->cf8;
    case PCI_HIDE:
        return write ? 0 : ones(size);
    case PCI_FILTER: {
        io->out(io->ctx, PCI_PORT_ADDR, 4, g->cf8);
        uint32_t old = io->in(io->ctx, port, size);
        uint32_t k = (uint32_t)keep;
        io->out(io->ctx, port, size, (old & k) | (val & ~k & ones(size)));
        return 0;
    }
    case PCI_PASS:
    case PCI_SPLIT:
    default:
        if (data) /* the guest's CONFIG_ADDRESS, whoever wrote the register last */
            io->out(io->ctx, PCI_PORT_ADDR, 4, g->cf8);
        if (write) {
            io->out(io->ctx, port, size, val & ones(size));
            return 0;
        }
        return io->in(io->ctx, port, size) & ones(size);
    }
}

uint32_t pci_guard_port_access(struct pci_guard *g, const struct pci_port_ops *io, uint16_t port,
                               unsigned size, bool write, uint32_t val)
{
    if (size != 1 && size != 2)
        size = 4;
    uint64_t keep;
    uint32_t r = 0;
    spin_lock(&g->lock);
    enum pci_verdict v = pci_guard_port_verdict(g, g->cf8, port, size, write, &keep);
    if (v != PCI_SPLIT) {
        r = perform(g, io, v, keep, port, size, write, val);
    } else {
        for (unsigned i = 0; i < size; i++) {
            uint16_t p = (uint16_t)(port + i);
            uint32_t b = (val >> (8 * i)) & 0xff, got;
            if (p >= PCI_PORT_ADDR && p < PCI_PORT_DATA) {
                got = 0xff; /* a piece of CONFIG_ADDRESS: no register answers it */
            } else {
                enum pci_verdict bv = pci_guard_port_verdict(g, g->cf8, p, 1, write, &keep);
                got = perform(g, io, bv == PCI_SPLIT ? PCI_PASS : bv, keep, p, 1, write, b);
            }
            r |= (got & 0xff) << (8 * i);
        }
        if (write)
            r = 0;
    }
    spin_unlock(&g->lock);
    return r;
}

/* ---- what the NIC needs -------------------------------------------------- */

static uint32_t rd(const struct pci_cfg_ops *o, uint16_t bdf, uint16_t off)
{
    return o->read32(o->ctx, (uint8_t)(bdf >> 8), (uint8_t)((bdf >> 3) & 31), (uint8_t)(bdf & 7),
                     off);
}

static int protect(struct pci_guard *g, uint16_t bdf, uint16_t off, uint32_t keep)
{
    return pci_guard_protect(g, (uint8_t)(bdf >> 8), (uint8_t)((bdf >> 3) & 31), (uint8_t)(bdf & 7),
                             off, keep);
}

/* A bridge on the NIC's path: what routes config cycles, memory and DMA to it. */
static int protect_bridge(struct pci_guard *g, const struct pci_cfg_ops *ops, uint16_t bdf)
{
    /* PCI-to-PCI Bridge Architecture 1.2, 3.2 Configuration Space Header (type 1) */
    static const struct {
        uint16_t off;
        uint32_t keep;
    } regs[] = {
        {0x04, 0x7},        /* I/O space, memory space, bus master enable */
        {0x18, 0x00ffffff}, /* primary, secondary, subordinate bus numbers */
        {0x1c, 0x0000ffff}, /* I/O base and limit (secondary status is free) */
        {0x20, 0xffffffff}, /* memory base and limit */
        {0x24, 0xffffffff}, /* prefetchable memory base and limit */
        {0x28, 0xffffffff}, /* prefetchable base, upper 32 bits */
        {0x2c, 0xffffffff}, /* prefetchable limit, upper 32 bits */
        {0x30, 0xffffffff}, /* I/O base and limit, upper 16 bits */
        {0x3c, 1u << 22},   /* bridge control: secondary bus reset */
    };
    for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
        if (protect(g, bdf, regs[i].off, regs[i].keep))
            return -1;
    if (!(rd(ops, bdf, PCI_COMMAND) & PCI_STATUS_CAPS))
        return 0;
    /* Capabilities (PCI 3.0 6.7): a bounded walk, the guest cannot build a loop yet. */
    uint16_t p = rd(ops, bdf, PCI_CAP_PTR) & 0xfc;
    for (unsigned n = 0; p >= 0x40 && n < 48; n++) {
        uint32_t h = rd(ops, bdf, p);
        if ((h & 0xff) == PCI_CAP_PM && protect(g, bdf, (uint16_t)(p + 4), 0x3))
            return -1; /* PMCSR power state: D3hot cuts the link below */
        if ((h & 0xff) == PCI_CAP_EXP && protect(g, bdf, (uint16_t)(p + 0x10), 1u << 4))
            return -1; /* Link Control: link disable (PCIe 3.0 7.8.7) */
        p = (h >> 8) & 0xfc;
    }
    return 0;
}

int pci_guard_for_nic(struct pci_guard *g, const struct pci_cfg_ops *ops, const struct pci_dev *nic,
                      const struct pci_mcfg *m)
{
    pci_guard_hide(g, nic->bus, nic->dev, nic->fn);
    int funcs = 0;
    /* Every bridge whose bus range holds the NIC's bus sits on its path from bus 0. */
    for (unsigned bus = 0; bus < nic->bus; bus++) {
        for (unsigned dev = 0; dev < 32; dev++) {
            for (unsigned fn = 0; fn < 8; fn++) {
                uint16_t bdf = PCI_BDF(bus, dev, fn);
                uint32_t id = rd(ops, bdf, PCI_VENDOR_ID);
                if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0) {
                    if (fn == 0)
                        break;
                    continue;
                }
                uint32_t hdr = rd(ops, bdf, PCI_HEADER_TYPE);
                if (((hdr >> 16) & 0x7f) == PCI_HEADER_BRIDGE) {
                    uint32_t b = rd(ops, bdf, 0x18);
                    uint8_t sec = (uint8_t)(b >> 8), sub = (uint8_t)(b >> 16);
                    if (sec <= nic->bus && nic->bus <= sub) {
                        if (protect_bridge(g, ops, bdf))
                            return -1;
                        funcs++;
                    }
                }
                if (fn == 0 && !(hdr & (0x80u << 16)))
                    break; /* single-function device */
            }
        }
    }
    /* Intel host bridges hold ECAM's base in PCIEXBAR: enable bit 0, length 2:1, base 38:26
     * (e.g. Q35, Intel 3 Series Express Chipset datasheet 5.1.13).  Protected only when it
     * holds an MCFG base, so another chipset's register 0x60 is left alone. */
    uint32_t id = rd(ops, 0, PCI_VENDOR_ID);
    uint32_t cls = rd(ops, 0, PCI_CLASS_REV) >> 16;
    if ((id & 0xffff) == INTEL_VENDOR && cls == 0x0600 && m) {
        uint64_t bar = rd(ops, 0, PCIEXBAR) | (uint64_t)rd(ops, 0, PCIEXBAR + 4) << 32;
        uint64_t base = bar & 0x7ffc000000ull;
        for (unsigned i = 0; (bar & 1) && i < m->n; i++)
            if (m->e[i].segment == 0 && m->e[i].base == base) {
                if (protect(g, 0, PCIEXBAR, 0xffffffff) || protect(g, 0, PCIEXBAR + 4, 0xffffffff))
                    return -1;
                funcs++;
                break;
            }
    }
    return funcs;
}

unsigned pci_guard_functions(const struct pci_guard *g, uint16_t *out, unsigned max)
{
    unsigned k = 0;
    for (unsigned i = 0; i < g->nreg; i++) {
        bool seen = false;
        for (unsigned j = 0; j < k; j++)
            seen |= out[j] == g->reg[i].bdf;
        if (!seen && k < max)
            out[k++] = g->reg[i].bdf;
    }
    return k;
}
