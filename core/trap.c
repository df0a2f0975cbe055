/*
 * trap.c - what the core does with exceptions taken in root mode.  #BP is
 * counted and resumed (the boot self-test uses it to prove the IDT is
 * live); an NMI is counted (it becomes the kick in the VMX issue); every
 * other exception is a bug in the hypervisor: dump and stop this CPU.
 */
#include <stdarg.h>

#include "core.h"
#include "fmt.h"
#include "log.h"

static struct cpu *this_cpu(void)
{
    struct cpu *c;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(c));
    return c;
}

void trap_dispatch(struct trap_frame *f)
{
    struct cpu *c = this_cpu();
    switch (f->vector) {
    case 2:
        c->nmi_count++;
        vmx_root_nmi(&f->rip);
        return;
    case 3:
        c->bp_count++;
        return;
    default:
        if (extable_fixup(f))
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

void panic(const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    fmt_vsn(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_error("PANIC: %s", msg);
    for (;;)
        __asm__ volatile("cli; hlt");
}
