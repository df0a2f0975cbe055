/*
 * dma_core.c - the core's side of DMA protection (see dma_core.h).
 */
#include "dma_core.h"

#include "core.h"
#include "log.h"
#include "spinlock.h"
#include "vmx.h"
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

int dma_core_hide(void)
{
    for (uint32_t i = 0; st && i < st->nunits; i++) {
        const struct vtd_unit *u = &st->unit[i];
        if (vmx_hide_mmio(u->base, (uint64_t)u->pages * PAGE_SIZE)) {
            log_error("DMA protection: cannot unmap unit %u's registers for the guest", i);
            return -1;
        }
        log_info("DMA protection: unit %u's registers 0x%llx hidden from the guest", i,
                 (unsigned long long)u->base);
    }
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
