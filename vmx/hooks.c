/*
 * hooks.c - the defaults of the hooks the composition root gives the VMX
 * layer (vmx_hooks.h): each keeps the exit handler's own behaviour.
 */
#include <stddef.h>

#include "vmx_hooks.h"

static void no_poll(void)
{
}

static bool no_work(struct vcpu *v)
{
    (void)v;
    return false;
}

static bool allow_cr(struct vcpu *v, unsigned cr, uint64_t old, uint64_t *val)
{
    (void)v, (void)cr, (void)old, (void)val;
    return true;
}

static int plain_wrmsr(struct vcpu *v, uint32_t msr, uint64_t *val)
{
    (void)v, (void)msr, (void)val;
    return 0;
}

static bool allow_xsetbv(struct vcpu *v, uint64_t val)
{
    (void)v, (void)val;
    return true;
}

static bool not_exception(struct vcpu *v, uint32_t intr_info)
{
    (void)v, (void)intr_info;
    return false;
}

static bool not_ept(struct vcpu *v, uint64_t qual, uint64_t gpa)
{
    (void)v, (void)qual, (void)gpa;
    return false;
}

static void no_mtf(struct vcpu *v)
{
    (void)v;
}

static void no_desc(struct vcpu *v, unsigned reason)
{
    (void)v, (void)reason;
}

/* The unhook hypercall with nothing above to unhook: "no session", -14
 * (docs/vmx.md, HV_HC_KVMI_UNHOOK). */
static int no_unhook(struct vcpu *v)
{
    (void)v;
    return -14;
}

static void no_power(struct vcpu *v, enum power_action a)
{
    (void)v, (void)a;
}

static int no_resume(void)
{
    return 0;
}

static const struct vmx_hooks defaults = {
    .poll = no_poll,
    .before_entry = no_work,
    .cr_write = allow_cr,
    .wrmsr = plain_wrmsr,
    .xsetbv = allow_xsetbv,
    .exception = not_exception,
    .vmcall = no_work,
    .ept_violation = not_ept,
    .mtf = no_mtf,
    .desc = no_desc,
    .unhook = no_unhook,
    .print_stats = no_poll,
    .power = no_power,
    .suspend = no_poll,
    .resume = no_resume,
};

struct vmx_hooks vmx_hooks = defaults;

#define TAKE(f) vmx_hooks.f = h->f ? h->f : defaults.f

void vmx_set_hooks(const struct vmx_hooks *h)
{
    TAKE(poll);
    TAKE(before_entry);
    TAKE(cr_write);
    TAKE(wrmsr);
    TAKE(xsetbv);
    TAKE(exception);
    TAKE(vmcall);
    TAKE(ept_violation);
    TAKE(mtf);
    TAKE(desc);
    TAKE(unhook);
    TAKE(print_stats);
    TAKE(power);
    TAKE(suspend);
    TAKE(resume);
}
