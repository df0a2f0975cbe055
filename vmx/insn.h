/*
 * insn.h - decoding of the few x86 instructions the hypervisor must emulate
 * after an EPT violation: stores to the write-protected xAPIC page (the
 * guest's ICR writes) and stores into the hidden hypervisor region (dropped,
 * so only their length matters).  Pure, host-tested.
 *
 * Understood: legacy prefixes (operand/address size, segment, LOCK, REP), REX,
 * and the stores MOV r/m,r (88/89), MOV r/m,imm (C6/C7 /0) and XCHG r/m,r
 * (86/87), with every ModRM/SIB/displacement form of 16-, 32- and 64-bit
 * addressing (SDM Vol. 2 chapter 2).
 */
#ifndef HV_INSN_H
#define HV_INSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum insn_mode { INSN_16 = 2, INSN_32 = 4, INSN_64 = 8 }; /* code segment default size */

enum insn_src { INSN_SRC_REG, INSN_SRC_IMM };

struct insn_store {
    unsigned len;  /* instruction length in bytes */
    unsigned size; /* bytes written: 1, 2, 4 or 8 */
    enum insn_src src;
    unsigned reg;   /* INSN_SRC_REG: register number 0-15 (ModRM.reg + REX.R) */
    bool high_byte; /* reg is AH/CH/DH/BH (8-bit store, no REX): bits 15:8 of reg-4 */
    bool xchg;      /* XCHG: the register receives the old memory value */
    uint64_t imm;   /* INSN_SRC_IMM: the value, sign-extended to size */
};

/* 0 on success, -1 if the bytes are not one of the stores above or are cut short. */
int insn_decode_store(const uint8_t *b, size_t n, enum insn_mode mode, struct insn_store *out);

/* The value a decoded store writes, given the source register's content. */
uint64_t insn_store_value(const struct insn_store *s, uint64_t reg_value);

#endif
