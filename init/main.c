/*
 * main.c - the composition root: the one place that knows every layer.
 * On the BSP, once (CORE_OP_INIT): take over the CPU state from the
 * firmware (own GDT/TSS/IDT, own page tables, own stack, all in the
 * reserved region) and prove it works, prepare VMX, bring up the network
 * and the KVMI binding, hand vmx/ its hooks and the device to hide, and
 * hand the CPU back; the loader then launches every CPU as a guest
 * (docs/architecture.md, "Boot path").
 */

#include "core.h"
#include "core_status.h"
#include "kvmi_hv/kvmi_hv.h"
#include "log.h"
#include "net/net.h"
#include "net/pci.h"
#include "vmx/vmx.h"
#include "vmx/vmx_hooks.h"
#include "vtd/dma_core.h"

#define LOG_RING_PAGES 16

extern char __image_start[], __image_end[];

static struct cpu *bsp_cpu;

/* The guest's config-space accesses, performed by net/ (net/pci_guard.c). */
static uint32_t nic_cfg_port(uint16_t port, unsigned size, bool write, uint32_t val)
{
    return net_pci_port_access(port, size, write, val);
}

static uint64_t nic_cfg_mmio(uint64_t gpa, unsigned size, bool write, uint64_t val)
{
    return net_pci_ecam_access(gpa, size, write, val);
}

/* The guest must never reach the NIC: vmx/ hides what net/ found. */
static int hide_nic(void)
{
    const struct pci_dev *d = net_nic_dev();
    if (!d || !net_pci_guarding())
        return 0;
    struct vmx_hidden_dev hd = {
        .name = "NIC",
        .bus = d->bus,
        .dev = d->dev,
        .fn = d->fn,
        .cfg_port = nic_cfg_port,
        .cfg_mmio = nic_cfg_mmio,
    };
    hd.necam = net_pci_ecam_pages(true, hd.ecam_page, VMX_HIDDEN_ECAM);
    hd.nguarded = net_pci_ecam_pages(false, hd.guarded_page, VMX_GUARDED_ECAM);
    if (hd.necam > VMX_HIDDEN_ECAM || hd.nguarded > VMX_GUARDED_ECAM)
        return -1; /* a page left out would leave the NIC reachable */
    for (unsigned i = 0; i < 6; i++) {
        if (d->bar[i] && d->bar_size[i])
            hd.bar[hd.nbar++] = (struct vmx_hidden_bar){
                .base = d->bar[i],
                .size = d->bar_size[i],
                .index = i,
                .io = d->bar_is_io & (1u << i),
            };
        if (d->bar_is_64 & (1u << i))
            i++;
    }
    return vmx_hide_device(&hd);
}

/* The IOMMU's own registers and the NIC's register BARs: no guest device may
 * reach them by DMA, and the guest's CPU sees no IOMMU. */
static int hide_iommu(void)
{
    struct dma_range regs[7];
    unsigned n = 0;
    const struct pci_dev *d = net_nic_dev();
    for (unsigned i = 0; d && i < 6; i++) {
        if (d->bar[i] && d->bar_size[i] && !(d->bar_is_io & (1u << i)))
            regs[n++] = (struct dma_range){d->bar[i], d->bar_size[i]};
        if (d->bar_is_64 & (1u << i))
            i++;
    }
    /* The S3 wake trampoline's page is the hypervisor's code at the next
     * wake: neither the guest's CPUs nor its devices may write it. */
    if (g_bi->wake_page) {
        regs[n++] = (struct dma_range){g_bi->wake_page, 4096};
        if (vmx_hide_mmio(g_bi->wake_page, 4096))
            return -1;
    }
    return dma_core_hide(vmx_hide_mmio, regs, n);
}

/* S3 (vmx/sleep.c, vmx/resume.c): the devices the hypervisor owns. */
static void suspend(void)
{
    net_suspend();
}

static int resume(void)
{
    if (dma_core_resume())
        return -1;
    net_resume();
    return 0;
}

/* Every vCPU's periodic service (the preemption-timer exit): the network,
 * the KVMI session's deadlines, then the VT-d fault records. */
static void poll(void)
{
    service_poll();
    kvmi_hv_poll();
    dma_core_poll();
}

static void print_stats(void)
{
    kvmi_hv_print_stats();
    log_info("stats: %llu device DMA request(s) blocked by VT-d (docs/security.md)",
             (unsigned long long)dma_core_faults());
    log_info("stats: %llu log line(s) dropped from the serial port (guest slowed or stopped it)",
             (unsigned long long)log_serial_dropped());
}

uint64_t core_main(struct boot_info *bi);

uint64_t core_main(struct boot_info *bi)
{
    if (boot_info_check(bi))
        return CORE_ERR_BOOT_INFO;
    g_bi = bi;
    log_init(bi->config.serial_port, bi->config.log_level);
    log_set_cpu_fn(cpu_current_index);
    log_set_tsc_hz(bi->tsc_hz);
    bi->log_drain_flag = (uint64_t)(uintptr_t)log_drain_flag_ptr();

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
    dma_core_init(bi); /* the loader's VT-d state */

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

    /* VMX: controls, vCPUs, EPT; the launches follow from the loader. */
    uint64_t vmx = idt_ok ? (uint64_t)vmx_init(bi, cr3) : CORE_ERR_SELF_TEST;
    if (vmx) {
        fw_state_restore(&fw);
        return vmx;
    }

    net_boot(bi); /* dedicated NIC, lwIP; net_selftest serves here */
    /* Fail closed (docs/security.md): a NIC the guest could reach carries the
     * introspection and DMAs into the region; no CPU is in VMX yet, so refuse. */
    if (hide_nic()) {
        log_error("refusing to start: the NIC could not be hidden from the guest");
        net_abandon();
        fw_state_restore(&fw);
        return CORE_ERR_HIDE;
    }
    /* The guest must not reprogram the IOMMU: the units' registers are blank
     * for it, and no device it owns reaches them or the NIC's registers. */
    if (hide_iommu()) {
        fw_state_restore(&fw);
        return CORE_ERR_NO_MEMORY;
    }
    kvmi_hv_start(bi); /* KVMI engine on the transport (docs/kvmi-hv.md) */

    /* vmx/ calls up only through these: the network and DMA-fault poll and
     * the KVMI binding's exit hooks. */
    struct vmx_hooks hooks = kvmi_hv_vmx_hooks;
    hooks.poll = poll;
    hooks.print_stats = print_stats;
    hooks.suspend = suspend;
    hooks.resume = resume;
    vmx_set_hooks(&hooks);

    fw_state_restore(&fw);
    return idt_ok ? CORE_OK : CORE_ERR_SELF_TEST;
}
