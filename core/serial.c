/*
 * serial.c - polled 16550 output (see serial.h).  The guest owns the UART
 * and may reprogram it at any time: every wait on it is bounded.
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
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define POLLS    100000

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

bool serial_usable(uint16_t port)
{
    if (!port)
        return false;
    /* DLAB set: THR is the divisor latch; loopback: our bytes would land in the guest's receiver.
     */
    return !(inb(port + UART_LCR) & LCR_DLAB) && !(inb(port + UART_MCR) & MCR_LOOP);
}

bool serial_put_bounded(uint16_t port, char c, uint64_t wait_ticks)
{
    /* A missing UART reads 0xff (THRE set), so this never waits for it. */
    if (wait_ticks) {
        uint64_t t0 = rdtsc();
        while (!(inb(port + UART_LSR) & LSR_THRE))
            if (rdtsc() - t0 > wait_ticks)
                return false;
    } else {
        int i = 0;
        while (!(inb(port + UART_LSR) & LSR_THRE))
            if (++i >= POLLS)
                return false;
    }
    outb(port + UART_THR, (uint8_t)c);
    return true;
}
