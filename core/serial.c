/*
 * serial.c - polled 16550 output (see serial.h).
 */
#include "serial.h"
#include "x86.h"

#define UART_THR 0 /* transmit holding (DLAB=0) */
#define UART_DLL 0 /* divisor low (DLAB=1) */
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

void serial_init(uint16_t port)
{
    if (!port)
        return;
    /* Reprogramming clears the FIFO: let what is queued (maybe the loader's
     * last line) leave first.  Bounded, as an absent UART reads 0xff. */
    for (int i = 0; i < 100000 && !(inb(port + UART_LSR) & LSR_TEMT); i++)
        cpu_relax();
    outb(port + UART_IER, 0x00); /* polled: no interrupts */
    outb(port + UART_LCR, 0x80); /* DLAB to set the divisor */
    outb(port + UART_DLL, 1);    /* 115200 baud */
    outb(port + UART_DLM, 0);
    outb(port + UART_LCR, 0x03); /* 8N1 */
    outb(port + UART_FCR, 0x07); /* FIFO on, cleared */
    outb(port + UART_MCR, 0x03); /* DTR, RTS */
}

static void put(uint16_t port, char c)
{
    /* Bounded wait: a missing UART reads 0xff (THRE set) so this never hangs. */
    for (int i = 0; i < 100000 && !(inb(port + UART_LSR) & LSR_THRE); i++)
        cpu_relax();
    outb(port + UART_THR, (uint8_t)c);
}

void serial_write(uint16_t port, const char *s, size_t n)
{
    if (!port)
        return;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            put(port, '\r');
        put(port, s[i]);
    }
}
