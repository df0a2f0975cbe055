/*
 * launch.c - take every CPU into VMX root and keep its firmware running as
 * a guest.
 *
 * vmx_init (BSP, once, firmware state live): control fields from the
 * capability MSRs, every vCPU's pages, the MSR and I/O bitmaps, the EPT
 * identity map with the hypervisor region hidden.  vmx_cpu_prepare (each
 * CPU, reached through core_launch in vmx_entry.S): snapshot the firmware's
 * state, load the host tables, VMXON, VMCS, and let core_launch VMLAUNCH.
 * SDM Vol. 3C references: 24.7 Enabling and Entering VMX Operation, 24.8
 * Restrictions on VMX Operation, chapter 25 Virtual Machine Control
 * Structures, 27.2 Checks on VMX Controls and Host-State Area, 27.3 Checking
 * and Loading Guest State, 25.11.5 VMXON Region.
 */
#include <string.h>

#include "core.h"
#include "core_status.h"
#include "ept.h"
#include "step.h"
#include "log.h"
#include "msr_policy.h"
#include "mtrr.h"
#include "vmx.h"
#include "vmx_insn.h"
#include "vmx_int.h"
#include "vmx_policy.h"
#include "test_hooks.h"

struct vmx_global g_vmx;
struct ept g_ept;

/* Bytes the guest must never see (docs/vmx.md, "Hiding"): the agent looks for them. */
const char hv_marker[HV_MARKER_LEN] = "HV-REGION-MARKER-5d1c9e27-hidden";
uint8_t *g_marker_page;

static void report_refusal(void *ctx, const char *feature, const char *detail)
{
    (void)ctx;
    log_error("missing: %s (%s)", feature, detail);
}

static void *pg_alloc(void *ctx, uint64_t *phys)
{
    (void)ctx;
    void *p = page_alloc(&g_pages, 1);
    *phys = (uint64_t)(uintptr_t)p;
    return p;
}

static void *pg_virt(void *ctx, uint64_t phys)
{
    (void)ctx;
    return (void *)(uintptr_t)phys;
}

/*
 * The identity map: every range the MTRRs type, up to the top of the memory
 * map (at least 4 GiB, for the local APIC and 32-bit BARs) and, for 64-bit
 * BARs, up to MAXPHYADDR while that stays cheap (512 GiB with 1 GiB pages,
 * 64 GiB with 2 MiB pages).  The hypervisor region is a hole; its pages are
 * then mapped read-only onto one zero page, so guest reads see zeros and
 * guest writes exit (exit_ept.c drops them).
 */
static int build_ept(struct boot_info *bi)
{
    struct ept_pager pg = {pg_alloc, pg_virt, NULL, NULL};
    uint64_t cap = vmx_caps_ept_vpid(&g_vmx.facts);
    if (ept_init(&g_ept, &pg, cap))
        return -1;
    static struct mtrr_state m;
    mtrr_read(&m);
    uint64_t top = bi_mem_top(bi->mem, bi->nmem);
    if (top < (4ull << 30))
        top = 4ull << 30;
    uint64_t cheap = g_ept.page_1g ? (512ull << 30) : (64ull << 30);
    g_vmx.phys_bits = m.phys_bits ? m.phys_bits : 36;
    uint64_t phys_top = 1ull << g_vmx.phys_bits;
    uint64_t want = phys_top < cheap ? phys_top : cheap;
    if (want > top)
        top = want;
    top = (top + (1ull << 30) - 1) & ~((1ull << 30) - 1);

    static struct mtrr_range mr[256];
    static struct ept_range er[256];
    size_t n = mtrr_split(&m, top, mr, 256);
    if (n > 256) {
        log_error("EPT: %zu memory-type ranges, more than 256", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        er[i].base = mr[i].base;
        er[i].len = mr[i].len;
        er[i].memtype = mr[i].type;
    }
    struct ept_range hole = {bi->region_base, bi->region_size, MEMTYPE_WB};
    int rc = ept_map_identity(&g_ept, er, n, &hole, 1);
    if (rc) {
        log_error("EPT: identity map failed (%d)", rc);
        return -1;
    }
    uint64_t zp = (uint64_t)(uintptr_t)g_vmx.zero_page;
    for (uint64_t a = bi->region_base; a < bi->region_base + bi->region_size; a += PAGE_SIZE) {
        rc = ept_map(&g_ept, a, zp, PAGE_SIZE, MEMTYPE_WB, EPT_R);
        if (rc) {
            log_error("EPT: cannot map the blank page at 0x%llx (%d)", (unsigned long long)a, rc);
            return -1;
        }
    }
    /* xAPIC page read-only: the guest's writes (ICR) exit and are emulated (apic.c). */
    rc = ept_set_rights(&g_ept, g_vmx.apic_base, EPT_R, EPT_FIX_REFUSE, NULL);
    if (rc)
        log_warn("EPT: cannot write-protect the APIC page 0x%llx (%d)",
                 (unsigned long long)g_vmx.apic_base, rc);
    /* The FADT reset register's page read-only: a reset written there exits (power.c). */
    uint64_t reset_page = vmx_power_init();
    if (reset_page) {
        rc = ept_set_rights(&g_ept, reset_page, EPT_R, EPT_FIX_REFUSE, NULL);
        if (rc)
            log_warn("EPT: cannot write-protect the reset register's page 0x%llx (%d)",
                     (unsigned long long)reset_page, rc);
        else
            log_info("EPT: the FADT reset register's page 0x%llx is read-only",
                     (unsigned long long)reset_page);
    }
    uint64_t cnt[3];
    ept_count_leaves(&g_ept, cnt);
    log_info("EPT: identity map up to 0x%llx, %zu type ranges, leaves 4K %llu 2M %llu 1G %llu, "
             "%u tables, region hidden",
             (unsigned long long)top, n, (unsigned long long)cnt[0], (unsigned long long)cnt[1],
             (unsigned long long)cnt[2], ept_tables(&g_ept));
    g_vmx.eptp = ept_eptp(&g_ept);
    return 0;
}

static int alloc_vcpu(struct boot_info *bi, unsigned i)
{
    struct vcpu *v = page_alloc(&g_pages, (sizeof(struct vcpu) + PAGE_SIZE - 1) / PAGE_SIZE);
    if (!v)
        return -1;
    v->index = i;
    v->apic_id = bi->cpus[i].apic_id;
    v->cpu = g_cpus[i];
    g_cpus[i]->vcpu = v;
    uint32_t rev = (uint32_t)(g_vmx.facts.basic & VMX_BASIC_REVISION_MASK);
    v->vmxon_region = page_alloc(&g_pages, 1);
    v->vmcs = page_alloc(&g_pages, 1);
    v->msr_bitmap = page_alloc(&g_pages, 1);
    uint8_t *stack = page_alloc(&g_pages, HOST_STACK_PAGES);
    if (!v->vmxon_region || !v->vmcs || !v->msr_bitmap || !stack)
        return -1;
    /* SDM Vol. 3C 25.2 Format of the VMCS Region, 25.11.5 VMXON Region: both regions start with the
     * VMCS revision identifier. */
    *(uint32_t *)v->vmxon_region = rev;
    *(uint32_t *)v->vmcs = rev;
    memcpy(v->msr_bitmap, g_vmx.msr_bitmap_template, PAGE_SIZE);
    v->host_stack_top = stack + HOST_STACK_PAGES * PAGE_SIZE;
    spin_init(&v->lock);
    spin_init(&v->job_lock);
    g_vmx.vcpus[i] = v;
    return 0;
}

int vmx_init(struct boot_info *bi, uint64_t host_cr3)
{
    /* Root-mode NMIs are kicks; a #GP of a safe_* helper returns -1. */
    trap_set_nmi_handler(vmx_root_nmi);
    trap_set_fixup(extable_fixup);
    panic_set_hook(vmx_cpu_panicked);
    struct vmx_cpu_facts *f = &g_vmx.facts;
    vmx_caps_read(f);
    int missing = vmx_caps_check(f, report_refusal, NULL);
    struct vmx_controls_request req;
    vmx_controls_hv_request(&req);
    if (!missing)
        missing = vmx_controls_compute(f, &req, &g_vmx.ctl, report_refusal, NULL);
    /* SDM Vol. 3D A.1 Basic VMX Information: the VMCS must be WB-cacheable and fit in a page for
     * our layout. */
    if (!missing && (VMX_BASIC_MEMTYPE(f->basic) != MEMTYPE_WB ||
                     VMX_BASIC_REGION_SIZE(f->basic) > PAGE_SIZE)) {
        log_error("missing: write-back VMCS region of at most 4 KiB (IA32_VMX_BASIC 0x%llx)",
                  (unsigned long long)f->basic);
        missing++;
    }
    if (missing) {
        log_error("refusing to start: %d required VT-x control(s) missing", missing);
        return CORE_ERR_VMX;
    }
    g_vmx.host_cr3 = host_cr3;
    g_vmx.ncpus = bi->ncpus;
    g_vmx.apic_base = rdmsr(MSR_IA32_APIC_BASE) & 0xffffff000ull;

    g_vmx.zero_page = page_alloc(&g_pages, 1);
    g_vmx.io_bitmap_a = page_alloc(&g_pages, 1);
    g_vmx.io_bitmap_b = page_alloc(&g_pages, 1);
    g_vmx.msr_bitmap_template = page_alloc(&g_pages, 1);
    g_marker_page = page_alloc(&g_pages, 1);
    if (!g_vmx.zero_page || !g_vmx.io_bitmap_a || !g_vmx.io_bitmap_b ||
        !g_vmx.msr_bitmap_template || !g_marker_page)
        return CORE_ERR_NO_MEMORY;

    /* Marker bytes all over one page of the region: if the guest could read
     * the region, the agent would find them. */
    for (unsigned o = 0; o + HV_MARKER_LEN <= PAGE_SIZE; o += HV_MARKER_LEN)
        memcpy(g_marker_page + o, hv_marker, HV_MARKER_LEN);

    /* Every MSR exits but the allow-list of vmx/msr_policy.h (exit_msr.c judges the
     * rest by the same table). */
    msr_policy_bitmap((uint8_t *)g_vmx.msr_bitmap_template);

    /* I/O bitmap A covers ports 0-0x7fff, B 0x8000-0xffff (SDM Vol. 3C 25.6.4 I/O-Bitmap
     * Addresses).  Bochs's shutdown port, in a test configuration only: statistics are printed
     * before the machine goes away (exit_io.c). */
    if (TEST_HOOKS && bi->config.debug_hypercalls)
        io_bitmap_intercept(g_vmx.io_bitmap_a, g_vmx.io_bitmap_b, BOCHS_SHUTDOWN_PORT);
    /* The guest's sleep, power-off and reset ports (power.c). */
    uint16_t power[12];
    unsigned npower;
    power_ports(&bi->power, power, &npower);
    for (unsigned i = 0; i < npower; i++)
        io_bitmap_intercept(g_vmx.io_bitmap_a, g_vmx.io_bitmap_b, power[i]);

    for (unsigned i = 0; i < bi->ncpus; i++)
        if (alloc_vcpu(bi, i))
            return CORE_ERR_NO_MEMORY;
    if (build_ept(bi) || vmx_views_init())
        return CORE_ERR_NO_MEMORY;

    unsigned rate = VMX_MISC_PREEMPT_RATE(f->misc);
    uint64_t ticks = (bi->tsc_hz / 1000000 * bi->config.poll_interval_us) >> rate;
    if (ticks == 0)
        ticks = 1;
    if (ticks > 0xffffffffull)
        ticks = 0xffffffffull;
    for (unsigned i = 0; i < bi->ncpus; i++)
        g_vmx.vcpus[i]->preempt_ticks = ticks;

    log_info("VMX: controls pin 0x%x proc 0x%x proc2 0x%x exit 0x%x entry 0x%x, "
             "preemption timer %llu ticks (rate %u), %u vCPU(s)",
             g_vmx.ctl.v[VMX_CTL_PIN], g_vmx.ctl.v[VMX_CTL_PROC], g_vmx.ctl.v[VMX_CTL_PROC2],
             g_vmx.ctl.v[VMX_CTL_EXIT], g_vmx.ctl.v[VMX_CTL_ENTRY], (unsigned long long)ticks, rate,
             bi->ncpus);
    return 0;
}

/* ---- per CPU ------------------------------------------------------------- */

/* A segment as the VMCS wants it (SDM Vol. 3C 25.4.1 Guest Register State). */
struct seg {
    uint16_t sel;
    uint32_t limit, ar;
    uint64_t base;
};

/* Reads the descriptor `sel` selects in the firmware's GDT. */
static struct seg seg_from_gdt(const struct dtr *gdt, uint16_t sel)
{
    struct seg s = {sel, 0, VMX_AR_UNUSABLE, 0};
    if ((sel & ~3u) == 0 || (sel & 4) || (uint32_t)(sel | 7) > gdt->limit)
        return s; /* null or LDT selector: unusable (SDM Vol. 3C 25.4.1 Guest Register State) */
    uint64_t d = *(const uint64_t *)(uintptr_t)(gdt->base + (sel & ~7u));
    s.base = ((d >> 16) & 0xffffff) | ((d >> 56) << 24);
    s.limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
    if (d & (1ull << 55))
        s.limit = (s.limit << 12) | 0xfff;
    /* Type/S/DPL/P (bits 47:40) and AVL/L/DB/G (55:52); the accessed bit is
     * required for usable segments at VM entry (26.3.1.2) and the CPU sets it
     * on every load anyway. */
    s.ar = (uint32_t)((d >> 40) & 0xf0ff) | 1;
    return s;
}

struct fw_snapshot {
    uint64_t rflags, cr0, cr3, cr4, dr7, efer, pat, debugctl;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip, fs_base, gs_base;
    struct dtr gdtr, idtr;
    uint16_t cs, ss, ds, es, fs, gs, ldtr;
};

static void snapshot(struct fw_snapshot *s)
{
    s->cr0 = read_cr0();
    s->cr3 = read_cr3();
    s->cr4 = read_cr4();
    s->dr7 = read_dr7();
    s->efer = rdmsr(MSR_IA32_EFER);
    s->pat = rdmsr(MSR_IA32_PAT);
    s->debugctl = rdmsr(MSR_IA32_DEBUGCTL);
    s->sysenter_cs = rdmsr(MSR_IA32_SYSENTER_CS);
    s->sysenter_esp = rdmsr(MSR_IA32_SYSENTER_ESP);
    s->sysenter_eip = rdmsr(MSR_IA32_SYSENTER_EIP);
    s->fs_base = rdmsr(MSR_IA32_FS_BASE);
    s->gs_base = rdmsr(MSR_IA32_GS_BASE);
    sgdt(&s->gdtr);
    sidt(&s->idtr);
    s->cs = read_cs();
    s->ss = read_ss();
    s->ds = read_ds();
    s->es = read_es();
    s->fs = read_fs();
    s->gs = read_gs();
    __asm__ volatile("sldt %0" : "=r"(s->ldtr));
}

static bool vmcs_ok;
static uint32_t vmcs_bad_field;

static void W(uint32_t field, uint64_t value)
{
    if (!vmwrite(field, value) && vmcs_ok) {
        vmcs_ok = false;
        vmcs_bad_field = field;
    }
}

static void write_seg(uint32_t sel_f, uint32_t base_f, uint32_t limit_f, uint32_t ar_f,
                      struct seg s)
{
    W(sel_f, s.sel);
    W(base_f, s.base);
    W(limit_f, s.limit);
    W(ar_f, s.ar);
}

#define SEG(n, s)                                                                                  \
    write_seg(VMCS_GUEST_##n##_SEL, VMCS_GUEST_##n##_BASE, VMCS_GUEST_##n##_LIMIT,                 \
              VMCS_GUEST_##n##_AR, s)

/* Control fields, host state (SDM Vol. 3C 25.5 Host-State Area, checked
 * by 27.2.2-27.2.4): this CPU's own tables. */
static void write_controls_and_host(struct vcpu *v)
{
    const struct vmx_controls *c = &g_vmx.ctl;
    v->proc_ctls = c->v[VMX_CTL_PROC];
    /* The first instruction tells whether MTF exits are delivered (step.c). */
    if (vmx_mtf_offered()) {
        v->proc_ctls |= PROC_MTF;
        v->mtf = VMX_MTF_PROBING;
    }
    W(VMCS_PIN_CTLS, c->v[VMX_CTL_PIN]);
    W(VMCS_PROC_CTLS, v->proc_ctls);
    if (v->proc_ctls & PROC_SECONDARY_CTLS)
        W(VMCS_PROC2_CTLS, c->v[VMX_CTL_PROC2]);
    /* Fields the enabled controls consult, which VMCLEAR does not initialise (SDM Vol. 3C 25.11.3
     * Initializing a VMCS): XSAVES/XRSTORS exit on none of IA32_XSS's bits (25.6.19). */
    if ((v->proc_ctls & PROC_SECONDARY_CTLS) && (c->v[VMX_CTL_PROC2] & PROC2_XSAVES))
        W(VMCS_XSS_EXIT_BITMAP, 0);
    W(VMCS_EXIT_CTLS, c->v[VMX_CTL_EXIT]);
    W(VMCS_EXCEPTION_BITMAP, v->exc_bitmap);
    W(VMCS_PF_ERRCODE_MASK, 0);
    W(VMCS_PF_ERRCODE_MATCH, 0);
    W(VMCS_CR3_TARGET_COUNT, 0);
    W(VMCS_EXIT_MSR_STORE_COUNT, 0);
    W(VMCS_EXIT_MSR_LOAD_COUNT, 0);
    W(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
    W(VMCS_ENTRY_INTR_INFO, 0);
    W(VMCS_IO_BITMAP_A, (uint64_t)(uintptr_t)g_vmx.io_bitmap_a);
    W(VMCS_IO_BITMAP_B, (uint64_t)(uintptr_t)g_vmx.io_bitmap_b);
    W(VMCS_MSR_BITMAP, (uint64_t)(uintptr_t)v->msr_bitmap);
    W(VMCS_TSC_OFFSET, 0); /* moved only by the guest's TSC/TSC_ADJUST writes (exit_msr.c) */
    v->host_spec_ctrl = 0;
    if (safe_rdmsr(MSR_IA32_SPEC_CTRL, &v->host_spec_ctrl))
        v->host_spec_ctrl = 0;
    v->guest_spec_ctrl = v->host_spec_ctrl;
    W(VMCS_EPTP, g_vmx.eptp);
    W(VMCS_VPID,
      v->index + 1); /* 0 is the host's VPID (SDM Vol. 3C 27.2.1.1 VM-Execution Control Fields) */
    W(VMCS_PREEMPT_TIMER_VALUE, v->preempt_ticks);
    W(VMCS_LINK_POINTER, ~0ull);

    struct cpu *cpu = v->cpu;
    struct dtr idtr;
    sidt(&idtr);
    W(VMCS_HOST_CR0, read_cr0());
    W(VMCS_HOST_CR3, read_cr3());
    W(VMCS_HOST_CR4, read_cr4());
    W(VMCS_HOST_CS_SEL, GDT_CODE64);
    W(VMCS_HOST_SS_SEL, GDT_DATA);
    W(VMCS_HOST_DS_SEL, GDT_DATA);
    W(VMCS_HOST_ES_SEL, GDT_DATA);
    W(VMCS_HOST_FS_SEL, 0);
    W(VMCS_HOST_GS_SEL, 0);
    W(VMCS_HOST_TR_SEL, GDT_TSS);
    W(VMCS_HOST_FS_BASE, 0);
    W(VMCS_HOST_GS_BASE, (uint64_t)(uintptr_t)cpu);
    W(VMCS_HOST_TR_BASE, (uint64_t)(uintptr_t)&cpu->tss);
    W(VMCS_HOST_GDTR_BASE, cpu->gdtr.base);
    W(VMCS_HOST_IDTR_BASE, idtr.base);
    W(VMCS_HOST_SYSENTER_CS, 0);
    W(VMCS_HOST_SYSENTER_ESP, 0);
    W(VMCS_HOST_SYSENTER_EIP, 0);
    if (c->v[VMX_CTL_EXIT] & EXIT_LOAD_PAT)
        W(VMCS_HOST_PAT, rdmsr(MSR_IA32_PAT));
    if (c->v[VMX_CTL_EXIT] & EXIT_LOAD_EFER)
        W(VMCS_HOST_EFER, rdmsr(MSR_IA32_EFER));
    extern char vmx_exit_stub[];
    W(VMCS_HOST_RSP, (uint64_t)(uintptr_t)v->host_stack_top);
    W(VMCS_HOST_RIP, (uint64_t)(uintptr_t)vmx_exit_stub);
}

/* CR0/CR4 bits the guest may not own: the VMX fixed bits (SDM Vol. 3D A.7 VMX-Fixed Bits in CR0,
 * A.8 VMX-Fixed Bits in CR4), CR4.VMXE among them.  Guest writes to them exit (exit_cr.c); reads
 * see the shadow. */
void vmx_cr_masks(struct vcpu *v)
{
    const struct vmx_cpu_facts *f = &g_vmx.facts;
    v->cr0_mask = (f->cr0_fixed0 | ~f->cr0_fixed1) & 0xffffffffull & ~(CR0_PE | CR0_PG);
    v->cr4_mask = (f->cr4_fixed0 | ~f->cr4_fixed1) & 0xffffffffull;
    W(VMCS_CR0_GUEST_HOST_MASK, v->cr0_mask);
    W(VMCS_CR4_GUEST_HOST_MASK, v->cr4_mask);
}

uint64_t vmx_guest_cr0(uint64_t val)
{
    const struct vmx_cpu_facts *f = &g_vmx.facts;
    /* Unrestricted guest exempts PE and PG from IA32_VMX_CR0_FIXED0 (SDM Vol. 3C 27.3.1.1 Checks on
     * Guest Control Registers, Debug Registers, and MSRs). */
    return (val | (f->cr0_fixed0 & ~(CR0_PE | CR0_PG))) & f->cr0_fixed1;
}

uint64_t vmx_guest_cr4(uint64_t val)
{
    const struct vmx_cpu_facts *f = &g_vmx.facts;
    return (val | f->cr4_fixed0) & f->cr4_fixed1;
}

/* Guest state = the firmware's state at core_launch (SDM Vol. 3C 25.4 Guest-State Area, checked
 * by 27.3.1 Checks on the Guest State Area). */
static void write_guest(struct vcpu *v, const struct fw_snapshot *s, uint64_t entry_rsp)
{
    const struct vmx_controls *c = &g_vmx.ctl;
    vmx_cr_masks(v);
    W(VMCS_CR0_READ_SHADOW, s->cr0);
    W(VMCS_CR4_READ_SHADOW, s->cr4);
    W(VMCS_GUEST_CR0, vmx_guest_cr0(s->cr0));
    W(VMCS_GUEST_CR3, s->cr3);
    W(VMCS_GUEST_CR4, vmx_guest_cr4(s->cr4));
    W(VMCS_GUEST_DR7, s->dr7);

    SEG(CS, seg_from_gdt(&s->gdtr, s->cs));
    SEG(SS, seg_from_gdt(&s->gdtr, s->ss));
    SEG(DS, seg_from_gdt(&s->gdtr, s->ds));
    SEG(ES, seg_from_gdt(&s->gdtr, s->es));
    struct seg fs = seg_from_gdt(&s->gdtr, s->fs), gs = seg_from_gdt(&s->gdtr, s->gs);
    fs.base = s->fs_base; /* 64-bit bases live in the MSRs */
    gs.base = s->gs_base;
    SEG(FS, fs);
    SEG(GS, gs);
    /* The firmware has no LDT and may have no TSS, but VM entry needs a usable TR
     * (26.3.1.2: present, busy TSS type, limit consistent with G): give it an
     * architecturally valid busy 64-bit TSS at 0 that nothing will ever use
     * (no ring changes, no IST gates in the firmware), as after a reset. */
    struct seg tr = {0, 0x67, 0x8b, 0};
    if (!(s->efer & EFER_LMA))
        tr.ar = 0x8b; /* type 11 is valid outside IA-32e mode too */
    SEG(TR, tr);
    struct seg ldtr = {0, 0, VMX_AR_UNUSABLE, 0};
    SEG(LDTR, ldtr);
    W(VMCS_GUEST_GDTR_BASE, s->gdtr.base);
    W(VMCS_GUEST_GDTR_LIMIT, s->gdtr.limit);
    W(VMCS_GUEST_IDTR_BASE, s->idtr.base);
    W(VMCS_GUEST_IDTR_LIMIT, s->idtr.limit);

    /* Continue at core_launch's return address with its stack popped. */
    W(VMCS_GUEST_RSP, entry_rsp + 8);
    W(VMCS_GUEST_RIP, *(uint64_t *)(uintptr_t)entry_rsp);
    v->mtf_probe_rip = *(uint64_t *)(uintptr_t)entry_rsp;
    W(VMCS_GUEST_RFLAGS, s->rflags);
    W(VMCS_GUEST_SYSENTER_CS, s->sysenter_cs);
    W(VMCS_GUEST_SYSENTER_ESP, s->sysenter_esp);
    W(VMCS_GUEST_SYSENTER_EIP, s->sysenter_eip);
    W(VMCS_GUEST_DEBUGCTL, s->debugctl);
    if (c->v[VMX_CTL_ENTRY] & ENTRY_LOAD_PAT)
        W(VMCS_GUEST_PAT, s->pat);
    if (c->v[VMX_CTL_ENTRY] & ENTRY_LOAD_EFER)
        W(VMCS_GUEST_EFER, s->efer);
    W(VMCS_GUEST_INTERRUPTIBILITY, 0);
    W(VMCS_GUEST_ACTIVITY_STATE, VMX_ACTIVITY_ACTIVE);
    W(VMCS_GUEST_PENDING_DBG, 0);

    /* "IA-32e mode guest" follows the firmware's EFER.LMA (26.3.1.1). */
    uint32_t entry = c->v[VMX_CTL_ENTRY] & ~ENTRY_IA32E_GUEST;
    if (s->efer & EFER_LMA)
        entry |= ENTRY_IA32E_GUEST;
    W(VMCS_ENTRY_CTLS, entry);
}

/* Whether a CPU other than the caller already runs as a guest (the caller is not counted). */
static bool others_launched(void)
{
    return __atomic_load_n(&g_vmx.launched, __ATOMIC_SEQ_CST) > 0;
}

/*
 * Fail closed (docs/security.md): a CPU whose launch failed while others
 * already run as guests must not run the guest outside VMX, so it stays
 * here for good and is lost to the guest.  It runs on the core's own tables
 * (an NMI comes to vmx_root_nmi, which returns for a vCPU that is
 * VCPU_OFF), with interrupts off; after VMXON it stays in root mode, where
 * INIT is blocked (SDM Vol. 3C 24.8 Restrictions on VMX Operation), and
 * the guest's INIT and SIPI to it are dropped in any case (apic.c sends
 * none to a VCPU_OFF target), so nothing wakes it into guest code.  The
 * loader sees BI_CPU_PARKED and goes on with the next CPU.
 */
static __attribute__((noreturn)) void park(struct vcpu *v, const char *step)
{
    log_error("CPU %u (APIC %u): %s failed while other CPUs run as guests: parked for good, "
              "lost to the guest",
              v->index, v->apic_id, step);
    __atomic_or_fetch(&g_bi->cpus[v->index].flags, BI_CPU_PARKED, __ATOMIC_SEQ_CST);
    for (;;)
        __asm__ volatile("cli; hlt" ::: "memory");
}

uint64_t vmx_cpu_prepare(struct boot_info *bi, uint64_t entry_rsp)
{
    (void)bi;
    unsigned idx = cpu_current_index();
    struct vcpu *v = g_vmx.vcpus[idx];
    if (!v || v->state != VCPU_OFF)
        return CORE_ERR_VMX;

    struct fw_snapshot s;
    s.rflags = read_rflags();
    fw_state_save(&v->fw); /* also disables interrupts */
    snapshot(&s);
    v->fw_cr0 = s.cr0;
    v->fw_cr4 = s.cr4;

    /* Host state: this CPU's own GDT/TSS/IDT and the core's page tables. */
    cpu_load_tables(v->cpu);
    write_cr3(g_vmx.host_cr3);

    /* SDM Vol. 3C 24.7 Enabling and Entering VMX Operation: VMXON needs IA32_FEATURE_CONTROL locked
     * with VMX outside SMX; if the firmware left it unlocked we set and lock it, as firmware would.
     */
    uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
    uint64_t fix = vmx_caps_feature_control_fixup(fc);
    if (fix)
        wrmsr(MSR_IA32_FEATURE_CONTROL, fix);
    /* SDM Vol. 3C 24.8 Restrictions on VMX Operation: CR0 and CR4 must satisfy the VMX fixed bits
     * (CR4.VMXE among them). */
    const struct vmx_cpu_facts *f = &g_vmx.facts;
    write_cr0((read_cr0() | f->cr0_fixed0) & f->cr0_fixed1);
    write_cr4((read_cr4() | f->cr4_fixed0) & f->cr4_fixed1);

    const char *step = NULL;
    /* SDM Vol. 3C 25.11.5 VMXON Region (revision identifier, 4 KiB aligned). */
    if (!vmxon((uint64_t)(uintptr_t)v->vmxon_region))
        step = "VMXON";
    /* SDM Vol. 3C 25.11.3 Initializing a VMCS: VMCLEAR initialises the VMCS launch state, VMPTRLD
     * makes it current. */
    else if (!vmclear((uint64_t)(uintptr_t)v->vmcs))
        step = "VMCLEAR";
    else if (!vmptrld((uint64_t)(uintptr_t)v->vmcs))
        step = "VMPTRLD";
    if (step) {
        log_error("%s failed (IA32_FEATURE_CONTROL 0x%llx, CR4 0x%llx)", step,
                  (unsigned long long)rdmsr(MSR_IA32_FEATURE_CONTROL),
                  (unsigned long long)read_cr4());
        if (others_launched())
            park(v, step);
        if (strcmp(step, "VMXON") != 0)
            vmxoff();
        write_cr4(v->fw_cr4);
        write_cr0(v->fw_cr0);
        fw_state_restore(&v->fw);
        return CORE_ERR_VMX;
    }
    vmcs_ok = true;
    write_controls_and_host(v);
    write_guest(v, &s, entry_rsp);
    if (!vmcs_ok) {
        log_error("VMWRITE of field 0x%x failed: VM-instruction error %llu", vmcs_bad_field,
                  (unsigned long long)vmread(VMCS_INSTR_ERROR));
        return vmx_launch_failed();
    }
    v->state = VCPU_RUNNING;
    v->in_guest = 1;
    __atomic_add_fetch(&g_vmx.launched, 1, __ATOMIC_SEQ_CST);
    return 0;
}

const char *vmx_cpu_reenter(struct vcpu *v)
{
    /* As at the first launch (SDM Vol. 3C 24.7 Enabling and Entering VMX Operation; 24.8
     * Restrictions on VMX Operation): the firmware's wake path may leave IA32_FEATURE_CONTROL
     * unlocked and CR4.VMXE clear. */
    uint64_t fix = vmx_caps_feature_control_fixup(rdmsr(MSR_IA32_FEATURE_CONTROL));
    if (fix)
        wrmsr(MSR_IA32_FEATURE_CONTROL, fix);
    const struct vmx_cpu_facts *f = &g_vmx.facts;
    write_cr0((read_cr0() | f->cr0_fixed0) & f->cr0_fixed1);
    write_cr4((read_cr4() | f->cr4_fixed0) & f->cr4_fixed1);
    /* The VMCS in memory is not what the CPU held before the power went (it
     * caches VMCS data, SDM Vol. 3C 25.11.1 Software Use of Virtual-Machine Control
     * Structures): VMCLEAR starts it afresh and every field is written again. */
    if (!vmxon((uint64_t)(uintptr_t)v->vmxon_region))
        return "VMXON";
    if (!vmclear((uint64_t)(uintptr_t)v->vmcs))
        return "VMCLEAR";
    if (!vmptrld((uint64_t)(uintptr_t)v->vmcs))
        return "VMPTRLD";
    uint8_t mtf = v->mtf; /* the probe's verdict stands: the same CPU */
    vmcs_ok = true;
    write_controls_and_host(v);
    vmx_cr_masks(v);
    if (mtf != VMX_MTF_PROBING) {
        v->mtf = mtf;
        v->proc_ctls &= ~PROC_MTF;
        W(VMCS_PROC_CTLS, v->proc_ctls);
    }
    const struct vmx_controls *c = &g_vmx.ctl;
    W(VMCS_ENTRY_CTLS, c->v[VMX_CTL_ENTRY] & ~ENTRY_IA32E_GUEST);
    /* The guest state vcpu_start_real leaves alone, as after a reset (Table 10-1). */
    W(VMCS_GUEST_DEBUGCTL, 0);
    W(VMCS_GUEST_SYSENTER_CS, 0);
    W(VMCS_GUEST_SYSENTER_ESP, 0);
    W(VMCS_GUEST_SYSENTER_EIP, 0);
    if (c->v[VMX_CTL_ENTRY] & ENTRY_LOAD_PAT)
        W(VMCS_GUEST_PAT, 0x0007040600070406ull);
    return vmcs_ok ? NULL : "VMWRITE";
}

uint64_t vmx_launch_failed(void)
{
    struct vcpu *v = this_vcpu();
    log_error("VMLAUNCH failed: VM-instruction error %llu",
              (unsigned long long)vmread(VMCS_INSTR_ERROR));
    vmcs_dump(v);
    if (v->state == VCPU_RUNNING) {
        v->state = VCPU_OFF;
        v->in_guest = 0;
        __atomic_sub_fetch(&g_vmx.launched, 1, __ATOMIC_SEQ_CST);
    }
    if (others_launched())
        park(v, "VMLAUNCH");
    vmclear((uint64_t)(uintptr_t)v->vmcs);
    vmxoff();
    write_cr4(v->fw_cr4);
    write_cr0(v->fw_cr0);
    fw_state_restore(&v->fw);
    return CORE_ERR_VMX;
}

struct vcpu *this_vcpu(void)
{
    return this_cpu()->vcpu;
}
