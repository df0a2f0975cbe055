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
 *    UNHOOK, no statistics, no forced VM-entry failure.
 */
#include "agent.h"
#include "cpu.h"

#define HV_MAGIC   0x4856444247ull /* include/vmx.h: HV_HYPERCALL_MAGIC */
#define HV_HC_LAST 7               /* one past the highest function the hypervisor knows */
#define VMCALL_LEN 3               /* 0f 01 c1 */
#define VECTOR_UD  6
#define HOSTILE_GO 0x4f472d454c495448ull /* "HTILE-GO" */
#define WAIT_LOOPS (1ull << 34)

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

static int wait_go(volatile uint64_t *word)
{
    for (uint64_t n = 0; n < WAIT_LOOPS; n++) {
        if (*word == HOSTILE_GO)
            return 0;
        __asm__ volatile("pause");
    }
    return -1;
}

enum verdict probe_hostile(struct agent *a, char *reason, size_t size)
{
    if (a->opt.hostile != 1) {
        str_printf(reason, size, "needs hostile=1");
        return PROBE_SKIP;
    }
    EFI_PHYSICAL_ADDRESS pa = 0xffffffffull; /* below 4 GiB */
    if (a->st->BootServices->AllocatePages(AllocateMaxAddress, EfiLoaderData, 1, &pa) !=
        EFI_SUCCESS) {
        str_printf(reason, size, "no page for the mailbox");
        return PROBE_FAIL;
    }
    volatile uint64_t *mailbox = (volatile uint64_t *)(uintptr_t)pa;
    mailbox[0] = mailbox[1] = 0;
    AGENT_LOG("hostile: mailbox at 0x%lx", (UINT64)pa);
    if (wait_go(&mailbox[0])) {
        str_printf(reason, size, "the introspector never wrote the mailbox at 0x%lx", (UINT64)pa);
        return PROBE_FAIL;
    }
    enum verdict v = debug_hypercalls_refused(reason, size);
    AGENT_LOG("hostile: attacks done");
    if (wait_go(&mailbox[1]) && v == PROBE_PASS) {
        str_printf(reason, size, "the introspector never confirmed its checks");
        v = PROBE_FAIL;
    }
    return v;
}
