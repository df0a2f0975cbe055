/*
 * kvmi_arch.c - the KVMI engine on bare metal: kvmi_arch.h implemented over
 * the VMX core, the engine's start on the BSP, and the hooks the exit
 * handlers call (include/kvmi_hv.h).  docs/kvmi-hv.md is the design.
 *
 * vCPU index = position in boot_info.cpus = struct vcpu.index.  [vCPU]
 * functions run on that vCPU's own core in root mode, where its VMCS is
 * current and v->regs holds the guest GPRs of the exit being handled (the
 * wait-for-SIPI loop runs inside an exit handler too, so this also holds
 * for parked APs).
 *
 * What the engine cannot do without an instruction emulator is done by
 * stepping one guest instruction with the intercept lifted: the monitor
 * trap flag (SDM Vol. 3 26.5.2 "Monitor Trap Flag") exits after it, and the
 * intercept comes back.  That is how a restricted page is accessed on
 * CONTINUE (rights relaxed for one instruction) and how a descriptor-table
 * instruction executes on CONTINUE (descriptor-table exiting off for it).
 */
#include <string.h>

#include "boot_info.h"
#include "core.h"
#include "ept.h"
#include "gwalk.h"
#include "kvmi.h"
#include "kvmi_arch.h"
#include "kvmi_hv.h"
#include "kvmi_rules.h"
#include "log.h"
#include "mtrr.h"
#include "net.h"
#include "page_alloc.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_policy.h"
#include "x86.h"

#define STEP_PAGES  4u
#define PAGE_CAP    4096u           /* page restrictions the tool may hold at once */
#define RIGHTS_CAP  (2u * PAGE_CAP) /* open addressing, at most half full */
#define CR0_PE_BIT  (1ull << 0)
#define CR0_PG_BIT  (1ull << 31)
#define RFLAGS_TF   (1ull << 8)
#define EFER_LMA_B  (1ull << 10)
#define CR4_OSXSAVE (1ull << 18)

struct kvmi_vm g_kvmi;
static struct net_kvmi link;
static bool running;
static volatile uint32_t crashed;
/* cpu index + 1 of a receive context that found the send queue full, and
 * of a vCPU sending the unhook event (outside the receive context). */
static volatile uint32_t starved_cpu, unhook_cpu;

/* The tool's rights per page (what KVMI_EVENT_PF compares with), under
 * ept_lock with every EPT edit.  An entry never leaves the table; rwx = free. */
static spinlock_t ept_lock;
static struct kvmi_rights_entry rights_store[RIGHTS_CAP];
static struct kvmi_rights rights;

/* Per-vCPU state of this arch (owned by that vCPU unless noted). */
struct hv_vcpu {
    /* INJECT_EXCEPTION, delivered before the next entry */
    bool exc_pending, exc_has_err;
    uint8_t exc_nr;
    uint32_t exc_err;
    uint64_t exc_addr;
    /* intercepts KVMI asked for */
    bool bp, desc, cr3;
    /* a one-instruction step in progress (MTF) */
    bool ss_active, ss_desc, ss_report;
    bool ss_tf, ss_tf_guest, ss_db_added; /* stepping with RFLAGS.TF instead of MTF */
    uint64_t ss_rip;
    uint64_t ss_gpa[STEP_PAGES]; /* pages relaxed for the step (an instruction */
    unsigned ss_npages;          /* may touch several: MOVS, a split access) */
    /* control_singlestep(true) from the engine during the last PF event */
    bool ss_requested;
    void *xsave; /* a 64-byte aligned page for XSAVE */
};
static struct hv_vcpu hv[BI_MAX_CPUS];

static struct vcpu *vc(unsigned i)
{
    return i < g_vmx.ncpus ? g_vmx.vcpus[i] : NULL;
}

static uint32_t me1(void)
{
    return cpu_current_index() + 1;
}

bool kvmi_hv_on(void)
{
    return running;
}

/* ---- start ------------------------------------------------------------------------ */

/* Bytes of a "12345678-..." or plain-hex UUID already parsed by config: none here;
 * without one, a stable UUID from the NIC-independent facts we have. */
static void default_uuid(uint8_t uuid[16], const struct boot_info *bi)
{
    uint64_t a = 0x48564b564d49ull ^ bi->region_base, b = bi->tsc_hz ^ ((uint64_t)bi->ncpus << 56);
    memcpy(uuid, &a, 8);
    memcpy(uuid + 8, &b, 8);
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4 layout */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}

void kvmi_hv_start(struct boot_info *bi)
{
    const struct hv_config *c = &bi->config;
    if (!net_up() || c->net_selftest) {
        log_info("kvmi: no introspection (%s)", net_up() ? "net_selftest" : "no network");
        return;
    }
    unsigned n = g_vmx.ncpus;
    size_t vbytes = sizeof(struct kvmi_vcpu) * n;
    struct kvmi_vcpu *vcpus = page_alloc(&g_pages, (vbytes + PAGE_SIZE - 1) / PAGE_SIZE);
    size_t pbytes = sizeof(struct kvmi_page_slot) * PAGE_CAP;
    struct kvmi_page_slot *pages = page_alloc(&g_pages, (pbytes + PAGE_SIZE - 1) / PAGE_SIZE);
    bool ok = vcpus && pages;
    for (unsigned i = 0; ok && i < n; i++)
        ok = (hv[i].xsave = page_alloc(&g_pages, 1)) != NULL;
    if (!ok) {
        log_error("kvmi: not enough reserved memory for %u vCPU(s); no introspection", n);
        return;
    }
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    if (c->has_uuid)
        memcpy(cfg.uuid, c->uuid, 16);
    else
        default_uuid(cfg.uuid, bi);
    strncpy(cfg.name, c->name[0] ? c->name : "hv", sizeof(cfg.name) - 1);
    cfg.start_time = 0; /* no wall clock in VMX root (QEMU kvmi-v6 sends 0 too) */
    if (c->has_key) {
        cfg.key_len = 0;
        while (cfg.key_len < sizeof(c->key) && c->key[cfg.key_len])
            cfg.key_len++;
        if (cfg.key_len > KVMI_KEY_MAX)
            cfg.key_len = KVMI_KEY_MAX;
        memcpy(cfg.key, c->key, cfg.key_len);
    }
    spin_init(&ept_lock);
    kvmi_rights_init(&rights, rights_store, RIGHTS_CAP);
    kvmi_init(&g_kvmi, &cfg, NULL, vcpus, n, pages, PAGE_CAP);
    if (net_kvmi_attach(&link, &g_kvmi)) {
        log_warn("kvmi: the transport could not be opened; no introspection");
        return;
    }
    running = true;
    log_info("kvmi: engine up for %u vCPU(s) (%llu KiB), name '%s', %s", n,
             (unsigned long long)((vbytes + pbytes) >> 10), cfg.name,
             cfg.key_len ? "keyed" : "keyless");
}

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

int kvmi_arch_set_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *i)
{
    (void)vm;
    struct guest_regs *r = vc(vcpu)->regs;
    if (!r)
        return -KVM_EINVAL;
    r->rax = i->rax, r->rbx = i->rbx, r->rcx = i->rcx, r->rdx = i->rdx;
    r->rsi = i->rsi, r->rdi = i->rdi, r->rbp = i->rbp;
    r->r8 = i->r8, r->r9 = i->r9, r->r10 = i->r10, r->r11 = i->r11;
    r->r12 = i->r12, r->r13 = i->r13, r->r14 = i->r14, r->r15 = i->r15;
    vmwrite(VMCS_GUEST_RSP, i->rsp);
    vmwrite(VMCS_GUEST_RIP, i->rip);
    /* bit 1 is fixed to 1 and reserved bits must be 0, or VM entry fails (SDM 26.3.1.4) */
    vmwrite(VMCS_GUEST_RFLAGS, (i->rflags & 0x3f7fd7ull) | 2);
    return 0;
}

/* One guest segment from the VMCS: ES CS SS DS FS GS LDTR TR, whose
 * encodings step by 2 in each group (SDM Appendix B). */
static void get_seg(struct kvm_segment *s, unsigned k)
{
    kvmi_seg_from_vmcs(
        s, (uint16_t)vmread(VMCS_GUEST_ES_SEL + 2 * k), vmread(VMCS_GUEST_ES_BASE + 2 * k),
        (uint32_t)vmread(VMCS_GUEST_ES_LIMIT + 2 * k), (uint32_t)vmread(VMCS_GUEST_ES_AR + 2 * k));
}

/* What the guest reads from CR0/CR4: owned bits from the read shadow (SDM 25.6.6). */
static uint64_t guest_cr(unsigned cr)
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
    s->cr0 = guest_cr(0);
    s->cr2 = read_cr2(); /* not switched by VM exits: root mode sees the guest's */
    s->cr3 = vmread(VMCS_GUEST_CR3);
    s->cr4 = guest_cr(4);
    s->cr8 = read_cr8(); /* no TPR shadow: the APIC's TPR is the guest's */
    s->efer = vmread(VMCS_GUEST_EFER);
    s->apic_base = rdmsr(MSR_IA32_APIC_BASE);
    /* interrupt_bitmap: external interrupts are delivered to the guest
     * directly (no external-interrupt exiting), so none is ever pending here. */
    return 0;
}

/* MSRs the VMCS holds for the guest (loaded at entry, SDM 25.4.1). */
static bool vmcs_msr(uint32_t msr, uint32_t *field)
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

static int guest_msr(uint32_t msr, uint64_t *val)
{
    uint32_t f;
    if (msr_is_vmx_capability(msr))
        return -KVM_EINVAL; /* #GP for the guest, as on a CPU without VMX */
    if (msr == MSR_IA32_FEATURE_CONTROL) {
        *val = feature_control_guest_view(rdmsr(msr));
        return 0;
    }
    if (vmcs_msr(msr, &f)) {
        *val = vmread(f);
        return 0;
    }
    return safe_rdmsr(msr, val) ? -KVM_EINVAL : 0;
}

int kvmi_arch_get_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, uint64_t *value)
{
    (void)vm, (void)vcpu;
    return guest_msr(msr, value);
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
static bool osxsave_on(uint64_t *saved)
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

static uint64_t guest_xcr0(bool *known)
{
    uint64_t cr4;
    *known = osxsave_on(&cr4);
    uint32_t lo = 1, hi = 0;
    if (*known)
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    write_cr4(cr4);
    return ((uint64_t)hi << 32) | lo;
}

int kvmi_arch_get_xsave(struct kvmi_vm *vm, unsigned vcpu, struct kvm_xsave *out)
{
    (void)vm;
    uint8_t *buf = hv[vcpu].xsave;
    memset(buf, 0, PAGE_SIZE);
    uint64_t cr4;
    bool xs = osxsave_on(&cr4);
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
    struct hv_vcpu *h = &hv[vcpu];
    h->exc_pending = true;
    h->exc_nr = nr;
    h->exc_has_err = has_error;
    h->exc_err = error_code;
    h->exc_addr = address;
    return 0;
}

/* ---- intercepts -------------------------------------------------------------------- */

int kvmi_arch_control_cr(struct kvmi_vm *vm, unsigned vcpu, unsigned cr, bool enable)
{
    (void)vm;
    struct vcpu *v = vc(vcpu);
    if (cr == 3) {
        /* CR3-load exiting (SDM 25.6.2); kept when the CPU forces it (allowed-0). */
        hv[vcpu].cr3 = enable;
        bool forced = g_vmx.ctl.v[VMX_CTL_PROC] & PROC_CR3_LOAD_EXITING;
        if (enable)
            vmx_set_proc_ctls(v, PROC_CR3_LOAD_EXITING, 0);
        else if (!forced)
            vmx_set_proc_ctls(v, 0, PROC_CR3_LOAD_EXITING);
        return 0;
    }
    if (cr != 0 && cr != 4)
        return -KVM_EINVAL;
    /* Owning every bit makes every value-changing MOV to CRn exit (SDM 26.1.3).
     * The read shadow takes the guest's full view first, so reads stay right. */
    uint64_t visible = guest_cr(cr);
    if (enable) {
        if (cr == 0) {
            vmwrite(VMCS_CR0_READ_SHADOW, visible);
            v->cr0_mask = 0xffffffffull;
            vmwrite(VMCS_CR0_GUEST_HOST_MASK, v->cr0_mask);
        } else {
            vmwrite(VMCS_CR4_READ_SHADOW, visible);
            v->cr4_mask = 0xffffffffull;
            vmwrite(VMCS_CR4_GUEST_HOST_MASK, v->cr4_mask);
        }
    } else {
        uint64_t keep0 = v->cr0_mask, keep4 = v->cr4_mask;
        vmx_cr_masks(v); /* back to the VMX-fixed bits (and CR4.VMXE) */
        if (cr == 0) {
            vmwrite(VMCS_CR4_GUEST_HOST_MASK, v->cr4_mask = keep4);
        } else {
            vmwrite(VMCS_CR0_GUEST_HOST_MASK, v->cr0_mask = keep0);
        }
    }
    return 0;
}

int kvmi_arch_control_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, bool enable)
{
    (void)vm;
    unsigned byte;
    uint8_t bit;
    if (kvmi_msr_write_bit(msr, &byte, &bit))
        return -KVM_EINVAL;
    uint8_t *bm = (uint8_t *)vc(vcpu)->msr_bitmap;
    const uint8_t *tmpl = (const uint8_t *)g_vmx.msr_bitmap_template;
    if (enable)
        bm[byte] |= bit;
    else /* the hypervisor's own intercepts (template) stay */
        bm[byte] = (uint8_t)((bm[byte] & ~bit) | (tmpl[byte] & bit));
    return 0;
}

static bool have_proc2(uint32_t bit)
{
    return (g_vmx.facts.procbased2 >> 32) & bit;
}

static bool have_mtf(void)
{
    uint64_t cap =
        (g_vmx.facts.basic & (1ull << 55)) ? g_vmx.facts.true_proc : g_vmx.facts.procbased;
    return (cap >> 32) & PROC_MTF;
}

static void set_desc_exiting(bool on)
{
    uint32_t p2 = (uint32_t)vmread(VMCS_PROC2_CTLS);
    p2 = on ? (p2 | PROC2_DESC_TABLE_EXIT) : (p2 & ~PROC2_DESC_TABLE_EXIT);
    vmwrite(VMCS_PROC2_CTLS, p2);
}

int kvmi_arch_control_desc(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    if (!have_proc2(PROC2_DESC_TABLE_EXIT) || !have_mtf())
        return -KVM_EOPNOTSUPP;
    hv[vcpu].desc = enable;
    if (!hv[vcpu].ss_desc) /* a step with it lifted puts it back itself */
        set_desc_exiting(enable);
    return 0;
}

int kvmi_arch_control_bp(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    struct vcpu *v = vc(vcpu);
    hv[vcpu].bp = enable;
    v->exc_bitmap = enable ? (v->exc_bitmap | (1u << 3)) : (v->exc_bitmap & ~(1u << 3));
    vmwrite(VMCS_EXCEPTION_BITMAP, v->exc_bitmap);
    return 0;
}

int kvmi_arch_control_singlestep(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    if (enable && !have_mtf())
        return -KVM_EOPNOTSUPP;
    /* enable: the PF hook starts the step after the event returns; disable:
     * the step (if any) completes, but nothing is reported. */
    hv[vcpu].ss_requested = enable;
    if (!enable)
        hv[vcpu].ss_report = false;
    return 0;
}

/* ---- guest memory ---------------------------------------------------------------------- */

static bool ram_type(uint32_t t)
{
    return bi_mem_is_ram(t) && t != BI_EFI_RESERVED && t != BI_EFI_UNUSABLE;
}

uint64_t kvmi_arch_max_gfn(struct kvmi_vm *vm)
{
    (void)vm;
    uint64_t top = 0;
    for (uint32_t i = 0; i < g_bi->nmem; i++) {
        const struct bi_mem_range *m = &g_bi->mem[i];
        if (ram_type(m->type) && m->base + m->size > top)
            top = m->base + m->size;
    }
    return top ? (top >> 12) - 1 : 0;
}

/* Guest memory the tool may touch: a memory-map range that is not MMIO,
 * not the hypervisor region, not the xAPIC page. */
static bool gpa_is_guest_memory(uint64_t gpa)
{
    if (gpa_hidden(gpa) || (gpa & ~0xfffull) == g_vmx.apic_base)
        return false;
    for (uint32_t i = 0; i < g_bi->nmem; i++) {
        const struct bi_mem_range *m = &g_bi->mem[i];
        if (gpa >= m->base && gpa - m->base < m->size)
            return bi_mem_is_ram(m->type) && m->type != BI_HV_REGION;
    }
    return false;
}

int kvmi_arch_read_phys(struct kvmi_vm *vm, uint64_t gpa, void *buf, size_t size)
{
    (void)vm;
    if (!gpa_is_guest_memory(gpa))
        return -KVM_ENOENT;
    memcpy(buf, (const void *)(uintptr_t)gpa, size); /* identity-mapped in root mode */
    return 0;
}

int kvmi_arch_write_phys(struct kvmi_vm *vm, uint64_t gpa, const void *buf, size_t size)
{
    (void)vm;
    if (!gpa_is_guest_memory(gpa))
        return -KVM_ENOENT;
    memcpy((void *)(uintptr_t)gpa, buf, size);
    return 0;
}

/* The tool's rights for gfn (rwx when it never restricted it). */
static uint8_t tool_rights(uint64_t gfn)
{
    spin_lock(&ept_lock);
    uint8_t a = kvmi_rights_get(&rights, gfn);
    spin_unlock(&ept_lock);
    return a;
}

int kvmi_arch_set_page_access(struct kvmi_vm *vm, uint64_t gfn, uint8_t access)
{
    (void)vm;
    uint64_t gpa = gfn << 12;
    if (gfn > kvmi_arch_max_gfn(vm) || !gpa_is_guest_memory(gpa))
        return -KVM_EINVAL;
    spin_lock(&ept_lock);
    struct kvmi_rights_entry *slot = kvmi_rights_slot(&rights, gfn, access != EPT_RWX);
    if (!slot) {
        spin_unlock(&ept_lock);
        return access == EPT_RWX ? 0 : -KVM_ENOMEM;
    }
    /* Never write-without-read in EPT (SDM 29.3.3.1): DROP grants less than
     * asked, so every access the tool wants to see still exits. */
    int rc = ept_set_rights(&g_ept, gpa, access, EPT_FIX_DROP, NULL);
    if (rc == 0)
        slot->access = access;
    spin_unlock(&ept_lock);
    if (rc)
        return rc == EPT_ENOMEM ? -KVM_ENOMEM : -KVM_EINVAL;
    /* Answered only once no vCPU can use a stale translation (SDM 29.4.3.1). */
    vmx_invept_all();
    return 0;
}

/* ---- time, randomness, crash ------------------------------------------------------------- */

uint64_t kvmi_arch_tsc_hz(struct kvmi_vm *vm)
{
    (void)vm;
    return g_bi->tsc_hz;
}

uint64_t kvmi_arch_random(struct kvmi_vm *vm)
{
    (void)vm;
    uint32_t a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    if (c & (1u << 30)) {
        for (int i = 0; i < 10; i++) {
            uint64_t r;
            uint8_t ok;
            __asm__ volatile("rdrand %0; setc %1" : "=r"(r), "=qm"(ok));
            if (ok)
                return r;
        }
    }
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
    if (__atomic_exchange_n(&crashed, 1, __ATOMIC_SEQ_CST) == 0)
        log_error("kvmi: the introspector answered CRASH on vCPU %u: stopping the guest", vcpu);
    for (unsigned i = 0; i < g_vmx.ncpus; i++) {
        struct vcpu *v = vc(i);
        if (v && i != vcpu && v->state != VCPU_OFF)
            kick(v, false);
    }
}

/* Park for good: out of guest mode, still polling the NIC so the session can
 * end cleanly; kicks do not wait for a halted vCPU. */
static __attribute__((noreturn)) void park(struct vcpu *v)
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
static void ack_requests(struct vcpu *v)
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
        ack_requests(self);
    if (vcpu < 0 && __atomic_load_n(&unhook_cpu, __ATOMIC_ACQUIRE) != me1()) {
        /* The receive context waits for send room, but it runs inside
         * service_poll(): only it could make room.  Tell the next send. */
        __atomic_store_n(&starved_cpu, me1(), __ATOMIC_RELEASE);
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

/* ---- transport -------------------------------------------------------------------------- */

int kvmi_arch_send(struct kvmi_vm *vm, const void *msg, size_t len)
{
    (void)vm;
    if (__atomic_load_n(&starved_cpu, __ATOMIC_ACQUIRE) == me1()) {
        __atomic_store_n(&starved_cpu, 0, __ATOMIC_RELEASE);
        log_warn("kvmi: send queue full in the receive context (introspector not reading): "
                 "closing");
        net_kvmi_close(&link);
        return -KVM_EFAULT;
    }
    return net_kvmi_send(&link, msg, len);
}

void kvmi_arch_close(struct kvmi_vm *vm)
{
    (void)vm;
    net_kvmi_close(&link);
}

/* ---- diagnostics ------------------------------------------------------------------------ */

void kvmi_arch_trace(struct kvmi_vm *vm, bool dir_in, const void *msg, size_t len)
{
    (void)vm;
    const struct kvmi_msg_hdr *h = msg;
    if (len >= sizeof(*h))
        log_debug("kvmi: %s id %u size %u seq %u", dir_in ? "in " : "out", h->id, h->size, h->seq);
}

void kvmi_arch_log(struct kvmi_vm *vm, const char *what, int64_t value)
{
    (void)vm;
    log_warn("kvmi: %s (%lld)", what, (long long)value);
}

/* ============================ exit-handler hooks ============================================ */

/* The tool's exception at entry (SDM 27.6.1); if something else is already
 * being injected, it is dropped and KVMI_EVENT_TRAP describes the other. */
static void deliver_exception(struct vcpu *v)
{
    struct hv_vcpu *h = &hv[v->index];
    if (!h->exc_pending)
        return;
    h->exc_pending = false;
    uint32_t cur = (uint32_t)vmread(VMCS_ENTRY_INTR_INFO);
    if (cur & INTR_INFO_VALID) {
        uint32_t type = cur & (7u << 8), err = 0;
        if (cur & INTR_INFO_ERRCODE)
            err = (uint32_t)vmread(VMCS_ENTRY_EXCEPTION_ERRCODE);
        kvmi_event_trap(&g_kvmi, v->index, INTR_INFO_VECTOR(cur), type == INTR_TYPE_NMI ? 0 : type,
                        err, read_cr2());
        return;
    }
    unsigned nr = h->exc_nr;
    if (nr > 31 || nr == 2) {
        log_warn("kvmi: INJECT_EXCEPTION vector %u cannot be a hardware exception; dropped", nr);
        return;
    }
    /* An error code exactly when the vector has one in protected mode, or
     * VM entry fails (SDM 27.2.1.3). */
    bool err = kvmi_exc_has_errcode(nr, guest_cr(0) & CR0_PE_BIT);
    if (nr == 14)
        __asm__ volatile("mov %0, %%cr2" : : "r"(h->exc_addr));
    if (nr == 3 || nr == 4) { /* #BP/#OF as software exceptions, after the instruction */
        vmwrite(VMCS_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_SW_EXCEPTION | nr);
        vmwrite(VMCS_ENTRY_INSTR_LEN, 0);
    } else {
        vmx_inject_exception(v, nr, err, h->exc_err);
    }
    if (vmread(VMCS_GUEST_ACTIVITY_STATE) == VMX_ACTIVITY_HLT)
        vmwrite(VMCS_GUEST_ACTIVITY_STATE, VMX_ACTIVITY_ACTIVE);
}

static void step_check(struct vcpu *v);

bool kvmi_hv_before_entry(struct vcpu *v)
{
    if (!running)
        return false;
    step_check(v);
    if (__atomic_load_n(&crashed, __ATOMIC_ACQUIRE))
        park(v);
    if (kvmi_vcpu_has_work(&g_kvmi, v->index)) {
        kvmi_vcpu_service(&g_kvmi, v->index);
        if (__atomic_load_n(&crashed, __ATOMIC_ACQUIRE))
            park(v);
        return true; /* requests may have come meanwhile: serve them, then look again */
    }
    if (v->state == VCPU_RUNNING)
        deliver_exception(v);
    return false;
}

static unsigned vcpu_mode(void)
{
    struct kvm_sregs s;
    kvmi_arch_get_sregs(NULL, 0, &s);
    return kvmi_vcpu_mode(&s);
}

/* What every hook does with a CRASH verdict: the guest stops here. */
static void crash_check(struct vcpu *v, enum kvmi_verdict vd)
{
    if (vd == KVMI_V_CRASH)
        park(v);
}

bool kvmi_hv_cr_write(struct vcpu *v, unsigned cr, uint64_t old, uint64_t *val)
{
    if (!running || !kvmi_cr_monitored(&g_kvmi, v->index, cr))
        return true;
    uint64_t mask = cr == 3 ? ~(1ull << 63) : ~0ull; /* CR3 bit 63: "no flush", not state */
    if ((old & mask) == (*val & mask))
        return true; /* only writes that change the value are reported */
    enum kvmi_verdict vd = kvmi_event_cr(&g_kvmi, v->index, cr, old, val);
    crash_check(v, vd);
    return vd != KVMI_V_FAIL;
}

int kvmi_hv_wrmsr(struct vcpu *v, uint32_t msr, uint64_t *val)
{
    if (!running)
        return 0;
    uint32_t field;
    bool in_vmcs = vmcs_msr(msr, &field);
    if (kvmi_msr_monitored(&g_kvmi, v->index, msr)) {
        uint64_t old;
        if (guest_msr(msr, &old) == 0 && old != *val) {
            enum kvmi_verdict vd = kvmi_event_msr(&g_kvmi, v->index, msr, old, val);
            crash_check(v, vd);
            if (vd == KVMI_V_FAIL)
                return -1;
        }
    }
    if (!in_vmcs)
        return 0;
    /* Only KVMI makes these exit: the value belongs in the VMCS, never in
     * the host's own MSR.  EFER.LMA follows CR0.PG, not WRMSR (SDM 10.8.5). */
    uint64_t nv = *val;
    if (msr == MSR_IA32_EFER)
        nv = (nv & ~EFER_LMA_B) | (vmread(VMCS_GUEST_EFER) & EFER_LMA_B);
    vmwrite(field, nv);
    return 1;
}

bool kvmi_hv_xsetbv(struct vcpu *v, uint64_t val)
{
    if (!running)
        return true;
    bool known;
    if (guest_xcr0(&known) == val && known)
        return true;
    enum kvmi_verdict vd = kvmi_event_xsetbv(&g_kvmi, v->index);
    crash_check(v, vd);
    return vd != KVMI_V_FAIL;
}

static int walk_read8(void *ctx, uint64_t gpa, uint64_t *val)
{
    (void)ctx;
    *val = gpa_hidden(gpa) ? 0 : *(volatile uint64_t *)(uintptr_t)gpa;
    return 0;
}

/* Guest-physical address of a guest-linear one through the guest's paging
 * (~0 when it does not translate). */
static uint64_t gla_to_gpa(uint64_t gla)
{
    if (!(guest_cr(0) & CR0_PG_BIT))
        return gla;
    struct gwalk_regs r = {vmread(VMCS_GUEST_CR0), vmread(VMCS_GUEST_CR3), vmread(VMCS_GUEST_CR4),
                           vmread(VMCS_GUEST_EFER)};
    if (!(vmread(VMCS_ENTRY_CTLS) & ENTRY_IA32E_GUEST))
        r.efer &= ~EFER_LMA_B;
    uint64_t gpa;
    return gwalk(&r, gla, walk_read8, NULL, &gpa) ? ~0ull : gpa;
}

static void step_end(struct vcpu *v);

/* #DB of a TF step: past the instruction it ends the step (and is the
 * guest's only if the guest was single-stepping itself); before it (BS was
 * pending at entry) the step goes on. */
static bool step_db(struct vcpu *v, uint32_t info)
{
    struct hv_vcpu *h = &hv[v->index];
    if (!h->ss_active || !h->ss_tf)
        return false;
    if (vmread(VMCS_GUEST_RIP) == h->ss_rip)
        return true;
    bool guest_tf = h->ss_tf_guest;
    step_end(v);
    if (guest_tf) {
        vmwrite(VMCS_ENTRY_INTR_INFO, info & ~(INTR_INFO_NMI_UNBLOCK | (1u << 12)));
        vmwrite(VMCS_GUEST_PENDING_DBG, 0);
    }
    return true;
}

bool kvmi_hv_exception(struct vcpu *v, uint32_t info)
{
    if (!running)
        return false;
    if (INTR_INFO_VECTOR(info) == 1)
        return step_db(v, info);
    if (!hv[v->index].bp || INTR_INFO_VECTOR(info) != 3)
        return false;
    uint64_t len = vmread(VMCS_EXIT_INSTR_LEN);
    uint64_t gla = vmread(VMCS_GUEST_CS_BASE) + vmread(VMCS_GUEST_RIP);
    enum kvmi_verdict vd = kvmi_event_breakpoint(&g_kvmi, v->index, gla_to_gpa(gla), (uint8_t)len);
    crash_check(v, vd);
    if (vd == KVMI_V_RETRY)
        return true; /* re-enter at the same RIP, nothing injected (the tool fixed it) */
    /* CONTINUE (or no event): the guest's own #BP, as the CPU would deliver it */
    uint32_t e = info & ~(INTR_INFO_NMI_UNBLOCK | (1u << 12));
    vmwrite(VMCS_ENTRY_INTR_INFO, e);
    if (INTR_INFO_TYPE(info) >= 4)
        vmwrite(VMCS_ENTRY_INSTR_LEN, len);
    return true;
}

bool kvmi_hv_vmcall(struct vcpu *v)
{
    if (!running)
        return false;
    struct kvm_regs r;
    kvmi_arch_get_regs(NULL, v->index, &r);
    if (!kvmi_is_event_hypercall(&r, vcpu_mode()))
        return false;
    uint64_t rax;
    enum kvmi_verdict vd = kvmi_event_hypercall(&g_kvmi, v->index, &rax);
    crash_check(v, vd);
    v->regs->rax = rax;
    vmx_skip_insn(v);
    return true;
}

/* ---- one-instruction steps ------------------------------------------------------------ */

/*
 * Two ways to get control back after one guest instruction:
 *  - the monitor trap flag (SDM 26.5.2): exits after the instruction; with
 *    blocking by STI (allowed only with IF=1, SDM 26.3.1.5) no interrupt
 *    handler runs first.  The natural choice;
 *  - RFLAGS.TF with #DB in the exception bitmap: the single-step trap after
 *    the instruction exits instead of being delivered.  Used where MTF is
 *    not offered or does not fire: Bochs 2.7 accepts the MTF control but
 *    never exits for it (seen in this project's KVMI scenario).  An interrupt
 *    may run before the instruction (its handler runs unstepped, TF cleared
 *    by the delivery and restored by its IRET); an instruction that clears TF
 *    itself (POPF, IRET) ends the step late, at the next #DB.
 * MTF is tried first; an exit after the instruction that is not the MTF exit
 * proves it does not work on this CPU, and TF is used from then on.
 */
static volatile bool mtf_unreliable;

#define DB_BS (1ull << 14) /* single-step bit of DR6 / pending debug exceptions */

static void step_begin(struct vcpu *v)
{
    struct hv_vcpu *h = &hv[v->index];
    h->ss_active = true;
    h->ss_rip = vmread(VMCS_GUEST_RIP);
    uint64_t intr = vmread(VMCS_GUEST_INTERRUPTIBILITY);
    uint64_t rfl = vmread(VMCS_GUEST_RFLAGS);
    if (have_mtf() && !mtf_unreliable) {
        h->ss_tf = false;
        if (rfl & RFLAGS_IF)
            vmwrite(VMCS_GUEST_INTERRUPTIBILITY, intr | VMX_INTERRUPTIBILITY_STI);
        vmx_set_proc_ctls(v, PROC_MTF, 0);
        return;
    }
    h->ss_tf = true;
    h->ss_tf_guest = rfl & RFLAGS_TF;
    vmwrite(VMCS_GUEST_RFLAGS, rfl | RFLAGS_TF);
    /* TF with blocking by STI/MOV SS needs BS pending, or VM entry fails
     * (SDM 26.3.1.5); the #DB then comes before the instruction and the
     * step simply goes on (kvmi_hv_exception). */
    if (intr & (VMX_INTERRUPTIBILITY_STI | VMX_INTERRUPTIBILITY_MOV_SS))
        vmwrite(VMCS_GUEST_PENDING_DBG, vmread(VMCS_GUEST_PENDING_DBG) | DB_BS);
    h->ss_db_added = !(v->exc_bitmap & (1u << 1));
    v->exc_bitmap |= 1u << 1;
    vmwrite(VMCS_EXCEPTION_BITMAP, v->exc_bitmap);
}

/* The instruction has run: take the intercept back, report if asked. */
static void step_end(struct vcpu *v)
{
    struct hv_vcpu *h = &hv[v->index];
    h->ss_active = false;
    if (h->ss_tf) {
        if (!h->ss_tf_guest)
            vmwrite(VMCS_GUEST_RFLAGS, vmread(VMCS_GUEST_RFLAGS) & ~RFLAGS_TF);
        if (h->ss_db_added) {
            v->exc_bitmap &= ~(1u << 1);
            vmwrite(VMCS_EXCEPTION_BITMAP, v->exc_bitmap);
        }
    } else {
        vmx_set_proc_ctls(v, 0, PROC_MTF);
    }
    if (h->ss_npages) {
        /* back to the tool's rights, on every vCPU before this one goes on */
        spin_lock(&ept_lock);
        for (unsigned i = 0; i < h->ss_npages; i++)
            ept_set_rights(&g_ept, h->ss_gpa[i], kvmi_rights_get(&rights, h->ss_gpa[i] >> 12),
                           EPT_FIX_DROP, NULL);
        spin_unlock(&ept_lock);
        h->ss_npages = 0;
        vmx_invept_all();
    }
    if (h->ss_desc) {
        h->ss_desc = false;
        set_desc_exiting(h->desc);
    }
    if (h->ss_report) {
        h->ss_report = false;
        crash_check(v, kvmi_event_singlestep(&g_kvmi, v->index));
    }
}

/* Before every entry: an MTF step whose instruction completed without the
 * MTF exit shows that MTF does not work here (see above). */
static void step_check(struct vcpu *v)
{
    struct hv_vcpu *h = &hv[v->index];
    if (!h->ss_active || h->ss_tf)
        return;
    unsigned reason = EXIT_REASON_BASIC((uint32_t)vmread(VMCS_EXIT_REASON));
    if (reason == EXIT_REASON_MTF || vmread(VMCS_GUEST_RIP) == h->ss_rip)
        return;
    if (!mtf_unreliable)
        log_warn("kvmi: the monitor trap flag did not fire (exit %u after the step): "
                 "single-stepping with RFLAGS.TF from now on",
                 reason);
    mtf_unreliable = true;
    step_end(v);
}

/* Relax the page to allow `right` (on top of what it has now) for one
 * instruction; only this core is invalidated (others keep the stricter
 * view, at worst one more exit).  A violation on another page while the step
 * is pending (the same instruction touching a second restricted page) adds
 * that page to the step.  EPT_FIX_ADD_READ: a relaxation may grant more than
 * asked, never less. */
static void step_page(struct vcpu *v, uint64_t gpa, uint8_t right)
{
    struct hv_vcpu *h = &hv[v->index];
    uint64_t page = gpa & ~0xfffull;
    bool known = false;
    for (unsigned i = 0; i < h->ss_npages; i++)
        known |= h->ss_gpa[i] == page;
    if (!known && h->ss_npages == STEP_PAGES) {
        log_warn("kvmi: vCPU %u: one instruction touches more than %u restricted pages", v->index,
                 STEP_PAGES);
        return; /* it faults again; the tool sees the event again */
    }
    spin_lock(&ept_lock);
    unsigned cur = 0;
    ept_get_rights(&g_ept, page, &cur);
    ept_set_rights(&g_ept, page, cur | right, EPT_FIX_ADD_READ, NULL);
    spin_unlock(&ept_lock);
    vmx_flush_ept();
    if (!known)
        h->ss_gpa[h->ss_npages++] = page;
    if (!h->ss_active)
        step_begin(v);
}

void kvmi_hv_mtf(struct vcpu *v)
{
    struct hv_vcpu *h = &hv[v->index];
    vmx_set_proc_ctls(v, 0, PROC_MTF);
    if (h->ss_active && !h->ss_tf)
        step_end(v);
}

/* ---- EPT violations on restricted pages -------------------------------------------------- */

bool kvmi_hv_ept_violation(struct vcpu *v, uint64_t q, uint64_t gpa)
{
    if (!running)
        return false;
    uint64_t gfn = gpa >> 12;
    spin_lock(&ept_lock);
    bool tracked = kvmi_rights_slot(&rights, gfn, false) != NULL;
    spin_unlock(&ept_lock);
    if (!tracked)
        return false;
    struct hv_vcpu *h = &hv[v->index];
    /* KVMI reports the single right attempted (spec §4.2). */
    uint8_t attempt = kvmi_pf_access(q);
    if (tool_rights(gfn) & attempt) {
        /* Allowed by the tool, refused only because EPT cannot express its
         * rights (write without read): step it through silently. */
        step_page(v, gpa, attempt);
        return true;
    }
    uint64_t gva = (q & EPT_VIOL_GLA_VALID) ? vmread(VMCS_GUEST_LINEAR_ADDR) : ~0ull;
    struct kvmi_event_pf_reply rpl;
    h->ss_requested = false;
    enum kvmi_verdict vd = kvmi_event_pf(&g_kvmi, v->index, gpa, gva, attempt, &rpl);
    crash_check(v, vd);
    if (vd == KVMI_V_RETRY) {
        if (h->ss_requested) { /* RETRY + singlestep: step, then KVMI_EVENT_SINGLESTEP */
            h->ss_requested = false;
            h->ss_report = true;
            step_page(v, gpa, attempt);
        }
        return true; /* otherwise re-enter: the access faults again unless the tool relaxed it */
    }
    /* CONTINUE or no event: KVM would emulate the access; we execute it
     * with the right lent for one instruction.  The reply's ctx_data (reads
     * served from the tool's buffer) cannot be honoured without an
     * emulator and is ignored. */
    step_page(v, gpa, attempt);
    return true;
}

/* ---- descriptor-table exits -------------------------------------------------------------- */

void kvmi_hv_desc(struct vcpu *v, unsigned reason)
{
    struct hv_vcpu *h = &hv[v->index];
    uint8_t which;
    bool write;
    kvmi_desc_of_exit(reason, (uint32_t)vmread(VMCS_EXIT_INSTR_INFO), &which, &write);
    enum kvmi_verdict vd = kvmi_event_descriptor(&g_kvmi, v->index, which, write);
    crash_check(v, vd);
    if (vd == KVMI_V_RETRY)
        return; /* re-enter at the same RIP unless the tool moved it */
    /* CONTINUE (or no event): the instruction runs with descriptor-table
     * exiting lifted for it, then the exiting comes back. */
    set_desc_exiting(false);
    h->ss_desc = true;
    if (!h->ss_active)
        step_begin(v);
}

/* ---- unhook ------------------------------------------------------------------------------ */

/* Triggers: the debug hypercall HV_HC_KVMI_UNHOOK, and the guest's power-off
 * through Bochs's shutdown port (exit_io.c).  ACPI sleep/reset writes are
 * not intercepted by the VMX core yet. */

int kvmi_hv_unhook(struct vcpu *v)
{
    if (!running)
        return -KVM_EFAULT;
    __atomic_store_n(&unhook_cpu, me1(), __ATOMIC_RELEASE);
    int rc = kvmi_unhook_request(&g_kvmi);
    if (rc != -KVM_EFAULT) /* (no session: nothing to say) */
        log_info("kvmi: unhook requested by vCPU %u: %s", v->index,
                 rc == 0             ? "event sent, waiting for the introspector to close"
                 : rc == -KVM_ENOENT ? "the introspector did not enable KVMI_EVENT_UNHOOK"
                                     : "no introspection session");
    if (rc == 0) {
        /* The guest keeps running on the other vCPUs; this one serves its
         * own jobs (the tool may pause it or read its registers) and polls. */
        uint64_t t0 = rdtsc();
        uint64_t limit = g_bi->tsc_hz / 1000 * g_bi->config.unhook_timeout_ms;
        while (kvmi_transport_up(&g_kvmi) && rdtsc() - t0 < limit) {
            ack_requests(v);
            if (kvmi_vcpu_has_work(&g_kvmi, v->index))
                kvmi_vcpu_service(&g_kvmi, v->index);
            service_poll();
            cpu_relax();
        }
        log_info("kvmi: unhook %s",
                 kvmi_transport_up(&g_kvmi) ? "timed out: going on" : "done: introspector closed");
    }
    __atomic_store_n(&unhook_cpu, 0, __ATOMIC_RELEASE);
    return rc;
}
