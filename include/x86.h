/*
 * x86.h - inline wrappers for the privileged instructions the loader and
 * the core use (port I/O, MSRs, CPUID, control and descriptor registers).
 * Header-only; usable from the core, the EFI loader and the guest agent.
 * Never included by host builds.
 */
#ifndef HV_X86_H
#define HV_X86_H

#include "spinlock.h" /* cpu_relax() */
#include "x86_arch.h"

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c,
                         uint32_t *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

#define X86_READ_CR(n)                                                                             \
    static inline uint64_t read_cr##n(void)                                                        \
    {                                                                                              \
        uint64_t v;                                                                                \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));                                          \
        return v;                                                                                  \
    }
X86_READ_CR(0)
X86_READ_CR(2)
X86_READ_CR(3)
X86_READ_CR(4)
#undef X86_READ_CR

/* Segment selectors of the running code (for saving a CPU's own state). */
#define X86_READ_SEG(n)                                                                            \
    static inline uint16_t read_##n(void)                                                          \
    {                                                                                              \
        uint16_t v;                                                                                \
        __asm__ volatile("mov %%" #n ", %0" : "=r"(v));                                            \
        return v;                                                                                  \
    }
X86_READ_SEG(cs)
X86_READ_SEG(ss)
X86_READ_SEG(ds)
X86_READ_SEG(es)
X86_READ_SEG(fs)
X86_READ_SEG(gs)
#undef X86_READ_SEG

/* A memory-mapped register access of 1, 2, 4 or 8 bytes at its own width (a
 * device's register decodes the width: never split or widen it). */
static inline uint64_t mmio_read_width(uint64_t a, unsigned size)
{
    volatile void *p = (volatile void *)(uintptr_t)a;
    switch (size) {
    case 1:
        return *(volatile uint8_t *)p;
    case 2:
        return *(volatile uint16_t *)p;
    case 4:
        return *(volatile uint32_t *)p;
    default:
        return *(volatile uint64_t *)p;
    }
}

static inline void mmio_write_width(uint64_t a, unsigned size, uint64_t v)
{
    volatile void *p = (volatile void *)(uintptr_t)a;
    switch (size) {
    case 1:
        *(volatile uint8_t *)p = (uint8_t)v;
        break;
    case 2:
        *(volatile uint16_t *)p = (uint16_t)v;
        break;
    case 4:
        *(volatile uint32_t *)p = (uint32_t)v;
        break;
    default:
        *(volatile uint64_t *)p = v;
    }
}

static inline void write_cr3(uint64_t v)
{
    __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline void write_cr4(uint64_t v)
{
    __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

struct __attribute__((packed)) dtr {
    uint16_t limit;
    uint64_t base;
};

static inline void sgdt(struct dtr *d)
{
    __asm__ volatile("sgdt %0" : "=m"(*d));
}

static inline void sidt(struct dtr *d)
{
    __asm__ volatile("sidt %0" : "=m"(*d));
}

static inline void lgdt(const struct dtr *d)
{
    __asm__ volatile("lgdt %0" : : "m"(*d));
}

static inline void lidt(const struct dtr *d)
{
    __asm__ volatile("lidt %0" : : "m"(*d));
}

static inline uint64_t read_rflags(void)
{
    uint64_t f;
    __asm__ volatile("pushfq; popq %0" : "=r"(f));
    return f;
}

static inline void write_rflags(uint64_t f)
{
    __asm__ volatile("pushq %0; popfq" : : "r"(f) : "memory", "cc");
}

static inline void cli(void)
{
    __asm__ volatile("cli" ::: "memory");
}

#define CPUID1_VMX (1u << 5)

/* RDRAND with the retries it may need (CF = 0 is a transient failure, SDM
 * Vol. 1 7.3.17 Random Number Generator Instructions); false when every try
 * failed.  The caller checks CPUID.01H:ECX.RDRAND[bit 30] first. */
static inline bool rdrand64(uint64_t *out)
{
    for (int i = 0; i < 10; i++) {
        uint64_t r;
        uint8_t ok;
        __asm__ volatile("rdrand %0; setc %1" : "=r"(r), "=qm"(ok)::"cc");
        if (ok) {
            *out = r;
            return true;
        }
    }
    return false;
}

#endif
