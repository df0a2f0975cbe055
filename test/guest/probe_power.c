/*
 * probe_power: the guest's half of the power-transition scenarios
 * (test/emu/power_scenarios.py).  The probe announces a mailbox page and
 * waits for the host's go word, which carries the PM1a control and status
 * ports and \_S5's SLP_TYPa (from the hypervisor's log); then it asks the
 * machine for what power=N says, as an OS would:
 *   power=1  S5 power-off: SLP_TYP|SLP_EN to PM1a_CNT
 *   power=2  reset through the reset control register (0xcf9 <- 0x06)
 *   power=3  reset through the keyboard controller (0x64 <- 0xfe)
 *   power=4  fast reset through system control port A (0x92 bit 0)
 *   power=5  a sleep (an SLP_TYP no \_Sx declares): the hypervisor refuses
 *            it; the probe must find WAK_STS set as after a wake, clear it,
 *            and go on once the host wrote the go word again (third word).
 *   power=6  a triple fault: interrupts off, an IDT of limit 0, then UD2:
 *            the #UD cannot be delivered (#GP), nor that (#DF), so the CPU
 *            shuts down, which a chipset turns into a platform reset.
 *   power=7  the FADT reset register in memory space (acpitab.efi resetmem;
 *            its address in the fourth word): a store of another value must
 *            land as written with no reset asked, then the reset value (6),
 *            which the hypervisor holds for UNHOOK; Bochs has no register
 *            there, so the machine runs on and the byte must read 6.
 *   power=9  S4 (hibernation) through PM1a_CNT with on_sleep = resume, which
 *            lets it through as a power-off (\_S4's type in the fourth
 *            word's bits 40-42); Bochs's PIIX4 ignores SLP_TYP 2, so the
 *            machine runs on and the probe passes.
 *   power=8  S3 with on_sleep = resume while an AP rewrites the FACS waking
 *            vector in a loop (probe_power_s3.c; the FACS address and \_S3's
 *            type in the fourth word).
 * For 1-4, 6 and 8 the result line comes first: the machine goes away with it.
 */
#include "agent.h"
#include "cpu.h"

#define POWER_GO 0x52574f502d4f4721ull /* "!GO-POWR" */
#define SLP_EN   (1u << 13)
#define WAK_STS  (1u << 15)

static enum verdict sleep_refused(volatile uint64_t *mb, uint16_t cnt, uint16_t evt, char *reason,
                                  size_t size)
{
    AGENT_LOG("power: sleep (SLP_TYP 7) through PM1a_CNT 0x%x", cnt);
    outw(cnt, (uint16_t)((7u << 10) | SLP_EN));
    uint16_t sts = inw(evt);
    AGENT_LOG("power: still running after the sleep request; PM1a_STS 0x%x", sts);
    if (!(sts & WAK_STS)) {
        str_printf(reason, size, "no WAK_STS after the refused sleep (PM1a_STS 0x%x)", sts);
        return PROBE_FAIL;
    }
    outw(evt, WAK_STS); /* write-1-to-clear, as the OS does after a wake */
    uint16_t after = inw(evt);
    AGENT_LOG("power: WAK_STS cleared: PM1a_STS 0x%x", after);
    if (after & WAK_STS) {
        str_printf(reason, size, "WAK_STS stuck after clearing (0x%x)", after);
        return PROBE_FAIL;
    }
    /* The host checks the session while the machine still runs, then lets it end. */
    agent_wait_word(&mb[2], POWER_GO);
    return PROBE_PASS;
}

static enum verdict reset_in_memory(volatile uint64_t *mb, char *reason, size_t size)
{
    uint64_t at = mb[3];
    if (!at || at >= (1ull << 32)) {
        str_printf(reason, size, "no reset register address from the host (0x%lx)", at);
        return PROBE_FAIL;
    }
    volatile uint8_t *reg = (volatile uint8_t *)(uintptr_t)at;
    *reg = 0x11;
    uint8_t got = *reg;
    AGENT_LOG("power: 0x11 stored at the reset register 0x%lx, reads 0x%x", at, got);
    if (got != 0x11) {
        str_printf(reason, size, "a store of 0x11 to 0x%lx reads back 0x%x", at, got);
        return PROBE_FAIL;
    }
    AGENT_LOG("power: storing the reset value 6 at 0x%lx", at);
    *reg = 6;
    got = *reg;
    AGENT_LOG("power: reset value stored, reads 0x%x; running on (no reset register in Bochs)",
              got);
    if (got != 6) {
        str_printf(reason, size, "the reset value's store reads back 0x%x", got);
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}

enum verdict probe_power(struct agent *a, char *reason, size_t size)
{
    if (a->opt.power < 1 || a->opt.power > 9) {
        str_printf(reason, size, "needs power=1..9");
        return PROBE_SKIP;
    }
    volatile uint64_t *mb = agent_low_pages(a, 1);
    if (!mb) {
        str_printf(reason, size, "no page for the mailbox");
        return PROBE_FAIL;
    }
    AGENT_LOG("power: mailbox at 0x%lx", (UINT64)(uintptr_t)mb);
    if (agent_wait_word(&mb[0], POWER_GO)) {
        str_printf(reason, size, "the host never wrote the mailbox at 0x%lx",
                   (UINT64)(uintptr_t)mb);
        return PROBE_FAIL;
    }
    uint16_t cnt = (uint16_t)mb[1], evt = (uint16_t)(mb[1] >> 16);
    unsigned typ5 = (unsigned)(mb[1] >> 32) & 7;
    if (a->opt.power == 5)
        return sleep_refused(mb, cnt, evt, reason, size);
    if (a->opt.power == 7)
        return reset_in_memory(mb, reason, size);
    if (a->opt.power == 8)
        return power_s3_race(a, mb, reason, size);
    if (a->opt.power == 9) {
        unsigned typ4 = (unsigned)(mb[3] >> 40) & 7;
        AGENT_LOG("power: S4 (SLP_TYP %u) through PM1a_CNT 0x%x", typ4, cnt);
        outw(cnt, (uint16_t)((typ4 << 10) | SLP_EN));
        AGENT_LOG("power: still running after S4 (Bochs's PIIX4 has no S4)");
        return PROBE_PASS;
    }
    static const char *const what[] = {"",
                                       "S5 power-off through PM1a_CNT",
                                       "reset through 0xcf9",
                                       "reset through the keyboard controller",
                                       "fast reset through port 0x92",
                                       "",
                                       "triple fault"};
    AGENT_LOG("power: %s", what[a->opt.power]);
    ser_printf("HVTEST-RESULT: PASS the agent asked for the %s\n", what[a->opt.power]);
    switch (a->opt.power) {
    case 1:
        outw(cnt, (uint16_t)((typ5 << 10) | SLP_EN));
        break;
    case 2:
        outb(0xcf9, 0x02);
        outb(0xcf9, 0x06);
        break;
    case 3:
        outb(0x64, 0xfe);
        break;
    case 4:
        outb(0x92, inb(0x92) & ~1u);
        outb(0x92, inb(0x92) | 1u);
        break;
    case 6: {
        struct __attribute__((packed)) {
            uint16_t limit;
            uint64_t base;
        } null_idt = {0, 0};
        __asm__ volatile("cli; lidt %0; ud2" : : "m"(null_idt) : "memory");
        break;
    }
    }
    for (uint64_t n = 0; n < (1ull << 34); n++)
        cpu_relax();
    str_printf(reason, size, "the machine is still running after the %s", what[a->opt.power]);
    return PROBE_FAIL;
}
