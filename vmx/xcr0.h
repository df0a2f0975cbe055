/*
 * xcr0.h - whether a value may be loaded into XCR0 (SDM Vol. 1 13.3, Vol. 2
 * XSETBV): x87 always set, AVX only with SSE, the three AVX-512 bits together
 * and only with AVX, MPX's two bits together, nothing unsupported.  Pure,
 * host-tested; vmx/exit_xsetbv.c uses it before executing XSETBV for the guest.
 */
#ifndef HV_XCR0_H
#define HV_XCR0_H

#include <stdbool.h>
#include <stdint.h>

/* supported = CPUID.(EAX=0xD,ECX=0):EDX:EAX */
bool xcr0_valid(uint64_t value, uint64_t supported);

#endif
