/*
 * pci_io.c - the core's PCI config-space hardware: its own accessors,
 * legacy mechanism #1 (CONFIG_ADDRESS 0xCF8 / CONFIG_DATA 0xCFC, PCI 3.0
 * 3.2.2.3.2) and ECAM (PCIe 3.0 7.2.2) when ACPI gives an MCFG table, and
 * the guest's config accesses, which the hypervisor performs itself
 * through the filter of pci_guard.c: port accesses under the guard's lock
 * (the guest's CONFIG_ADDRESS is a shadow, loaded into the register before
 * each data access), ECAM writes to the pages the VMX side write-protects.
 * The hypervisor's own port accesses take the same lock, so neither side
 * ever sees the other's CONFIG_ADDRESS.
 */
#include "core.h"
#include "net_io.h"
#include "pci_guard.h"

static struct pci_guard guard; /* zero: unlocked, nothing hidden, until pci_io_guard() */
static const struct pci_mcfg *guard_mcfg;
static bool guarding;

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
    pci_guard_lock(&guard);
    outl(0xcf8, cf8_addr(bus, dev, fn, off));
    uint32_t v = inl(0xcfc);
    pci_guard_unlock(&guard);
    return v;
}

static void legacy_write(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
    (void)ctx;
    if (off > 0xff)
        return;
    pci_guard_lock(&guard);
    outl(0xcf8, cf8_addr(bus, dev, fn, off));
    outl(0xcfc, v);
    pci_guard_unlock(&guard);
}

static uint32_t ecam_read(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    uint64_t a = pci_mcfg_addr(ctx, bus, dev, fn);
    if (!a)
        return 0xffffffffu;
    return *(volatile uint32_t *)(uintptr_t)(a + (off & 0xffc));
}

static void ecam_write(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
    uint64_t a = pci_mcfg_addr(ctx, bus, dev, fn);
    if (a)
        *(volatile uint32_t *)(uintptr_t)(a + (off & 0xffc)) = v;
}

void pci_io_ops(struct pci_cfg_ops *ops, struct pci_mcfg *m)
{
    bool seg0 = false;
    for (unsigned i = 0; m && i < m->n; i++)
        seg0 |= m->e[i].segment == 0;
    if (seg0) {
        ops->read32 = ecam_read;
        ops->write32 = ecam_write;
        ops->ctx = m;
    } else {
        ops->read32 = legacy_read;
        ops->write32 = legacy_write;
        ops->ctx = NULL;
    }
}

/* ---- the guest's accesses ---------------------------------------------------- */

static uint32_t port_in(void *ctx, uint16_t port, unsigned size)
{
    (void)ctx;
    if (size == 1)
        return inb(port);
    if (size == 2) {
        uint16_t w;
        __asm__ volatile("inw %1, %0" : "=a"(w) : "Nd"(port));
        return w;
    }
    return inl(port);
}

static void port_out(void *ctx, uint16_t port, unsigned size, uint32_t v)
{
    (void)ctx;
    if (size == 1)
        outb(port, (uint8_t)v);
    else if (size == 2)
        __asm__ volatile("outw %0, %1" : : "a"((uint16_t)v), "Nd"(port));
    else
        outl(port, v);
}

static const struct pci_port_ops hw_ports = {port_in, port_out, NULL};

int pci_io_guard(const struct pci_cfg_ops *ops, const struct pci_dev *nic, const struct pci_mcfg *m)
{
    pci_guard_init(&guard); /* boot, on the BSP: no guest runs yet */
    int n = pci_guard_for_nic(&guard, ops, nic, m);
    guard_mcfg = m && m->n ? m : NULL;
    guarding = n >= 0;
    return n;
}

bool net_pci_guarding(void)
{
    return guarding;
}

uint32_t net_pci_port_access(uint16_t port, unsigned size, bool write, uint32_t val)
{
    return pci_guard_port_access(&guard, &hw_ports, port, size, write, val);
}

unsigned net_pci_ecam_pages(bool hidden, uint64_t *out, unsigned max)
{
    if (!guarding || !guard_mcfg)
        return 0;
    uint16_t f[PCI_GUARD_MAX_REGS];
    unsigned nf = hidden ? 1 : pci_guard_functions(&guard, f, PCI_GUARD_MAX_REGS), k = 0;
    if (hidden)
        f[0] = guard.hidden;
    for (unsigned i = 0; i < nf; i++)
        k += pci_mcfg_pages(guard_mcfg, (uint8_t)(f[i] >> 8), (uint8_t)((f[i] >> 3) & 31),
                            (uint8_t)(f[i] & 7), out + (k < max ? k : max), k < max ? max - k : 0);
    return k;
}

uint64_t net_pci_ecam_access(uint64_t gpa, unsigned size, bool write, uint64_t val)
{
    uint64_t ones = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1, keep, r = 0;
    if (!guarding || !guard_mcfg)
        return write ? 0 : ones;
    pci_guard_lock(&guard);
    enum pci_verdict v = pci_guard_ecam_verdict(&guard, guard_mcfg, gpa, size, write, &keep);
    if (v == PCI_HIDE)
        r = write ? 0 : ones;
    else if (!write)
        r = mmio_read_width(gpa, size);
    else if (v == PCI_FILTER)
        mmio_write_width(gpa, size, (mmio_read_width(gpa, size) & keep) | (val & ~keep & ones));
    else
        mmio_write_width(gpa, size, val);
    pci_guard_unlock(&guard);
    return r;
}

void *net_alloc_pages(size_t n)
{
    return page_alloc(&g_pages, n); /* boot time only: the BSP alone allocates */
}
