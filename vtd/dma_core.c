/*
 * dma_core.c - the core's side of DMA protection (see dma_core.h).
 */
#include "dma_core.h"

#include "core.h"
#include "log.h"
#include "spinlock.h"
#include "vtd.h"

#define FAULT_LOG_MAX 32 /* faults logged one by one; later ones are only counted */

static struct vtd_state *st;
static spinlock_t poll_lock;
static uint64_t logged;

void dma_core_init(const struct boot_info *bi)
{
    st = vtd_attach(bi->vtd_area);
    if (st)
        log_info("DMA protection: %u remapping unit(s) on, %llu table page(s) left for the NIC",
                 st->nunits, (unsigned long long)((st->pool_end - st->pool_next) / PAGE_SIZE));
}

int dma_core_resume(void)
{
    if (!st)
        return 0;
    const char *why = vtd_reprogram(st);
    if (why) {
        log_error("DMA protection after S3: %s", why);
        return -1;
    }
    log_info("DMA protection after S3: %u remapping unit(s) on again", st->nunits);
    return 0;
}

/*
 * Removes a device's registers from the guest's domain too: a device the
 * guest owns then cannot reach them by peer-to-peer DMA either.
 */
static int hide_from_devices(uint64_t base, uint64_t len, const char *what)
{
    if (!vtd_guest_unmap(st, base, len))
        return 0;
    log_error("DMA protection: cannot remove %s from the devices' view", what);
    return -1;
}

int dma_core_hide(int (*hide_mmio)(uint64_t base, uint64_t len), const struct dma_range *dev_regs,
                  unsigned n)
{
    if (!st)
        return 0;
    for (uint32_t i = 0; i < st->nunits; i++) {
        const struct vtd_unit *u = &st->unit[i];
        uint64_t len = (uint64_t)u->pages * PAGE_SIZE;
        if (hide_mmio(u->base, len)) {
            log_error("DMA protection: cannot unmap unit %u's registers for the guest", i);
            return -1;
        }
        if (hide_from_devices(u->base, len, "a remapping unit's registers"))
            return -1;
        log_info("DMA protection: unit %u's registers 0x%llx hidden from the guest", i,
                 (unsigned long long)u->base);
    }
    for (unsigned i = 0; i < n; i++)
        if (hide_from_devices(dev_regs[i].base, dev_regs[i].len, "the NIC's registers"))
            return -1;
    return 0;
}

void *dma_core_nic_alloc(size_t npages)
{
    void *p = page_alloc(&g_pages, npages);
    if (p && vtd_nic_map(st, (uint64_t)(uintptr_t)p, npages * PAGE_SIZE)) {
        log_error("DMA protection: no table pages left to map the NIC's buffers");
        return NULL;
    }
    return p;
}

static void report(const struct vtd_fault *f)
{
    if (logged++ >= FAULT_LOG_MAX)
        return;
    log_warn("DMA blocked: unit %u, device %02x:%02x.%x %s 0x%llx (fault reason %u)%s", f->unit,
             f->sid >> 8, f->sid >> 3 & 31, f->sid & 7, f->write ? "write to" : "read from",
             (unsigned long long)f->addr, f->reason,
             logged == FAULT_LOG_MAX ? "; further faults are only counted" : "");
}

void dma_core_poll(void)
{
    if (!st || !spin_trylock(&poll_lock))
        return;
    vtd_poll_faults(st, report);
    spin_unlock(&poll_lock);
}

uint64_t dma_core_faults(void)
{
    return st ? st->faults : 0;
}
