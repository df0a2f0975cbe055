/*
 * internal.h - shared between the files of the KVMI engine only.
 *
 * Offers: the session/wait states, the helpers that build and send replies
 * and events, the job ring, the page-restriction table, and the per-command
 * handlers each file implements.
 */
#ifndef KVMI_INTERNAL_H
#define KVMI_INTERNAL_H

#include <string.h>

#include "kvmi.h"
#include "kvmi_arch.h"

enum kvmi_state {
    KVMI_ST_IDLE,      /* no transport */
    KVMI_ST_HANDSHAKE, /* our 96 bytes sent, reading the introspector's reply */
    KVMI_ST_ACTIVE,    /* speaking KVMI */
    KVMI_ST_CLOSING,   /* fatal error: waiting for kvmi_disconnected() */
};

enum kvmi_wait {
    KVMI_WAIT_NONE,
    KVMI_WAIT_PENDING, /* event sent, reply not yet here */
    KVMI_WAIT_DONE,    /* valid reply stored in vcpu->reply / reply_data */
    KVMI_WAIT_FAILED,  /* invalid reply (connection closed) or aborted */
};

/* A job in a vCPU ring: this header, then the whole message (hdr + body). */
struct kvmi_job_hdr {
    uint32_t len; /* message bytes */
    uint32_t gen;
    uint8_t replies_disabled; /* sampled at dispatch (spec §3.8) */
    uint8_t pad[7];
};

/* dispatch results of the receive path */
enum kvmi_disp {
    KVMI_DISP_OK,
    KVMI_DISP_BUSY, /* the target vCPU ring is full: retry later */
};

#define KVMI_BIT(n) (1ull << (n))

static inline uint32_t kvmi_load(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void kvmi_store(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The send lock (vm->send_lock): held only to check the session and queue
 * one message, so a waiter spins briefly, then lets the platform yield. */
static inline void kvmi_send_lock(struct kvmi_vm *vm)
{
    for (unsigned spins = 0; !spin_trylock(&vm->send_lock); spins++) {
        if (spins < 64)
            cpu_relax();
        else
            kvmi_arch_relax(vm);
    }
}
static inline void kvmi_send_unlock(struct kvmi_vm *vm)
{
    spin_unlock(&vm->send_lock);
}

/* conn.c */
void kvmi_fatal(struct kvmi_vm *vm, const char *why, int64_t value);
/* conn.c: timeout_ms (0 = never) has passed since start_ms. */
bool kvmi_deadline_passed(struct kvmi_vm *vm, uint64_t start_ms, uint32_t timeout_ms);
void kvmi_session_start(struct kvmi_vm *vm);

/* send.c: send one complete message of session `gen`; waits (polling) for
 * room; 0 or negative if the session is gone or the link broke. */
int kvmi_send(struct kvmi_vm *vm, uint32_t gen, const void *msg, size_t len, int poll_vcpu);
/* Build and send a command reply in `buf` whose data (len bytes) is already
 * at buf + 16.  `disabled`: replies were off when the command was
 * dispatched; `always_data`: the handler always passes a reply buffer (fatal
 * with replies off even on error); `force`: sent even with replies off. */
int kvmi_reply(struct kvmi_vm *vm, uint32_t gen, uint8_t *buf, const struct kvmi_msg_hdr *req,
               int err, size_t len, bool disabled, bool always_data, bool force, int poll_vcpu);
static inline uint8_t *kvmi_reply_data(uint8_t *buf)
{
    return buf + sizeof(struct kvmi_msg_hdr) + sizeof(struct kvmi_error_code);
}

/* handshake.c */
int kvmi_handshake_send(struct kvmi_vm *vm);
size_t kvmi_handshake_rx(struct kvmi_vm *vm, const uint8_t *data, size_t len);

/* dispatch.c */
enum kvmi_disp kvmi_dispatch(struct kvmi_vm *vm);
bool kvmi_is_vcpu_message(uint16_t id);

/* vm_cmds.c: receive-context handlers; return value as kvmi_dispatch. */
enum kvmi_disp kvmi_vm_command(struct kvmi_vm *vm, const struct kvmi_msg_hdr *hdr,
                               const uint8_t *body);

/* pause.c */
void kvmi_cmd_pause_vcpu(struct kvmi_vm *vm, const struct kvmi_msg_hdr *hdr, const uint8_t *body);

/* jobs.c */
bool kvmi_job_push(struct kvmi_vm *vm, unsigned vcpu, const void *msg, size_t len, uint32_t gen,
                   bool replies_disabled);
/* Pops the next job into vcpu->job (zero-extended); false if none. */
bool kvmi_job_pop(struct kvmi_vcpu *v, struct kvmi_job_hdr *jh);
void kvmi_job_clear(struct kvmi_vcpu *v);
bool kvmi_job_pending(struct kvmi_vcpu *v);
void kvmi_run_jobs(struct kvmi_vm *vm, unsigned vcpu);
/* Receive context: answers -KVM_EAGAIN to every job queued on a vCPU that has
 * since halted (it never runs them), so that none waits for ever. */
void kvmi_refuse_halted_jobs(struct kvmi_vm *vm);

/* vcpu_cmds.c */
void kvmi_vcpu_command(struct kvmi_vm *vm, unsigned vcpu, const struct kvmi_job_hdr *jh);
void kvmi_vcpu_reset(struct kvmi_vm *vm, unsigned vcpu);

/* events.c */
void kvmi_event_reply_job(struct kvmi_vm *vm, unsigned vcpu, const struct kvmi_msg_hdr *hdr,
                          const uint8_t *body);
/* Send a vCPU event and wait for its reply; returns the verdict. */
enum kvmi_verdict kvmi_send_vcpu_event(struct kvmi_vm *vm, unsigned vcpu, uint8_t event,
                                       const void *payload, size_t plen, void *rpl,
                                       size_t rpl_size);
int kvmi_send_unhook_event(struct kvmi_vm *vm);

/* pages.c */
uint8_t kvmi_page_get(struct kvmi_vm *vm, uint64_t gfn);
int kvmi_page_set(struct kvmi_vm *vm, uint64_t gfn, uint8_t access);
void kvmi_page_reset_all(struct kvmi_vm *vm);

#endif
