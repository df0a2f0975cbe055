/*
 * probe_logport: the guest owns COM1, which the hypervisor's log shares
 * (docs/security.md, "The log port").  With logport=1 the agent slows COM1
 * to its slowest rate with the FIFO off, tells the introspector so through
 * its mailbox, and makes the hypervisor log a few thousand bytes (the
 * statistics hypercall) while the introspector checks that the session
 * still answers (the host writes LOGPORT_GO once GET_VERSION answered and
 * every vCPU paused and resumed).  Then it turns
 * on loopback and has the hypervisor log again: none of those bytes may
 * reach the guest's receiver.  Last it restores the port and logs once
 * more, so the hypervisor's "N line(s) dropped" note reaches the serial log
 * for the host to see.  The agent prints nothing while the port is slow.
 */
#include "agent.h"
#include "cpu.h"

#define COM1     0x3f8
#define UART_RBR 0
#define UART_DLL 0
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DR   0x01
#define LSR_TEMT 0x40
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10

#define HV_HYPERCALL_MAGIC 0x4856444247ull
#define HV_HC_STATS        1

#define LOGPORT_SLOW 0x574f4c532d474f4cull /* "LOG-SLOW" */
#define LOGPORT_GO   0x4f472d54524f5047ull /* "GPORT-GO" */

static void hv_stats(void)
{
    uint64_t a = HV_HYPERCALL_MAGIC, b = HV_HC_STATS, c = 0;
    __asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c) : : "rdx", "memory");
}

static void set_divisor(uint16_t div, uint8_t lcr)
{
    outb(COM1 + UART_LCR, lcr | LCR_DLAB);
    outb(COM1 + UART_DLL, (uint8_t)div);
    outb(COM1 + UART_DLM, (uint8_t)(div >> 8));
    outb(COM1 + UART_LCR, lcr);
}

/* A byte in flight at the slowest rate takes seconds (of emulated time) to leave. */
static int wait_idle(void)
{
    for (uint64_t i = 0; i < (1ull << 32); i++)
        if (inb(COM1 + UART_LSR) & LSR_TEMT)
            return 0;
    return -1;
}

enum verdict probe_logport(struct agent *a, char *reason, size_t size)
{
    if (a->opt.logport != 1) {
        str_printf(reason, size, "needs logport=1");
        return PROBE_SKIP;
    }
    volatile uint64_t *mailbox = agent_low_pages(a, 1);
    if (!mailbox) {
        str_printf(reason, size, "no page for the mailbox");
        return PROBE_FAIL;
    }
    AGENT_LOG("logport: mailbox at 0x%lx", (UINT64)(uintptr_t)mailbox);
    ser_drain();
    uint8_t lcr = inb(COM1 + UART_LCR) & ~LCR_DLAB, mcr = inb(COM1 + UART_MCR);

    /* Slowest rate (divisor 0xffff: about 1.8 baud), FIFO off. */
    outb(COM1 + UART_FCR, 0x00);
    set_divisor(0xffff, lcr);
    mailbox[1] = LOGPORT_SLOW; /* the host's commands meet the logging below */
    for (int i = 0; i < 6; i++)
        hv_stats();
    int answered = agent_wait_word(&mailbox[0], LOGPORT_GO) == 0;

    /* Loopback at full speed: the hypervisor must not feed the guest's receiver. */
    set_divisor(1, lcr);
    int idle1 = wait_idle();
    outb(COM1 + UART_FCR, 0x07);
    outb(COM1 + UART_MCR, mcr | MCR_LOOP);
    while (inb(COM1 + UART_LSR) & LSR_DR)
        (void)inb(COM1 + UART_RBR);
    for (int i = 0; i < 2; i++)
        hv_stats();
    unsigned got = 0;
    while ((inb(COM1 + UART_LSR) & LSR_DR) && got < 100000) {
        (void)inb(COM1 + UART_RBR);
        got++;
    }

    /* Back to normal: the next lines drain the backlog and say how many were dropped. */
    outb(COM1 + UART_MCR, mcr);
    for (int i = 0; i < 3; i++)
        hv_stats();
    int idle2 = wait_idle();

    AGENT_LOG("logport: COM1 at divisor 0xffff, FIFO off: the introspector %s",
              answered ? "was answered" : "never answered");
    AGENT_LOG("logport: COM1 in loopback: %u byte(s) of the hypervisor's log reached the guest",
              got);
    if (!answered) {
        str_printf(reason, size, "the host never wrote LOGPORT_GO to the mailbox");
        return PROBE_FAIL;
    }
    if (got) {
        str_printf(reason, size, "%u byte(s) of the hypervisor's log looped back to the guest",
                   got);
        return PROBE_FAIL;
    }
    if (idle1 || idle2) {
        str_printf(reason, size, "COM1 never went idle");
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}
