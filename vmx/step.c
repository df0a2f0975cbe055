/*
 * step.c - the VMX core's half of one-instruction steps (step.h): the
 * monitor-trap-flag probe and the per-vCPU EPT views.
 */
#include "step.h"
#include "ept_view.h"
#include "log.h"
#include "vmx_insn.h"
#include "vmx_int.h"

static struct ept_view views[BI_MAX_CPUS];

/* One larger view for a step that outgrows its vCPU's own (one instruction
 * touching more than EPT_VIEW_PAGES restricted pages: a MOVS whose operands
 * and code straddle pages, with the page tables the walk updates restricted
 * too).  One vCPU holds it at a time, for the rest of that step; another that
 * needs it meanwhile waits with its instruction faulting again (VMX_VIEW_BUSY)
 * until the holder's step ends, so every step still ends in bounded time. */
static struct ept_view large;
static bool large_ready;
static int large_owner = -1; /* index of the vCPU on it, -1: free */

int vmx_views_init(void)
{
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        if (ept_view_init(&views[i], &g_ept))
            return -1;
        /* the shared EPT still changes after this (the NIC's and the IOMMU's pages
         * hidden): the first open takes a fresh copy */
        ept_view_mark_stale(&views[i]);
    }
    large_ready = ept_view_init_cap(&large, &g_ept, EPT_VIEW_MAX_PAGES) == 0;
    if (!large_ready)
        log_warn("no room for the large EPT view: a step stops at %u pages", EPT_VIEW_PAGES);
    return 0;
}

/* The view v runs on or would run on: the large one while it holds it. */
static struct ept_view *view_of(const struct vcpu *v)
{
    return __atomic_load_n(&large_owner, __ATOMIC_ACQUIRE) == (int)v->index ? &large
                                                                            : &views[v->index];
}

/* External-interrupt exiting (SDM Vol. 3C 25.6.1 Pin-Based VM-Execution Controls) while a vCPU is
 * on its view: an interrupt that would run its handler before the stepped instruction exits
 * instead, and the view is closed before the handler runs (vmx_view_extint). */
static void extint_exiting(bool on)
{
    uint32_t pin = (uint32_t)vmread(VMCS_PIN_CTLS);
    vmwrite(VMCS_PIN_CTLS, on ? pin | PIN_EXTINT_EXITING : pin & ~PIN_EXTINT_EXITING);
}

/* ---- the monitor trap flag ------------------------------------------------------------- */

/* SDM Vol. 3D A.3.2 Primary Processor-Based VM-Execution Controls: allowed-1 settings. */
bool vmx_mtf_offered(void)
{
    uint64_t cap =
        (g_vmx.facts.basic & (1ull << 55)) ? g_vmx.facts.true_proc : g_vmx.facts.procbased;
    return (cap >> 32) & PROC_MTF;
}

/*
 * Bochs 2.7 accepts the MTF control but never exits for it; a step that
 * relied on it would run on unstepped until some other exit.  So every vCPU
 * starts with MTF set (launch.c), and its first exits tell: an MTF exit
 * proves it; an exit after guest RIP moved without one disproves it (an
 * instruction that itself exits leaves RIP where the entry put it, and
 * decides nothing).
 */
void vmx_mtf_probe(struct vcpu *v, unsigned basic)
{
    if (v->mtf != VMX_MTF_PROBING)
        return;
    if (basic == EXIT_REASON_MTF)
        v->mtf = VMX_MTF_WORKS;
    else if (vmread(VMCS_GUEST_RIP) != v->mtf_probe_rip)
        v->mtf = VMX_MTF_BROKEN;
    else
        return;
    vmx_set_proc_ctls(v, 0, PROC_MTF);
    log_debug("vCPU %u: the monitor trap flag %s", v->index,
              v->mtf == VMX_MTF_WORKS ? "works" : "does not fire: steps use RFLAGS.TF");
}

void vmx_mtf_probe_entry(struct vcpu *v)
{
    if (v->mtf == VMX_MTF_PROBING)
        v->mtf_probe_rip = vmread(VMCS_GUEST_RIP);
}

bool vmx_mtf_works(const struct vcpu *v)
{
    return v->mtf == VMX_MTF_WORKS;
}

/* ---- per-vCPU EPT views ---------------------------------------------------------------- */

/* Drops the view's cached translations (SDM Vol. 3C 29.4.3.1 Operations that Invalidate Cached
 * Mappings).  Bochs keeps one TLB for every EPTP, so it matters on the way back too. */
static void flush_view(struct ept_view *w)
{
    vmx_invept_eptp(ept_view_eptp(w));
}

/* v's own view is full (v is on it): the step moves to the large view with the
 * pages open so far, then gpa opens there. */
static int take_large(struct vcpu *v, struct ept_view *own, uint64_t gpa, unsigned add)
{
    int owner = -1;
    if (!large_ready)
        return EPT_ENOMEM;
    if (!__atomic_compare_exchange_n(&large_owner, &owner, (int)v->index, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        /* A holder that stopped for good (vmx_fatal, panic) never ends its step:
         * its pages are closed and the view is this step's. */
        struct vcpu *h = g_vmx.vcpus[owner];
        if (!h || __atomic_load_n(&h->state, __ATOMIC_ACQUIRE) != VCPU_HALTED ||
            !__atomic_compare_exchange_n(&large_owner, &owner, (int)v->index, false,
                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return VMX_VIEW_BUSY;
        ept_view_close(&large);
    }
    ept_view_mark_stale(&large); /* the shared EPT may have changed since its last step */
    int rc = ept_view_take(&large, own);
    if (rc) {
        __atomic_store_n(&large_owner, -1, __ATOMIC_RELEASE);
        return rc;
    }
    vmwrite(VMCS_EPTP, ept_view_eptp(&large));
    flush_view(own);
    v->stats.large_views++;
    return ept_view_open(&large, gpa, add, NULL);
}

int vmx_view_open(struct vcpu *v, uint64_t gpa, unsigned add)
{
    struct ept_view *w = view_of(v);
    int rc = ept_view_open(w, gpa, add, NULL);
    if (rc == EPT_ENOMEM && w != &large && v->on_view) {
        rc = take_large(v, w, gpa, add);
        w = view_of(v);
    }
    if (rc)
        return rc;
    if (!v->on_view) {
        /* SDM Vol. 3C 25.6.11 Extended-Page-Table Pointer (EPTP) */
        vmwrite(VMCS_EPTP, ept_view_eptp(w));
        /* Where MTF steps, it exits before a handler's first instruction; with TF an
         * interrupt the guest can take now would run its handler on the view. */
        uint64_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
        if (!vmx_mtf_works(v) && (vmread(VMCS_GUEST_RFLAGS) & RFLAGS_IF) &&
            !(intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS)))
            extint_exiting(true);
        v->on_view = true;
    }
    flush_view(w); /* translations cached with the view's rights before this open */
    return 0;
}

void vmx_view_close(struct vcpu *v)
{
    if (!v->on_view)
        return;
    struct ept_view *w = view_of(v);
    vmwrite(VMCS_EPTP, g_vmx.eptp);
    extint_exiting(false);
    v->on_view = false;
    flush_view(w);
    ept_view_close(w);
    if (w == &large)
        __atomic_store_n(&large_owner, -1, __ATOMIC_RELEASE);
}

bool vmx_on_view(const struct vcpu *v)
{
    return v->on_view;
}

/*
 * Nothing runs on a view but the stepped instruction: an event about to be
 * delivered at this entry (an exception or NMI owed to the guest, an
 * interrupt re-queued) would run its handler first, so the view is closed
 * before it (the instruction faults again afterwards and the step's owner
 * opens the page again for it).  Called last before every entry.
 */
void vmx_view_guard(struct vcpu *v)
{
    if (v->on_view && (vmread(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID)) {
        vmx_view_close(v);
        v->stats.view_aborts++;
    }
}

/* An external interrupt exited (only while on a view): the view is closed and the interrupt
 * goes to the guest as it would have without the exit. */
void vmx_view_extint(struct vcpu *v)
{
    uint32_t info = (uint32_t)vmread(VMCS_EXIT_INTR_INFO);
    if (v->on_view) {
        vmx_view_close(v);
        v->stats.view_aborts++;
    } else {
        extint_exiting(false);
    }
    if (info & INTR_INFO_VALID) /* acknowledged on exit: deliver it ourselves */
        vmwrite(VMCS_ENTRY_INTR_INFO, info & ~(1u << 12));
}

/* The shared EPT changed (vmx_flush_ept): the view's copies follow it. */
void vmx_view_resync(struct vcpu *v)
{
    struct ept_view *w = view_of(v);
    if (!v->on_view) {
        ept_view_mark_stale(w);
        return;
    }
    if (ept_view_resync(w) == EPT_ENOENT)
        log_warn("vCPU %u: a page opened for a step is no longer mapped", v->index);
    flush_view(w);
}
