/*
 * probe_pfstress: every CPU at once against one page the introspector
 * restricted (test/emu/views_scenarios.py, docs/kvmi-hv.md "Page steps"),
 * with pfstress=N (stores and calls per CPU):
 *   1. a mailbox page, a data page and a code page are announced on COM1;
 *      the probe waits for PFS_GO in the mailbox (the introspector has
 *      removed W from the data page and X from the code page by then);
 *   2. writes: every CPU (the BSP and each AP through MP services, started
 *      together behind a barrier) stores (cpu << 32 | i) for i = 1..N into
 *      its own 8-byte slot of the data page, each store one `mov %rax,
 *      (%rdi)`, so the PF event's RAX names the store it stands for;
 *   3. calls: every CPU calls its own one-instruction function (a RET at
 *      code + 64 * cpu) N times with RAX = i, so each fetch is one event
 *      naming its call;
 *   4. every slot must end holding (cpu << 32 | N): every store landed.
 * The introspector answers every event CONTINUE and asserts each store and
 * each call raised exactly one event, in order.
 */
#include "agent.h"
#include "cpu.h"
#include "mp.h"

#define PFS_GO          0x4f472d5353455254ull /* "TRESS-GO" */
#define PFS_MAXCPUS     64u
#define PFS_CODE_STRIDE 64u

struct pfs_run {
    struct mp_services *mp;
    volatile uint64_t *slots;
    uint8_t *code;
    uint64_t n;
    uint32_t cpus;
    int phase; /* 0 writes, 1 calls */
    volatile uint32_t arrived, done;
};

static void pfs_writes(volatile uint64_t *slot, uint64_t cpu, uint64_t n)
{
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t val = cpu << 32 | i;
        __asm__ volatile("movq %0, (%1)" : : "a"(val), "D"(slot) : "memory");
    }
}

static void pfs_calls(uint8_t *fn, uint64_t n)
{
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t rax = i;
        __asm__ volatile("call *%1" : "+a"(rax) : "r"(fn) : "memory");
    }
}

static void pfs_work(struct pfs_run *r, uint64_t cpu)
{
    /* The barrier puts every CPU on the page at once. */
    __atomic_add_fetch(&r->arrived, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&r->arrived, __ATOMIC_ACQUIRE) < r->cpus)
        cpu_relax();
    if (r->phase == 0)
        pfs_writes(&r->slots[cpu], cpu, r->n);
    else
        pfs_calls(r->code + PFS_CODE_STRIDE * cpu, r->n);
    __atomic_add_fetch(&r->done, 1, __ATOMIC_SEQ_CST);
}

static VOID EFIAPI pfs_ap(VOID *arg)
{
    struct pfs_run *r = arg;
    UINTN me = 0;
    if (r->mp->who_am_i(r->mp, &me) == EFI_SUCCESS && me < PFS_MAXCPUS)
        pfs_work(r, me);
    else
        __atomic_add_fetch(&r->done, 1, __ATOMIC_SEQ_CST); /* its slot stays 0: a failure */
}

/* One phase on every CPU at once; EFI_SUCCESS once all are done. */
static EFI_STATUS pfs_phase(struct agent *a, struct pfs_run *r, int phase, UINTN bsp)
{
    EFI_BOOT_SERVICES *bs = a->st->BootServices;
    EFI_EVENT ev = NULL;
    r->phase = phase;
    r->arrived = r->done = 0;
    EFI_STATUS st = bs->CreateEvent(0, 0, NULL, NULL, &ev);
    if (st != EFI_SUCCESS)
        return st;
    st = r->mp->startup_all_aps(r->mp, pfs_ap, FALSE, ev, 0, r, NULL);
    if (st == EFI_SUCCESS) {
        pfs_work(r, bsp);
        while (bs->CheckEvent(ev) == EFI_NOT_READY)
            cpu_relax();
    }
    bs->CloseEvent(ev);
    return st;
}

enum verdict probe_pfstress(struct agent *a, char *reason, size_t size)
{
    if (a->opt.pfstress <= 0) {
        str_printf(reason, size, "no pfstress=N");
        return PROBE_SKIP;
    }
    EFI_GUID guid = AGENT_MP_SERVICES_GUID;
    struct pfs_run r = {0};
    UINTN count = 0, enabled = 0, bsp = 0;
    if (a->st->BootServices->LocateProtocol(&guid, NULL, (VOID **)&r.mp) != EFI_SUCCESS ||
        r.mp->get_number_of_processors(r.mp, &count, &enabled) != EFI_SUCCESS || enabled < 2 ||
        enabled > PFS_MAXCPUS || r.mp->who_am_i(r.mp, &bsp) != EFI_SUCCESS) {
        str_printf(reason, size, "needs MP services and 2 to %u CPUs", PFS_MAXCPUS);
        return PROBE_SKIP;
    }
    r.cpus = (uint32_t)enabled;
    r.n = (uint64_t)a->opt.pfstress;
    volatile uint64_t *mbox = agent_low_pages(a, 2);
    EFI_PHYSICAL_ADDRESS code = 0xffffffffull;
    /* Loader code: firmware that marks data pages NX leaves these executable. */
    if (!mbox || a->st->BootServices->AllocatePages(AllocateMaxAddress, EfiLoaderCode, 1, &code) !=
                     EFI_SUCCESS) {
        str_printf(reason, size, "no pages below 4 GiB");
        return PROBE_FAIL;
    }
    r.slots = mbox + 512;
    r.code = (uint8_t *)(uintptr_t)code;
    for (unsigned i = 0; i < 4096; i++)
        r.code[i] = 0xc3; /* RET */
    AGENT_LOG("pfstress: mailbox 0x%lx data 0x%lx code 0x%lx stride %u cpus %u accesses %lu",
              (UINT64)(uintptr_t)mbox, (UINT64)(uintptr_t)r.slots, (UINT64)code, PFS_CODE_STRIDE,
              r.cpus, r.n);
    if (agent_wait_word(&mbox[0], PFS_GO)) {
        str_printf(reason, size, "the introspector never said go");
        return PROBE_FAIL;
    }
    EFI_STATUS st = pfs_phase(a, &r, 0, bsp);
    unsigned landed = 0;
    for (unsigned c = 0; c < r.cpus; c++) {
        uint64_t want = (uint64_t)c << 32 | r.n;
        landed += r.slots[c] == want;
        if (r.slots[c] != want)
            AGENT_LOG("pfstress: cpu %u slot holds 0x%lx, expected 0x%lx", c, (UINT64)r.slots[c],
                      (UINT64)want);
    }
    AGENT_LOG("pfstress: writes done on %u CPU(s): %u slot(s) hold their last store", r.cpus,
              landed);
    if (st == EFI_SUCCESS)
        st = pfs_phase(a, &r, 1, bsp);
    AGENT_LOG("pfstress: calls done on %u CPU(s)", r.cpus);
    if (agent_wait_word(&mbox[1], PFS_GO)) {
        str_printf(reason, size, "the introspector never said it counted");
        return PROBE_FAIL;
    }
    a->st->BootServices->FreePages(code, 1);
    if (st != EFI_SUCCESS) {
        str_printf(reason, size, "StartupAllAPs: status 0x%lx", (UINT64)st);
        return PROBE_FAIL;
    }
    if (landed != r.cpus) {
        str_printf(reason, size, "%u of %u CPUs' last stores landed", landed, r.cpus);
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}
