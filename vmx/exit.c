/*
 * exit.c - VM-exit dispatch: re-queue an event whose delivery the exit
 * interrupted, call the handler of the exit's family (exit_*.c), account
 * the exit, and prepare the next entry (requests.c).  Also the shared tools of
 * the handlers: skipping the exiting instruction, injecting exceptions, the
 * VMCS dump and the controlled halt for what cannot be survived.
 */
#include "core.h"
#include "entry_rules.h"
#include "fmt.h"
#include "log.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_hooks.h"

void vmx_exit_handler(struct guest_regs *r);
__attribute__((noreturn)) void vmx_resume_failed(struct guest_regs *r);

static const char *const reason_names[EXIT_REASON_COUNT] = {
    [EXIT_REASON_EXCEPTION_NMI] = "exception/NMI",
    [EXIT_REASON_EXTERNAL_INTR] = "external interrupt",
    [EXIT_REASON_TRIPLE_FAULT] = "triple fault",
    [EXIT_REASON_INIT] = "INIT",
    [EXIT_REASON_SIPI] = "SIPI",
    [EXIT_REASON_INTR_WINDOW] = "interrupt window",
    [EXIT_REASON_NMI_WINDOW] = "NMI window",
    [EXIT_REASON_TASK_SWITCH] = "task switch",
    [EXIT_REASON_CPUID] = "CPUID",
    [EXIT_REASON_GETSEC] = "GETSEC",
    [EXIT_REASON_HLT] = "HLT",
    [EXIT_REASON_INVD] = "INVD",
    [EXIT_REASON_INVLPG] = "INVLPG",
    [EXIT_REASON_RDTSC] = "RDTSC",
    [EXIT_REASON_VMCALL] = "VMCALL",
    [EXIT_REASON_VMCLEAR] = "VMCLEAR",
    [EXIT_REASON_VMLAUNCH] = "VMLAUNCH",
    [EXIT_REASON_VMPTRLD] = "VMPTRLD",
    [EXIT_REASON_VMPTRST] = "VMPTRST",
    [EXIT_REASON_VMREAD] = "VMREAD",
    [EXIT_REASON_VMRESUME] = "VMRESUME",
    [EXIT_REASON_VMWRITE] = "VMWRITE",
    [EXIT_REASON_VMXOFF] = "VMXOFF",
    [EXIT_REASON_VMXON] = "VMXON",
    [EXIT_REASON_CR_ACCESS] = "CR access",
    [EXIT_REASON_DR_ACCESS] = "DR access",
    [EXIT_REASON_IO] = "I/O",
    [EXIT_REASON_RDMSR] = "RDMSR",
    [EXIT_REASON_WRMSR] = "WRMSR",
    [EXIT_REASON_INVALID_GUEST] = "invalid guest state",
    [EXIT_REASON_MSR_LOADING] = "MSR loading",
    [EXIT_REASON_MWAIT] = "MWAIT",
    [EXIT_REASON_MTF] = "monitor trap flag",
    [EXIT_REASON_MONITOR] = "MONITOR",
    [EXIT_REASON_PAUSE] = "PAUSE",
    [EXIT_REASON_MCE_DURING_ENTRY] = "machine check during entry",
    [EXIT_REASON_APIC_ACCESS] = "APIC access",
    [EXIT_REASON_GDTR_IDTR] = "GDTR/IDTR access",
    [EXIT_REASON_LDTR_TR] = "LDTR/TR access",
    [EXIT_REASON_EPT_VIOLATION] = "EPT violation",
    [EXIT_REASON_EPT_MISCONFIG] = "EPT misconfiguration",
    [EXIT_REASON_INVEPT] = "INVEPT",
    [EXIT_REASON_RDTSCP] = "RDTSCP",
    [EXIT_REASON_PREEMPT_TIMER] = "preemption timer",
    [EXIT_REASON_INVVPID] = "INVVPID",
    [EXIT_REASON_WBINVD] = "WBINVD",
    [EXIT_REASON_XSETBV] = "XSETBV",
    [EXIT_REASON_RDRAND] = "RDRAND",
    [EXIT_REASON_INVPCID] = "INVPCID",
    [EXIT_REASON_VMFUNC] = "VMFUNC",
    [EXIT_REASON_RDSEED] = "RDSEED",
    [EXIT_REASON_XSAVES] = "XSAVES",
    [EXIT_REASON_XRSTORS] = "XRSTORS",
};

const char *exit_reason_name(unsigned reason)
{
    if (reason < EXIT_REASON_COUNT && reason_names[reason])
        return reason_names[reason];
    return "?";
}

uint64_t vcpu_gpr(struct guest_regs *r, unsigned n)
{
    uint64_t *a = &r->rax;
    static const unsigned slot[16] = {0, 1, 2, 3, 99, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    if (n == 4)
        return vmread(VMCS_GUEST_RSP);
    return a[slot[n & 15]];
}

void vcpu_set_gpr(struct guest_regs *r, unsigned n, uint64_t val)
{
    uint64_t *a = &r->rax;
    static const unsigned slot[16] = {0, 1, 2, 3, 99, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    if (n == 4) {
        vmwrite(VMCS_GUEST_RSP, val);
        return;
    }
    a[slot[n & 15]] = val;
}

void vmx_advance_rip(struct vcpu *v, uint64_t len)
{
    (void)v;
    uint64_t rip = vmread(VMCS_GUEST_RIP) + len;
    uint64_t efer_lma = vmread(VMCS_ENTRY_CTLS) & ENTRY_IA32E_GUEST;
    uint64_t cs_ar = vmread(VMCS_GUEST_CS_AR);
    if (!(efer_lma && (cs_ar & (1u << 13))))
        rip &= 0xffffffffull; /* outside 64-bit code, EIP wraps */
    vmwrite(VMCS_GUEST_RIP, rip);
    uint64_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
    if (intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS))
        vmwrite(VMCS_GUEST_INTERRUPTIBILITY,
                intr & ~(uint64_t)(VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS));
}

void vmx_skip_insn(struct vcpu *v)
{
    vmx_advance_rip(v, vmread(VMCS_EXIT_INSTR_LEN));
}

/* INVEPT/INVVPID with the narrowest type the CPU has (vmx_caps_check requires single- or
 * all-context, SDM Vol. 3D A.10 VPID and EPT Capabilities); an unsupported type would fail silently
 * (VMfailValid). */
void vmx_invept_eptp(uint64_t eptp)
{
    uint64_t cap = g_vmx.facts.ept_vpid_cap;
    invept((cap & EPT_CAP_INVEPT_SINGLE) ? INVEPT_SINGLE_CONTEXT : INVEPT_ALL_CONTEXT, eptp);
}

/* The shared EPT changed: this CPU's cached translations of it go, and a view
 * this vCPU runs on (step.c) is rebuilt from it before the next entry. */
void vmx_flush_ept(void)
{
    vmx_invept_eptp(g_vmx.eptp);
    struct vcpu *v = this_vcpu();
    if (v)
        vmx_view_resync(v);
}

void vmx_flush_vpid(struct vcpu *v)
{
    uint64_t cap = g_vmx.facts.ept_vpid_cap;
    invvpid((cap & VPID_CAP_INVVPID_SINGLE) ? INVVPID_SINGLE_CONTEXT : INVVPID_ALL_CONTEXT,
            (uint16_t)(v->index + 1), 0);
}

/* Event injection (SDM Vol. 3C 27.6.1 Vectored-Event Injection): a hardware exception at the next
 * entry. */
void vmx_inject_exception(struct vcpu *v, unsigned vector, bool has_error, uint32_t error)
{
    (void)v;
    uint32_t info = INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | (vector & 0xff);
    if (has_error) {
        info |= INTR_INFO_ERRCODE;
        vmwrite(VMCS_ENTRY_EXCEPTION_ERRCODE, error);
    }
    vmwrite(VMCS_ENTRY_INTR_INFO, info);
}

void vmx_set_proc_ctls(struct vcpu *v, uint32_t set, uint32_t clear)
{
    uint32_t n = (v->proc_ctls | set) & ~clear;
    if (n != v->proc_ctls) {
        v->proc_ctls = n;
        vmwrite(VMCS_PROC_CTLS, n);
    }
}

static const struct {
    const char *name;
    uint32_t field;
} dump_fields[] = {
    {"exit reason", VMCS_EXIT_REASON},
    {"exit qualification", VMCS_EXIT_QUALIFICATION},
    {"VM-instruction error", VMCS_INSTR_ERROR},
    {"exit intr info", VMCS_EXIT_INTR_INFO},
    {"exit intr errcode", VMCS_EXIT_INTR_ERRCODE},
    {"IDT-vectoring info", VMCS_IDT_VECTORING_INFO},
    {"IDT-vectoring errcode", VMCS_IDT_VECTORING_ERRCODE},
    {"exit instr len", VMCS_EXIT_INSTR_LEN},
    {"exit instr info", VMCS_EXIT_INSTR_INFO},
    {"guest linear addr", VMCS_GUEST_LINEAR_ADDR},
    {"guest phys addr", VMCS_GUEST_PHYS_ADDR},
    {"pin ctls", VMCS_PIN_CTLS},
    {"proc ctls", VMCS_PROC_CTLS},
    {"proc2 ctls", VMCS_PROC2_CTLS},
    {"exit ctls", VMCS_EXIT_CTLS},
    {"entry ctls", VMCS_ENTRY_CTLS},
    {"entry intr info", VMCS_ENTRY_INTR_INFO},
    {"exception bitmap", VMCS_EXCEPTION_BITMAP},
    {"EPTP", VMCS_EPTP},
    {"VPID", VMCS_VPID},
    {"guest RIP", VMCS_GUEST_RIP},
    {"guest RSP", VMCS_GUEST_RSP},
    {"guest RFLAGS", VMCS_GUEST_RFLAGS},
    {"guest CR0", VMCS_GUEST_CR0},
    {"guest CR3", VMCS_GUEST_CR3},
    {"guest CR4", VMCS_GUEST_CR4},
    {"CR0 shadow", VMCS_CR0_READ_SHADOW},
    {"CR4 shadow", VMCS_CR4_READ_SHADOW},
    {"CR0 mask", VMCS_CR0_GUEST_HOST_MASK},
    {"CR4 mask", VMCS_CR4_GUEST_HOST_MASK},
    {"guest DR7", VMCS_GUEST_DR7},
    {"guest EFER", VMCS_GUEST_EFER},
    {"guest PAT", VMCS_GUEST_PAT},
    {"guest CS sel", VMCS_GUEST_CS_SEL},
    {"guest CS base", VMCS_GUEST_CS_BASE},
    {"guest CS limit", VMCS_GUEST_CS_LIMIT},
    {"guest CS AR", VMCS_GUEST_CS_AR},
    {"guest SS sel", VMCS_GUEST_SS_SEL},
    {"guest SS AR", VMCS_GUEST_SS_AR},
    {"guest DS sel", VMCS_GUEST_DS_SEL},
    {"guest DS AR", VMCS_GUEST_DS_AR},
    {"guest ES sel", VMCS_GUEST_ES_SEL},
    {"guest ES AR", VMCS_GUEST_ES_AR},
    {"guest FS sel", VMCS_GUEST_FS_SEL},
    {"guest FS base", VMCS_GUEST_FS_BASE},
    {"guest FS AR", VMCS_GUEST_FS_AR},
    {"guest GS sel", VMCS_GUEST_GS_SEL},
    {"guest GS base", VMCS_GUEST_GS_BASE},
    {"guest GS AR", VMCS_GUEST_GS_AR},
    {"guest TR sel", VMCS_GUEST_TR_SEL},
    {"guest TR base", VMCS_GUEST_TR_BASE},
    {"guest TR limit", VMCS_GUEST_TR_LIMIT},
    {"guest TR AR", VMCS_GUEST_TR_AR},
    {"guest LDTR AR", VMCS_GUEST_LDTR_AR},
    {"guest GDTR base", VMCS_GUEST_GDTR_BASE},
    {"guest GDTR limit", VMCS_GUEST_GDTR_LIMIT},
    {"guest IDTR base", VMCS_GUEST_IDTR_BASE},
    {"guest IDTR limit", VMCS_GUEST_IDTR_LIMIT},
    {"guest interruptibility", VMCS_GUEST_INTERRUPTIBILITY},
    {"guest activity", VMCS_GUEST_ACTIVITY_STATE},
    {"guest pending dbg", VMCS_GUEST_PENDING_DBG},
    {"VMCS link", VMCS_LINK_POINTER},
    {"preemption timer", VMCS_PREEMPT_TIMER_VALUE},
    {"host CR0", VMCS_HOST_CR0},
    {"host CR3", VMCS_HOST_CR3},
    {"host CR4", VMCS_HOST_CR4},
    {"host RIP", VMCS_HOST_RIP},
    {"host RSP", VMCS_HOST_RSP},
    {"host GS base", VMCS_HOST_GS_BASE},
    {"host TR base", VMCS_HOST_TR_BASE},
    {"host GDTR base", VMCS_HOST_GDTR_BASE},
    {"host IDTR base", VMCS_HOST_IDTR_BASE},
    {"host EFER", VMCS_HOST_EFER},
};

void vmcs_dump(struct vcpu *v)
{
    log_error("VMCS dump of vCPU %u:", v ? v->index : 0);
    char line[200];
    unsigned n = 0;
    for (size_t i = 0; i < sizeof(dump_fields) / sizeof(dump_fields[0]); i++) {
        uint64_t val = vmread(dump_fields[i].field);
        int m = fmt_sn(line + n, sizeof(line) - n, "%s%s=0x%llx", n ? ", " : "",
                       dump_fields[i].name, (unsigned long long)val);
        if (m < 0 || n + (unsigned)m >= 150) {
            line[n] = 0;
            log_error("  %s", line);
            n = 0;
            m = fmt_sn(line, sizeof(line), "%s=0x%llx", dump_fields[i].name,
                       (unsigned long long)val);
        }
        n += (unsigned)m;
    }
    if (n)
        log_error("  %s", line);
    if (v && v->regs) {
        struct guest_regs *r = v->regs;
        log_error("  rax=%llx rbx=%llx rcx=%llx rdx=%llx rsi=%llx rdi=%llx rbp=%llx",
                  (unsigned long long)r->rax, (unsigned long long)r->rbx,
                  (unsigned long long)r->rcx, (unsigned long long)r->rdx,
                  (unsigned long long)r->rsi, (unsigned long long)r->rdi,
                  (unsigned long long)r->rbp);
    }
}

/* What cannot be survived: say everything, then stop this CPU for good (never a silent hang). */
void vmx_fatal(struct vcpu *v, const char *why)
{
    /* Halted first: kicks and KVMI stop waiting for it while the dump is logged. */
    __atomic_store_n(&v->state, VCPU_HALTED, __ATOMIC_RELEASE);
    log_error("FATAL on vCPU %u: %s", v->index, why);
    vmcs_dump(v);
    vmx_print_stats(v);
    log_error("vCPU %u halted", v->index);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* What the guest sees in CR0/CR4: owned bits from the read shadow (SDM Vol. 3C 25.6.6 Guest/Host
 * Masks and Read Shadows for CR0 and CR4). */
static uint64_t guest_visible_cr(uint32_t real, uint32_t mask, uint32_t shadow)
{
    uint64_t m = vmread(mask);
    return (vmread(real) & ~m) | (vmread(shadow) & m);
}

void vmx_entry_state(struct entry_state *s)
{
    const struct vmx_cpu_facts *f = &g_vmx.facts;
    *s = (struct entry_state){
        .cr0 = guest_visible_cr(VMCS_GUEST_CR0, VMCS_CR0_GUEST_HOST_MASK, VMCS_CR0_READ_SHADOW),
        .cr4 = guest_visible_cr(VMCS_GUEST_CR4, VMCS_CR4_GUEST_HOST_MASK, VMCS_CR4_READ_SHADOW),
        .efer = vmread(VMCS_GUEST_EFER),
        .ia32e = vmread(VMCS_ENTRY_CTLS) & ENTRY_IA32E_GUEST,
        .cs_l = vmread(VMCS_GUEST_CS_AR) & (1u << 13),
        .cs_limit = (uint32_t)vmread(VMCS_GUEST_CS_LIMIT),
        .cr0_fixed1 = f->cr0_fixed1,
        .cr4_fixed1 = f->cr4_fixed1,
        .phys_bits = g_vmx.phys_bits,
    };
}

/* panic() on a CPU that runs a vCPU (a root-mode fault while handling its exit): the vCPU is
 * stopped for good, as after vmx_fatal, so kicks stop waiting for it and KVMI refuses its work. */
void vmx_cpu_panicked(void)
{
    struct cpu *c = this_cpu();
    struct vcpu *v = c ? c->vcpu : NULL;
    if (!v || v->state == VCPU_OFF)
        return;
    __atomic_store_n(&v->state, VCPU_HALTED, __ATOMIC_RELEASE);
    log_error("vCPU %u halted", v->index);
}

void vmx_resume_failed(struct guest_regs *r)
{
    struct vcpu *v = this_vcpu();
    v->regs = r;
    log_error("VMRESUME failed: VM-instruction error %llu",
              (unsigned long long)vmread(VMCS_INSTR_ERROR));
    vmx_fatal(v, "VMRESUME failed");
}

/*
 * An exit in the middle of delivering an event (IDT-vectoring information
 * valid, SDM Vol. 3C 28.2.4 Information for VM Exits During Event Delivery): the event was not
 * delivered, so it is re-injected at the next entry (SDM Vol. 3C 27.6.1 Vectored-Event Injection),
 * with its error code and, for software events, the instruction length.
 */
static void requeue_vectoring(void)
{
    uint32_t idt = (uint32_t)vmread(VMCS_IDT_VECTORING_INFO);
    if (!(idt & INTR_INFO_VALID))
        return;
    uint32_t type = idt & INTR_INFO_TYPE_MASK;
    vmwrite(VMCS_ENTRY_INTR_INFO, idt & ~(1u << 12));
    if (idt & INTR_INFO_ERRCODE)
        vmwrite(VMCS_ENTRY_EXCEPTION_ERRCODE, vmread(VMCS_IDT_VECTORING_ERRCODE));
    if (type == INTR_TYPE_SW_INTR || type == INTR_TYPE_PRIV_SW_EXC ||
        type == INTR_TYPE_SW_EXCEPTION)
        vmwrite(VMCS_ENTRY_INSTR_LEN, vmread(VMCS_EXIT_INSTR_LEN));
    if (type == INTR_TYPE_NMI) /* its blocking came with the delivery that failed */
        vmwrite(VMCS_GUEST_INTERRUPTIBILITY,
                vmread(VMCS_GUEST_INTERRUPTIBILITY) & ~(uint64_t)VMX_INTERRUPTIBILITY_NMI);
}

void vmx_exit_handler(struct guest_regs *r)
{
    uint64_t t0 = rdtsc();
    struct vcpu *v = this_vcpu();
    v->in_guest = 0;
    v->regs = r;
    v->exit_tsc = t0;
    v->exit_rip = vmread(VMCS_GUEST_RIP);
    uint32_t reason = (uint32_t)vmread(VMCS_EXIT_REASON);
    unsigned basic = EXIT_REASON_BASIC(reason);
    if (basic < EXIT_REASON_COUNT)
        v->stats.exits[basic]++;
    if (reason & EXIT_REASON_ENTRY_FAIL) {
        log_error("VM-entry failure: exit reason %u (%s), qualification 0x%llx", basic,
                  exit_reason_name(basic), (unsigned long long)vmread(VMCS_EXIT_QUALIFICATION));
        vmx_fatal(v, "VM entry failed");
    }
    vmwrite(VMCS_ENTRY_INTR_INFO, 0);
    requeue_vectoring();
    vmx_mtf_probe(v, basic);

    switch (basic) {
    case EXIT_REASON_EXCEPTION_NMI:
        exit_nmi(v, (uint32_t)vmread(VMCS_EXIT_INTR_INFO));
        break;
    case EXIT_REASON_NMI_WINDOW:
        exit_nmi_window(v);
        break;
    case EXIT_REASON_EXTERNAL_INTR: /* only while on a step's view (step.c) */
        vmx_view_extint(v);
        break;
    case EXIT_REASON_PREEMPT_TIMER:
        v->stats.polls++;
        vmx_hooks.poll();
        break;
    case EXIT_REASON_CPUID:
        exit_cpuid(v);
        break;
    case EXIT_REASON_RDMSR:
        exit_rdmsr(v);
        break;
    case EXIT_REASON_WRMSR:
        exit_wrmsr(v);
        break;
    case EXIT_REASON_CR_ACCESS:
        exit_cr(v);
        break;
    case EXIT_REASON_XSETBV:
        exit_xsetbv(v);
        break;
    case EXIT_REASON_IO:
        exit_io(v);
        break;
    case EXIT_REASON_EPT_VIOLATION:
        exit_ept_violation(v);
        break;
    case EXIT_REASON_EPT_MISCONFIG:
        exit_ept_misconfig(v);
        break;
    case EXIT_REASON_VMCALL:
        exit_vmcall(v);
        break;
    case EXIT_REASON_MTF: /* KVMI: the end of a one-instruction step */
        vmx_hooks.mtf(v);
        break;
    case EXIT_REASON_GDTR_IDTR: /* KVMI: descriptor-table exiting */
    case EXIT_REASON_LDTR_TR:
        vmx_hooks.desc(v, basic);
        break;
    case EXIT_REASON_INVD:
        /* INVD would drop dirty lines of the hypervisor's own memory: write back instead. */
        __asm__ volatile("wbinvd" ::: "memory");
        vmx_skip_insn(v);
        break;
    case EXIT_REASON_HLT:
        vmx_skip_insn(v);
        vmwrite(VMCS_GUEST_ACTIVITY_STATE, VMX_ACTIVITY_HLT);
        break;
    case EXIT_REASON_VMCLEAR:
    case EXIT_REASON_VMLAUNCH:
    case EXIT_REASON_VMPTRLD:
    case EXIT_REASON_VMPTRST:
    case EXIT_REASON_VMREAD:
    case EXIT_REASON_VMRESUME:
    case EXIT_REASON_VMWRITE:
    case EXIT_REASON_VMXOFF:
    case EXIT_REASON_VMXON:
    case EXIT_REASON_INVEPT:
    case EXIT_REASON_INVVPID:
    case EXIT_REASON_VMFUNC:
    case EXIT_REASON_GETSEC:
        /* VMX is hidden (CPUID.1:ECX.VMX = 0): its instructions are undefined. */
        inject_ud(v);
        break;
    case EXIT_REASON_INIT:
        /* Must not happen: every guest INIT goes through apic.c.  Treat it as ours. */
        log_warn("hardware INIT reached vCPU %u in VMX non-root", v->index);
        spin_lock(&v->lock);
        v->init_pending = 1;
        spin_unlock(&v->lock);
        break;
    case EXIT_REASON_TRIPLE_FAULT:
        vmx_power_triple_fault(v);
    default: {
        char msg[96];
        fmt_sn(msg, sizeof(msg), "unhandled exit reason %u (%s)", basic, exit_reason_name(basic));
        vmx_fatal(v, msg);
    }
    }

    vmx_before_entry(v);
    vmx_mtf_probe_entry(v);
    if (basic < EXIT_REASON_COUNT)
        v->stats.root_tsc[basic] += rdtsc() - t0;
    v->in_guest = 1;
}

void vmx_print_stats(struct vcpu *only)
{
    if (!only)
        vmx_hooks.print_stats();
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        struct vcpu *v = g_vmx.vcpus[i];
        if (!v || (only && v != only))
            continue;
        uint64_t total = 0, tsc = 0;
        for (unsigned r = 0; r < EXIT_REASON_COUNT; r++) {
            total += v->stats.exits[r];
            tsc += v->stats.root_tsc[r];
        }
        log_info(
            "stats vCPU %u: %llu exits, %llu root TSC ticks, kicks sent %llu received %llu, "
            "guest NMIs injected %llu (re-injected hw %llu), INIT %llu SIPI %llu, polls %llu",
            i, (unsigned long long)total, (unsigned long long)tsc,
            (unsigned long long)v->stats.kicks_sent, (unsigned long long)v->stats.kicks_received,
            (unsigned long long)v->stats.guest_nmis_injected,
            (unsigned long long)v->stats.hw_nmis_reinjected, (unsigned long long)v->stats.inits,
            (unsigned long long)v->stats.sipis, (unsigned long long)v->stats.polls);
        for (unsigned r = 0; r < EXIT_REASON_COUNT; r++)
            if (v->stats.exits[r])
                log_info("stats vCPU %u: reason %2u %-20s count %8llu root TSC %10llu avg %llu", i,
                         r, exit_reason_name(r), (unsigned long long)v->stats.exits[r],
                         (unsigned long long)v->stats.root_tsc[r],
                         (unsigned long long)(v->stats.root_tsc[r] / v->stats.exits[r]));
    }
}

/* The trap fixup (core/trap.c): a #GP on one of the safe_* instructions returns -1 from it
 * instead of panicking. */
bool extable_fixup(struct trap_frame *f)
{
    extern char safe_rdmsr_insn[], safe_wrmsr_insn[], safe_xsetbv_insn[], safe_fault[];
    if (f->vector != 13)
        return false;
    if (f->rip == (uint64_t)(uintptr_t)safe_rdmsr_insn ||
        f->rip == (uint64_t)(uintptr_t)safe_wrmsr_insn ||
        f->rip == (uint64_t)(uintptr_t)safe_xsetbv_insn) {
        f->rip = (uint64_t)(uintptr_t)safe_fault;
        return true;
    }
    return false;
}
