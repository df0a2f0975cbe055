/*
 * serial.h - polled 16550 UART output (COM1 = 0x3f8), 115200 8N1.
 */
#ifndef HV_SERIAL_H
#define HV_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

void serial_init(uint16_t port);

/* True when the UART can take our bytes: the divisor latch is not selected
 * and loopback is off (the guest may have set either). */
bool serial_usable(uint16_t port);

/*
 * Sends one byte once the transmit holding register is empty, waiting at most
 * wait_ticks TSC ticks (0: at most 100000 status reads, for callers that do
 * not know the TSC rate).  False, with nothing sent, when the wait ran out.
 */
bool serial_put_bounded(uint16_t port, char c, uint64_t wait_ticks);

#endif
