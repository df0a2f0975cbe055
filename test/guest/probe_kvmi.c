/*
 * probe_kvmi: the guest's half of the KVMI scenario (test/emu/kvmi_scenarios.py,
 * docs/kvmi-hv.md), run with kvmi=1 while an introspector is attached to the
 * hypervisor over its NIC:
 *   1. a page of ours holds a marker (fixed text + this run's TSC); its GPA
 *      and value are announced on COM1, so the introspector can find it with
 *      KVMI_READ_PHYSICAL and compare;
 *   2. the probe then waits for the introspector to store KVMI_MAILBOX_MAGIC
 *      at page+16 with KVMI_WRITE_PHYSICAL (bounded by a loop count; the
 *      host bounds the run in time);
 *   3. it toggles CR4.TSD: the introspector, which enabled KVMI_EVENT_CR on
 *      CR4, answers the event with the old value, so the write must not take
 *      effect; a second toggle (events off by then) must;
 *   4. on KVMI_EVENTS_MAGIC in the mailbox, one guest action per event the
 *      introspector now watches, each checked here for the effect of the
 *      tool's answer: WRMSR of SYSENTER_CS (a VMCS-held MSR; the tool
 *      substitutes a value) and STAR (echoed), INT3 (the tool moves RIP past
 *      it and answers RETRY), the KVMI hypercall (RAX = 0), SIDT
 *      (descriptor event, executed on CONTINUE), two writes to our second
 *      page, which the tool made read-only (PF: CONTINUE lets the write
 *      land; RETRY + singlestep lands it too and a SINGLESTEP event
 *      follows), XSETBV (when the CPU has XSAVE), an exception the tool
 *      injects (our handler counts it), a second INT3 during whose event the
 *      tool injects again and answers CONTINUE (the injection collides with
 *      the #BP: KVMI_EVENT_TRAP, our #BP handler runs, the injection does
 *      not), and finally the unhook hypercall: KVMI_EVENT_UNHOOK, and it
 *      returns once the tool has closed.
 * kvmi=2 is the demo (scripts/demo.sh, driven by kvmictl): after step 2 the
 * probe toggles CR4.TSD and writes its second page again and again until the
 * introspector stores 1 at page+24, then reports how often it did.
 */
#include "agent.h"
#include "cpu.h"

#define KVMI_MAILBOX_MAGIC 0x4b564d4957524954ull /* "TIRWIMVK" */
#define KVMI_EVENTS_MAGIC  0x53544e4556454f47ull /* "GOEVENTS" */
#define MSR_SYSENTER_CS    0x174u
#define MSR_STAR           0xc0000081u
#define SYSENTER_WRITE     0x1234ull /* the tool answers the event with ... */
#define SYSENTER_TOOL      0x5678ull /* ... this value instead */
#define STAR_WRITE         0x0023001000000000ull
#define HV_MAGIC           0x4856444247ull /* vmx/vmx.h: debug hypercall */
#define HV_HC_KVMI_UNHOOK  6
#define CR4_OSXSAVE        (1ull << 18)
#define CR4_TSD            (1ull << 2)
#define WAIT_LOOPS         (1ull << 34)

static inline uint64_t rdtsc_now(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline void write_cr4(uint64_t v)
{
    __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

static inline uint64_t rd_msr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void wr_msr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

struct __attribute__((packed)) dtr {
    uint16_t limit;
    uint64_t base;
};

/* Handlers of the exceptions the introspector injects (vector 22, reserved,
 * never raised by the CPU) and of the #BP it lets through: count, return. */
volatile uint64_t kvmi_hits22, kvmi_hits3;
void kvmi_vec22(void);
void kvmi_vec3(void);
__asm__(".text\n"
        ".globl kvmi_vec22\n"
        "kvmi_vec22:\n\t"
        "lock incq kvmi_hits22(%rip)\n\t"
        "iretq\n"
        ".globl kvmi_vec3\n"
        "kvmi_vec3:\n\t"
        "lock incq kvmi_hits3(%rip)\n\t"
        "iretq\n");

/* Installs an interrupt gate for vector in the current IDT; the old 16
 * bytes go to old[2]. */
static void set_gate(unsigned vector, void (*fn)(void), uint64_t old[2])
{
    struct dtr idt;
    uint16_t cs;
    __asm__ volatile("sidt %0" : "=m"(idt));
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    volatile uint64_t *g = (volatile uint64_t *)(uintptr_t)(idt.base + 16ull * vector);
    uint64_t off = (uint64_t)(uintptr_t)fn;
    old[0] = g[0];
    old[1] = g[1];
    g[0] = (off & 0xffff) | ((uint64_t)cs << 16) | (0x8eull << 40) | ((off >> 16 & 0xffff) << 48);
    g[1] = off >> 32;
}

static void restore_gate(unsigned vector, const uint64_t old[2])
{
    struct dtr idt;
    __asm__ volatile("sidt %0" : "=m"(idt));
    volatile uint64_t *g = (volatile uint64_t *)(uintptr_t)(idt.base + 16ull * vector);
    g[0] = old[0];
    g[1] = old[1];
}

static int wait_for(volatile uint64_t *p, uint64_t want)
{
    for (uint64_t n = 0; n < WAIT_LOOPS; n++) {
        if (*p == want)
            return 0;
        cpu_relax();
    }
    return -1;
}

static enum verdict events_phase(volatile uint64_t *page, char *reason, size_t size)
{
    struct dtr idt0, idt1;
    __asm__ volatile("sidt %0" : "=m"(idt0));
    if (wait_for(&page[2], KVMI_EVENTS_MAGIC)) {
        str_printf(reason, size, "events phase never started");
        return PROBE_FAIL;
    }
    AGENT_LOG("kvmi: events phase");
    int bad = 0;

    uint64_t cs0 = rd_msr(MSR_SYSENTER_CS);
    wr_msr(MSR_SYSENTER_CS, SYSENTER_WRITE);
    uint64_t cs1 = rd_msr(MSR_SYSENTER_CS);
    wr_msr(MSR_SYSENTER_CS, cs0);
    uint64_t cs2 = rd_msr(MSR_SYSENTER_CS);
    bad += cs1 != SYSENTER_TOOL || cs2 != cs0;
    AGENT_LOG("kvmi: msr sysenter_cs wrote 0x%lx, reads 0x%lx (tool's value 0x%lx), restored %s",
              (UINT64)SYSENTER_WRITE, (UINT64)cs1, (UINT64)SYSENTER_TOOL,
              cs2 == cs0 ? "ok" : "NOT ok");
    uint64_t star0 = rd_msr(MSR_STAR);
    wr_msr(MSR_STAR, STAR_WRITE);
    uint64_t star1 = rd_msr(MSR_STAR);
    wr_msr(MSR_STAR, star0);
    bad += star1 != STAR_WRITE;
    AGENT_LOG("kvmi: msr star wrote 0x%lx, reads 0x%lx", (UINT64)STAR_WRITE, (UINT64)star1);

    volatile int after_int3 = 0;
    __asm__ volatile("int3" ::: "memory");
    after_int3 = 1;
    AGENT_LOG("kvmi: int3 stepped over by the introspector: %s", after_int3 ? "yes" : "no");

    uint64_t rax = 34, rdi = 24, rsi = 0;
    __asm__ volatile("vmcall" : "+a"(rax), "+D"(rdi), "+S"(rsi) : : "rbx", "rcx", "rdx", "memory");
    bad += rax != 0;
    AGENT_LOG("kvmi: kvmi hypercall returned rax 0x%lx", (UINT64)rax);

    __asm__ volatile("sidt %0" : "=m"(idt1));
    bad += idt1.base != idt0.base || idt1.limit != idt0.limit;
    AGENT_LOG("kvmi: sidt under descriptor events: base 0x%lx limit 0x%x (%s)", (UINT64)idt1.base,
              (unsigned)idt1.limit,
              idt1.base == idt0.base && idt1.limit == idt0.limit ? "same" : "DIFFERENT");

    volatile uint64_t *watched = page + 512;
    watched[0] = 0x1111;
    watched[1] = 0x2222;
    bad += watched[0] != 0x1111 || watched[1] != 0x2222;
    AGENT_LOG("kvmi: writes to the watched page read back 0x%lx 0x%lx", (UINT64)watched[0],
              (UINT64)watched[1]);

    if (cpuid(1, 0).ecx & (1u << 26)) {
        uint64_t cr4 = read_cr4();
        write_cr4(cr4 | CR4_OSXSAVE);
        uint32_t lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        /* toggle SSE state (legal either way unless AVX is on, which needs it) */
        uint64_t x0 = ((uint64_t)hi << 32) | lo, x1 = (x0 & 4) ? x0 : x0 ^ 2;
        __asm__ volatile("xsetbv" : : "c"(0), "a"((uint32_t)x1), "d"((uint32_t)(x1 >> 32)));
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        uint64_t got = ((uint64_t)hi << 32) | lo;
        __asm__ volatile("xsetbv" : : "c"(0), "a"((uint32_t)x0), "d"((uint32_t)(x0 >> 32)));
        write_cr4(cr4);
        bad += got != x1;
        AGENT_LOG("kvmi: xsetbv 0x%lx -> 0x%lx, reads 0x%lx", (UINT64)x0, (UINT64)x1, (UINT64)got);
    }

    /* INJECT_EXCEPTION, then TRAP: an exception injected while the #BP the
     * tool let through (CONTINUE) is being delivered is dropped and reported. */
    uint64_t old22[2], old3[2];
    set_gate(22, kvmi_vec22, old22);
    set_gate(3, kvmi_vec3, old3);
    AGENT_LOG("kvmi: waiting for an injected exception (vector 22)");
    for (uint64_t n = 0; n < WAIT_LOOPS && kvmi_hits22 == 0; n++)
        cpu_relax();
    AGENT_LOG("kvmi: injected vector 22 delivered %lu time(s)", (UINT64)kvmi_hits22);
    __asm__ volatile("int3" ::: "memory");
    AGENT_LOG("kvmi: second int3: #BP delivered %lu time(s), vector 22 %lu time(s) in all",
              (UINT64)kvmi_hits3, (UINT64)kvmi_hits22);
    restore_gate(3, old3);
    restore_gate(22, old22);
    bad += kvmi_hits22 != 1 || kvmi_hits3 != 1;

    uint64_t hc = HV_MAGIC, fn = HV_HC_KVMI_UNHOOK;
    __asm__ volatile("vmcall" : "+a"(hc), "+b"(fn) : : "rcx", "rdx", "memory");
    bad += hc != 0;
    AGENT_LOG("kvmi: unhook hypercall returned %ld", (long)(int64_t)hc);
    /* The introspector comes back (the hypervisor redials) to see the
     * power-off's unhook; it says so at page+32 before we go on. */
    if (wait_for(&page[4], 2)) {
        str_printf(reason, size, "no second session");
        return PROBE_FAIL;
    }
    AGENT_LOG("kvmi: a second session is attached; powering off next");
    if (bad) {
        str_printf(reason, size, "%d event check(s) failed", bad);
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}

/* kvmi=2: guest activity for kvmictl's `watch cr,pf` until told to stop. */
static enum verdict demo_phase(volatile uint64_t *page, char *reason, size_t size)
{
    volatile uint64_t *watched = page + 512;
    uint64_t rounds = 0;
    while (page[3] != 1 && rounds < 100000) {
        uint64_t cr4 = read_cr4();
        write_cr4(cr4 ^ CR4_TSD);
        write_cr4(cr4);
        watched[rounds % 512] = rounds;
        rounds++;
        for (int i = 0; i < 100000 && page[3] != 1; i++)
            cpu_relax();
    }
    AGENT_LOG("kvmi: demo: %lu round(s) of CR4 toggles and page writes, then told to stop",
              (UINT64)rounds);
    if (page[3] != 1) {
        str_printf(reason, size, "never told to stop");
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}

enum verdict probe_kvmi(struct agent *a, char *reason, size_t size)
{
    if (a->opt.kvmi != 1 && a->opt.kvmi != 2) {
        str_printf(reason, size, "no kvmi=1|2");
        return PROBE_SKIP;
    }
    EFI_PHYSICAL_ADDRESS pa = 0xffffffffull; /* below 4 GiB */
    if (a->st->BootServices->AllocatePages(AllocateMaxAddress, EfiLoaderData, 2, &pa) !=
        EFI_SUCCESS) {
        str_printf(reason, size, "no page for the marker");
        return PROBE_FAIL;
    }
    volatile uint64_t *page = (volatile uint64_t *)(uintptr_t)pa;
    for (int i = 0; i < 1024; i++)
        page[i] = 0;
    uint64_t marker = 0x2d494d564b2d5648ull; /* "HV-KVMI-" */
    uint64_t value = rdtsc_now();
    page[0] = marker;
    page[1] = value;
    AGENT_LOG("kvmi: marker at 0x%lx value 0x%lx, mailbox at 0x%lx", (UINT64)pa, (UINT64)value,
              (UINT64)pa + 16);
    AGENT_LOG("kvmi: watched page at 0x%lx", (UINT64)pa + 4096);
    if (wait_for(&page[2], KVMI_MAILBOX_MAGIC)) {
        str_printf(reason, size, "mailbox at 0x%lx never written (0x%lx)", (UINT64)pa + 16,
                   (UINT64)page[2]);
        return PROBE_FAIL;
    }
    AGENT_LOG("kvmi: mailbox written by the introspector: 0x%lx", (UINT64)page[2]);
    if (a->opt.kvmi == 2) {
        enum verdict v = demo_phase(page, reason, size);
        a->st->BootServices->FreePages(pa, 2);
        return v;
    }

    uint64_t cr4 = read_cr4();
    write_cr4(cr4 ^ CR4_TSD);
    uint64_t after = read_cr4();
    int vetoed = after == cr4;
    AGENT_LOG("kvmi: cr4 0x%lx -> write 0x%lx -> reads 0x%lx (%s)", (UINT64)cr4,
              (UINT64)(cr4 ^ CR4_TSD), (UINT64)after,
              vetoed ? "vetoed by the introspector" : "written");
    /* the introspector acknowledges at page+24 once it has turned CR events off */
    if (wait_for(&page[3], 1)) {
        str_printf(reason, size, "no acknowledgement at 0x%lx", (UINT64)pa + 24);
        return PROBE_FAIL;
    }
    write_cr4(after ^ CR4_TSD);
    uint64_t again = read_cr4();
    write_cr4(cr4);
    AGENT_LOG("kvmi: cr4 toggled again with events off: reads 0x%lx (%s)", (UINT64)again,
              again == (after ^ CR4_TSD) ? "written" : "NOT written");
    if (!vetoed || again != (after ^ CR4_TSD)) {
        str_printf(reason, size, "cr4 writes: vetoed %d, second write %s", vetoed,
                   again == (after ^ CR4_TSD) ? "ok" : "lost");
        return PROBE_FAIL;
    }
    enum verdict v = events_phase(page, reason, size);
    a->st->BootServices->FreePages(pa, 2);
    return v;
}
