/*
 * insn.c - decoder for the guest stores the hypervisor emulates (see
 * include/insn.h).  Encoding rules: SDM Vol. 2 2.1 (format), 2.1.5 (ModRM
 * and SIB, Tables 2-1..2-3), 2.2.1 (REX).
 */
#include "insn.h"

int insn_decode_store(const uint8_t *b, size_t n, enum insn_mode mode, struct insn_store *out)
{
    size_t i = 0;
    bool opsize = false, adsize = false;
    unsigned rex = 0;

    for (;; i++) {
        if (i >= n || i >= 14)
            return -1;
        uint8_t p = b[i];
        if (p == 0x66)
            opsize = true;
        else if (p == 0x67)
            adsize = true;
        else if (p == 0xf0 || p == 0xf2 || p == 0xf3 || p == 0x2e || p == 0x36 || p == 0x3e ||
                 p == 0x26 || p == 0x64 || p == 0x65)
            ;
        else
            break;
    }
    /* REX only in 64-bit mode and only right before the opcode (2.2.1). */
    if (mode == INSN_64 && (b[i] & 0xf0) == 0x40) {
        rex = b[i++];
        if (i >= n)
            return -1;
    }
    uint8_t op = b[i++];
    bool byte_op;
    switch (op) {
    case 0x88:
    case 0x86:
    case 0xc6:
        byte_op = true;
        break;
    case 0x89:
    case 0x87:
    case 0xc7:
        byte_op = false;
        break;
    default:
        return -1;
    }
    if (i >= n)
        return -1;
    uint8_t modrm = b[i++];
    unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
    if (mod == 3)
        return -1; /* register destination: not a store */
    if ((op == 0xc6 || op == 0xc7) && reg != 0)
        return -1;

    unsigned asize = mode == INSN_64   ? (adsize ? 4 : 8)
                     : mode == INSN_32 ? (adsize ? 2 : 4)
                                       : (adsize ? 4 : 2);
    size_t disp = 0;
    if (asize == 2) {
        if (mod == 1)
            disp = 1;
        else if (mod == 2 || (mod == 0 && rm == 6))
            disp = 2;
    } else {
        if (rm == 4) {
            if (i >= n)
                return -1;
            uint8_t sib = b[i++];
            if (mod == 0 && (sib & 7) == 5)
                disp = 4;
        }
        if (mod == 1)
            disp = 1;
        else if (mod == 2 || (mod == 0 && rm == 5))
            disp = 4;
    }
    i += disp;

    unsigned size;
    if (byte_op)
        size = 1;
    else if (rex & 8)
        size = 8;
    else if (mode == INSN_16)
        size = opsize ? 4 : 2;
    else
        size = opsize ? 2 : 4;

    out->size = size;
    out->xchg = op == 0x86 || op == 0x87;
    out->high_byte = false;
    out->imm = 0;
    if (op == 0xc6 || op == 0xc7) {
        size_t isz = size == 8 ? 4 : size; /* imm32 sign-extended for 64-bit stores */
        if (i + isz > n)
            return -1;
        uint64_t v = 0;
        for (size_t k = 0; k < isz; k++)
            v |= (uint64_t)b[i + k] << (8 * k);
        if (size == 8 && (v & 0x80000000u))
            v |= 0xffffffff00000000ull;
        i += isz;
        out->src = INSN_SRC_IMM;
        out->imm = v;
        out->reg = 0;
    } else {
        out->src = INSN_SRC_REG;
        out->reg = reg | ((rex & 4) ? 8 : 0);
        /* Without REX, byte registers 4-7 are AH, CH, DH, BH (2.1.5, Table 2-2 note). */
        if (byte_op && !rex && reg >= 4) {
            out->high_byte = true;
            out->reg = reg - 4;
        }
    }
    if (i > n || i > 15)
        return -1;
    out->len = (unsigned)i;
    return 0;
}

uint64_t insn_store_value(const struct insn_store *s, uint64_t reg_value)
{
    uint64_t v = s->src == INSN_SRC_IMM ? s->imm : reg_value;
    if (s->src == INSN_SRC_REG && s->high_byte)
        v >>= 8;
    if (s->size < 8)
        v &= (1ull << (8 * s->size)) - 1;
    return v;
}
