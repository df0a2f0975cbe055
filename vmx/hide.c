/*
 * hide.c - a device the guest must never reach (the dedicated NIC) does not
 * exist for it.  The composition root describes the device (struct
 * vmx_hidden_dev in vmx.h); this file knows no bus or driver.
 *
 *  - Config space through 0xCF8-0xCFF: those ports are intercepted in the
 *    I/O bitmaps (SDM Vol. 3C 25.6.4 I/O-Bitmap Addresses), and every access
 *    that covers one of them, of any size at any port, is performed by the
 *    description's cfg_port (net/pci_guard.c: "no device" for the NIC's
 *    function, writes that would move it filtered, the guest's
 *    CONFIG_ADDRESS a shadow under one lock).
 *  - ECAM: the NIC's 4 KiB config page in every MCFG entry (and alias) is
 *    mapped read-only onto a page of 0xff bytes, so reads say "no device"
 *    and writes exit and are dropped; the pages of the functions whose
 *    registers are protected (the bridges on the NIC's path, the host
 *    bridge) are mapped read-only onto themselves, and their writes exit
 *    and are performed through cfg_mmio.
 *  - BARs: every memory BAR page is mapped the same way (reads all ones,
 *    writes dropped: the guest can neither see nor reprogram the device, nor
 *    aim its DMA through its registers); I/O BAR ports are intercepted,
 *    reads give all ones and writes are dropped.
 * The VT-d remapping units' register pages are blanked the same way
 * (vmx_hide_mmio, called by the composition root): the guest cannot turn the
 * DMA protection off.  Applied on the BSP before any CPU is launched, so no
 * INVEPT is needed.
 */
#include <string.h>

#include "core.h"
#include "insn.h"
#include "log.h"
#include "vmx.h"
#include "vmx_int.h"
#include "vmx_policy.h"

#define MAX_HIDDEN 40 /* the NIC's BARs and ECAM pages, the VT-d units' registers */

struct span {
    uint64_t base, len;
};

static struct span mem_spans[MAX_HIDDEN], io_spans[MAX_HIDDEN];
static unsigned n_mem, n_io;
static uint64_t guarded[VMX_GUARDED_ECAM];
static unsigned n_guarded;
static void *ones_page;
static uint64_t dropped;
static uint32_t (*cfg_port)(uint16_t port, unsigned size, bool write, uint32_t val);
static uint64_t (*cfg_mmio)(uint64_t gpa, unsigned size, bool write, uint64_t val);

static bool in_spans(const struct span *s, unsigned n, uint64_t a)
{
    for (unsigned i = 0; i < n; i++)
        if (a >= s[i].base && a - s[i].base < s[i].len)
            return true;
    return false;
}

bool vmx_hidden_device_gpa(uint64_t gpa)
{
    return in_spans(mem_spans, n_mem, gpa);
}

static int map_blank(uint64_t base, uint64_t len)
{
    uint64_t ones = (uint64_t)(uintptr_t)ones_page;
    for (uint64_t a = base & ~(PAGE_SIZE - 1); a < base + len; a += PAGE_SIZE) {
        /* UC like the MMIO it replaces; read-only so writes exit (exit_ept.c) */
        int rc = ept_map(&g_ept, a, ones, PAGE_SIZE, MEMTYPE_UC, EPT_R);
        if (rc)
            return rc;
    }
    if (n_mem < MAX_HIDDEN)
        mem_spans[n_mem++] = (struct span){base & ~(PAGE_SIZE - 1), len};
    return 0;
}

static int need_ones_page(void)
{
    if (!ones_page && (ones_page = page_alloc(&g_pages, 1)))
        memset(ones_page, 0xff, PAGE_SIZE);
    return ones_page ? 0 : -1;
}

int vmx_hide_mmio(uint64_t base, uint64_t len)
{
    if (need_ones_page() || n_mem == MAX_HIDDEN)
        return -1;
    return map_blank(base, len);
}

int vmx_hide_device(const struct vmx_hidden_dev *d)
{
    if (need_ones_page())
        return -1;
    for (uint16_t p = 0xcf8; p <= 0xcff; p++)
        io_bitmap_intercept(g_vmx.io_bitmap_a, g_vmx.io_bitmap_b, p);
    cfg_port = d->cfg_port;
    cfg_mmio = d->cfg_mmio;
    for (unsigned i = 0; i < d->nbar && i < VMX_HIDDEN_BARS; i++) {
        const struct vmx_hidden_bar *b = &d->bar[i];
        if (b->io) {
            for (uint64_t p = b->base; p < b->base + b->size && p <= 0xffff; p++)
                io_bitmap_intercept(g_vmx.io_bitmap_a, g_vmx.io_bitmap_b, (uint16_t)p);
            if (n_io < MAX_HIDDEN)
                io_spans[n_io++] = (struct span){b->base, b->size};
        } else if (map_blank(b->base, b->size)) {
            log_error("hide: cannot unmap BAR%u of the %s", b->index, d->name);
            return -1;
        }
    }
    for (unsigned i = 0; i < d->necam && i < VMX_HIDDEN_ECAM; i++)
        if (n_mem == MAX_HIDDEN || map_blank(d->ecam_page[i], PAGE_SIZE)) {
            log_error("hide: cannot unmap the %s's ECAM page 0x%llx", d->name,
                      (unsigned long long)d->ecam_page[i]);
            return -1;
        }
    for (unsigned i = 0; i < d->nguarded && i < VMX_GUARDED_ECAM; i++) {
        uint64_t a = d->guarded_page[i] & ~(PAGE_SIZE - 1);
        /* reads reach the device; writes exit (SDM Vol. 3C 29.3.3.2 EPT Violations) */
        if (!cfg_mmio || ept_map(&g_ept, a, a, PAGE_SIZE, MEMTYPE_UC, EPT_R)) {
            log_error("hide: cannot write-protect the ECAM page 0x%llx", (unsigned long long)a);
            return -1;
        }
        guarded[n_guarded++] = a;
    }
    log_info("hide: %s %02x:%02x.%x hidden from the guest (config space, %u ECAM page(s), %u "
             "memory and %u I/O BAR ranges; %u ECAM page(s) write-filtered)",
             d->name, d->bus, d->dev, d->fn, d->necam, n_mem - d->necam, n_io, n_guarded);
    return 0;
}

static uint64_t merge(uint64_t rax, unsigned size, uint64_t val)
{
    uint64_t mask = size == 4 ? 0xffffffffull : (1ull << (8 * size)) - 1;
    /* a 32-bit IN zero-extends into RAX; narrower ones merge (SDM Vol. 1 3.4.1.1 General-Purpose
     * Registers in 64-Bit Mode) */
    return size == 4 ? (val & mask) : (rax & ~mask) | (val & mask);
}

bool vmx_hide_io(struct vcpu *v, uint16_t port, unsigned size, bool in)
{
    struct guest_regs *r = v->regs;
    /* SDM Vol. 3C 26.1.3 Instructions That Cause VM Exits Conditionally: an access exits if the
     * bitmap bit of any port it touches is set, so one may start below 0xCF8. */
    if (cfg_port && port <= 0xcff && (uint32_t)port + size > 0xcf8) {
        uint32_t val = cfg_port(port, size, !in, (uint32_t)r->rax);
        if (in)
            r->rax = merge(r->rax, size, val);
        return true;
    }
    if (!in_spans(io_spans, n_io, port))
        return false;
    if (in)
        r->rax = merge(r->rax, size, 0xffffffffu);
    else
        dropped++;
    return true;
}

/* exit_ept.c */
bool guest_decode_store(struct vcpu *v, struct insn_store *s);

bool vmx_guarded_write(struct vcpu *v, uint64_t gpa)
{
    bool found = false;
    for (unsigned i = 0; i < n_guarded; i++)
        found |= (gpa & ~(PAGE_SIZE - 1)) == guarded[i];
    struct insn_store s;
    if (!found || !guest_decode_store(v, &s))
        return false;
    uint64_t val = insn_store_value(&s, s.src == INSN_SRC_REG ? vcpu_gpr(v->regs, s.reg) : 0);
    if (s.xchg) /* XCHG: the register gets what memory held */
        vcpu_set_gpr(v->regs, s.reg, cfg_mmio(gpa, s.size, false, 0));
    cfg_mmio(gpa, s.size, true, val);
    vmx_advance_rip(v, s.len);
    return true;
}
