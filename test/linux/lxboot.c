/*
 * lxboot: a minimal EFI loader for the Linux test guest.
 *
 *   lxboot.efi KERNEL.lxk INITRD CMDLINE...
 *
 * Why it exists: Debian's kernel is an EFI application whose stub first
 * decompresses 66 MB of XZ; under Bochs that costs 100-150 s of host time
 * per boot, more than the whole rest of the boot to /init.  test/linux/
 * mklxk.py decompresses the kernel once on the host; this loader copies it
 * into place and enters it through the x86 64-bit boot protocol
 * (Documentation/x86/boot.rst, "64-bit Boot Protocol"), the way the
 * kernel's own decompressor hands over to vmlinux (arch/x86/kernel/
 * head_64.S startup_64 accepts "a 64bit bootloader").  The stub path stays
 * in use too (test/emu/linux_run.py runs both).
 *
 * What Linux gets from us, and what it does without:
 *  - the zero page (struct boot_params, Documentation/x86/zero-page.rst):
 *    the bzImage's setup header, command line, initrd, the e820 map made
 *    from the final UEFI memory map, and acpi_rsdp_addr from the
 *    configuration table (boot protocol 2.14);
 *  - no efi_info: Linux runs as on a BIOS machine (no EFI runtime
 *    services; power-off is ACPI S5 or the test's port 0x8900).
 *
 * It prints "LXBOOT: ..." lines; after ExitBootServices it cannot print,
 * so everything that can fail is checked before.
 */
#include <efi.h>
#include <efilib.h>

#include "x86.h"

/* Zero-page offsets (zero-page.rst) and setup-header offsets (boot.rst). */
#define BP_ACPI_RSDP_ADDR   0x070
#define BP_EXT_RAMDISK_IMG  0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES     0x1e8
#define BP_SETUP_HEADER     0x1f1
#define BP_VERSION          0x206
#define BP_TYPE_OF_LOADER   0x210
#define BP_RAMDISK_IMAGE    0x218
#define BP_RAMDISK_SIZE     0x21c
#define BP_CMD_LINE_PTR     0x228
#define BP_INITRD_ADDR_MAX  0x22c
#define BP_RELOCATABLE      0x234
#define BP_CMDLINE_SIZE     0x238
#define BP_EDD_MBR_SIG_BUF  0x290 /* the first zero-page field after the header */
#define BP_E820_TABLE       0x2d0
#define E820_MAX            128

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_NVS      4
#define E820_UNUSABLE 5
#define E820_PMEM     7

#define MIB (1024ull * 1024)

struct lxk_header {
    char magic[8];
    UINT32 header_size;
    UINT32 chunk_count;
    UINT64 base;
    UINT64 span;
    UINT64 entry;
    UINT64 align;
} __attribute__((packed));
_Static_assert(sizeof(struct lxk_header) == 48, "mklxk.py writes 48 bytes");

struct e820_entry {
    UINT64 addr;
    UINT64 size;
    UINT32 type;
} __attribute__((packed));
_Static_assert(sizeof(struct e820_entry) == 20, "zero-page.rst: e820_table");

/* The GDT the boot protocol asks for: __BOOT_CS = 0x10, __BOOT_DS = 0x18.
 * Accessed bits preset, so loading a selector never writes the table. */
static const UINT64 boot_gdt[4] __attribute__((aligned(16))) = {
    0,                     /* null */
    0,                     /* unused */
    0x00af9b000000ffffull, /* 0x10: 64-bit code, DPL 0 */
    0x00cf93000000ffffull, /* 0x18: data, 4 GiB, DPL 0 */
};

static struct {
    UINT16 limit;
    UINT64 base;
} __attribute__((packed)) boot_gdtr;

static EFI_BOOT_SERVICES *bs;

#define fail(...)                                                                                  \
    do {                                                                                           \
        Print(L"LXBOOT: error: " __VA_ARGS__);                                                     \
        return EFI_LOAD_ERROR;                                                                     \
    } while (0)

/*
 * After a failed ExitBootServices the firmware allows only GetMemoryMap and
 * ExitBootServices again (UEFI 2.10, 7.4), so no Print: the message goes
 * straight to COM1 (the port is polled, 0x3f8, as the firmware left it) and
 * the CPU stops - a clear end rather than a return into a half-dead firmware.
 */
static void __attribute__((noreturn)) die_after_exit(const char *msg)
{
    for (const char *c = msg; *c; c++) {
        for (int i = 0; i < 100000 && !(inb(0x3fd) & 0x20); i++)
            cpu_relax();
        outb(0x3f8, (uint8_t)*c);
    }
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void put8(UINT8 *bp, UINTN off, UINT8 v)
{
    bp[off] = v;
}

static void put32(UINT8 *bp, UINTN off, UINT32 v)
{
    CopyMem(bp + off, &v, sizeof v);
}

static UINT32 get32(const UINT8 *p, UINTN off)
{
    UINT32 v;
    CopyMem(&v, p + off, sizeof v);
    return v;
}

static UINT16 get16(const UINT8 *p, UINTN off)
{
    UINT16 v;
    CopyMem(&v, p + off, sizeof v);
    return v;
}

/* Reads a whole file of the loader's own volume into new pages of `type`
 * below `max` (inclusive). */
static EFI_STATUS read_file(EFI_FILE_HANDLE root, CHAR16 *path, EFI_MEMORY_TYPE type,
                            EFI_PHYSICAL_ADDRESS max, UINT8 **data, UINTN *size)
{
    EFI_FILE_HANDLE f;
    EFI_STATUS s = root->Open(root, &f, path, EFI_FILE_MODE_READ, 0);
    if (EFI_ERROR(s)) {
        Print(L"LXBOOT: error: cannot open %s: %r\n", path, s);
        return s;
    }
    EFI_FILE_INFO *info = LibFileInfo(f);
    if (!info) {
        f->Close(f);
        Print(L"LXBOOT: error: no file info for %s\n", path);
        return EFI_LOAD_ERROR;
    }
    UINTN n = info->FileSize;
    FreePool(info);
    EFI_PHYSICAL_ADDRESS at = max;
    s = bs->AllocatePages(AllocateMaxAddress, type, EFI_SIZE_TO_PAGES(n ? n : 1), &at);
    if (EFI_ERROR(s)) {
        f->Close(f);
        Print(L"LXBOOT: error: no memory for %s (%lu bytes): %r\n", path, (UINT64)n, s);
        return s;
    }
    UINTN got = n;
    s = f->Read(f, &got, (void *)(UINTN)at);
    f->Close(f);
    if (EFI_ERROR(s) || got != n) {
        Print(L"LXBOOT: error: reading %s: %r (%lu of %lu bytes)\n", path, s, (UINT64)got,
              (UINT64)n);
        return EFI_ERROR(s) ? s : EFI_LOAD_ERROR;
    }
    *data = (UINT8 *)(UINTN)at;
    *size = n;
    return EFI_SUCCESS;
}

#define PATH_MAX_CHARS 256

/* Copies the next space-separated word of the load options into w (a path:
 * '/' becomes a backslash); 0 if there is none or it is too long.  The
 * options need not be NUL-terminated, so every step is bounded by end. */
static int next_word(CHAR16 **p, CHAR16 *end, CHAR16 w[PATH_MAX_CHARS])
{
    while (*p < end && (**p == L' ' || **p == L'\t'))
        (*p)++;
    UINTN n = 0;
    while (*p < end && **p && **p != L' ' && **p != L'\t') {
        if (n + 1 >= PATH_MAX_CHARS)
            return 0;
        w[n++] = **p == L'/' ? L'\\' : **p;
        (*p)++;
    }
    w[n] = 0;
    return n > 0;
}

static UINT32 e820_type(UINT32 efi_type)
{
    switch (efi_type) {
    case EfiLoaderCode:
    case EfiLoaderData:
    case EfiBootServicesCode:
    case EfiBootServicesData:
    case EfiConventionalMemory:
        return E820_RAM;
    case EfiACPIReclaimMemory:
        return E820_ACPI;
    case EfiACPIMemoryNVS:
        return E820_NVS;
    case EfiUnusableMemory:
        return E820_UNUSABLE;
    case 14: /* EfiPersistentMemory (UEFI 2.5) */
        return E820_PMEM;
    default:
        /* Reserved (the hypervisor's region too), runtime services, MMIO. */
        return E820_RESERVED;
    }
}

/* The e820 table from a UEFI memory map, adjacent runs of one type merged
 * (EDK II sorts its map by address, UEFI does not promise it: unsorted, the
 * table is still right, only longer, and Linux sorts it).  -1 if over 128. */
static int build_e820(UINT8 *bp, const UINT8 *map, UINTN map_size, UINTN desc_size)
{
    struct e820_entry *e = (struct e820_entry *)(bp + BP_E820_TABLE);
    int n = 0;
    for (UINTN off = 0; off + desc_size <= map_size; off += desc_size) {
        const EFI_MEMORY_DESCRIPTOR *d = (const EFI_MEMORY_DESCRIPTOR *)(map + off);
        UINT32 t = e820_type(d->Type);
        UINT64 size = d->NumberOfPages * EFI_PAGE_SIZE;
        if (n && e[n - 1].type == t && e[n - 1].addr + e[n - 1].size == d->PhysicalStart) {
            e[n - 1].size += size;
            continue;
        }
        if (n == E820_MAX)
            return -1;
        e[n++] = (struct e820_entry){d->PhysicalStart, size, t};
    }
    put8(bp, BP_E820_ENTRIES, (UINT8)n);
    return n;
}

static void *acpi_rsdp(EFI_SYSTEM_TABLE *st)
{
    EFI_GUID g20 = ACPI_20_TABLE_GUID, g10 = ACPI_TABLE_GUID;
    void *v1 = NULL;
    for (UINTN i = 0; i < st->NumberOfTableEntries; i++) {
        EFI_CONFIGURATION_TABLE *t = &st->ConfigurationTable[i];
        if (!CompareGuid(&t->VendorGuid, &g20))
            return t->VendorTable;
        if (!CompareGuid(&t->VendorGuid, &g10))
            v1 = t->VendorTable;
    }
    return v1;
}

static void __attribute__((noreturn)) enter_linux(UINT64 entry, UINT8 *bp)
{
    boot_gdtr.limit = sizeof boot_gdt - 1;
    boot_gdtr.base = (UINT64)(UINTN)boot_gdt;
    /*
     * boot.rst, 64-bit boot protocol: long mode, paging on with the kernel,
     * zero page and command line identity-mapped (the firmware's tables
     * map all memory 1:1), interrupts off, CS = __BOOT_CS, the data
     * segments __BOOT_DS, %rsi = the zero page.
     */
    __asm__ volatile("cli\n\t"
                     "lgdt %[gdtr]\n\t"
                     "movl $0x18, %%eax\n\t"
                     "movl %%eax, %%ds\n\t"
                     "movl %%eax, %%es\n\t"
                     "movl %%eax, %%ss\n\t"
                     "movl %%eax, %%fs\n\t"
                     "movl %%eax, %%gs\n\t"
                     "pushq $0x10\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "lretq\n"
                     "1:\tjmp *%[entry]"
                     :
                     : [gdtr] "m"(boot_gdtr), [entry] "b"(entry), "S"(bp)
                     : "rax", "memory");
    __builtin_unreachable();
}

/* SysV ABI: gnu-efi's crt0 calls efi_main(image, systab) in %rdi/%rsi. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
    InitializeLib(image, st);
    bs = st->BootServices;

    EFI_LOADED_IMAGE *li;
    EFI_GUID lip = LOADED_IMAGE_PROTOCOL;
    if (EFI_ERROR(bs->HandleProtocol(image, &lip, (void **)&li)))
        fail(L"no loaded-image protocol\n");
    CHAR16 *p = li->LoadOptions, *end = p + li->LoadOptionsSize / sizeof(CHAR16);
    static CHAR16 w0[PATH_MAX_CHARS], kpath[PATH_MAX_CHARS], ipath[PATH_MAX_CHARS];
    if (!p || !next_word(&p, end, w0) || !next_word(&p, end, kpath) || !next_word(&p, end, ipath))
        fail(L"usage: lxboot.efi KERNEL.lxk INITRD CMDLINE... (paths under %d characters)\n",
             PATH_MAX_CHARS);
    while (p < end && *p == L' ')
        p++;

    EFI_FILE_HANDLE root = LibOpenRoot(li->DeviceHandle);
    if (!root)
        fail(L"cannot open the volume lxboot.efi was loaded from\n");

    UINT8 *k, *initrd;
    UINTN ksize, isize;
    if (EFI_ERROR(read_file(root, kpath, EfiLoaderData, ~0ull, &k, &ksize)))
        return EFI_LOAD_ERROR;
    struct lxk_header h;
    if (ksize < sizeof h + 4)
        fail(L"%s is too short for an lxk file\n", kpath);
    CopyMem(&h, k, sizeof h);
    if (CompareMem(h.magic, "HVLXK\0\0\1", 8) || h.header_size != sizeof h)
        fail(L"%s is not an lxk file (test/linux/mklxk.py makes them)\n", kpath);
    UINT32 setup_len = get32(k, sizeof h);
    UINTN pos = sizeof h + 4;
    if (setup_len < BP_CMDLINE_SIZE + 4 - BP_SETUP_HEADER ||
        setup_len > BP_EDD_MBR_SIG_BUF - BP_SETUP_HEADER || pos + setup_len > ksize)
        fail(L"%s: bad setup header length %u\n", kpath, setup_len);
    const UINT8 *setup = k + pos;
    pos += setup_len;
    if (h.align < 2 * MIB || (h.align & (h.align - 1)) || (h.base & (h.align - 1)) ||
        h.entry < h.base || h.entry >= h.base + h.span)
        fail(L"%s: bad layout (base 0x%lx span 0x%lx entry 0x%lx align 0x%lx)\n", kpath, h.base,
             h.span, h.entry, h.align);

    /* boot.rst: the initrd must end below initrd_addr_max. */
    UINT32 initrd_max = get32(setup, BP_INITRD_ADDR_MAX - BP_SETUP_HEADER);
    if (EFI_ERROR(read_file(root, ipath, EfiLoaderData, initrd_max, &initrd, &isize)))
        return EFI_LOAD_ERROR;
    root->Close(root);

    /*
     * The kernel's place: its link address if free, else any 2 MiB-aligned
     * one (startup_64 corrects its page tables for the difference).
     * EfiLoaderCode because OVMF maps EfiLoaderData no-execute.
     */
    UINTN kpages = EFI_SIZE_TO_PAGES(h.span);
    EFI_PHYSICAL_ADDRESS base = h.base;
    if (EFI_ERROR(bs->AllocatePages(AllocateAddress, EfiLoaderCode, kpages, &base))) {
        EFI_PHYSICAL_ADDRESS any = 0xffffffffull;
        UINTN extra = EFI_SIZE_TO_PAGES(h.align);
        if (EFI_ERROR(bs->AllocatePages(AllocateMaxAddress, EfiLoaderCode, kpages + extra, &any)))
            fail(L"no room for the kernel (%lu MiB)\n", h.span / MIB);
        base = (any + h.align - 1) & ~(h.align - 1);
        /* Kconfig RELOCATABLE: PHYSICAL_START is the lowest address the
         * kernel may run at; and only a relocatable kernel may move. */
        if (!setup[BP_RELOCATABLE - BP_SETUP_HEADER])
            fail(L"0x%lx is taken and the kernel is not relocatable\n", h.base);
        if (base < h.base)
            fail(L"0x%lx is taken and the only room (0x%lx) is below it\n", h.base, base);
        Print(L"LXBOOT: 0x%lx is taken; kernel at 0x%lx instead\n", h.base, base);
    }
    /* The firmware's SetMem/CopyMem use string instructions, which Bochs
     * runs far faster than gnu-efi's byte loops (28 s for this copy). */
    bs->SetMem((void *)(UINTN)base, h.span, 0);
    UINT32 nchunks = h.chunk_count;
    for (UINT32 i = 0; i < nchunks; i++) {
        UINT64 off, len;
        if (pos + 16 > ksize)
            fail(L"%s: chunk %u header past the end\n", kpath, i);
        CopyMem(&off, k + pos, 8);
        CopyMem(&len, k + pos + 8, 8);
        pos += 16;
        if (len > ksize - pos || off > h.span || len > h.span - off)
            fail(L"%s: chunk %u (0x%lx+0x%lx) outside the file or the span\n", kpath, i, off, len);
        bs->CopyMem((void *)(UINTN)(base + off), k + pos, len);
        pos += len;
    }
    if (pos != ksize)
        fail(L"%s: %lu bytes after the last chunk\n", kpath, (UINT64)(ksize - pos));

    /* The zero page and the command line, below 4 GiB for the 32-bit fields. */
    EFI_PHYSICAL_ADDRESS bpa = 0xffffffffull;
    if (EFI_ERROR(bs->AllocatePages(AllocateMaxAddress, EfiLoaderData, 2, &bpa)))
        fail(L"no memory for the zero page\n");
    UINT8 *bp = (UINT8 *)(UINTN)bpa;
    char *cmdline = (char *)bp + 4096;
    SetMem(bp, 8192, 0);
    CopyMem(bp + BP_SETUP_HEADER, setup, setup_len);
    if (get16(bp, BP_VERSION) < 0x020e)
        fail(L"boot protocol %x < 2.14 has no acpi_rsdp_addr\n", get16(bp, BP_VERSION));
    UINT32 cmax = get32(bp, BP_CMDLINE_SIZE);
    UINTN ci = 0;
    for (; p < end && *p; p++, ci++) {
        if (ci >= cmax || ci >= 4095)
            fail(L"command line longer than %u bytes\n", cmax < 4095 ? cmax : 4095);
        if (*p > 0x7e || *p < 0x20)
            fail(L"command line has a character outside printable ASCII\n");
        cmdline[ci] = (char)*p;
    }
    cmdline[ci] = 0;
    UINT64 cl = (UINT64)(UINTN)cmdline, rd = (UINT64)(UINTN)initrd;
    put8(bp, BP_TYPE_OF_LOADER, 0xff); /* boot.rst: "undefined" loader */
    put32(bp, BP_CMD_LINE_PTR, (UINT32)cl);
    put32(bp, BP_EXT_CMD_LINE_PTR, (UINT32)(cl >> 32));
    put32(bp, BP_RAMDISK_IMAGE, (UINT32)rd);
    put32(bp, BP_EXT_RAMDISK_IMG, (UINT32)(rd >> 32));
    put32(bp, BP_RAMDISK_SIZE, (UINT32)isize);
    put32(bp, BP_EXT_RAMDISK_SIZE, (UINT32)((UINT64)isize >> 32));
    void *rsdp = acpi_rsdp(st);
    UINT64 rsdp_addr = (UINT64)(UINTN)rsdp;
    CopyMem(bp + BP_ACPI_RSDP_ADDR, &rsdp_addr, 8);
    if (!rsdp)
        Print(L"LXBOOT: warning: the firmware has no ACPI tables: Linux will see one CPU and "
              L"cannot power off (under Bochs run acpitab.efi first)\n");
    UINT64 entry = h.entry - h.base + base;
    Print(L"LXBOOT: kernel 0x%lx (%lu MiB, entry 0x%lx), initrd 0x%lx (%lu KiB), ACPI RSDP "
          L"0x%lx\n",
          base, h.span / MIB, entry, rd, (UINT64)isize / 1024, rsdp_addr);
    Print(L"LXBOOT: command line: %a\n", cmdline);

    /*
     * The final memory map becomes the e820 table; ExitBootServices wants
     * the key of the latest map, and a failure means the map changed (an
     * event allocated), so read it again.  Nothing may allocate or print
     * between the last GetMemoryMap and ExitBootServices.
     */
    UINTN map_cap = 0, key, dsize;
    UINT32 dver;
    UINTN msize = 0;
    bs->GetMemoryMap(&msize, NULL, &key, &dsize, &dver);
    if (dsize < sizeof(EFI_MEMORY_DESCRIPTOR))
        fail(L"the firmware's memory descriptors are %lu bytes\n", (UINT64)dsize);
    map_cap = msize + 64 * dsize;
    UINT8 *map = AllocatePool(map_cap);
    if (!map)
        fail(L"no memory for the memory map\n");
    Print(L"LXBOOT: entering Linux\n");
    for (int tries = 0; tries < 8; tries++) {
        msize = map_cap;
        if (EFI_ERROR(
                bs->GetMemoryMap(&msize, (EFI_MEMORY_DESCRIPTOR *)map, &key, &dsize, &dver))) {
            if (!tries)
                fail(L"GetMemoryMap failed\n");
            die_after_exit("LXBOOT: error: GetMemoryMap failed after ExitBootServices did\r\n");
        }
        if (build_e820(bp, map, msize, dsize) < 0) {
            if (!tries)
                fail(L"more than %d e820 ranges\n", E820_MAX);
            die_after_exit("LXBOOT: error: more than 128 e820 ranges\r\n");
        }
        if (!EFI_ERROR(bs->ExitBootServices(image, key)))
            enter_linux(entry, bp);
    }
    die_after_exit("LXBOOT: error: ExitBootServices kept failing\r\n");
}
