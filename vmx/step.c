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

int vmx_views_init(void)
{
    for (unsigned i = 0; i < g_vmx.ncpus; i++)
        if (ept_view_init(&views[i], &g_ept))
            return -1;
    return 0;
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

void vmx_mtf_failed(struct vcpu *v)
{
    if (v->mtf == VMX_MTF_WORKS)
        log_warn("vCPU %u: the monitor trap flag did not fire: steps use RFLAGS.TF from now on",
                 v->index);
    v->mtf = VMX_MTF_BROKEN;
}

/* ---- per-vCPU EPT views ---------------------------------------------------------------- */

/* Drops the view's cached translations (SDM Vol. 3C 29.4.3.1 Operations that Invalidate Cached
 * Mappings).  Bochs keeps one TLB for every EPTP, so it matters on the way back too. */
static void flush_view(struct ept_view *w)
{
    vmx_invept_eptp(ept_view_eptp(w));
}

int vmx_view_open(struct vcpu *v, uint64_t gpa, unsigned add)
{
    struct ept_view *w = &views[v->index];
    int rc = ept_view_open(w, gpa, add, NULL);
    if (rc)
        return rc;
    if (!v->on_view) {
        /* SDM Vol. 3C 25.6.11 Extended-Page-Table Pointer (EPTP) */
        vmwrite(VMCS_EPTP, ept_view_eptp(w));
        v->on_view = true;
    }
    flush_view(w); /* translations cached with the view's rights before this open */
    return 0;
}

void vmx_view_close(struct vcpu *v)
{
    if (!v->on_view)
        return;
    struct ept_view *w = &views[v->index];
    vmwrite(VMCS_EPTP, g_vmx.eptp);
    v->on_view = false;
    flush_view(w);
    ept_view_close(w);
}

bool vmx_on_view(const struct vcpu *v)
{
    return v->on_view;
}

/* The shared EPT changed (vmx_flush_ept): the view's copies follow it. */
void vmx_view_resync(struct vcpu *v)
{
    struct ept_view *w = &views[v->index];
    if (!v->on_view) {
        ept_view_mark_stale(w);
        return;
    }
    if (ept_view_resync(w) == EPT_ENOENT)
        log_warn("vCPU %u: a page opened for a step is no longer mapped", v->index);
    flush_view(w);
}
