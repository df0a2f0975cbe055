/* serial: COM1 output by port I/O and a minimal formatter (see serial.h). */
#include "serial.h"
#include "cpu.h"

#define COM1     0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

/* Output sinks: the UART or a bounded buffer, chosen per call. */
struct sink {
    char *buf; /* NULL: the UART */
    unsigned long size, len;
};

static void uart_putc(char c)
{
    /*
     * Bounded wait: where no UART answers, the bus reads 0xff (THRE set), but
     * a wedged one must not hang the agent before it can report.
     */
    for (unsigned i = 0; i < 100000 && !(inb(COM1_LSR) & LSR_THRE); i++)
        ;
    outb(COM1, (unsigned char)c);
}

void ser_drain(void)
{
    for (unsigned i = 0; i < 1000000 && !(inb(COM1_LSR) & LSR_TEMT); i++)
        ;
}

static void put(struct sink *s, char c)
{
    if (!s->buf) {
        if (c == '\n')
            uart_putc('\r');
        uart_putc(c);
        return;
    }
    if (s->len + 1 < s->size)
        s->buf[s->len++] = c;
}

static void put_num(struct sink *s, unsigned long long v, unsigned base, int width, char pad,
                    int negative)
{
    char tmp[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    if (negative)
        tmp[n++] = '-';
    for (int i = n; i < width; i++)
        put(s, pad);
    while (n)
        put(s, tmp[--n]);
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(s, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, longs = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        switch (*fmt) {
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            while (*str)
                put(s, *str++);
            break;
        }
        case 'c':
            put(s, (char)va_arg(ap, int));
            break;
        case 'd': {
            long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
            put_num(s, v < 0 ? -(unsigned long long)v : (unsigned long long)v, 10, width, pad,
                    v < 0);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            put_num(s, v, *fmt == 'x' ? 16 : 10, width, pad, 0);
            break;
        }
        case 'p':
            put(s, '0');
            put(s, 'x');
            put_num(s, (unsigned long long)(unsigned long)va_arg(ap, void *), 16, width, pad, 0);
            break;
        case '%':
            put(s, '%');
            break;
        case '\0':
            return;
        default:
            put(s, '%');
            put(s, *fmt);
        }
    }
}

void ser_vprintf(const char *fmt, va_list ap)
{
    struct sink s = {0};
    format(&s, fmt, ap);
}

void ser_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ser_vprintf(fmt, ap);
    va_end(ap);
}

void str_printf(char *buf, unsigned long size, const char *fmt, ...)
{
    struct sink s = {.buf = buf, .size = size};
    va_list ap;
    if (!size)
        return;
    va_start(ap, fmt);
    format(&s, fmt, ap);
    va_end(ap);
    buf[s.len] = '\0';
}
