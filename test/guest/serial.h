/*
 * serial: the agent's only output channel, COM1 driven by direct port I/O.
 *
 * The agent never prints through ConOut: OVMF mirrors its console onto COM1
 * with terminal escapes, so markers would appear twice and interleaved.  Port
 * I/O also keeps working on an AP, where boot services are off limits.
 */
#ifndef AGENT_SERIAL_H
#define AGENT_SERIAL_H

#include <stdarg.h>

/*
 * A small printf: %s %c %d %u %x %lx %llx %lu %llu %ld %p and %%; a width with
 * a leading 0 ("%016llx") is honoured.  "\n" becomes "\r\n".
 */
void ser_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ser_vprintf(const char *fmt, va_list ap);

/*
 * Waits until the UART has sent its last bit: call it before powering off,
 * or an emulator may stop with the final characters still in its FIFO.
 */
void ser_drain(void);

/* Formats into buf (always NUL-terminated, truncated to size). */
void str_printf(char *buf, unsigned long size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
