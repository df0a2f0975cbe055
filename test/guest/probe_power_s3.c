/*
 * probe_power_s3: power=8, S3 with on_sleep = resume while a hostile AP
 * tries to take the wake for itself (test/emu/power_scenarios.py,
 * bochs-power-s3-race).  The OS's waking vector must run after the wake,
 * and run under the hypervisor: an AP that keeps writing its own vector
 * into the FACS must not get the firmware to jump anywhere but the
 * hypervisor's trampoline.
 *
 * Two real-mode stubs below 1 MiB, the "good" one (the vector the BSP
 * writes, as an OS does) and the "rogue" one (the AP's): each prints its
 * name on COM1, waits for the host's go word in its own page (the host
 * attaches again after the wake first), then powers off through PM1a_CNT
 * with \_S5's type.  The AP is started in a loop that writes the rogue
 * vector into Firmware_Waking_Vector (and zeroes X_Firmware_Waking_Vector)
 * for good; the BSP writes the good vector and asks for S3.  Which of the
 * guest's two vectors the wake runs is the guest's own race; the
 * hypervisor's side (its vector in the FACS at the power loss, every CPU in
 * VMX before the stub runs) is asserted on its log.
 */
#include "agent.h"
#include "cpu.h"
#include "mp.h"

#define STUB_GO  0x4f472d454b41572dull /* "-WAKE-GO" (its low dword is compared) */
#define GO_OFF   0xf00                 /* the go word's offset in a stub's page, after the code */
#define SLP_EN   (1u << 13)
#define FACS_VEC 12
#define FACS_X   24

struct s3_race {
    volatile uint32_t *vec;
    volatile uint64_t *x;
    uint32_t rogue;
    volatile uint64_t stage;
};

static VOID EFIAPI ap_rogue(VOID *arg)
{
    struct s3_race *r = arg;
    r->stage = 1;
    for (;;) {
        *r->vec = r->rogue;
        *r->x = 0;
    }
}

/* Real-mode code: print msg on COM1 (each byte once the transmitter is
 * empty, LSR bit 5), wait for STUB_GO at cs:GO_OFF, then S5 through PM1a_CNT
 * (port cnt) with SLP_TYP typ5. */
static void write_stub(volatile uint8_t *p, const char *msg, uint16_t cnt, unsigned typ5)
{
    unsigned k = 0;
    for (const char *c = msg; *c; c++) {
        const uint8_t put[] = {
            0xba, 0xfd,        0x03, /* mov dx, 0x3fd (LSR) */
            0xec,                    /* in al, dx */
            0xa8, 0x20,              /* test al, 0x20 (THRE) */
            0x74, 0xfb,              /* jz in */
            0xba, 0xf8,        0x03, /* mov dx, 0x3f8 */
            0xb0, (uint8_t)*c,       /* mov al, c */
            0xee,                    /* out dx, al */
        };
        for (unsigned i = 0; i < sizeof(put); i++)
            p[k++] = put[i];
    }
    unsigned wait = k;
    const uint8_t cmp[] = {0x2e, 0x66,          0x81,
                           0x3e, GO_OFF & 0xff, GO_OFF >> 8}; /* cmp dword cs:[GO_OFF], imm32 */
    for (unsigned i = 0; i < sizeof(cmp); i++)
        p[k++] = cmp[i];
    for (unsigned i = 0; i < 4; i++)
        p[k++] = (uint8_t)(STUB_GO >> (8 * i));
    p[k++] = 0x75; /* jne wait */
    p[k] = (uint8_t)(wait - (k + 1));
    k++;
    uint16_t val = (uint16_t)((typ5 << 10) | SLP_EN);
    p[k++] = 0xba; /* mov dx, cnt */
    p[k++] = (uint8_t)cnt;
    p[k++] = (uint8_t)(cnt >> 8);
    p[k++] = 0xb8; /* mov ax, val */
    p[k++] = (uint8_t)val;
    p[k++] = (uint8_t)(val >> 8);
    p[k++] = 0xef; /* out dx, ax */
    p[k++] = 0xf4; /* hlt */
    p[k++] = 0xeb; /* jmp hlt */
    p[k++] = 0xfd;
}

static volatile uint8_t *page_below_1m(struct agent *a)
{
    EFI_PHYSICAL_ADDRESS pa = 0x9ffff;
    if (a->st->BootServices->AllocatePages(AllocateMaxAddress, EfiLoaderCode, 1, &pa) !=
        EFI_SUCCESS)
        return NULL;
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)pa;
    for (unsigned i = 0; i < 4096; i++)
        p[i] = 0;
    return p;
}

static struct s3_race race;

enum verdict power_s3_race(struct agent *a, volatile uint64_t *mb, char *reason, size_t size)
{
    uint16_t cnt = (uint16_t)mb[1];
    unsigned typ5 = (unsigned)(mb[1] >> 32) & 7;
    uint64_t facs = mb[3] & 0xffffffffull;
    unsigned typ3 = (unsigned)(mb[3] >> 40) & 7;
    if (!facs) {
        str_printf(reason, size, "no FACS address from the host");
        return PROBE_FAIL;
    }
    volatile uint8_t *good = page_below_1m(a), *rogue = page_below_1m(a);
    if (!good || !rogue) {
        str_printf(reason, size, "no pages below 1 MiB for the waking vectors");
        return PROBE_FAIL;
    }
    write_stub(good, "AGENT-WAKE: the OS's waking vector runs\n", cnt, typ5);
    write_stub(rogue, "AGENT-WAKE: the rogue AP's vector runs\n", cnt, typ5);
    EFI_GUID guid = AGENT_MP_SERVICES_GUID;
    struct mp_services *mp = NULL;
    UINTN count = 0, enabled = 0, bsp = 0;
    if (a->st->BootServices->LocateProtocol(&guid, NULL, (VOID **)&mp) != EFI_SUCCESS || !mp ||
        mp->get_number_of_processors(mp, &count, &enabled) != EFI_SUCCESS || enabled < 2) {
        str_printf(reason, size, "needs MP services and 2 CPUs");
        return PROBE_FAIL;
    }
    mp->who_am_i(mp, &bsp);
    UINTN ap = bsp == 0 ? 1 : 0;
    race.vec = (volatile uint32_t *)(uintptr_t)(facs + FACS_VEC);
    race.x = (volatile uint64_t *)(uintptr_t)(facs + FACS_X);
    race.rogue = (uint32_t)(uintptr_t)rogue;
    race.stage = 0;
    EFI_EVENT ev = NULL;
    if (a->st->BootServices->CreateEvent(0, 0, NULL, NULL, &ev) != EFI_SUCCESS ||
        mp->startup_this_ap(mp, ap_rogue, ap, ev, 0, &race, NULL) != EFI_SUCCESS) {
        str_printf(reason, size, "could not start AP %lu", (UINT64)ap);
        return PROBE_FAIL;
    }
    if (agent_wait_word(&race.stage, 1)) {
        str_printf(reason, size, "AP %lu never ran", (UINT64)ap);
        return PROBE_FAIL;
    }
    AGENT_LOG("power: S3 race: good vector 0x%lx, rogue vector 0x%lx, FACS 0x%lx; AP %lu "
              "rewrites the FACS in a loop",
              (UINT64)(uintptr_t)good, (UINT64)(uintptr_t)rogue, facs, (UINT64)ap);
    *race.vec = (uint32_t)(uintptr_t)good;
    *race.x = 0;
    ser_printf("HVTEST-RESULT: PASS the agent asked for S3 with a rogue AP\n");
    __asm__ volatile("wbinvd" ::: "memory");
    __asm__ volatile("outw %0, %1" : : "a"((uint16_t)((typ3 << 10) | SLP_EN)), "Nd"(cnt));
    for (uint64_t n = 0; n < (1ull << 34); n++)
        cpu_relax();
    str_printf(reason, size, "still running after the S3 request");
    return PROBE_FAIL;
}
