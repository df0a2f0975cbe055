/*
 * kvmi.h - the KVMI v6 protocol engine (kvmi/), as seen by the transport and
 * by the exit handlers of the platform.
 *
 * Offers:
 *   - setup: kvmi_init() with caller-provided storage (the engine never
 *     allocates);
 *   - transport side (receive context): kvmi_connected(), kvmi_rx(),
 *     kvmi_disconnected(), kvmi_unhook_request();
 *   - vCPU side: kvmi_vcpu_service() before every guest entry, and one
 *     kvmi_event_*() call per guest action the introspector may watch.
 * The engine calls back into the platform through kvmi_arch.h.  Structures
 * are public only so that callers can allocate them; their fields belong to
 * the engine.
 */
#ifndef HV_KVMI_H
#define HV_KVMI_H

#include "kvmi_abi.h"
#include "spinlock.h"

#define KVMI_JOB_RING_SIZE  16384u /* per vCPU: holds at least one maximal message */
#define KVMI_MAX_PAUSE      1001u  /* PAUSE_VCPU gives -KVM_EBUSY above this many queued */
#define KVMI_KEY_MAX        64u
#define KVMI_RX_BUF_SIZE    (sizeof(struct kvmi_msg_hdr) + KVMI_MSG_SIZE + 512)
#define KVMI_OUT_BUF_SIZE   (16u + 8192u)
#define KVMI_EVENT_BUF_SIZE (8u + 544u + 24u)

/* Known message IDs (2..27 incl. the reserved 12, and 29) and events (0..11). */
#define KVMI_KNOWN_COMMANDS ((((1ull << 28) - 1) & ~3ull) | (1ull << KVMI_GET_MAX_GFN))
#define KVMI_KNOWN_EVENTS   ((1ull << KVMI_NUM_EVENTS) - 1)

struct kvmi_config {
    uint8_t uuid[16];
    int64_t start_time; /* seconds since the epoch */
    char name[KVMI_HS_NAME_SIZE];
    /* Shared key; key_len = 0 means keyless (what libkvmi kvmi-v6 expects). */
    uint8_t key[KVMI_KEY_MAX];
    size_t key_len;
    /* Host policy, applied before the first message of every session
     * (KVM_INTROSPECTION_COMMAND/EVENT); kvmi_default_config() allows all. */
    uint64_t allow_commands;
    uint64_t allow_events;
    /* Deadlines in milliseconds of kvmi_arch_now_ms(); 0 = none (the default
     * of kvmi_default_config).  Each one that expires ends the session (as a
     * fatal protocol error would), never the guest: the introspector's reply
     * to a vCPU's event, room to send one message, the handshake from
     * kvmi_connected() to the introspector's whole answer. */
    uint32_t reply_timeout_ms;
    uint32_t send_timeout_ms;
    uint32_t handshake_timeout_ms;
};

/* Result of an event for the exit handler that raised it. */
enum kvmi_verdict {
    KVMI_V_NONE,     /* no event was sent (not enabled): do what the CPU would */
    KVMI_V_CONTINUE, /* go on (also when sending failed or the session ended) */
    KVMI_V_RETRY,    /* re-enter the guest without completing the operation */
    KVMI_V_CRASH,    /* kvmi_arch_crash() has been called; do not resume */
    KVMI_V_FAIL,     /* action not valid for this event: take the failure path */
};

struct kvmi_page_slot {
    uint64_t gfn_plus1; /* 0 = empty */
    uint8_t access;
};

struct kvmi_vcpu {
    /* shared with the receive context */
    spinlock_t ring_lock;
    uint32_t ring_head, ring_tail; /* free-running byte counters */
    uint32_t pause_requests;       /* atomic */
    uint32_t create_pending;       /* atomic */
    uint8_t ring[KVMI_JOB_RING_SIZE];

    /* owned by the vCPU */
    uint32_t gen; /* session whose intercept state this vCPU holds */
    uint32_t events;
    uint8_t cr_mask; /* bit n = CRn monitored */
    bool bp_on, desc_on, ss_on;
    uint32_t msr_count;
    uint8_t msr_low[0x2000 / 8], msr_high[0x2000 / 8];

    int wait_state; /* enum in kvmi/internal.h */
    bool replied;   /* the last event got a valid reply */
    uint32_t wait_seq;
    size_t wait_rpl_size;
    struct kvmi_event_reply reply;
    uint8_t reply_data[sizeof(struct kvmi_event_pf_reply)];
    bool regs_pending;
    struct kvm_regs pending_regs;

    uint8_t job[KVMI_RX_BUF_SIZE];
    uint8_t out[KVMI_OUT_BUF_SIZE];
    uint8_t evbuf[KVMI_EVENT_BUF_SIZE];
};

struct kvmi_vm {
    struct kvmi_config cfg;
    void *arch; /* for the platform's own use */
    struct kvmi_vcpu *vcpus;
    unsigned max_vcpus;
    struct kvmi_page_slot *pages;
    uint32_t page_cap, page_count;
    spinlock_t pages_lock;

    uint32_t state; /* atomic, enum in kvmi/internal.h */
    uint32_t gen;   /* atomic, bumped at every session start and end */
    spinlock_t send_lock;
    uint32_t ev_seq; /* atomic */
    uint32_t vm_events;
    uint64_t allow_cmds, allow_events;
    bool replies_disabled;

    /* receive state machine */
    uint32_t rx_have;
    bool rx_pending;
    uint32_t hs_size, hs_have;
    uint64_t hs_start_ms; /* kvmi_arch_now_ms() at kvmi_connected() */
    uint8_t hs_reply[sizeof(struct kvmi_introspector2qemu)];
    struct kvmi_qemu2introspector hs_sent;
    uint8_t rx_buf[KVMI_RX_BUF_SIZE];
    uint8_t out[KVMI_OUT_BUF_SIZE];
    uint8_t evbuf[KVMI_EVENT_BUF_SIZE];
};

/* A config with everything allowed, no key, empty name. */
void kvmi_default_config(struct kvmi_config *cfg);

/* Change the host policy in cfg as KVM_INTROSPECTION_COMMAND (command=true)
 * or KVM_INTROSPECTION_EVENT would (spec §2.3): id -1 = every known ID,
 * id < -1 or no known ID -> -KVM_EINVAL; GET_VERSION, CHECK_COMMAND and
 * CHECK_EVENT cannot be disallowed (-KVM_EPERM when named, silently kept
 * by -1).  0 on success, cfg untouched on error. */
int kvmi_config_allow(struct kvmi_config *cfg, bool command, int id, bool allow);

/* vcpus[max_vcpus] and pages[page_cap] (page restrictions the tool may hold at
 * once; more gives -KVM_ENOMEM) are owned by the engine from now on. */
void kvmi_init(struct kvmi_vm *vm, const struct kvmi_config *cfg, void *arch,
               struct kvmi_vcpu *vcpus, unsigned max_vcpus, struct kvmi_page_slot *pages,
               uint32_t page_cap);

/* Receive context.  The transport is connected: send the 96-byte handshake.
 * Returns 0, or a negative code if it could not be sent. */
int kvmi_connected(struct kvmi_vm *vm);

/* Receive context.  Feed received bytes; returns how many were consumed.
 * Less than len means a vCPU job queue is full: call again later with the
 * rest (len may be 0) after the vCPUs have had time to run.  Nothing is ever
 * dropped. */
size_t kvmi_rx(struct kvmi_vm *vm, const void *data, size_t len);

/* Receive context.  The connection is gone (EOF, error, or after
 * kvmi_arch_close()): end of introspection.  Waiting vCPUs continue as
 * CONTINUE, pause counters reset, page rights restored now, intercepts
 * restored by each vCPU at its next kvmi_vcpu_service().  Ready for
 * kvmi_connected() again at once. */
void kvmi_disconnected(struct kvmi_vm *vm);

/* Any context, often (bare metal: every poll): ends a handshake that has
 * outlived cfg.handshake_timeout_ms.  The other deadlines are checked by the
 * waits themselves. */
void kvmi_check_deadlines(struct kvmi_vm *vm);

/* True from the handshake's end until the session ends or is being closed. */
bool kvmi_session_active(struct kvmi_vm *vm);
/* True from kvmi_connected() until kvmi_disconnected(). */
bool kvmi_transport_up(struct kvmi_vm *vm);

/* Device-manager request to unhook.  Returns 0 if KVMI_EVENT_UNHOOK was sent
 * (then the caller waits for the disconnect or its timeout while vCPUs keep
 * running and commands are served), -KVM_ENOENT if the tool did not enable
 * it or it could not be sent, -KVM_EFAULT if there is no session. */
int kvmi_unhook_request(struct kvmi_vm *vm);

/* Any context.  vCPU `vcpu` was just created (hot-plug; kvmi_arch_vcpu_count()
 * already counts it) and has not entered the guest yet.  If a session is
 * active, its first kvmi_vcpu_service() sends KVMI_EVENT_CREATE_VCPU when
 * the tool enabled it, and the vCPU stays there until the reply. */
void kvmi_vcpu_added(struct kvmi_vm *vm, unsigned vcpu);

/* [vCPU] Before every guest entry (and from HLT/wait-for-SIPI loops): run
 * queued commands, the CREATE_VCPU event, then the pause loop. */
void kvmi_vcpu_service(struct kvmi_vm *vm, unsigned vcpu);
/* Any context: does kvmi_vcpu_service() have something to do? */
bool kvmi_vcpu_has_work(struct kvmi_vm *vm, unsigned vcpu);

/* Any context: does message `id` start with struct kvmi_vcpu_hdr? */
bool kvmi_msg_has_vcpu_hdr(unsigned id);

/* [vCPU] Queries for exit handlers. */
bool kvmi_event_enabled(struct kvmi_vm *vm, unsigned vcpu, unsigned event);
bool kvmi_cr_monitored(struct kvmi_vm *vm, unsigned vcpu, unsigned cr);
bool kvmi_msr_monitored(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr);
/* VMCALL with RAX=34 and (64-bit) RDI=24, RSI=0 / (else) EBX=24, ECX=0. */
bool kvmi_is_event_hypercall(const struct kvm_regs *regs, unsigned mode);
/* 2, 4 or 8: KVM's code-size mode from EFER.LMA, CS.L, CR0.PE and CS.D. */
unsigned kvmi_vcpu_mode(const struct kvm_sregs *sregs);

/* [vCPU] Events.  Each returns KVMI_V_NONE when the event is not enabled. */
/* Guest write to CR0/3/4: on CONTINUE *new_value holds what to write. */
enum kvmi_verdict kvmi_event_cr(struct kvmi_vm *vm, unsigned vcpu, unsigned cr, uint64_t old_value,
                                uint64_t *new_value);
/* Guest WRMSR: on CONTINUE *new_value holds what to write. */
enum kvmi_verdict kvmi_event_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr,
                                 uint64_t old_value, uint64_t *new_value);
enum kvmi_verdict kvmi_event_xsetbv(struct kvmi_vm *vm, unsigned vcpu);
/* Guest #BP: CONTINUE = re-inject it, RETRY = re-enter without it. */
enum kvmi_verdict kvmi_event_breakpoint(struct kvmi_vm *vm, unsigned vcpu, uint64_t gpa,
                                        uint8_t insn_len);
/* The KVMI hypercall: *rax_result is what the guest gets in RAX afterwards
 * (0 if the event was enabled, -KVM_ENOSYS otherwise). */
enum kvmi_verdict kvmi_event_hypercall(struct kvmi_vm *vm, unsigned vcpu, uint64_t *rax_result);
/* Violation of a tool restriction: rpl gets the reply (zeroed if none). */
enum kvmi_verdict kvmi_event_pf(struct kvmi_vm *vm, unsigned vcpu, uint64_t gpa, uint64_t gva,
                                uint8_t access, struct kvmi_event_pf_reply *rpl);
enum kvmi_verdict kvmi_event_trap(struct kvmi_vm *vm, unsigned vcpu, uint32_t vector, uint32_t type,
                                  uint32_t error_code, uint64_t cr2);
/* [vCPU] The tool's exception (INJECT_EXCEPTION) meets another event the guest gets at
 * the same entry: the arch drops the tool's and calls this, which sends KVMI_EVENT_TRAP
 * describing the other.  intr_type is the VMX interruption type, unshifted (0 external
 * interrupt, 2 NMI, 3 hardware exception, 4 software interrupt, 6 software exception). */
enum kvmi_verdict kvmi_exception_collided(struct kvmi_vm *vm, unsigned vcpu, uint32_t vector,
                                          unsigned intr_type, uint32_t error_code, uint64_t cr2);
enum kvmi_verdict kvmi_event_descriptor(struct kvmi_vm *vm, unsigned vcpu, uint8_t descriptor,
                                        bool write);
enum kvmi_verdict kvmi_event_singlestep(struct kvmi_vm *vm, unsigned vcpu);

#endif
