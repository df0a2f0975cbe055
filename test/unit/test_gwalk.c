/*
 * Unit tests of vmx/gwalk.c: guest-linear to guest-physical in every paging
 * mode, over a fake guest memory built in the test; and the guest-RAM-only
 * reader root mode uses (gwalk_read_ram, gwalk_read_linear over a fake memory
 * map, core/boot_info.c bi_guest_ram): a CR3 above RAM, a table in MMIO or in
 * the hypervisor's region, a copy that straddles into either, are refused
 * without a read (ASan would report one outside the buffer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmx/gwalk.h"
#include "vmx/insn.h"

#define MEM (4u << 20)
static uint8_t mem[MEM];

static int rd(void *ctx, uint64_t gpa, uint64_t *val)
{
    (void)ctx;
    if (gpa + 8 > MEM)
        return -1;
    memcpy(val, mem + gpa, 8);
    return 0;
}

static void put64(uint64_t a, uint64_t v)
{
    memcpy(mem + a, &v, 8);
}

static void put32(uint64_t a, uint32_t v)
{
    memcpy(mem + a, &v, 4);
}

#define CR0_PG  (1ull << 31)
#define CR0_PE  1ull
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define LMA     (1ull << 10)

static void no_paging(void **st)
{
    (void)st;
    struct gwalk_regs r = {CR0_PE, 0, 0, 0};
    uint64_t gpa;
    assert_int_equal(gwalk(&r, 0x123456789ull, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x23456789ull);
}

static void four_level(void **st)
{
    (void)st;
    memset(mem, 0, MEM);
    /* PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000. */
    uint64_t gla = 0xffff800000201234ull; /* PML4 256, PDPT 0, PD 1, PT 1 */
    put64(0x1000 + 256 * 8, 0x2000 | 3);
    put64(0x2000 + 0 * 8, 0x3000 | 3);
    put64(0x3000 + 1 * 8, 0x4000 | 3);
    put64(0x4000 + 1 * 8, 0x77000 | 3);
    struct gwalk_regs r = {CR0_PG | CR0_PE, 0x1000, CR4_PAE, LMA | (1ull << 8)};
    uint64_t gpa;
    assert_int_equal(gwalk(&r, gla, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x77234ull);
    /* a 2 MiB page at PD index 2 */
    put64(0x3000 + 2 * 8, 0x200000 | 0x83);
    assert_int_equal(gwalk(&r, 0xffff800000412345ull, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x212345ull);
    /* a 1 GiB page at PDPT index 1 */
    put64(0x2000 + 1 * 8, 0x40000000 | 0x83);
    assert_int_equal(gwalk(&r, 0xffff800040000010ull, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x40000010ull);
    /* not present */
    assert_int_equal(gwalk(&r, 0x1000, rd, NULL, &gpa), GWALK_NOT_PRESENT);
    /* 5-level paging is refused, not misread */
    r.cr4 |= 1ull << 12;
    assert_int_equal(gwalk(&r, gla, rd, NULL, &gpa), GWALK_UNSUPPORTED);
}

static void pae(void **st)
{
    (void)st;
    memset(mem, 0, MEM);
    put64(0x1000 + 3 * 8, 0x2000 | 1); /* PDPTE 3 */
    put64(0x2000 + 5 * 8, 0x3000 | 3);
    put64(0x3000 + 7 * 8, 0x9000 | 3);
    struct gwalk_regs r = {CR0_PG | CR0_PE, 0x1000, CR4_PAE, 0};
    uint64_t gpa;
    uint64_t gla = (3ull << 30) | (5ull << 21) | (7ull << 12) | 0xabc;
    assert_int_equal(gwalk(&r, gla, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x9abcull);
}

static void legacy_32bit(void **st)
{
    (void)st;
    memset(mem, 0, MEM);
    put32(0x1000 + 1 * 4, 0x2000 | 3);        /* PDE 1 */
    put32(0x2000 + 2 * 4, 0x5000 | 3);        /* PTE 2 */
    put32(0x1000 + 3 * 4, 0x00c00000 | 0x83); /* PDE 3: 4 MiB page at 12 MiB */
    struct gwalk_regs r = {CR0_PG | CR0_PE, 0x1000, CR4_PSE, 0};
    uint64_t gpa;
    assert_int_equal(gwalk(&r, (1u << 22) | (2u << 12) | 0x10, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0x5010ull);
    assert_int_equal(gwalk(&r, (3u << 22) | 0x12345, rd, NULL, &gpa), GWALK_OK);
    assert_true(gpa == 0xc12345ull);
    /* without CR4.PSE the PS bit is ignored and the entry is a table pointer */
    r.cr4 = 0;
    assert_int_equal(gwalk(&r, (3u << 22) | 0x12345, rd, NULL, &gpa), GWALK_BAD_MEMORY);
}

/* ---- guest RAM only ------------------------------------------------------------------ */

/* The fake machine's map: RAM 0-3 MiB, the hypervisor's region 3 MiB + 64 KiB, RAM to 3.5 MiB
 * (boot-services data), MMIO 3.5 MiB + 64 KiB, a hole, reserved 3.75-4 MiB, nothing above. */
#define REGION   0x300000ull
#define RAM2     0x310000ull
#define MMIO     0x380000ull
#define RESERVED 0x3c0000ull
static struct boot_info bi;

static struct gwalk_ram ram_setup(void)
{
    memset(&bi, 0, sizeof(bi));
    bi.region_base = REGION;
    bi.region_size = 0x10000;
    bi.mem[0] = (struct bi_mem_range){0, REGION, BI_EFI_CONVENTIONAL, 0, 0};
    bi.mem[1] = (struct bi_mem_range){REGION, 0x10000, BI_HV_REGION, 0, 0};
    bi.mem[2] = (struct bi_mem_range){RAM2, MMIO - RAM2, BI_EFI_BS_DATA, 0, 0};
    bi.mem[3] = (struct bi_mem_range){MMIO, 0x10000, BI_EFI_MMIO, 0, 0};
    bi.mem[4] = (struct bi_mem_range){RESERVED, MEM - RESERVED, BI_EFI_RESERVED, 0, 0};
    bi.nmem = 5;
    return (struct gwalk_ram){&bi, (uintptr_t)mem};
}

/* 4-level tables at 0x1000.. mapping gla 0x200000-0x201fff onto two pages given by the test. */
static struct gwalk_regs four_level_map(uint64_t page0, uint64_t page1)
{
    memset(mem, 0, MEM);
    put64(0x1000, 0x2000 | 3);
    put64(0x2000, 0x3000 | 3);
    put64(0x3000 + 1 * 8, 0x4000 | 3); /* PD 1: gla 0x200000 */
    put64(0x4000 + 0 * 8, page0 | 3);
    put64(0x4000 + 1 * 8, page1 | 3);
    return (struct gwalk_regs){CR0_PG | CR0_PE, 0x1000, CR4_PAE, LMA};
}

static void guest_ram_ranges(void **st)
{
    (void)st;
    ram_setup();
    assert_true(bi_guest_ram(&bi, 0, 8));
    assert_false(bi_guest_ram(&bi, RAM2 - 0x1000 - 4, 8)); /* inside the region */
    assert_true(bi_guest_ram(&bi, REGION - 8, 8));
    assert_false(bi_guest_ram(&bi, REGION - 4, 8)); /* straddles into the region */
    assert_false(bi_guest_ram(&bi, REGION + 0x100, 8));
    assert_true(bi_guest_ram(&bi, RAM2, 0x1000));
    assert_false(bi_guest_ram(&bi, MMIO - 4, 8)); /* straddles into MMIO */
    assert_false(bi_guest_ram(&bi, MMIO + 8, 8));
    assert_false(bi_guest_ram(&bi, MMIO + 0x10000, 8)); /* the hole */
    assert_false(bi_guest_ram(&bi, RESERVED, 8));       /* reserved: may be a device */
    assert_false(bi_guest_ram(&bi, MEM, 8));            /* above the map */
    assert_false(bi_guest_ram(&bi, ~0ull - 3, 8));      /* wraps */
    assert_false(bi_guest_ram(&bi, 0x1000, 0));
    /* two neighbouring RAM ranges of different types are one stretch of RAM */
    bi.mem[2].base = REGION + 0x10000;
    bi.mem[1] = (struct bi_mem_range){REGION, 0x10000, BI_EFI_LOADER_DATA, 0, 0};
    bi.region_base = 0x3f0000000ull;
    assert_true(bi_guest_ram(&bi, REGION + 0x10000 - 4, 8));
}

static void cr3_above_ram(void **st)
{
    (void)st;
    struct gwalk_ram ram = ram_setup();
    struct gwalk_regs r = four_level_map(0x77000, 0x78000);
    uint64_t gpa;
    assert_int_equal(gwalk(&r, 0x200010, gwalk_read_ram, &ram, &gpa), GWALK_OK);
    assert_true(gpa == 0x77010ull);
    r.cr3 = 64ull << 30; /* 64 GiB: far above the map (and the test's buffer) */
    assert_int_equal(gwalk(&r, 0x200010, gwalk_read_ram, &ram, &gpa), GWALK_BAD_MEMORY);
    r.cr3 = MEM; /* just above the map */
    assert_int_equal(gwalk(&r, 0x200010, gwalk_read_ram, &ram, &gpa), GWALK_BAD_MEMORY);
    /* the same for PAE's PDPTEs and 32-bit paging's page directory */
    struct gwalk_regs pae_r = {CR0_PG | CR0_PE, MEM + 0x20, CR4_PAE, 0};
    assert_int_equal(gwalk(&pae_r, 0x1000, gwalk_read_ram, &ram, &gpa), GWALK_BAD_MEMORY);
    struct gwalk_regs legacy = {CR0_PG | CR0_PE, 0xfee00000u, 0, 0};
    assert_int_equal(gwalk(&legacy, 0x1000, gwalk_read_ram, &ram, &gpa), GWALK_BAD_MEMORY);
    uint8_t buf[15];
    assert_int_equal(gwalk_read_linear(&r, &ram, 0x200010, buf, sizeof(buf)), GWALK_BAD_MEMORY);
}

static void table_in_mmio(void **st)
{
    (void)st;
    struct gwalk_ram ram = ram_setup();
    struct gwalk_regs r = four_level_map(0x77000, 0x78000);
    uint64_t gpa;
    put64(0x3000 + 1 * 8, MMIO | 3); /* the page table the PDE points at is a device */
    assert_int_equal(gwalk(&r, 0x200010, gwalk_read_ram, &ram, &gpa), GWALK_BAD_MEMORY);
    put64(0x3000 + 1 * 8, (MMIO + 0x10000) | 3); /* the hole after it */
    assert_int_equal(gwalk(&r, 0x200010, gwalk_read_ram, &ram, &gpa), GWALK_BAD_MEMORY);
    put64(0x2000, RESERVED | 3); /* a page directory in a reserved range */
    assert_int_equal(gwalk(&r, 0x200010, gwalk_read_ram, &ram, &gpa), GWALK_BAD_MEMORY);
    /* a leaf onto MMIO translates (the guest may map a device), but its bytes are not read */
    r = four_level_map(MMIO, 0x78000);
    assert_int_equal(gwalk(&r, 0x200010, gwalk_read_ram, &ram, &gpa), GWALK_OK);
    assert_true(gpa == MMIO + 0x10);
    uint8_t buf[15];
    assert_int_equal(gwalk_read_linear(&r, &ram, 0x200010, buf, sizeof(buf)), GWALK_BAD_MEMORY);
}

static void table_in_region(void **st)
{
    (void)st;
    struct gwalk_ram ram = ram_setup();
    struct gwalk_regs r = four_level_map(0x77000, 0x78000);
    uint64_t gpa;
    put64(0x1000, (REGION + 0x2000) | 3); /* PML4E -> a page of the hypervisor's region */
    assert_int_equal(gwalk(&r, 0x200010, gwalk_read_ram, &ram, &gpa), GWALK_BAD_MEMORY);
    r.cr3 = REGION; /* CR3 itself in the region */
    assert_int_equal(gwalk(&r, 0x200010, gwalk_read_ram, &ram, &gpa), GWALK_BAD_MEMORY);
    uint8_t buf[15];
    r = four_level_map(REGION + 0x1000, 0x78000); /* data in the region */
    assert_int_equal(gwalk_read_linear(&r, &ram, 0x200010, buf, sizeof(buf)), GWALK_BAD_MEMORY);
}

static void copy_straddles(void **st)
{
    (void)st;
    struct gwalk_ram ram = ram_setup();
    uint8_t buf[15];
    /* both pages RAM: 5 bytes from the end of one, 10 from the start of the other */
    struct gwalk_regs r = four_level_map(0x77000, 0x90000);
    memset(mem + 0x77ffb, 0xaa, 5);
    memset(mem + 0x90000, 0xbb, 10);
    assert_int_equal(gwalk_read_linear(&r, &ram, 0x200ffb, buf, sizeof(buf)), GWALK_OK);
    assert_true(buf[0] == 0xaa && buf[4] == 0xaa && buf[5] == 0xbb && buf[14] == 0xbb);
    /* the second page into MMIO, the region or above RAM: the whole copy fails */
    uint64_t bad[] = {MMIO, REGION, MEM, 64ull << 30};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = four_level_map(0x77000, bad[i]);
        assert_int_equal(gwalk_read_linear(&r, &ram, 0x200ffb, buf, sizeof(buf)), GWALK_BAD_MEMORY);
    }
    /* a page whose PTE is not present: that error, not a read */
    r = four_level_map(0x77000, 0x90000);
    put64(0x4000 + 1 * 8, 0);
    assert_int_equal(gwalk_read_linear(&r, &ram, 0x200ffb, buf, sizeof(buf)), GWALK_NOT_PRESENT);
    /* an entry address that is not 8-aligned is never read */
    uint64_t v;
    assert_int_equal(gwalk_read_ram(&ram, 0x1004, &v), -1);
}

/* An instruction in the last bytes of a page before MMIO or an unmapped page:
 * the 15-byte fetch root mode made failed (and the vCPU halted); the fetch
 * takes what the page holds and the next page only when it is RAM, and the
 * decoder says whether that is the whole instruction. */
static void insn_at_page_end(void **st)
{
    (void)st;
    struct gwalk_ram ram = ram_setup();
    uint8_t buf[15];
    struct insn_store s;
    static const uint8_t mov[] = {0x89, 0x18}; /* mov [rax], ebx */
    uint64_t bad[] = {MMIO, REGION, MEM};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gwalk_regs r = four_level_map(0x77000, bad[i]);
        memcpy(mem + 0x77ffe, mov, sizeof(mov));
        /* the fixed-size fetch fails */
        assert_int_equal(gwalk_read_linear(&r, &ram, 0x200ffe, buf, sizeof(buf)), GWALK_BAD_MEMORY);
        memset(buf, 0, sizeof(buf));
        int n = gwalk_fetch(&r, &ram, 0x200ffe, buf, sizeof(buf));
        assert_int_equal(n, 2);
        assert_int_equal(insn_decode_store(buf, (size_t)n, INSN_64, &s), 0);
        assert_int_equal(s.len, 2);
        assert_int_equal(s.size, 4);
        /* a longer one cut by the page end cannot be completed: no decode, no read past it */
        static const uint8_t movimm[] = {0xc7, 0x00}; /* mov dword [rax], imm32: 4 bytes missing */
        memcpy(mem + 0x77ffe, movimm, sizeof(movimm));
        n = gwalk_fetch(&r, &ram, 0x200ffe, buf, sizeof(buf));
        assert_int_equal(n, 2);
        assert_int_equal(insn_decode_store(buf, (size_t)n, INSN_64, &s), -1);
    }
    /* the next page not present: the same */
    struct gwalk_regs r = four_level_map(0x77000, 0x90000);
    put64(0x4000 + 1 * 8, 0);
    memcpy(mem + 0x77ffe, mov, sizeof(mov));
    assert_int_equal(gwalk_read_linear(&r, &ram, 0x200ffe, buf, sizeof(buf)), GWALK_NOT_PRESENT);
    int n = gwalk_fetch(&r, &ram, 0x200ffe, buf, sizeof(buf));
    assert_int_equal(n, 2);
    assert_int_equal(insn_decode_store(buf, (size_t)n, INSN_64, &s), 0);
    /* both pages RAM: the instruction continues into the next page */
    r = four_level_map(0x77000, 0x90000);
    static const uint8_t movimm[] = {0xc7, 0x00, 0x78, 0x56, 0x34, 0x12};
    memcpy(mem + 0x77ffe, movimm, 2);
    memcpy(mem + 0x90000, movimm + 2, 4);
    n = gwalk_fetch(&r, &ram, 0x200ffe, buf, sizeof(buf));
    assert_int_equal(n, 15);
    assert_int_equal(insn_decode_store(buf, (size_t)n, INSN_64, &s), 0);
    assert_true(s.len == 6 && s.src == INSN_SRC_IMM && s.imm == 0x12345678);
    /* in the middle of a page: 15 bytes of that page, the next one never walked */
    r = four_level_map(0x77000, MMIO);
    assert_int_equal(gwalk_fetch(&r, &ram, 0x200100, buf, sizeof(buf)), 15);
    /* the instruction's own page not RAM: the walk's error */
    r = four_level_map(MMIO, 0x90000);
    assert_int_equal(gwalk_fetch(&r, &ram, 0x200ffe, buf, sizeof(buf)), GWALK_BAD_MEMORY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_paging),
        cmocka_unit_test(four_level),
        cmocka_unit_test(pae),
        cmocka_unit_test(legacy_32bit),
        cmocka_unit_test(guest_ram_ranges),
        cmocka_unit_test(cr3_above_ram),
        cmocka_unit_test(table_in_mmio),
        cmocka_unit_test(table_in_region),
        cmocka_unit_test(copy_straddles),
        cmocka_unit_test(insn_at_page_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
