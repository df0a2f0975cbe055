/*
 * cpu_tables.c - the core's GDT, TSS and IDT.  Each CPU gets its own GDT
 * and TSS (a TSS descriptor is marked busy once loaded, SDM Vol. 3A 8.2.2 TSS Descriptor);
 * the IDT is shared.  NMIs use their own IST stack so that an NMI that
 * lands anywhere in root mode (the VMX layer's kick IPI) always has a good stack
 * (SDM Vol. 3A 6.14.5 Interrupt Stack Table).
 */
#include <string.h>

#include "core.h"
#include "log.h"

struct __attribute__((packed)) idt_gate {
    uint16_t off_lo;
    uint16_t sel;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t off_mid;
    uint32_t off_hi;
    uint32_t zero;
};

static struct idt_gate idt[256] __attribute__((aligned(16)));
extern const uint64_t isr_table[32];
void load_cs(uint16_t sel);

#define IST_STACK_PAGES 2

static void set_gate(int vec, uint64_t handler, int ist)
{
    struct idt_gate *g = &idt[vec];
    g->off_lo = (uint16_t)handler;
    g->sel = GDT_CODE64;
    g->ist = (uint8_t)ist;
    g->type_attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate: IF cleared on entry */
    g->off_mid = (uint16_t)(handler >> 16);
    g->off_hi = (uint32_t)(handler >> 32);
    g->zero = 0;
}

static void idt_build(void)
{
    static bool built;
    if (built)
        return;
    for (int v = 0; v < 32; v++) {
        int ist = 0;
        if (v == 2)
            ist = IST_NMI;
        else if (v == 8 || v == 18)
            ist = IST_DF;
        set_gate(v, isr_table[v], ist);
    }
    built = true;
}

void idt_load(void)
{
    struct dtr d = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
    lidt(&d);
}

int cpu_setup(struct cpu *c, uint32_t index)
{
    memset(c, 0, sizeof(*c));
    c->self = c;
    c->index = index;
    c->apic_id = g_bi ? g_bi->cpus[index].apic_id : 0;
    c->gdt[0] = 0;
    c->gdt[1] =
        0x00af9a000000ffffull; /* 64-bit code, DPL 0 (SDM Vol. 3A 3.4.5 Segment Descriptors, L=1) */
    c->gdt[2] = 0x00cf92000000ffffull; /* data, writable */
    uint64_t base = (uint64_t)(uintptr_t)&c->tss;
    uint64_t limit = sizeof(c->tss) - 1;
    /* 16-byte system descriptor, type 9 = available 64-bit TSS (SDM Vol. 3A 8.2.3 TSS Descriptor in
     * 64-bit mode) */
    c->gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
                (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    c->gdt[4] = base >> 32;
    c->tss.iomap_base = sizeof(c->tss); /* no I/O permission bitmap */
    for (int i = 0; i < 2; i++) {
        uint8_t *st = page_alloc(&g_pages, IST_STACK_PAGES);
        if (!st)
            return -1;
        c->tss.ist[i] = (uint64_t)(uintptr_t)(st + IST_STACK_PAGES * PAGE_SIZE);
    }
    c->gdtr.limit = sizeof(c->gdt) - 1;
    c->gdtr.base = (uint64_t)(uintptr_t)c->gdt;
    idt_build();
    return 0;
}

void cpu_load_tables(struct cpu *c)
{
    lgdt((const struct dtr *)&c->gdtr);
    load_cs(GDT_CODE64);
    __asm__ volatile("mov %0, %%ds; mov %0, %%es; mov %0, %%ss; mov %1, %%fs; mov %1, %%gs"
                     :
                     : "r"((uint32_t)GDT_DATA), "r"(0u)
                     : "memory");
    /* LTR faults on a busy TSS descriptor (SDM Vol. 3A 8.2.2 TSS Descriptor): this CPU's tables are
     * loaded twice (core init on the BSP, then its VMX launch), so mark it available. */
    c->gdt[3] &= ~(2ull << 40);
    __asm__ volatile("ltr %0" : : "r"((uint16_t)GDT_TSS));
    idt_load();
    wrmsr(MSR_IA32_GS_BASE, (uint64_t)(uintptr_t)c); /* %gs:0 = this CPU (this_cpu()) */
}

unsigned cpu_current_index(void)
{
    /* The initial APIC ID (CPUID.1:EBX[31:24]) works before and after the
     * per-CPU data is set up, and CPUID never exits in root mode. */
    uint32_t a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    uint32_t apic = b >> 24;
    if (g_bi)
        for (uint32_t i = 0; i < g_bi->ncpus; i++)
            if ((g_bi->cpus[i].apic_id & 0xff) == apic)
                return i;
    return 0;
}
