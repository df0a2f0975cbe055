/*
 * main.c - hv.efi, the GNU-EFI loader.  In order:
 *   1. read hv.conf beside hv.efi (refuse on any error, naming file:line);
 *   2. check the VT-x features we need (refuse naming each missing one);
 *   3. gather what the core needs: CPUs (MP services), ACPI RSDP, TSC rate;
 *   4. reserve one region (EfiReservedMemoryType, `memory` MiB, 2 MiB
 *      aligned) that the OS will never reclaim, and place in it the boot
 *      info and the core image (carried inside hv.efi, see core_blob.S);
 *   5. call the core on the BSP to set up (CORE_OP_INIT), then on every AP
 *      through EFI MP services and last on the BSP to launch (CORE_OP_LAUNCH):
 *      each call returns as a guest of the hypervisor, so the firmware runs on;
 *      then return to the firmware (or chain-load `chain`).
 * A refusal returns an error status and leaves the machine as it was, so
 * the firmware simply boots on without a hypervisor.
 */
#include <efi.h>
#include <efilib.h>

#include "boot.h"
#include "boot_info.h"
#include "vtd/dma_boot.h"
#ifdef HV_DMATEST
#include "dmatest.h"
#endif
#include "core_status.h"
#include "efi_mp.h"
#include "elf_load.h"
#include "hv_config.h"
#include "log.h"
#include "vmx/vmx_caps.h"
#include "x86.h"

#define HV_VERSION "0.1"
#define TWO_MIB    (2ull << 20)

extern const uint8_t core_blob[], core_blob_end[];

typedef uint64_t (*core_entry_fn)(struct boot_info *bi, uint64_t op);

static EFI_GUID acpi20_guid = {
    0x8868e871, 0xe4f1, 0x11d3, {0xbc, 0x22, 0x00, 0x80, 0xc7, 0x3c, 0x88, 0x81}};
static EFI_GUID mp_guid = EFI_MP_SERVICES_PROTOCOL_GUID;

/* Also show log lines on the firmware console: a person at the machine sees refusals. */
static void console_sink(const char *line, size_t len)
{
    CHAR16 buf[260];
    size_t n = 0;
    for (size_t i = 0; i < len && n < 257; i++) {
        if (line[i] == '\n')
            buf[n++] = L'\r';
        buf[n++] = (CHAR16)(unsigned char)line[i];
    }
    buf[n] = 0;
    ST->ConOut->OutputString(ST->ConOut, buf);
}

/*
 * True when the firmware's console already includes a serial terminal (a
 * UART node in the ConOut variable's device path, UEFI 2.x 10.3.4.9): then
 * our direct COM1 output is enough and mirroring to ConOut would print
 * every line twice on the serial port.
 */
static bool console_has_uart(void)
{
    UINTN size = 0;
    EFI_DEVICE_PATH *dp = LibGetVariableAndSize(L"ConOut", &EfiGlobalVariable, &size);
    bool uart = false;
    for (EFI_DEVICE_PATH *n = dp; n && (uint8_t *)n < (uint8_t *)dp + size;) {
        UINTN len = DevicePathNodeLength(n);
        if (len < 4)
            break;
        if (DevicePathType(n) == MESSAGING_DEVICE_PATH && DevicePathSubType(n) == MSG_UART_DP)
            uart = true;
        n = (EFI_DEVICE_PATH *)((uint8_t *)n + len);
    }
    if (dp)
        FreePool(dp);
    return uart;
}

static void report_missing(void *ctx, const char *feature, const char *detail)
{
    (void)ctx;
    log_error("missing: %s (%s)", feature, detail);
}

static EFI_STATUS check_vmx(void)
{
    struct vmx_cpu_facts facts;
    vmx_caps_read(&facts);
    int missing = vmx_caps_check(&facts, report_missing, NULL);
    if (missing) {
        log_error("refusing to start: %d required VT-x feature(s) missing; "
                  "the firmware continues without a hypervisor",
                  missing);
        return EFI_UNSUPPORTED;
    }
    log_info("VT-x features: all required present");
    return EFI_SUCCESS;
}

static uint64_t find_rsdp(void)
{
    void *p = NULL;
    if (LibGetSystemConfigurationTable(&acpi20_guid, &p) == EFI_SUCCESS && p)
        return (uint64_t)(uintptr_t)p;
    if (LibGetSystemConfigurationTable(&AcpiTableGuid, &p) == EFI_SUCCESS && p)
        return (uint64_t)(uintptr_t)p;
    return 0;
}

static uint64_t calibrate_tsc(void)
{
    uint64_t t0 = rdtsc();
    BS->Stall(10000); /* 10 ms */
    return (rdtsc() - t0) * 100;
}

/*
 * Reserves `bytes` of EfiReservedMemoryType, 2 MiB aligned so the EPT hole
 * that hides it needs no page splits.  Over-allocates by 2 MiB and gives the
 * unaligned head and tail back.
 */
static EFI_STATUS reserve_region(uint64_t bytes, uint64_t *base)
{
    UINTN pages = (bytes + TWO_MIB) / EFI_PAGE_SIZE;
    EFI_PHYSICAL_ADDRESS a = 0xffffffff; /* below 4 GiB when possible: real-mode/AP code */
    EFI_STATUS s = BS->AllocatePages(AllocateMaxAddress, EfiReservedMemoryType, pages, &a);
    if (EFI_ERROR(s)) {
        a = 0;
        s = BS->AllocatePages(AllocateAnyPages, EfiReservedMemoryType, pages, &a);
        if (EFI_ERROR(s))
            return s;
    }
    uint64_t aligned = (a + TWO_MIB - 1) & ~(TWO_MIB - 1);
    uint64_t head = aligned - a, tail = TWO_MIB - head;
    if (head)
        BS->FreePages(a, head / EFI_PAGE_SIZE);
    if (tail)
        BS->FreePages(aligned + bytes, tail / EFI_PAGE_SIZE);
    *base = aligned;
    return EFI_SUCCESS;
}

/* Copies the firmware's memory map into the boot info, sorted and merged. */
static EFI_STATUS fill_memory_map(struct boot_info *bi)
{
    UINTN n = 0, key, dsize;
    UINT32 dver;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&n, &key, &dsize, &dver);
    if (!map)
        return EFI_OUT_OF_RESOURCES;
    uint32_t out = 0;
    for (UINTN i = 0; i < n; i++) {
        EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)((uint8_t *)map + i * dsize);
        if (out == BI_MAX_MEM) {
            out = bi_mem_normalize(bi->mem, out);
            if (out == BI_MAX_MEM) {
                FreePool(map);
                return EFI_BUFFER_TOO_SMALL;
            }
        }
        struct bi_mem_range *r = &bi->mem[out++];
        r->base = d->PhysicalStart;
        r->size = d->NumberOfPages * EFI_PAGE_SIZE;
        r->type = d->Type;
        r->attr = d->Attribute;
        if (r->base >= bi->region_base && r->base + r->size <= bi->region_base + bi->region_size)
            r->type = BI_HV_REGION;
    }
    FreePool(map);
    bi->nmem = bi_mem_normalize(bi->mem, out);
    return EFI_SUCCESS;
}

struct launch_ctx {
    core_entry_fn core;
    struct boot_info *bi;
    EFI_MP_SERVICES_PROTOCOL *mp;
    volatile uint64_t status[BI_MAX_CPUS]; /* core status + 1; 0 = did not run */
};

/* Runs on each AP (MP services): enter the core, come back as its guest. */
static VOID EFIAPI ap_launch(VOID *arg)
{
    struct launch_ctx *c = arg;
    UINTN me = BI_MAX_CPUS;
    c->mp->WhoAmI(c->mp, &me);
    uint64_t s = c->core(c->bi, CORE_OP_LAUNCH);
    if (me < BI_MAX_CPUS)
        c->status[me] = s + 1;
}

/* Waits for AP i to come back from the core as a guest, with an error, or parked. */
static uint64_t wait_ap(struct launch_ctx *c, uint32_t i)
{
    volatile uint32_t *flags = &c->bi->cpus[i].flags;
    while (!c->status[i] && !(*flags & BI_CPU_PARKED))
        BS->Stall(10);
    return c->status[i];
}

/*
 * Blue-pills every CPU: the APs one at a time (so the log reads in order and
 * a failure names its CPU), then the BSP, which comes back here as a guest.
 * Each AP starts in non-blocking mode because one whose launch fails after
 * others entered VMX never returns: the core parks it (vmx/launch.c) and
 * marks it BI_CPU_PARKED.  A failure before any CPU entered VMX is a refusal
 * (the firmware boots on without the hypervisor); the core never returns a
 * failure once one did (docs/security.md, "Fail closed").
 */
/* The key's copies in memory the OS gets, and the key in cfg, overwritten. */
static void wipe_key(struct hv_config *cfg)
{
    if (cfg->has_key) {
        static char needle[HV_CONF_STR];
        size_t n = 0;
        for (; n < sizeof(needle) - 1 && cfg->key[n]; n++)
            needle[n] = cfg->key[n];
        boot_wipe(&cfg->key, sizeof(cfg->key));
        unsigned copies = key_scrub(needle, n);
        boot_wipe(needle, sizeof(needle));
        log_info("key: %u stray cop%s overwritten in memory the OS gets", copies,
                 copies == 1 ? "y" : "ies");
    }
    boot_wipe(&cfg->key, sizeof(cfg->key));
    cfg->has_key = false;
}

static bool bsp_is_guest; /* nothing more on the log from here: see launch_all */

static EFI_STATUS launch_all(core_entry_fn core, struct boot_info *bi, struct hv_config *cfg)
{
    static struct launch_ctx ctx;
    ctx.core = core;
    ctx.bi = bi;
    uint32_t taken = 0, parked = 0;
    if (bi->ncpus > 1 && BS->LocateProtocol(&mp_guid, NULL, (void **)&ctx.mp) != EFI_SUCCESS) {
        log_error("refusing to start: EFI MP services went away; the APs cannot be launched");
        return EFI_UNSUPPORTED;
    }
    for (uint32_t i = 0; i < bi->ncpus; i++) {
        if (i == bi->bsp)
            continue;
        EFI_EVENT done = NULL;
        EFI_STATUS s = BS->CreateEvent(0, 0, NULL, NULL, &done);
        if (!EFI_ERROR(s))
            s = ctx.mp->StartupThisAP(ctx.mp, ap_launch, i, done, 0, &ctx, NULL);
        if (s == EFI_UNSUPPORTED) {
            /* PI allows refusing non-blocking mode after ReadyToBoot: block instead, so a
             * parked AP stops the machine here rather than boot it half virtualized. */
            log_warn("CPU %u: non-blocking StartupThisAP unsupported; a CPU the core parks "
                     "stops the boot",
                     i);
            s = ctx.mp->StartupThisAP(ctx.mp, ap_launch, i, NULL, 0, &ctx, NULL);
        }
        uint64_t st = EFI_ERROR(s) ? 0 : wait_ap(&ctx, i);
        if (st == CORE_OK + 1) {
            taken++;
            log_info("CPU %u (APIC %u) runs as a guest", i, bi->cpus[i].apic_id);
            continue;
        }
        if (bi->cpus[i].flags & BI_CPU_PARKED) {
            parked++; /* the core said why */
            continue;
        }
        if (EFI_ERROR(s))
            log_error("CPU %u (APIC %u): StartupThisAP: status 0x%llx", i, bi->cpus[i].apic_id,
                      (unsigned long long)s);
        else
            log_error("CPU %u (APIC %u) not taken: %s", i, bi->cpus[i].apic_id,
                      core_status_name(st - 1));
        if (!taken) {
            log_error("refusing to start: CPU %u cannot be virtualized and no CPU entered VMX", i);
            return EFI_LOAD_ERROR;
        }
        /* Outside VMX while others are guests: stop the machine rather than boot it so. */
        log_error("halting: CPU %u runs outside VMX while %u CPU(s) are guests", i, taken);
        for (;;)
            __asm__ volatile("cli; hlt");
    }
    /* The last lines of a start go out now, under the core's UART feeder flag:
     * once this CPU is a guest the flag lies in memory it cannot write, and its
     * lines would mix with the core's (the APs log as they serve the NIC). */
    wipe_key(cfg);
    log_info("launching the BSP: the hypervisor owns %u CPU(s)%s; then %s", taken + 1,
             parked ? "; parked CPUs are lost to the guest" : "",
             cfg->chain[0] ? "chaining to the OS loader" : "returning to firmware");
    log_share_drain(NULL);
    /* From here on the boot info is in memory the guest cannot see: no more bi->.  With APs
     * in VMX a failing BSP parks in the core and never comes back. */
    uint64_t s = core(bi, CORE_OP_LAUNCH);
    if (s != CORE_OK) {
        log_error("BSP launch failed: %s", core_status_name(s));
        return EFI_LOAD_ERROR;
    }
    bsp_is_guest = true;
    return EFI_SUCCESS;
}

static EFI_STATUS start_core(EFI_HANDLE image, struct hv_config *cfg)
{
    size_t blob_len = (size_t)(core_blob_end - core_blob);
    const char *why = NULL;
    uint64_t image_bytes = elf_image_size(core_blob, blob_len, &why);
    if (!image_bytes) {
        log_error("core image is corrupt: %s", why);
        return EFI_LOAD_ERROR;
    }
    uint64_t region_bytes = (uint64_t)cfg->memory_mib << 20;
    uint64_t bi_bytes = (sizeof(struct boot_info) + EFI_PAGE_SIZE - 1) & ~(EFI_PAGE_SIZE - 1ull);
    /* the core needs room beyond its image for stacks, tables and its log */
    if (bi_bytes + image_bytes + (4ull << 20) > region_bytes) {
        log_error("memory = %u MiB is too small for the core image (%llu KiB)", cfg->memory_mib,
                  (unsigned long long)(image_bytes >> 10));
        return EFI_BUFFER_TOO_SMALL;
    }
    uint64_t rsdp = find_rsdp();
    EFI_STATUS s = cpus_check(rsdp);
    if (EFI_ERROR(s))
        return s;
    uint64_t base;
    s = reserve_region(region_bytes, &base);
    if (EFI_ERROR(s)) {
        log_error("cannot reserve %u MiB (EfiReservedMemoryType): status 0x%llx", cfg->memory_mib,
                  (unsigned long long)s);
        return s;
    }

    /* Layout: [boot info][VT-d tables][core image][pages the core allocates]. */
    struct boot_info *bi = (struct boot_info *)(uintptr_t)base;
    for (uint64_t i = 0; i < bi_bytes; i++)
        ((uint8_t *)bi)[i] = 0;
    bi->magic = BOOT_INFO_MAGIC;
    bi->version = BOOT_INFO_VERSION;
    bi->size = sizeof(*bi);
    bi->region_base = base;
    bi->region_size = region_bytes;
    bi->image_size = image_bytes;
    bi->config = *cfg;
    bi->acpi_rsdp = rsdp;
    power_find(bi);
    bi->tsc_hz = calibrate_tsc();
    s = cpus_collect(bi);
    /* boot/nic_claim.c frees the dedicated NIC; a NIC the configuration names must exist */
    if (!EFI_ERROR(s) && nic_claim(bi))
        s = EFI_NOT_FOUND;
    if (EFI_ERROR(s)) {
        BS->FreePages(base, region_bytes / EFI_PAGE_SIZE);
        return s;
    }
    s = fill_memory_map(bi);
    if (EFI_ERROR(s)) {
        log_error("memory map does not fit the boot info (%u entries)", BI_MAX_MEM);
        BS->FreePages(base, region_bytes / EFI_PAGE_SIZE);
        return s;
    }

    /* DMA protection (vtd/dma_boot.c) while the region holds nothing secret:
     * its tables go between the boot info and the core image. */
    static struct dma_boot dma;
    uint64_t vtd_bytes = 0;
    if (dma_boot_plan(bi, &dma) ||
        bi_bytes + (vtd_bytes = dma.pages * EFI_PAGE_SIZE) + image_bytes + (4ull << 20) >
            region_bytes) {
        if (vtd_bytes)
            log_error("memory = %u MiB is too small for the VT-d tables (%llu KiB)",
                      cfg->memory_mib, (unsigned long long)(vtd_bytes >> 10));
        BS->FreePages(base, region_bytes / EFI_PAGE_SIZE);
        return EFI_UNSUPPORTED;
    }
    bi->image_base = base + bi_bytes + vtd_bytes;
    if (dma_boot_enable(&dma, bi, base + bi_bytes))
        return EFI_UNSUPPORTED; /* the region stays reserved: a unit may use the tables */
#ifdef HV_DMATEST
    return dmatest_finish(bi);
#endif

    uint64_t entry;
    why = elf_load(core_blob, blob_len, (void *)(uintptr_t)bi->image_base,
                   region_bytes - bi_bytes - vtd_bytes, &entry);
    if (why) {
        log_error("cannot load the core image: %s", why);
        BS->FreePages(base, region_bytes / EFI_PAGE_SIZE);
        return EFI_LOAD_ERROR;
    }
    why = boot_info_check(bi);
    if (why) {
        log_error("boot info is inconsistent: %s", why);
        BS->FreePages(base, region_bytes / EFI_PAGE_SIZE);
        return EFI_LOAD_ERROR;
    }
    log_info("reserved 0x%llx-0x%llx for the hypervisor, core image %llu KiB, %u CPU(s)",
             (unsigned long long)base, (unsigned long long)(base + region_bytes - 1),
             (unsigned long long)(image_bytes >> 10), bi->ncpus);

    core_entry_fn core = (core_entry_fn)(uintptr_t)entry;
    uint64_t status = core(bi, CORE_OP_INIT);
    /* One UART feeder for both images from now on: the APs' lines, logged by
     * the core, never mix with ours. */
    log_share_drain((volatile int *)(uintptr_t)bi->log_drain_flag);
    log_info("core returned to loader: %s", core_status_name(status));
    (void)image;
    /*
     * The region stays reserved even on failure: the core may have left
     * live CPU state there (the TSS that TR still points to).
     */
    if (status != CORE_OK)
        return EFI_LOAD_ERROR;
    return launch_all(core, bi, cfg);
}

/* Everything between reading the configuration and handing the machine back. */
static EFI_STATUS run(EFI_HANDLE image, struct hv_config *cfg)
{
    EFI_STATUS s = boot_load_config(image, cfg);
    if (EFI_ERROR(s)) {
        log_error("refusing to start: bad configuration");
        return s;
    }
    log_init(cfg->serial_port, cfg->log_level);

#ifdef HV_DMATEST /* the DMA test build runs where VT-x is absent (QEMU TCG) */
    (void)check_vmx;
#else
    s = check_vmx();
    if (EFI_ERROR(s))
        return s;
#endif

    s = start_core(image, cfg);
    if (EFI_ERROR(s))
        log_error("refusing to start: the core did not come up");
    return s;
}

/* SysV ABI: gnu-efi's crt0 calls efi_main(image, systab) in %rdi/%rsi. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    InitializeLib(image, systab);
    struct hv_config cfg;
    config_defaults(&cfg);
    log_init(cfg.serial_port, cfg.log_level);
    if (!console_has_uart())
        log_set_sink(console_sink);
    log_info("hv.efi " HV_VERSION " starting");

    EFI_STATUS s = run(image, &cfg);
    /* The key now lives only in the region (bi->config), which the guest cannot read, and in
     * the firmware's variable store; this stack and every buffer the firmware's drivers
     * filled with it go to the OS (a start wiped them before the BSP's launch). */
    wipe_key(&cfg);
    if (EFI_ERROR(s))
        return s;
    if (cfg.chain[0])
        return boot_chain(image, cfg.chain);
    if (!bsp_is_guest)
        log_info("returning to firmware");
    return EFI_SUCCESS;
}
