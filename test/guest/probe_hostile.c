/*
 * probe_hostile: attacks a ring-0 guest can make on the hypervisor, each one
 * tried from the agent and its failure asserted here; the host side of the
 * scenario (test/emu/hostile_scenarios.py) checks the hypervisor's integrity
 * afterwards (the KVMI session still answers, no UNHOOK arrived).
 *
 * The attacks start once the introspector is attached: the probe announces a
 * mailbox page and waits until the host stores HOSTILE_GO in it (after it
 * enabled KVMI_EVENT_UNHOOK), so that an UNHOOK the attacks could trigger
 * would reach a live session; after the attacks it waits for HOSTILE_GO in
 * the mailbox's second word, so that the host checks the hypervisor while the
 * machine still runs.
 *
 * hostile=1 expects the product's configuration (`debug_hypercalls` off):
 *  - every debug hypercall function (RAX = "HVDBG", RBX = 0..7, from CPL 0)
 *    raises #UD, as VMCALL does on a machine without a hypervisor, and leaves
 *    RAX, RBX and RCX as they were: no region address, no halted CPU, no
 *    UNHOOK, no statistics, no forced VM-entry failure;
 *  - MSRs (include/msr_policy.h): IA32_APIC_BASE moved over the hypervisor's
 *    region (whose address the host puts in the mailbox's third word) or away
 *    from the protected page, or the APIC disabled: #GP, and the xAPIC still
 *    answers at its old base; a free MTRR pair typing the region uncacheable:
 *    the write is dropped (the pair reads back unchanged); Intel PT and the
 *    debug store (RTIT_CTL, RTIT_OUTPUT_BASE, DS_AREA, PEBS_ENABLE): #GP; XD
 *    disable through IA32_MISC_ENABLE: #GP; a TSC write moves the guest's TSC
 *    only (the guest reads the new value; the host then checks the hypervisor
 *    still serves);
 *  - PCI configuration (probe_hostile_pci.c): the NIC's config space through
 *    every port access, straddling ones included, a two-vCPU CONFIG_ADDRESS
 *    race, ECAM writes; the host puts the NIC's CONFIG_ADDRESS and ECAM page
 *    in the mailbox's fourth and fifth words.
 */
#include "agent.h"
#include "cpu.h"

#define HV_MAGIC   0x4856444247ull /* include/vmx.h: HV_HYPERCALL_MAGIC */
#define HV_HC_LAST 7               /* one past the highest function the hypervisor knows */
#define VMCALL_LEN 3               /* 0f 01 c1 */
#define VECTOR_UD  6
#define HOSTILE_GO 0x4f472d454c495448ull /* "HTILE-GO" */

struct __attribute__((packed)) hostile_dtr {
    uint16_t limit;
    uint64_t base;
};

volatile uint64_t hostile_ud_hits;
void hostile_ud(void);
/* #UD pushes no error code: (%rsp) is the faulting RIP; step over VMCALL. */
__asm__(".text\n"
        ".globl hostile_ud\n"
        "hostile_ud:\n\t"
        "addq $3, (%rsp)\n\t"
        "lock incq hostile_ud_hits(%rip)\n\t"
        "iretq\n");

static void gate_swap(unsigned vector, void (*fn)(void), uint64_t old[2], int restore)
{
    struct hostile_dtr idt;
    uint16_t cs;
    __asm__ volatile("sidt %0" : "=m"(idt));
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    volatile uint64_t *g = (volatile uint64_t *)(uintptr_t)(idt.base + 16ull * vector);
    if (restore) {
        g[0] = old[0];
        g[1] = old[1];
        return;
    }
    uint64_t off = (uint64_t)(uintptr_t)fn;
    old[0] = g[0];
    old[1] = g[1];
    g[0] = (off & 0xffff) | ((uint64_t)cs << 16) | (0x8eull << 40) | ((off >> 16 & 0xffff) << 48);
    g[1] = off >> 32;
}

volatile uint64_t hostile_gp_hits;
void hostile_gp(void);
/* #GP pushes an error code: drop it, then step over the 2-byte RDMSR/WRMSR. */
__asm__(".text\n"
        ".globl hostile_gp\n"
        "hostile_gp:\n\t"
        "addq $8, %rsp\n\t"
        "addq $2, (%rsp)\n\t"
        "lock incq hostile_gp_hits(%rip)\n\t"
        "iretq\n");

/* WRMSR/RDMSR that report a #GP instead of taking the agent down (the #GP gate must be
 * installed): 1 = faulted. */
static int wrmsr_gp(uint32_t msr, uint64_t val)
{
    uint64_t before = hostile_gp_hits;
    __asm__ volatile("wrmsr"
                     :
                     : "c"(msr), "a"((uint32_t)val), "d"((uint32_t)(val >> 32))
                     : "memory");
    return hostile_gp_hits != before;
}

static int rdmsr_gp(uint32_t msr, uint64_t *val)
{
    uint64_t before = hostile_gp_hits;
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
    *val = ((uint64_t)hi << 32) | lo;
    return hostile_gp_hits != before;
}

static uint64_t rdtsc_now(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

#define MSR_APIC_BASE   0x1b
#define MSR_MTRRCAP     0xfe
#define MSR_MISC_ENABLE 0x1a0
#define MSR_TSC         0x10
#define APIC_EN         (1ull << 11)
#define APIC_EXTD       (1ull << 10)
#define XAPIC_VERSION   0x30 /* version register offset: never all ones on a live APIC */

struct msr_result {
    unsigned tried, refused;
    enum verdict v;
};

static void expect(struct msr_result *m, int refused, const char *what, char *reason, size_t size)
{
    m->tried++;
    m->refused += refused != 0;
    AGENT_LOG("hostile: %s: %s", what, refused ? "refused" : "ACCEPTED");
    if (!refused && m->v == PROBE_PASS) {
        str_printf(reason, size, "%s accepted", what);
        m->v = PROBE_FAIL;
    }
}

static void apic_base_attacks(struct msr_result *m, uint64_t region, char *reason, size_t size)
{
    uint64_t cur;
    if (rdmsr_gp(MSR_APIC_BASE, &cur)) {
        expect(m, 0, "read IA32_APIC_BASE", reason, size);
        return;
    }
    if (cur & APIC_EXTD) {
        AGENT_LOG("hostile: APIC in x2APIC mode: xAPIC window checks not applicable");
    }
    uint64_t flags = cur & 0xfff, base = cur & ~0xfffull & ((1ull << 52) - 1);
    uint64_t now;
    expect(m,
           wrmsr_gp(MSR_APIC_BASE, region | flags) && !rdmsr_gp(MSR_APIC_BASE, &now) && now == cur,
           "IA32_APIC_BASE moved over the hypervisor's region", reason, size);
    expect(m,
           wrmsr_gp(MSR_APIC_BASE, 0xfed00000ull | flags) && !rdmsr_gp(MSR_APIC_BASE, &now) &&
               now == cur,
           "IA32_APIC_BASE moved away from the protected page", reason, size);
    expect(m,
           wrmsr_gp(MSR_APIC_BASE, cur & ~APIC_EN) && !rdmsr_gp(MSR_APIC_BASE, &now) && now == cur,
           "IA32_APIC_BASE with the APIC disabled", reason, size);
    if (!(cur & APIC_EXTD)) {
        uint32_t ver = *(volatile uint32_t *)(uintptr_t)(base + XAPIC_VERSION);
        AGENT_LOG("hostile: xAPIC at 0x%lx after the attempts: version register 0x%x", base, ver);
        expect(m, ver != 0xffffffffu, "the xAPIC window taken away", reason, size);
    }
}

/* A free variable MTRR pair typing the region UC: the write must not take effect. */
static void mtrr_attack(struct msr_result *m, uint64_t region, char *reason, size_t size)
{
    uint64_t cap, base, mask;
    if (rdmsr_gp(MSR_MTRRCAP, &cap) || (cap & 0xff) == 0) {
        AGENT_LOG("hostile: MTRR attack not applicable (no variable MTRRs)");
        return;
    }
    unsigned n = 0, vcnt = (unsigned)(cap & 0xff);
    for (; n < vcnt; n++)
        if (!rdmsr_gp(0x201 + 2 * n, &mask) && !(mask & (1ull << 11)))
            break;
    if (n == vcnt) {
        AGENT_LOG("hostile: MTRR attack not applicable (no free pair of %u)", vcnt);
        return;
    }
    rdmsr_gp(0x200 + 2 * n, &base);
    uint32_t maxphy = cpuid(0x80000008, 0).eax & 0xff;
    uint64_t phys = ((1ull << (maxphy ? maxphy : 36)) - 1) & ~0xfffull;
    uint64_t uc_mask = (phys & ~((16ull << 20) - 1)) | (1ull << 11);
    wrmsr_gp(0x200 + 2 * n, (region & ~((16ull << 20) - 1)) | 0 /* UC */);
    int faulted = wrmsr_gp(0x201 + 2 * n, uc_mask);
    uint64_t after = 0;
    rdmsr_gp(0x201 + 2 * n, &after);
    AGENT_LOG("hostile: MTRR pair %u mask 0x%lx written (%s), reads 0x%lx", n, uc_mask,
              faulted ? "#GP" : "no fault", after);
    expect(m, !(after & (1ull << 11)), "a free MTRR pair typing the region uncacheable", reason,
           size);
    wrmsr_gp(0x201 + 2 * n, mask);
    wrmsr_gp(0x200 + 2 * n, base);
}

static enum verdict msr_attacks(uint64_t region, char *reason, size_t size)
{
    uint64_t old[2];
    struct msr_result m = {0, 0, PROBE_PASS};
    gate_swap(13, hostile_gp, old, 0);
    apic_base_attacks(&m, region, reason, size);
    mtrr_attack(&m, region, reason, size);
    static const struct {
        uint32_t msr;
        uint64_t val;
        const char *what;
    } trace[] = {
        {0x570, 1, "RTIT_CTL.TraceEn (Intel PT)"},
        {0x560, 0, "RTIT_OUTPUT_BASE (Intel PT)"},
        {0x600, 0, "DS_AREA (BTS/PEBS)"},
        {0x3f1, 1, "PEBS_ENABLE"},
    };
    for (unsigned i = 0; i < sizeof(trace) / sizeof(trace[0]); i++) {
        uint64_t val = region ? region : trace[i].val;
        expect(&m, wrmsr_gp(trace[i].msr, trace[i].msr == 0x570 ? 1 : val), trace[i].what, reason,
               size);
    }
    uint64_t misc, now;
    if (!rdmsr_gp(MSR_MISC_ENABLE, &misc)) {
        expect(&m,
               wrmsr_gp(MSR_MISC_ENABLE, misc | (1ull << 34)) && !rdmsr_gp(MSR_MISC_ENABLE, &now) &&
                   now == misc,
               "IA32_MISC_ENABLE.XD_DISABLE", reason, size);
    } else {
        AGENT_LOG("hostile: IA32_MISC_ENABLE not applicable (#GP on read)");
    }
    /* The guest's TSC jumps 2^40 ahead; the guest must read the new value (its offset)
     * while root mode keeps timing with the hardware's (the host then checks it serves). */
    uint64_t t0 = rdtsc_now(), target = t0 + (1ull << 40);
    if (!wrmsr_gp(MSR_TSC, target)) {
        uint64_t t1 = rdtsc_now();
        AGENT_LOG("hostile: TSC written 2^40 ahead: reads 0x%lx (wrote 0x%lx)", t1, target);
        if (t1 < target || t1 - target > (1ull << 36)) {
            str_printf(reason, size, "TSC write not seen by the guest (0x%lx)", t1);
            m.v = PROBE_FAIL;
        }
        wrmsr_gp(MSR_TSC, rdtsc_now() - (1ull << 40));
    } else {
        str_printf(reason, size, "TSC write refused (#GP)");
        m.v = PROBE_FAIL;
    }
    gate_swap(13, 0, old, 1);
    AGENT_LOG("hostile: MSR attacks refused: %u of %u", m.refused, m.tried);
    return m.v;
}

/* One debug hypercall; returns the #UD count it raised and what RAX/RBX/RCX held after. */
static uint64_t try_hypercall(uint64_t fn, uint64_t out[3])
{
    uint64_t before = hostile_ud_hits;
    uint64_t rax = HV_MAGIC, rbx = fn, rcx = 1;
    __asm__ volatile("vmcall" : "+a"(rax), "+b"(rbx), "+c"(rcx) : : "memory", "rdx");
    out[0] = rax;
    out[1] = rbx;
    out[2] = rcx;
    return hostile_ud_hits - before;
}

static enum verdict debug_hypercalls_refused(char *reason, size_t size)
{
    uint64_t old[2];
    unsigned refused = 0;
    enum verdict v = PROBE_PASS;
    gate_swap(VECTOR_UD, hostile_ud, old, 0);
    for (uint64_t fn = 0; fn <= HV_HC_LAST; fn++) {
        uint64_t regs[3];
        uint64_t ud = try_hypercall(fn, regs);
        int same = regs[0] == HV_MAGIC && regs[1] == fn && regs[2] == 1;
        AGENT_LOG("hostile: debug hypercall %lu: #UD %lu time(s), registers %s", (UINT64)fn,
                  (UINT64)ud, same ? "unchanged" : "CHANGED");
        if (ud == 1 && same) {
            refused++;
        } else if (v == PROBE_PASS) {
            str_printf(reason, size, "debug hypercall %lu answered (#UD %lu, rax 0x%lx rcx 0x%lx)",
                       (UINT64)fn, (UINT64)ud, (UINT64)regs[0], (UINT64)regs[2]);
            v = PROBE_FAIL;
        }
    }
    gate_swap(VECTOR_UD, 0, old, 1);
    AGENT_LOG("hostile: debug hypercalls refused with #UD: %u of %u", refused,
              (unsigned)(HV_HC_LAST + 1));
    return v;
}

enum verdict probe_hostile(struct agent *a, char *reason, size_t size)
{
    if (a->opt.hostile != 1) {
        str_printf(reason, size, "needs hostile=1");
        return PROBE_SKIP;
    }
    volatile uint64_t *mailbox = agent_low_pages(a, 1);
    if (!mailbox) {
        str_printf(reason, size, "no page for the mailbox");
        return PROBE_FAIL;
    }
    UINT64 pa = (UINT64)(uintptr_t)mailbox;
    AGENT_LOG("hostile: mailbox at 0x%lx", pa);
    if (agent_wait_word(&mailbox[0], HOSTILE_GO)) {
        str_printf(reason, size, "the introspector never wrote the mailbox at 0x%lx", pa);
        return PROBE_FAIL;
    }
    enum verdict v = debug_hypercalls_refused(reason, size);
    uint64_t region = mailbox[2];
    AGENT_LOG("hostile: hypervisor region at 0x%lx (from the host)", region);
    enum verdict vm = msr_attacks(region, reason, size);
    if (v == PROBE_PASS)
        v = vm;
    enum verdict vp = hostile_pci(a, (uint32_t)mailbox[3], mailbox[4], reason, size);
    if (v == PROBE_PASS)
        v = vp;
    AGENT_LOG("hostile: attacks done");
    if (agent_wait_word(&mailbox[1], HOSTILE_GO) && v == PROBE_PASS) {
        str_printf(reason, size, "the introspector never confirmed its checks");
        v = PROBE_FAIL;
    }
    return v;
}
