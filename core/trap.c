/*
 * trap.c - what the core does with exceptions taken in root mode.  #BP is
 * counted and resumed (the boot self-test uses it to prove the IDT is
 * live); an NMI is counted and handed to the registered NMI handler (the
 * VMX layer's kick); any other exception is first offered to the
 * registered fixup (the VMX layer's safe MSR/XSETBV helpers), and otherwise
 * is a bug in the hypervisor: dump and stop this CPU.  Upper layers
 * register their handlers here, so the core calls no layer above it.
 */

#include "core.h"
#include "fmt.h"
#include "log.h"

static void (*nmi_handler)(uint64_t *rip);
static bool (*fixup)(struct trap_frame *f);

void trap_set_nmi_handler(void (*h)(uint64_t *rip))
{
    nmi_handler = h;
}

void trap_set_fixup(bool (*f)(struct trap_frame *f))
{
    fixup = f;
}

void trap_dispatch(struct trap_frame *f)
{
    struct cpu *c = this_cpu();
    switch (f->vector) {
    case 2:
        c->nmi_count++;
        if (nmi_handler)
            nmi_handler(&f->rip);
        return;
    case 3:
        c->bp_count++;
        return;
    default:
        if (fixup && fixup(f))
            return;
        break;
    }
    log_error("exception %llu error 0x%llx at rip 0x%llx cs 0x%llx rflags 0x%llx rsp 0x%llx",
              (unsigned long long)f->vector, (unsigned long long)f->error,
              (unsigned long long)f->rip, (unsigned long long)f->cs, (unsigned long long)f->rflags,
              (unsigned long long)f->rsp);
    log_error("rax %llx rbx %llx rcx %llx rdx %llx rsi %llx rdi %llx rbp %llx",
              (unsigned long long)f->rax, (unsigned long long)f->rbx, (unsigned long long)f->rcx,
              (unsigned long long)f->rdx, (unsigned long long)f->rsi, (unsigned long long)f->rdi,
              (unsigned long long)f->rbp);
    log_error("cr2 0x%llx cr3 0x%llx", (unsigned long long)read_cr2(),
              (unsigned long long)read_cr3());
    panic("unexpected exception %llu in root mode", (unsigned long long)f->vector);
}
