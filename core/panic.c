/*
 * panic.c - the end of a CPU that met a hypervisor bug: log the reason and
 * halt with interrupts off.  Other CPUs go on; the log says which one
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
    log_error("PANIC: %s", msg);
    void (*hook)(void) = panic_hook;
    if (hook)
        hook();
    for (;;)
        __asm__ volatile("cli; hlt");
}
