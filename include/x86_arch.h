/*
 * x86_arch.h - architectural constants of x86-64 outside VMX: control
 * register, EFER and RFLAGS bits, and the MSR numbers more than one layer
 * names.  Pure constants, no code: the core, the EFI loader, the engine,
 * the simulator and the host tests include the same definitions.
 * References: SDM Vol. 3A 2.5 Control Registers, Vol. 1 3.4.3 EFLAGS
 * Register, Vol. 4 2.1 Architectural MSRs.
 */
#ifndef HV_X86_ARCH_H
#define HV_X86_ARCH_H

/* ---- control registers (SDM Vol. 3A 2.5 Control Registers) -------------- */
#define CR0_PE   (1ull << 0)
#define CR0_NE   (1ull << 5)
#define CR0_PG   (1ull << 31)
#define CR4_PSE  (1ull << 4)
#define CR4_PAE  (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define CR4_VMXE                                                                                   \
    (1ull << 13) /* VMXON requires it (SDM Vol. 3C 24.7 Enabling and Entering VMX Operation) */
#define CR4_OSXSAVE (1ull << 18)

/* ---- IA32_EFER (SDM Vol. 3A 2.2.1 Extended Feature Enable Register) ------ */
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

/* ---- RFLAGS (SDM Vol. 1 3.4.3 EFLAGS Register) --------------------------- */
#define RFLAGS_TF (1ull << 8)
#define RFLAGS_IF (1ull << 9)

/* ---- IA32_DEBUGCTL (SDM Vol. 3B 18.4.1 IA32_DEBUGCTL MSR) ----------------- */
#define DEBUGCTL_BTF (1ull << 1) /* single-step on branches */

/* ---- MSR numbers (SDM Vol. 4 Table 2-2 IA-32 Architectural MSRs) -------- */
#define MSR_IA32_TSC              0x010u
#define MSR_IA32_APIC_BASE        0x01bu
#define MSR_IA32_FEATURE_CONTROL  0x03au
#define MSR_IA32_SPEC_CTRL        0x048u
#define MSR_IA32_SYSENTER_CS      0x174u
#define MSR_IA32_SYSENTER_ESP     0x175u
#define MSR_IA32_SYSENTER_EIP     0x176u
#define MSR_IA32_DEBUGCTL         0x1d9u
#define MSR_IA32_PAT              0x277u
#define MSR_IA32_PERF_GLOBAL_CTRL 0x38fu
#define MSR_IA32_BNDCFGS          0xd90u
#define MSR_IA32_XSS              0xda0u
#define MSR_IA32_EFER             0xc0000080u
#define MSR_IA32_STAR             0xc0000081u
#define MSR_IA32_LSTAR            0xc0000082u
#define MSR_IA32_CSTAR            0xc0000083u
#define MSR_IA32_FS_BASE          0xc0000100u
#define MSR_IA32_GS_BASE          0xc0000101u
#define MSR_IA32_KERNEL_GS_BASE   0xc0000102u

#endif
