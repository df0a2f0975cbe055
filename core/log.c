/*
 * log.c - the hypervisor log (see log.h).  The lock is a plain test-and-set
 * spinlock: log lines come from every CPU, including NMI-free exit paths.
 * Under it a line only goes to memory (the in-memory ring, the serial
 * transmit queue, the loader's console sink); the serial port, which the
 * guest owns and can slow to a crawl, is fed afterwards by one CPU at a
 * time without the lock, each byte waiting a bounded time (log_txq.h).
 */
#include "log.h"
#include "fmt.h"
#include "log_txq.h"
#include "serial.h"

static uint16_t log_port;
static uint32_t log_level = LOG_INFO;
static struct log_ring *log_ring;
static log_sink_fn log_sink;
static unsigned (*log_cpu)(void);
static volatile int log_lock;
static struct log_txq log_txq;
/* Held by the one CPU feeding the UART.  The loader and the core each link
 * this file; once the core runs, the loader feeds the UART under the core's
 * flag (log_share_drain), so their lines never mix byte by byte. */
static volatile int log_drain_own;
static volatile int *log_drain_flag = &log_drain_own;
static bool log_cr_sent;        /* the drainer sent the '\r' of the '\n' at the head */
static uint64_t log_byte_ticks; /* TSC ticks one byte may wait; 0: a bounded poll count */

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

volatile int *log_drain_flag_ptr(void)
{
    return log_drain_flag;
}

void log_share_drain(volatile int *flag)
{
    log_drain_flag = flag ? flag : &log_drain_own;
}

void log_set_tsc_hz(uint64_t hz)
{
    /* 500 us: about six byte times at the 115200 baud serial_init programs. */
    log_byte_ticks = hz / 2000;
}

uint64_t log_serial_dropped(void)
{
    return __atomic_load_n(&log_txq.dropped_lines, __ATOMIC_RELAXED);
}

/*
 * Sends queued bytes until the queue is empty, `budget` bytes went out, or the
 * UART stops taking them (a wait ran out, or the guest selected the divisor
 * latch or loopback): then the rest waits for the next line.  Another CPU
 * already draining sends this CPU's line too; the re-check after releasing
 * the flag catches a line queued just as that CPU finished.  A drain that
 * used up its budget mid-line finishes the line first: another CPU's drain
 * (or the other image's) then starts at a line boundary.
 */
static void log_drain(size_t budget)
{
    for (;;) {
        if (__atomic_test_and_set(log_drain_flag, __ATOMIC_ACQUIRE))
            return;
        bool stalled = !serial_usable(log_port), mid_line = false;
        while (!stalled && (budget || mid_line)) {
            const char *p;
            size_t n = log_txq_peek(&log_txq, &p), sent = 0;
            if (!n)
                break;
            while (sent < n && (budget || mid_line)) {
                if (p[sent] == '\n' && !log_cr_sent) {
                    if (!serial_put_bounded(log_port, '\r', log_byte_ticks)) {
                        stalled = true;
                        break;
                    }
                    log_cr_sent = true;
                }
                if (!serial_put_bounded(log_port, p[sent], log_byte_ticks)) {
                    stalled = true;
                    break;
                }
                log_cr_sent = false;
                mid_line = p[sent] != '\n';
                sent++;
                if (budget)
                    budget--;
            }
            log_txq_consume(&log_txq, sent);
        }
        __atomic_clear(log_drain_flag, __ATOMIC_RELEASE);
        if (stalled || !budget || !log_txq_used(&log_txq))
            return;
    }
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
    if (log_port)
        log_txq_put(&log_txq, line, len);
    log_ring_write(log_ring, line, len);
    if (log_sink)
        log_sink(line, len);
    __atomic_clear(&log_lock, __ATOMIC_RELEASE);
    /* Twice this line plus one: the queue drains faster than one CPU fills it. */
    if (log_port)
        log_drain(2 * len + sizeof(line));
}
