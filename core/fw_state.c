/*
 * fw_state.c - save and restore the firmware's CPU state around the core,
 * so that the loader, and the firmware after it, continue exactly where
 * they were.  TR cannot be given back (the firmware runs without a loaded
 * TSS and LTR of a null selector faults, SDM Vol. 2A LTR—Load Task Register): it keeps pointing
 * at our TSS, which the firmware never uses since it has no privilege
 * changes and no IST gates.
 */
#include "core.h"

void load_cs(uint16_t sel);

void fw_state_save(struct fw_state *s)
{
    s->rflags = read_rflags();
    cli();
    sgdt(&s->gdtr);
    sidt(&s->idtr);
    s->cr3 = read_cr3();
    s->gs_base = rdmsr(0xc0000101);
    s->cs = read_cs();
    s->ss = read_ss();
    s->ds = read_ds();
    s->es = read_es();
    s->fs = read_fs();
    s->gs = read_gs();
}

void fw_state_restore(const struct fw_state *s)
{
    write_cr3(s->cr3);
    lgdt(&s->gdtr);
    load_cs(s->cs);
    __asm__ volatile("mov %0, %%ss" : : "r"((uint32_t)s->ss));
    __asm__ volatile("mov %0, %%ds" : : "r"((uint32_t)s->ds));
    __asm__ volatile("mov %0, %%es" : : "r"((uint32_t)s->es));
    __asm__ volatile("mov %0, %%fs" : : "r"((uint32_t)s->fs));
    __asm__ volatile("mov %0, %%gs" : : "r"((uint32_t)s->gs));
    wrmsr(0xc0000101, s->gs_base);
    lidt(&s->idtr);
    write_rflags(s->rflags);
}
