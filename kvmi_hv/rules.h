/*
 * kvmi_rules.h - the pure rules of the bare-metal KVMI arch (vmx/kvmi_rules.c,
 * host-tested in test/unit/test_kvmi_rules.c): no VMCS, no CPU access.
 *
 * Offers: VMCS segment access rights in KVM's kvm_segment layout, the MSR
 * bitmap's write bit of an MSR, which exceptions deliver an error code, the
 * access a KVMI_EVENT_PF reports for an EPT violation, the descriptor and
 * direction of a descriptor-table exit, and the table of the introspector's
 * page rights (what the PF decision compares with, since EPT cannot hold
 * write-without-read).
 */
#ifndef HV_KVMI_RULES_H
#define HV_KVMI_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmi/kvmi_abi.h"

/* VMCS access-rights word (SDM Vol. 3C 25.4.1 Guest Register State, Table 25-2) -> KVM's fields. */
void kvmi_seg_from_vmcs(struct kvm_segment *s, uint16_t selector, uint64_t base, uint32_t limit,
                        uint32_t ar);

/* Byte offset and bit of the WRMSR-exiting bit of msr in a 4 KiB MSR bitmap
 * (SDM Vol. 3C 25.6.9 MSR-Bitmap Address: write-low at 2048, write-high at 3072); -1 for MSRs
 * outside the bitmap's two ranges. */
int kvmi_msr_write_bit(uint32_t msr, unsigned *byte, uint8_t *bit);

/* Whether injecting hardware exception `vector` must deliver an error code:
 * only in protected mode, and only for 8, 10-14, 17, 21 (SDM Vol. 3C 27.2.1.3 VM-Entry Control
 * Fields). */
bool kvmi_exc_has_errcode(unsigned vector, bool protected_mode);

/* The single right an EPT violation attempted (qualification bits 0-2,
 * SDM Vol. 3C 28.2.1 Basic VM-Exit Information, Table 28-7): W for writes, X for fetches, else R.
 */
uint8_t kvmi_pf_access(uint64_t qualification);

/* Descriptor-table exit (reason 46 GDTR/IDTR or 47 LDTR/TR) and its
 * instruction-information field (bits 29:28, SDM Vol. 3C 28.2.5 Information for VM Exits Due to
 * Instruction Execution, Tables 28-10/11): KVMI_DESC_* and whether it loads (LGDT/LIDT/LLDT/LTR).
 */
void kvmi_desc_of_exit(unsigned reason, uint32_t instr_info, uint8_t *descriptor, bool *write);

/* The introspector's rights per page: open addressing over caller storage,
 * at most half full; an entry, once created, stays (rights 7 = untracked). */
struct kvmi_rights_entry {
    uint64_t gfn_plus1; /* 0 = empty */
    uint8_t access;
};
struct kvmi_rights {
    struct kvmi_rights_entry *e;
    uint32_t cap, used;
};
void kvmi_rights_init(struct kvmi_rights *t, struct kvmi_rights_entry *storage, uint32_t cap);
/* The entry of gfn, created (rights 7) when `create` and there is room;
 * NULL when absent (not creating) or full. */
struct kvmi_rights_entry *kvmi_rights_slot(struct kvmi_rights *t, uint64_t gfn, bool create);
/* The rights of gfn (7 when never restricted). */
uint8_t kvmi_rights_get(struct kvmi_rights *t, uint64_t gfn);

#endif
