/*
 * fmt.h - a small printf-style formatter for the log of the EFI loader and
 * of the core.  It needs no C library, so the loader (which has none) and the
 * core format log lines the same way.
 *
 * Conversions: %s %c %d %i %u %x %X %p %%, length modifiers hh h l ll z j,
 * flags '-' '0' '#', a field width and a precision (for %s, or '*').
 * Returns the length the full output has (like C's snprintf); the buffer
 * always ends with a NUL when size > 0.
 */
#ifndef HV_FMT_H
#define HV_FMT_H

#include <stdarg.h>
#include <stddef.h>

int fmt_vsn(char *buf, size_t size, const char *fmt, va_list ap);
int fmt_sn(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
