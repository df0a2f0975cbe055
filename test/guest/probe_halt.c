/*
 * probe_halt (hostile=2): one vCPU of a ring-0 guest stops for good, and the
 * hypervisor must go on serving everything else (docs/security.md).
 *
 * An AP points CR3 far above RAM (2^(MAXPHYADDR-1): above the memory map,
 * root mode's identity map and EPT's) and executes INT3 from a page whose
 * global translation is still in its TLB.  The introspector intercepts
 * breakpoints on that vCPU, so root mode translates RIP through the guest's
 * paging for the BREAKPOINT event's GPA, starting at that CR3: the walk must
 * fail without a read (vmx/gwalk.c reads guest RAM only) and the event carry
 * GPA ~0; before, root mode page-faulted there and its CPU stopped while
 * still marked running.  The introspector then moves RIP past the INT3 and
 * answers RETRY; the next instruction stores to a page of the hypervisor's
 * region (address from the host, mailbox word 2), which needs a translation
 * (a write to a write-protected page): the AP's own walk leaves EPT's map, or
 * on a TLB hit root mode's decode walk fails; either way the vCPU is halted
 * for good.  The host side (test/emu/hostile_scenarios.py) then sends 500
 * commands to the halted vCPU (each must be refused at once) and checks that
 * the session and the other vCPU still answer.
 *
 * Protocol: the probe announces a mailbox page and waits for HOSTILE_GO in its
 * first word; it then starts the AP (without waiting for it: it never
 * returns), logs that the AP reached the store, and waits for HOSTILE_GO in
 * the second word before it ends.
 */
#include "agent.h"
#include "cpu.h"
#include "mp.h"

#define HOSTILE_GO  0x4f472d454c495448ull /* "HTILE-GO", as probe_hostile.c */
#define CR4_PGE     (1ull << 7)
#define TARGET_OFF  0x80
#define TABLE_PAGES 6 /* PML4, PDPT, four page directories: 4 GiB in 2 MiB pages */

struct halt_run {
    uint64_t tables;  /* PML4 of a global identity map of the low 4 GiB */
    uint64_t bad_cr3; /* far above RAM and the hypervisor's identity map */
    uint64_t target;  /* a write-protected page: the hypervisor's region */
    volatile uint64_t stage;
};

static struct halt_run run;

/*
 * Loads cr3, then (with trap) INT3, then stores v to *p, with interrupts off
 * so that nothing else needs a translation in between.  Small and 64-byte
 * aligned: one code page, which the first (harmless) call puts in the TLB.
 */
__attribute__((noinline, aligned(64))) static void
cr3_then_store(uint64_t cr3, volatile uint32_t *p, uint32_t v, uint64_t trap)
{
    __asm__ volatile("pushfq\n\t"
                     "cli\n\t"
                     "mov %0, %%cr3\n\t"
                     "test %3, %3\n\t"
                     "jz 1f\n\t"
                     "int3\n"
                     "1:\n\t"
                     "movl %2, (%1)\n\t"
                     "popfq"
                     :
                     : "r"(cr3), "r"(p), "r"(v), "r"(trap)
                     : "memory", "cc");
}

static VOID EFIAPI ap_halt(VOID *arg)
{
    struct halt_run *h = arg;
    __asm__ volatile("mov %0, %%cr4" : : "r"(read_cr4() | CR4_PGE) : "memory");
    volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)(h->target + TARGET_OFF);
    /* Our own tables, every entry global, accessed and dirty: every page used
     * below (code, stack, this struct, the target) gets a global TLB entry.
     * The first store is dropped by the hypervisor (the region is not ours). */
    cr3_then_store(h->tables, p, *p, 0);
    h->stage = 1;
    cr3_then_store(h->bad_cr3, p, 0x5a5a5a5a, 1);
    h->stage = 2; /* not reached: the hypervisor halts this vCPU */
    for (;;)
        cpu_relax();
}

static void build_tables(volatile uint64_t *t)
{
    volatile uint64_t *pml4 = t, *pdpt = t + 512, *pd = t + 1024;
    uint64_t base = (uint64_t)(uintptr_t)t;
    pml4[0] = (base + 0x1000) | 0x23; /* P W A */
    for (uint64_t g = 0; g < 4; g++) {
        pdpt[g] = (base + 0x2000 + g * 0x1000) | 0x23;
        for (uint64_t j = 0; j < 512; j++)
            pd[g * 512 + j] = (g << 30 | j << 21) | 0x1e3; /* P W A D PS G */
    }
}

enum verdict probe_hostile_halt(struct agent *a, char *reason, size_t size)
{
    if (a->opt.hostile != 2) {
        str_printf(reason, size, "needs hostile=2");
        return PROBE_SKIP;
    }
    EFI_GUID guid = AGENT_MP_SERVICES_GUID;
    struct mp_services *mp = NULL;
    if (a->st->BootServices->LocateProtocol(&guid, NULL, (VOID **)&mp) != EFI_SUCCESS)
        mp = NULL;
    UINTN count = 0, enabled = 0, bsp = 0, ap = 0;
    if (!mp || mp->get_number_of_processors(mp, &count, &enabled) != EFI_SUCCESS || enabled < 2) {
        str_printf(reason, size, "needs MP services and 2 CPUs");
        return PROBE_FAIL;
    }
    mp->who_am_i(mp, &bsp);
    ap = bsp == 0 ? 1 : 0;
    volatile uint64_t *mailbox = agent_low_pages(a, 1);
    volatile uint64_t *tables = agent_low_pages(a, TABLE_PAGES);
    if (!mailbox || !tables) {
        str_printf(reason, size, "no pages below 4 GiB");
        return PROBE_FAIL;
    }
    build_tables(tables);
    uint32_t maxphy = cpuid(0x80000000, 0).eax >= 0x80000008 ? cpuid(0x80000008, 0).eax & 0xff : 36;
    run.tables = (uint64_t)(uintptr_t)tables;
    run.bad_cr3 = 1ull << (maxphy - 1);
    run.stage = 0;
    AGENT_LOG("hostile: halt mailbox at 0x%lx", (UINT64)(uintptr_t)mailbox);
    if (agent_wait_word(&mailbox[0], HOSTILE_GO)) {
        str_printf(reason, size, "the introspector never wrote the mailbox");
        return PROBE_FAIL;
    }
    run.target = mailbox[2];
    if (!run.target || run.target >= (4ull << 30)) {
        str_printf(reason, size, "no region address below 4 GiB from the host (0x%lx)",
                   (UINT64)run.target);
        return PROBE_FAIL;
    }
    /* Said before the AP starts: its halt fills the shared serial port with the
     * hypervisor's dump for a while. */
    AGENT_LOG("hostile: AP %lu runs INT3 and a store to the region (0x%lx) with CR3 at 0x%lx, "
              "above RAM",
              (UINT64)ap, run.target + TARGET_OFF, run.bad_cr3);
    EFI_EVENT ev = NULL;
    EFI_BOOT_SERVICES *bs = a->st->BootServices;
    if (bs->CreateEvent(0, 0, NULL, NULL, &ev) != EFI_SUCCESS ||
        mp->startup_this_ap(mp, ap_halt, ap, ev, 0, &run, NULL) != EFI_SUCCESS) {
        str_printf(reason, size, "could not start AP %lu", (UINT64)ap);
        return PROBE_FAIL;
    }
    if (agent_wait_word(&run.stage, 1)) {
        str_printf(reason, size, "AP %lu never ran", (UINT64)ap);
        return PROBE_FAIL;
    }
    /* The host answers once the halt is logged in full. */
    enum verdict v = PROBE_PASS;
    if (agent_wait_word(&mailbox[1], HOSTILE_GO)) {
        str_printf(reason, size, "the introspector never confirmed its checks");
        v = PROBE_FAIL;
    }
    if (run.stage != 1) {
        str_printf(reason, size, "the store with CR3 above RAM completed (stage %lu)",
                   (UINT64)run.stage);
        v = PROBE_FAIL;
    }
    AGENT_LOG("hostile: halt: the AP stayed stopped at the store; the BSP goes on");
    return v;
}
