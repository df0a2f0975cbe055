/*
 * sched.c - time, randomness and scheduling for the KVMI engine on bare
 * metal: the TSC rate, RDRAND, kicks, the poll loop of a waiting context, and
 * the park of a guest the introspector crashed.
 */

#include "log.h"
#include "vmx/vmx_int.h"
#include "internal.h"

/* ---- time, randomness, crash ------------------------------------------------------------- */

uint64_t kvmi_arch_tsc_hz(struct kvmi_vm *vm)
{
    (void)vm;
    return g_bi->tsc_hz;
}

uint64_t kvmi_arch_now_ms(struct kvmi_vm *vm)
{
    (void)vm;
    uint64_t per_ms = g_bi->tsc_hz / 1000;
    return rdtsc() / (per_ms ? per_ms : 1);
}

uint64_t kvmi_arch_random(struct kvmi_vm *vm)
{
    (void)vm;
    uint32_t a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    uint64_t r;
    if ((c & (1u << 30)) && rdrand64(&r)) /* CPUID.01H:ECX.RDRAND[bit 30] */
        return r;
    /* No RDRAND: the TSC's low bits mixed (weak, logged once). */
    static bool said;
    if (!said) {
        said = true;
        log_warn("kvmi: no RDRAND; handshake nonce from the TSC");
    }
    uint64_t x = rdtsc() * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29) ^ (rdtsc() << 17);
}

void kvmi_arch_crash(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm;
    if (__atomic_exchange_n(&khv_crashed, 1, __ATOMIC_SEQ_CST) == 0)
        log_error("kvmi: the introspector answered CRASH on vCPU %u: stopping the guest", vcpu);
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        struct vcpu *v = vc(i);
        if (v && i != vcpu && v->state != VCPU_OFF)
            kick(v, false);
    }
}

/* Park for good: out of guest mode, still polling the NIC so the session can
 * end cleanly; kicks do not wait for a halted vCPU. */
__attribute__((noreturn)) void khv_park(struct vcpu *v)
{
    v->state = VCPU_HALTED;
    log_error("kvmi: vCPU %u parked (guest crashed by the introspector)", v->index);
    for (;;) {
        __atomic_store_n(&v->kick_ack, __atomic_load_n(&v->kick_seq, __ATOMIC_ACQUIRE),
                         __ATOMIC_RELEASE);
        service_poll();
        cpu_relax();
    }
}

/* ---- scheduling ----------------------------------------------------------------------------- */

void kvmi_hv_poll(void)
{
    if (khv_running)
        kvmi_check_deadlines(&g_kvmi);
}

void kvmi_arch_kick(struct kvmi_vm *vm, unsigned vcpu, bool wait)
{
    (void)vm;
    struct vcpu *v = vc(vcpu);
    if (v && v->state != VCPU_OFF)
        kick(v, wait);
}

/* A vCPU waiting in root mode is out of guest mode: acknowledge kicks (a
 * kick-and-wait from another core returns) and do the INVEPT another core
 * asked for; the rest of the request word is served before the next entry. */
void khv_ack_requests(struct vcpu *v)
{
    uint64_t seq = __atomic_load_n(&v->kick_seq, __ATOMIC_ACQUIRE);
    uint32_t req = __atomic_fetch_and(&v->requests, ~(uint32_t)VCPU_REQ_INVEPT, __ATOMIC_SEQ_CST);
    if (req & VCPU_REQ_INVEPT)
        vmx_flush_ept();
    __atomic_store_n(&v->kick_ack, seq, __ATOMIC_RELEASE);
}

void kvmi_arch_poll(struct kvmi_vm *vm, int vcpu)
{
    (void)vm;
    struct vcpu *self = this_vcpu();
    if (self)
        khv_ack_requests(self);
    if (vcpu < 0 && __atomic_load_n(&khv_unhook_cpu, __ATOMIC_ACQUIRE) != me1()) {
        /* The receive context waits for send room, but it runs inside
         * service_poll(): only it could make room.  Tell the next send. */
        __atomic_store_n(&khv_starved_cpu, me1(), __ATOMIC_RELEASE);
        return;
    }
    service_poll();
    cpu_relax();
}

void kvmi_arch_relax(struct kvmi_vm *vm)
{
    (void)vm;
    cpu_relax();
}
