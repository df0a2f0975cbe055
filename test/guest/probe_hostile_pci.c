/*
 * probe_hostile_pci: the PCI configuration attacks of the hostile probe
 * (probe_hostile.c calls hostile_pci once the introspector is attached).
 * The host tells the agent where the hypervisor's NIC is (its
 * CONFIG_ADDRESS, and its ECAM page when the machine has one), because the
 * guest cannot see it: that is the point.  Each attack's failure is asserted
 * here; that the NIC still works for the hypervisor afterwards (its BAR and
 * command register untouched) the host checks through the KVMI session.
 *
 *  - the NIC's config space through 0xCFC-0xCFF at every size and offset,
 *    and through accesses that straddle 0xCFB/0xCFC (inl 0xCFB, 0xCFA,
 *    0xCF9, inw 0xCFB): every byte reads all ones;
 *  - the same straddling accesses as writes aimed at the NIC's command
 *    register and BAR0 (they would stop or move the NIC);
 *  - two vCPUs racing on CONFIG_ADDRESS: the AP flips 0xCF8 between the NIC
 *    and the host bridge while this CPU reads 0xCFC: every read is the host
 *    bridge's ID or all ones, never the NIC's;
 *  - ECAM writes to the NIC's page (where an MCFG exists): dropped, and the
 *    page reads all ones.
 * Bochs (i440FX) answers a misaligned access with all ones on its own, so
 * there the straddling reads also pass without a hypervisor; the host unit
 * test test/unit/test_net_pci_guard.c is their proof against a chipset that
 * splits them as a CPU does.
 */
#include "agent.h"
#include "cpu.h"
#include "mp.h"

#define CF8 0xcf8
#define CFC 0xcfc

static uint32_t pin(uint16_t port, unsigned size)
{
    uint32_t v = 0;
    if (size == 1)
        __asm__ volatile("inb %1, %b0" : "+a"(v) : "Nd"(port));
    else if (size == 2)
        __asm__ volatile("inw %1, %w0" : "+a"(v) : "Nd"(port));
    else
        __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static void pout(uint16_t port, unsigned size, uint32_t v)
{
    if (size == 1)
        __asm__ volatile("outb %b0, %1" : : "a"(v), "Nd"(port));
    else if (size == 2)
        __asm__ volatile("outw %w0, %1" : : "a"(v), "Nd"(port));
    else
        __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static uint32_t ones(unsigned size)
{
    return size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

struct pci_result {
    unsigned tried, failed;
    enum verdict v;
};

static void expect(struct pci_result *m, int ok, const char *what, char *reason, size_t size)
{
    m->tried++;
    m->failed += !ok;
    AGENT_LOG("hostile: %s: %s", what, ok ? "hidden" : "REACHED THE NIC");
    if (!ok && m->v == PROBE_PASS) {
        str_printf(reason, size, "%s reached the NIC", what);
        m->v = PROBE_FAIL;
    }
}

/* ---- reads and writes ------------------------------------------------------ */

static const struct {
    uint16_t port;
    unsigned size;
} straddle[] = {{0xcfb, 4}, {0xcfa, 4}, {0xcf9, 4}, {0xcfb, 2}};

static int aligned_reads_hidden(uint32_t nic)
{
    static const uint8_t regs[] = {0x00, 0x04, 0x08, 0x10};
    int ok = 1;
    for (unsigned r = 0; r < sizeof(regs); r++)
        for (unsigned size = 1; size <= 4; size *= 2)
            for (unsigned off = 0; off + size <= 4; off += size) {
                pout(CF8, 4, nic | regs[r]);
                uint32_t v = pin((uint16_t)(CFC + off), size);
                if (v != ones(size)) {
                    AGENT_LOG("hostile: reg 0x%x+%u size %u read 0x%x", regs[r], off, size, v);
                    ok = 0;
                }
            }
    return ok;
}

static int straddling_reads_hidden(uint32_t nic)
{
    int ok = 1;
    for (unsigned reg = 0; reg <= 0x10; reg += 0x10)
        for (unsigned i = 0; i < sizeof(straddle) / sizeof(straddle[0]); i++) {
            pout(CF8, 4, nic | reg);
            uint32_t v = pin(straddle[i].port, straddle[i].size);
            AGENT_LOG("hostile: CONFIG_ADDRESS 0x%x, in%c 0x%x: 0x%x", nic | reg,
                      straddle[i].size == 4 ? 'l' : 'w', straddle[i].port, v);
            ok &= v == ones(straddle[i].size);
        }
    return ok;
}

/* Writes that would clear the NIC's memory decode and bus mastering or move its BAR0; the
 * byte that lands on 0xCF9 (reset control) is always 0. */
static void straddling_writes(uint32_t nic)
{
    for (unsigned reg = 0x04; reg <= 0x10; reg += 0x0c) {
        for (unsigned i = 0; i < sizeof(straddle) / sizeof(straddle[0]); i++) {
            pout(CF8, 4, nic | reg);
            pout(straddle[i].port, straddle[i].size, 0);
        }
        pout(CF8, 4, nic | reg);
        pout(CFC, 4, 0);
        pout(CFC, 1, 0);
    }
}

/* ---- two vCPUs --------------------------------------------------------------- */

#define RACE_ROUNDS 1500

struct race {
    volatile uint32_t go, stop;
    uint32_t nic, other;
    volatile uint32_t flips;
};

static VOID EFIAPI ap_flip(VOID *arg)
{
    struct race *r = arg;
    while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
        cpu_relax();
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        pout(CF8, 4, r->nic);
        pout(CF8, 4, r->other);
        r->flips++;
    }
}

static struct race race;

/* 1 = no read saw the NIC; -1 = not applicable (no second CPU). */
static int cf8_race(struct agent *a, uint32_t nic)
{
    EFI_GUID guid = AGENT_MP_SERVICES_GUID;
    struct mp_services *mp = NULL;
    EFI_BOOT_SERVICES *bs = a->st->BootServices;
    UINTN count = 0, enabled = 0, bsp = 0;
    if (bs->LocateProtocol(&guid, NULL, (VOID **)&mp) != EFI_SUCCESS ||
        mp->get_number_of_processors(mp, &count, &enabled) != EFI_SUCCESS || enabled < 2)
        return -1;
    mp->who_am_i(mp, &bsp);
    UINTN ap = bsp == 0 ? 1 : 0;
    race.nic = nic;
    race.other = 0x80000000u; /* 00:00.0, the host bridge */
    race.go = race.stop = race.flips = 0;
    pout(CF8, 4, race.other);
    uint32_t other_id = pin(CFC, 4);
    EFI_EVENT ev = NULL;
    if (bs->CreateEvent(0, 0, NULL, NULL, &ev) != EFI_SUCCESS ||
        mp->startup_this_ap(mp, ap_flip, ap, ev, 0, &race, NULL) != EFI_SUCCESS)
        return -1;
    unsigned other = 0, hidden = 0, nic_seen = 0;
    __atomic_store_n(&race.go, 1, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < RACE_ROUNDS; i++) {
        uint32_t v = pin(CFC, 4);
        if (v == other_id)
            other++;
        else if (v == 0xffffffffu)
            hidden++;
        else
            nic_seen++; /* anything else is the NIC's */
    }
    __atomic_store_n(&race.stop, 1, __ATOMIC_RELEASE);
    while (bs->CheckEvent(ev) == EFI_NOT_READY)
        cpu_relax();
    bs->CloseEvent(ev);
    AGENT_LOG("hostile: CONFIG_ADDRESS race: %u reads while the AP flipped %u times: %u host "
              "bridge (0x%x), %u all ones, %u other (the NIC's)",
              RACE_ROUNDS, race.flips, other, other_id, hidden, nic_seen);
    return nic_seen == 0;
}

/* ---- ECAM ------------------------------------------------------------------------ */

static int ecam_hidden(uint64_t page)
{
    volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)page;
    p[1] = 0;          /* command: memory decode and bus mastering off */
    p[4] = 0xfe000000; /* BAR0 moved */
    unsigned seen = 0;
    for (unsigned i = 0; i < 64; i++)
        seen += p[i] != 0xffffffffu;
    AGENT_LOG("hostile: ECAM page 0x%lx after the writes: %u of 64 words differ from all ones",
              (UINT64)page, seen);
    return seen == 0;
}

enum verdict hostile_pci(struct agent *a, uint32_t nic, uint64_t ecam_page, char *reason,
                         size_t size)
{
    struct pci_result m = {0, 0, PROBE_PASS};
    if (!(nic & 0x80000000u)) {
        str_printf(reason, size, "the host gave no NIC address");
        return PROBE_FAIL;
    }
    AGENT_LOG("hostile: the hypervisor's NIC at CONFIG_ADDRESS 0x%x (from the host)", nic);
    expect(&m, aligned_reads_hidden(nic), "the NIC's config space at every size and offset", reason,
           size);
    expect(&m, straddling_reads_hidden(nic), "straddling reads inl 0xCFB/0xCFA/0xCF9, inw 0xCFB",
           reason, size);
    straddling_writes(nic);
    expect(&m, aligned_reads_hidden(nic), "straddling writes to the NIC's command and BAR0", reason,
           size);
    int raced = cf8_race(a, nic);
    if (raced < 0)
        AGENT_LOG("hostile: CONFIG_ADDRESS race: not applicable (no second CPU)");
    else
        expect(&m, raced, "a two-vCPU CONFIG_ADDRESS race", reason, size);
    if (ecam_page)
        expect(&m, ecam_hidden(ecam_page), "ECAM writes to the NIC", reason, size);
    else
        AGENT_LOG("hostile: ECAM writes to the NIC: not applicable (no MCFG: no ECAM)");
    AGENT_LOG("hostile: PCI attacks failed: %u of %u", m.tried - m.failed, m.tried);
    return m.v;
}
