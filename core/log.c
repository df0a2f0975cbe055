/*
 * log.c - the hypervisor log (see log.h).  The lock is a plain test-and-set
 * spinlock: log lines come from every CPU, including NMI-free exit paths,
 * and must not interleave on the serial port.
 */
#include "log.h"
#include "fmt.h"
#include "serial.h"

static uint16_t log_port;
static uint32_t log_level = LOG_INFO;
static struct log_ring *log_ring;
static log_sink_fn log_sink;
static unsigned (*log_cpu)(void);
static volatile int log_lock;

void log_init(uint16_t serial_port, uint32_t level)
{
    if (serial_port != log_port)
        serial_init(serial_port);
    log_port = serial_port;
    log_level = level;
}

void log_set_ring(struct log_ring *r)
{
    log_ring = r;
}

void log_set_sink(log_sink_fn fn)
{
    log_sink = fn;
}

void log_set_cpu_fn(unsigned (*fn)(void))
{
    log_cpu = fn;
}

void log_printf(uint32_t level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char line[256];
    int n = fmt_sn(line, sizeof(line), "hv: [cpu%u] ", log_cpu ? log_cpu() : 0);
    va_list ap;
    va_start(ap, fmt);
    int m = fmt_vsn(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: keep room for the newline */
    line[len++] = '\n';
    line[len] = '\0';
    while (__atomic_test_and_set(&log_lock, __ATOMIC_ACQUIRE))
        __asm__ volatile("pause");
    serial_write(log_port, line, len);
    log_ring_write(log_ring, line, len);
    if (log_sink)
        log_sink(line, len);
    __atomic_clear(&log_lock, __ATOMIC_RELEASE);
}
