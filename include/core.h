/*
 * core.h - what the core's parts offer each other: per-CPU data, the
 * descriptor tables, the core's page tables, trap handling and the
 * firmware state saved on entry.  Only for code built into the core image.
 */
#ifndef HV_CORE_H
#define HV_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "boot_info.h"
#include "page_alloc.h"
#include "panic.h"
#include "x86.h"

#define GDT_CODE64  0x08
#define GDT_DATA    0x10
#define GDT_TSS     0x18
#define GDT_ENTRIES 5

/* 64-bit TSS (SDM Vol. 3A 8.7 Task Management in 64-bit Mode): only the IST stacks matter to us. */
struct __attribute__((packed)) tss64 {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};

#define IST_NMI 1 /* NMIs may land on any instruction of the core */
#define IST_DF  2 /* #DF and #MC: the current stack may be the problem */

struct cpu {
    struct cpu *self; /* first: reachable as %gs:0 */
    uint32_t index;   /* position in boot_info.cpus */
    uint32_t apic_id;
    uint64_t gdt[GDT_ENTRIES];
    struct tss64 tss;
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } gdtr;
    void *stack_top; /* main root-mode stack */
    volatile uint64_t nmi_count;
    volatile uint64_t bp_count;
    struct vcpu *vcpu; /* vmx/: the vCPU this CPU runs (include/vmx.h) */
};

/* Firmware state saved on entry and restored before returning to the loader. */
struct fw_state {
    struct dtr gdtr, idtr;
    uint64_t cr3, rflags, gs_base;
    uint16_t cs, ss, ds, es, fs, gs;
};

/* Saved register frame built by the exception stubs (isr.S). */
struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

extern struct boot_info *g_bi;
extern struct cpu *g_cpus[BI_MAX_CPUS]; /* index = position in boot_info.cpus */
extern struct page_pool g_pages;

/* cpu_tables.c */
int cpu_setup(struct cpu *c, uint32_t index);
void cpu_load_tables(struct cpu *c);
void idt_load(void);
unsigned cpu_current_index(void);

/* This CPU's struct cpu: %gs:0 (IA32_GS_BASE points at it, cpu_load_tables). */
static inline struct cpu *this_cpu(void)
{
    struct cpu *c;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(c));
    return c;
}

/* fw_state.c */
void fw_state_save(struct fw_state *s);
void fw_state_restore(const struct fw_state *s);

/* paging.c: the core's identity map of every physical address up to top. */
uint64_t paging_build(uint64_t top);

/* trap.c: the IDT's C side.  An upper layer registers the NMI handler (it
 * may move *rip) and the fixup offered every other exception (true = the
 * frame was changed to resume elsewhere); both run in root mode on the
 * interrupted CPU. */
void trap_dispatch(struct trap_frame *f);
void trap_set_nmi_handler(void (*h)(uint64_t *rip));
void trap_set_fixup(bool (*f)(struct trap_frame *f));

#endif
