/*
 * panic.h - stopping this CPU on a hypervisor bug (core/panic.c).
 *
 * Offers: panic(), which logs "PANIC: <message>" and halts this CPU with
 * interrupts off; it never returns.
 */
#ifndef HV_PANIC_H
#define HV_PANIC_H

__attribute__((noreturn)) void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
