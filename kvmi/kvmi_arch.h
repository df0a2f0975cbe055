/*
 * kvmi_arch.h - what the KVMI engine (kvmi/) needs from the platform.
 *
 * Offers: the declarations of the kvmi_arch_* functions.  The engine has no
 * hardware access; it calls these.  Three implementations exist or will:
 *   - kvmi_hv/ on bare metal (one vCPU = one physical core in VMX root, no
 *     threads, only spinlocks and polling);
 *   - kvmi_sim/ in the hosted simulator (pthreads, one thread per vCPU and a
 *     socket reader thread);
 *   - the fake arch of the unit tests and the fuzz target.
 *
 * Contexts.  "Receive context" is whoever calls kvmi_rx()/kvmi_connected()/
 * kvmi_disconnected() (bare metal: service_poll() under the service lock;
 * sim: the socket reader thread); it is single-threaded.  "vCPU context" is
 * the vCPU itself in root mode (bare metal: its core after a VM exit; sim:
 * its thread outside a guest step).  Functions marked [vCPU] are only called
 * by the engine from the context of that same vCPU, so a VMCS-based
 * implementation can VMWRITE the current VMCS.  Everything else may be
 * called from any context and must be safe against concurrent calls.
 *
 * Errors are returned as negative KVM_E* codes from kvmi_abi.h, which the
 * engine forwards on the wire unchanged.  No function may block waiting for
 * the network: waiting is always done by the engine calling
 * kvmi_arch_poll() in a loop.
 */
#ifndef HV_KVMI_ARCH_H
#define HV_KVMI_ARCH_H

#include "kvmi_abi.h"

struct kvmi_vm;

/* ---- vCPUs --------------------------------------------------------------- */

/* Number of online vCPUs (indices 0..n-1, creation order). */
unsigned kvmi_arch_vcpu_count(struct kvmi_vm *vm);

/* True while the vCPU cannot be introspected yet (an AP in wait-for-SIPI,
 * KVM's KVM_MP_STATE_UNINITIALIZED): its commands get -KVM_EAGAIN.  It must
 * still call kvmi_vcpu_service() (pause requests) without entering the guest. */
bool kvmi_arch_vcpu_uninitialized(struct kvmi_vm *vm, unsigned vcpu);

/* True once the vCPU has stopped for good (a fatal guest event, a hypervisor
 * fault on its core, or parked after CRASH): it never runs a job again, so its
 * commands and pause requests get -KVM_EAGAIN at once instead of filling its
 * ring (docs/protocol.md). */
bool kvmi_arch_vcpu_halted(struct kvmi_vm *vm, unsigned vcpu);

/* [vCPU] General-purpose registers, as KVM_GET_REGS/KVM_SET_REGS. */
int kvmi_arch_get_regs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_regs *regs);
int kvmi_arch_set_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *regs);

/* [vCPU] Whether kvmi_arch_set_regs would accept these registers now: 0, or
 * -KVM_EINVAL for a value the vCPU cannot run with (bare metal: the VM-entry
 * rules on RIP and RFLAGS).  SET_REGISTERS answers with it, so a bad value is
 * refused when it is sent rather than dropped when the event's reply applies it. */
int kvmi_arch_check_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *regs);

/* [vCPU] Segment/control registers, as KVM_GET_SREGS (interrupt_bitmap = the
 * pending external interrupt, if any). */
int kvmi_arch_get_sregs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_sregs *sregs);

/* [vCPU] Guest view of an MSR; -KVM_EINVAL if the guest could not read it. */
int kvmi_arch_get_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, uint64_t *value);

/* [vCPU] The guest's CPUID leaf (function, index) as the guest sees it;
 * -KVM_ENOENT if the leaf does not exist. */
int kvmi_arch_get_cpuid(struct kvmi_vm *vm, unsigned vcpu, uint32_t function, uint32_t index,
                        struct kvmi_get_cpuid_reply *out);

/* [vCPU] The guest's XSAVE area in KVM_GET_XSAVE layout (4096 bytes). */
int kvmi_arch_get_xsave(struct kvmi_vm *vm, unsigned vcpu, struct kvm_xsave *out);

/* [vCPU] Guest MTRR memory type of gpa (0 UC, 1 WC, 4 WT, 5 WP, 6 WB). */
int kvmi_arch_get_mtrr_type(struct kvmi_vm *vm, unsigned vcpu, uint64_t gpa, uint8_t *type);

/* [vCPU] Queue an exception for the next guest entry.  If at that entry
 * another event is already being injected, the arch drops this one and
 * calls kvmi_exception_collided() describing the other. */
int kvmi_arch_inject_exception(struct kvmi_vm *vm, unsigned vcpu, uint8_t nr, bool has_error,
                               uint32_t error_code, uint64_t address);

/* ---- intercept controls ([vCPU]; enable=false means "KVMI no longer needs
 * it": the arch keeps an intercept it needs for itself) -------------------- */

/* CR0/CR4: exit on guest writes (guest/host mask); CR3: CR3-load exiting. */
int kvmi_arch_control_cr(struct kvmi_vm *vm, unsigned vcpu, unsigned cr, bool enable);
/* WRMSR exiting for one MSR in the MSR bitmap. */
int kvmi_arch_control_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, bool enable);
/* Descriptor-table exiting; -KVM_EOPNOTSUPP if the CPU cannot. */
int kvmi_arch_control_desc(struct kvmi_vm *vm, unsigned vcpu, bool enable);
/* #BP in the exception bitmap. */
int kvmi_arch_control_bp(struct kvmi_vm *vm, unsigned vcpu, bool enable);
/* Single-step the next instruction (monitor trap flag); the arch calls
 * kvmi_event_singlestep() when the step completes. */
int kvmi_arch_control_singlestep(struct kvmi_vm *vm, unsigned vcpu, bool enable);

/* ---- guest memory (any context) ------------------------------------------ */

/* Highest guest frame number backed by memory. */
uint64_t kvmi_arch_max_gfn(struct kvmi_vm *vm);

/* Copy guest physical memory (never crosses a 4 KiB page: the engine checks);
 * -KVM_ENOENT if the page is not guest memory (hypervisor-hidden pages
 * included). */
int kvmi_arch_read_phys(struct kvmi_vm *vm, uint64_t gpa, void *buf, size_t size);
int kvmi_arch_write_phys(struct kvmi_vm *vm, uint64_t gpa, const void *buf, size_t size);

/* Give gfn exactly the rights `access` (KVMI_PAGE_ACCESS_* bits; RWX = no
 * restriction) in the second-level page tables, and make the change visible
 * on every vCPU (invalidate) before returning.  The arch must never program
 * write-without-read (treat -W- / -WX as RW- / RWX in hardware while still
 * reporting violations of the tool's rights).  -KVM_EINVAL for a gfn that
 * is not guest memory, -KVM_ENOMEM if it cannot split a large page. */
int kvmi_arch_set_page_access(struct kvmi_vm *vm, uint64_t gfn, uint8_t access);

/* ---- time, randomness, crash ---------------------------------------------- */

/* Guest TSC frequency in Hz, 0 if unknown. */
uint64_t kvmi_arch_tsc_hz(struct kvmi_vm *vm);

/* Monotonic milliseconds (any origin) for the session's deadlines; bare metal:
 * the TSC. */
uint64_t kvmi_arch_now_ms(struct kvmi_vm *vm);

/* 64 unpredictable bits (handshake nonce); RDRAND on bare metal. */
uint64_t kvmi_arch_random(struct kvmi_vm *vm);

/* The introspector answered an event with CRASH: stop the guest for good
 * (KVM kills the VMM).  Called from the vCPU that got the reply. */
void kvmi_arch_crash(struct kvmi_vm *vm, unsigned vcpu);

/* ---- scheduling ----------------------------------------------------------- */

/* Make `vcpu` call kvmi_vcpu_service() soon (request flag + forced exit).
 * wait=true: return only once it is out of guest mode (in root mode, halted,
 * parked in wait-for-SIPI, or it is the calling vCPU itself). */
void kvmi_arch_kick(struct kvmi_vm *vm, unsigned vcpu, bool wait);

/* "Wait a little": called in loops where the engine waits for something
 * another context produces.  vcpu >= 0: that vCPU waits for an event reply
 * (it must keep the service loop moving: bare metal polls the NIC with a
 * try-lock; sim sleeps briefly).  vcpu < 0: the receive context waits for
 * send room; the arch may pump transmission but must not call kvmi_rx()
 * re-entrantly. */
void kvmi_arch_poll(struct kvmi_vm *vm, int vcpu);

/* "Another context holds a short lock (the send lock); let it finish":
 * called by the engine between attempts to take it, after a brief spin.
 * Bare metal: cpu_relax() (PAUSE); the holder is another core and never
 * preempted.  Hosted: yield the CPU, since the holder may be a thread the
 * OS (or valgrind, which runs one thread at a time) has descheduled, and
 * spinning would burn the rest of the time slice. */
void kvmi_arch_relax(struct kvmi_vm *vm);

/* ---- transport ------------------------------------------------------------ */

/* Queue one whole message for sending, all or nothing: 0 = queued entirely,
 * -KVM_EAGAIN = no room now (nothing queued; the engine polls and retries),
 * other negative = the connection is broken.  The engine serialises calls
 * with its send lock, so bytes of two messages never interleave; the call
 * is made under that spinlock, so it must only copy the message into the
 * transport's queue (no waiting, no system call on the common path): the
 * actual transmission happens elsewhere (bare metal: the NIC poll; sim: a
 * writer thread).  Transmit a queued message without a pause in its
 * middle (e.g. never split it at a ring's wrap point into two separately
 * flushed writes): libkvmi kvmi-v6 drops an event that arrives in two
 * pieces with a gap between them. */
int kvmi_arch_send(struct kvmi_vm *vm, const void *msg, size_t len);

/* The engine found a fatal protocol error: shut the connection down (both
 * directions).  The transport later calls kvmi_disconnected() as for any
 * other end of connection.  May be called from any context. */
void kvmi_arch_close(struct kvmi_vm *vm);

/* ---- diagnostics ---------------------------------------------------------- */

/* One complete message, incoming (dir_in) or outgoing, for the log. */
void kvmi_arch_trace(struct kvmi_vm *vm, bool dir_in, const void *msg, size_t len);

/* A protocol problem worth logging (`what` is a constant string). */
void kvmi_arch_log(struct kvmi_vm *vm, const char *what, int64_t value);

#endif
