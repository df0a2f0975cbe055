/*
 * sim_vm.c - the fake VM of kvmi-sim: its vCPU threads, guest mode and
 * kicks (kvmi_arch_kick/poll), the scripted guest and the injection of the
 * tool's exceptions; sim_arch.c has the rest of kvmi_arch.h over it.
 *
 * Each vCPU is a thread running the scripted guest loop documented in
 * docs/kvmi-sim.md.  "Guest mode" is modelled by in_guest: a kick sets a
 * flag the vCPU checks between guest steps (an exit), and kick-and-wait
 * waits until in_guest is false, as an NMI kick waits for the VM exit on
 * bare metal.  Every engine call (events, kvmi_vcpu_service) happens with
 * in_guest false.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "x86_arch.h"

#define PATTERN  0xA5A5A5A5A5A5A5A5ull
#define GVA_BASE 0xffff800000000000ull

/* ---- set-up ---------------------------------------------------------------- */

static struct kvm_segment seg(uint16_t sel, uint8_t type, bool code)
{
    struct kvm_segment s = {.base = 0,
                            .limit = 0xffffffff,
                            .selector = sel,
                            .type = type,
                            .present = 1,
                            .dpl = 0,
                            .db = code ? 0 : 1,
                            .s = 1,
                            .l = code,
                            .g = 1};
    return s;
}

static void vcpu_reset_state(struct sim_vcpu *v)
{
    unsigned i = v->idx;
    memset(&v->regs, 0, sizeof(v->regs));
    memset(&v->sregs, 0, sizeof(v->sregs));
    v->regs.rip = 0x1000 + 0x100ull * i;
    v->regs.rsp = 0x80000 + 0x1000ull * i;
    v->regs.rax = i;
    v->regs.rflags = 0x202;
    v->sregs.cs = seg(0x10, 11, true);
    v->sregs.ds = v->sregs.es = v->sregs.ss = seg(0x18, 3, false);
    v->sregs.fs = v->sregs.gs = seg(0, 3, false);
    v->sregs.tr = (struct kvm_segment){
        .base = 0x7000, .limit = 0x67, .selector = 0x28, .type = 11, .present = 1};
    v->sregs.ldt = (struct kvm_segment){.unusable = 1};
    v->sregs.gdt = (struct kvm_dtable){.base = 0x5000, .limit = 0x37};
    v->sregs.idt = (struct kvm_dtable){.base = 0x6000, .limit = 0xfff};
    v->sregs.cr0 = 0x80050033;
    v->sregs.cr3 = 0x100000;
    v->sregs.cr4 = 0x20;
    v->sregs.efer = 0xd01;
    v->sregs.apic_base = 0xfee00800 | (i == 0 ? 0x100 : 0);
    v->star = (uint64_t)MSR_IA32_STAR << 32;
    v->lstar = (uint64_t)MSR_IA32_LSTAR << 32;
    v->cstar = 0;
    v->sysenter_cs = (uint64_t)MSR_IA32_SYSENTER_CS << 32;
    v->sysenter_esp = (uint64_t)MSR_IA32_SYSENTER_ESP << 32;
    v->sysenter_eip = (uint64_t)MSR_IA32_SYSENTER_EIP << 32;
    v->pat = 0x0007040600070406ull;
    v->kernel_gs_base = 0;
    v->xcr0 = 0x3;
}

int sim_vm_init(struct sim *s, unsigned nr_vcpus, unsigned max_vcpus, unsigned mem_mib)
{
    s->nr_vcpus = nr_vcpus;
    s->max_vcpus = max_vcpus;
    s->mem_size = (uint64_t)mem_mib << 20;
    s->mem = malloc(s->mem_size);
    s->access = malloc(s->mem_size >> 12);
    if (!s->mem || !s->access)
        return -1;
    for (uint64_t g = 0; g < s->mem_size; g += 8) {
        uint64_t val = g ^ PATTERN;
        memcpy(s->mem + g, &val, 8);
    }
    memset(s->access, KVMI_PAGE_ACCESS_RWX, s->mem_size >> 12);
    /* every possible vCPU is set up now, so a hot-plug only starts a thread */
    for (unsigned i = 0; i < max_vcpus; i++) {
        struct sim_vcpu *v = V(i);
        v->idx = i;
        pthread_mutex_init(&v->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&v->cv, &ca);
        vcpu_reset_state(v);
    }
    return 0;
}

/* ---- guest mode and kicks ------------------------------------------------- */

static __thread int tls_vcpu = -1; /* the vCPU this thread is, if any */

static void deadline_after(struct timespec *ts, unsigned us)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += (long)(us % 1000000) * 1000;
    ts->tv_sec += us / 1000000 + ts->tv_nsec / 1000000000;
    ts->tv_nsec %= 1000000000;
}

static void guest_exit(struct sim_vcpu *v)
{
    pthread_mutex_lock(&v->mu);
    v->in_guest = false;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
}

static void deliver_pending(struct sim_vcpu *v);

/* Root-mode work before (re-)entering the guest, then enter. */
static void guest_enter(struct sim_vcpu *v)
{
    for (;;) {
        pthread_mutex_lock(&v->mu);
        v->kicked = false;
        pthread_mutex_unlock(&v->mu);
        kvmi_vcpu_service(&g_sim.vm, v->idx);
        deliver_pending(v);
        pthread_mutex_lock(&v->mu);
        bool again = v->kicked || kvmi_vcpu_has_work(&g_sim.vm, v->idx);
        if (!again)
            v->in_guest = true;
        pthread_mutex_unlock(&v->mu);
        if (!again)
            return;
    }
}

/* Between two guest steps: a pending kick is a VM exit. */
static void exit_point(struct sim_vcpu *v)
{
    pthread_mutex_lock(&v->mu);
    bool kicked = v->kicked;
    pthread_mutex_unlock(&v->mu);
    if (kicked || kvmi_vcpu_has_work(&g_sim.vm, v->idx)) {
        guest_exit(v);
        guest_enter(v);
    }
}

unsigned sim_nr_vcpus(void)
{
    return __atomic_load_n(&g_sim.nr_vcpus, __ATOMIC_ACQUIRE);
}

void kvmi_arch_kick(struct kvmi_vm *vm, unsigned vcpu, bool wait)
{
    (void)vm;
    if (vcpu >= sim_nr_vcpus())
        return;
    struct sim_vcpu *v = V(vcpu);
    if (tls_vcpu == (int)vcpu)
        return; /* the vCPU itself is in root mode */
    pthread_mutex_lock(&v->mu);
    v->kicked = true;
    pthread_cond_broadcast(&v->cv);
    while (wait && v->in_guest)
        pthread_cond_wait(&v->cv, &v->mu);
    pthread_mutex_unlock(&v->mu);
}

void kvmi_arch_poll(struct kvmi_vm *vm, int vcpu)
{
    (void)vm;
    if (vcpu < 0 || (unsigned)vcpu >= sim_nr_vcpus()) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
        return;
    }
    /* a vCPU waiting for a reply: sleep until a job is queued (kick) */
    struct sim_vcpu *v = V((unsigned)vcpu);
    struct timespec ts;
    deadline_after(&ts, 2000);
    pthread_mutex_lock(&v->mu);
    if (!v->kicked)
        pthread_cond_timedwait(&v->cv, &v->mu, &ts);
    v->kicked = false;
    pthread_mutex_unlock(&v->mu);
}

/* ---- the scripted guest --------------------------------------------------- */

static void write_cr(struct sim_vcpu *v, unsigned cr, uint64_t val)
{
    uint64_t *reg = cr == 0 ? &v->sregs.cr0 : cr == 3 ? &v->sregs.cr3 : &v->sregs.cr4;
    uint64_t nv = val;
    guest_exit(v);
    enum kvmi_verdict vd = kvmi_event_cr(&g_sim.vm, v->idx, cr, *reg, &nv);
    if (vd == KVMI_V_FAIL)
        v->gp_faults++; /* refused write: #GP in KVM */
    else
        *reg = nv;
    guest_enter(v);
}

uint64_t *sim_msr_slot(struct sim_vcpu *v, uint32_t msr)
{
    switch (msr) {
    case MSR_IA32_STAR:
        return &v->star;
    case MSR_IA32_LSTAR:
        return &v->lstar;
    case MSR_IA32_CSTAR:
        return &v->cstar;
    case MSR_IA32_SYSENTER_CS:
        return &v->sysenter_cs;
    case MSR_IA32_SYSENTER_ESP:
        return &v->sysenter_esp;
    case MSR_IA32_SYSENTER_EIP:
        return &v->sysenter_eip;
    case MSR_IA32_PAT:
        return &v->pat;
    case MSR_IA32_KERNEL_GS_BASE:
        return &v->kernel_gs_base;
    case MSR_IA32_EFER:
        return &v->sregs.efer;
    case MSR_IA32_FS_BASE:
        return &v->sregs.fs.base;
    case MSR_IA32_GS_BASE:
        return &v->sregs.gs.base;
    case MSR_IA32_APIC_BASE:
        return &v->sregs.apic_base;
    default:
        return NULL;
    }
}

static void wrmsr(struct sim_vcpu *v, uint32_t msr, uint64_t val)
{
    uint64_t *slot = sim_msr_slot(v, msr);
    uint64_t nv = val;
    guest_exit(v);
    enum kvmi_verdict vd = kvmi_event_msr(&g_sim.vm, v->idx, msr, *slot, &nv);
    if (vd == KVMI_V_FAIL)
        v->gp_faults++;
    else
        *slot = nv;
    guest_enter(v);
}

static void int3(struct sim_vcpu *v)
{
    guest_exit(v);
    enum kvmi_verdict vd = kvmi_event_breakpoint(&g_sim.vm, v->idx, v->regs.rip, 1);
    /* CONTINUE re-injects #BP (the guest's own handler would run);
     * RETRY: the tool handled it, nothing is injected. */
    if (vd == KVMI_V_CONTINUE)
        v->bp_reinject = true;
    guest_enter(v);
}

static void vmcall(struct sim_vcpu *v)
{
    uint64_t rax = v->regs.rax, rdi = v->regs.rdi, rsi = v->regs.rsi;
    v->regs.rax = KVM_HC_XEN_HVM_OP;
    v->regs.rdi = KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT;
    v->regs.rsi = 0;
    guest_exit(v);
    uint64_t result;
    if (kvmi_is_event_hypercall(&v->regs, kvmi_vcpu_mode(&v->sregs)))
        kvmi_event_hypercall(&g_sim.vm, v->idx, &result);
    guest_enter(v);
    /* the guest's caller restores its registers, so RAX = i at rest */
    v->regs.rax = rax;
    v->regs.rdi = rdi;
    v->regs.rsi = rsi;
}

static void xsetbv(struct sim_vcpu *v)
{
    uint64_t nv = (v->k % 2 == 0) ? 0x7 : 0x3;
    if (nv == v->xcr0)
        return;
    uint64_t rax = v->regs.rax, rcx = v->regs.rcx, rdx = v->regs.rdx;
    v->regs.rax = nv;
    v->regs.rdx = 0;
    v->regs.rcx = 0;
    guest_exit(v);
    enum kvmi_verdict vd = kvmi_event_xsetbv(&g_sim.vm, v->idx);
    if (vd != KVMI_V_FAIL)
        v->xcr0 = nv;
    guest_enter(v);
    v->regs.rax = rax;
    v->regs.rcx = rcx;
    v->regs.rdx = rdx;
}

static void descriptor(struct sim_vcpu *v, uint8_t which, bool write)
{
    guest_exit(v);
    /* CONTINUE/NONE: the instruction executes; the tables are reloaded
     * with the values they already hold, so nothing visible changes. */
    kvmi_event_descriptor(&g_sim.vm, v->idx, which, write);
    guest_enter(v);
}

/* One guest memory access; false if it did not happen this iteration. */
static bool access_page(struct sim_vcpu *v, uint64_t gpa, uint8_t right, uint64_t store)
{
    uint8_t allowed = __atomic_load_n(&g_sim.access[gpa >> 12], __ATOMIC_ACQUIRE);
    bool done = true;
    if (!(allowed & right)) {
        guest_exit(v);
        struct kvmi_event_pf_reply rpl;
        enum kvmi_verdict vd = kvmi_event_pf(&g_sim.vm, v->idx, gpa, gpa + GVA_BASE, right, &rpl);
        /* CONTINUE: KVM emulates the access; NONE/RETRY: re-attempted next
         * iteration; RETRY+singlestep: the access is stepped with the right
         * relaxed, then SINGLESTEP is reported. */
        done = vd == KVMI_V_CONTINUE;
        if (vd == KVMI_V_RETRY && v->singlestep) {
            done = true;
            kvmi_event_singlestep(&g_sim.vm, v->idx);
        }
        guest_enter(v);
    }
    if (done && right == KVMI_PAGE_ACCESS_W)
        memcpy(g_sim.mem + gpa, &store, sizeof(store));
    if (done && right != KVMI_PAGE_ACCESS_W) {
        volatile uint64_t sink;
        memcpy((void *)&sink, g_sim.mem + gpa, sizeof(sink));
    }
    return done;
}

static void iteration(struct sim_vcpu *v)
{
    uint64_t k = v->k;
    unsigned i = v->idx;
    write_cr(v, 0, v->sregs.cr0 ^ (1ull << 16));
    exit_point(v);
    write_cr(v, 3, 0x100000 + 0x1000 * (k % 4));
    exit_point(v);
    write_cr(v, 4, v->sregs.cr4 ^ (1ull << 7));
    exit_point(v);
    static const uint32_t msrs[] = {MSR_IA32_STAR, MSR_IA32_LSTAR, MSR_IA32_SYSENTER_CS,
                                    MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP};
    for (unsigned m = 0; m < 5; m++) {
        wrmsr(v, msrs[m], ((uint64_t)msrs[m] << 32) | (k + 1));
        exit_point(v);
    }
    int3(v);
    exit_point(v);
    vmcall(v);
    exit_point(v);
    xsetbv(v);
    exit_point(v);
    descriptor(v, KVMI_DESC_IDTR, true);
    descriptor(v, KVMI_DESC_GDTR, true);
    descriptor(v, KVMI_DESC_LDTR, true);
    descriptor(v, KVMI_DESC_TR, true);
    descriptor(v, KVMI_DESC_IDTR, false);
    exit_point(v);
    access_page(v, 0x200000 + 0x1000ull * i, KVMI_PAGE_ACCESS_R, 0);
    exit_point(v);
    access_page(v, 0x300000 + 0x1000ull * i, KVMI_PAGE_ACCESS_W, k);
    exit_point(v);
    access_page(v, 0x400000 + 0x1000ull * i, KVMI_PAGE_ACCESS_X, 0);
    v->k++;
}

/* At guest entry: deliver the tool's exception unless another event is
 * already being injected (then it is dropped and TRAP reports the other). */
static void deliver_pending(struct sim_vcpu *v)
{
    if (v->exc_pending && v->bp_reinject) {
        v->exc_pending = false; /* dropped: the #BP is being re-injected */
        v->exc_collided = true;
    }
    if (v->exc_collided) {
        v->exc_collided = false;
        if (v->bp_reinject) /* INT3: software exception (interruption type 6) */
            kvmi_exception_collided(&g_sim.vm, v->idx, 3, 6, 0, v->sregs.cr2);
        else /* hardware exception (interruption type 3) */
            kvmi_exception_collided(&g_sim.vm, v->idx, v->exc_nr, 3,
                                    v->exc_has_error ? v->exc_error : 0, v->sregs.cr2);
    }
    if (v->exc_pending) {
        v->exc_pending = false;
        if (v->exc_nr == 14)
            v->sregs.cr2 = v->exc_addr;
        v->exceptions_delivered++;
    }
    if (v->bp_reinject) {
        v->bp_reinject = false;
        v->bp_reinjected++;
    }
}

static void *vcpu_thread(void *arg)
{
    struct sim_vcpu *v = arg;
    tls_vcpu = (int)v->idx;
    for (;;) {
        /* the guest runs for one period (kicks are exits within it), then
         * the next iteration of the script */
        struct timespec ts;
        deadline_after(&ts, g_sim.period_us);
        for (;;) {
            guest_exit(v);
            guest_enter(v);
            int rc = 0;
            pthread_mutex_lock(&v->mu);
            while (!v->kicked && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&v->cv, &v->mu, &ts);
            bool kicked = v->kicked;
            pthread_mutex_unlock(&v->mu);
            if (!kicked)
                break;
        }
        iteration(v);
    }
    return NULL;
}

void sim_vm_start(struct sim *s)
{
    for (unsigned i = 0; i < s->nr_vcpus; i++) {
        pthread_create(&s->vcpus[i].thread, NULL, vcpu_thread, &s->vcpus[i]);
    }
}

int sim_vm_hotplug(struct sim *s)
{
    unsigned i = sim_nr_vcpus();
    if (i >= s->max_vcpus)
        return -1;
    /* Counted first (commands for it are accepted from now on), then the
     * engine queues its CREATE_VCPU, then it starts: its thread's first act
     * is kvmi_vcpu_service(), so the event comes before iteration 0 of the
     * guest loop, and the vCPU stays there until the tool replies. */
    __atomic_store_n(&s->nr_vcpus, i + 1, __ATOMIC_RELEASE);
    kvmi_vcpu_added(&s->vm, i);
    pthread_create(&s->vcpus[i].thread, NULL, vcpu_thread, &s->vcpus[i]);
    return (int)i;
}
