/*
 * caps.c - judge whether the VT-x features the hypervisor depends on are
 * present, from facts read elsewhere (vmx_caps_read).  Pure: no CPU access,
 * no libc (it is linked into the EFI loader too), so messages are assembled
 * with a tiny local formatter.
 *
 * SDM references: Vol. 3C 24.6 Discovering Support for VMX, 24.7 Enabling
 * and Entering VMX Operation (IA32_FEATURE_CONTROL), Vol. 3D Appendix A
 * VMX Capability Reporting Facility (A.2 Reserved Controls and Default
 * Settings, A.3-A.5 the execution, exit and entry controls, A.10 VPID and
 * EPT Capabilities).
 */
#include "vmx_caps.h"
#include "vmx_defs.h"

#include "msg.h"

static unsigned bit_index(uint64_t single_bit)
{
    unsigned i = 0;
    while (single_bit > 1) {
        single_bit >>= 1;
        i++;
    }
    return i;
}

/* ---- capability MSR selection (SDM Vol. 3 A.2-A.5) ------------------------ */

static bool has_true_ctls(const struct vmx_cpu_facts *f)
{
    return (f->basic & VMX_BASIC_TRUE_CTLS) != 0;
}

static bool secondary_available(const struct vmx_cpu_facts *f)
{
    /* A.3.2: the secondary controls (and their MSR) exist only if bit 63 of
     * IA32_VMX_PROCBASED_CTLS ("activate secondary controls" allowed-1) is 1. */
    return ((f->procbased >> 32) & PROC_SECONDARY_CTLS) != 0;
}

uint64_t vmx_caps_ctl_msr(const struct vmx_cpu_facts *f, enum vmx_ctl_kind k)
{
    bool t = has_true_ctls(f);
    switch (k) {
    case VMX_CTL_PIN:
        return t ? f->true_pin : f->pinbased;
    case VMX_CTL_PROC:
        return t ? f->true_proc : f->procbased;
    case VMX_CTL_PROC2:
        /* A.3.3: bits 31:0 of IA32_VMX_PROCBASED_CTLS2 are reserved 0 (every
         * secondary control may be 0); mask them in case a VMM above us lies. */
        return secondary_available(f) ? (f->procbased2 & 0xffffffff00000000ull) : 0;
    case VMX_CTL_EXIT:
        return t ? f->true_exit : f->exit;
    case VMX_CTL_ENTRY:
        return t ? f->true_entry : f->entry;
    default:
        return 0;
    }
}

uint32_t vmx_caps_ctl_msr_index(const struct vmx_cpu_facts *f, enum vmx_ctl_kind k)
{
    bool t = has_true_ctls(f);
    switch (k) {
    case VMX_CTL_PIN:
        return t ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS;
    case VMX_CTL_PROC:
        return t ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS;
    case VMX_CTL_PROC2:
        return MSR_IA32_VMX_PROCBASED_CTLS2;
    case VMX_CTL_EXIT:
        return t ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS;
    case VMX_CTL_ENTRY:
        return t ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS;
    default:
        return 0;
    }
}

const char *vmx_caps_ctl_msr_name(const struct vmx_cpu_facts *f, enum vmx_ctl_kind k)
{
    bool t = has_true_ctls(f);
    switch (k) {
    case VMX_CTL_PIN:
        return t ? "IA32_VMX_TRUE_PINBASED_CTLS" : "IA32_VMX_PINBASED_CTLS";
    case VMX_CTL_PROC:
        return t ? "IA32_VMX_TRUE_PROCBASED_CTLS" : "IA32_VMX_PROCBASED_CTLS";
    case VMX_CTL_PROC2:
        return "IA32_VMX_PROCBASED_CTLS2";
    case VMX_CTL_EXIT:
        return t ? "IA32_VMX_TRUE_EXIT_CTLS" : "IA32_VMX_EXIT_CTLS";
    case VMX_CTL_ENTRY:
        return t ? "IA32_VMX_TRUE_ENTRY_CTLS" : "IA32_VMX_ENTRY_CTLS";
    default:
        return "?";
    }
}

bool vmx_caps_can_set(const struct vmx_cpu_facts *f, enum vmx_ctl_kind k, uint32_t bit)
{
    return ((vmx_caps_ctl_msr(f, k) >> 32) & bit) == bit;
}

uint64_t vmx_caps_ept_vpid(const struct vmx_cpu_facts *f)
{
    if (vmx_caps_can_set(f, VMX_CTL_PROC2, PROC2_EPT) ||
        vmx_caps_can_set(f, VMX_CTL_PROC2, PROC2_VPID))
        return f->ept_vpid_cap;
    return 0;
}

uint64_t vmx_caps_feature_control_fixup(uint64_t fc)
{
    if (fc & FEATURE_CONTROL_LOCK)
        return 0;
    /* Keep whatever else firmware enabled (SGX, SENTER bits); lock so the
     * setting holds until reset, as firmware would have done. */
    return fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
}

/* ---- the requirement list ------------------------------------------------- */

enum req_kind {
    REQ_CTL,     /* allowed-1 setting of one control bit */
    REQ_CAP_ALL, /* every bit of mask set in IA32_VMX_EPT_VPID_CAP */
    REQ_CAP_ANY, /* at least one bit of mask set in IA32_VMX_EPT_VPID_CAP */
};

enum req_id {
    R_SECONDARY,
    R_EPT,
    R_EPT_PWL4,
    R_EPT_WB,
    R_INVEPT,
    R_INVEPT_TYPE,
    R_UNRESTRICTED,
    R_VPID,
    R_INVVPID,
    R_INVVPID_TYPE,
    R_PREEMPT,
    R_NMI_EXITING,
    R_VIRTUAL_NMIS,
    R_NMI_WINDOW,
    R_MSR_BITMAPS,
    R_IO_BITMAPS,
    R_HOST64,
    R_GUEST64,
    R_COUNT,
    R_NONE = R_COUNT
};

struct req {
    const char *feature;
    const char *what; /* the bit(s) in SDM words */
    uint8_t kind;
    uint8_t ctl;
    uint8_t needs; /* skipped (not double-reported) when this one is missing */
    uint64_t mask;
};

/* Why each is required (DESIGN.md, "Execution model" and "Memory"):
 * EPT/INVEPT hide the hypervisor and restrict pages; unrestricted guest runs
 * APs from SIPI in real mode; VPID avoids TLB flushes per exit; the
 * preemption timer paces service polls and forced exits; NMI exiting,
 * virtual NMIs and NMI-window exiting carry kicks without losing guest NMIs;
 * the bitmaps keep exits to what is intercepted. */
static const struct req reqs[R_COUNT] = {
    [R_SECONDARY] = {"secondary processor-based controls", "activate secondary controls", REQ_CTL,
                     VMX_CTL_PROC, R_NONE, PROC_SECONDARY_CTLS},
    [R_EPT] = {"EPT", "enable EPT", REQ_CTL, VMX_CTL_PROC2, R_NONE, PROC2_EPT},
    [R_EPT_PWL4] = {"EPT 4-level page walk", "page-walk length of 4", REQ_CAP_ALL, 0, R_EPT,
                    EPT_CAP_PWL4},
    [R_EPT_WB] = {"EPT write-back paging structures", "WB memory type for EPT structures",
                  REQ_CAP_ALL, 0, R_EPT, EPT_CAP_MEMTYPE_WB},
    [R_INVEPT] = {"EPT invalidation (INVEPT)", "INVEPT supported", REQ_CAP_ALL, 0, R_EPT,
                  EPT_CAP_INVEPT},
    [R_INVEPT_TYPE] = {"EPT invalidation (INVEPT single- or all-context)",
                       "single-context / all-context INVEPT", REQ_CAP_ANY, 0, R_INVEPT,
                       EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL},
    [R_UNRESTRICTED] = {"unrestricted guest", "unrestricted guest", REQ_CTL, VMX_CTL_PROC2, R_NONE,
                        PROC2_UNRESTRICTED},
    [R_VPID] = {"VPID", "enable VPID", REQ_CTL, VMX_CTL_PROC2, R_NONE, PROC2_VPID},
    [R_INVVPID] = {"VPID invalidation (INVVPID)", "INVVPID supported", REQ_CAP_ALL, 0, R_VPID,
                   VPID_CAP_INVVPID},
    [R_INVVPID_TYPE] = {"VPID invalidation (INVVPID single- or all-context)",
                        "single-context / all-context INVVPID", REQ_CAP_ANY, 0, R_INVVPID,
                        VPID_CAP_INVVPID_SINGLE | VPID_CAP_INVVPID_ALL},
    [R_PREEMPT] = {"VMX-preemption timer", "activate VMX-preemption timer", REQ_CTL, VMX_CTL_PIN,
                   R_NONE, PIN_PREEMPT_TIMER},
    [R_NMI_EXITING] = {"NMI exiting", "NMI exiting", REQ_CTL, VMX_CTL_PIN, R_NONE, PIN_NMI_EXITING},
    [R_VIRTUAL_NMIS] = {"virtual NMIs", "virtual NMIs", REQ_CTL, VMX_CTL_PIN, R_NONE,
                        PIN_VIRTUAL_NMIS},
    [R_NMI_WINDOW] = {"NMI-window exiting", "NMI-window exiting", REQ_CTL, VMX_CTL_PROC, R_NONE,
                      PROC_NMI_WINDOW},
    [R_MSR_BITMAPS] = {"use MSR bitmaps", "use MSR bitmaps", REQ_CTL, VMX_CTL_PROC, R_NONE,
                       PROC_USE_MSR_BITMAPS},
    [R_IO_BITMAPS] = {"use I/O bitmaps", "use I/O bitmaps", REQ_CTL, VMX_CTL_PROC, R_NONE,
                      PROC_USE_IO_BITMAPS},
    [R_HOST64] = {"64-bit host (host address-space size)", "host address-space size", REQ_CTL,
                  VMX_CTL_EXIT, R_NONE, EXIT_HOST_ADDR64},
    [R_GUEST64] = {"IA-32e mode guest", "IA-32e mode guest", REQ_CTL, VMX_CTL_ENTRY, R_NONE,
                   ENTRY_IA32E_GUEST},
};

static void describe_ctl(struct msg *m, const struct vmx_cpu_facts *f, const struct req *r)
{
    enum vmx_ctl_kind k = (enum vmx_ctl_kind)r->ctl;
    unsigned b = bit_index(r->mask);

    msg_start(m);
    msg_put(m, vmx_caps_ctl_msr_name(f, k));
    msg_put(m, " (");
    msg_hex(m, vmx_caps_ctl_msr_index(f, k));
    msg_put(m, ") ");
    if (k == VMX_CTL_PROC2 && !secondary_available(f)) {
        msg_put(m, "does not exist (IA32_VMX_PROCBASED_CTLS bit 63 is 0): control '");
        msg_put(m, r->what);
        msg_put(m, "' (bit ");
        msg_dec(m, b);
        msg_put(m, ") cannot be set");
        return;
    }
    msg_put(m, "= ");
    msg_hex(m, vmx_caps_ctl_msr(f, k));
    msg_put(m, ": bit ");
    msg_dec(m, 32 + b);
    msg_put(m, " (allowed-1 of control '");
    msg_put(m, r->what);
    msg_put(m, "', bit ");
    msg_dec(m, b);
    msg_put(m, ") is 0");
}

static void describe_cap(struct msg *m, const struct vmx_cpu_facts *f, const struct req *r)
{
    uint64_t cap = vmx_caps_ept_vpid(f);
    uint64_t missing = r->mask & ~cap;
    bool first = true;

    msg_start(m);
    msg_put(m, "IA32_VMX_EPT_VPID_CAP (0x48c) = ");
    msg_hex(m, cap);
    msg_put(m, r->kind == REQ_CAP_ANY ? ": none of bits " : ": bit ");
    for (unsigned i = 0; i < 64; i++) {
        if (!(missing & (1ull << i)))
            continue;
        if (!first)
            msg_put(m, ", ");
        msg_dec(m, i);
        first = false;
    }
    msg_put(m, " (");
    msg_put(m, r->what);
    msg_put(m, r->kind == REQ_CAP_ANY ? ") is set" : ") is 0");
}

static bool req_met(const struct vmx_cpu_facts *f, const struct req *r)
{
    switch (r->kind) {
    case REQ_CTL:
        return vmx_caps_can_set(f, (enum vmx_ctl_kind)r->ctl, (uint32_t)r->mask);
    case REQ_CAP_ALL:
        return (vmx_caps_ept_vpid(f) & r->mask) == r->mask;
    case REQ_CAP_ANY:
        return (vmx_caps_ept_vpid(f) & r->mask) != 0;
    default:
        return false;
    }
}

int vmx_caps_check(const struct vmx_cpu_facts *f, vmx_report_fn report, void *ctx)
{
    struct msg m;
    bool ok[R_COUNT];
    int missing = 0;

    /* SDM Vol. 3C 24.6 Discovering Support for VMX: VMX support is CPUID.1:ECX.VMX[bit 5]; nothing
     * else can be asked (the capability MSRs #GP) when it is 0. */
    if (!(f->cpuid1_ecx & CPUID1_ECX_VMX)) {
        if (report)
            report(ctx, "VMX", "CPUID.1:ECX bit 5 (VMX) is 0");
        return 1;
    }
    if (!f->have_vmx_msrs) {
        if (report)
            report(ctx, "VMX", "VMX capability MSRs (0x480-0x490) were not read");
        return 1;
    }

    /* SDM Vol. 3C 24.7 Enabling and Entering VMX Operation: once firmware locks
     * IA32_FEATURE_CONTROL with VMX outside SMX disabled, VMXON faults until the next reset. */
    if ((f->feature_control & FEATURE_CONTROL_LOCK) &&
        !(f->feature_control & FEATURE_CONTROL_VMX_OUTSIDE_SMX)) {
        msg_start(&m);
        msg_put(&m, "IA32_FEATURE_CONTROL (0x3a) = ");
        msg_hex(&m, f->feature_control);
        msg_put(&m, ": locked (bit 0) with VMX outside SMX (bit 2) clear: disabled by firmware");
        if (report)
            report(ctx, "VMX disabled by firmware", m.s);
        missing++;
    }

    for (unsigned i = 0; i < R_COUNT; i++) {
        const struct req *r = &reqs[i];
        if (r->needs != R_NONE && !ok[r->needs]) {
            /* The prerequisite was already reported; its dependants would
             * only repeat it. */
            ok[i] = false;
            continue;
        }
        ok[i] = req_met(f, r);
        if (ok[i])
            continue;
        missing++;
        if (!report)
            continue;
        if (r->kind == REQ_CTL)
            describe_ctl(&m, f, r);
        else
            describe_cap(&m, f, r);
        report(ctx, r->feature, m.s);
    }
    return missing;
}
