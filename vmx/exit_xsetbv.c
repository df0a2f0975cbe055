/*
 * exit_xsetbv.c - XSETBV exits unconditionally (SDM Vol. 3C 26.1.2 Instructions That Cause VM Exits
 * Unconditionally).  The value is checked as the instruction would (SDM Vol. 1 13.3, Vol. 2
 * XSETBV): XCR0 only, x87 always on, AVX needs SSE, the AVX-512 trio all or nothing and only with
 * AVX, MPX's two bits together, nothing the processor does not support (CPUID.(0xD,0):EDX:EAX);
 * then executed for the guest, where a residual #GP in root mode still becomes the guest's #GP. The
 * host never uses extended state, so sharing XCR0 is harmless.
 */
#include "core.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_hooks.h"
#include "xcr0.h"

void exit_xsetbv(struct vcpu *v)
{
    struct guest_regs *r = v->regs;
    uint32_t a, b, c, d;
    cpuid(0xd, 0, &a, &b, &c, &d);
    uint64_t supported = ((uint64_t)d << 32) | a;
    uint64_t val = (r->rdx << 32) | (uint32_t)r->rax;
    if ((uint32_t)r->rcx != 0 || !xcr0_valid(val, supported) ||
        !vmx_hooks.xsetbv(v, val) /* KVMI: KVMI_EVENT_XSETBV */) {
        inject_gp(v);
        return;
    }
    /* XSETBV #UDs in root mode unless the HOST CR4 has OSXSAVE, and the host
     * CR4 is the firmware's (usually without it): set it around the
     * instruction; the next exit reloads HOST_CR4 anyway (without it a
     * guest XSETBV ends in a root-mode #UD). */
    uint64_t cr4 = read_cr4();
    if (!(cr4 & CR4_OSXSAVE))
        write_cr4(cr4 | CR4_OSXSAVE);
    int fault = safe_xsetbv(0, val);
    write_cr4(cr4);
    if (fault) {
        inject_gp(v);
        return;
    }
    vmx_skip_insn(v);
}
