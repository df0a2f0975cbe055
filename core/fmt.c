/*
 * fmt.c - printf-style formatting without a C library (see fmt.h).
 */
#include "fmt.h"

#include <stdbool.h>
#include <stdint.h>

struct out {
    char *buf;
    size_t size;
    size_t len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void pad(struct out *o, char c, int n)
{
    while (n-- > 0)
        put(o, c);
}

static void put_str(struct out *o, const char *s, int width, int prec, bool left)
{
    int n = 0;
    if (!s)
        s = "(null)";
    while ((prec < 0 || n < prec) && s[n])
        n++;
    if (!left)
        pad(o, ' ', width - n);
    for (int i = 0; i < n; i++)
        put(o, s[i]);
    if (left)
        pad(o, ' ', width - n);
}

static void put_num(struct out *o, uint64_t v, bool neg, unsigned base, bool upper, int width,
                    bool zero, bool left, const char *prefix)
{
    char tmp[24];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    int plen = 0;
    while (prefix[plen])
        plen++;
    int total = n + plen + (neg ? 1 : 0);
    if (!left && !zero)
        pad(o, ' ', width - total);
    if (neg)
        put(o, '-');
    for (int i = 0; i < plen; i++)
        put(o, prefix[i]);
    if (!left && zero)
        pad(o, '0', width - total);
    while (n)
        put(o, tmp[--n]);
    if (left)
        pad(o, ' ', width - total);
}

int fmt_vsn(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = {buf, size, 0};
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put(&o, *p);
            continue;
        }
        bool left = false, zero = false, alt = false;
        int width = 0, prec = -1, lng = 0;
        for (p++;; p++) {
            if (*p == '-')
                left = true;
            else if (*p == '0')
                zero = true;
            else if (*p == '#')
                alt = true;
            else
                break;
        }
        if (*p == '*') {
            width = va_arg(ap, int);
            p++;
        }
        while (*p >= '0' && *p <= '9')
            width = width * 10 + (*p++ - '0');
        if (*p == '.') {
            prec = 0;
            p++;
            if (*p == '*') {
                prec = va_arg(ap, int);
                p++;
            }
            while (*p >= '0' && *p <= '9')
                prec = prec * 10 + (*p++ - '0');
        }
        for (;; p++) {
            if (*p == 'l')
                lng++;
            else if (*p == 'z' || *p == 'j')
                lng = 2;
            else if (*p != 'h')
                break;
        }
        switch (*p) {
        case 'd':
        case 'i': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
            put_num(&o, mag, v < 0, 10, false, width, zero, left, "");
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            unsigned base = *p == 'u' ? 10 : 16;
            put_num(&o, v, false, base, *p == 'X', width, zero, left,
                    (alt && base == 16 && v) ? "0x" : "");
            break;
        }
        case 'p':
            put_num(&o, (uintptr_t)va_arg(ap, void *), false, 16, false, width, zero, left, "0x");
            break;
        case 's':
            put_str(&o, va_arg(ap, const char *), width, prec, left);
            break;
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case '%':
            put(&o, '%');
            break;
        case '\0':
            p--; /* a lone '%' at the end: stop at the NUL */
            break;
        default:
            put(&o, '%');
            put(&o, *p);
            break;
        }
    }
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}

int fmt_sn(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsn(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
