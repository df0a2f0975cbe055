/*
 * requests.c - everything between an exit handler and the next VM entry, and
 * the ways other cores reach a vCPU:
 *   - kick(): request word + NMI IPI (NMI exiting is on, so the target
 *     leaves guest mode; in root mode the NMI arms a zero VMX-preemption
 *     timer so the next entry exits at once, SDM Vol. 3C 27.7.4 VMX-Preemption
 *     Timer); a kick that waits never waits for a halted vCPU, nor longer
 *     than KICK_WAIT_MS of TSC time (logged), so one stuck core cannot stall
 *     the network service or the other vCPUs;
 *   - the per-vCPU job queue, drained before every entry;
 *   - software INIT / SIPI (apic.c queues them): a vCPU after INIT waits in
 *     root mode, serving jobs, until a SIPI starts it in real mode;
 *   - guest NMIs owed to the guest (virtual NMIs, NMI-window exiting, SDM
 *     Vol. 3C 25.6.1 Pin-Based VM-Execution Controls, 27.7.6 NMI-Window
 *     Exiting): injected when the guest does not block NMIs, none
 *     lost, none doubled;
 *   - the VMX-preemption timer, reloaded with the poll interval each entry.
 */
#include "core.h"
#include "log.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_hooks.h"
#include "step.h"

bool vcpu_queue_job(struct vcpu *v, vcpu_job_fn fn, void *arg)
{
    spin_lock(&v->job_lock);
    bool ok = v->job_tail - v->job_head < VCPU_JOBS;
    if (ok) {
        v->jobs[v->job_tail % VCPU_JOBS] = (struct vcpu_job){fn, arg};
        v->job_tail++;
    }
    spin_unlock(&v->job_lock);
    if (ok)
        kick(v, false);
    return ok;
}

void vcpu_request(struct vcpu *v, uint32_t bits, bool wait)
{
    __atomic_or_fetch(&v->requests, bits, __ATOMIC_SEQ_CST);
    kick(v, wait);
}

void vmx_invept_all(void)
{
    struct vcpu *self = this_vcpu();
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        struct vcpu *v = g_vmx.vcpus[i];
        if (!v || v->state == VCPU_OFF)
            continue;
        if (v == self)
            vmx_flush_ept();
        else
            vcpu_request(v, VCPU_REQ_INVEPT, true);
    }
}

static void drain_jobs(struct vcpu *v)
{
    for (;;) {
        spin_lock(&v->job_lock);
        if (v->job_head == v->job_tail) {
            spin_unlock(&v->job_lock);
            return;
        }
        struct vcpu_job j = v->jobs[v->job_head % VCPU_JOBS];
        v->job_head++;
        spin_unlock(&v->job_lock);
        j.fn(v, j.arg);
    }
}

/* How long a kick waits for its acknowledgement.  Every root-mode wait acknowledges kicks as it
 * polls, so a live vCPU answers within one exit; a vCPU that does not in this time is stuck. */
#define KICK_WAIT_MS 2000u

static bool vcpu_running(struct vcpu *v)
{
    return __atomic_load_n(&v->state, __ATOMIC_ACQUIRE) == VCPU_RUNNING;
}

void kick(struct vcpu *v, bool wait)
{
    struct vcpu *self = this_vcpu();
    __atomic_or_fetch(&v->requests, VCPU_REQ_KICK, __ATOMIC_SEQ_CST);
    if (v == self)
        return; /* already in root mode: seen before the next entry */
    uint64_t seq = __atomic_add_fetch(&v->kick_seq, 1, __ATOMIC_SEQ_CST);
    if (self)
        self->stats.kicks_sent++;
    __atomic_add_fetch(&v->nmi_sent, 1, __ATOMIC_SEQ_CST);
    apic_send_nmi(v->apic_id);
    if (!wait || !vcpu_running(v))
        return;
    /* Out of guest mode = it acknowledged this kick (or a later one), or it is
     * parked in root mode (wait-for-SIPI) and serves requests there, or it is
     * halted for good and never will. */
    uint64_t t0 = rdtsc(), limit = g_bi->tsc_hz / 1000 * KICK_WAIT_MS;
    while (__atomic_load_n(&v->kick_ack, __ATOMIC_ACQUIRE) < seq && vcpu_running(v)) {
        if (rdtsc() - t0 > limit) {
            log_warn("kick of vCPU %u not acknowledged in %u ms (TSC): going on", v->index,
                     KICK_WAIT_MS);
            return;
        }
        /* Two vCPUs kicking each other with wait would wait forever for the other's
         * acknowledgement: we are out of guest mode too, so acknowledge our own kicks
         * (their requests are served before our next entry). */
        if (self && self->kick_ack != self->kick_seq)
            __atomic_store_n(&self->kick_ack, __atomic_load_n(&self->kick_seq, __ATOMIC_ACQUIRE),
                             __ATOMIC_RELEASE);
        cpu_relax();
    }
}

/*
 * An NMI taken in root mode (trap.c): if this CPU runs a vCPU, make its next
 * entry exit at once (a zero VMX-preemption timer exits before any guest
 * instruction, SDM Vol. 3C 27.7.4 VMX-Preemption Timer), so a kick that raced with our last look at
 * the request word is not slept through.  An NMI that woke the idle HLT moves RIP past it so the
 * waiter re-checks its state (no lost wake-up).
 */
/*
 * Kick NMIs are counted at both ends, so an NMI is the guest's exactly when
 * every kick NMI sent to this CPU has already arrived.  A request word alone
 * cannot tell: a kick whose request was served in root mode may still have
 * its NMI in flight, and that NMI must not reach the guest.  True if the
 * arriving NMI was a kick.
 */
static bool kick_nmi_arrived(struct vcpu *v)
{
    uint64_t seen = __atomic_load_n(&v->nmi_seen, __ATOMIC_ACQUIRE);
    while (seen < __atomic_load_n(&v->nmi_sent, __ATOMIC_ACQUIRE))
        if (__atomic_compare_exchange_n(&v->nmi_seen, &seen, seen + 1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_ACQUIRE))
            return true;
    return false;
}

void vmx_root_nmi(uint64_t *rip)
{
    extern char vmx_idle_check[], vmx_idle_hlt[];
    struct cpu *c = this_cpu();
    if (!c || !c->vcpu || c->vcpu->state == VCPU_OFF)
        return;
    kick_nmi_arrived(c->vcpu);
    vmwrite(VMCS_PREEMPT_TIMER_VALUE, 0);
    if (*rip >= (uint64_t)(uintptr_t)vmx_idle_check && *rip <= (uint64_t)(uintptr_t)vmx_idle_hlt)
        *rip = (uint64_t)(uintptr_t)vmx_idle_hlt + 1;
}

/*
 * Root-mode wait for a kick, IF=0: only an NMI ends the HLT.  The look at
 * the request word and the HLT form one range that vmx_root_nmi recognises:
 * an NMI anywhere in it resumes after the HLT, so a kick that lands between
 * the look and the HLT is never slept through.
 */
__attribute__((noinline)) void vmx_idle_wait(struct vcpu *v)
{
    __asm__ volatile(".globl vmx_idle_check, vmx_idle_hlt\n"
                     "vmx_idle_check:\n\t"
                     "movl (%0), %%eax\n\t"
                     "testl %%eax, %%eax\n\t"
                     "jnz 1f\n"
                     "vmx_idle_hlt:\n\t"
                     "hlt\n"
                     "1:"
                     :
                     : "r"(&v->requests)
                     : "rax", "memory", "cc");
}

static void inject_pending_nmi(struct vcpu *v)
{
    if (!__atomic_load_n(&v->nmi_pending, __ATOMIC_ACQUIRE)) {
        vmx_set_proc_ctls(v, 0, PROC_NMI_WINDOW);
        return;
    }
    uint64_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
    bool blocked =
        intr & (VMX_INTERRUPTIBILITY_NMI | VMX_INTERRUPTIBILITY_MOV_SS | VMX_INTERRUPTIBILITY_STI);
    bool busy = vmread(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID;
    if (blocked || busy) {
        /* NMI-window exiting: an exit as soon as the guest can take it (SDM Vol. 3C 27.7.6
         * NMI-Window Exiting). */
        vmx_set_proc_ctls(v, PROC_NMI_WINDOW, 0);
        return;
    }
    __atomic_sub_fetch(&v->nmi_pending, 1, __ATOMIC_SEQ_CST);
    v->stats.guest_nmis_injected++;
    vmwrite(VMCS_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
    /* An NMI wakes a halted CPU (SDM Vol. 3C 27.7.2 Activity State). */
    if (vmread(VMCS_GUEST_ACTIVITY_STATE) == VMX_ACTIVITY_HLT)
        vmwrite(VMCS_GUEST_ACTIVITY_STATE, VMX_ACTIVITY_ACTIVE);
    vmx_set_proc_ctls(v, v->nmi_pending ? PROC_NMI_WINDOW : 0,
                      v->nmi_pending ? 0 : PROC_NMI_WINDOW);
}

void exit_nmi_window(struct vcpu *v)
{
    vmx_set_proc_ctls(v, 0, PROC_NMI_WINDOW);
    /* inject_pending_nmi (before entry) does the work. */
}

/*
 * An NMI exit (NMI exiting, SDM Vol. 3C 25.6.1 Pin-Based VM-Execution Controls): ours when a kick
 * NMI is still outstanding (kick_nmi_arrived); otherwise it came from outside (watchdog, chipset)
 * and belongs to the guest, which gets it as a virtual NMI.  (Two kick NMIs merged by the hardware
 * leave one outstanding, which a later outside NMI then settles: rare, and it can only cost an
 * outside NMI.)  Guest NMI IPIs never come this way: apic.c counts them in software.  Exceptions
 * exit only for the vectors set in the exception bitmap (the KVMI binding's #BP and #DB, offered to
 * vmx_hooks.exception first); one the hook leaves is re-injected unchanged.
 */
/*
 * After a VM exit caused by an NMI, NMIs stay blocked until the next IRET
 * (SDM Vol. 3C 28.1 Architectural State Before a VM Exit, as after any NMI delivery); root mode has
 * no IRET of its own, so a kick to a vCPU parked in root mode would never arrive.  An IRET to the
 * next instruction ends the blocking, as KVM does after NMI exits.
 */
static void unblock_nmis(void)
{
    __asm__ volatile("movq %%ss, %%rax\n\t"
                     "pushq %%rax\n\t"
                     "pushq %%rsp\n\t"
                     "addq $8, (%%rsp)\n\t"
                     "pushfq\n\t"
                     "movq %%cs, %%rax\n\t"
                     "pushq %%rax\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "iretq\n"
                     "1:"
                     :
                     :
                     : "rax", "memory", "cc");
}

void exit_nmi(struct vcpu *v, uint32_t info)
{
    if ((info & INTR_INFO_TYPE_MASK) == INTR_TYPE_NMI) {
        unblock_nmis();
        if (kick_nmi_arrived(v)) {
            v->stats.kicks_received++;
        } else {
            __atomic_add_fetch(&v->nmi_pending, 1, __ATOMIC_SEQ_CST);
            v->stats.hw_nmis_reinjected++;
        }
        return;
    }
    if (vmx_hooks.exception(v, info)) /* KVMI: #BP for the introspector, #DB of a KVMI step */
        return;
    uint32_t e = info & ~(INTR_INFO_NMI_UNBLOCK | (1u << 12));
    vmwrite(VMCS_ENTRY_INTR_INFO, e);
    if (info & INTR_INFO_ERRCODE)
        vmwrite(VMCS_ENTRY_EXCEPTION_ERRCODE, vmread(VMCS_EXIT_INTR_ERRCODE));
    if ((info & INTR_INFO_TYPE_MASK) >= INTR_TYPE_SW_INTR)
        vmwrite(VMCS_ENTRY_INSTR_LEN, vmread(VMCS_EXIT_INSTR_LEN));
}

/* Requests other cores left in the request word; false when the vCPU must not enter. */
static void serve_requests(struct vcpu *v)
{
    uint64_t seq = __atomic_load_n(&v->kick_seq, __ATOMIC_ACQUIRE);
    uint32_t req = __atomic_exchange_n(&v->requests, 0, __ATOMIC_SEQ_CST);
    spin_lock(&v->lock);
    if (v->init_pending) {
        /* INIT (SDM Vol. 3A 10.1 Initialization Overview, 11.6.1 Interrupt Command Register (ICR)):
         * the CPU waits for a SIPI; owed NMIs are dropped. */
        v->init_pending = 0;
        v->state = VCPU_WAIT_SIPI;
        v->nmi_pending = 0;
        vmx_view_close(v); /* the SIPI's code must not start with a step's page open */
        v->stats.inits++;
        log_debug("vCPU %u: INIT, waiting for SIPI", v->index);
    }
    spin_unlock(&v->lock);
    if (req & VCPU_REQ_STATS)
        vmx_print_stats(v);
    if (req & VCPU_REQ_INVEPT)
        vmx_flush_ept();
    drain_jobs(v);
    if (req || seq != v->kick_ack)
        __atomic_store_n(&v->kick_ack, seq, __ATOMIC_RELEASE);
}

void vmx_before_entry(struct vcpu *v)
{
    /* Timer first, requests second: an NMI after our look zeroes the timer. */
    vmwrite(VMCS_PREEMPT_TIMER_VALUE, v->preempt_ticks);
    do
        serve_requests(v);
    while (vmx_hooks.before_entry(v)); /* KVMI: commands, pause loop (vmx/kvmi_arch.c) */
    if (__atomic_load_n(&g_vmx.freeze, __ATOMIC_ACQUIRE))
        vmx_freeze_park(v); /* S3 (sleep.c): no guest code until the sleep or its failure */
    while (v->state == VCPU_WAIT_SIPI) {
        if (__atomic_load_n(&g_vmx.freeze, __ATOMIC_ACQUIRE))
            vmx_freeze_park(v);
        spin_lock(&v->lock);
        if (v->pending_sipi) {
            uint32_t vec = v->sipi_vector;
            v->pending_sipi = 0;
            v->state = VCPU_RUNNING;
            spin_unlock(&v->lock);
            vcpu_start_at_sipi(v, vec);
            break;
        }
        spin_unlock(&v->lock);
        vmx_idle_wait(v);
        do
            serve_requests(v);
        while (vmx_hooks.before_entry(v)); /* KVMI: a parked AP serves pauses too */
    }
    inject_pending_nmi(v);
    vmx_view_guard(v);
}
