/*
 * vmx_caps.h - what the processor offers for VT-x, and whether it is enough.
 *
 * The facts are gathered once (vmx_caps_read, CPUID/RDMSR) and judged by a
 * pure function (vmx_caps_check) that the EFI loader, the VMX core and host
 * unit tests share.  The judgement names every missing required feature with
 * the MSR and bit that says so, so a refusal on real hardware can be checked
 * against the SDM (Vol. 3 Appendix A) without a debugger.
 *
 * Builds three ways: host (tests), core (CORE_CFLAGS) and EFI (EFI_CFLAGS,
 * freestanding headers only: no libc is used here).
 */
#ifndef HV_VMX_CAPS_H
#define HV_VMX_CAPS_H

#include <stdbool.h>
#include <stdint.h>

struct vmx_cpu_facts {
    uint32_t cpuid1_ecx;      /* CPUID.1:ECX */
    bool have_vmx_msrs;       /* false when CPUID says no VMX: MSRs were not read */
    uint64_t feature_control; /* IA32_FEATURE_CONTROL (0x3a) */
    uint64_t basic, pinbased, procbased, exit, entry, procbased2, ept_vpid_cap, misc;
    uint64_t true_pin, true_proc, true_exit, true_entry; /* valid if basic bit 55 */
    uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};

/*
 * Called once per missing required feature.  `feature` is a short name (it
 * contains the words tests grep for: "VMX", "EPT", "unrestricted guest",
 * "VPID", "preemption timer", "NMI exiting", "virtual NMIs", "MSR bitmaps",
 * "I/O bitmaps"); `detail` says which bit of which MSR (or CPUID leaf) and is
 * only valid during the call.
 */
typedef void (*vmx_report_fn)(void *ctx, const char *feature, const char *detail);

/* Calls report once per missing REQUIRED feature; returns how many are missing (0 = usable).
 * report may be NULL. */
int vmx_caps_check(const struct vmx_cpu_facts *f, vmx_report_fn report, void *ctx);

/* Fills facts with CPUID/RDMSR (only reads VMX MSRs when CPUID.1:ECX.VMX=1, and each optional
 * MSR only when the SDM says it exists).  In vmx/caps_read.c; runs on the CPU it describes. */
void vmx_caps_read(struct vmx_cpu_facts *f);

/* The VM-execution/exit/entry control fields, for vmx_caps_ctl_msr(). */
enum vmx_ctl_kind {
    VMX_CTL_PIN,   /* pin-based VM-execution controls */
    VMX_CTL_PROC,  /* primary processor-based VM-execution controls */
    VMX_CTL_PROC2, /* secondary processor-based VM-execution controls */
    VMX_CTL_EXIT,  /* VM-exit controls */
    VMX_CTL_ENTRY, /* VM-entry controls */
    VMX_CTL_COUNT
};

/*
 * The capability MSR value that governs control field `k`: bits 31:0 are the
 * allowed-0 settings (a 1 there means the control must be 1), bits 63:32 the
 * allowed-1 settings (a 0 there means it must be 0), SDM Vol. 3 A.3-A.5.  The
 * TRUE_* MSR is used when IA32_VMX_BASIC[55] is set (A.2), so default-1
 * controls that may in fact be cleared are seen as optional.  The secondary
 * controls read as 0 (nothing may be set) unless the primary controls allow
 * "activate secondary controls".
 */
uint64_t vmx_caps_ctl_msr(const struct vmx_cpu_facts *f, enum vmx_ctl_kind k);

/* Number and name of that MSR (for messages). */
uint32_t vmx_caps_ctl_msr_index(const struct vmx_cpu_facts *f, enum vmx_ctl_kind k);
const char *vmx_caps_ctl_msr_name(const struct vmx_cpu_facts *f, enum vmx_ctl_kind k);

/* True when control `bit` (a single bit mask of the 32-bit field) may be set to 1. */
bool vmx_caps_can_set(const struct vmx_cpu_facts *f, enum vmx_ctl_kind k, uint32_t bit);

/* EPT/VPID capability bits, 0 unless EPT or VPID can be enabled (the MSR exists only then,
 * SDM Vol. 3 A.10). */
uint64_t vmx_caps_ept_vpid(const struct vmx_cpu_facts *f);

/*
 * The value to write to IA32_FEATURE_CONTROL before VMXON on each CPU, or 0
 * when no write is needed (already locked with VMX outside SMX on) or allowed
 * (locked with it off: vmx_caps_check refuses that).  SDM Vol. 3C 24.7 Enabling and Entering VMX
 * Operation: VMXON faults unless the lock bit and the enable bit for the current mode are set.
 */
uint64_t vmx_caps_feature_control_fixup(uint64_t feature_control);

/* ---- Control field computation (vmx/controls.c) ----------------------------
 *
 * Each VMCS control field is computed from the capability MSRs, never hard
 * coded (SDM Vol. 3 A.3-A.5, and Vol. 3C 27.2.1.1 VM-Execution Control Fields for the checks VM
 * entry makes): value = allowed-0 | ((required | desired) & allowed-1) A required bit the CPU
 * cannot set is reported by name; a desired one is silently left out.  Bits the CPU forces to 1
 * (allowed-0) are kept: the VMX core must cope with them (e.g. CR3-load exiting without TRUE
 * controls).
 */
struct vmx_controls {
    uint32_t v[VMX_CTL_COUNT]; /* indexed by enum vmx_ctl_kind */
};

struct vmx_controls_request {
    uint32_t required[VMX_CTL_COUNT];
    uint32_t desired[VMX_CTL_COUNT];
};

/* The hypervisor's standing request (what DESIGN.md's execution model needs, and what the guest
 * needs so its instructions keep working: RDTSCP, INVPCID, XSAVES would #UD if left disabled). */
void vmx_controls_hv_request(struct vmx_controls_request *req);

/*
 * Computes all five fields into out.  "activate secondary controls" is added
 * to the primary request (required or desired, following the secondary
 * request) and dropped when no secondary control ends up set.  Calls report
 * once per required bit that cannot be set and once per violated dependency
 * between controls (SDM Vol. 3C 27.2.1.1 VM-Execution Control Fields); returns how many reports
 * that made (0 = the fields are usable).
 */
int vmx_controls_compute(const struct vmx_cpu_facts *f, const struct vmx_controls_request *req,
                         struct vmx_controls *out, vmx_report_fn report, void *ctx);

/* Checks the dependencies VM entry enforces between controls (SDM Vol. 3C 27.2.1.1 VM-Execution
 * Control Fields): virtual NMIs needs NMI exiting, NMI-window exiting needs virtual NMIs,
 * unrestricted guest needs EPT, saving the preemption timer needs the timer.
 * Reports each violation; returns their count. */
int vmx_controls_check_consistency(const struct vmx_controls *c, vmx_report_fn report, void *ctx);

/* SDM name of control bit `bit` (0-31) of field k, or NULL for a reserved bit. */
const char *vmx_ctl_bit_name(enum vmx_ctl_kind k, unsigned bit);
/* SDM name of the field itself ("pin-based VM-execution controls", ...). */
const char *vmx_ctl_field_name(enum vmx_ctl_kind k);

#endif /* HV_VMX_CAPS_H */
