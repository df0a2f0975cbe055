/*
 * probe_manypages: one instruction that reads more restricted pages than a
 * vCPU's EPT view holds (test/emu/views_scenarios.py, docs/kvmi-hv.md "Page
 * steps"), with manypages=1:
 *   1. a mailbox page and MP_PAGES data pages are announced on COM1, each data
 *      page holding its own number at its own offset; the probe waits for
 *      MP_GO in the mailbox (the introspector has removed every right from the
 *      data pages by then);
 *   2. one AVX2 gather (VPGATHERDD) loads a dword from each data page;
 *   3. the gathered values must be the pages' own.
 * The introspector answers every PF event CONTINUE and asserts that each page
 * raised exactly one event.
 */
#include "agent.h"
#include "cpu.h"

#define MP_GO        0x4f472d5347415045ull /* "EPAGS-GO" */
#define MP_PAGES     8u
#define CR4_OSXSAVE  (1ull << 18)
#define XCR0_X87_AVX 7ull /* x87, SSE, AVX state */

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* AVX2 usable: CPUID says so, then CR4.OSXSAVE and XCR0's AVX state are turned on. */
static int avx2_on(void)
{
    struct cpuid_regs l1 = cpuid(1, 0), l7 = cpuid(7, 0);
    if (!(l1.ecx & (1u << 26)) || !(l1.ecx & (1u << 28)) || !(l7.ebx & (1u << 5)))
        return -1; /* XSAVE, AVX, AVX2 */
    uint64_t cr4 = read_cr4();
    if (!(cr4 & CR4_OSXSAVE))
        __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | CR4_OSXSAVE));
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & XCR0_X87_AVX) != XCR0_X87_AVX) {
        xcr0 |= XCR0_X87_AVX;
        __asm__ volatile("xsetbv" : : "a"((uint32_t)xcr0), "d"((uint32_t)(xcr0 >> 32)), "c"(0));
    }
    return (xgetbv0() & XCR0_X87_AVX) == XCR0_X87_AVX ? 0 : -1;
}

enum verdict probe_manypages(struct agent *a, char *reason, size_t size)
{
    if (!a->opt.manypages) {
        str_printf(reason, size, "no manypages=1");
        return PROBE_SKIP;
    }
    if (avx2_on()) {
        str_printf(reason, size, "needs AVX2 (the gather touches one page per element)");
        return PROBE_FAIL;
    }
    volatile uint64_t *mbox = agent_low_pages(a, 1 + MP_PAGES);
    if (!mbox) {
        str_printf(reason, size, "no pages below 4 GiB");
        return PROBE_FAIL;
    }
    uint8_t *data = (uint8_t *)(uintptr_t)(mbox + 512);
    uint32_t idx[MP_PAGES], out[MP_PAGES];
    for (uint32_t k = 0; k < MP_PAGES; k++) {
        idx[k] = k * 4096u + 8u * k;
        *(volatile uint32_t *)(data + idx[k]) = 0x5000u + k;
        out[k] = 0;
    }
    AGENT_LOG("manypages: mailbox 0x%lx data 0x%lx pages %u", (UINT64)(uintptr_t)mbox,
              (UINT64)(uintptr_t)data, MP_PAGES);
    if (agent_wait_word(&mbox[0], MP_GO)) {
        str_printf(reason, size, "the introspector never said go");
        return PROBE_FAIL;
    }
    /* One instruction, MP_PAGES pages: mask all ones, so every element is loaded. */
    __asm__ volatile("vmovdqu (%0), %%ymm1\n\t"
                     "vpcmpeqd %%ymm2, %%ymm2, %%ymm2\n\t"
                     "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
                     "vpgatherdd %%ymm2, (%1, %%ymm1, 1), %%ymm0\n\t"
                     "vmovdqu %%ymm0, (%2)\n\t"
                     "vzeroupper"
                     :
                     : "r"(idx), "r"(data), "r"(out)
                     : "memory");
    unsigned right = 0;
    for (uint32_t k = 0; k < MP_PAGES; k++)
        right += out[k] == 0x5000u + k;
    AGENT_LOG("manypages: gather done: %u of %u elements right", right, MP_PAGES);
    if (agent_wait_word(&mbox[1], MP_GO)) {
        str_printf(reason, size, "the introspector never said it counted");
        return PROBE_FAIL;
    }
    if (right != MP_PAGES) {
        str_printf(reason, size, "%u of %u gathered values right", right, MP_PAGES);
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}
