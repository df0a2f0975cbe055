/*
 * xcr0.c - XCR0 value check (see include/xcr0.h).
 */
#include "xcr0.h"

#define X87    (1ull << 0)
#define SSE    (1ull << 1)
#define AVX    (1ull << 2)
#define BNDREG (1ull << 3)
#define BNDCSR (1ull << 4)
#define AVX512 (7ull << 5)

bool xcr0_valid(uint64_t v, uint64_t supported)
{
    if (!(v & X87) || (v & ~supported))
        return false;
    if ((v & AVX) && !(v & SSE))
        return false;
    if ((v & AVX512) && ((v & AVX512) != AVX512 || !(v & AVX)))
        return false;
    if (!!(v & BNDREG) != !!(v & BNDCSR))
        return false;
    return true;
}
