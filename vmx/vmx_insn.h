/*
 * vmx_insn.h - the VMX instructions and a few privileged helpers as inline
 * functions for vmx/ (internal).  The VMX instructions report failure
 * through RFLAGS (SDM Vol. 3C 31.2 Conventions: CF=1 VMfailInvalid, ZF=1 VMfailValid with
 * the reason in the VM-instruction error field); each wrapper returns
 * true on success.
 */
#ifndef HV_VMX_INSN_H
#define HV_VMX_INSN_H

#include <stdbool.h>
#include <stdint.h>

#include "vmx_defs.h"

static inline bool vmxon(uint64_t phys)
{
    bool fail;
    __asm__ volatile("vmxon %1; setbe %0" : "=qm"(fail) : "m"(phys) : "cc", "memory");
    return !fail;
}

static inline void vmxoff(void)
{
    __asm__ volatile("vmxoff" ::: "cc", "memory");
}

static inline bool vmclear(uint64_t phys)
{
    bool fail;
    __asm__ volatile("vmclear %1; setbe %0" : "=qm"(fail) : "m"(phys) : "cc", "memory");
    return !fail;
}

static inline bool vmptrld(uint64_t phys)
{
    bool fail;
    __asm__ volatile("vmptrld %1; setbe %0" : "=qm"(fail) : "m"(phys) : "cc", "memory");
    return !fail;
}

static inline bool vmwrite(uint64_t field, uint64_t value)
{
    bool fail;
    __asm__ volatile("vmwrite %2, %1; setbe %0"
                     : "=qm"(fail)
                     : "r"(field), "rm"(value)
                     : "cc", "memory");
    return !fail;
}

static inline uint64_t vmread(uint64_t field)
{
    uint64_t v = 0;
    __asm__ volatile("vmread %1, %0" : "=rm"(v) : "r"(field) : "cc");
    return v;
}

struct invdesc {
    uint64_t a, b;
};

static inline void invept(uint64_t type, uint64_t eptp)
{
    struct invdesc d = {eptp, 0};
    __asm__ volatile("invept %0, %1" : : "m"(d), "r"(type) : "cc", "memory");
}

static inline void invvpid(uint64_t type, uint16_t vpid, uint64_t gla)
{
    struct invdesc d = {vpid, gla};
    __asm__ volatile("invvpid %0, %1" : : "m"(d), "r"(type) : "cc", "memory");
}

static inline uint64_t read_dr7(void)
{
    uint64_t v;
    __asm__ volatile("mov %%dr7, %0" : "=r"(v));
    return v;
}

static inline void write_cr0(uint64_t v)
{
    __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}

static inline uint64_t xgetbv(uint32_t idx)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(idx));
    return ((uint64_t)hi << 32) | lo;
}

#endif
