/*
 * probe_vmx: what the VMX core promises the guest (issue 3), seen from inside.
 *   mprounds  mprounds=N rounds of a sample on every CPU through MP services
 *             (each round is an INIT-SIPI-SIPI from OVMF, i.e. the
 *             hypervisor's software INIT/SIPI path): every CPU must report
 *             CPUID.1:ECX.VMX = 0 and CR4 without VMXE when vmx=0 is asked;
 *   cpuidcost the CPUID round trip in TSC ticks (min and average of 256), next
 *             to the floor of two back-to-back RDTSCs; a scenario compares
 *             the figure with and without hv.efi;
 *   hvregion  (hv=1) the hypervisor region reads as zeros (its marker bytes are
 *             found nowhere in reserved memory), writes there do not land (the
 *             hypervisor checks its markers on a debug hypercall);
 *   nmi       nmis=N NMI self-IPIs on every AP, each delivered exactly once,
 *             while (hv=1) the BSP has the hypervisor kick every other vCPU in
 *             a loop and every kick must be acknowledged.
 */
#include "agent.h"
#include "cpu.h"
#include "mp.h"

#define MAX_CPUS 256

/* vmx/vmx.h: the debug hypercall. */
#define HV_HYPERCALL_MAGIC    0x4856444247ull
#define HV_HC_CHECK_REGION    2
#define HV_HC_KICK_LOOP       3
#define HV_HC_REGION_INFO     4
#define HV_HC_STATS           1
#define HV_HC_TEST_ENTRY_FAIL 5

static inline uint64_t hypercall(uint64_t fn, uint64_t arg, uint64_t *rcx_out)
{
    uint64_t a = HV_HYPERCALL_MAGIC, b = fn, c = arg;
    __asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c) : : "rdx", "memory");
    if (rcx_out)
        *rcx_out = c;
    return a;
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static struct mp_services *get_mp(struct agent *a)
{
    EFI_GUID guid = AGENT_MP_SERVICES_GUID;
    struct mp_services *mp = NULL;
    if (a->st->BootServices->LocateProtocol(&guid, NULL, (VOID **)&mp) != EFI_SUCCESS)
        return NULL;
    return mp;
}

/* ---- mprounds ------------------------------------------------------------ */

struct sample {
    volatile UINT32 done;
    UINT32 vmx;
    UINT64 cr4;
    UINT64 feature_control; /* IA32_FEATURE_CONTROL, read only under the hypervisor (hv=1) */
};
static int read_feature_control;
static struct sample samples[MAX_CPUS];

static void take_sample(struct sample *s)
{
    s->vmx = (cpuid(1, 0).ecx & CPUID1_ECX_VMX) != 0;
    s->cr4 = read_cr4();
    s->feature_control = read_feature_control ? rdmsr(0x3a) : 0;
    __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
}

static VOID EFIAPI ap_sample(VOID *arg)
{
    struct mp_services *mp = arg;
    UINTN me = 0;
    if (mp->who_am_i(mp, &me) == EFI_SUCCESS && me < MAX_CPUS)
        take_sample(&samples[me]);
}

enum verdict probe_mprounds(struct agent *a, char *reason, size_t size)
{
    if (a->opt.mprounds <= 0) {
        str_printf(reason, size, "no mprounds=N");
        return PROBE_SKIP;
    }
    struct mp_services *mp = get_mp(a);
    UINTN count = 0, enabled = 0, bsp = 0;
    if (!mp || mp->get_number_of_processors(mp, &count, &enabled) != EFI_SUCCESS ||
        count > MAX_CPUS) {
        str_printf(reason, size, "no usable MP services");
        return PROBE_FAIL;
    }
    mp->who_am_i(mp, &bsp);
    read_feature_control = a->opt.hv == 1;
    for (int round = 1; round <= a->opt.mprounds; round++) {
        for (UINTN i = 0; i < count; i++)
            samples[i].done = 0;
        take_sample(&samples[bsp]);
        if (enabled > 1) {
            EFI_STATUS st = mp->startup_all_aps(mp, ap_sample, FALSE, NULL, 0, mp, NULL);
            if (st != EFI_SUCCESS) {
                str_printf(reason, size, "round %d: StartupAllAPs status 0x%lx", round, (UINT64)st);
                return PROBE_FAIL;
            }
        }
        UINTN ran = 0, vmx = 0, vmxe = 0, fc_bad = 0;
        for (UINTN i = 0; i < count; i++) {
            if (!__atomic_load_n(&samples[i].done, __ATOMIC_ACQUIRE))
                continue;
            ran++;
            vmx += samples[i].vmx;
            vmxe += (samples[i].cr4 & CR4_VMXE) != 0;
            /* locked (bit 0) with both VMX enables (bits 1, 2) clear, as with VMX off */
            fc_bad += read_feature_control && (samples[i].feature_control & 7) != 1;
        }
        AGENT_LOG("mp round %d: %lu of %lu CPUs ran, %lu with VMX, %lu with CR4.VMXE", round,
                  (UINT64)ran, (UINT64)enabled, (UINT64)vmx, (UINT64)vmxe);
        if (ran != enabled) {
            str_printf(reason, size, "round %d: %lu of %lu CPUs ran", round, (UINT64)ran,
                       (UINT64)enabled);
            return PROBE_FAIL;
        }
        if (read_feature_control)
            AGENT_LOG("mp round %d: IA32_FEATURE_CONTROL not 'locked, VMX off' on %lu CPU(s)",
                      round, (UINT64)fc_bad);
        if (a->opt.expect_vmx == 0 && (vmx || vmxe || fc_bad)) {
            str_printf(reason, size,
                       "round %d: %lu CPU(s) show VMX, %lu CR4.VMXE, %lu VMX in "
                       "IA32_FEATURE_CONTROL",
                       round, (UINT64)vmx, (UINT64)vmxe, (UINT64)fc_bad);
            return PROBE_FAIL;
        }
    }
    return PROBE_PASS;
}

/* ---- cpuidcost ----------------------------------------------------------- */

enum verdict probe_cpuid_cost(struct agent *a, char *reason, size_t size)
{
    (void)a;
    (void)reason;
    (void)size;
    const int n = 256;
    uint64_t min = ~0ull, sum = 0, fmin = ~0ull, fsum = 0;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = rdtsc();
        uint64_t t1 = rdtsc();
        uint64_t d = t1 - t0;
        fsum += d;
        if (d < fmin)
            fmin = d;
    }
    for (int i = 0; i < n; i++) {
        uint64_t t0 = rdtsc();
        (void)cpuid(0, 0);
        uint64_t d = rdtsc() - t0;
        sum += d;
        if (d < min)
            min = d;
    }
    AGENT_LOG("cpuid round trip: avg %lu min %lu ticks; rdtsc floor avg %lu min %lu (n=%d)",
              sum / n, min, fsum / n, fmin, n);
    struct cpuid_regs l1 = cpuid(1, 0), hv = cpuid(0x40000000u, 0);
    AGENT_LOG("cpuid hypervisor bit %u, leaf 0x40000000: eax 0x%x ebx 0x%x ecx 0x%x edx 0x%x",
              l1.ecx >> 31, hv.eax, hv.ebx, hv.ecx, hv.edx);
    return PROBE_PASS;
}

/* ---- hvregion ------------------------------------------------------------ */

static EFI_MEMORY_DESCRIPTOR *memory_map(struct agent *a, UINTN *entries, UINTN *dsize)
{
    EFI_BOOT_SERVICES *bs = a->st->BootServices;
    UINTN size = 0, key = 0;
    UINT32 ver = 0;
    EFI_MEMORY_DESCRIPTOR *map = NULL;
    bs->GetMemoryMap(&size, NULL, &key, dsize, &ver);
    for (int tries = 0; tries < 4; tries++) {
        size += 8 * *dsize;
        if (bs->AllocatePool(EfiLoaderData, size, (VOID **)&map) != EFI_SUCCESS)
            return NULL;
        if (bs->GetMemoryMap(&size, map, &key, dsize, &ver) == EFI_SUCCESS) {
            *entries = size / *dsize;
            return map;
        }
        bs->FreePool(map);
        map = NULL;
    }
    return NULL;
}

static const char marker[] = "HV-REGION-MARKER-5d1c9e27-hidden";

enum verdict probe_hvregion(struct agent *a, char *reason, size_t size)
{
    if (a->opt.hv != 1) {
        str_printf(reason, size, "needs hv=1 (debug hypercalls)");
        return PROBE_SKIP;
    }
    uint64_t len = 0;
    uint64_t where = hypercall(HV_HC_REGION_INFO, 0, &len);
    UINTN entries = 0, dsize = 0;
    EFI_MEMORY_DESCRIPTOR *map = memory_map(a, &entries, &dsize);
    if (!map) {
        str_printf(reason, size, "no memory map");
        return PROBE_FAIL;
    }
    uint64_t first;
    for (int i = 0; i < 8; i++)
        ((char *)&first)[i] = marker[i];
    uint64_t scanned = 0, found = 0, nonzero = 0, covered = 0;
    for (UINTN i = 0; i < entries; i++) {
        EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)((UINT8 *)map + i * dsize);
        if (d->Type != EfiReservedMemoryType)
            continue;
        uint64_t base = d->PhysicalStart, end = base + d->NumberOfPages * 4096;
        if (where >= base && where < end)
            covered = 1;
        for (uint64_t p = base; p < end; p += 8) {
            uint64_t v = *(volatile uint64_t *)p;
            if (v == first)
                found++;
            if (where >= base && where < end && v)
                nonzero++;
        }
        scanned += end - base;
    }
    a->st->BootServices->FreePool(map);
    AGENT_LOG("hvregion: marker page at 0x%lx (%lu bytes), %lu MiB of reserved memory read, "
              "marker found %lu time(s), %lu non-zero qword(s) in the region",
              where, len, scanned >> 20, found, nonzero);

    /* Writes into the region: bytes, dwords, qwords over the marker page and the
     * region's first page; each must be dropped by the hypervisor. */
    volatile uint8_t *m = (volatile uint8_t *)where;
    for (uint64_t i = 0; i < len; i++)
        m[i] = 0xa5;
    *(volatile uint32_t *)(where + 64) = 0xdeadbeef;
    *(volatile uint64_t *)(where + 128) = 0x0123456789abcdefull;
    uint64_t after = 0;
    for (uint64_t i = 0; i < 256; i++)
        after |= m[i];
    uint64_t check = hypercall(HV_HC_CHECK_REGION, 0, NULL);
    AGENT_LOG("hvregion: after writes the page reads %s, hypervisor markers %s (check %lu)",
              after ? "NON-ZERO" : "zero", check ? "DAMAGED" : "intact", check);
    if (!covered) {
        str_printf(reason, size, "marker address 0x%lx is not in a reserved range", where);
        return PROBE_FAIL;
    }
    if (found || nonzero || after || check) {
        str_printf(reason, size, "region visible: found %lu, nonzero %lu, after %lu, check %lu",
                   found, nonzero, after, check);
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}

/* ---- nmi ----------------------------------------------------------------- */

volatile uint64_t agent_nmi_counts[MAX_CPUS];

/* The guest's NMI handler: count per initial APIC ID, nothing else. */
__asm__(".text\n"
        ".globl agent_nmi_stub\n"
        "agent_nmi_stub:\n\t"
        "pushq %rax\n\tpushq %rbx\n\tpushq %rcx\n\tpushq %rdx\n\t"
        "movl $1, %eax\n\tcpuid\n\tshrl $24, %ebx\n\tandl $0xff, %ebx\n\t"
        "leaq agent_nmi_counts(%rip), %rax\n\t"
        "lock incq (%rax,%rbx,8)\n\t"
        "popq %rdx\n\tpopq %rcx\n\tpopq %rbx\n\tpopq %rax\n\t"
        "iretq\n");
extern char agent_nmi_stub[];

struct __attribute__((packed)) idtr {
    uint16_t limit;
    uint64_t base;
};

struct nmi_run {
    int per_cpu;
    volatile uint32_t done, failed;
    volatile uint64_t timeouts;
};
static struct nmi_run nmi_run;

static void send_self_nmi(uint32_t apic_id)
{
    uint64_t base = rdmsr(0x1b);
    if (base & (1ull << 10)) { /* x2APIC */
        wrmsr(0x830, ((uint64_t)apic_id << 32) | 0x4400);
        return;
    }
    volatile uint32_t *apic = (volatile uint32_t *)(base & 0xffffff000ull);
    while (apic[0x300 / 4] & (1u << 12))
        cpu_relax();
    apic[0x310 / 4] = apic_id << 24;
    apic[0x300 / 4] = 0x4400; /* NMI, physical destination, assert */
}

/* Gates we patched (each CPU may have its own IDT), restored by the BSP at the end. */
#define MAX_GATES 16
static struct {
    volatile uint64_t *gate;
    uint64_t old0, old1;
} patched[MAX_GATES];
static volatile int npatched;
static volatile int patch_lock;

static void patch_nmi_gate(void)
{
    struct idtr idtr;
    __asm__ volatile("sidt %0" : "=m"(idtr));
    volatile uint64_t *gate = (volatile uint64_t *)(idtr.base + 2 * 16);
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    uint64_t h = (uint64_t)agent_nmi_stub;
    while (__atomic_test_and_set(&patch_lock, __ATOMIC_ACQUIRE))
        cpu_relax();
    int known = 0;
    for (int i = 0; i < npatched; i++)
        known |= patched[i].gate == gate;
    if (!known && npatched < MAX_GATES) {
        patched[npatched].gate = gate;
        patched[npatched].old0 = gate[0];
        patched[npatched].old1 = gate[1];
        npatched++;
        gate[1] = h >> 32;
        gate[0] =
            (h & 0xffff) | ((uint64_t)cs << 16) | (0x8eull << 40) | (((h >> 16) & 0xffff) << 48);
    }
    __atomic_clear(&patch_lock, __ATOMIC_RELEASE);
}

static void restore_nmi_gates(void)
{
    for (int i = 0; i < npatched; i++) {
        patched[i].gate[0] = patched[i].old0;
        patched[i].gate[1] = patched[i].old1;
    }
    npatched = 0;
}

static VOID EFIAPI ap_nmi(VOID *arg)
{
    struct nmi_run *r = arg;
    uint32_t id = cpuid(1, 0).ebx >> 24;
    patch_nmi_gate();
    uint64_t start = agent_nmi_counts[id];
    for (int k = 0; k < r->per_cpu; k++) {
        uint64_t want = start + (uint64_t)k + 1;
        send_self_nmi(id);
        uint64_t spins = 0;
        while (agent_nmi_counts[id] < want && spins < 20000000)
            spins++, cpu_relax();
        if (agent_nmi_counts[id] < want) {
            __atomic_add_fetch(&r->timeouts, 1, __ATOMIC_SEQ_CST);
            break;
        }
    }
    /* Any NMI delivered twice would show up here, after a settle time. */
    for (int i = 0; i < 200000; i++)
        cpu_relax();
    if (agent_nmi_counts[id] != start + (uint64_t)r->per_cpu)
        __atomic_add_fetch(&r->failed, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&r->done, 1, __ATOMIC_SEQ_CST);
}

enum verdict probe_nmi(struct agent *a, char *reason, size_t size)
{
    if (a->opt.nmis <= 0) {
        str_printf(reason, size, "no nmis=N");
        return PROBE_SKIP;
    }
    struct mp_services *mp = get_mp(a);
    UINTN count = 0, enabled = 0;
    if (!mp || mp->get_number_of_processors(mp, &count, &enabled) != EFI_SUCCESS || enabled < 2) {
        str_printf(reason, size, "needs MP services and 2+ CPUs");
        return PROBE_SKIP;
    }
    /* Each AP puts our handler in its IDT's NMI gate; restored afterwards. */
    nmi_run.per_cpu = a->opt.nmis;
    nmi_run.done = nmi_run.failed = 0;
    nmi_run.timeouts = 0;
    EFI_BOOT_SERVICES *bs = a->st->BootServices;
    EFI_EVENT ev = NULL;
    uint64_t kicks = 0, acked = 0;
    EFI_STATUS st;
    if (a->opt.hv == 1 && bs->CreateEvent(0, 0, NULL, NULL, &ev) == EFI_SUCCESS) {
        st = mp->startup_all_aps(mp, ap_nmi, FALSE, ev, 0, &nmi_run, NULL);
        /* While the APs shoot NMIs at themselves, kick them all, round after round. */
        while (st == EFI_SUCCESS && nmi_run.done < enabled - 1) {
            acked += hypercall(HV_HC_KICK_LOOP, 10, NULL);
            kicks += 10 * (enabled - 1);
        }
        while (st == EFI_SUCCESS && bs->CheckEvent(ev) == EFI_NOT_READY)
            cpu_relax();
        bs->CloseEvent(ev);
    } else {
        st = mp->startup_all_aps(mp, ap_nmi, FALSE, NULL, 0, &nmi_run, NULL);
    }
    restore_nmi_gates();
    if (st != EFI_SUCCESS) {
        str_printf(reason, size, "StartupAllAPs: status 0x%lx", (UINT64)st);
        return PROBE_FAIL;
    }
    uint64_t total = 0;
    for (int i = 0; i < MAX_CPUS; i++)
        total += agent_nmi_counts[i];
    AGENT_LOG("nmi: %lu AP(s) x %d self-NMIs: %lu delivered, %lu timeout(s), %u CPU(s) with a "
              "wrong count; kicks %lu acknowledged %lu",
              (UINT64)(enabled - 1), a->opt.nmis, total, nmi_run.timeouts, nmi_run.failed, kicks,
              acked);
    if (a->opt.hv == 1)
        hypercall(HV_HC_STATS, 0, NULL);
    if (nmi_run.timeouts || nmi_run.failed ||
        total != (uint64_t)(enabled - 1) * (uint64_t)a->opt.nmis || acked != kicks) {
        str_printf(reason, size, "NMIs %lu of %lu, timeouts %lu, wrong %u, kicks %lu/%lu", total,
                   (UINT64)(enabled - 1) * (UINT64)a->opt.nmis, nmi_run.timeouts, nmi_run.failed,
                   acked, kicks);
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}

/* ---- entryfail ----------------------------------------------------------- */

/* The hypervisor must diagnose a failed VM entry on the serial log and halt, never hang
 * silently: this asks it to break this vCPU's guest state.  It does not come back. */
enum verdict probe_entryfail(struct agent *a, char *reason, size_t size)
{
    if (a->opt.entryfail != 1 || a->opt.hv != 1) {
        str_printf(reason, size, "needs entryfail=1 hv=1");
        return PROBE_SKIP;
    }
    AGENT_LOG("entryfail: asking the hypervisor to fail the next VM entry");
    ser_drain();
    hypercall(HV_HC_TEST_ENTRY_FAIL, 0, NULL);
    str_printf(reason, size, "the guest kept running after a failed VM entry");
    return PROBE_FAIL;
}
