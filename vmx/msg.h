/*
 * msg.h - a bounded message builder for vmx/ diagnostics (internal).
 *
 * The VMX modules are linked into the EFI loader (no libc) and the core
 * (newlib's nano printf mangles 64-bit formats), so reports are assembled
 * with these few helpers instead of snprintf.  The text is truncated, never
 * overflowed.
 */
#ifndef HV_VMX_MSG_H
#define HV_VMX_MSG_H

#include <stdint.h>

struct msg {
    char s[224];
    unsigned n;
};

static inline void msg_start(struct msg *m)
{
    m->n = 0;
    m->s[0] = '\0';
}

static inline void msg_putc(struct msg *m, char c)
{
    if (m->n + 1 < sizeof(m->s)) {
        m->s[m->n++] = c;
        m->s[m->n] = '\0';
    }
}

static inline void msg_put(struct msg *m, const char *str)
{
    while (*str)
        msg_putc(m, *str++);
}

static inline void msg_hex(struct msg *m, uint64_t v)
{
    char tmp[16];
    int i = 0;
    msg_put(m, "0x");
    do {
        tmp[i++] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v);
    while (i > 0)
        msg_putc(m, tmp[--i]);
}

static inline void msg_dec(struct msg *m, uint64_t v)
{
    char tmp[20];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i > 0)
        msg_putc(m, tmp[--i]);
}

#endif /* HV_VMX_MSG_H */
