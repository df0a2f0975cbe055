/*
 * vmx.h - the VMX core as the rest of the hypervisor sees it: global setup
 * on the BSP (vmx_init), the per-CPU launch that turns the caller's own
 * state into a guest (core_launch in core/entry.S + vmx_cpu_prepare), the
 * per-vCPU structure every exit handler works on, kicks, the per-vCPU job
 * queue, the service hook and statistics.  Only for code built into the core.
 *
 * Design notes (docs/vmx.md has the full story):
 *  - one vCPU per physical CPU, index = position in boot_info.cpus;
 *  - everything a vCPU owns (VMXON region, VMCS, MSR bitmap, host stack,
 *    statistics) is allocated on the BSP by vmx_init, before any launch, so
 *    the launch path never allocates;
 *  - "vCPU context" = that vCPU's own core in root mode after a VM exit: only
 *    there may its VMCS be read or written (it is the current VMCS of that
 *    core).  Other cores talk to it through its request word, its job queue
 *    and kick().
 */
#ifndef HV_VMX_H
#define HV_VMX_H

#include <stdbool.h>
#include <stdint.h>

#include "boot_info.h"
#include "core.h"
#include "spinlock.h"
#include "vmx_caps.h"
#include "vmx_defs.h"

/* Guest general registers as the exit stub (vmx/vmx_entry.S) saves them. */
struct guest_regs {
    uint64_t rax, rcx, rdx, rbx, rbp, rsi, rdi; /* no rsp: it lives in the VMCS */
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t pad; /* keeps the C call 16-byte aligned */
};

/* Register number as in ModRM (0 = rax ... 15 = r15); 4 (rsp) reads the VMCS. */
uint64_t vcpu_gpr(struct guest_regs *r, unsigned n);
void vcpu_set_gpr(struct guest_regs *r, unsigned n, uint64_t v);

enum vcpu_state {
    VCPU_OFF = 0,   /* never launched */
    VCPU_RUNNING,   /* in the guest, or in root mode handling an exit */
    VCPU_WAIT_SIPI, /* after a (software) INIT: parked in root mode */
    VCPU_HALTED,    /* stopped for good after a fatal guest event */
};

/* Bits of vcpu.requests (set by anyone, consumed by the vCPU before entry). */
#define VCPU_REQ_KICK   (1u << 0) /* just exit and look at the job queue */
#define VCPU_REQ_STATS  (1u << 3) /* print statistics */
#define VCPU_REQ_INVEPT (1u << 4) /* invalidate EPT-derived translations */

struct vcpu;
typedef void (*vcpu_job_fn)(struct vcpu *v, void *arg);
struct vcpu_job {
    vcpu_job_fn fn;
    void *arg;
};
#define VCPU_JOBS 32

struct vcpu_stats {
    uint64_t exits[EXIT_REASON_COUNT];
    uint64_t root_tsc[EXIT_REASON_COUNT]; /* TSC ticks spent in root mode per reason */
    uint64_t kicks_received, kicks_sent, guest_nmis_injected, hw_nmis_reinjected;
    uint64_t sipis, inits, polls;
    uint64_t mtrr_dropped;   /* guest MTRR writes that would have retyped the region */
    uint64_t sleeps_refused; /* guest sleep requests dropped (on_sleep = refuse) */
    uint64_t view_aborts;    /* steps whose view closed for an event first (step.c) */
    uint64_t large_views;    /* steps that outgrew the vCPU's view for the large one (step.c) */
};

struct cpu;

struct vcpu {
    unsigned index;
    uint32_t apic_id;
    struct cpu *cpu;
    volatile uint32_t state;    /* enum vcpu_state */
    volatile uint32_t in_guest; /* 1 between VM entry and VM exit (for kick wait) */
    volatile uint32_t requests; /* VCPU_REQ_* */
    volatile uint64_t kick_seq; /* bumped by kickers; acknowledged below */
    volatile uint64_t kick_ack; /* last kick_seq seen in root mode */
    volatile uint64_t nmi_sent; /* kick NMIs sent to this CPU ... */
    volatile uint64_t nmi_seen; /* ... and how many of them arrived */

    void *vmxon_region, *vmcs;
    uint64_t *msr_bitmap; /* per vCPU: KVMI may intercept MSRs on one vCPU */
    uint8_t *host_stack_top;
    struct guest_regs *regs; /* valid in vCPU context during an exit */

    /* Software INIT/SIPI delivery (apic.c), under lock. */
    spinlock_t lock;
    uint32_t init_pending; /* an INIT not yet turned into wait-for-SIPI */
    uint32_t pending_sipi; /* 0 or 1 */
    uint32_t sipi_vector;

    /* Guest NMIs owed to the guest (software IPIs and re-injected NMIs). */
    volatile uint32_t nmi_pending;

    /* Jobs drained before every entry (vcpu_queue_job). */
    spinlock_t job_lock;
    unsigned job_head, job_tail;
    struct vcpu_job jobs[VCPU_JOBS];

    uint32_t proc_ctls; /* current primary processor-based controls */
    uint32_t exc_bitmap;
    uint64_t cr0_mask, cr4_mask;
    uint64_t preempt_ticks;        /* VMX-preemption timer value per entry */
    uint64_t exit_tsc;             /* TSC at the start of this exit */
    uint64_t exit_rip;             /* guest RIP when this exit happened */
    uint32_t shutdown_match;       /* chars of "Shutdown" seen on port 0x8900 */
    uint32_t xapic_ldr, xapic_dfr; /* last values the guest wrote (logical destinations) */
    struct fw_state fw;            /* firmware state at launch, for a failed launch */
    uint64_t fw_cr0, fw_cr4;
    /* IA32_SPEC_CTRL: the firmware's value on this CPU stays in force under the guest's
     * (msr_policy.h); the guest reads back what it wrote. */
    uint64_t host_spec_ctrl, guest_spec_ctrl;
    /* Monitor trap flag: VMX_MTF_*, probed on the first exits (step.c). */
    uint8_t mtf;
    uint64_t mtf_probe_rip;
    bool on_view; /* running on its own EPT view for a step (step.h) */
    /* S3 (sleep.c, resume.c): stopped in root mode for the sleep; back at the
     * wake (arrived: off the shared wake stack; ready: 1 in VMX, -1 failed). */
    volatile uint32_t frozen, wake_arrived;
    volatile int32_t wake_ready;
    struct vcpu_stats stats;
};

#define VMX_MTF_BROKEN  0 /* not offered, or offered and not delivered */
#define VMX_MTF_PROBING 1
#define VMX_MTF_WORKS   2

/* What every vCPU shares (vmx_init). */
struct vmx_global {
    struct vmx_cpu_facts facts;
    struct vmx_controls ctl;
    uint64_t eptp;
    uint64_t host_cr3;
    uint8_t *io_bitmap_a, *io_bitmap_b;
    uint64_t *msr_bitmap_template;
    void *zero_page; /* what the guest sees in place of the hypervisor region */
    uint64_t apic_base;
    unsigned phys_bits; /* MAXPHYADDR (CPUID 0x80000008 EAX[7:0], 36 without the leaf) */
    unsigned ncpus;
    struct vcpu *vcpus[BI_MAX_CPUS];
    volatile uint32_t launched; /* vCPUs running as guests */
    volatile uint32_t freeze;   /* S3: every vCPU stops in root mode (sleep.c) */
};
extern struct vmx_global g_vmx;

/*
 * Everything the launches need, on the BSP, with the firmware's state still
 * live: control fields (a refusal names every missing control), per-CPU
 * tables and vCPUs, bitmaps, the EPT identity map with the hypervisor region
 * hidden.  0 or a CORE_ERR_* status.
 */
int vmx_init(struct boot_info *bi, uint64_t host_cr3);

/*
 * Called by core_launch (entry.S) on the CPU to take over, with the address
 * where core_launch's caller will continue (its return address sits at
 * *entry_rsp).  Saves the firmware state as guest state, loads the host
 * tables, VMXON, VMCS.  Returns 0 when VMLAUNCH may follow (the caller then
 * restores the firmware's callee-saved registers and launches), else a
 * CORE_ERR_* status with the CPU back in the firmware's hands.
 */
uint64_t vmx_cpu_prepare(struct boot_info *bi, uint64_t entry_rsp);

/* VMLAUNCH failed (core_launch): log why, leave VMX, restore the firmware state. */
uint64_t vmx_launch_failed(void);

/* The vCPU of the calling CPU (root mode only). */
struct vcpu *this_vcpu(void);

/* Force `v` out of guest mode soon (request word + NMI IPI).  wait: return once it has
 * left guest mode (or is parked in root mode, or is the caller). */
void kick(struct vcpu *v, bool wait);

/* Set request bits (VCPU_REQ_*) on v and kick it; they are served before its next entry. */
void vcpu_request(struct vcpu *v, uint32_t bits, bool wait);

/* After an EPT edit: every vCPU invalidates EPT-derived translations (INVEPT) before it
 * runs guest code again; returns once every running vCPU has done so. */
void vmx_invept_all(void);

/* Queue fn(v, arg) to run on v in root mode before its next entry, and kick it.
 * Returns false when the queue is full. */
bool vcpu_queue_job(struct vcpu *v, vcpu_job_fn fn, void *arg);

/* Statistics of one vCPU, or of all (v = NULL), on the log. */
void vmx_print_stats(struct vcpu *v);

/* Debug hypercall: VMCALL with RAX = HV_HYPERCALL_MAGIC, RBX = function (docs/vmx.md). */
#define HV_HYPERCALL_MAGIC    0x4856444247ull /* "HVDBG" */
#define HV_HC_PING            0               /* RAX = 0x600d */
#define HV_HC_STATS           1               /* print every vCPU's statistics */
#define HV_HC_CHECK_REGION    2 /* RAX = 0 if the marker bytes are intact, else offset+1 */
#define HV_HC_KICK_LOOP       3 /* RCX kicks of every other vCPU (wait); RAX = acknowledged */
#define HV_HC_REGION_INFO     4 /* RAX = address of the marker page, RCX = marker length */
#define HV_HC_TEST_ENTRY_FAIL 5 /* test hook: make this vCPU's next VM entry fail (TR unusable) */
#define HV_HC_KVMI_UNHOOK                                                                          \
    6 /* KVMI: send KVMI_EVENT_UNHOOK, wait for the close or timeout;                              \
         RAX = 0 sent, -2 not enabled, -14 no session */

/* A device the guest must never reach, as the composition root describes it. */
#define VMX_HIDDEN_BARS 6
struct vmx_hidden_bar {
    uint64_t base, size;
    unsigned index; /* BAR number, for the log */
    bool io;        /* I/O ports, else memory */
};
#define VMX_HIDDEN_ECAM  16
#define VMX_GUARDED_ECAM 32
struct vmx_hidden_dev {
    const char *name; /* for the log */
    uint8_t bus, dev, fn;
    unsigned nbar;
    struct vmx_hidden_bar bar[VMX_HIDDEN_BARS];
    /* its 4 KiB ECAM config pages, one per MCFG entry and alias: the guest
     * gets a page of all ones there */
    unsigned necam;
    uint64_t ecam_page[VMX_HIDDEN_ECAM];
    /* ECAM pages of other functions whose writes are filtered: the guest
     * reads the device, its writes go to cfg_mmio */
    unsigned nguarded;
    uint64_t guarded_page[VMX_GUARDED_ECAM];
    /* Every guest access that covers a byte of ports 0xCF8-0xCFF, performed
     * here (a read returns its value). */
    uint32_t (*cfg_port)(uint16_t port, unsigned size, bool write, uint32_t val);
    /* A guest access of size bytes (1, 2, 4, 8) at gpa in a guarded page,
     * performed here (a read returns its value). */
    uint64_t (*cfg_mmio)(uint64_t gpa, unsigned size, bool write, uint64_t val);
};

/* Hides the device from the guest (vmx/hide.c): its config space, BARs
 * and ECAM pages, and write-protects the guarded pages.  BSP, after
 * vmx_init(), before any launch. */
int vmx_hide_device(const struct vmx_hidden_dev *d);

/* Maps [base, base + len) for the guest as a read-only page of all ones
 * (reads: absent device; writes dropped); before any launch. */
int vmx_hide_mmio(uint64_t base, uint64_t len);

#endif
