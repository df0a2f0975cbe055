/*
 * exit_io.c - I/O instruction exits (I/O bitmaps, SDM Vol. 3C 25.6.4 I/O-Bitmap Addresses;
 * qualification 28.2.1, Table 28-5).  PCI config ports and the dedicated NIC's I/O BAR go to hide.c
 * first.  In the test build with `debug_hypercalls = yes` (include/test_hooks.h), Bochs's shutdown
 * port 0x8900 is watched: when the guest completes "Shutdown" there, the introspector may unhook
 * and every vCPU's statistics are printed before the write goes through and Bochs powers off.  The
 * guest's power transitions (ACPI sleep and power-off, resets) go to power.c first.  Whatever else
 * reaches here is performed for the guest unchanged.
 */
#include "core.h"
#include "log.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_hooks.h"
#include "test_hooks.h"

static const char shutdown_word[] = "Shutdown";

static void note_shutdown_byte(struct vcpu *v, uint8_t ch)
{
    if (ch == (uint8_t)shutdown_word[v->shutdown_match])
        v->shutdown_match++;
    else
        v->shutdown_match = ch == 'S' ? 1 : 0;
    if (v->shutdown_match == sizeof(shutdown_word) - 1) {
        v->shutdown_match = 0;
        /* KVMI: the guest powers off: the introspector may unhook first */
        vmx_hooks.unhook(v);
        log_info("guest shutdown through port 0x%x: statistics follow", BOCHS_SHUTDOWN_PORT);
        vmx_print_stats(NULL);
    }
}

void exit_io(struct vcpu *v)
{
    uint64_t q = vmread(VMCS_EXIT_QUALIFICATION);
    unsigned size = (unsigned)(q & 7) + 1, in = (q >> 3) & 1, string = (q >> 4) & 1;
    uint16_t port = (uint16_t)(q >> 16);
    struct guest_regs *r = v->regs;
    if (string) {
        log_warn("string I/O on port 0x%x not emulated; skipped", port);
        vmx_skip_insn(v);
        return;
    }
    if (!in && !vmx_power_out(v, port, size, (uint32_t)r->rax)) {
        vmx_skip_insn(v); /* a refused sleep */
        return;
    }
    if (vmx_hide_io(v, port, size, in)) {
        vmx_skip_insn(v);
        return;
    }
    if (in) {
        uint64_t val;
        if (size == 1)
            val = inb(port);
        else if (size == 2) {
            uint16_t w;
            __asm__ volatile("inw %1, %0" : "=a"(w) : "Nd"(port));
            val = w;
        } else
            val = inl(port);
        uint64_t mask = size == 4 ? 0xffffffffull : (1ull << (8 * size)) - 1;
        /* A 32-bit IN zero-extends into RAX; narrower ones merge (SDM Vol. 1 3.4.1.1
         * General-Purpose Registers in 64-Bit Mode). */
        val = vmx_power_in(port, size, (uint32_t)val);
        r->rax = size == 4 ? val : (r->rax & ~mask) | (val & mask);
    } else {
        uint64_t val = r->rax;
        if (TEST_HOOKS && port == BOCHS_SHUTDOWN_PORT && size == 1 && g_bi->config.debug_hypercalls)
            note_shutdown_byte(v, (uint8_t)val);
        if (size == 1)
            outb(port, (uint8_t)val);
        else if (size == 2)
            __asm__ volatile("outw %0, %1" : : "a"((uint16_t)val), "Nd"(port));
        else
            outl(port, (uint32_t)val);
    }
    vmx_skip_insn(v);
}
