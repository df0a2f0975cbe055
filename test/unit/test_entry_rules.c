/*
 * Unit tests of vmx/entry_rules.c: every check on a value root mode applies for the introspector
 * or the guest, each with a value that passes and one that is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmx/entry_rules.h"
#include "x86_arch.h"

#define CR0_WP    (1ull << 16)
#define CR0_NW    (1ull << 29)
#define CR0_CD    (1ull << 30)
#define CR4_PCIDE (1ull << 17)
#define CR4_CET   (1ull << 23)

/* A 64-bit guest with paging, on a CPU whose fixed-1 masks allow CR0's 32 bits and CR4 to bit 23.
 */
static struct entry_state long_mode(void)
{
    return (struct entry_state){.cr0 = CR0_PE | CR0_PG | CR0_WP | (1ull << 4),
                                .cr4 = CR4_PAE,
                                .efer = EFER_LME | EFER_LMA,
                                .ia32e = true,
                                .cs_l = true,
                                .cs_limit = 0xffffffffu,
                                .cr0_fixed1 = 0xffffffffull,
                                .cr4_fixed1 = 0xffffffull,
                                .phys_bits = 39};
}

static struct entry_state real_mode(void)
{
    struct entry_state s = long_mode();
    s.cr0 = 0x10;
    s.cr4 = 0;
    s.efer = 0;
    s.ia32e = s.cs_l = false;
    s.cs_limit = 0xffff;
    return s;
}

static void canonical(void **st)
{
    (void)st;
    assert_true(entry_canonical(0x00007fffffffffffull, false));
    assert_true(entry_canonical(0xffff800000000000ull, false));
    assert_false(entry_canonical(0x0000800000000000ull, false));
    assert_true(entry_canonical(0x0000800000000000ull, true));
    assert_false(entry_canonical(0x0100000000000000ull, true));
}

static void rip(void **st)
{
    (void)st;
    struct entry_state s = long_mode();
    assert_null(entry_check_rip(&s, 0xffffffff81000000ull));
    assert_non_null(entry_check_rip(&s, 0x8000000000000000ull)); /* not canonical */
    s.cr4 |= CR4_LA57;
    assert_null(entry_check_rip(&s, 0x00ff000000000000ull));
    assert_non_null(entry_check_rip(&s, 0x0100000000000000ull));
    /* compatibility mode: 32 bits */
    s = long_mode();
    s.cs_l = false;
    assert_null(entry_check_rip(&s, 0xfffff000ull));
    assert_non_null(entry_check_rip(&s, 0x100000000ull));
    /* real mode: within the CS limit */
    s = real_mode();
    assert_null(entry_check_rip(&s, 0xfff0));
    assert_non_null(entry_check_rip(&s, 0x10000));
}

static void rflags(void **st)
{
    (void)st;
    struct entry_state s = long_mode();
    assert_null(entry_check_rflags(&s, 0x246));
    assert_non_null(entry_check_rflags(&s, 0x244));            /* bit 1 clear */
    assert_non_null(entry_check_rflags(&s, 0x246 | 1u << 3));  /* reserved 3 */
    assert_non_null(entry_check_rflags(&s, 0x246 | 1u << 5));  /* reserved 5 */
    assert_non_null(entry_check_rflags(&s, 0x246 | 1u << 15)); /* reserved 15 */
    assert_non_null(entry_check_rflags(&s, 0x246 | 1ull << 22));
    assert_non_null(entry_check_rflags(&s, 0x246 | 1ull << 63));
    assert_null(entry_check_rflags(&s, 0x246 | 1ull << 21)); /* ID: a real flag */
    /* VM: only in protected mode outside IA-32e */
    assert_non_null(entry_check_rflags(&s, 0x20202));
    s.ia32e = s.cs_l = false;
    s.efer = 0;
    assert_null(entry_check_rflags(&s, 0x20202));
    s = real_mode();
    assert_non_null(entry_check_rflags(&s, 0x20202));
}

static void cr0(void **st)
{
    (void)st;
    struct entry_state s = long_mode();
    assert_null(entry_check_cr0(&s, s.cr0 | CR0_CD));
    assert_non_null(entry_check_cr0(&s, s.cr0 | 1ull << 32)); /* not in CR0_FIXED1 */
    s.cr0_fixed1 = 0xffffffffull & ~(1ull << 18);
    assert_non_null(entry_check_cr0(&s, s.cr0 | 1ull << 18));
    s = real_mode();
    assert_null(entry_check_cr0(&s, CR0_PE | 0x10));
    assert_null(entry_check_cr0(&s, CR0_PE | CR0_PG | 0x10));
    assert_non_null(entry_check_cr0(&s, CR0_PG | 0x10)); /* PG without PE */
    assert_null(entry_check_cr0(&s, 0x10 | CR0_CD | CR0_NW));
    assert_non_null(entry_check_cr0(&s, 0x10 | CR0_NW)); /* NW without CD */
    /* turning paging on with LME: PAE first */
    s.cr0 = CR0_PE | 0x10;
    s.efer = EFER_LME;
    assert_non_null(entry_check_cr0(&s, s.cr0 | CR0_PG));
    s.cr4 = CR4_PAE;
    assert_null(entry_check_cr0(&s, s.cr0 | CR0_PG));
    /* paging off in 64-bit code */
    s = long_mode();
    assert_non_null(entry_check_cr0(&s, s.cr0 & ~CR0_PG));
    s.cs_l = false; /* compatibility mode: allowed (leaves IA-32e mode) */
    assert_null(entry_check_cr0(&s, s.cr0 & ~CR0_PG));
    /* WP with CET */
    s = long_mode();
    s.cr4 |= CR4_CET;
    assert_non_null(entry_check_cr0(&s, s.cr0 & ~CR0_WP));
    s.cr4 &= ~CR4_CET;
    assert_null(entry_check_cr0(&s, s.cr0 & ~CR0_WP));
}

static void cr3(void **st)
{
    (void)st;
    struct entry_state s = long_mode();
    assert_null(entry_check_cr3(&s, 0x7ffffff000ull));
    assert_null(entry_check_cr3(&s, 0x1000 | 1ull << 63)); /* no-flush hint */
    assert_non_null(entry_check_cr3(&s, 1ull << 39));      /* beyond MAXPHYADDR 39 */
}

static void cr4(void **st)
{
    (void)st;
    struct entry_state s = long_mode();
    assert_null(entry_check_cr4(&s, CR4_PAE | CR4_PSE));
    assert_non_null(entry_check_cr4(&s, CR4_PAE | CR4_VMXE));
    assert_non_null(entry_check_cr4(&s, CR4_PAE | 1ull << 24)); /* not in CR4_FIXED1 */
    assert_non_null(entry_check_cr4(&s, CR4_PSE));              /* PAE off in IA-32e mode */
    assert_null(entry_check_cr4(&s, CR4_PAE | CR4_PCIDE));
    assert_non_null(entry_check_cr4(&s, CR4_PAE | CR4_LA57)); /* LA57 flipped in IA-32e */
    assert_null(entry_check_cr4(&s, CR4_PAE | CR4_CET));      /* WP is set */
    s.cr0 &= ~CR0_WP;
    assert_non_null(entry_check_cr4(&s, CR4_PAE | CR4_CET));
    s = real_mode();
    assert_null(entry_check_cr4(&s, CR4_PSE | CR4_LA57));
    assert_non_null(entry_check_cr4(&s, CR4_PCIDE)); /* PCIDE outside IA-32e mode */
}

static void msrs(void **st)
{
    (void)st;
    struct entry_state s = long_mode();
    assert_null(entry_check_msr(&s, MSR_IA32_EFER, EFER_LME | EFER_LMA | 1 | 1ull << 11));
    assert_non_null(entry_check_msr(&s, MSR_IA32_EFER, EFER_LME | EFER_LMA | 1ull << 9));
    assert_non_null(entry_check_msr(&s, MSR_IA32_EFER, EFER_LMA)); /* LME off, paging on */
    s = real_mode();
    assert_null(entry_check_msr(&s, MSR_IA32_EFER, EFER_LME)); /* paging off: LME may change */
    s = long_mode();
    uint32_t addr_msrs[] = {MSR_IA32_FS_BASE,     MSR_IA32_GS_BASE, MSR_IA32_KERNEL_GS_BASE,
                            MSR_IA32_LSTAR,       MSR_IA32_CSTAR,   MSR_IA32_SYSENTER_ESP,
                            MSR_IA32_SYSENTER_EIP};
    for (unsigned i = 0; i < sizeof(addr_msrs) / sizeof(addr_msrs[0]); i++) {
        assert_null(entry_check_msr(&s, addr_msrs[i], 0xffff888000000000ull));
        assert_non_null(entry_check_msr(&s, addr_msrs[i], 0x0000800000000000ull));
    }
    assert_null(entry_check_msr(&s, MSR_IA32_PAT, 0x0007040600070406ull)); /* power-on value */
    assert_non_null(entry_check_msr(&s, MSR_IA32_PAT, 0x0007040600070402ull));
    assert_non_null(entry_check_msr(&s, MSR_IA32_PAT, 0x0807040600070406ull));
    assert_null(entry_check_msr(&s, MSR_IA32_DEBUGCTL, 0x3));
    assert_non_null(entry_check_msr(&s, MSR_IA32_DEBUGCTL, 0x4));
    assert_non_null(entry_check_msr(&s, MSR_IA32_DEBUGCTL, 1ull << 16));
    assert_null(entry_check_msr(&s, 0x10 /* TSC: no rule here */, ~0ull));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canonical), cmocka_unit_test(rip), cmocka_unit_test(rflags),
        cmocka_unit_test(cr0),       cmocka_unit_test(cr3), cmocka_unit_test(cr4),
        cmocka_unit_test(msrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
