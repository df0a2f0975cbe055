/*
 * Unit tests of vmx/insn.c: the guest stores the hypervisor decodes after an
 * EPT violation (xAPIC writes, dropped writes to the hidden region), in the
 * encodings compilers emit for OVMF's MmioWrite32 and Linux's apic_write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmx/insn.h"

static struct insn_store dec_ok(const uint8_t *b, size_t n, enum insn_mode m)
{
    struct insn_store s;
    assert_int_equal(insn_decode_store(b, n, m, &s), 0);
    return s;
}

static void mov_reg_to_mem(void **st)
{
    (void)st;
    /* mov %edx,(%rcx) */
    const uint8_t a[] = {0x89, 0x11};
    struct insn_store s = dec_ok(a, sizeof(a), INSN_64);
    assert_int_equal(s.len, 2);
    assert_int_equal(s.size, 4);
    assert_int_equal(s.src, INSN_SRC_REG);
    assert_int_equal(s.reg, 2);
    assert_false(s.xchg);
    /* mov %r8d,0x300(%rax) : REX.R, disp32 */
    const uint8_t b[] = {0x44, 0x89, 0x80, 0x00, 0x03, 0x00, 0x00};
    s = dec_ok(b, sizeof(b), INSN_64);
    assert_int_equal(s.len, 7);
    assert_int_equal(s.reg, 8);
    /* mov %rax,0x10(%rsp) : REX.W, SIB, disp8 */
    const uint8_t c[] = {0x48, 0x89, 0x44, 0x24, 0x10};
    s = dec_ok(c, sizeof(c), INSN_64);
    assert_int_equal(s.len, 5);
    assert_int_equal(s.size, 8);
    assert_int_equal(s.reg, 0);
    /* mov %eax,0xfee00300 (absolute: SIB with no base, disp32) */
    const uint8_t d[] = {0x89, 0x04, 0x25, 0x00, 0x03, 0xe0, 0xfe};
    s = dec_ok(d, sizeof(d), INSN_64);
    assert_int_equal(s.len, 7);
    /* mov %ecx,0x12345678(%rip) */
    const uint8_t e[] = {0x89, 0x0d, 0x78, 0x56, 0x34, 0x12};
    s = dec_ok(e, sizeof(e), INSN_64);
    assert_int_equal(s.len, 6);
    assert_int_equal(s.reg, 1);
}

static void mov_imm_to_mem(void **st)
{
    (void)st;
    /* movl $0xc4500,0x300(%rdx) */
    const uint8_t a[] = {0xc7, 0x82, 0x00, 0x03, 0x00, 0x00, 0x00, 0x45, 0x0c, 0x00};
    struct insn_store s = dec_ok(a, sizeof(a), INSN_64);
    assert_int_equal(s.len, 10);
    assert_int_equal(s.src, INSN_SRC_IMM);
    assert_int_equal(insn_store_value(&s, 0), 0xc4500);
    /* movq $-1,(%rax): imm32 sign-extended to 64 bits */
    const uint8_t b[] = {0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff};
    s = dec_ok(b, sizeof(b), INSN_64);
    assert_int_equal(s.size, 8);
    assert_true(insn_store_value(&s, 0) == ~0ull);
    /* movb $0x5a,(%rdi) */
    const uint8_t c[] = {0xc6, 0x07, 0x5a};
    s = dec_ok(c, sizeof(c), INSN_64);
    assert_int_equal(s.len, 3);
    assert_int_equal(s.size, 1);
    assert_int_equal(insn_store_value(&s, 0), 0x5a);
    /* movw $0x1234,(%rax): operand-size prefix shrinks the immediate */
    const uint8_t d[] = {0x66, 0xc7, 0x00, 0x34, 0x12};
    s = dec_ok(d, sizeof(d), INSN_64);
    assert_int_equal(s.len, 5);
    assert_int_equal(s.size, 2);
    assert_int_equal(insn_store_value(&s, 0), 0x1234);
}

static void byte_registers(void **st)
{
    (void)st;
    /* mov %ah,(%rbx): no REX, reg 4 = AH */
    const uint8_t a[] = {0x88, 0x23};
    struct insn_store s = dec_ok(a, sizeof(a), INSN_64);
    assert_true(s.high_byte);
    assert_int_equal(s.reg, 0);
    assert_int_equal(insn_store_value(&s, 0xbeef), 0xbe);
    /* mov %spl,(%rbx): with REX, reg 4 = SPL */
    const uint8_t b[] = {0x40, 0x88, 0x23};
    s = dec_ok(b, sizeof(b), INSN_64);
    assert_false(s.high_byte);
    assert_int_equal(s.reg, 4);
    assert_int_equal(s.len, 3);
}

static void xchg_and_modes(void **st)
{
    (void)st;
    /* xchg %eax,(%rdx) */
    const uint8_t a[] = {0x87, 0x02};
    struct insn_store s = dec_ok(a, sizeof(a), INSN_64);
    assert_true(s.xchg);
    /* 32-bit code: 0x40 is INC, not REX: not a store */
    const uint8_t b[] = {0x40, 0x89, 0x11};
    assert_int_equal(insn_decode_store(b, sizeof(b), INSN_32, &s), -1);
    /* 16-bit code: mov %ax,0x1234 (mod 0 rm 6 = disp16) */
    const uint8_t c[] = {0x89, 0x06, 0x34, 0x12};
    s = dec_ok(c, sizeof(c), INSN_16);
    assert_int_equal(s.len, 4);
    assert_int_equal(s.size, 2);
    /* 16-bit code with 0x66 0x67: mov %eax,(%ebx) with 32-bit addressing */
    const uint8_t d[] = {0x66, 0x67, 0x89, 0x03};
    s = dec_ok(d, sizeof(d), INSN_16);
    assert_int_equal(s.len, 4);
    assert_int_equal(s.size, 4);
    /* 32-bit: mov %eax,0x8(%ebp) */
    const uint8_t e[] = {0x89, 0x45, 0x08};
    s = dec_ok(e, sizeof(e), INSN_32);
    assert_int_equal(s.len, 3);
    /* segment override and LOCK prefixes count in the length */
    const uint8_t f[] = {0x64, 0x89, 0x01};
    s = dec_ok(f, sizeof(f), INSN_64);
    assert_int_equal(s.len, 3);
}

static void refusals(void **st)
{
    (void)st;
    struct insn_store s;
    const uint8_t reg_dest[] = {0x89, 0xc8}; /* mov %ecx,%eax */
    assert_int_equal(insn_decode_store(reg_dest, sizeof(reg_dest), INSN_64, &s), -1);
    const uint8_t load[] = {0x8b, 0x01}; /* mov (%rcx),%eax */
    assert_int_equal(insn_decode_store(load, sizeof(load), INSN_64, &s), -1);
    const uint8_t c7_bad_reg[] = {0xc7, 0x08, 0, 0, 0, 0}; /* C7 /1 is not MOV */
    assert_int_equal(insn_decode_store(c7_bad_reg, sizeof(c7_bad_reg), INSN_64, &s), -1);
    const uint8_t cut[] = {0xc7, 0x82, 0x00, 0x03}; /* truncated */
    assert_int_equal(insn_decode_store(cut, sizeof(cut), INSN_64, &s), -1);
    uint8_t prefixes[15];
    for (int i = 0; i < 15; i++)
        prefixes[i] = 0x66;
    assert_int_equal(insn_decode_store(prefixes, sizeof(prefixes), INSN_64, &s), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mov_reg_to_mem), cmocka_unit_test(mov_imm_to_mem),
        cmocka_unit_test(byte_registers), cmocka_unit_test(xchg_and_modes),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
