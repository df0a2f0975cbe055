/*
 * acpitab: installs a minimal set of ACPI tables (RSDP 2.0, XSDT, FADT,
 * FACS, DSDT, MADT) for the Linux test guest, when the firmware has none.
 *
 * Why: Debian's 2 MiB OVMF builds its ACPI tables from QEMU's fw_cfg; under
 * Bochs there is no fw_cfg, so the EFI system table carries no ACPI table at
 * all ("ACPI RSDP 0x0" in hv.efi's log).  Linux then finds no MADT, sees one
 * CPU ("smpboot: Boot CPU (id 0) not listed by BIOS"), and cannot power the
 * machine off.  A real appliance has ACPI; this app gives the emulated one
 * the part Linux needs: the MADT lists every CPU the firmware's MP services
 * know (APIC IDs from GetProcessorInfo), the IOAPIC (its ID read from the
 * chip) and the ISA overrides Bochs wires (IRQ0 -> pin 2, the SCI level
 * high); the FADT points at the PIIX4 power-management block OVMF
 * programmed (read from PCI config space); the DSDT holds \_S5, so that
 * `poweroff -f` reaches Bochs's soft power-off (SLP_TYP 0), and the PCI root
 * bridge, so that Linux enumerates PCI through ACPI.
 *
 * It is started from startup.nsh before the kernel (test/emu/linux_run.py)
 * and prints "ACPITAB: ..." lines on the console (mirrored to COM1).  With
 * tables already present it changes nothing.  Layouts: ACPI 6.4 sections
 * 5.2.5 (RSDP), 5.2.8 (XSDT), 5.2.9 (FADT), 5.2.10 (FACS), 5.2.12 (MADT),
 * 20.2.5.2 (AML Name/Package encoding).
 */
#include <efi.h>
#include <efilib.h>

#include "../guest/mp.h"
#include "x86.h"

#define MAX_CPUS 64

struct acpi_header {
    char signature[4];
    UINT32 length;
    UINT8 revision;
    UINT8 checksum;
    char oem_id[6];
    char oem_table_id[8];
    UINT32 oem_revision;
    UINT32 creator_id;
    UINT32 creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_header) == 36, "ACPI 5.2.6");

struct rsdp {
    char signature[8];
    UINT8 checksum; /* first 20 bytes */
    char oem_id[6];
    UINT8 revision; /* 2: ACPI 2.0+ */
    UINT32 rsdt;
    UINT32 length;
    UINT64 xsdt;
    UINT8 ext_checksum; /* all 36 bytes */
    UINT8 reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct rsdp) == 36, "ACPI 5.2.5.3");

struct xsdt {
    struct acpi_header h;
    UINT64 entry[3]; /* FADT, MADT; one spare */
} __attribute__((packed));

/* FADT revision 3 (ACPI 2.0 layout, 244 bytes); the 64-bit X_ fields are
 * left zero, which tells the OS to use the 32-bit ones. */
struct fadt {
    struct acpi_header h;
    UINT32 firmware_ctrl, dsdt;
    UINT8 reserved0, preferred_pm_profile;
    UINT16 sci_int;
    UINT32 smi_cmd;
    UINT8 acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
    UINT32 pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk, pm2_cnt_blk, pm_tmr_blk;
    UINT32 gpe0_blk, gpe1_blk;
    UINT8 pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_blk_len, gpe1_blk_len;
    UINT8 gpe1_base, cst_cnt;
    UINT16 p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
    UINT8 duty_offset, duty_width, day_alrm, mon_alrm, century;
    UINT16 iapc_boot_arch;
    UINT8 reserved1;
    UINT32 flags;
    UINT8 reset_reg[12];
    UINT8 reset_value, reserved2[3];
    UINT64 x_firmware_ctrl, x_dsdt;
    UINT8 x_blocks[8][12];
} __attribute__((packed));
_Static_assert(sizeof(struct fadt) == 244, "ACPI 5.2.9, revision 3");
_Static_assert(__builtin_offsetof(struct fadt, flags) == 112, "FADT flags");
_Static_assert(__builtin_offsetof(struct fadt, x_dsdt) == 140, "FADT X_DSDT");

struct facs {
    char signature[4];
    UINT32 length;
    UINT32 hw_signature, waking_vector, global_lock, flags;
    UINT64 x_waking_vector;
    UINT8 version, reserved[31];
} __attribute__((packed));
_Static_assert(sizeof(struct facs) == 64, "ACPI 5.2.10");

/*
 * DSDT (AML, ACPI 6.4 chapter 20):
 *   Name (_S5, Package (4) { 0, 0, 0, 0 })   Bochs's PIIX4 powers off on
 *                                            SLP_TYP 0 with SLP_EN;
 *   Device (\_SB.PCI0) { Name (_HID, EisaId ("PNP0A03")) }
 *                                            the PCI root bridge: with ACPI
 *                                            on, Linux scans PCI only from
 *                                            the roots the namespace names.
 */
static const UINT8 dsdt_aml[] = {
    /* NameOp "_S3_" PackageOp PkgLength(6) NumElements(4) One One Zero Zero: the PIIX4's
     * suspend to RAM (SLP_TYP 1), so that the OS offers S3 and the hypervisor's refusal
     * of it can be seen (Bochs 2.7 itself would reset the machine, with no way back) */
    0x08, '_', 'S', '3', '_', 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00,
    /* NameOp "_S4_" PackageOp PkgLength(8) NumElements(4) BytePrefix 2 BytePrefix 2 Zero
     * Zero: hibernation (SLP_TYP 2, which Bochs's PIIX4 ignores), so that the hypervisor's
     * handling of S4 can be seen */
    0x08, '_', 'S', '4', '_', 0x12, 0x08, 0x04, 0x0a, 0x02, 0x0a, 0x02, 0x00, 0x00,
    /* NameOp "_S5_" PackageOp PkgLength(6) NumElements(4) Zero Zero Zero Zero */
    0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
    /* ExtOpPrefix DeviceOp PkgLength(21) "\_SB_.PCI0" (RootChar DualNamePrefix) */
    0x5b, 0x82, 0x15, 0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0',
    /* NameOp "_HID" DWordPrefix EisaId("PNP0A03") = 0x030ad041 */
    0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03};
_Static_assert(sizeof(dsdt_aml) == 12 + 14 + 12 + 2 + 21, "DeviceOp PkgLength");

struct madt_lapic {
    UINT8 type, length, uid, apic_id;
    UINT32 flags;
} __attribute__((packed));
struct madt_ioapic {
    UINT8 type, length, id, reserved;
    UINT32 address, gsi_base;
} __attribute__((packed));
struct madt_iso {
    UINT8 type, length, bus, source;
    UINT32 gsi;
    UINT16 flags;
} __attribute__((packed));
struct madt_lapic_nmi {
    UINT8 type, length, uid;
    UINT16 flags;
    UINT8 lint;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_lapic) == 8 && sizeof(struct madt_ioapic) == 12 &&
                   sizeof(struct madt_iso) == 10 && sizeof(struct madt_lapic_nmi) == 6,
               "ACPI 5.2.12.2-5.2.12.7");

struct madt {
    struct acpi_header h;
    UINT32 lapic_address, flags;
    struct madt_lapic lapic[MAX_CPUS];
    struct madt_ioapic ioapic;
    struct madt_iso iso[2];
    struct madt_lapic_nmi nmi;
} __attribute__((packed));

/* Everything in one allocation, each table where its alignment wants it. */
struct tables {
    struct facs facs; /* 64-byte aligned: first */
    struct rsdp rsdp;
    struct xsdt xsdt;
    struct fadt fadt;
    struct madt madt;
    struct {
        struct acpi_header h;
        UINT8 aml[sizeof(dsdt_aml)];
    } __attribute__((packed)) dsdt;
} __attribute__((packed));

#define IOAPIC_BASE 0xfec00000u
#define LAPIC_BASE  0xfee00000u

static UINT8 checksum(const void *p, UINTN n)
{
    UINT8 sum = 0;
    for (const UINT8 *b = p; n--; b++)
        sum += *b;
    return (UINT8)-sum;
}

static void header(struct acpi_header *h, const char *sig, UINT32 len, UINT8 rev)
{
    CopyMem(h->signature, (void *)sig, 4);
    h->length = len;
    h->revision = rev;
    CopyMem(h->oem_id, "HVTEST", 6);
    CopyMem(h->oem_table_id, "HVLINUX ", 8);
    h->oem_revision = 1;
    CopyMem(&h->creator_id, "HVT ", 4);
    h->creator_revision = 1;
}

/* PCI configuration mechanism #1, bus 0. */
static UINT32 pci_read(UINT32 dev, UINT32 fn, UINT32 reg)
{
    outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (reg & 0xfc));
    return inl(0xcfc);
}

/*
 * The PIIX4 power-management function (8086:7113): its I/O base (PMBA,
 * config 0x40, enabled by PMREGMISC bit 0 at 0x80) and its interrupt line,
 * which Bochs uses for the SCI.
 */
static int find_piix4_pm(UINT16 *pmba, UINT8 *irq)
{
    for (UINT32 dev = 0; dev < 32; dev++)
        for (UINT32 fn = 0; fn < 8; fn++) {
            if (pci_read(dev, fn, 0) != 0x71138086u)
                continue;
            if (!(pci_read(dev, fn, 0x80) & 1))
                return -1;
            *pmba = (UINT16)(pci_read(dev, fn, 0x40) & 0xffc0);
            *irq = (UINT8)(pci_read(dev, fn, 0x3c) & 0xff);
            return 0;
        }
    return -1;
}

static UINT32 ioapic_read(UINT32 reg)
{
    volatile UINT32 *sel = (volatile UINT32 *)(UINTN)IOAPIC_BASE;
    volatile UINT32 *win = (volatile UINT32 *)(UINTN)(IOAPIC_BASE + 0x10);
    *sel = reg;
    return *win;
}

static int has_acpi(EFI_SYSTEM_TABLE *st)
{
    EFI_GUID g20 = ACPI_20_TABLE_GUID, g10 = ACPI_TABLE_GUID;
    for (UINTN i = 0; i < st->NumberOfTableEntries; i++) {
        EFI_GUID *g = &st->ConfigurationTable[i].VendorGuid;
        if (!CompareGuid(g, &g20) || !CompareGuid(g, &g10)) {
            Print(L"ACPITAB: firmware has ACPI tables at 0x%lx, nothing to do\n",
                  (UINT64)(UINTN)st->ConfigurationTable[i].VendorTable);
            return 1;
        }
    }
    return 0;
}

/* Is word one of the words of this image's command line (LoadOptions)? */
static BOOLEAN option(EFI_HANDLE image, EFI_SYSTEM_TABLE *st, const CHAR16 *word)
{
    EFI_GUID lip = LOADED_IMAGE_PROTOCOL;
    EFI_LOADED_IMAGE *li = NULL;
    if (st->BootServices->HandleProtocol(image, &lip, (VOID **)&li) != EFI_SUCCESS || !li ||
        !li->LoadOptions)
        return FALSE;
    const CHAR16 *o = li->LoadOptions;
    UINTN n = li->LoadOptionsSize / sizeof(CHAR16), len = StrLen(word);
    for (UINTN i = 0; i + len <= n; i++) {
        if ((i == 0 || o[i - 1] == L' ') && CompareMem(o + i, word, len * sizeof(CHAR16)) == 0 &&
            (i + len == n || o[i + len] == L' ' || o[i + len] == 0))
            return TRUE;
    }
    return FALSE;
}

/* SysV ABI: gnu-efi's crt0 calls efi_main(image, systab) in %rdi/%rsi. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
    InitializeLib(image, st);
    if (has_acpi(st))
        return EFI_SUCCESS;

    EFI_GUID mp_guid = AGENT_MP_SERVICES_GUID;
    struct mp_services *mp = NULL;
    UINTN count = 0, enabled = 0;
    if (st->BootServices->LocateProtocol(&mp_guid, NULL, (VOID **)&mp) != EFI_SUCCESS || !mp ||
        mp->get_number_of_processors(mp, &count, &enabled) != EFI_SUCCESS) {
        Print(L"ACPITAB: error: no EFI_MP_SERVICES_PROTOCOL\n");
        return EFI_UNSUPPORTED;
    }
    if (count > MAX_CPUS) {
        Print(L"ACPITAB: error: %lu CPUs, more than %d\n", (UINT64)count, MAX_CPUS);
        return EFI_UNSUPPORTED;
    }
    UINT16 pmba = 0;
    UINT8 sci = 0;
    if (find_piix4_pm(&pmba, &sci) != 0 || !pmba || !sci || sci > 15) {
        Print(L"ACPITAB: error: no enabled PIIX4 power management function on bus 0\n");
        return EFI_UNSUPPORTED;
    }

    /*
     * ACPI reclaim memory below 4 GiB: the OS keeps it until it has read
     * the tables, and the FADT's 32-bit pointers reach it.
     */
    EFI_PHYSICAL_ADDRESS at = 0xffffffffu;
    UINTN pages = (sizeof(struct tables) + 4095) / 4096;
    if (st->BootServices->AllocatePages(AllocateMaxAddress, EfiACPIReclaimMemory, pages, &at) !=
        EFI_SUCCESS) {
        Print(L"ACPITAB: error: no memory for the tables\n");
        return EFI_OUT_OF_RESOURCES;
    }
    struct tables *t = (struct tables *)(UINTN)at;
    SetMem(t, pages * 4096, 0);

    /* MADT: every CPU MP services reports, enabled ones marked usable. */
    struct madt *m = &t->madt;
    UINTN n = 0;
    for (UINTN i = 0; i < count; i++) {
        struct mp_processor_info info;
        if (mp->get_processor_info(mp, i, &info) != EFI_SUCCESS)
            continue;
        m->lapic[n] =
            (struct madt_lapic){0, sizeof(struct madt_lapic), (UINT8)n, (UINT8)info.processor_id,
                                (info.status_flag & MP_PROCESSOR_ENABLED) ? 1u : 0u};
        n++;
    }
    /* The entries after the CPUs are packed right behind the last one. */
    UINT8 *p = (UINT8 *)&m->lapic[n];
    UINT32 ver = ioapic_read(1);
    struct madt_ioapic io = {1, sizeof io,   (UINT8)((ioapic_read(0) >> 24) & 0xf),
                             0, IOAPIC_BASE, 0};
    CopyMem(p, &io, sizeof io);
    p += sizeof io;
    /* Bochs wires the PIT to IOAPIC pin 2 like a PC; the SCI is level, and
     * Bochs's IOAPIC inputs are active high (flags: polarity 01, trigger 11). */
    struct madt_iso iso0 = {2, sizeof iso0, 0, 0, 2, 0};
    struct madt_iso iso_sci = {2, sizeof iso_sci, 0, sci, sci, 0x000d};
    CopyMem(p, &iso0, sizeof iso0);
    p += sizeof iso0;
    CopyMem(p, &iso_sci, sizeof iso_sci);
    p += sizeof iso_sci;
    /* LINT1 of every CPU is the NMI input (0xff: all processors). */
    struct madt_lapic_nmi nmi = {4, sizeof nmi, 0xff, 0, 1};
    CopyMem(p, &nmi, sizeof nmi);
    p += sizeof nmi;
    m->lapic_address = LAPIC_BASE;
    m->flags = 1; /* PCAT_COMPAT: there are 8259s to mask */
    header(&m->h, "APIC", (UINT32)(p - (UINT8 *)m), 3);
    m->h.checksum = checksum(m, m->h.length);

    CopyMem(t->facs.signature, "FACS", 4);
    t->facs.length = sizeof t->facs;
    t->facs.version = 1;

    header(&t->dsdt.h, "DSDT", sizeof t->dsdt, 2);
    CopyMem(t->dsdt.aml, (void *)dsdt_aml, sizeof dsdt_aml);
    t->dsdt.h.checksum = checksum(&t->dsdt, sizeof t->dsdt);

    /* FADT: the PIIX4 blocks (PM1 event +0, PM1 control +4, timer +8, GPE0
     * +0xc); no SMI command port, so the OS takes the machine as being in
     * ACPI mode already; C2/C3 latencies above the limits mean "none". */
    struct fadt *f = &t->fadt;
    f->firmware_ctrl = (UINT32)(UINTN)&t->facs;
    f->dsdt = (UINT32)(UINTN)&t->dsdt;
    f->sci_int = sci;
    f->pm1a_evt_blk = pmba;
    f->pm1a_cnt_blk = pmba + 4u;
    f->pm_tmr_blk = pmba + 8u;
    f->gpe0_blk = pmba + 0xcu;
    f->pm1_evt_len = 4;
    f->pm1_cnt_len = 2;
    f->pm_tmr_len = 4;
    f->gpe0_blk_len = 4;
    f->p_lvl2_lat = 101;
    f->p_lvl3_lat = 1001;
    f->flags = 1u << 0 | 1u << 2 | 1u << 4 | 1u << 5; /* WBINVD, C1, no power/sleep buttons */
    /* RESET_REG_SUP: the reset register is the PIIX's reset control 0xcf9 (system I/O, byte
     * access), written 6 (full reset, as a real PIIX4 board's FADT says); Linux's reboot=acpi
     * takes this path (ACPI 6.5 4.8.3.6 Reset Register). */
    f->flags |= 1u << 10;
    static const UINT8 reset_gas[12] = {1, 8, 0, 1, 0xf9, 0x0c};
    CopyMem(f->reset_reg, (void *)reset_gas, sizeof reset_gas);
    f->reset_value = 6;
    /* `acpitab.efi resetmem`: the reset register in system memory instead, at
     * offset 0x40 of a reserved page, as hardware-reduced platforms may put it
     * (test/emu/power_scenarios.py, bochs-power-reset-mem).  Bochs has no such
     * register: a write there resets nothing; the test is the hypervisor's
     * interception. */
    UINT64 reset_mem = 0;
    if (option(image, st, L"resetmem")) {
        EFI_PHYSICAL_ADDRESS page = 0xffffffffu;
        if (st->BootServices->AllocatePages(AllocateMaxAddress, EfiReservedMemoryType, 1, &page) !=
            EFI_SUCCESS) {
            Print(L"ACPITAB: error: no page for the reset register\n");
            return EFI_OUT_OF_RESOURCES;
        }
        SetMem((void *)(UINTN)page, 4096, 0);
        reset_mem = page + 0x40;
        UINT8 gas[12] = {0, 8, 0, 1};
        CopyMem(gas + 4, &reset_mem, 8);
        CopyMem(f->reset_reg, gas, sizeof gas);
    }
    header(&f->h, "FACP", sizeof *f, 3);
    f->h.checksum = checksum(f, sizeof *f);

    header(&t->xsdt.h, "XSDT", sizeof(struct acpi_header) + 2 * sizeof(UINT64), 1);
    t->xsdt.entry[0] = (UINT64)(UINTN)f;
    t->xsdt.entry[1] = (UINT64)(UINTN)m;
    t->xsdt.h.checksum = checksum(&t->xsdt, t->xsdt.h.length);

    struct rsdp *r = &t->rsdp;
    CopyMem(r->signature, "RSD PTR ", 8);
    CopyMem(r->oem_id, "HVTEST", 6);
    r->revision = 2;
    r->length = sizeof *r;
    r->xsdt = (UINT64)(UINTN)&t->xsdt;
    r->checksum = checksum(r, 20);
    r->ext_checksum = checksum(r, sizeof *r);

    EFI_GUID g20 = ACPI_20_TABLE_GUID;
    EFI_STATUS s = st->BootServices->InstallConfigurationTable(&g20, r);
    if (s != EFI_SUCCESS) {
        Print(L"ACPITAB: error: InstallConfigurationTable: %r\n", s);
        return s;
    }
    Print(L"ACPITAB: RSDP at 0x%lx: MADT with %lu CPU(s), IOAPIC id %u (%u pins), "
          L"PM base 0x%x, SCI %u\n",
          (UINT64)(UINTN)r, (UINT64)n, (ioapic_read(0) >> 24) & 0xf, ((ver >> 16) & 0xff) + 1, pmba,
          sci);
    if (reset_mem)
        Print(L"ACPITAB: reset register in memory at 0x%lx (value %u)\n", reset_mem,
              f->reset_value);
    for (UINTN i = 0; i < n; i++)
        Print(L"ACPITAB: cpu %lu apic %u%s\n", (UINT64)i, m->lapic[i].apic_id,
              m->lapic[i].flags ? L"" : L" (disabled)");
    return EFI_SUCCESS;
}
