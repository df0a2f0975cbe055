/*
 * probe_evbench: the guest's half of `make bench-events`
 * (test/emu/events_bench.py, docs/benchmarks.md "KVMI events"), with
 * evbench=N rounds per measure.  The guest times each action with
 * `lfence; rdtsc` around it (in Bochs one tick is one emulated instruction)
 * and prints the average and minimum of N:
 *   cpuid   CPUID(0): the floor of any VM exit round trip;
 *   store   a store to an unrestricted page: the floor of a store;
 *   wstep   a store to a page the introspector made "-w-": EPT cannot express
 *           write-without-read, so the hypervisor steps the store itself, no
 *           event: the cost of a page step;
 *   pf      a store to a write-restricted page: a PF event answered CONTINUE;
 *   bp      INT3 with breakpoint events on: answered CONTINUE, our #BP
 *           handler runs (an IRET);
 *   cr      a CR4 write with CR4 events on, answered CONTINUE.
 * The introspector says go at mailbox[0] and reads the results off COM1.
 */
#include "agent.h"
#include "cpu.h"

#define EVB_GO   0x4f472d4843454e42ull /* "BNECH-GO" */
#define EVB_DONE 0x454e4f442d484345ull
#define CR4_TSD  (1ull << 2)

volatile uint64_t evb_bp_hits;
void evb_vec3(void);
__asm__(".text\n"
        ".globl evb_vec3\n"
        "evb_vec3:\n\t"
        "lock incq evb_bp_hits(%rip)\n\t"
        "iretq\n");

struct __attribute__((packed)) evb_dtr {
    uint16_t limit;
    uint64_t base;
};

static inline uint64_t tsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}

struct evb_stat {
    uint64_t sum, min, n;
};

static void evb_add(struct evb_stat *s, uint64_t t)
{
    s->sum += t;
    s->n++;
    if (!s->min || t < s->min)
        s->min = t;
}

static void evb_report(const char *name, const struct evb_stat *s)
{
    AGENT_LOG("evbench: %s avg %lu min %lu rounds %lu", name, s->n ? s->sum / s->n : 0,
              (UINT64)s->min, (UINT64)s->n);
}

static void evb_stores(volatile uint64_t *p, uint64_t n, const char *name)
{
    struct evb_stat s = {0, 0, 0};
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = tsc();
        p[i % 512] = i;
        evb_add(&s, tsc() - t0);
    }
    evb_report(name, &s);
}

enum verdict probe_evbench(struct agent *a, char *reason, size_t size)
{
    if (a->opt.evbench <= 0) {
        str_printf(reason, size, "no evbench=N");
        return PROBE_SKIP;
    }
    uint64_t n = (uint64_t)a->opt.evbench;
    volatile uint64_t *mbox = agent_low_pages(a, 3);
    if (!mbox) {
        str_printf(reason, size, "no pages below 4 GiB");
        return PROBE_FAIL;
    }
    volatile uint64_t *pf = mbox + 512, *wonly = mbox + 1024;
    AGENT_LOG("evbench: mailbox 0x%lx pf 0x%lx wonly 0x%lx rounds %lu", (UINT64)(uintptr_t)mbox,
              (UINT64)(uintptr_t)pf, (UINT64)(uintptr_t)wonly, n);
    if (agent_wait_word(&mbox[0], EVB_GO)) {
        str_printf(reason, size, "the introspector never said go");
        return PROBE_FAIL;
    }
    struct evb_stat s = {0, 0, 0};
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = tsc();
        cpuid(0, 0);
        evb_add(&s, tsc() - t0);
    }
    evb_report("cpuid", &s);
    evb_stores(mbox + 64, n, "store");
    evb_stores(wonly, n, "wstep");
    evb_stores(pf, n, "pf");

    struct evb_dtr idt;
    uint16_t cs;
    __asm__ volatile("sidt %0" : "=m"(idt));
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    volatile uint64_t *g = (volatile uint64_t *)(uintptr_t)(idt.base + 16 * 3);
    uint64_t old0 = g[0], old1 = g[1], off = (uint64_t)(uintptr_t)evb_vec3;
    g[0] = (off & 0xffff) | ((uint64_t)cs << 16) | (0x8eull << 40) | ((off >> 16 & 0xffff) << 48);
    g[1] = off >> 32;
    s = (struct evb_stat){0, 0, 0};
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = tsc();
        __asm__ volatile("int3" ::: "memory");
        evb_add(&s, tsc() - t0);
    }
    g[0] = old0;
    g[1] = old1;
    evb_report("bp", &s);

    s = (struct evb_stat){0, 0, 0};
    uint64_t cr4 = read_cr4();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = (i & 1) ? cr4 : cr4 ^ CR4_TSD, t0 = tsc();
        __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
        evb_add(&s, tsc() - t0);
    }
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4) : "memory");
    evb_report("cr", &s);
    AGENT_LOG("evbench: done, #BP handler ran %lu time(s)", (UINT64)evb_bp_hits);
    if (agent_wait_word(&mbox[1], EVB_DONE)) {
        str_printf(reason, size, "the introspector never finished");
        return PROBE_FAIL;
    }
    if (evb_bp_hits != n) {
        str_printf(reason, size, "#BP handler ran %lu times for %lu INT3s", (UINT64)evb_bp_hits, n);
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}
