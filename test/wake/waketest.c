/*
 * waketest.c - waketest.efi, a real S3 round trip through the wake
 * trampoline (core/wake.c, core/wake_blob.S) under QEMU with OVMF, run by
 * test/wake/wake_run.py (docs/wake.md).
 *
 * Before the sleep (UEFI, identity-mapped): finds the FADT, the FACS and
 * \_S3/\_S5, installs the trampoline in a page below 1 MiB with this CPU's
 * own CR0/CR3/CR4/EFER and two stacks, writes the page into the FACS
 * Firmware_Waking_Vector and enters S3 through PM1a_CNT.  After the resume,
 * the firmware jumps to the page in real mode; the BSP arrives in
 * wake_entry with slot 0, wakes the AP with INIT-SIPI-SIPI (slot 1), wakes
 * it once more to see a CPU beyond ncpus halt in the trampoline, and powers
 * off through \_S5.  Every CPU reports on COM1 what it found; the harness
 * judges the lines.  Nothing after the resume calls the firmware.
 */
#include <efi.h>
#include <efilib.h>

#include "acpi_power.h"
#include "vtd/acpi_find.h"
#include "wake.h"
#include "test/guest/cpu.h" /* inb/outb, inw/outw, rdmsr */

#define COM1           0x3f8
#define STACK_BYTES    (4 * 4096u)
#define NCPUS          2u
#define CR0_PG         (1ull << 31)
#define EFER_LMA       (1ull << 10)
#define MSR_EFER       0xc0000080u
#define MSR_APIC_BASE  0x1bu
#define APIC_EXTD      (1ull << 10)
#define ICR_LO         0x300u
#define ICR_HI         0x310u
#define MSR_X2APIC_ICR 0x830u
#define ICR_BUSY       (1u << 12)
#define ICR_OTHERS     (3u << 18) /* destination shorthand: all excluding self */
#define ICR_INIT       (0x5u << 8 | 1u << 14)
#define ICR_SIPI       (0x6u << 8 | 1u << 14)
#define SLP_EN         (1u << 13)
#define FADT_FACS      36  /* FIRMWARE_CTRL (ACPI 6.5 Table 5.9) */
#define FADT_X_FACS    132 /* X_FIRMWARE_CTRL */
#define FACS_VECTOR    12  /* Firmware_Waking_Vector (ACPI 6.5 Table 5.14) */
#define FACS_X_VECTOR  24  /* X_Firmware_Waking_Vector */
#define WAIT_SPINS     2000000000ull

static EFI_GUID acpi20_guid = {
    0x8868e871, 0xe4f1, 0x11d3, {0xbc, 0x22, 0x00, 0x80, 0xc7, 0x3c, 0x88, 0x81}};

/* What wake_entry compares against, kept in the image (RAM survives S3). */
static struct {
    uint64_t page, cr3, stack_top[NCPUS];
    struct acpi_power pw;
    volatile uint32_t reported; /* CPUs that printed their line */
} g;

static inline void wrmsr(uint32_t m, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(m), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
#define READ_CR(n)                                                                                 \
    ({                                                                                             \
        uint64_t v_;                                                                               \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v_));                                         \
        v_;                                                                                        \
    })

/* COM1 directly: the firmware's console is gone after the resume. */
static void put(const char *s)
{
    for (; *s; s++) {
        for (unsigned i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
            ;
        outb(COM1, (uint8_t)*s);
    }
}
static void hex(uint64_t v)
{
    char b[19] = "0x";
    int n = 2, started = 0;
    for (int i = 60; i >= 0; i -= 4) {
        unsigned d = (v >> i) & 15;
        if (d || started || i == 0) {
            b[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
            started = 1;
        }
    }
    b[n] = 0;
    put(b);
}
static void dec(uint64_t v)
{
    char b[21];
    int n = 20;
    b[n] = 0;
    do
        b[--n] = (char)('0' + v % 10);
    while (v /= 10);
    put(b + n);
}

static __attribute__((noreturn)) void halt(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* ACPI S5: SLP_TYP(\_S5) | SLP_EN, QEMU's power-off. */
static __attribute__((noreturn)) void power_off(void)
{
    uint16_t v = inw(g.pw.pm1a_cnt);
    v = (uint16_t)((v & ~(7u << 10)) | (unsigned)g.pw.slp_typa[5] << 10 | SLP_EN);
    outw(g.pw.pm1a_cnt, v);
    halt();
}

static void apic_icr(uint32_t lo)
{
    uint64_t base = rdmsr(MSR_APIC_BASE);
    if (base & APIC_EXTD) {
        wrmsr(MSR_X2APIC_ICR, lo);
        return;
    }
    volatile uint32_t *apic = (volatile uint32_t *)(uintptr_t)(base & ~0xfffull);
    apic[ICR_HI / 4] = 0;
    apic[ICR_LO / 4] = lo;
    for (unsigned i = 0; i < 1000000 && (apic[ICR_LO / 4] & ICR_BUSY); i++)
        __asm__ volatile("pause");
}

/* SDM Vol. 3A 9.4.4 MP Initialization Example: INIT, then two SIPIs. */
static void start_others(void)
{
    apic_icr(ICR_OTHERS | ICR_INIT);
    apic_icr(ICR_OTHERS | ICR_SIPI | (uint32_t)(g.page >> 12));
    apic_icr(ICR_OTHERS | ICR_SIPI | (uint32_t)(g.page >> 12));
}

static int wait_for(volatile uint32_t *v, uint32_t want)
{
    for (uint64_t i = 0; i < WAIT_SPINS; i++) {
        if (*v == want)
            return 1;
        __asm__ volatile("pause" ::: "memory");
    }
    return 0;
}

/* The trampoline's target on every CPU (SysV: the slot in EDI). */
static __attribute__((sysv_abi, noreturn, used)) void wake_entry(uint32_t slot)
{
    uint64_t cr0 = READ_CR(0), cr3 = READ_CR(3), efer = rdmsr(MSR_EFER), rsp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(rsp));
    uint64_t top = slot < NCPUS ? g.stack_top[slot] : 0;
    int ok = (cr0 & CR0_PG) && (efer & EFER_LMA) && cr3 == g.cr3 && slot < NCPUS && rsp < top &&
             rsp >= top - STACK_BYTES;
    put("WAKE: slot ");
    dec(slot);
    put(": CR0.PG ");
    dec(!!(cr0 & CR0_PG));
    put(" EFER.LMA ");
    dec(!!(efer & EFER_LMA));
    put(" CR3 ");
    hex(cr3);
    put(cr3 == g.cr3 ? " (installed)" : " (NOT the installed one)");
    put(" RSP ");
    hex(rsp);
    put(top && rsp < top && rsp >= top - STACK_BYTES ? " (in its stack)" : " (NOT in its stack)");
    put(" BSP flag ");
    dec(!!(rdmsr(MSR_APIC_BASE) & (1ull << 8))); /* IA32_APIC_BASE.BSP */
    put(ok ? " ok\r\n" : " BAD\r\n");
    __atomic_add_fetch(&g.reported, 1, __ATOMIC_SEQ_CST);
    if (slot != 0)
        halt();

    struct wake_params *w = wake_params_of((void *)(uintptr_t)g.page);
    start_others();
    if (!wait_for(&g.reported, 2)) {
        put("WAKE: the AP never reached the entry (next_slot ");
        dec(w->next_slot);
        put(")\r\n");
        power_off();
    }
    /* A third arrival finds no slot left and halts inside the trampoline. */
    start_others();
    int halted = wait_for(&w->next_slot, 3);
    put("WAKE: extra arrival: next_slot ");
    dec(w->next_slot);
    put(halted && g.reported == 2 ? ", no entry call: halted ok\r\n" : ", BAD\r\n");
    put("WAKE: powering off\r\n");
    power_off();
}

static const uint8_t *identity(void *ctx, uint64_t phys, uint64_t len)
{
    (void)ctx, (void)len;
    return phys ? (const uint8_t *)(uintptr_t)phys : 0;
}

static EFI_STATUS fail(const char *why)
{
    put("WAKE: error: ");
    put(why);
    put("\r\n");
    return EFI_ABORTED;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The FADT's power interface and its FACS (X_FIRMWARE_CTRL first). */
static const char *find_acpi(uint64_t *facs)
{
    void *rsdp = NULL;
    if (LibGetSystemConfigurationTable(&acpi20_guid, &rsdp) != EFI_SUCCESS || !rsdp)
        return "no ACPI 2.0 RSDP";
    struct acpi_found f;
    const char *why = acpi_find(identity, 0, (uint64_t)(uintptr_t)rsdp, "FACP", &f);
    if (why)
        return why;
    const uint8_t *dsdt = (const uint8_t *)(uintptr_t)acpi_fadt_dsdt(f.data, f.len);
    if (!dsdt || le(dsdt + 4, 4) < ACPI_HDR_LEN || le(dsdt + 4, 4) > ACPI_MAX_TABLE)
        return "no DSDT";
    why = acpi_power_parse(f.data, f.len, dsdt, le(dsdt + 4, 4), &g.pw);
    if (why)
        return why;
    if (!g.pw.pm1a_cnt || !(g.pw.sx_valid & (1u << 3)) || !(g.pw.sx_valid & (1u << 5)))
        return "no PM1a_CNT, \\_S3 or \\_S5 (q35: -global ICH9-LPC.disable_s3=0)";
    *facs = f.len >= FADT_X_FACS + 8 ? le(f.data + FADT_X_FACS, 8) : 0;
    if (!*facs)
        *facs = le(f.data + FADT_FACS, 4);
    const uint8_t *s = (const uint8_t *)(uintptr_t)*facs;
    if (!*facs || s[0] != 'F' || s[1] != 'A' || s[2] != 'C' || s[3] != 'S' || le(s + 4, 4) < 32)
        return "no FACS";
    return NULL;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
    InitializeLib(image, st);
    uint64_t facs;
    const char *why = find_acpi(&facs);
    if (why)
        return fail(why);

    /* Loader code: executable under any NX policy a firmware applies to
     * its page tables, and the 64-bit part of the page runs on them. */
    EFI_PHYSICAL_ADDRESS page = 0xfffff, stacks = 0;
    if (st->BootServices->AllocatePages(AllocateMaxAddress, EfiLoaderCode, 1, &page) != EFI_SUCCESS)
        return fail("no page below 1 MiB");
    if (st->BootServices->AllocatePages(AllocateAnyPages, EfiLoaderData, NCPUS * STACK_BYTES / 4096,
                                        &stacks) != EFI_SUCCESS)
        return fail("no stacks");

    struct wake_params p = {0};
    p.cr0 = READ_CR(0);
    p.cr3 = READ_CR(3);
    p.cr4 = READ_CR(4);
    p.efer = rdmsr(MSR_EFER);
    p.entry = (uint64_t)(uintptr_t)wake_entry;
    p.ncpus = NCPUS;
    for (unsigned i = 0; i < NCPUS; i++)
        p.stack_top[i] = g.stack_top[i] = stacks + (i + 1) * STACK_BYTES;
    g.page = page;
    g.cr3 = p.cr3;
    why = wake_install((void *)(uintptr_t)page, page, &p);
    if (why)
        return fail(why);

    volatile uint8_t *f = (volatile uint8_t *)(uintptr_t)facs;
    put("WAKE: sleeping: page ");
    hex(page);
    put(" CR3 ");
    hex(p.cr3);
    put(" FACS ");
    hex(facs);
    put(" (waking vector was ");
    hex(le((const uint8_t *)f + FACS_VECTOR, 4));
    put(") PM1a_CNT ");
    hex(g.pw.pm1a_cnt);
    put(" SLP_TYP(S3) ");
    dec(g.pw.slp_typa[3]);
    put("\r\n");

    __asm__ volatile("cli" ::: "memory");
    *(volatile uint32_t *)(f + FACS_VECTOR) = (uint32_t)page;
    *(volatile uint64_t *)(f + FACS_X_VECTOR) = 0;
    /* The OSPM's part of entering a sleep state: caches written back first. */
    __asm__ volatile("wbinvd" ::: "memory");
    uint16_t v = inw(g.pw.pm1a_cnt);
    outw(g.pw.pm1a_cnt, (uint16_t)((v & ~(7u << 10)) | (unsigned)g.pw.slp_typa[3] << 10 | SLP_EN));
    /* Never past here: the resume enters the page, not this code. */
    for (uint64_t i = 0; i < WAIT_SPINS; i++)
        __asm__ volatile("pause");
    put("WAKE: error: still running after SLP_EN\r\n");
    halt();
}
