/*
 * panic.h - stopping this CPU on a hypervisor bug (core/panic.c).
 *
 * Offers: panic(), which logs "PANIC: <message>" and halts this CPU with
 * interrupts off; it never returns.  panic_set_hook() registers what a layer
 * above must record first (the VMX layer marks this CPU's vCPU halted, so that
 * no kick waits for it and KVMI stops queueing work to it).
 */
#ifndef HV_PANIC_H
#define HV_PANIC_H

__attribute__((noreturn)) void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void panic_set_hook(void (*hook)(void));

#endif
