/*
 * exit_vmcall.c - VMCALL.  Without a hypervisor VMCALL is #UD, so that is
 * the answer to anything but the KVMI hypercall and, only when hv.conf says
 * `debug_hypercalls = yes`, the debug hypercall: RAX = HV_HYPERCALL_MAGIC from
 * CPL 0, RBX = function (include/vmx.h, docs/vmx.md).  The debug functions
 * are test hooks (region address, forced entry failure, unhook): only the
 * test build has them (include/test_hooks.h), and even there a
 * configuration without the key leaves them off, so a guest cannot tell.
 */
#include <string.h>

#include "core.h"
#include "log.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_hooks.h"
#include "test_hooks.h"

/* 0 when every marker byte is as vmx_init wrote it, else 1 + the first bad offset. */
static uint64_t check_region(void)
{
    for (unsigned o = 0; o + HV_MARKER_LEN <= PAGE_SIZE; o += HV_MARKER_LEN)
        if (memcmp(g_marker_page + o, hv_marker, HV_MARKER_LEN) != 0)
            return o + 1;
    return 0;
}

static uint64_t kick_loop(struct vcpu *self, uint64_t rounds)
{
    uint64_t acked = 0;
    for (uint64_t n = 0; n < rounds; n++) {
        for (unsigned i = 0; i < g_vmx.ncpus; i++) {
            struct vcpu *t = g_vmx.vcpus[i];
            if (!t || t == self || t->state == VCPU_OFF)
                continue;
            uint64_t before = t->kick_ack;
            kick(t, true);
            if (t->kick_ack > before || t->state != VCPU_RUNNING)
                acked++;
        }
    }
    return acked;
}

void exit_vmcall(struct vcpu *v)
{
    struct guest_regs *r = v->regs;
    bool cpl0 = ((vmread(VMCS_GUEST_SS_AR) >> 5) & 3) == 0;
    if (!TEST_HOOKS || !g_bi->config.debug_hypercalls || r->rax != HV_HYPERCALL_MAGIC || !cpl0) {
        if (vmx_hooks.vmcall(v)) /* KVMI: KVMI_EVENT_HYPERCALL (RAX=34, RDI=24, RSI=0) */
            return;
        inject_ud(v);
        return;
    }
    switch (r->rbx) {
    case HV_HC_PING:
        r->rax = 0x600d;
        break;
    case HV_HC_STATS:
        log_info("debug hypercall from vCPU %u: statistics", v->index);
        vmx_print_stats(NULL);
        r->rax = 0;
        break;
    case HV_HC_CHECK_REGION:
        r->rax = check_region();
        log_info("debug hypercall: hypervisor region markers %s", r->rax ? "DAMAGED" : "intact");
        break;
    case HV_HC_KICK_LOOP:
        r->rax = kick_loop(v, r->rcx);
        log_debug("debug hypercall: %llu kick(s) acknowledged", (unsigned long long)r->rax);
        break;
    case HV_HC_REGION_INFO:
        r->rax = (uint64_t)(uintptr_t)g_marker_page;
        r->rcx = HV_MARKER_LEN;
        break;
    case HV_HC_TEST_ENTRY_FAIL:
        /* Proves the diagnosis path on a real VM-entry failure (SDM Vol. 3C 27.8 VM-Entry Failures
         * During or After Loading Guest State): an unusable TR fails the guest-state checks
         * (26.3.1.2); the vCPU is then dumped and halted. */
        log_warn("debug hypercall: making vCPU %u's next VM entry fail (test)", v->index);
        vmwrite(VMCS_GUEST_TR_AR, VMX_AR_UNUSABLE);
        break;
    case HV_HC_KVMI_UNHOOK: /* KVMI: the unhook trigger (vmx/kvmi_arch.c) */
        r->rax = (uint64_t)(int64_t)vmx_hooks.unhook(v);
        break;
    default:
        r->rax = ~0ull;
    }
    vmx_skip_insn(v);
}
