/*
 * kvmi_abi.h - the KVMI v6 wire ABI (Bitdefender RFC v6 + the KVM-VMI
 * kvmi-v6 additions that libkvmi relies on), as seen on the byte stream.
 *
 * Offers: every message/event ID, error code, action, flag and structure of
 * the protocol, plus the KVM register layouts it embeds and the handshake
 * structures; abi_layout.c checks at compile time every size and offset that
 * the reference (shared/spec/kvmi-v6.md §4.4) lists.  Written for this project
 * from that reference; it deliberately does not include any Linux header so
 * that the same file builds for the VMX core (newlib), for the EFI loader and
 * for host tools.  All fields are little-endian (x86 native order).
 */
#ifndef HV_KVMI_ABI_H
#define HV_KVMI_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KVMI_VERSION 1

/* Largest hdr.size accepted: the KVM-VMI kvmi-v6 branch value (LKML v6 had
 * 4096 - 8).  Accepting the larger one serves both kinds of client. */
#define KVMI_MSG_SIZE (8192 - 8)

/* ---- message IDs --------------------------------------------------------- */
enum kvmi_msg_id {
    KVMI_EVENT_REPLY = 0,
    KVMI_EVENT = 1,
    KVMI_GET_VERSION = 2,
    KVMI_CHECK_COMMAND = 3,
    KVMI_CHECK_EVENT = 4,
    KVMI_GET_GUEST_INFO = 5,
    KVMI_GET_VCPU_INFO = 6,
    KVMI_PAUSE_VCPU = 7,
    KVMI_CONTROL_VM_EVENTS = 8,
    KVMI_CONTROL_EVENTS = 9,
    KVMI_CONTROL_CR = 10,
    KVMI_CONTROL_MSR = 11,
    KVMI_CONTROL_VE = 12, /* reserved, never implemented */
    KVMI_GET_REGISTERS = 13,
    KVMI_SET_REGISTERS = 14,
    KVMI_GET_CPUID = 15,
    KVMI_GET_XSAVE = 16,
    KVMI_READ_PHYSICAL = 17,
    KVMI_WRITE_PHYSICAL = 18,
    KVMI_INJECT_EXCEPTION = 19,
    KVMI_GET_PAGE_ACCESS = 20,
    KVMI_SET_PAGE_ACCESS = 21,
    KVMI_GET_MAP_TOKEN = 22,
    KVMI_GET_MTRR_TYPE = 23,
    KVMI_CONTROL_SPP = 24,
    KVMI_GET_PAGE_WRITE_BITMAP = 25,
    KVMI_SET_PAGE_WRITE_BITMAP = 26,
    KVMI_CONTROL_CMD_RESPONSE = 27,
    /* 28 unused */
    KVMI_GET_MAX_GFN = 29, /* KVM-VMI kvmi-v6 branch; libkvmi hookguest needs it */
    KVMI_NUM_MESSAGES = 30,
};

/* ---- event IDs ----------------------------------------------------------- */
enum kvmi_event_id {
    KVMI_EVENT_UNHOOK = 0,
    KVMI_EVENT_CR = 1,
    KVMI_EVENT_MSR = 2,
    KVMI_EVENT_XSETBV = 3,
    KVMI_EVENT_BREAKPOINT = 4,
    KVMI_EVENT_HYPERCALL = 5,
    KVMI_EVENT_PF = 6,
    KVMI_EVENT_TRAP = 7,
    KVMI_EVENT_DESCRIPTOR = 8,
    KVMI_EVENT_CREATE_VCPU = 9,
    KVMI_EVENT_PAUSE_VCPU = 10,
    KVMI_EVENT_SINGLESTEP = 11,
    KVMI_NUM_EVENTS = 12,
};

/* ---- event actions ------------------------------------------------------- */
enum kvmi_event_action {
    KVMI_EVENT_ACTION_CONTINUE = 0,
    KVMI_EVENT_ACTION_RETRY = 1,
    KVMI_EVENT_ACTION_CRASH = 2,
};

/* ---- error codes (the wire carries the negated value) -------------------- */
#define KVM_EPERM      1
#define KVM_ENOENT     2
#define KVM_E2BIG      7
#define KVM_EAGAIN     11
#define KVM_ENOMEM     12
#define KVM_EFAULT     14
#define KVM_EBUSY      16
#define KVM_EINVAL     22
#define KVM_EOPNOTSUPP 95
#define KVM_ENOSYS     1000

/* ---- other constants ------------------------------------------------------ */
#define KVMI_PAGE_ACCESS_R   1u
#define KVMI_PAGE_ACCESS_W   2u
#define KVMI_PAGE_ACCESS_X   4u
#define KVMI_PAGE_ACCESS_RWX (KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W | KVMI_PAGE_ACCESS_X)

#define KVMI_DESC_IDTR 1
#define KVMI_DESC_GDTR 2
#define KVMI_DESC_LDTR 3
#define KVMI_DESC_TR   4

#define KVM_HC_MEM_MAP                           32
#define KVM_HC_MEM_UNMAP                         33
#define KVM_HC_XEN_HVM_OP                        34
#define KVM_HC_XEN_HVM_OP_GUEST_REQUEST_VM_EVENT 24

/* KVMI_EVENT_TRAP.type: VMX interruption type (SDM Vol. 3C 25.8.3 VM-Entry Controls for Event
 * Injection) << 8. */
#define KVMI_TRAP_TYPE_EXT_INTR  0x000
#define KVMI_TRAP_TYPE_NMI       0x200
#define KVMI_TRAP_TYPE_HW_EXC    0x300
#define KVMI_TRAP_TYPE_SOFT_INTR 0x400
#define KVMI_TRAP_TYPE_SOFT_EXC  0x600

/* ---- KVM register layouts embedded in the protocol (Linux <asm/kvm.h>) --- */
struct kvm_regs {
    uint64_t rax, rbx, rcx, rdx;
    uint64_t rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11;
    uint64_t r12, r13, r14, r15;
    uint64_t rip, rflags;
};

struct kvm_segment {
    uint64_t base;
    uint32_t limit;
    uint16_t selector;
    uint8_t type;
    uint8_t present, dpl, db, s, l, g, avl;
    uint8_t unusable;
    uint8_t padding;
};

struct kvm_dtable {
    uint64_t base;
    uint16_t limit;
    uint16_t padding[3];
};

#define KVM_NR_INTERRUPTS 256
struct kvm_sregs {
    struct kvm_segment cs, ds, es, fs, gs, ss;
    struct kvm_segment tr, ldt;
    struct kvm_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    uint64_t apic_base;
    uint64_t interrupt_bitmap[(KVM_NR_INTERRUPTS + 63) / 64];
};

struct kvm_msr_entry {
    uint32_t index;
    uint32_t reserved;
    uint64_t data;
};

struct kvm_msrs {
    uint32_t nmsrs;
    uint32_t pad;
    struct kvm_msr_entry entries[];
};

struct kvm_xsave {
    uint32_t region[1024];
};

/* ---- message layer -------------------------------------------------------- */
struct kvmi_msg_hdr {
    uint16_t id;
    uint16_t size; /* bytes that follow this header */
    uint32_t seq;
};

struct kvmi_error_code {
    int32_t err;
    uint32_t padding;
};

struct kvmi_vcpu_hdr {
    uint16_t vcpu;
    uint16_t padding1;
    uint32_t padding2;
};

/* ---- commands ------------------------------------------------------------- */
struct kvmi_get_version_reply {
    uint32_t version;
    uint32_t padding;
};

struct kvmi_control_cmd_response {
    uint8_t enable;
    uint8_t now;
    uint16_t padding1;
    uint32_t padding2;
};

struct kvmi_check_command {
    uint16_t id;
    uint16_t padding1;
    uint32_t padding2;
};

struct kvmi_check_event {
    uint16_t id;
    uint16_t padding1;
    uint32_t padding2;
};

struct kvmi_get_guest_info_reply {
    uint32_t vcpu_count;
    uint32_t padding[3];
};

struct kvmi_get_vcpu_info_reply {
    uint64_t tsc_speed;
};

struct kvmi_pause_vcpu {
    uint8_t wait;
    uint8_t padding1;
    uint16_t padding2;
    uint32_t padding3;
};

struct kvmi_control_events {
    uint16_t event_id;
    uint8_t enable;
    uint8_t padding1;
    uint32_t padding2;
};

struct kvmi_control_vm_events {
    uint16_t event_id;
    uint8_t enable;
    uint8_t padding1;
    uint32_t padding2;
};

struct kvmi_control_cr {
    uint8_t enable;
    uint8_t padding1;
    uint16_t padding2;
    uint32_t cr;
};

struct kvmi_control_msr {
    uint8_t enable;
    uint8_t padding1;
    uint16_t padding2;
    uint32_t msr;
};

struct kvmi_get_registers {
    uint16_t nmsrs;
    uint16_t padding1;
    uint32_t padding2;
    uint32_t msrs_idx[];
};

struct kvmi_get_registers_reply {
    uint32_t mode;
    uint32_t padding;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_msrs msrs; /* followed by msrs.nmsrs kvm_msr_entry */
};

struct kvmi_get_cpuid {
    uint32_t function;
    uint32_t index;
};

struct kvmi_get_cpuid_reply {
    uint32_t eax;
    uint32_t ebx;
    uint32_t ecx;
    uint32_t edx;
};

struct kvmi_get_mtrr_type {
    uint64_t gpa;
};

struct kvmi_get_mtrr_type_reply {
    uint8_t type;
    uint8_t padding[7];
};

struct kvmi_read_physical {
    uint64_t gpa;
    uint64_t size;
};

struct kvmi_write_physical {
    uint64_t gpa;
    uint64_t size;
    uint8_t data[];
};

struct kvmi_inject_exception {
    uint8_t nr;
    uint8_t has_error;
    uint16_t padding;
    uint32_t error_code;
    uint64_t address;
};

struct kvmi_get_page_access {
    uint16_t view;
    uint16_t count;
    uint32_t padding;
    uint64_t gpa[];
};

struct kvmi_page_access_entry {
    uint64_t gpa;
    uint8_t access;
    uint8_t padding1;
    uint16_t padding2;
    uint32_t padding3;
};

struct kvmi_set_page_access {
    uint16_t view;
    uint16_t count;
    uint32_t padding;
    struct kvmi_page_access_entry entries[];
};

struct kvmi_control_spp {
    uint8_t enable;
    uint8_t padding1;
    uint16_t padding2;
    uint32_t padding3;
};

struct kvmi_get_page_write_bitmap {
    uint16_t view;
    uint16_t count;
    uint32_t padding;
    uint64_t gpa[];
};

struct kvmi_page_write_bitmap_entry {
    uint64_t gpa;
    uint32_t bitmap;
    uint32_t padding;
};

struct kvmi_set_page_write_bitmap {
    uint16_t view;
    uint16_t count;
    uint32_t padding;
    struct kvmi_page_write_bitmap_entry entries[];
};

struct kvmi_map_mem_token {
    uint64_t token[4];
};

struct kvmi_get_map_token_reply {
    struct kvmi_map_mem_token token;
};

struct kvmi_get_max_gfn_reply {
    uint64_t gfn;
};

/* ---- events --------------------------------------------------------------- */
struct kvmi_event_arch {
    uint8_t mode; /* 2, 4 or 8: 16/32/64-bit code */
    uint8_t padding[7];
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct {
        uint64_t sysenter_cs;
        uint64_t sysenter_esp;
        uint64_t sysenter_eip;
        uint64_t efer;
        uint64_t star;
        uint64_t lstar;
        uint64_t cstar;
        uint64_t pat;
        uint64_t shadow_gs; /* MSR_KERNEL_GS_BASE */
    } msrs;
};

struct kvmi_event {
    uint16_t size; /* sizeof(struct kvmi_event); the payload starts here */
    uint16_t vcpu;
    uint8_t event;
    uint8_t padding[3];
    struct kvmi_event_arch arch;
};

struct kvmi_event_reply {
    uint8_t action;
    uint8_t event;
    uint16_t padding1;
    uint32_t padding2;
};

struct kvmi_event_cr {
    uint16_t cr;
    uint16_t padding[3];
    uint64_t old_value;
    uint64_t new_value;
};

struct kvmi_event_cr_reply {
    uint64_t new_val;
};

struct kvmi_event_msr {
    uint32_t msr;
    uint32_t padding;
    uint64_t old_value;
    uint64_t new_value;
};

struct kvmi_event_msr_reply {
    uint64_t new_val;
};

struct kvmi_event_breakpoint {
    uint64_t gpa;
    uint8_t insn_len;
    uint8_t padding[7];
};

struct kvmi_event_pf {
    uint64_t gva;
    uint64_t gpa;
    uint8_t access;
    uint8_t padding1;
    uint16_t view;
    uint32_t padding2;
};

#define KVMI_PF_CTX_DATA_MAX 256
struct kvmi_event_pf_reply {
    uint64_t ctx_addr;
    uint32_t ctx_size;
    uint8_t singlestep;
    uint8_t rep_complete;
    uint16_t padding;
    uint8_t ctx_data[KVMI_PF_CTX_DATA_MAX];
};

struct kvmi_event_trap {
    uint32_t vector;
    uint32_t type;
    uint32_t error_code;
    uint32_t padding;
    uint64_t cr2;
};

struct kvmi_event_descriptor {
    uint8_t descriptor;
    uint8_t write;
    uint8_t padding[6];
};

/* ---- handshake (precedes the KVMI stream; not part of the kernel ABI) ---- */
#define KVMI_HS_NAME_SIZE 64
struct kvmi_qemu2introspector {
    uint32_t struct_size;
    uint8_t uuid[16];
    uint32_t padding;
    int64_t start_time;
    char name[KVMI_HS_NAME_SIZE];
};

#define KVMI_COOKIE_HASH_SIZE 20
struct kvmi_introspector2qemu {
    uint32_t struct_size;
    uint8_t cookie_hash[KVMI_COOKIE_HASH_SIZE];
};

#endif
