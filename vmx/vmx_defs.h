/*
 * vmx_defs.h - architectural constants of Intel VT-x: MSR numbers, VMCS field
 * encodings, VM-execution/exit/entry control bits, exit reasons and the
 * capability bits the hypervisor relies on.
 *
 * Pure constants, no code: included by host tests, the VMX-root core and the
 * EFI loader alike.  References are to the Intel SDM, in the numbering of
 * the editions since 2023, in which "Virtual Machine Control Structures" is chapter 25 of Vol. 3C
 * (VMX non-root operation 26, VM entries 27, VM exits 28, address translation/EPT 29, instruction
 * reference 31) and Vol. 3A has task management in chapter 8, processor initialization in 10, the
 * APIC in 11 and memory cache control in 12; older editions number each of these one lower (e.g.
 * EPT 28.3).  Capability MSRs are Appendix A, field encodings Appendix B, exit reasons Appendix C
 * in all editions.  Every citation gives the section's title too, which survives renumbering.
 */
#ifndef HV_VMX_DEFS_H
#define HV_VMX_DEFS_H

/* ---- CPUID (SDM Vol. 2A, CPUID) ----------------------------------------- */
#define CPUID1_ECX_DTES64     (1u << 2)  /* 64-bit debug store */
#define CPUID1_ECX_DS_CPL     (1u << 4)  /* CPL-qualified debug store */
#define CPUID1_ECX_VMX        (1u << 5)  /* VMX supported */
#define CPUID1_EDX_DS         (1u << 21) /* debug store (BTS, PEBS) */
#define CPUID1_ECX_SMX        (1u << 6)
#define CPUID1_ECX_HYPERVISOR (1u << 31) /* "hypervisor present" (software convention) */

/* Control-register bits and architectural MSR numbers: x86_arch.h. */
#include "x86_arch.h"

/* ---- MSR numbers (SDM Vol. 4 Table 2-2 IA-32 Architectural MSRs) -------- */
#define MSR_X2APIC_ICR 0x830u /* x2APIC interrupt command register */

/* MTRRs (SDM Vol. 3A 12.11.2 Setting Memory Ranges with MTRRs) */
#define MSR_IA32_MTRRCAP           0x0feu
#define MSR_IA32_MTRR_PHYSBASE(n)  (0x200u + 2u * (n))
#define MSR_IA32_MTRR_PHYSMASK(n)  (0x201u + 2u * (n))
#define MSR_IA32_MTRR_FIX64K_00000 0x250u
#define MSR_IA32_MTRR_FIX16K_80000 0x258u
#define MSR_IA32_MTRR_FIX16K_A0000 0x259u
#define MSR_IA32_MTRR_FIX4K_C0000  0x268u /* ..0x26f: C0000, C8000, ..., F8000 */
#define MSR_IA32_MTRR_DEF_TYPE     0x2ffu

/* VMX capability MSRs (SDM Vol. 3 Appendix A) */
#define MSR_IA32_VMX_BASIC               0x480u
#define MSR_IA32_VMX_PINBASED_CTLS       0x481u
#define MSR_IA32_VMX_PROCBASED_CTLS      0x482u
#define MSR_IA32_VMX_EXIT_CTLS           0x483u
#define MSR_IA32_VMX_ENTRY_CTLS          0x484u
#define MSR_IA32_VMX_MISC                0x485u
#define MSR_IA32_VMX_CR0_FIXED0          0x486u
#define MSR_IA32_VMX_CR0_FIXED1          0x487u
#define MSR_IA32_VMX_CR4_FIXED0          0x488u
#define MSR_IA32_VMX_CR4_FIXED1          0x489u
#define MSR_IA32_VMX_VMCS_ENUM           0x48au
#define MSR_IA32_VMX_PROCBASED_CTLS2     0x48bu
#define MSR_IA32_VMX_EPT_VPID_CAP        0x48cu
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS  0x48du
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48eu
#define MSR_IA32_VMX_TRUE_EXIT_CTLS      0x48fu
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS     0x490u
#define MSR_IA32_VMX_VMFUNC              0x491u
#define MSR_IA32_VMX_PROCBASED_CTLS3     0x492u
#define MSR_IA32_VMX_FIRST               0x480u /* range the guest must not see */
#define MSR_IA32_VMX_LAST                0x492u

/* IA32_FEATURE_CONTROL (SDM Vol. 3C 24.7 Enabling and Entering VMX Operation) */
#define FEATURE_CONTROL_LOCK            (1ull << 0)
#define FEATURE_CONTROL_VMX_INSIDE_SMX  (1ull << 1)
#define FEATURE_CONTROL_VMX_OUTSIDE_SMX (1ull << 2)

/* IA32_VMX_BASIC (SDM Vol. 3D A.1 Basic VMX Information) */
#define VMX_BASIC_REVISION_MASK  0x7fffffffull
#define VMX_BASIC_REGION_SIZE(b) (((b) >> 32) & 0x1fffu)
#define VMX_BASIC_32BIT_ADDR     (1ull << 48)
#define VMX_BASIC_MEMTYPE(b)     (((b) >> 50) & 0xfu)
#define VMX_BASIC_INS_OUTS_INFO  (1ull << 54)
#define VMX_BASIC_TRUE_CTLS      (1ull << 55) /* TRUE_*_CTLS MSRs exist (A.2) */
#define VMX_BASIC_NO_ERRCODE_OK  (1ull << 56)

/* IA32_VMX_MISC (SDM Vol. 3D A.6 Miscellaneous Data) */
#define VMX_MISC_PREEMPT_RATE(m) ((unsigned)((m)&0x1fu)) /* timer = TSC >> rate */
#define VMX_MISC_STORE_LMA       (1ull << 5)
#define VMX_MISC_ACT_HLT         (1ull << 6)
#define VMX_MISC_ACT_SHUTDOWN    (1ull << 7)
#define VMX_MISC_ACT_WAIT_SIPI   (1ull << 8)
#define VMX_MISC_CR3_TARGETS(m)  ((unsigned)(((m) >> 16) & 0x1ffu))
#define VMX_MISC_MAX_MSR_LIST(m) (512u * ((unsigned)(((m) >> 25) & 7u) + 1u))
#define VMX_MISC_VMWRITE_ANY     (1ull << 29)
#define VMX_MISC_INJECT_ZERO_LEN (1ull << 30)

/* IA32_VMX_EPT_VPID_CAP (SDM Vol. 3D A.10 VPID and EPT Capabilities) */
#define EPT_CAP_EXEC_ONLY          (1ull << 0)
#define EPT_CAP_PWL4               (1ull << 6)
#define EPT_CAP_PWL5               (1ull << 7)
#define EPT_CAP_MEMTYPE_UC         (1ull << 8)
#define EPT_CAP_MEMTYPE_WB         (1ull << 14)
#define EPT_CAP_PAGE_2M            (1ull << 16)
#define EPT_CAP_PAGE_1G            (1ull << 17)
#define EPT_CAP_INVEPT             (1ull << 20)
#define EPT_CAP_AD                 (1ull << 21)
#define EPT_CAP_ADV_EXIT_INFO      (1ull << 22)
#define EPT_CAP_INVEPT_SINGLE      (1ull << 25)
#define EPT_CAP_INVEPT_ALL         (1ull << 26)
#define VPID_CAP_INVVPID           (1ull << 32)
#define VPID_CAP_INVVPID_ADDR      (1ull << 40)
#define VPID_CAP_INVVPID_SINGLE    (1ull << 41)
#define VPID_CAP_INVVPID_ALL       (1ull << 42)
#define VPID_CAP_INVVPID_SINGLE_NG (1ull << 43)

/* INVEPT / INVVPID types (SDM Vol. 3C 31.3 VMX Instructions, INVEPT / INVVPID) */
#define INVEPT_SINGLE_CONTEXT  1u
#define INVEPT_ALL_CONTEXT     2u
#define INVVPID_ADDRESS        0u
#define INVVPID_SINGLE_CONTEXT 1u
#define INVVPID_ALL_CONTEXT    2u
#define INVVPID_SINGLE_NG      3u

/* ---- VM-execution controls (SDM Vol. 3C 25.6 VM-Execution Control Fields)
 * ---------------------------- */
/* Pin-based (25.6.1, Table 25-5) */
#define PIN_EXTINT_EXITING (1u << 0)
#define PIN_NMI_EXITING    (1u << 3)
#define PIN_VIRTUAL_NMIS   (1u << 5)
#define PIN_PREEMPT_TIMER  (1u << 6)
#define PIN_POSTED_INTR    (1u << 7)

/* Primary processor-based (25.6.2, Table 25-6) */
#define PROC_INTR_WINDOW       (1u << 2)
#define PROC_TSC_OFFSETTING    (1u << 3)
#define PROC_HLT_EXITING       (1u << 7)
#define PROC_INVLPG_EXITING    (1u << 9)
#define PROC_MWAIT_EXITING     (1u << 10)
#define PROC_RDPMC_EXITING     (1u << 11)
#define PROC_RDTSC_EXITING     (1u << 12)
#define PROC_CR3_LOAD_EXITING  (1u << 15)
#define PROC_CR3_STORE_EXITING (1u << 16)
#define PROC_TERTIARY_CTLS     (1u << 17)
#define PROC_CR8_LOAD_EXITING  (1u << 19)
#define PROC_CR8_STORE_EXITING (1u << 20)
#define PROC_TPR_SHADOW        (1u << 21)
#define PROC_NMI_WINDOW        (1u << 22)
#define PROC_MOV_DR_EXITING    (1u << 23)
#define PROC_UNCOND_IO_EXITING (1u << 24)
#define PROC_USE_IO_BITMAPS    (1u << 25)
#define PROC_MTF               (1u << 27)
#define PROC_USE_MSR_BITMAPS   (1u << 28)
#define PROC_MONITOR_EXITING   (1u << 29)
#define PROC_PAUSE_EXITING     (1u << 30)
#define PROC_SECONDARY_CTLS    (1u << 31)

/* Secondary processor-based (25.6.2, Table 25-7) */
#define PROC2_VIRT_APIC_ACCESS (1u << 0)
#define PROC2_EPT              (1u << 1)
#define PROC2_DESC_TABLE_EXIT  (1u << 2)
#define PROC2_RDTSCP           (1u << 3)
#define PROC2_VIRT_X2APIC      (1u << 4)
#define PROC2_VPID             (1u << 5)
#define PROC2_WBINVD_EXITING   (1u << 6)
#define PROC2_UNRESTRICTED     (1u << 7)
#define PROC2_APIC_REG_VIRT    (1u << 8)
#define PROC2_VIRT_INTR_DELIV  (1u << 9)
#define PROC2_PAUSE_LOOP_EXIT  (1u << 10)
#define PROC2_RDRAND_EXITING   (1u << 11)
#define PROC2_INVPCID          (1u << 12)
#define PROC2_VMFUNC           (1u << 13)
#define PROC2_VMCS_SHADOWING   (1u << 14)
#define PROC2_ENCLS_EXITING    (1u << 15)
#define PROC2_RDSEED_EXITING   (1u << 16)
#define PROC2_PML              (1u << 17)
#define PROC2_EPT_VE           (1u << 18)
#define PROC2_PT_CONCEAL       (1u << 19)
#define PROC2_XSAVES           (1u << 20)
#define PROC2_EPT_MBEC         (1u << 22)
#define PROC2_SPP              (1u << 23)
#define PROC2_PT_GPA           (1u << 24)
#define PROC2_TSC_SCALING      (1u << 25)
#define PROC2_USER_WAIT_PAUSE  (1u << 26)

/* VM-exit controls (25.7.1, Table 25-13) */
#define EXIT_SAVE_DEBUG_CTLS    (1u << 2)
#define EXIT_HOST_ADDR64        (1u << 9)
#define EXIT_LOAD_PERF_GLOBAL   (1u << 12)
#define EXIT_ACK_INTR           (1u << 15)
#define EXIT_SAVE_PAT           (1u << 18)
#define EXIT_LOAD_PAT           (1u << 19)
#define EXIT_SAVE_EFER          (1u << 20)
#define EXIT_LOAD_EFER          (1u << 21)
#define EXIT_SAVE_PREEMPT_TIMER (1u << 22)
#define EXIT_CLEAR_BNDCFGS      (1u << 23)
#define EXIT_PT_CONCEAL         (1u << 24)
#define EXIT_CLEAR_RTIT_CTL     (1u << 25)
#define EXIT_LOAD_CET           (1u << 28)
#define EXIT_LOAD_PKRS          (1u << 29)

/* VM-entry controls (25.8.1, Table 25-15) */
#define ENTRY_LOAD_DEBUG_CTLS  (1u << 2)
#define ENTRY_IA32E_GUEST      (1u << 9)
#define ENTRY_SMM              (1u << 10)
#define ENTRY_DEACT_DUAL_MON   (1u << 11)
#define ENTRY_LOAD_PERF_GLOBAL (1u << 13)
#define ENTRY_LOAD_PAT         (1u << 14)
#define ENTRY_LOAD_EFER        (1u << 15)
#define ENTRY_LOAD_BNDCFGS     (1u << 16)
#define ENTRY_PT_CONCEAL       (1u << 17)
#define ENTRY_LOAD_RTIT_CTL    (1u << 18)
#define ENTRY_LOAD_CET         (1u << 20)
#define ENTRY_LOAD_PKRS        (1u << 22)

/* ---- VMCS field encodings (SDM Vol. 3 Appendix B) ----------------------- */
/* 16-bit control (B.1.1), guest (B.1.2), host (B.1.3) */
#define VMCS_VPID              0x0000u
#define VMCS_POSTED_INTR_NV    0x0002u
#define VMCS_EPTP_INDEX        0x0004u
#define VMCS_GUEST_ES_SEL      0x0800u
#define VMCS_GUEST_CS_SEL      0x0802u
#define VMCS_GUEST_SS_SEL      0x0804u
#define VMCS_GUEST_DS_SEL      0x0806u
#define VMCS_GUEST_FS_SEL      0x0808u
#define VMCS_GUEST_GS_SEL      0x080au
#define VMCS_GUEST_LDTR_SEL    0x080cu
#define VMCS_GUEST_TR_SEL      0x080eu
#define VMCS_GUEST_INTR_STATUS 0x0810u
#define VMCS_GUEST_PML_INDEX   0x0812u
#define VMCS_HOST_ES_SEL       0x0c00u
#define VMCS_HOST_CS_SEL       0x0c02u
#define VMCS_HOST_SS_SEL       0x0c04u
#define VMCS_HOST_DS_SEL       0x0c06u
#define VMCS_HOST_FS_SEL       0x0c08u
#define VMCS_HOST_GS_SEL       0x0c0au
#define VMCS_HOST_TR_SEL       0x0c0cu

/* 64-bit control (B.2.1), read-only (B.2.2), guest (B.2.3), host (B.2.4) */
#define VMCS_IO_BITMAP_A            0x2000u
#define VMCS_IO_BITMAP_B            0x2002u
#define VMCS_MSR_BITMAP             0x2004u
#define VMCS_EXIT_MSR_STORE_ADDR    0x2006u
#define VMCS_EXIT_MSR_LOAD_ADDR     0x2008u
#define VMCS_ENTRY_MSR_LOAD_ADDR    0x200au
#define VMCS_EXECUTIVE_VMCS_PTR     0x200cu
#define VMCS_PML_ADDR               0x200eu
#define VMCS_TSC_OFFSET             0x2010u
#define VMCS_VIRTUAL_APIC_ADDR      0x2012u
#define VMCS_APIC_ACCESS_ADDR       0x2014u
#define VMCS_POSTED_INTR_DESC       0x2016u
#define VMCS_VMFUNC_CTLS            0x2018u
#define VMCS_EPTP                   0x201au
#define VMCS_EOI_EXIT_BITMAP0       0x201cu
#define VMCS_EPTP_LIST_ADDR         0x2024u
#define VMCS_VMREAD_BITMAP          0x2026u
#define VMCS_VMWRITE_BITMAP         0x2028u
#define VMCS_VE_INFO_ADDR           0x202au
#define VMCS_XSS_EXIT_BITMAP        0x202cu
#define VMCS_TSC_MULTIPLIER         0x2032u
#define VMCS_TERTIARY_CTLS          0x2034u
#define VMCS_GUEST_PHYS_ADDR        0x2400u
#define VMCS_LINK_POINTER           0x2800u
#define VMCS_GUEST_DEBUGCTL         0x2802u
#define VMCS_GUEST_PAT              0x2804u
#define VMCS_GUEST_EFER             0x2806u
#define VMCS_GUEST_PERF_GLOBAL_CTRL 0x2808u
#define VMCS_GUEST_PDPTE0           0x280au
#define VMCS_GUEST_PDPTE1           0x280cu
#define VMCS_GUEST_PDPTE2           0x280eu
#define VMCS_GUEST_PDPTE3           0x2810u
#define VMCS_GUEST_BNDCFGS          0x2812u
#define VMCS_GUEST_RTIT_CTL         0x2814u
#define VMCS_GUEST_PKRS             0x2818u
#define VMCS_HOST_PAT               0x2c00u
#define VMCS_HOST_EFER              0x2c02u
#define VMCS_HOST_PERF_GLOBAL_CTRL  0x2c04u
#define VMCS_HOST_PKRS              0x2c06u

/* 32-bit control (B.3.1), read-only (B.3.2), guest (B.3.3), host (B.3.4) */
#define VMCS_PIN_CTLS                0x4000u
#define VMCS_PROC_CTLS               0x4002u
#define VMCS_EXCEPTION_BITMAP        0x4004u
#define VMCS_PF_ERRCODE_MASK         0x4006u
#define VMCS_PF_ERRCODE_MATCH        0x4008u
#define VMCS_CR3_TARGET_COUNT        0x400au
#define VMCS_EXIT_CTLS               0x400cu
#define VMCS_EXIT_MSR_STORE_COUNT    0x400eu
#define VMCS_EXIT_MSR_LOAD_COUNT     0x4010u
#define VMCS_ENTRY_CTLS              0x4012u
#define VMCS_ENTRY_MSR_LOAD_COUNT    0x4014u
#define VMCS_ENTRY_INTR_INFO         0x4016u
#define VMCS_ENTRY_EXCEPTION_ERRCODE 0x4018u
#define VMCS_ENTRY_INSTR_LEN         0x401au
#define VMCS_TPR_THRESHOLD           0x401cu
#define VMCS_PROC2_CTLS              0x401eu
#define VMCS_PLE_GAP                 0x4020u
#define VMCS_PLE_WINDOW              0x4022u
#define VMCS_INSTR_ERROR             0x4400u
#define VMCS_EXIT_REASON             0x4402u
#define VMCS_EXIT_INTR_INFO          0x4404u
#define VMCS_EXIT_INTR_ERRCODE       0x4406u
#define VMCS_IDT_VECTORING_INFO      0x4408u
#define VMCS_IDT_VECTORING_ERRCODE   0x440au
#define VMCS_EXIT_INSTR_LEN          0x440cu
#define VMCS_EXIT_INSTR_INFO         0x440eu
#define VMCS_GUEST_ES_LIMIT          0x4800u
#define VMCS_GUEST_CS_LIMIT          0x4802u
#define VMCS_GUEST_SS_LIMIT          0x4804u
#define VMCS_GUEST_DS_LIMIT          0x4806u
#define VMCS_GUEST_FS_LIMIT          0x4808u
#define VMCS_GUEST_GS_LIMIT          0x480au
#define VMCS_GUEST_LDTR_LIMIT        0x480cu
#define VMCS_GUEST_TR_LIMIT          0x480eu
#define VMCS_GUEST_GDTR_LIMIT        0x4810u
#define VMCS_GUEST_IDTR_LIMIT        0x4812u
#define VMCS_GUEST_ES_AR             0x4814u
#define VMCS_GUEST_CS_AR             0x4816u
#define VMCS_GUEST_SS_AR             0x4818u
#define VMCS_GUEST_DS_AR             0x481au
#define VMCS_GUEST_FS_AR             0x481cu
#define VMCS_GUEST_GS_AR             0x481eu
#define VMCS_GUEST_LDTR_AR           0x4820u
#define VMCS_GUEST_TR_AR             0x4822u
#define VMCS_GUEST_INTERRUPTIBILITY  0x4824u
#define VMCS_GUEST_ACTIVITY_STATE    0x4826u
#define VMCS_GUEST_SMBASE            0x4828u
#define VMCS_GUEST_SYSENTER_CS       0x482au
#define VMCS_PREEMPT_TIMER_VALUE     0x482eu
#define VMCS_HOST_SYSENTER_CS        0x4c00u

/* Natural-width control (B.4.1), read-only (B.4.2), guest (B.4.3), host (B.4.4) */
#define VMCS_CR0_GUEST_HOST_MASK 0x6000u
#define VMCS_CR4_GUEST_HOST_MASK 0x6002u
#define VMCS_CR0_READ_SHADOW     0x6004u
#define VMCS_CR4_READ_SHADOW     0x6006u
#define VMCS_CR3_TARGET0         0x6008u
#define VMCS_EXIT_QUALIFICATION  0x6400u
#define VMCS_IO_RCX              0x6402u
#define VMCS_IO_RSI              0x6404u
#define VMCS_IO_RDI              0x6406u
#define VMCS_IO_RIP              0x6408u
#define VMCS_GUEST_LINEAR_ADDR   0x640au
#define VMCS_GUEST_CR0           0x6800u
#define VMCS_GUEST_CR3           0x6802u
#define VMCS_GUEST_CR4           0x6804u
#define VMCS_GUEST_ES_BASE       0x6806u
#define VMCS_GUEST_CS_BASE       0x6808u
#define VMCS_GUEST_SS_BASE       0x680au
#define VMCS_GUEST_DS_BASE       0x680cu
#define VMCS_GUEST_FS_BASE       0x680eu
#define VMCS_GUEST_GS_BASE       0x6810u
#define VMCS_GUEST_LDTR_BASE     0x6812u
#define VMCS_GUEST_TR_BASE       0x6814u
#define VMCS_GUEST_GDTR_BASE     0x6816u
#define VMCS_GUEST_IDTR_BASE     0x6818u
#define VMCS_GUEST_DR7           0x681au
#define VMCS_GUEST_RSP           0x681cu
#define VMCS_GUEST_RIP           0x681eu
#define VMCS_GUEST_RFLAGS        0x6820u
#define VMCS_GUEST_PENDING_DBG   0x6822u
#define VMCS_GUEST_SYSENTER_ESP  0x6824u
#define VMCS_GUEST_SYSENTER_EIP  0x6826u
#define VMCS_GUEST_S_CET         0x6828u
#define VMCS_GUEST_SSP           0x682au
#define VMCS_GUEST_ISST_ADDR     0x682cu
#define VMCS_HOST_CR0            0x6c00u
#define VMCS_HOST_CR3            0x6c02u
#define VMCS_HOST_CR4            0x6c04u
#define VMCS_HOST_FS_BASE        0x6c06u
#define VMCS_HOST_GS_BASE        0x6c08u
#define VMCS_HOST_TR_BASE        0x6c0au
#define VMCS_HOST_GDTR_BASE      0x6c0cu
#define VMCS_HOST_IDTR_BASE      0x6c0eu
#define VMCS_HOST_SYSENTER_ESP   0x6c10u
#define VMCS_HOST_SYSENTER_EIP   0x6c12u
#define VMCS_HOST_RSP            0x6c14u
#define VMCS_HOST_RIP            0x6c16u

/* ---- Guest state details (SDM Vol. 3C 25.4 Guest-State Area) ------------------------------ */
#define VMX_ACTIVITY_ACTIVE    0u
#define VMX_ACTIVITY_HLT       1u
#define VMX_ACTIVITY_SHUTDOWN  2u
#define VMX_ACTIVITY_WAIT_SIPI 3u

#define VMX_INTERRUPTIBILITY_STI    (1u << 0)
#define VMX_INTERRUPTIBILITY_MOV_SS (1u << 1)
#define VMX_INTERRUPTIBILITY_SMI    (1u << 2)
#define VMX_INTERRUPTIBILITY_NMI    (1u << 3)

/* Segment access rights in the VMCS format (25.4.1, Table 25-2) */
#define VMX_AR_UNUSABLE (1u << 16)

/* ---- Interruption information (25.8.3 entry, 25.9.2 exit) --------------- */
#define INTR_INFO_VECTOR(x) ((x)&0xffu)
/* The interruption type is compared in place, masked, with INTR_TYPE_*;
 * INTR_INFO_TYPE() is its number (0-7) for interfaces that want that. */
#define INTR_INFO_TYPE_MASK    (7u << 8)
#define INTR_INFO_TYPE(x)      (((x)&INTR_INFO_TYPE_MASK) >> 8)
#define INTR_INFO_ERRCODE      (1u << 11)
#define INTR_INFO_NMI_UNBLOCK  (1u << 12) /* exit only: NMI unblocking due to IRET */
#define INTR_INFO_VALID        (1u << 31)
#define INTR_TYPE_EXT_INTR     (0u << 8)
#define INTR_TYPE_NMI          (2u << 8)
#define INTR_TYPE_HW_EXCEPTION (3u << 8)
#define INTR_TYPE_SW_INTR      (4u << 8)
#define INTR_TYPE_PRIV_SW_EXC  (5u << 8)
#define INTR_TYPE_SW_EXCEPTION (6u << 8)
#define INTR_TYPE_OTHER        (7u << 8)

/* ---- Exit reasons (SDM Vol. 3 Appendix C) ------------------------------- */
#define EXIT_REASON_BASIC(r)         ((r)&0xffffu)
#define EXIT_REASON_ENTRY_FAIL       (1u << 31)
#define EXIT_REASON_EXCEPTION_NMI    0u
#define EXIT_REASON_EXTERNAL_INTR    1u
#define EXIT_REASON_TRIPLE_FAULT     2u
#define EXIT_REASON_INIT             3u
#define EXIT_REASON_SIPI             4u
#define EXIT_REASON_IO_SMI           5u
#define EXIT_REASON_OTHER_SMI        6u
#define EXIT_REASON_INTR_WINDOW      7u
#define EXIT_REASON_NMI_WINDOW       8u
#define EXIT_REASON_TASK_SWITCH      9u
#define EXIT_REASON_CPUID            10u
#define EXIT_REASON_GETSEC           11u
#define EXIT_REASON_HLT              12u
#define EXIT_REASON_INVD             13u
#define EXIT_REASON_INVLPG           14u
#define EXIT_REASON_RDPMC            15u
#define EXIT_REASON_RDTSC            16u
#define EXIT_REASON_RSM              17u
#define EXIT_REASON_VMCALL           18u
#define EXIT_REASON_VMCLEAR          19u
#define EXIT_REASON_VMLAUNCH         20u
#define EXIT_REASON_VMPTRLD          21u
#define EXIT_REASON_VMPTRST          22u
#define EXIT_REASON_VMREAD           23u
#define EXIT_REASON_VMRESUME         24u
#define EXIT_REASON_VMWRITE          25u
#define EXIT_REASON_VMXOFF           26u
#define EXIT_REASON_VMXON            27u
#define EXIT_REASON_CR_ACCESS        28u
#define EXIT_REASON_DR_ACCESS        29u
#define EXIT_REASON_IO               30u
#define EXIT_REASON_RDMSR            31u
#define EXIT_REASON_WRMSR            32u
#define EXIT_REASON_INVALID_GUEST    33u
#define EXIT_REASON_MSR_LOADING      34u
#define EXIT_REASON_MWAIT            36u
#define EXIT_REASON_MTF              37u
#define EXIT_REASON_MONITOR          39u
#define EXIT_REASON_PAUSE            40u
#define EXIT_REASON_MCE_DURING_ENTRY 41u
#define EXIT_REASON_TPR_BELOW        43u
#define EXIT_REASON_APIC_ACCESS      44u
#define EXIT_REASON_VIRT_EOI         45u
#define EXIT_REASON_GDTR_IDTR        46u
#define EXIT_REASON_LDTR_TR          47u
#define EXIT_REASON_EPT_VIOLATION    48u
#define EXIT_REASON_EPT_MISCONFIG    49u
#define EXIT_REASON_INVEPT           50u
#define EXIT_REASON_RDTSCP           51u
#define EXIT_REASON_PREEMPT_TIMER    52u
#define EXIT_REASON_INVVPID          53u
#define EXIT_REASON_WBINVD           54u
#define EXIT_REASON_XSETBV           55u
#define EXIT_REASON_APIC_WRITE       56u
#define EXIT_REASON_RDRAND           57u
#define EXIT_REASON_INVPCID          58u
#define EXIT_REASON_VMFUNC           59u
#define EXIT_REASON_ENCLS            60u
#define EXIT_REASON_RDSEED           61u
#define EXIT_REASON_PML_FULL         62u
#define EXIT_REASON_XSAVES           63u
#define EXIT_REASON_XRSTORS          64u
#define EXIT_REASON_PCONFIG          65u
#define EXIT_REASON_SPP              66u
#define EXIT_REASON_UMWAIT           67u
#define EXIT_REASON_TPAUSE           68u
#define EXIT_REASON_LOADIWKEY        69u
#define EXIT_REASON_COUNT            70u /* size of per-reason tables */

/* Exit qualification for EPT violations (SDM Vol. 3C 28.2.1 Basic VM-Exit Information) */
#define EPT_VIOL_READ           (1ull << 0)
#define EPT_VIOL_WRITE          (1ull << 1)
#define EPT_VIOL_FETCH          (1ull << 2)
#define EPT_VIOL_READABLE       (1ull << 3)
#define EPT_VIOL_WRITABLE       (1ull << 4)
#define EPT_VIOL_EXECUTABLE     (1ull << 5)
#define EPT_VIOL_GLA_VALID      (1ull << 7)
#define EPT_VIOL_GLA_TRANSLATED (1ull << 8)
#define EPT_VIOL_NMI_UNBLOCK    (1ull << 12)

/* ---- EPT pointer (SDM Vol. 3C 25.6.11 Extended-Page-Table Pointer (EPTP))
 * ----------------------------------- */
#define EPTP_MEMTYPE_WB 6ull
#define EPTP_PWL4       (3ull << 3) /* page-walk length minus one */
#define EPTP_AD_ENABLE  (1ull << 6)

/* ---- Memory types (SDM Vol. 3A 12.3 Methods of Caching Available; EPT uses the same codes) - */
#define MEMTYPE_UC 0u
#define MEMTYPE_WC 1u
#define MEMTYPE_WT 4u
#define MEMTYPE_WP 5u
#define MEMTYPE_WB 6u

/* ---- VM-instruction error numbers (SDM Vol. 3C 31.4 VM Instruction Error Numbers) ---------- */
#define VMXERR_VMLAUNCH_NONCLEAR    4u
#define VMXERR_VMRESUME_NONLAUNCHED 5u
#define VMXERR_ENTRY_BAD_CTLS       7u
#define VMXERR_ENTRY_BAD_HOST_STATE 8u
#define VMXERR_VMPTRLD_BAD_ADDR     9u
#define VMXERR_UNSUPPORTED_FIELD    12u
#define VMXERR_VMXON_IN_ROOT        15u
#define VMXERR_INVEPT_INVALID       28u

#endif /* HV_VMX_DEFS_H */
