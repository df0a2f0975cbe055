/*
 * main.c - the core's life on the BSP for now: take over the CPU state
 * from the firmware (own GDT/TSS/IDT, own page tables, own stack, all in
 * the reserved region), prove it works, and hand the CPU back.  The VMX
 * issue replaces "hand back" with "launch the firmware as a guest".
 */
#include <string.h>

#include "core.h"
#include "core_status.h"
#include "dma_core.h"
#include "log.h"
#include "kvmi_hv.h"
#include "net.h"
#include "vmx.h"

struct boot_info *g_bi;
struct page_pool g_pages;

#define LOG_RING_PAGES 16

extern char __image_start[], __image_end[];

static struct cpu *bsp_cpu;
struct cpu *g_cpus[BI_MAX_CPUS];

uint64_t core_main(struct boot_info *bi);

uint64_t core_main(struct boot_info *bi)
{
    if (boot_info_check(bi))
        return CORE_ERR_BOOT_INFO;
    g_bi = bi;
    log_init(bi->config.serial_port, bi->config.log_level);
    log_set_cpu_fn(cpu_current_index);

    uint64_t image_end = (uint64_t)(uintptr_t)__image_end;
    uint64_t region_end = bi->region_base + bi->region_size;
    uint64_t pool_start = (image_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    if (pool_start >= region_end ||
        page_pool_init(&g_pages, (void *)(uintptr_t)pool_start, region_end - pool_start))
        return CORE_ERR_NO_MEMORY;
    struct log_ring *ring =
        log_ring_init(page_alloc(&g_pages, LOG_RING_PAGES), LOG_RING_PAGES * PAGE_SIZE);
    log_set_ring(ring);

    log_info("core running at 0x%llx (reserved region 0x%llx size 0x%llx)",
             (unsigned long long)(uintptr_t)__image_start, (unsigned long long)bi->region_base,
             (unsigned long long)bi->region_size);
    log_info("%u CPU(s), TSC %llu kHz, ACPI RSDP 0x%llx, %u memory ranges", bi->ncpus,
             (unsigned long long)(bi->tsc_hz / 1000), (unsigned long long)bi->acpi_rsdp, bi->nmem);
    dma_core_init(bi); /* the loader's VT-d state (vtd/dma_core.c) */

    struct fw_state fw;
    fw_state_save(&fw);

    /* Every CPU's tables now: the launches on the APs must not allocate. */
    for (uint32_t i = 0; i < bi->ncpus; i++) {
        g_cpus[i] = page_alloc(&g_pages, (sizeof(struct cpu) + PAGE_SIZE - 1) / PAGE_SIZE);
        if (!g_cpus[i] || cpu_setup(g_cpus[i], i)) {
            fw_state_restore(&fw);
            return CORE_ERR_NO_MEMORY;
        }
    }
    bsp_cpu = g_cpus[bi->bsp];
    cpu_load_tables(bsp_cpu);

    uint64_t cr3 = paging_build(bi_mem_top(bi->mem, bi->nmem));
    if (!cr3) {
        fw_state_restore(&fw);
        return CORE_ERR_NO_MEMORY;
    }
    write_cr3(cr3);

    /* Self-test: a #BP through our IDT, on our tables, must come back. */
    __asm__ volatile("int3");
    bool idt_ok = bsp_cpu->bp_count == 1;

    log_info("own GDT/IDT/page tables live (cr3 0x%llx), IDT self-test %s, %llu of %llu pages free",
             (unsigned long long)cr3, idt_ok ? "passed" : "FAILED",
             (unsigned long long)(g_pages.npages - g_pages.used),
             (unsigned long long)g_pages.npages);

    /* VMX (issue 3): controls, vCPUs, EPT; the launches follow from the loader. */
    uint64_t vmx = idt_ok ? (uint64_t)vmx_init(bi, cr3) : CORE_ERR_SELF_TEST;
    if (vmx) {
        fw_state_restore(&fw);
        return vmx;
    }

    net_boot(bi);       /* net/ (issue 4): dedicated NIC, lwIP; net_selftest serves here */
    if (vmx_hide_nic()) /* issue 4: the guest must never reach the NIC */
        log_error("the NIC could not be hidden from the guest");
    if (dma_core_hide()) { /* the guest must not reprogram the IOMMU */
        fw_state_restore(&fw);
        return CORE_ERR_NO_MEMORY;
    }
    kvmi_hv_start(bi); /* KVMI engine on the transport (vmx/kvmi_arch.c, docs/kvmi-hv.md) */

    fw_state_restore(&fw);
    return idt_ok ? CORE_OK : CORE_ERR_SELF_TEST;
}
