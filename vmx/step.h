/*
 * step.h - what the VMX core offers a caller that lets one guest instruction
 * through an intercept and takes it back afterwards (kvmi_hv/step.c):
 *   - whether this CPU delivers the monitor trap flag (probed at launch);
 *   - a per-vCPU EPT view (ept_view.h): the vCPU runs on a copy of the EPT
 *     with a few pages opened while every other vCPU keeps the shared EPT,
 *     so an access another vCPU makes during the step still exits.
 * Only the stepped instruction runs on a view: an event the guest would get
 * first (an injection at entry, an external interrupt) closes it before its
 * handler runs, and the instruction, faulting again, is the owner's to open
 * again.  All functions act on the calling CPU's own vCPU, in root mode.
 */
#ifndef HV_VMX_STEP_H
#define HV_VMX_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "vmx.h"

/* The CPU lets the monitor trap flag be set (whether it delivers it is vmx_mtf_works). */
bool vmx_mtf_offered(void);

/* True once this vCPU's first instructions showed an MTF VM exit (SDM Vol.
 * 3C 26.5.2 Monitor Trap Flag); false while unknown or where it does not fire. */
bool vmx_mtf_works(const struct vcpu *v);

/* Opens the page holding gpa to (shared rights | add) for v alone and puts v
 * on its view.  A step that needs more than EPT_VIEW_PAGES pages moves to the
 * one large view (EPT_VIEW_MAX_PAGES pages), which one vCPU holds at a time
 * until its step ends (vmx_view_close).  0, or EPT_ENOENT / EPT_ENOMEM
 * (ept_view.h) with nothing changed for a page that is not mapped or one page
 * too many even there, or VMX_VIEW_BUSY when the large view is another vCPU's:
 * nothing changed, the instruction faults again and the caller tries again. */
#define VMX_VIEW_BUSY (-16)
int vmx_view_open(struct vcpu *v, uint64_t gpa, unsigned add);

/* v back on the shared EPT, its view emptied and its translations dropped. */
void vmx_view_close(struct vcpu *v);

/* True while v runs on its view. */
bool vmx_on_view(const struct vcpu *v);

#endif /* HV_VMX_STEP_H */
