/*
 * pci_io.c - the core's PCI config-space accessors: legacy mechanism #1
 * (CONFIG_ADDRESS 0xCF8 / CONFIG_DATA 0xCFC, PCI 3.0 3.2.2.3.2) and ECAM
 * (PCIe 3.0 7.2.2) when ACPI gives an MCFG table.  Used at boot only,
 * before any guest runs, so no guest CF8 value can be clobbered.
 */
#include "core.h"
#include "net_io.h"

static uint32_t cf8_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    return 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 | (uint32_t)fn << 8 |
           (off & 0xfc);
}

static uint32_t legacy_read(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    (void)ctx;
    if (off > 0xff)
        return 0xffffffffu;
    outl(0xcf8, cf8_addr(bus, dev, fn, off));
    return inl(0xcfc);
}

static void legacy_write(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
    (void)ctx;
    if (off > 0xff)
        return;
    outl(0xcf8, cf8_addr(bus, dev, fn, off));
    outl(0xcfc, v);
}

static uint32_t ecam_read(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    uint64_t a = pci_ecam_addr(ctx, bus, dev, fn);
    if (!a)
        return 0xffffffffu;
    return *(volatile uint32_t *)(uintptr_t)(a + (off & 0xffc));
}

static void ecam_write(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
    uint64_t a = pci_ecam_addr(ctx, bus, dev, fn);
    if (a)
        *(volatile uint32_t *)(uintptr_t)(a + (off & 0xffc)) = v;
}

void pci_io_ops(struct pci_cfg_ops *ops, struct pci_ecam *ecam)
{
    if (ecam && ecam->base) {
        ops->read32 = ecam_read;
        ops->write32 = ecam_write;
        ops->ctx = ecam;
    } else {
        ops->read32 = legacy_read;
        ops->write32 = legacy_write;
        ops->ctx = NULL;
    }
}

void *net_alloc_pages(size_t n)
{
    return page_alloc(&g_pages, n); /* boot time only: the BSP alone allocates */
}
