/*
 * panic.c - the end of a CPU that met a hypervisor bug: mark it stopped, log
 * the reason and halt with interrupts off.  Other CPUs go on; the log says which one
 * stopped, and the registered hook tells the layers above that it did.
 */
#include <stdarg.h>

#include "fmt.h"
#include "log.h"
#include "panic.h"

static void (*panic_hook)(void);

void panic_set_hook(void (*hook)(void))
{
    panic_hook = hook;
}

void panic(const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    fmt_vsn(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* The stop is recorded before the line is logged: a log line can wait on
     * a UART the guest slows down, and kicks from other CPUs wait for this
     * one until it counts as halted. */
    void (*hook)(void) = panic_hook;
    if (hook)
        hook();
    log_error("PANIC: %s", msg);
    for (;;)
        __asm__ volatile("cli; hlt");
}
