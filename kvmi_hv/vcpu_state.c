/*
 * vcpu_state.c - a vCPU's state as KVMI reads and writes it: registers,
 * segments and control registers from the VMCS, MSRs, CPUID, XSAVE, MTRR
 * types, and the exception the tool injects.  [vCPU] functions of
 * kvmi_arch.h.
 */
#include <string.h>

#include "log.h"
#include "vmx/entry_rules.h"
#include "vmx/mtrr.h"
#include "vmx/vmx_insn.h"
#include "vmx/vmx_int.h"
#include "vmx/vmx_policy.h"
#include "internal.h"

/* ---- vCPUs ------------------------------------------------------------------------- */

unsigned kvmi_arch_vcpu_count(struct kvmi_vm *vm)
{
    (void)vm;
    return g_vmx.ncpus;
}

/* KVM's UNINITIALIZED is an AP that never ran; every CPU we took ran the
 * firmware, so only one whose launch failed qualifies. */
bool kvmi_arch_vcpu_uninitialized(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm;
    struct vcpu *v = vc(vcpu);
    return !v || v->state == VCPU_OFF;
}

/* Stopped for good: vmx_fatal, a root-mode fault on its core (panic), or
 * parked after the introspector's CRASH. */
bool kvmi_arch_vcpu_halted(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm;
    struct vcpu *v = vc(vcpu);
    if (!v)
        return false;
    /* A CPU the core parked (vmx/launch.c) never launches and serves nothing; one
     * not launched yet is only early (the engine starts before the launches). */
    uint32_t st = __atomic_load_n(&v->state, __ATOMIC_ACQUIRE);
    return st == VCPU_HALTED ||
           (st == VCPU_OFF &&
            (__atomic_load_n(&g_bi->cpus[vcpu].flags, __ATOMIC_ACQUIRE) & BI_CPU_PARKED));
}

int kvmi_arch_get_regs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_regs *o)
{
    (void)vm;
    struct guest_regs *r = vc(vcpu)->regs;
    memset(o, 0, sizeof(*o));
    if (!r)
        return -KVM_EINVAL;
    o->rax = r->rax, o->rbx = r->rbx, o->rcx = r->rcx, o->rdx = r->rdx;
    o->rsi = r->rsi, o->rdi = r->rdi, o->rbp = r->rbp;
    o->r8 = r->r8, o->r9 = r->r9, o->r10 = r->r10, o->r11 = r->r11;
    o->r12 = r->r12, o->r13 = r->r13, o->r14 = r->r14, o->r15 = r->r15;
    o->rsp = vmread(VMCS_GUEST_RSP);
    o->rip = vmread(VMCS_GUEST_RIP);
    o->rflags = vmread(VMCS_GUEST_RFLAGS);
    return 0;
}

/* RIP and RFLAGS against the VM-entry rules (vmx/entry_rules.h): a value VM entry would refuse
 * never reaches the VMCS.  RSP has no entry rule. */
int kvmi_arch_check_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *i)
{
    (void)vm, (void)vcpu;
    struct entry_state s;
    vmx_entry_state(&s);
    const char *why = entry_check_rip(&s, i->rip);
    if (!why)
        why = entry_check_rflags(&s, i->rflags);
    if (!why)
        return 0;
    log_warn("kvmi: SET_REGISTERS on vCPU %u refused: %s (RIP 0x%llx RFLAGS 0x%llx)", vcpu, why,
             (unsigned long long)i->rip, (unsigned long long)i->rflags);
    return -KVM_EINVAL;
}

int kvmi_arch_set_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *i)
{
    (void)vm;
    struct guest_regs *r = vc(vcpu)->regs;
    if (!r || kvmi_arch_check_regs(vm, vcpu, i))
        return -KVM_EINVAL;
    r->rax = i->rax, r->rbx = i->rbx, r->rcx = i->rcx, r->rdx = i->rdx;
    r->rsi = i->rsi, r->rdi = i->rdi, r->rbp = i->rbp;
    r->r8 = i->r8, r->r9 = i->r9, r->r10 = i->r10, r->r11 = i->r11;
    r->r12 = i->r12, r->r13 = i->r13, r->r14 = i->r14, r->r15 = i->r15;
    vmwrite(VMCS_GUEST_RSP, i->rsp);
    vmwrite(VMCS_GUEST_RIP, i->rip);
    vmwrite(VMCS_GUEST_RFLAGS, i->rflags);
    return 0;
}

/* One guest segment from the VMCS: ES CS SS DS FS GS LDTR TR, whose
 * encodings step by 2 in each group (SDM Vol. 3D Appendix B Field Encoding in VMCS). */
static void get_seg(struct kvm_segment *s, unsigned k)
{
    kvmi_seg_from_vmcs(
        s, (uint16_t)vmread(VMCS_GUEST_ES_SEL + 2 * k), vmread(VMCS_GUEST_ES_BASE + 2 * k),
        (uint32_t)vmread(VMCS_GUEST_ES_LIMIT + 2 * k), (uint32_t)vmread(VMCS_GUEST_ES_AR + 2 * k));
}

/* What the guest reads from CR0/CR4: owned bits from the read shadow (SDM Vol. 3C 25.6.6 Guest/Host
 * Masks and Read Shadows for CR0 and CR4). */
uint64_t khv_guest_cr(unsigned cr)
{
    uint64_t mask = vmread(cr == 0 ? VMCS_CR0_GUEST_HOST_MASK : VMCS_CR4_GUEST_HOST_MASK);
    uint64_t real = vmread(cr == 0 ? VMCS_GUEST_CR0 : VMCS_GUEST_CR4);
    uint64_t shadow = vmread(cr == 0 ? VMCS_CR0_READ_SHADOW : VMCS_CR4_READ_SHADOW);
    return (real & ~mask) | (shadow & mask);
}

static uint64_t read_cr8(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr8, %0" : "=r"(v));
    return v;
}

int kvmi_arch_get_sregs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_sregs *s)
{
    (void)vm, (void)vcpu;
    memset(s, 0, sizeof(*s));
    get_seg(&s->es, 0);
    get_seg(&s->cs, 1);
    get_seg(&s->ss, 2);
    get_seg(&s->ds, 3);
    get_seg(&s->fs, 4);
    get_seg(&s->gs, 5);
    get_seg(&s->ldt, 6);
    get_seg(&s->tr, 7);
    s->gdt.base = vmread(VMCS_GUEST_GDTR_BASE);
    s->gdt.limit = (uint16_t)vmread(VMCS_GUEST_GDTR_LIMIT);
    s->idt.base = vmread(VMCS_GUEST_IDTR_BASE);
    s->idt.limit = (uint16_t)vmread(VMCS_GUEST_IDTR_LIMIT);
    s->cr0 = khv_guest_cr(0);
    s->cr2 = read_cr2(); /* not switched by VM exits: root mode sees the guest's */
    s->cr3 = vmread(VMCS_GUEST_CR3);
    s->cr4 = khv_guest_cr(4);
    s->cr8 = read_cr8(); /* no TPR shadow: the APIC's TPR is the guest's */
    s->efer = vmread(VMCS_GUEST_EFER);
    s->apic_base = rdmsr(MSR_IA32_APIC_BASE);
    /* interrupt_bitmap: external interrupts are delivered to the guest
     * directly (no external-interrupt exiting), so none is ever pending here. */
    return 0;
}

/* MSRs the VMCS holds for the guest (loaded at entry, SDM Vol. 3C 25.4.1 Guest Register State). */
bool khv_vmcs_msr(uint32_t msr, uint32_t *field)
{
    uint32_t entry = (uint32_t)vmread(VMCS_ENTRY_CTLS);
    switch (msr) {
    case MSR_IA32_SYSENTER_CS:
        *field = VMCS_GUEST_SYSENTER_CS;
        return true;
    case MSR_IA32_SYSENTER_ESP:
        *field = VMCS_GUEST_SYSENTER_ESP;
        return true;
    case MSR_IA32_SYSENTER_EIP:
        *field = VMCS_GUEST_SYSENTER_EIP;
        return true;
    case MSR_IA32_FS_BASE:
        *field = VMCS_GUEST_FS_BASE;
        return true;
    case MSR_IA32_GS_BASE:
        *field = VMCS_GUEST_GS_BASE;
        return true;
    case MSR_IA32_EFER:
        *field = VMCS_GUEST_EFER;
        return entry & ENTRY_LOAD_EFER;
    case MSR_IA32_PAT:
        *field = VMCS_GUEST_PAT;
        return entry & ENTRY_LOAD_PAT;
    case MSR_IA32_DEBUGCTL:
        *field = VMCS_GUEST_DEBUGCTL;
        return entry & ENTRY_LOAD_DEBUG_CTLS;
    default:
        return false;
    }
}

int khv_guest_msr(uint32_t msr, uint64_t *val)
{
    uint32_t f;
    if (msr_is_vmx_capability(msr))
        return -KVM_EINVAL; /* #GP for the guest, as on a CPU without VMX */
    if (msr == MSR_IA32_FEATURE_CONTROL) {
        *val = feature_control_guest_view(rdmsr(msr));
        return 0;
    }
    if (khv_vmcs_msr(msr, &f)) {
        *val = vmread(f);
        return 0;
    }
    return safe_rdmsr(msr, val) ? -KVM_EINVAL : 0;
}

int kvmi_arch_get_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, uint64_t *value)
{
    (void)vm, (void)vcpu;
    return khv_guest_msr(msr, value);
}

/* CPUID as exit_cpuid answers it, plus "absent" for leaves above the maxima. */
int kvmi_arch_get_cpuid(struct kvmi_vm *vm, unsigned vcpu, uint32_t function, uint32_t index,
                        struct kvmi_get_cpuid_reply *out)
{
    (void)vm, (void)vcpu;
    bool hvb = g_bi->config.cpuid_hv_bit;
    uint32_t x[4];
    if (!cpuid_hv_leaf(function, hvb, x)) {
        uint32_t base = function & 0xc0000000u, m[4];
        if (base == 0x40000000u)
            return -KVM_ENOENT; /* hypervisor leaves only with cpuid_hypervisor_bit */
        cpuid(base, 0, &m[0], &m[1], &m[2], &m[3]);
        if (function > m[0])
            return -KVM_ENOENT;
        cpuid(function, index, &x[0], &x[1], &x[2], &x[3]);
        cpuid_filter(function, hvb, x);
    }
    *out = (struct kvmi_get_cpuid_reply){x[0], x[1], x[2], x[3]};
    return 0;
}

/*
 * The host never uses x87/SSE/AVX state, so the live extended state in root
 * mode is the guest's: XSAVE it (all XCR0 components, standard format) when
 * the CPU has XSAVE, else FXSAVE the legacy 512 bytes.  Components
 * beyond 4096 bytes (none on Bochs; AMX on real parts) are cut off.
 */
/* XGETBV/XSAVE #UD unless CR4.OSXSAVE, and the host CR4 is the firmware's
 * (usually without it): set it in root mode around them; HOST_CR4 puts the
 * host's value back at the next exit anyway.  false: the CPU has no XSAVE. */
bool khv_osxsave_on(uint64_t *saved)
{
    uint32_t a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    *saved = read_cr4();
    if (!(c & (1u << 26)))
        return false;
    if (!(*saved & CR4_OSXSAVE))
        write_cr4(*saved | CR4_OSXSAVE);
    return true;
}

uint64_t khv_guest_xcr0(bool *known)
{
    uint64_t cr4;
    *known = khv_osxsave_on(&cr4);
    uint32_t lo = 1, hi = 0;
    if (*known)
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    write_cr4(cr4);
    return ((uint64_t)hi << 32) | lo;
}

int kvmi_arch_get_xsave(struct kvmi_vm *vm, unsigned vcpu, struct kvm_xsave *out)
{
    (void)vm;
    uint8_t *buf = khv[vcpu].xsave;
    memset(buf, 0, PAGE_SIZE);
    uint64_t cr4;
    bool xs = khv_osxsave_on(&cr4);
    if (xs) {
        uint32_t lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        uint32_t a, b, c, d;
        cpuid(0xd, 0, &a, &b, &c, &d);
        if (b > PAGE_SIZE) /* keep to the first 4 KiB: components past it are dropped */
            lo &= 0xff, hi = 0;
        __asm__ volatile("xsave (%0)" : : "r"(buf), "a"(lo), "d"(hi) : "memory");
    } else {
        __asm__ volatile("fxsave (%0)" : : "r"(buf) : "memory");
    }
    write_cr4(cr4);
    memcpy(out, buf, sizeof(*out));
    return 0;
}

int kvmi_arch_get_mtrr_type(struct kvmi_vm *vm, unsigned vcpu, uint64_t gpa, uint8_t *type)
{
    (void)vm, (void)vcpu;
    /* Guest MTRR accesses are not intercepted: this CPU's MTRRs are the guest's. */
    struct mtrr_state s;
    mtrr_read(&s);
    *type = (uint8_t)mtrr_type_of(&s, gpa);
    return 0;
}

int kvmi_arch_inject_exception(struct kvmi_vm *vm, unsigned vcpu, uint8_t nr, bool has_error,
                               uint32_t error_code, uint64_t address)
{
    (void)vm;
    struct hv_vcpu *h = &khv[vcpu];
    h->exc_pending = true;
    h->exc_nr = nr;
    h->exc_has_err = has_error;
    h->exc_err = error_code;
    h->exc_addr = address;
    return 0;
}
