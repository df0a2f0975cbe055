/*
 * serial.h - polled 16550 UART output (COM1 = 0x3f8), 115200 8N1.
 */
#ifndef HV_SERIAL_H
#define HV_SERIAL_H

#include <stddef.h>
#include <stdint.h>

void serial_init(uint16_t port);
void serial_write(uint16_t port, const char *s, size_t n);

#endif
