/*
 * fuzz_gwalk.c - libFuzzer target over the guest page walker (vmx/gwalk.c):
 * the paging structures, the control registers and the address are the
 * guest's.  Input: CR0, CR3, CR4, EFER and the linear address (8 bytes
 * each), then guest-physical memory from address 0 (reads beyond it fail as
 * "not memory").  A successful walk must land on an address the tables can
 * express (below 2^52).
 */
#include <stdlib.h>
#include <string.h>

#include "vmx/gwalk.h"

struct mem {
    const uint8_t *p;
    size_t n;
    unsigned reads;
};

static int rd(void *ctx, uint64_t gpa, uint64_t *val)
{
    struct mem *m = ctx;
    if (++m->reads > 64) /* at most 5 levels; a loop would show here */
        abort();
    if ((gpa & 7) || gpa >= m->n || m->n - gpa < 8)
        return -1;
    memcpy(val, m->p + gpa, 8);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 40)
        return 0;
    struct gwalk_regs r;
    uint64_t gla, gpa = 0;
    memcpy(&r.cr0, d, 8);
    memcpy(&r.cr3, d + 8, 8);
    memcpy(&r.cr4, d + 16, 8);
    memcpy(&r.efer, d + 24, 8);
    memcpy(&gla, d + 32, 8);
    struct mem m = {d + 40, n - 40, 0};
    if (gwalk(&r, gla, rd, &m, &gpa) == GWALK_OK && gpa >> 52 && (r.cr0 >> 31 & 1))
        abort();
    return 0;
}
