/*
 * log.h - the hypervisor log: one line per call, "hv: [cpuN] text", sent to
 * the 16550 serial port (if configured), the in-memory ring (if set up) and
 * an optional extra sink (the loader's firmware console).  Lines below the
 * configured level are dropped.  Safe to call from every CPU at once; no
 * call waits on the serial port for more than a bounded time per byte, and
 * none waits on it while holding the log lock.
 */
#ifndef HV_LOG_H
#define HV_LOG_H

#include "hv_config.h"
#include "log_ring.h"

typedef void (*log_sink_fn)(const char *line, size_t len);

void log_init(uint16_t serial_port, uint32_t level);
void log_set_ring(struct log_ring *r);
void log_set_sink(log_sink_fn fn);
/* Returns the number of the calling CPU for the line prefix. */
void log_set_cpu_fn(unsigned (*fn)(void));
/* Bounds each serial byte's wait by the TSC (before this: by a count of status reads). */
void log_set_tsc_hz(uint64_t hz);
/* The flag that lets one CPU at a time feed the UART, and taking another
 * image's (the loader takes the core's: one UART, one feeder) or, with NULL,
 * its own back. */
volatile int *log_drain_flag_ptr(void);
void log_share_drain(volatile int *flag);
/* Lines the serial port never got because the guest had slowed or stopped it (log_txq.h);
 * the in-memory ring has them all. */
uint64_t log_serial_dropped(void);
void log_printf(uint32_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_printf(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_printf(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_printf(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)

#endif
