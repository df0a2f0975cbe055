/*
 * pci.c - PCI enumeration, NIC selection, MCFG parsing and ECAM addresses
 * (see pci.h).  Pure: hardware access only through pci_cfg_ops, and
 * ACPI tables read at their identity-mapped physical address.  Also linked
 * into the EFI loader (for pci_select_nic), so it needs no libc beyond
 * memset/memcpy, which gnu-efi's libefi has.
 */
#include <stddef.h>
#include <string.h>

#include "pci.h"

/* memcmp's job, here because the EFI loader links no C library. */
static bool bytes_eq(const void *a, const void *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((const uint8_t *)a)[i] != ((const uint8_t *)b)[i])
            return false;
    return true;
}

static uint32_t rd(const struct pci_cfg_ops *o, const struct pci_dev *d, uint16_t off)
{
    return o->read32(o->ctx, d->bus, d->dev, d->fn, off);
}

void pci_read_bars(const struct pci_cfg_ops *ops, struct pci_dev *d)
{
    d->bar_is_io = d->bar_is_64 = 0;
    for (int i = 0; i < 6; i++)
        d->bar[i] = 0;
    for (int i = 0; i < 6; i++) {
        uint32_t v = rd(ops, d, (uint16_t)(PCI_BAR0 + 4 * i));
        if (v & 1) {
            d->bar_is_io |= (uint8_t)(1u << i);
            d->bar[i] = v & ~3u;
            continue;
        }
        d->bar[i] = v & ~0xfu;
        /* Type 10b: 64-bit BAR, the next BAR holds the high half (PCI 3.0 6.2.5.1). */
        if (((v >> 1) & 3) == 2 && i < 5) {
            d->bar_is_64 |= (uint8_t)(1u << i);
            d->bar[i] |= (uint64_t)rd(ops, d, (uint16_t)(PCI_BAR0 + 4 * (i + 1))) << 32;
            i++;
        }
    }
}

void pci_size_bars(const struct pci_cfg_ops *ops, struct pci_dev *d)
{
    uint32_t cmd = rd(ops, d, PCI_COMMAND) & 0xffff;
    ops->write32(ops->ctx, d->bus, d->dev, d->fn, PCI_COMMAND,
                 cmd & ~(uint32_t)(PCI_CMD_IO | PCI_CMD_MEM));
    for (int i = 0; i < 6; i++)
        d->bar_size[i] = 0;
    for (int i = 0; i < 6; i++) {
        if (!d->bar[i]) /* unassigned: nothing decoded, nothing to hide */
            continue;
        uint16_t off = (uint16_t)(PCI_BAR0 + 4 * i);
        uint32_t old = rd(ops, d, off);
        ops->write32(ops->ctx, d->bus, d->dev, d->fn, off, 0xffffffffu);
        uint32_t lo = rd(ops, d, off);
        ops->write32(ops->ctx, d->bus, d->dev, d->fn, off, old);
        if (d->bar_is_io & (1u << i)) {
            uint32_t mask = lo & ~3u & 0xffffu;
            d->bar_size[i] = mask ? (uint64_t)(~mask & 0xffffu) + 1 : 0;
            continue;
        }
        uint64_t mask = lo & ~0xfu;
        if (d->bar_is_64 & (1u << i)) {
            uint16_t off_hi = (uint16_t)(off + 4);
            uint32_t old_hi = rd(ops, d, off_hi);
            ops->write32(ops->ctx, d->bus, d->dev, d->fn, off_hi, 0xffffffffu);
            mask |= (uint64_t)rd(ops, d, off_hi) << 32;
            ops->write32(ops->ctx, d->bus, d->dev, d->fn, off_hi, old_hi);
            d->bar_size[i] = mask ? ~mask + 1 : 0;
            i++;
            continue;
        }
        d->bar_size[i] = mask ? (uint64_t)(uint32_t)(~(uint32_t)mask + 1) : 0;
    }
    ops->write32(ops->ctx, d->bus, d->dev, d->fn, PCI_COMMAND, cmd);
}

int pci_scan(const struct pci_cfg_ops *ops, struct pci_dev *out, int max)
{
    int n = 0;
    for (unsigned bus = 0; bus < 256; bus++) {
        for (unsigned dev = 0; dev < 32; dev++) {
            unsigned nfn = 1;
            for (unsigned fn = 0; fn < nfn; fn++) {
                uint32_t id = ops->read32(ops->ctx, (uint8_t)bus, (uint8_t)dev, (uint8_t)fn, 0);
                uint16_t vendor = (uint16_t)id;
                if (vendor == 0xffff || vendor == 0) {
                    if (fn == 0)
                        break; /* no function 0: no device */
                    continue;
                }
                uint32_t hdr =
                    ops->read32(ops->ctx, (uint8_t)bus, (uint8_t)dev, (uint8_t)fn, PCI_HEADER_TYPE);
                if (fn == 0 && (hdr & (0x80u << 16)))
                    nfn = 8; /* multi-function device */
                if (n < max) {
                    struct pci_dev *d = &out[n];
                    memset(d, 0, sizeof(*d));
                    d->bus = (uint8_t)bus;
                    d->dev = (uint8_t)dev;
                    d->fn = (uint8_t)fn;
                    d->vendor = vendor;
                    d->device = (uint16_t)(id >> 16);
                    uint32_t cr = rd(ops, d, PCI_CLASS_REV);
                    d->class_code = (uint8_t)(cr >> 24);
                    d->subclass = (uint8_t)(cr >> 16);
                    d->prog_if = (uint8_t)(cr >> 8);
                    /* Only type-0 headers have six BARs. */
                    if (((hdr >> 16) & 0x7f) == 0)
                        pci_read_bars(ops, d);
                }
                n++;
            }
        }
    }
    return n;
}

int pci_select_nic(const struct hv_config *c, const struct pci_dev *devs, int n,
                   pci_supported_fn supported, pci_mac_fn mac_of, void *ctx, const char **why)
{
    *why = NULL;
    switch (c->nic_select) {
    case NIC_NONE:
        *why = "nic = none";
        return -1;
    case NIC_BY_PCI:
        for (int i = 0; i < n; i++) {
            const struct pci_dev *d = &devs[i];
            if (d->bus != c->nic_bus || d->dev != c->nic_dev || d->fn != c->nic_fn)
                continue;
            if (!supported(d->vendor, d->device)) {
                *why = "the configured PCI function has no driver here";
                return -1;
            }
            return i;
        }
        *why = "no PCI function at the configured address";
        return -1;
    case NIC_BY_MAC:
        for (int i = 0; i < n; i++) {
            uint8_t mac[6];
            if (supported(devs[i].vendor, devs[i].device) && mac_of && mac_of(ctx, &devs[i], mac) &&
                bytes_eq(mac, c->nic_mac, 6))
                return i;
        }
        *why = "no supported NIC has the configured MAC";
        return -1;
    case NIC_AUTO:
    default:
        for (int i = 0; i < n; i++)
            if (supported(devs[i].vendor, devs[i].device))
                return i;
        *why = "no supported NIC found";
        return -1;
    }
}

/* ---- ACPI MCFG ------------------------------------------------------------- */

struct __attribute__((packed)) acpi_rsdp {
    char sig[8];
    uint8_t checksum;
    char oem[6];
    uint8_t revision;
    uint32_t rsdt;
    uint32_t length;
    uint64_t xsdt;
    uint8_t xchecksum;
    uint8_t reserved[3];
};

struct __attribute__((packed)) acpi_hdr {
    char sig[4];
    uint32_t length;
    uint8_t revision, checksum;
    char oem[6], oem_table[8];
    uint32_t oem_rev, creator, creator_rev;
};

struct __attribute__((packed)) mcfg_entry {
    uint64_t base;
    uint16_t segment;
    uint8_t start_bus, end_bus;
    uint32_t reserved;
};

/* Longest table we accept: a bound against garbage lengths. */
#define ACPI_MAX_TABLE (1u << 20)

static bool sum_ok(const void *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + ((const uint8_t *)p)[i]);
    return s == 0;
}

static const struct acpi_hdr *table_at(uint64_t addr)
{
    if (!addr)
        return NULL;
    const struct acpi_hdr *h = (const struct acpi_hdr *)(uintptr_t)addr;
    if (h->length < sizeof(*h) || h->length > ACPI_MAX_TABLE || !sum_ok(h, h->length))
        return NULL;
    return h;
}

bool pci_mcfg_from_acpi(uint64_t rsdp_addr, struct pci_mcfg *out)
{
    out->n = 0;
    if (!rsdp_addr)
        return false;
    const struct acpi_rsdp *r = (const struct acpi_rsdp *)(uintptr_t)rsdp_addr;
    if (!bytes_eq(r->sig, "RSD PTR ", 8) || !sum_ok(r, 20))
        return false;
    bool x = r->revision >= 2 && r->xsdt && r->length >= sizeof(*r) && sum_ok(r, sizeof(*r));
    const struct acpi_hdr *sdt = table_at(x ? r->xsdt : r->rsdt);
    if (!sdt)
        return false;
    size_t esz = x ? 8 : 4;
    size_t count = (sdt->length - sizeof(*sdt)) / esz;
    const uint8_t *ents = (const uint8_t *)(sdt + 1);
    for (size_t i = 0; i < count; i++) {
        uint64_t a = 0;
        memcpy(&a, ents + i * esz, esz);
        const struct acpi_hdr *t = table_at(a);
        if (!t || !bytes_eq(t->sig, "MCFG", 4))
            continue;
        /* MCFG: header, 8 reserved bytes, then 16-byte entries (PCI FW 3.0 4.1.2). */
        size_t hdr = sizeof(*t) + 8;
        if (t->length < hdr)
            return false;
        size_t m = (t->length - hdr) / sizeof(struct mcfg_entry);
        const uint8_t *e = (const uint8_t *)t + hdr;
        for (size_t j = 0; j < m && out->n < PCI_MCFG_MAX; j++) {
            struct mcfg_entry me;
            memcpy(&me, e + j * sizeof(me), sizeof(me));
            if (me.end_bus < me.start_bus || !me.base || (me.base & 0xfffff))
                continue;
            out->e[out->n++] = (struct pci_ecam){
                .base = me.base,
                .segment = me.segment,
                .start_bus = me.start_bus,
                .end_bus = me.end_bus,
            };
        }
        return out->n > 0;
    }
    return false;
}

uint64_t pci_ecam_addr(const struct pci_ecam *e, uint8_t bus, uint8_t dev, uint8_t fn)
{
    if (!e || !e->base || bus < e->start_bus || bus > e->end_bus || dev > 31 || fn > 7)
        return 0;
    /* The base is bus 0's: 1 MiB per bus, 32 KiB per device, 4 KiB per function (PCIe 3.0
     * 7.2.2 Table 7-1). */
    return e->base + ((uint64_t)bus << 20) + ((uint64_t)dev << 15) + ((uint64_t)fn << 12);
}

uint64_t pci_mcfg_addr(const struct pci_mcfg *m, uint8_t bus, uint8_t dev, uint8_t fn)
{
    for (unsigned i = 0; m && i < m->n; i++) {
        uint64_t a = m->e[i].segment == 0 ? pci_ecam_addr(&m->e[i], bus, dev, fn) : 0;
        if (a)
            return a;
    }
    return 0;
}

unsigned pci_mcfg_pages(const struct pci_mcfg *m, uint8_t bus, uint8_t dev, uint8_t fn,
                        uint64_t *out, unsigned max)
{
    unsigned k = 0;
    for (unsigned i = 0; m && i < m->n; i++) {
        const struct pci_ecam *e = &m->e[i];
        uint64_t a = e->segment == 0 ? pci_ecam_addr(e, bus, dev, fn) : 0;
        if (!a)
            continue;
        if (k < max)
            out[k] = a;
        k++;
        if (e->start_bus) {
            if (k < max)
                out[k] = a - ((uint64_t)e->start_bus << 20);
            k++;
        }
    }
    return k;
}

unsigned pci_mcfg_decode(const struct pci_mcfg *m, uint64_t addr, uint16_t *bdf, uint16_t *off,
                         unsigned max)
{
    unsigned k = 0;
    for (unsigned i = 0; m && i < m->n; i++) {
        const struct pci_ecam *e = &m->e[i];
        if (e->segment != 0 || addr < e->base)
            continue;
        uint64_t rel = addr - e->base;
        uint64_t bus = rel >> 20;
        /* base + bus MiB, the reading every OS uses */
        if (bus >= e->start_bus && bus <= e->end_bus && k < max) {
            bdf[k] = (uint16_t)(rel >> 12);
            off[k++] = (uint16_t)(rel & 0xfff);
        }
        /* base + (bus - start) MiB, firmware that counts from the start bus */
        if (e->start_bus && bus <= (uint64_t)(e->end_bus - e->start_bus) && k < max) {
            bdf[k] = (uint16_t)((rel >> 12) + ((uint64_t)e->start_bus << 8));
            off[k++] = (uint16_t)(rel & 0xfff);
        }
    }
    return k;
}
