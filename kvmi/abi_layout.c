/*
 * abi_layout.c - compile-time checks that kvmi_abi.h lays every structure
 * out as the wire does (spec §4.4): sizes and offsets of the message
 * headers, commands, events, KVM register layouts and the handshake.  No
 * code; every build that links the engine compiles it.
 */
#include <stddef.h>

#include "kvmi_abi.h"

#define KVMI_ABI_SIZE(t, n)   _Static_assert(sizeof(t) == (n), "size of " #t)
#define KVMI_ABI_OFF(t, f, n) _Static_assert(offsetof(t, f) == (n), "offset of " #t "." #f)

KVMI_ABI_SIZE(struct kvmi_msg_hdr, 8);
KVMI_ABI_OFF(struct kvmi_msg_hdr, id, 0);
KVMI_ABI_OFF(struct kvmi_msg_hdr, size, 2);
KVMI_ABI_OFF(struct kvmi_msg_hdr, seq, 4);
KVMI_ABI_SIZE(struct kvmi_error_code, 8);
KVMI_ABI_SIZE(struct kvmi_vcpu_hdr, 8);
KVMI_ABI_OFF(struct kvmi_vcpu_hdr, padding1, 2);
KVMI_ABI_OFF(struct kvmi_vcpu_hdr, padding2, 4);

KVMI_ABI_SIZE(struct kvm_regs, 144);
KVMI_ABI_OFF(struct kvm_regs, rax, 0);
KVMI_ABI_OFF(struct kvm_regs, rbx, 8);
KVMI_ABI_OFF(struct kvm_regs, rcx, 16);
KVMI_ABI_OFF(struct kvm_regs, rdx, 24);
KVMI_ABI_OFF(struct kvm_regs, rsi, 32);
KVMI_ABI_OFF(struct kvm_regs, rdi, 40);
KVMI_ABI_OFF(struct kvm_regs, rsp, 48);
KVMI_ABI_OFF(struct kvm_regs, rbp, 56);
KVMI_ABI_OFF(struct kvm_regs, r8, 64);
KVMI_ABI_OFF(struct kvm_regs, r15, 120);
KVMI_ABI_OFF(struct kvm_regs, rip, 128);
KVMI_ABI_OFF(struct kvm_regs, rflags, 136);

KVMI_ABI_SIZE(struct kvm_segment, 24);
KVMI_ABI_OFF(struct kvm_segment, base, 0);
KVMI_ABI_OFF(struct kvm_segment, limit, 8);
KVMI_ABI_OFF(struct kvm_segment, selector, 12);
KVMI_ABI_OFF(struct kvm_segment, type, 14);
KVMI_ABI_OFF(struct kvm_segment, present, 15);
KVMI_ABI_OFF(struct kvm_segment, dpl, 16);
KVMI_ABI_OFF(struct kvm_segment, db, 17);
KVMI_ABI_OFF(struct kvm_segment, s, 18);
KVMI_ABI_OFF(struct kvm_segment, l, 19);
KVMI_ABI_OFF(struct kvm_segment, g, 20);
KVMI_ABI_OFF(struct kvm_segment, avl, 21);
KVMI_ABI_OFF(struct kvm_segment, unusable, 22);
KVMI_ABI_OFF(struct kvm_segment, padding, 23);

KVMI_ABI_SIZE(struct kvm_dtable, 16);
KVMI_ABI_OFF(struct kvm_dtable, base, 0);
KVMI_ABI_OFF(struct kvm_dtable, limit, 8);
KVMI_ABI_OFF(struct kvm_dtable, padding, 10);

KVMI_ABI_SIZE(struct kvm_sregs, 312);
KVMI_ABI_OFF(struct kvm_sregs, cs, 0);
KVMI_ABI_OFF(struct kvm_sregs, ds, 24);
KVMI_ABI_OFF(struct kvm_sregs, es, 48);
KVMI_ABI_OFF(struct kvm_sregs, fs, 72);
KVMI_ABI_OFF(struct kvm_sregs, gs, 96);
KVMI_ABI_OFF(struct kvm_sregs, ss, 120);
KVMI_ABI_OFF(struct kvm_sregs, tr, 144);
KVMI_ABI_OFF(struct kvm_sregs, ldt, 168);
KVMI_ABI_OFF(struct kvm_sregs, gdt, 192);
KVMI_ABI_OFF(struct kvm_sregs, idt, 208);
KVMI_ABI_OFF(struct kvm_sregs, cr0, 224);
KVMI_ABI_OFF(struct kvm_sregs, cr2, 232);
KVMI_ABI_OFF(struct kvm_sregs, cr3, 240);
KVMI_ABI_OFF(struct kvm_sregs, cr4, 248);
KVMI_ABI_OFF(struct kvm_sregs, cr8, 256);
KVMI_ABI_OFF(struct kvm_sregs, efer, 264);
KVMI_ABI_OFF(struct kvm_sregs, apic_base, 272);
KVMI_ABI_OFF(struct kvm_sregs, interrupt_bitmap, 280);

KVMI_ABI_SIZE(struct kvm_msrs, 8);
KVMI_ABI_OFF(struct kvm_msrs, nmsrs, 0);
KVMI_ABI_OFF(struct kvm_msrs, pad, 4);
KVMI_ABI_OFF(struct kvm_msrs, entries, 8);
KVMI_ABI_SIZE(struct kvm_msr_entry, 16);
KVMI_ABI_OFF(struct kvm_msr_entry, index, 0);
KVMI_ABI_OFF(struct kvm_msr_entry, reserved, 4);
KVMI_ABI_OFF(struct kvm_msr_entry, data, 8);
KVMI_ABI_SIZE(struct kvm_xsave, 4096);

KVMI_ABI_SIZE(struct kvmi_event, 544);
KVMI_ABI_OFF(struct kvmi_event, size, 0);
KVMI_ABI_OFF(struct kvmi_event, vcpu, 2);
KVMI_ABI_OFF(struct kvmi_event, event, 4);
KVMI_ABI_OFF(struct kvmi_event, padding, 5);
KVMI_ABI_OFF(struct kvmi_event, arch, 8);
KVMI_ABI_SIZE(struct kvmi_event_arch, 536);
KVMI_ABI_OFF(struct kvmi_event_arch, mode, 0);
KVMI_ABI_OFF(struct kvmi_event_arch, regs, 8);
KVMI_ABI_OFF(struct kvmi_event_arch, sregs, 152);
KVMI_ABI_OFF(struct kvmi_event_arch, msrs, 464);
KVMI_ABI_SIZE(struct kvmi_event_reply, 8);
KVMI_ABI_OFF(struct kvmi_event_reply, action, 0);
KVMI_ABI_OFF(struct kvmi_event_reply, event, 1);
KVMI_ABI_OFF(struct kvmi_event_reply, padding1, 2);
KVMI_ABI_OFF(struct kvmi_event_reply, padding2, 4);
KVMI_ABI_SIZE(struct kvmi_event_pf, 24);
KVMI_ABI_OFF(struct kvmi_event_pf, gva, 0);
KVMI_ABI_OFF(struct kvmi_event_pf, gpa, 8);
KVMI_ABI_OFF(struct kvmi_event_pf, access, 16);
KVMI_ABI_OFF(struct kvmi_event_pf, view, 18);
KVMI_ABI_OFF(struct kvmi_event_pf, padding2, 20);
KVMI_ABI_SIZE(struct kvmi_event_pf_reply, 272);
KVMI_ABI_OFF(struct kvmi_event_pf_reply, ctx_addr, 0);
KVMI_ABI_OFF(struct kvmi_event_pf_reply, ctx_size, 8);
KVMI_ABI_OFF(struct kvmi_event_pf_reply, singlestep, 12);
KVMI_ABI_OFF(struct kvmi_event_pf_reply, rep_complete, 13);
KVMI_ABI_OFF(struct kvmi_event_pf_reply, padding, 14);
KVMI_ABI_OFF(struct kvmi_event_pf_reply, ctx_data, 16);
KVMI_ABI_SIZE(struct kvmi_event_cr, 24);
KVMI_ABI_OFF(struct kvmi_event_cr, old_value, 8);
KVMI_ABI_OFF(struct kvmi_event_cr, new_value, 16);
KVMI_ABI_SIZE(struct kvmi_event_cr_reply, 8);
KVMI_ABI_SIZE(struct kvmi_event_msr, 24);
KVMI_ABI_OFF(struct kvmi_event_msr, old_value, 8);
KVMI_ABI_OFF(struct kvmi_event_msr, new_value, 16);
KVMI_ABI_SIZE(struct kvmi_event_msr_reply, 8);
KVMI_ABI_SIZE(struct kvmi_event_trap, 24);
KVMI_ABI_OFF(struct kvmi_event_trap, vector, 0);
KVMI_ABI_OFF(struct kvmi_event_trap, type, 4);
KVMI_ABI_OFF(struct kvmi_event_trap, error_code, 8);
KVMI_ABI_OFF(struct kvmi_event_trap, cr2, 16);
KVMI_ABI_SIZE(struct kvmi_event_breakpoint, 16);
KVMI_ABI_OFF(struct kvmi_event_breakpoint, insn_len, 8);
KVMI_ABI_SIZE(struct kvmi_event_descriptor, 8);
KVMI_ABI_OFF(struct kvmi_event_descriptor, write, 1);

KVMI_ABI_SIZE(struct kvmi_get_version_reply, 8);
KVMI_ABI_SIZE(struct kvmi_control_cmd_response, 8);
KVMI_ABI_OFF(struct kvmi_control_cmd_response, now, 1);
KVMI_ABI_OFF(struct kvmi_control_cmd_response, padding1, 2);
KVMI_ABI_OFF(struct kvmi_control_cmd_response, padding2, 4);
KVMI_ABI_SIZE(struct kvmi_check_command, 8);
KVMI_ABI_SIZE(struct kvmi_check_event, 8);
KVMI_ABI_SIZE(struct kvmi_get_guest_info_reply, 16);
KVMI_ABI_SIZE(struct kvmi_get_vcpu_info_reply, 8);
KVMI_ABI_SIZE(struct kvmi_pause_vcpu, 8);
KVMI_ABI_OFF(struct kvmi_pause_vcpu, padding1, 1);
KVMI_ABI_OFF(struct kvmi_pause_vcpu, padding2, 2);
KVMI_ABI_OFF(struct kvmi_pause_vcpu, padding3, 4);
KVMI_ABI_SIZE(struct kvmi_control_events, 8);
KVMI_ABI_OFF(struct kvmi_control_events, enable, 2);
KVMI_ABI_SIZE(struct kvmi_control_vm_events, 8);
KVMI_ABI_OFF(struct kvmi_control_vm_events, enable, 2);
KVMI_ABI_SIZE(struct kvmi_control_cr, 8);
KVMI_ABI_OFF(struct kvmi_control_cr, cr, 4);
KVMI_ABI_SIZE(struct kvmi_control_msr, 8);
KVMI_ABI_OFF(struct kvmi_control_msr, msr, 4);
KVMI_ABI_SIZE(struct kvmi_get_registers, 8);
KVMI_ABI_OFF(struct kvmi_get_registers, msrs_idx, 8);
KVMI_ABI_SIZE(struct kvmi_get_registers_reply, 472);
KVMI_ABI_OFF(struct kvmi_get_registers_reply, mode, 0);
KVMI_ABI_OFF(struct kvmi_get_registers_reply, regs, 8);
KVMI_ABI_OFF(struct kvmi_get_registers_reply, sregs, 152);
KVMI_ABI_OFF(struct kvmi_get_registers_reply, msrs, 464);
KVMI_ABI_SIZE(struct kvmi_get_cpuid, 8);
KVMI_ABI_SIZE(struct kvmi_get_cpuid_reply, 16);
KVMI_ABI_SIZE(struct kvmi_get_mtrr_type, 8);
KVMI_ABI_SIZE(struct kvmi_get_mtrr_type_reply, 8);
KVMI_ABI_SIZE(struct kvmi_read_physical, 16);
KVMI_ABI_SIZE(struct kvmi_write_physical, 16);
KVMI_ABI_OFF(struct kvmi_write_physical, data, 16);
KVMI_ABI_SIZE(struct kvmi_inject_exception, 16);
KVMI_ABI_OFF(struct kvmi_inject_exception, nr, 0);
KVMI_ABI_OFF(struct kvmi_inject_exception, has_error, 1);
KVMI_ABI_OFF(struct kvmi_inject_exception, error_code, 4);
KVMI_ABI_OFF(struct kvmi_inject_exception, address, 8);
KVMI_ABI_SIZE(struct kvmi_get_page_access, 8);
KVMI_ABI_OFF(struct kvmi_get_page_access, gpa, 8);
KVMI_ABI_SIZE(struct kvmi_set_page_access, 8);
KVMI_ABI_OFF(struct kvmi_set_page_access, entries, 8);
KVMI_ABI_SIZE(struct kvmi_page_access_entry, 16);
KVMI_ABI_OFF(struct kvmi_page_access_entry, access, 8);
KVMI_ABI_OFF(struct kvmi_page_access_entry, padding1, 9);
KVMI_ABI_OFF(struct kvmi_page_access_entry, padding2, 10);
KVMI_ABI_OFF(struct kvmi_page_access_entry, padding3, 12);
KVMI_ABI_SIZE(struct kvmi_page_write_bitmap_entry, 16);
KVMI_ABI_OFF(struct kvmi_page_write_bitmap_entry, bitmap, 8);
KVMI_ABI_SIZE(struct kvmi_get_page_write_bitmap, 8);
KVMI_ABI_SIZE(struct kvmi_set_page_write_bitmap, 8);
KVMI_ABI_SIZE(struct kvmi_control_spp, 8);
KVMI_ABI_SIZE(struct kvmi_map_mem_token, 32);
KVMI_ABI_SIZE(struct kvmi_get_map_token_reply, 32);
KVMI_ABI_SIZE(struct kvmi_get_max_gfn_reply, 8);

KVMI_ABI_SIZE(struct kvmi_qemu2introspector, 96);
KVMI_ABI_OFF(struct kvmi_qemu2introspector, uuid, 4);
KVMI_ABI_OFF(struct kvmi_qemu2introspector, padding, 20);
KVMI_ABI_OFF(struct kvmi_qemu2introspector, start_time, 24);
KVMI_ABI_OFF(struct kvmi_qemu2introspector, name, 32);
KVMI_ABI_SIZE(struct kvmi_introspector2qemu, 24);
KVMI_ABI_OFF(struct kvmi_introspector2qemu, cookie_hash, 4);
