/*
 * probe_dma: the DMA-protection test's guest half, run after hv-dmatest.efi
 * left VT-d remapping on (QEMU q35 + intel-iommu).  It aims the e1000's DMA,
 * in PHY loopback (each frame it transmits it receives), at its own page and
 * at the hypervisor's region:
 *   control: TX reads a frame from the page, RX writes it back there (both
 *            must happen, no fault);
 *   read:    TX reads from the region's target page (a fault recorded for
 *            the e1000 at that page; the frame must not carry the region);
 *   write:   RX writes into the target page (a fault recorded; the page
 *            unchanged).
 * dma=1: the e1000 is a guest device and its page ordinary memory.  dma=2:
 * the e1000 is the hypervisor's NIC, its page the one the loader mapped in
 * the NIC's own domain, and DMA to ordinary guest memory must fault too.
 * The remapping unit's fault records are found through the ACPI DMAR.
 */
#include <efi.h>
#include <efilib.h>

#include "vtd/acpi_find.h"
#include "agent.h"
#include "cpu.h"
#include "vtd/dmar.h"
#include "dmatest.h"
#include "vtd/vtd.h"

static int str_cmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

#define E1000_ID 0x100e8086u

/* e1000 registers (Intel 8254x SDM 13 "Register Descriptions") */
#define E_CTRL  0x0000
#define E_MDIC  0x0020
#define E_RCTL  0x0100
#define E_TCTL  0x0400
#define E_RDBAL 0x2800
#define E_RDBAH 0x2804
#define E_RDLEN 0x2808
#define E_RDH   0x2810
#define E_RDT   0x2818
#define E_TDBAL 0x3800
#define E_TDBAH 0x3804
#define E_TDLEN 0x3808
#define E_TDH   0x3810
#define E_TDT   0x3818

#define CTRL_SLU     (1u << 6)
#define CTRL_RST     (1u << 26)
#define RCTL_EN      (1u << 1)
#define RCTL_UPE     (1u << 3)
#define RCTL_MPE     (1u << 4)
#define RCTL_BAM     (1u << 15)
#define TCTL_EN      (1u << 1)
#define TCTL_PSP     (1u << 3)
#define MDIC_WRITE   (1u << 26)
#define MDIC_READY   (1u << 28)
#define PHY_LOOPBACK 0x4000u

#define NDESC     8
#define FRAME_LEN 128
#define SPINS     10000000u

struct tx_desc {
    uint64_t addr;
    uint16_t len;
    uint8_t cso, cmd, status, css;
    uint16_t special;
};

struct rx_desc {
    uint64_t addr;
    uint16_t len, csum;
    uint8_t status, errors;
    uint16_t special;
};

static EFI_GUID acpi20 = {
    0x8868e871, 0xe4f1, 0x11d3, {0xbc, 0x22, 0x00, 0x80, 0xc7, 0x3c, 0x88, 0x81}};
static EFI_GUID acpi10 = {
    0xeb9d2d30, 0x2d88, 0x11d3, {0x9a, 0x16, 0x00, 0x90, 0x27, 0x3f, 0xc1, 0x4d}};

static int guid_eq(const EFI_GUID *x, const EFI_GUID *y)
{
    const uint8_t *p = (const uint8_t *)x, *q = (const uint8_t *)y;
    for (unsigned i = 0; i < sizeof(EFI_GUID); i++)
        if (p[i] != q[i])
            return 0;
    return 1;
}

/* The ACPI 2.0 RSDP from the system table, else the 1.0 one. */
static uint64_t find_rsdp(EFI_SYSTEM_TABLE *st)
{
    uint64_t v1 = 0;
    for (UINTN i = 0; i < st->NumberOfTableEntries; i++) {
        EFI_CONFIGURATION_TABLE *t = &st->ConfigurationTable[i];
        if (guid_eq(&t->VendorGuid, &acpi20))
            return (uint64_t)(uintptr_t)t->VendorTable;
        if (guid_eq(&t->VendorGuid, &acpi10))
            v1 = (uint64_t)(uintptr_t)t->VendorTable;
    }
    return v1;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static uint32_t cfg_addr(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
    return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xfc);
}

static uint32_t pci_rd(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
    outl(0xcf8, cfg_addr(bus, dev, fn, off));
    return inl(0xcfc);
}

static void pci_wr(unsigned bus, unsigned dev, unsigned fn, unsigned off, uint32_t v)
{
    outl(0xcf8, cfg_addr(bus, dev, fn, off));
    outl(0xcfc, v);
}

static const uint8_t *identity(void *ctx, uint64_t phys, uint64_t len)
{
    (void)ctx;
    (void)len;
    return phys ? (const uint8_t *)(uintptr_t)phys : NULL;
}

static volatile uint32_t *nic;
static uint64_t iommu;

static void wr(unsigned off, uint32_t v)
{
    nic[off / 4] = v;
}

static uint64_t rd64(uint64_t a)
{
    return *(volatile uint64_t *)(uintptr_t)a;
}

/*
 * The faults are read with the hypervisor's own collector (vtd_poll_faults,
 * which the core runs on every poll), over a one-unit view of the remapping
 * unit: what it decodes is checked against what the probe did.
 */
static struct vtd_state view;
static struct vtd_fault last;
static unsigned seen;

static void on_fault(const struct vtd_fault *f)
{
    last = *f;
    seen++;
}

/* Takes the recorded faults: 1 and the last one's fields, or 0 when none. */
static int take_fault(uint16_t *sid, uint64_t *addr, int *is_read)
{
    seen = 0;
    vtd_poll_faults(&view, on_fault);
    if (!seen)
        return 0;
    if (seen > 1)
        AGENT_LOG("dma: %u faults at once", seen);
    *sid = last.sid;
    *addr = last.addr;
    *is_read = !last.write;
    return 1;
}

static int all_fill(const uint8_t *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (p[i] != DMATEST_FILL)
            return 0;
    return 1;
}

/* Sends TX descriptor i (RX descriptor i receives it); waits for TX done. */
static int send(struct tx_desc *tx, unsigned i)
{
    tx[i].status = 0;
    tx[i].len = FRAME_LEN;
    tx[i].cmd = 0x01 | 0x02 | 0x08; /* EOP, IFCS, RS */
    wr(E_TDT, i + 1);
    for (uint32_t s = 0; s < SPINS; s++) {
        if (*(volatile uint8_t *)&tx[i].status & 1)
            return 0;
        cpu_relax();
    }
    return -1;
}

enum verdict probe_dma(struct agent *a, char *reason, size_t size)
{
    if (!a->opt.dma) {
        str_printf(reason, size, "dma=1 not given (QEMU DMA-protection scenario only)");
        return PROBE_SKIP;
    }
    /* where hv-dmatest.efi put the region */
    EFI_GUID vg = DMATEST_GUID;
    struct dmatest_info info;
    UINTN isz = sizeof(info);
    if (a->st->RuntimeServices->GetVariable(DMATEST_VAR, &vg, NULL, &isz, &info) != EFI_SUCCESS ||
        isz != sizeof(info) || info.magic != DMATEST_MAGIC) {
        str_printf(reason, size, "no HvDmaTest variable: hv-dmatest.efi did not finish");
        return PROBE_FAIL;
    }
    uint8_t *target = (uint8_t *)(uintptr_t)info.target;
    AGENT_LOG("dma: region 0x%llx size 0x%llx target 0x%llx", (unsigned long long)info.region_base,
              (unsigned long long)info.region_size, (unsigned long long)info.target);
    if (!all_fill(target, 4096)) {
        str_printf(reason, size, "the target page does not hold the loader's fill");
        return PROBE_FAIL;
    }

    /* the remapping unit, through ACPI */
    uint64_t rsdp = find_rsdp(a->st);
    struct acpi_found f;
    static struct dmar_info d;
    int bad = 0;
    const char *why = acpi_find(identity, NULL, rsdp, "DMAR", &f);
    if (!why)
        why = dmar_parse(f.data, f.len, &d);
    if (!why) {
        iommu = d.drhd[0].reg_base;
        AGENT_LOG("dma: ACPI lists a DMAR");
        if (info.vtd_area)
            bad |= 32; /* with protection on the guest must not see it */
    } else if (info.iommu && !str_cmp(why, "not found")) {
        iommu = info.iommu;
        AGENT_LOG("dma: ACPI lists no DMAR (roots valid); unit from the loader");
    } else {
        str_printf(reason, size, "DMAR: %s", why);
        return PROBE_FAIL;
    }
    uint64_t cap = rd64(iommu + 8);
    uint32_t gsts = *(volatile uint32_t *)(uintptr_t)(iommu + 0x1c);
    unsigned fro = (unsigned)(cap >> 24 & 0x3ff) * 16, nfr = (unsigned)(cap >> 40 & 0xff) + 1;
    view.nunits = 1;
    view.unit[0].base = iommu;
    view.unit[0].cap = cap;
    AGENT_LOG("dma: VT-d unit 0x%llx GSTS 0x%x, %u fault record(s) at 0x%x",
              (unsigned long long)iommu, gsts, nfr, fro);
    if (!(gsts >> 31)) {
        /* go on: the attempts then show what an unprotected machine allows */
        AGENT_LOG("dma: translation is OFF");
        bad |= 16;
    }
    uint16_t sid;
    uint64_t faddr;
    int fread;
    while (take_fault(&sid, &faddr, &fread))
        AGENT_LOG("dma: earlier fault sid %x addr 0x%llx", sid, (unsigned long long)faddr);

    /* the e1000 (bus 0) */
    unsigned dev = 32;
    for (unsigned i = 0; i < 32; i++)
        if (pci_rd(0, i, 0, 0) == E1000_ID) {
            dev = i;
            break;
        }
    if (dev == 32) {
        str_printf(reason, size, "no e1000 on bus 0");
        return PROBE_FAIL;
    }
    uint16_t e1000_sid = (uint16_t)(dev << 3);
    nic = (volatile uint32_t *)(uintptr_t)(pci_rd(0, dev, 0, 0x10) & ~0xfu);
    pci_wr(0, dev, 0, 4, (pci_rd(0, dev, 0, 4) & 0xffff) | 0x6); /* memory, bus master */

    EFI_PHYSICAL_ADDRESS buf = 0xffffffff;
    if (a->st->BootServices->AllocatePages(AllocateMaxAddress, EfiBootServicesData, 2, &buf) !=
        EFI_SUCCESS) {
        str_printf(reason, size, "AllocatePages failed");
        return PROBE_FAIL;
    }
    for (unsigned i = 0; i < 2 * 4096; i++)
        ((uint8_t *)(uintptr_t)buf)[i] = 0;
    /*
     * One page holds the rings, the frame and the receive buffer: an
     * ordinary page (dma=1, the e1000 is a guest device) or the page the
     * loader mapped in the NIC's own domain (dma=2, the e1000 is the
     * hypervisor's NIC).  `other` is ordinary memory outside that page.
     */
    uint64_t page = buf, other = buf + 4096;
    if (a->opt.dma == 2) {
        if (!info.nic_ring) {
            str_printf(reason, size, "the loader gave the NIC no domain of its own");
            return PROBE_FAIL;
        }
        page = info.nic_ring;
    }
    struct tx_desc *tx = (struct tx_desc *)(uintptr_t)page;
    struct rx_desc *rx = (struct rx_desc *)(uintptr_t)(page + 256);
    uint8_t *frame = (uint8_t *)(uintptr_t)(page + 1024);
    uint8_t *rxbuf = (uint8_t *)(uintptr_t)(page + 2048);
    for (unsigned i = 0; i < 4096; i++)
        ((uint8_t *)(uintptr_t)page)[i] = 0;
    for (unsigned i = 0; i < FRAME_LEN; i++)
        frame[i] = i < 6 ? 0xff : (uint8_t)(0x30 + i);
    for (unsigned i = 0; i < FRAME_LEN; i++)
        ((uint8_t *)(uintptr_t)other)[i] = frame[i];

    /* attempt 0 is the control; the others must each fault at `at` */
    struct attempt {
        const char *name;
        uint64_t src, dst, at;
        int read;
    } tries[] = {
        {"control", (uint64_t)(uintptr_t)frame, (uint64_t)(uintptr_t)rxbuf, 0, 0},
        {"read from the region", info.target, (uint64_t)(uintptr_t)rxbuf, info.target, 1},
        {"write into the region", (uint64_t)(uintptr_t)frame, info.target, info.target, 0},
        {"read from guest memory", other, (uint64_t)(uintptr_t)rxbuf, other, 1},
        {"write into guest memory", (uint64_t)(uintptr_t)frame, other + 2048, other, 0},
        {"read from the removed page", info.hole, (uint64_t)(uintptr_t)rxbuf, info.hole, 1},
    };
    /* dma=1: the guest's device; its own memory works, the region and the
     * page the loader removed do not.  dma=2: the NIC reaches only its page. */
    unsigned ntries = a->opt.dma == 2 ? 5 : 3;
    if (a->opt.dma == 1 && info.hole) {
        tries[3] = tries[5];
        ntries = 4;
    }

    wr(E_CTRL, CTRL_RST);
    for (uint32_t s = 0; s < SPINS && (nic[E_CTRL / 4] & CTRL_RST); s++)
        cpu_relax();
    wr(E_CTRL, CTRL_SLU);
    wr(E_MDIC, MDIC_WRITE | 1u << 21 | 0u << 16 | PHY_LOOPBACK); /* PHY 1, register 0 */
    for (uint32_t s = 0; s < SPINS && !(nic[E_MDIC / 4] & MDIC_READY); s++)
        cpu_relax();
    for (unsigned i = 0; i < ntries; i++) {
        tx[i].addr = tries[i].src;
        rx[i].addr = tries[i].dst;
    }
    wr(E_RDBAL, (uint32_t)(uintptr_t)rx);
    wr(E_RDBAH, 0);
    wr(E_RDLEN, NDESC * sizeof(struct rx_desc));
    wr(E_RDH, 0);
    wr(E_RDT, ntries);
    wr(E_RCTL, RCTL_EN | RCTL_UPE | RCTL_MPE | RCTL_BAM);
    wr(E_TDBAL, (uint32_t)(uintptr_t)tx);
    wr(E_TDBAH, 0);
    wr(E_TDLEN, NDESC * sizeof(struct tx_desc));
    wr(E_TDH, 0);
    wr(E_TDT, 0);
    wr(E_TCTL, TCTL_EN | TCTL_PSP);
    /* QEMU's e1000 refuses frames for 1 s (virtual) after an RCTL write
     * (its flush_queue_timer); loopback frames refused then are lost. */
    a->st->BootServices->Stall(1500000);

    for (unsigned i = 0; i < ntries; i++) {
        const struct attempt *t = &tries[i];
        if (send(tx, i)) {
            str_printf(reason, size, "%s: the e1000 did not complete its TX descriptor", t->name);
            return PROBE_FAIL;
        }
        int got = 0;
        for (uint32_t s = 0; s < SPINS && !got; s++)
            got = *(volatile uint8_t *)&rx[i].status & 1;
        int fault = take_fault(&sid, &faddr, &fread);
        if (i == 0) {
            int same = got;
            for (unsigned k = 0; same && k < FRAME_LEN; k++)
                same = rxbuf[k] == frame[k];
            AGENT_LOG("dma: control: frame received %s, fault %s",
                      got ? (same ? "intact" : "CHANGED") : "NOTHING", fault ? "RECORDED" : "none");
            if (!same || fault) {
                str_printf(reason, size, "control DMA failed (received %d, intact %d, fault %d)",
                           got, same, fault);
                return PROBE_FAIL;
            }
            continue;
        }
        if (fault)
            AGENT_LOG("dma: %s: fault recorded sid %02x:%02x.%x addr 0x%llx %s", t->name, sid >> 8,
                      sid >> 3 & 31, sid & 7, (unsigned long long)faddr, fread ? "read" : "write");
        else
            AGENT_LOG("dma: %s: fault NONE", t->name);
        if (!fault || sid != e1000_sid || faddr != t->at || fread != t->read)
            bad |= 1;
    }
    for (unsigned i = 0; i + 16 <= 2048; i++)
        if (all_fill(rxbuf + i, 16)) {
            AGENT_LOG("dma: the region's bytes reached the receive buffer");
            bad |= 2;
            break;
        }
    int intact = all_fill(target, 4096);
    AGENT_LOG("dma: target page %s", intact ? "unchanged" : "CHANGED");
    if (!intact)
        bad |= 8;
    if (a->opt.dma == 2) {
        int clean = 1;
        for (unsigned k = 2048; k < 4096; k++)
            clean &= ((uint8_t *)(uintptr_t)other)[k] == 0;
        AGENT_LOG("dma: guest page %s", clean ? "unchanged" : "CHANGED");
        if (!clean)
            bad |= 4;
    }

    wr(E_RCTL, 0);
    wr(E_TCTL, 0);
    pci_wr(0, dev, 0, 4, pci_rd(0, dev, 0, 4) & 0xfffb);
    a->st->BootServices->FreePages(buf, 2);
    if (bad) {
        str_printf(
            reason, size, "%s%s%s%s%s%s", bad & 32 ? "DMAR visible to the guest; " : "",
            bad & 16 ? "translation off; " : "", bad & 1 ? "a blocked DMA recorded no fault; " : "",
            bad & 2 ? "region read by DMA; " : "", bad & 4 ? "guest page written by the NIC; " : "",
            bad & 8 ? "region written by DMA" : "");
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}
