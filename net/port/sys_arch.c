/*
 * sys_arch.c - what lwIP (NO_SYS=1) and the NIC drivers need from the
 * platform: a millisecond clock from the calibrated TSC, microsecond
 * busy-waits, random numbers, and diagnostics into the hypervisor log.
 * Core only (uses RDTSC/RDRAND).
 */
#include <stdarg.h>
#include <stdio.h>

#include "core.h"
#include "log.h"
#include "net_internal.h"
#include "net/nic.h"

#include "lwip/arch.h"
#include "lwip/sys.h"

/* lwIP's heap (LWIP_RAM_HEAP_POINTER, lwipopts.h): defined in the port, the
 * one folder lwIP calls back into; net/netif.c points it at reserved pages. */
void *net_lwip_heap;

static uint64_t tsc_hz = 1000000000ull; /* until net_time_init: assume 1 GHz */
static uint64_t tsc0;
static bool have_rdrand;
static uint64_t xs_state;

void net_time_init(uint64_t hz)
{
    uint32_t a, b, c, d;
    if (hz >= 1000000)
        tsc_hz = hz;
    tsc0 = rdtsc();
    cpuid(1, 0, &a, &b, &c, &d);
    have_rdrand = (c >> 30) & 1; /* CPUID.01H:ECX.RDRAND[bit 30] */
    xs_state = tsc0 | 1;
}

/* S3 restarts the TSC: lwIP's clock (timers, redial) carries on from where
 * it stopped instead of running backwards. */
static uint64_t ms_at_suspend;

void net_time_suspend(void)
{
    ms_at_suspend = net_now_ms();
}

void net_time_resume(void)
{
    tsc0 = rdtsc() - ms_at_suspend * (tsc_hz / 1000); /* modulo 2^64, as net_now_ms subtracts */
}

uint64_t net_now_ms(void)
{
    return (rdtsc() - tsc0) / (tsc_hz / 1000);
}

uint64_t net_tsc(void)
{
    return rdtsc();
}

uint64_t net_tsc_hz(void)
{
    return tsc_hz;
}

u32_t sys_now(void)
{
    /* lwIP compares times with wrap-around arithmetic, so truncation is fine. */
    return (u32_t)net_now_ms();
}

void net_udelay(unsigned us)
{
    uint64_t end = rdtsc() + tsc_hz / 1000000 * us;
    while (rdtsc() < end)
        __asm__ volatile("pause");
}

unsigned int hv_rand32(void)
{
    if (have_rdrand) {
        uint64_t v;
        if (rdrand64(&v))
            return (unsigned int)v;
    }
    /* xorshift64 over the TSC: unpredictable enough for ports and ISNs here. */
    xs_state ^= rdtsc();
    xs_state ^= xs_state << 13;
    xs_state ^= xs_state >> 7;
    xs_state ^= xs_state << 17;
    return (unsigned int)(xs_state >> 16);
}

void hv_lwip_diag(const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* lwIP's messages end with a newline of their own; the log adds one. */
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    log_debug("lwip: %s", buf);
}

void hv_lwip_assert(const char *msg, int line, const char *file)
{
    panic("lwIP assertion \"%s\" failed at %s:%d", msg, file, line);
}
