/*
 * test_kvmi_fake.h - a fake platform (kvmi_arch.h, kvmi_fake_arch.c) for the
 * engine's unit tests and fuzz target: single-threaded, records every arch
 * call, captures every sent message, and lets a test script what "arrives"
 * while a vCPU polls for an event reply.
 */
#ifndef TEST_KVMI_FAKE_H
#define TEST_KVMI_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmi/kvmi.h"
#include "kvmi/kvmi_arch.h"

#define FAKE_VCPUS    4
#define FAKE_PAGES    64 /* guest memory: 64 pages, max gfn 63 */
#define FAKE_SLOTS    8  /* page-restriction table capacity */
#define FAKE_OUT_SIZE (1u << 20)

struct fake {
    unsigned nr_vcpus;
    bool uninit[FAKE_VCPUS];
    bool halted[FAKE_VCPUS];
    uint8_t out[FAKE_OUT_SIZE];
    size_t out_len, out_rd;
    bool closed;
    int kicks[FAKE_VCPUS], kick_waits[FAKE_VCPUS];
    int crashes;
    int send_eagain; /* next N sends report "no room" */
    struct kvm_regs regs[FAKE_VCPUS];
    struct kvm_sregs sregs[FAKE_VCPUS];
    uint8_t mem[FAKE_PAGES * 4096];
    uint8_t access[FAKE_PAGES];
    int cr_on[FAKE_VCPUS][5];
    int msr_on[FAKE_VCPUS];
    int bp_on[FAKE_VCPUS], desc_on[FAKE_VCPUS], ss_on[FAKE_VCPUS];
    bool desc_unsupported;
    int desc_unsupported_on; /* vCPU index + 1 without descriptor exiting, 0 none */
    bool odd_msrs_invalid;   /* odd MSR numbers read as -KVM_EINVAL */
    bool out_wrap;           /* a full capture buffer starts over (no failure) */
    int injected[FAKE_VCPUS];
    /* called by kvmi_arch_poll(); must make progress or the test fails */
    void (*on_poll)(int vcpu);
    int polls;
    uint64_t now_ms;  /* kvmi_arch_now_ms() */
    uint32_t poll_ms; /* how far each kvmi_arch_poll() moves it */
};

extern struct fake F;

/* A broken expectation of the fake (it polls forever, the send lock is
 * contended, the capture overflows): defined by each user of the fake. */
void fake_fail(const char *what);
extern struct kvmi_vm VM;

/* Fresh engine; with `handshake`, the connection is up and the session
 * active (the introspector answered a 24-byte keyless handshake). */
void fake_setup(unsigned nr_vcpus, const struct kvmi_config *cfg, bool handshake);
size_t feed(const void *data, size_t len);
/* Append one message (header + body) to a buffer; returns its new length. */
size_t put_msg(uint8_t *buf, size_t at, uint16_t id, uint32_t seq, const void *body, size_t len);
/* Send one command; returns its seq. */
uint32_t cmd(uint16_t id, const void *body, size_t len);
/* vCPU command: vhdr(vcpu) + req */
uint32_t vcmd(uint16_t id, uint16_t vcpu, const void *req, size_t len);
/* Next captured message, or false; body copied (up to cap). */
bool next_msg(struct kvmi_msg_hdr *h, uint8_t *body, size_t cap);
/* Next message must be a reply to (id, seq); returns its err and copies data. */
int expect_reply(uint16_t id, uint32_t seq, void *data, size_t len);
/* No further message captured. */
bool no_more(void);
/* Send an event reply for (seq, vcpu, action) + specific part. */
void event_reply(uint32_t seq, uint16_t vcpu, uint8_t action, const void *spec, size_t len);

#endif
