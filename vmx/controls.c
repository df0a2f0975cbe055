/*
 * controls.c - compute the VMCS control fields from the capability MSRs.
 *
 * SDM Vol. 3 A.3-A.5: for each control field, bits 31:0 of its capability
 * MSR are the allowed-0 settings (1 = the control must be 1) and bits 63:32
 * the allowed-1 settings (0 = the control must be 0).  VM entry fails with
 * "invalid control field" (error 7) if any is violated (27.2.1.1), so every
 * field is derived here, never hard coded, and every required control the
 * CPU lacks is named before the first VMLAUNCH.
 */
#include "vmx_caps.h"
#include "vmx_defs.h"
#include "msg.h"

#include <stddef.h>

/* Control names as the SDM spells them (Tables 25-5, 25-6, 25-7, 25-13, 25-15). */
static const char *const pin_names[32] = {
    [0] = "external-interrupt exiting",
    [3] = "NMI exiting",
    [5] = "virtual NMIs",
    [6] = "activate VMX-preemption timer",
    [7] = "process posted interrupts",
};

static const char *const proc_names[32] = {
    [2] = "interrupt-window exiting",
    [3] = "use TSC offsetting",
    [7] = "HLT exiting",
    [9] = "INVLPG exiting",
    [10] = "MWAIT exiting",
    [11] = "RDPMC exiting",
    [12] = "RDTSC exiting",
    [15] = "CR3-load exiting",
    [16] = "CR3-store exiting",
    [17] = "activate tertiary controls",
    [19] = "CR8-load exiting",
    [20] = "CR8-store exiting",
    [21] = "use TPR shadow",
    [22] = "NMI-window exiting",
    [23] = "MOV-DR exiting",
    [24] = "unconditional I/O exiting",
    [25] = "use I/O bitmaps",
    [27] = "monitor trap flag",
    [28] = "use MSR bitmaps",
    [29] = "MONITOR exiting",
    [30] = "PAUSE exiting",
    [31] = "activate secondary controls",
};

static const char *const proc2_names[32] = {
    [0] = "virtualize APIC accesses",
    [1] = "enable EPT",
    [2] = "descriptor-table exiting",
    [3] = "enable RDTSCP",
    [4] = "virtualize x2APIC mode",
    [5] = "enable VPID",
    [6] = "WBINVD exiting",
    [7] = "unrestricted guest",
    [8] = "APIC-register virtualization",
    [9] = "virtual-interrupt delivery",
    [10] = "PAUSE-loop exiting",
    [11] = "RDRAND exiting",
    [12] = "enable INVPCID",
    [13] = "enable VM functions",
    [14] = "VMCS shadowing",
    [15] = "enable ENCLS exiting",
    [16] = "RDSEED exiting",
    [17] = "enable PML",
    [18] = "EPT-violation #VE",
    [19] = "conceal VMX from PT",
    [20] = "enable XSAVES/XRSTORS",
    [22] = "mode-based execute control for EPT",
    [23] = "sub-page write permissions for EPT",
    [24] = "Intel PT uses guest physical addresses",
    [25] = "use TSC scaling",
    [26] = "enable user wait and pause",
    [27] = "enable PCONFIG",
    [28] = "enable ENCLV exiting",
};

static const char *const exit_names[32] = {
    [2] = "save debug controls",
    [9] = "host address-space size",
    [12] = "load IA32_PERF_GLOBAL_CTRL",
    [15] = "acknowledge interrupt on exit",
    [18] = "save IA32_PAT",
    [19] = "load IA32_PAT",
    [20] = "save IA32_EFER",
    [21] = "load IA32_EFER",
    [22] = "save VMX-preemption timer value",
    [23] = "clear IA32_BNDCFGS",
    [24] = "conceal VMX from PT",
    [25] = "clear IA32_RTIT_CTL",
    [28] = "load CET state",
    [29] = "load PKRS",
};

static const char *const entry_names[32] = {
    [2] = "load debug controls",
    [9] = "IA-32e mode guest",
    [10] = "entry to SMM",
    [11] = "deactivate dual-monitor treatment",
    [13] = "load IA32_PERF_GLOBAL_CTRL",
    [14] = "load IA32_PAT",
    [15] = "load IA32_EFER",
    [16] = "load IA32_BNDCFGS",
    [17] = "conceal VMX from PT",
    [18] = "load IA32_RTIT_CTL",
    [20] = "load CET state",
    [22] = "load PKRS",
};

const char *vmx_ctl_bit_name(enum vmx_ctl_kind k, unsigned bit)
{
    if (bit >= 32)
        return NULL;
    switch (k) {
    case VMX_CTL_PIN:
        return pin_names[bit];
    case VMX_CTL_PROC:
        return proc_names[bit];
    case VMX_CTL_PROC2:
        return proc2_names[bit];
    case VMX_CTL_EXIT:
        return exit_names[bit];
    case VMX_CTL_ENTRY:
        return entry_names[bit];
    default:
        return NULL;
    }
}

const char *vmx_ctl_field_name(enum vmx_ctl_kind k)
{
    switch (k) {
    case VMX_CTL_PIN:
        return "pin-based VM-execution controls";
    case VMX_CTL_PROC:
        return "primary processor-based VM-execution controls";
    case VMX_CTL_PROC2:
        return "secondary processor-based VM-execution controls";
    case VMX_CTL_EXIT:
        return "VM-exit controls";
    case VMX_CTL_ENTRY:
        return "VM-entry controls";
    default:
        return "?";
    }
}

void vmx_controls_hv_request(struct vmx_controls_request *req)
{
    for (int k = 0; k < VMX_CTL_COUNT; k++)
        req->required[k] = req->desired[k] = 0;

    /* Kicks are NMIs (NMI exiting); guest NMIs found without a request are
     * re-injected, which needs virtual NMIs and NMI-window exiting to avoid
     * losing or doubling them; the preemption timer paces service polls. */
    req->required[VMX_CTL_PIN] = PIN_NMI_EXITING | PIN_VIRTUAL_NMIS | PIN_PREEMPT_TIMER;
    /* Bitmaps keep MSR and port exits to what we intercept (x2APIC ICR,
     * VMX MSRs, 0xCF8/0xCFC, reset ports).  NMI-window exiting is turned on
     * per vCPU when an NMI is pending, not here. */
    req->required[VMX_CTL_PROC] = PROC_USE_MSR_BITMAPS | PROC_USE_IO_BITMAPS;
    /* A guest's TSC or TSC_ADJUST write moves its offset, never the TSC root mode
     * times its deadlines with (exit_msr.c); without offsetting such writes #GP. */
    req->desired[VMX_CTL_PROC] = PROC_TSC_OFFSETTING;
    /* EPT hides the hypervisor and restricts pages; unrestricted guest runs
     * APs from SIPI in real mode; VPID keeps TLBs across exits. */
    req->required[VMX_CTL_PROC2] = PROC2_EPT | PROC2_VPID | PROC2_UNRESTRICTED;
    /* Leaving these off makes the guest's RDTSCP/INVPCID/XSAVES fault (#UD)
     * on CPUs that have them. */
    req->desired[VMX_CTL_PROC2] = PROC2_RDTSCP | PROC2_INVPCID | PROC2_XSAVES;

    /* The host runs in 64-bit mode (SDM Vol. 3C 27.2.2 Checks on Host Control Registers, MSRs, and
     * SSP). */
    req->required[VMX_CTL_EXIT] = EXIT_HOST_ADDR64;
    /* EFER and PAT switch with guest/host state so the guest's values are
     * never seen by the host and vice versa (guest EFER.LME changes on SIPI). */
    req->desired[VMX_CTL_EXIT] =
        EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PAT | EXIT_LOAD_PAT | EXIT_SAVE_DEBUG_CTLS;
    req->desired[VMX_CTL_ENTRY] = ENTRY_LOAD_EFER | ENTRY_LOAD_PAT | ENTRY_LOAD_DEBUG_CTLS;
    /* "IA-32e mode guest" follows the guest's EFER.LMA at each entry: the
     * VMX core sets it per vCPU, it is not a standing request. */
}

static void report_missing(const struct vmx_cpu_facts *f, enum vmx_ctl_kind k, unsigned bit,
                           vmx_report_fn report, void *ctx)
{
    struct msg m;
    const char *name = vmx_ctl_bit_name(k, bit);

    msg_start(&m);
    msg_put(&m, vmx_caps_ctl_msr_name(f, k));
    msg_put(&m, " (");
    msg_hex(&m, vmx_caps_ctl_msr_index(f, k));
    msg_put(&m, ") = ");
    msg_hex(&m, vmx_caps_ctl_msr(f, k));
    msg_put(&m, ": bit ");
    msg_dec(&m, 32 + bit);
    msg_put(&m, " is 0, so bit ");
    msg_dec(&m, bit);
    msg_put(&m, " of the ");
    msg_put(&m, vmx_ctl_field_name(k));
    msg_put(&m, " cannot be set");
    report(ctx, name ? name : "reserved control", m.s);
}

int vmx_controls_compute(const struct vmx_cpu_facts *f, const struct vmx_controls_request *req,
                         struct vmx_controls *out, vmx_report_fn report, void *ctx)
{
    uint32_t required[VMX_CTL_COUNT], desired[VMX_CTL_COUNT];
    int problems = 0;

    for (int k = 0; k < VMX_CTL_COUNT; k++) {
        required[k] = req->required[k];
        desired[k] = req->desired[k];
    }
    /* Secondary controls apply only when activated from the primary field
     * (SDM Vol. 3C 25.6.2 Processor-Based VM-Execution Controls); ask for that as strongly as for
     * the secondary ones. */
    if (required[VMX_CTL_PROC2])
        required[VMX_CTL_PROC] |= PROC_SECONDARY_CTLS;
    else if (desired[VMX_CTL_PROC2])
        desired[VMX_CTL_PROC] |= PROC_SECONDARY_CTLS;

    /* Primary first: the secondary MSR reads as all-zero without it. */
    static const enum vmx_ctl_kind order[VMX_CTL_COUNT] = {VMX_CTL_PIN, VMX_CTL_PROC, VMX_CTL_PROC2,
                                                           VMX_CTL_EXIT, VMX_CTL_ENTRY};
    for (int i = 0; i < VMX_CTL_COUNT; i++) {
        enum vmx_ctl_kind k = order[i];
        uint64_t cap = vmx_caps_ctl_msr(f, k);
        uint32_t allowed0 = (uint32_t)cap; /* must be 1 */
        uint32_t allowed1 = (uint32_t)(cap >> 32);
        uint32_t missing = required[k] & ~allowed1;

        out->v[k] = allowed0 | ((required[k] | desired[k]) & allowed1);
        for (unsigned b = 0; b < 32; b++) {
            if (!(missing & (1u << b)))
                continue;
            problems++;
            if (report)
                report_missing(f, k, b, report, ctx);
        }
    }
    /* Nothing secondary in use: do not activate an empty field, unless the
     * CPU insists (allowed-0). */
    if (out->v[VMX_CTL_PROC2] == 0 &&
        !((uint32_t)vmx_caps_ctl_msr(f, VMX_CTL_PROC) & PROC_SECONDARY_CTLS))
        out->v[VMX_CTL_PROC] &= ~PROC_SECONDARY_CTLS;
    /* Without activation the field is ignored; keep it 0 so dumps are honest. */
    if (!(out->v[VMX_CTL_PROC] & PROC_SECONDARY_CTLS))
        out->v[VMX_CTL_PROC2] = 0;

    /* A missing required control is reported above; its dependants would
     * only echo it, so consistency is judged only on a complete result. */
    if (problems == 0)
        problems += vmx_controls_check_consistency(out, report, ctx);
    return problems;
}

int vmx_controls_check_consistency(const struct vmx_controls *c, vmx_report_fn report, void *ctx)
{
    static const struct {
        enum vmx_ctl_kind k;
        uint32_t bit;
        enum vmx_ctl_kind needs_k;
        uint32_t needs;
        const char *feature, *detail;
    } rules[] = {
        {VMX_CTL_PIN, PIN_VIRTUAL_NMIS, VMX_CTL_PIN, PIN_NMI_EXITING, "virtual NMIs",
         "SDM 27.2.1.1: 'virtual NMIs' requires 'NMI exiting'"},
        {VMX_CTL_PROC, PROC_NMI_WINDOW, VMX_CTL_PIN, PIN_VIRTUAL_NMIS, "NMI-window exiting",
         "SDM 27.2.1.1: 'NMI-window exiting' requires 'virtual NMIs'"},
        {VMX_CTL_PROC2, PROC2_UNRESTRICTED, VMX_CTL_PROC2, PROC2_EPT, "unrestricted guest",
         "SDM 27.2.1.1: 'unrestricted guest' requires 'enable EPT'"},
        {VMX_CTL_EXIT, EXIT_SAVE_PREEMPT_TIMER, VMX_CTL_PIN, PIN_PREEMPT_TIMER,
         "save VMX-preemption timer value",
         "SDM 27.2.1.2: saving the timer requires 'activate VMX-preemption timer'"},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        uint32_t v = c->v[rules[i].k];
        /* A secondary control counts only when the field is activated. */
        if (rules[i].k == VMX_CTL_PROC2 && !(c->v[VMX_CTL_PROC] & PROC_SECONDARY_CTLS))
            v = 0;
        if ((v & rules[i].bit) && !(c->v[rules[i].needs_k] & rules[i].needs)) {
            n++;
            if (report)
                report(ctx, rules[i].feature, rules[i].detail);
        }
    }
    return n;
}
