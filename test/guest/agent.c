/*
 * agent: entry point of the guest test agent (see agent.h).  Parses the
 * command line, runs the probe table, prints the result line and shuts the
 * machine down.
 */
#include "agent.h"
#include "cpu.h"

/* Add new probes here; they run in this order. */
static const struct probe probes[] = {
    {"cpus", probe_cpus},
    {"memmap", probe_memmap},
    {"pci", probe_pci},
    {"mprounds", probe_mprounds},
    {"cpuidcost", probe_cpuid_cost},
    {"hvregion", probe_hvregion},
    {"nmi", probe_nmi},
    {"kvmi", probe_kvmi},
    {"hostile", probe_hostile},
    {"hostilehalt", probe_hostile_halt},
    {"dma", probe_dma},
    {"power", probe_power},
    {"pfstress", probe_pfstress},
    {"manypages", probe_manypages},
    {"evbench", probe_evbench},
    {"logport", probe_logport},
    {"entryfail", probe_entryfail},
    {"secret", probe_secret}, /* last: it ends boot services */
};

#define NPROBES (sizeof(probes) / sizeof(probes[0]))

/* Bochs's "unmapped" device powers off on this string written to 0x8900. */
#define BOCHS_SHUTDOWN_PORT 0x8900
/* QEMU's isa-debug-exit as the launcher configures it (iobase=0xf4). */
#define QEMU_DEBUG_EXIT_PORT 0xf4

static int parse_int(const char *s, int *out)
{
    int v = 0, any = 0;
    for (; *s >= '0' && *s <= '9'; s++, any = 1)
        v = v * 10 + (*s - '0');
    if (!any || *s)
        return -1;
    *out = v;
    return 0;
}

static int parse_hex(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int any = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    for (;; s++, any = 1) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (*s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            break;
        v = v << 4 | d;
    }
    if (!any || *s)
        return -1;
    *out = v;
    return 0;
}

static int key_is(const char *tok, const char *key, const char **val)
{
    while (*key && *tok == *key)
        tok++, key++;
    if (*key || *tok != '=')
        return 0;
    *val = tok + 1;
    return 1;
}

/*
 * The shell passes the whole command line, program name first, as UCS-2 in
 * LoadOptions.  Unknown or malformed options fail the run: a scenario that
 * misspells an expectation must not pass silently.
 */
static int parse_options(struct agent *a, char *reason, size_t size)
{
    EFI_GUID lip_guid = LOADED_IMAGE_PROTOCOL;
    EFI_LOADED_IMAGE *li = NULL;
    a->opt.expect_cpus = 0;
    a->opt.expect_vmx = -1;
    a->opt.expect_e1000 = -1;
    a->opt.shutdown = 1;
    a->opt.hv = -1;
    a->opt.mprounds = 0;
    a->opt.nmis = 0;
    a->opt.entryfail = 0;
    a->opt.kvmi = 0;
    a->opt.hostile = 0;
    a->opt.dma = 0;
    a->opt.power = 0;
    a->opt.pfstress = 0;
    a->opt.manypages = 0;
    a->opt.evbench = 0;
    a->opt.logport = 0;
    a->opt.secret[0] = '\0';
    if (a->st->BootServices->HandleProtocol(a->image, &lip_guid, (VOID **)&li) != EFI_SUCCESS ||
        !li || !li->LoadOptions)
        return 0;

    char line[256];
    const CHAR16 *w = li->LoadOptions;
    size_t n = 0, max = li->LoadOptionsSize / sizeof(CHAR16);
    for (size_t i = 0; i < max && w[i] && n + 1 < sizeof(line); i++)
        line[n++] = w[i] < 0x80 ? (char)w[i] : '?';
    line[n] = '\0';
    AGENT_LOG("command line: %s", line);

    char *p = line;
    int first = 1;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        char *tok = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p)
            *p++ = '\0';
        if (first) { /* the program's own name */
            first = 0;
            continue;
        }
        const char *val;
        int v;
        if (key_is(tok, "cpus", &val) && parse_int(val, &v) == 0 && v > 0)
            a->opt.expect_cpus = v;
        else if (key_is(tok, "vmx", &val) && parse_int(val, &v) == 0 && v <= 1)
            a->opt.expect_vmx = v;
        else if (key_is(tok, "e1000", &val) && parse_int(val, &v) == 0 && v <= 1)
            a->opt.expect_e1000 = v;
        else if (key_is(tok, "nicbar", &val) && parse_hex(val, &a->opt.nic_bar) == 0)
            ;
        else if (key_is(tok, "shutdown", &val) && parse_int(val, &v) == 0 && v <= 1)
            a->opt.shutdown = v;
        else if (key_is(tok, "hv", &val) && parse_int(val, &v) == 0 && v <= 1)
            a->opt.hv = v;
        else if (key_is(tok, "mprounds", &val) && parse_int(val, &v) == 0)
            a->opt.mprounds = v;
        else if (key_is(tok, "nmis", &val) && parse_int(val, &v) == 0)
            a->opt.nmis = v;
        else if (key_is(tok, "entryfail", &val) && parse_int(val, &v) == 0 && v <= 1)
            a->opt.entryfail = v;
        else if (key_is(tok, "kvmi", &val) && parse_int(val, &v) == 0 && v <= 2)
            a->opt.kvmi = v;
        else if (key_is(tok, "hostile", &val) && parse_int(val, &v) == 0 && v <= 2)
            a->opt.hostile = v;
        else if (key_is(tok, "dma", &val) && parse_int(val, &v) == 0 && v <= 2)
            a->opt.dma = v;
        else if (key_is(tok, "power", &val) && parse_int(val, &v) == 0 && v <= 9)
            a->opt.power = v;
        else if (key_is(tok, "pfstress", &val) && parse_int(val, &v) == 0)
            a->opt.pfstress = v;
        else if (key_is(tok, "manypages", &val) && parse_int(val, &v) == 0 && v <= 1)
            a->opt.manypages = v;
        else if (key_is(tok, "evbench", &val) && parse_int(val, &v) == 0)
            a->opt.evbench = v;
        else if (key_is(tok, "logport", &val) && parse_int(val, &v) == 0 && v <= 1)
            a->opt.logport = v;
        else if (key_is(tok, "secret", &val) && val[0]) {
            size_t k = 0;
            for (; val[k] && k + 1 < sizeof(a->opt.secret); k++)
                a->opt.secret[k] = val[k];
            a->opt.secret[k] = '\0';
        } else {
            str_printf(reason, size,
                       "bad option '%s' (cpus=N vmx=0|1 e1000=0|1 shutdown=0|1 "
                       "hv=0|1 mprounds=N nmis=N entryfail=0|1 kvmi=0|1|2 hostile=0|1|2 dma=0|1|2 "
                       "power=0..9 pfstress=N manypages=0|1 evbench=N logport=0|1 secret=YEK)",
                       tok);
            return -1;
        }
    }
    return 0;
}

/*
 * Power off by every means the test machines offer, in order: Bochs's port,
 * QEMU's isa-debug-exit (a plain port write elsewhere: nothing decodes 0xf4 on
 * a PC), then the UEFI way, which real hardware and KVM honour.
 */
static void shutdown(struct agent *a, int pass)
{
    static const char bochs[] = "Shutdown";
    ser_drain();
    for (const char *c = bochs; *c; c++)
        outb(BOCHS_SHUTDOWN_PORT, (unsigned char)*c);
    outl(QEMU_DEBUG_EXIT_PORT, pass ? 0 : 1);
    a->st->RuntimeServices->ResetSystem(EfiResetShutdown, pass ? EFI_SUCCESS : EFI_ABORTED, 0,
                                        NULL);
}

/* gnu-efi's crt0 calls this with the SysV ABI, whatever GNU_EFI_USE_MS_ABI says. */
volatile uint64_t *agent_low_pages(struct agent *a, unsigned npages)
{
    EFI_PHYSICAL_ADDRESS pa = 0xffffffffull; /* below 4 GiB */
    if (a->st->BootServices->AllocatePages(AllocateMaxAddress, EfiLoaderData, npages, &pa) !=
        EFI_SUCCESS)
        return NULL;
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)pa;
    for (uint64_t i = 0; i < npages * 512ull; i++)
        p[i] = 0;
    return p;
}

int agent_wait_word(volatile uint64_t *word, uint64_t want)
{
    for (uint64_t n = 0; n < (1ull << 34); n++) {
        if (*word == want)
            return 0;
        cpu_relax();
    }
    return -1;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
    struct agent a = {.image = image, .st = st};
    char reason[REASON_MAX] = "";
    char first_fail[REASON_MAX + 32] = "";
    unsigned passed = 0, failed = 0, skipped = 0;
    int bad_options = 0;

    ser_printf("\n");
    AGENT_LOG("start (%u probes)", (unsigned)NPROBES);
    if (parse_options(&a, reason, sizeof(reason)) != 0) {
        str_printf(first_fail, sizeof(first_fail), "options: %s", reason);
        failed++;
        bad_options = 1;
    }

    /* Every probe runs even after a failure: the log then shows them all. */
    for (size_t i = 0; i < NPROBES && !bad_options; i++) {
        reason[0] = '\0';
        AGENT_LOG("probe %s: start", probes[i].name);
        enum verdict v = probes[i].run(&a, reason, sizeof(reason));
        switch (v) {
        case PROBE_PASS:
            passed++;
            AGENT_LOG("probe %s: PASS", probes[i].name);
            break;
        case PROBE_SKIP:
            skipped++;
            AGENT_LOG("probe %s: SKIP %s", probes[i].name, reason);
            break;
        default:
            if (!failed)
                str_printf(first_fail, sizeof(first_fail), "%s: %s", probes[i].name, reason);
            failed++;
            AGENT_LOG("probe %s: FAIL %s", probes[i].name, reason);
        }
    }

    AGENT_LOG("done: %u passed, %u failed, %u skipped", passed, failed, skipped);
    if (failed)
        ser_printf("HVTEST-RESULT: FAIL %s\n", first_fail);
    else
        ser_printf("HVTEST-RESULT: PASS\n");
    if (a.opt.shutdown)
        shutdown(&a, !failed);
    return failed ? EFI_ABORTED : EFI_SUCCESS;
}
