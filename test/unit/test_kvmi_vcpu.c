/*
 * test_kvmi_vcpu.c - the vCPU side of the engine against the fake arch:
 * vCPU command dispatch checks and every vCPU command (spec §4.1 "V" rows),
 * every event of §4.2 with its payload, reply validation (fatal cases),
 * actions, SET_REGISTERS at reply time, the pause loop, CREATE_VCPU, back
 * pressure, and intercepts restored at the end of a session.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_kvmi_fake.h"

/* engine-internal: runs a vCPU's queued jobs (what its wait loop does) */
void kvmi_run_jobs(struct kvmi_vm *vm, unsigned vcpu);

static void setup2(void)
{
    fake_setup(2, NULL, true);
    kvmi_vcpu_service(&VM, 0); /* consume the session-start work */
    kvmi_vcpu_service(&VM, 1);
}

static int control_events(uint16_t vcpu, uint16_t id, uint8_t en)
{
    struct kvmi_control_events e = {.event_id = id, .enable = en};
    uint32_t s = vcmd(KVMI_CONTROL_EVENTS, vcpu, &e, sizeof(e));
    kvmi_vcpu_service(&VM, vcpu);
    return expect_reply(KVMI_CONTROL_EVENTS, s, NULL, 0);
}

/* ---- dispatch checks ---------------------------------------------------------- */

static void test_vcpu_header_padding_is_fatal(void **state)
{
    (void)state;
    setup2();
    uint8_t b[16] = {0};
    b[4] = 1; /* vhdr.padding2 */
    cmd(KVMI_GET_VCPU_INFO, b, 8);
    assert_true(F.closed);
    assert_true(no_more());
}

static void test_vcpu_index_and_uninitialized(void **state)
{
    (void)state;
    setup2();
    uint32_t s = vcmd(KVMI_GET_VCPU_INFO, 2, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_VCPU_INFO, s, NULL, 0), -KVM_EINVAL);
    F.uninit[1] = true;
    s = vcmd(KVMI_GET_VCPU_INFO, 1, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_VCPU_INFO, s, NULL, 0), -KVM_EAGAIN);
    assert_false(F.closed);
    /* an event reply for a vCPU that does not exist ends the session */
    event_reply(1, 7, 0, NULL, 0);
    assert_true(F.closed);
}

/* A halted vCPU (stopped for good) answers every command at once with -KVM_EAGAIN instead of
 * queueing it: 500 commands never fill its ring (the receive path would return BUSY for good), and
 * the VM commands and the other vCPU still answer. */
static void test_halted_vcpu_refuses_commands(void **state)
{
    (void)state;
    setup2();
    F.halted[1] = true;
    int kicks = F.kicks[1];
    for (int i = 0; i < 500; i++) {
        uint32_t s = vcmd(KVMI_GET_VCPU_INFO, 1, NULL, 0);
        assert_int_equal(expect_reply(KVMI_GET_VCPU_INFO, s, NULL, 0), -KVM_EAGAIN);
    }
    assert_int_equal(F.kicks[1], kicks); /* nothing queued, nobody kicked */
    assert_false(kvmi_vcpu_has_work(&VM, 1));
    struct kvmi_get_version_reply ver;
    uint32_t s = cmd(KVMI_GET_VERSION, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_VERSION, s, &ver, sizeof(ver)), 0);
    assert_int_equal(ver.version, 1);
    s = vcmd(KVMI_GET_VCPU_INFO, 0, NULL, 0);
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(expect_reply(KVMI_GET_VCPU_INFO, s, NULL, 0), 0);
    /* a pause would never produce its event */
    uint8_t b[16] = {0};
    b[0] = 1; /* vCPU 1 */
    b[8] = 1; /* wait */
    s = cmd(KVMI_PAUSE_VCPU, b, 16);
    assert_int_equal(expect_reply(KVMI_PAUSE_VCPU, s, NULL, 0), -KVM_EAGAIN);
    assert_int_equal(VM.vcpus[1].pause_requests, 0);
    /* an event reply for it is dropped, the session goes on */
    event_reply(7, 1, KVMI_EVENT_ACTION_CONTINUE, NULL, 0);
    assert_false(F.closed);
    assert_true(no_more());
    F.halted[1] = false;
}

/* Commands queued before their vCPU halted are answered -KVM_EAGAIN by the receive context (the
 * next kvmi_rx, even an empty one), never left waiting. */
static void test_jobs_of_a_vcpu_that_halts_are_refused(void **state)
{
    (void)state;
    setup2();
    uint32_t s[3];
    for (int i = 0; i < 3; i++)
        s[i] = vcmd(KVMI_GET_VCPU_INFO, 1, NULL, 0);
    assert_true(no_more()); /* queued */
    assert_true(kvmi_vcpu_has_work(&VM, 1));
    kvmi_rx(&VM, NULL, 0);
    assert_true(no_more()); /* still running: its jobs are its own */
    F.halted[1] = true;
    kvmi_rx(&VM, NULL, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(expect_reply(KVMI_GET_VCPU_INFO, s[i], NULL, 0), -KVM_EAGAIN);
    assert_false(kvmi_vcpu_has_work(&VM, 1));
    assert_true(no_more());
    F.halted[1] = false;
}

static void test_vcpu_command_is_a_job_run_by_the_vcpu(void **state)
{
    (void)state;
    setup2();
    int kicks = F.kicks[1];
    uint32_t s = vcmd(KVMI_GET_VCPU_INFO, 1, NULL, 0);
    assert_true(no_more()); /* queued, not answered by the receive side */
    assert_int_equal(F.kicks[1], kicks + 1);
    assert_true(kvmi_vcpu_has_work(&VM, 1));
    kvmi_vcpu_service(&VM, 1);
    struct kvmi_get_vcpu_info_reply r;
    assert_int_equal(expect_reply(KVMI_GET_VCPU_INFO, s, &r, sizeof(r)), 0);
    assert_int_equal(r.tsc_speed, 1234567890);
    assert_false(kvmi_vcpu_has_work(&VM, 1));
}

static void test_replies_off_sampled_at_dispatch(void **state)
{
    (void)state;
    setup2();
    struct kvmi_control_cmd_response off = {.enable = 0, .now = 1}, on = {.enable = 1, .now = 1};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &off, sizeof(off));
    struct kvmi_control_events e = {.event_id = KVMI_EVENT_CR, .enable = 1};
    vcmd(KVMI_CONTROL_EVENTS, 0, &e, sizeof(e));
    uint32_t s = cmd(KVMI_CONTROL_CMD_RESPONSE, &on, sizeof(on));
    assert_int_equal(expect_reply(KVMI_CONTROL_CMD_RESPONSE, s, NULL, 0), 0);
    kvmi_vcpu_service(&VM, 0); /* runs after replies were re-enabled */
    assert_true(no_more());
    assert_true(kvmi_event_enabled(&VM, 0, KVMI_EVENT_CR));
}

static void test_back_pressure_when_ring_full(void **state)
{
    (void)state;
    setup2();
    static uint8_t buf[200000];
    size_t n = 0;
    unsigned count = 2000; /* 2000 x 32-byte jobs > the 16 KiB ring */
    for (unsigned i = 0; i < count; i++) {
        uint8_t b[8] = {0};
        n = put_msg(buf, n, KVMI_GET_VCPU_INFO, i + 1, b, 8);
    }
    size_t used = feed(buf, n);
    assert_true(used < n);
    size_t again = feed(buf + used, n - used);
    assert_int_equal(again, 0); /* still full: nothing consumed, nothing lost */
    while (used < n) {
        kvmi_vcpu_service(&VM, 0);
        used += feed(buf + used, n - used);
    }
    feed(NULL, 0);
    kvmi_vcpu_service(&VM, 0);
    for (unsigned i = 0; i < count; i++)
        assert_int_equal(expect_reply(KVMI_GET_VCPU_INFO, i + 1, NULL, 0), 0);
    assert_true(no_more());
}

/* ---- vCPU commands ------------------------------------------------------------- */

static void test_control_events_rules(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    cfg.allow_events &= ~(1ull << KVMI_EVENT_MSR);
    fake_setup(2, &cfg, true);
    kvmi_vcpu_service(&VM, 0);
    const uint16_t bad[] = {KVMI_EVENT_UNHOOK, KVMI_EVENT_CREATE_VCPU, 12, 200};
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(control_events(0, bad[i], 1), -KVM_EINVAL);
    assert_int_equal(control_events(0, KVMI_EVENT_MSR, 1), -KVM_EPERM);
    const uint16_t good[] = {KVMI_EVENT_CR,         KVMI_EVENT_XSETBV,     KVMI_EVENT_BREAKPOINT,
                             KVMI_EVENT_HYPERCALL,  KVMI_EVENT_PF,         KVMI_EVENT_TRAP,
                             KVMI_EVENT_DESCRIPTOR, KVMI_EVENT_PAUSE_VCPU, KVMI_EVENT_SINGLESTEP};
    for (unsigned i = 0; i < 9; i++)
        assert_int_equal(control_events(0, good[i], 1), 0);
    assert_int_equal(F.bp_on[0], 1);
    assert_int_equal(F.desc_on[0], 1);
    assert_int_equal(control_events(0, KVMI_EVENT_BREAKPOINT, 0), 0);
    assert_int_equal(F.bp_on[0], 0);
    struct kvmi_control_events e = {.event_id = KVMI_EVENT_CR, .enable = 1, .padding1 = 1};
    uint32_t s = vcmd(KVMI_CONTROL_EVENTS, 0, &e, sizeof(e));
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(expect_reply(KVMI_CONTROL_EVENTS, s, NULL, 0), -KVM_EINVAL);
    F.desc_unsupported = true;
    assert_int_equal(control_events(1, KVMI_EVENT_DESCRIPTOR, 1), -KVM_EOPNOTSUPP);
    assert_false(kvmi_event_enabled(&VM, 1, KVMI_EVENT_DESCRIPTOR));
}

static int control_cr(uint16_t vcpu, uint32_t cr, uint8_t en)
{
    struct kvmi_control_cr c = {.enable = en, .cr = cr};
    uint32_t s = vcmd(KVMI_CONTROL_CR, vcpu, &c, sizeof(c));
    kvmi_vcpu_service(&VM, vcpu);
    return expect_reply(KVMI_CONTROL_CR, s, NULL, 0);
}

static int control_msr(uint16_t vcpu, uint32_t msr, uint8_t en)
{
    struct kvmi_control_msr c = {.enable = en, .msr = msr};
    uint32_t s = vcmd(KVMI_CONTROL_MSR, vcpu, &c, sizeof(c));
    kvmi_vcpu_service(&VM, vcpu);
    return expect_reply(KVMI_CONTROL_MSR, s, NULL, 0);
}

static void test_control_cr_and_msr(void **state)
{
    (void)state;
    setup2();
    assert_int_equal(control_cr(0, 2, 1), -KVM_EINVAL);
    assert_int_equal(control_cr(0, 8, 1), -KVM_EINVAL);
    assert_int_equal(control_cr(0, 3, 1), 0);
    assert_int_equal(F.cr_on[0][3], 1);
    assert_true(kvmi_cr_monitored(&VM, 0, 3));
    assert_int_equal(control_cr(0, 3, 0), 0);
    assert_false(kvmi_cr_monitored(&VM, 0, 3));
    assert_int_equal(control_msr(0, 0x2000, 1), -KVM_EINVAL);
    assert_int_equal(control_msr(0, 0xc0002000, 1), -KVM_EINVAL);
    assert_int_equal(control_msr(0, 0xbfffffff, 1), -KVM_EINVAL);
    assert_int_equal(control_msr(0, 0x1fff, 1), 0);
    assert_int_equal(control_msr(0, 0xc0000081, 1), 0);
    assert_true(kvmi_msr_monitored(&VM, 0, 0xc0000081));
    assert_false(kvmi_msr_monitored(&VM, 1, 0xc0000081));
    struct kvmi_control_msr c = {.enable = 1, .padding2 = 1, .msr = 0x174};
    uint32_t s = vcmd(KVMI_CONTROL_MSR, 0, &c, sizeof(c));
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(expect_reply(KVMI_CONTROL_MSR, s, NULL, 0), -KVM_EINVAL);
}

static void test_get_registers(void **state)
{
    (void)state;
    setup2();
    uint8_t req[8 + 8] = {0};
    struct kvmi_get_registers g = {.nmsrs = 2};
    memcpy(req, &g, 8);
    uint32_t idx[2] = {0x174, 0xc0000080};
    memcpy(req + 8, idx, 8);
    uint32_t s = vcmd(KVMI_GET_REGISTERS, 1, req, 16);
    kvmi_vcpu_service(&VM, 1);
    struct kvmi_msg_hdr h;
    uint8_t body[1024];
    assert_true(next_msg(&h, body, sizeof(body)));
    assert_int_equal(h.seq, s);
    assert_int_equal(h.size, 8 + 472 + 2 * 16); /* libkvmi checks this exactly */
    struct kvmi_get_registers_reply r;
    memcpy(&r, body + 8, sizeof(r));
    assert_int_equal(r.mode, 8);
    assert_int_equal(r.regs.rip, 0x1001);
    assert_int_equal(r.sregs.efer, 0xd01);
    assert_int_equal(r.msrs.nmsrs, 2);
    struct kvm_msr_entry e[2];
    memcpy(e, body + 8 + 472, sizeof(e));
    assert_int_equal(e[0].index, 0x174);
    assert_int_equal(e[0].data, (1ull << 32) | 0x174);
    assert_int_equal(e[1].index, 0xc0000080);

    s = vcmd(KVMI_GET_REGISTERS, 1, req, 12); /* short for 2 MSRs */
    kvmi_vcpu_service(&VM, 1);
    assert_int_equal(expect_reply(KVMI_GET_REGISTERS, s, NULL, 0), -KVM_EINVAL);
    idx[1] = 0xdead; /* unreadable */
    memcpy(req + 8, idx, 8);
    s = vcmd(KVMI_GET_REGISTERS, 1, req, 16);
    kvmi_vcpu_service(&VM, 1);
    assert_int_equal(expect_reply(KVMI_GET_REGISTERS, s, NULL, 0), -KVM_EINVAL);
    g.padding2 = 1;
    memcpy(req, &g, 8);
    s = vcmd(KVMI_GET_REGISTERS, 1, req, 16);
    kvmi_vcpu_service(&VM, 1);
    assert_int_equal(expect_reply(KVMI_GET_REGISTERS, s, NULL, 0), -KVM_EINVAL);
}

static void test_cpuid_xsave_mtrr_inject(void **state)
{
    (void)state;
    setup2();
    struct kvmi_get_cpuid c = {.function = 1, .index = 2};
    struct kvmi_get_cpuid_reply cr;
    uint32_t s = vcmd(KVMI_GET_CPUID, 0, &c, sizeof(c));
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(expect_reply(KVMI_GET_CPUID, s, &cr, sizeof(cr)), 0);
    assert_int_equal(cr.eax, 1);
    assert_int_equal(cr.ebx, 2);
    c.function = 0x40000000;
    s = vcmd(KVMI_GET_CPUID, 0, &c, sizeof(c));
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(expect_reply(KVMI_GET_CPUID, s, NULL, 0), -KVM_ENOENT);

    s = vcmd(KVMI_GET_XSAVE, 1, NULL, 0);
    kvmi_vcpu_service(&VM, 1);
    struct kvmi_msg_hdr h;
    static uint8_t body[8192];
    assert_true(next_msg(&h, body, sizeof(body)));
    assert_int_equal(h.size, 8 + 4096);
    uint32_t w;
    memcpy(&w, body + 8 + 4 * 10, 4);
    assert_int_equal(w, 11);

    struct kvmi_get_mtrr_type m = {.gpa = 0x1000};
    struct kvmi_get_mtrr_type_reply mr;
    s = vcmd(KVMI_GET_MTRR_TYPE, 0, &m, sizeof(m));
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(expect_reply(KVMI_GET_MTRR_TYPE, s, &mr, sizeof(mr)), 0);
    assert_int_equal(mr.type, 6);

    struct kvmi_inject_exception ie = {.nr = 14, .has_error = 1, .address = 0x1234};
    s = vcmd(KVMI_INJECT_EXCEPTION, 1, &ie, sizeof(ie));
    kvmi_vcpu_service(&VM, 1);
    assert_int_equal(expect_reply(KVMI_INJECT_EXCEPTION, s, NULL, 0), 0);
    assert_int_equal(F.injected[1], 1);
    ie.padding = 1;
    s = vcmd(KVMI_INJECT_EXCEPTION, 1, &ie, sizeof(ie));
    kvmi_vcpu_service(&VM, 1);
    assert_int_equal(expect_reply(KVMI_INJECT_EXCEPTION, s, NULL, 0), -KVM_EINVAL);
    assert_int_equal(F.injected[1], 1);
}

static void test_cpuid_with_replies_off_is_fatal(void **state)
{
    (void)state;
    setup2();
    struct kvmi_control_cmd_response off = {.enable = 0, .now = 1};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &off, sizeof(off));
    struct kvmi_get_cpuid c = {.function = 0x40000000}; /* fails, but still a data reply */
    vcmd(KVMI_GET_CPUID, 0, &c, sizeof(c));
    kvmi_vcpu_service(&VM, 0);
    assert_true(F.closed);
}

static void test_set_registers_outside_event_dropped(void **state)
{
    (void)state;
    setup2();
    struct kvm_regs r = {.rip = 0x9999, .rflags = 2};
    uint32_t s = vcmd(KVMI_SET_REGISTERS, 0, &r, sizeof(r));
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(expect_reply(KVMI_SET_REGISTERS, s, NULL, 0), 0);
    assert_int_equal(F.regs[0].rip, 0x1000);
    /* a value the vCPU cannot run with is refused even when it would be dropped */
    r.rflags = 0;
    s = vcmd(KVMI_SET_REGISTERS, 0, &r, sizeof(r));
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(expect_reply(KVMI_SET_REGISTERS, s, NULL, 0), -KVM_EINVAL);
}

/* ---- events --------------------------------------------------------------------- */

/* What the scripted introspector does while a vCPU waits. */
static struct {
    int step;
    uint8_t action;
    uint8_t spec[512];
    size_t spec_len;
    bool set_regs;
    bool raw; /* send raw_msg instead of a well-formed reply */
    uint8_t raw_msg[600];
    size_t raw_len;
    struct kvmi_msg_hdr ev_hdr;
    uint8_t ev_body[1024];
} S;

static void script_reply(int vcpu)
{
    if (S.step++ != 0)
        return;
    assert_true(next_msg(&S.ev_hdr, S.ev_body, sizeof(S.ev_body)));
    assert_int_equal(S.ev_hdr.id, KVMI_EVENT);
    if (S.set_regs) {
        struct kvm_regs r = F.regs[vcpu];
        r.rip = 0x5353;
        r.rflags = 0; /* bit 1 clear: refused, and not applied at the reply */
        uint32_t s = vcmd(KVMI_SET_REGISTERS, (uint16_t)vcpu, &r, sizeof(r));
        kvmi_run_jobs(&VM, (unsigned)vcpu);
        assert_int_equal(expect_reply(KVMI_SET_REGISTERS, s, NULL, 0), -KVM_EINVAL);
        r.rip = 0x4242;
        r.rflags = 0x202;
        s = vcmd(KVMI_SET_REGISTERS, (uint16_t)vcpu, &r, sizeof(r));
        kvmi_run_jobs(&VM, (unsigned)vcpu);
        assert_int_equal(expect_reply(KVMI_SET_REGISTERS, s, NULL, 0), 0);
        assert_int_equal(F.regs[vcpu].rip, 0x1000 + vcpu); /* not yet */
    }
    if (S.raw) {
        struct kvmi_msg_hdr h;
        memcpy(&h, S.raw_msg, sizeof(h));
        if (h.seq == 0xffffffff)
            h.seq = S.ev_hdr.seq;
        memcpy(S.raw_msg, &h, sizeof(h));
        feed(S.raw_msg, S.raw_len);
    } else {
        event_reply(S.ev_hdr.seq, (uint16_t)vcpu, S.action, S.spec, S.spec_len);
    }
}

static void arm(uint8_t action, const void *spec, size_t len)
{
    memset(&S, 0, sizeof(S));
    S.action = action;
    if (len)
        memcpy(S.spec, spec, len);
    S.spec_len = len;
    F.on_poll = script_reply;
}

static void test_cr_event_and_reply(void **state)
{
    (void)state;
    setup2();
    uint64_t nv = 0x2000;
    assert_int_equal(kvmi_event_cr(&VM, 0, 3, 0x1000, &nv), KVMI_V_NONE); /* not enabled */
    assert_int_equal(control_events(0, KVMI_EVENT_CR, 1), 0);
    assert_int_equal(kvmi_event_cr(&VM, 0, 3, 0x1000, &nv), KVMI_V_NONE); /* CR3 not chosen */
    assert_int_equal(control_cr(0, 3, 1), 0);
    uint64_t same = 0x1000; /* no event when the value does not change */
    assert_int_equal(kvmi_event_cr(&VM, 0, 3, 0x1000, &same), KVMI_V_NONE);
    uint64_t keep = 0x5000;
    struct kvmi_event_cr_reply r = {.new_val = 0x1000};
    arm(KVMI_EVENT_ACTION_CONTINUE, &r, sizeof(r));
    assert_int_equal(kvmi_event_cr(&VM, 0, 3, 0x1000, &keep), KVMI_V_CONTINUE);
    assert_int_equal(keep, 0x1000); /* the tool kept the old value */
    assert_int_equal(S.ev_hdr.size, 544 + 24);
    assert_int_equal(S.ev_hdr.seq, 1);
    struct kvmi_event ev;
    memcpy(&ev, S.ev_body, sizeof(ev));
    assert_int_equal(ev.size, 544);
    assert_int_equal(ev.vcpu, 0);
    assert_int_equal(ev.event, KVMI_EVENT_CR);
    assert_int_equal(ev.arch.mode, 8);
    assert_int_equal(ev.arch.regs.rip, 0x1000);
    assert_int_equal(ev.arch.msrs.sysenter_cs, 0x174);
    struct kvmi_event_cr p;
    memcpy(&p, S.ev_body + 544, sizeof(p));
    assert_int_equal(p.cr, 3);
    assert_int_equal(p.old_value, 0x1000);
    assert_int_equal(p.new_value, 0x5000);

    /* a reply without new_val is zero-extended: KVM writes 0 */
    uint64_t v = 0x7000;
    arm(KVMI_EVENT_ACTION_CONTINUE, NULL, 0);
    assert_int_equal(kvmi_event_cr(&VM, 0, 3, 0x1000, &v), KVMI_V_CONTINUE);
    assert_int_equal(v, 0);
    assert_int_equal(S.ev_hdr.seq, 2);

    /* RETRY is not an action of CR: failure path (#GP) */
    v = 0x7000;
    arm(KVMI_EVENT_ACTION_RETRY, &r, sizeof(r));
    assert_int_equal(kvmi_event_cr(&VM, 0, 3, 0x1000, &v), KVMI_V_FAIL);
    assert_int_equal(v, 0x7000);

    arm(KVMI_EVENT_ACTION_CRASH, &r, sizeof(r));
    assert_int_equal(kvmi_event_cr(&VM, 0, 3, 0x1000, &v), KVMI_V_CRASH);
    assert_int_equal(F.crashes, 1);
    assert_false(F.closed);
}

static void test_set_registers_applied_at_reply(void **state)
{
    (void)state;
    setup2();
    assert_int_equal(control_events(1, KVMI_EVENT_XSETBV, 1), 0);
    arm(KVMI_EVENT_ACTION_CONTINUE, NULL, 0);
    S.set_regs = true;
    assert_int_equal(kvmi_event_xsetbv(&VM, 1), KVMI_V_CONTINUE);
    assert_int_equal(F.regs[1].rip, 0x4242);
    assert_int_equal(F.regs[1].rflags, 0x202);
    assert_int_equal(S.ev_hdr.size, 544);
}

/* An introspector that never replies to an event: at the deadline the session ends and the vCPU
 * goes on (CONTINUE), instead of waiting for ever. */
static void test_event_reply_deadline(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    cfg.reply_timeout_ms = 2000;
    fake_setup(2, &cfg, true);
    kvmi_vcpu_service(&VM, 0);
    kvmi_vcpu_service(&VM, 1);
    assert_int_equal(control_events(1, KVMI_EVENT_XSETBV, 1), 0);
    F.on_poll = NULL; /* nobody answers */
    F.poll_ms = 100;
    assert_int_equal(kvmi_event_xsetbv(&VM, 1), KVMI_V_CONTINUE);
    assert_true(F.closed);
    assert_false(kvmi_session_active(&VM));
    assert_true(F.polls >= 20 && F.polls <= 21);
}

static void expect_fatal_reply(const void *spec, size_t spec_len, uint32_t seq_delta, uint16_t pad1,
                               size_t total_override)
{
    setup2();
    assert_int_equal(control_events(0, KVMI_EVENT_MSR, 1), 0);
    assert_int_equal(control_msr(0, 0xc0000082, 1), 0);
    memset(&S, 0, sizeof(S));
    S.raw = true;
    uint8_t body[600] = {0};
    struct kvmi_event_reply er = {.action = 0, .padding1 = pad1};
    memcpy(body + 8, &er, 8);
    memcpy(body + 16, spec, spec_len);
    size_t size = total_override ? total_override : 16 + spec_len;
    S.raw_len = put_msg(S.raw_msg, 0, KVMI_EVENT_REPLY, seq_delta ? 77 : 0xffffffff, body, size);
    F.on_poll = script_reply;
    uint64_t nv = 5;
    assert_int_equal(kvmi_event_msr(&VM, 0, 0xc0000082, 1, &nv), KVMI_V_CONTINUE);
    assert_int_equal(nv, 5); /* failed event: CONTINUE with the guest's value */
    assert_true(F.closed);
}

static void test_fatal_event_replies(void **state)
{
    (void)state;
    uint64_t nv = 9;
    uint8_t big[16] = {0};
    expect_fatal_reply(&nv, 8, 1, 0, 0);  /* wrong seq */
    expect_fatal_reply(&nv, 8, 0, 1, 0);  /* padding */
    expect_fatal_reply(big, 16, 0, 0, 0); /* longer than msr reply */
    expect_fatal_reply(&nv, 8, 0, 0, 12); /* shorter than the common part */
}

static void test_unexpected_event_reply_is_fatal(void **state)
{
    (void)state;
    setup2();
    event_reply(5, 0, 0, NULL, 0);
    kvmi_vcpu_service(&VM, 0);
    assert_true(F.closed);
}

static void test_pf_event_and_singlestep(void **state)
{
    (void)state;
    setup2();
    struct kvmi_event_pf_reply rpl;
    assert_int_equal(kvmi_event_pf(&VM, 1, 0x3000, 0xffff800000003000, 2, &rpl), KVMI_V_NONE);
    assert_int_equal(control_events(1, KVMI_EVENT_PF, 1), 0);
    assert_int_equal(control_events(1, KVMI_EVENT_SINGLESTEP, 1), 0);
    struct kvmi_event_pf_reply want = {.singlestep = 1, .ctx_size = 4, .ctx_data = {1, 2, 3, 4}};
    arm(KVMI_EVENT_ACTION_RETRY, &want, sizeof(want));
    assert_int_equal(kvmi_event_pf(&VM, 1, 0x3000, 0xffff800000003000, 2, &rpl), KVMI_V_RETRY);
    assert_memory_equal(&rpl, &want, sizeof(want));
    assert_int_equal(S.ev_hdr.size, 544 + 24);
    struct kvmi_event_pf p;
    memcpy(&p, S.ev_body + 544, sizeof(p));
    assert_int_equal(p.gpa, 0x3000);
    assert_int_equal(p.gva, 0xffff800000003000);
    assert_int_equal(p.access, 2);
    assert_int_equal(F.ss_on[1], 1); /* RETRY + singlestep starts MTF */
    arm(KVMI_EVENT_ACTION_CONTINUE, NULL, 0);
    assert_int_equal(kvmi_event_singlestep(&VM, 1), KVMI_V_CONTINUE);
    assert_int_equal(F.ss_on[1], 0);
    assert_int_equal(S.ev_hdr.size, 544);

    /* ctx_size above 256 ends the session */
    want.ctx_size = 300;
    arm(KVMI_EVENT_ACTION_CONTINUE, &want, sizeof(want));
    assert_int_equal(kvmi_event_pf(&VM, 1, 0x3000, 0, 1, &rpl), KVMI_V_CONTINUE);
    assert_true(F.closed);
}

static void test_other_events_payloads_and_actions(void **state)
{
    (void)state;
    setup2();
    const uint16_t ids[] = {KVMI_EVENT_BREAKPOINT, KVMI_EVENT_HYPERCALL, KVMI_EVENT_TRAP,
                            KVMI_EVENT_DESCRIPTOR};
    uint64_t rax = 1;
    assert_int_equal(kvmi_event_hypercall(&VM, 0, &rax), KVMI_V_NONE);
    assert_int_equal(rax, (uint64_t)-1000);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(control_events(0, ids[i], 1), 0);

    arm(KVMI_EVENT_ACTION_RETRY, NULL, 0);
    assert_int_equal(kvmi_event_breakpoint(&VM, 0, 0x1000, 1), KVMI_V_RETRY);
    assert_int_equal(S.ev_hdr.size, 544 + 16);
    struct kvmi_event_breakpoint bp;
    memcpy(&bp, S.ev_body + 544, sizeof(bp));
    assert_int_equal(bp.gpa, 0x1000);
    assert_int_equal(bp.insn_len, 1);

    arm(KVMI_EVENT_ACTION_CONTINUE, NULL, 0);
    assert_int_equal(kvmi_event_hypercall(&VM, 0, &rax), KVMI_V_CONTINUE);
    assert_int_equal(rax, 0);
    assert_int_equal(S.ev_hdr.size, 544);
    arm(KVMI_EVENT_ACTION_RETRY, NULL, 0); /* not an action of HYPERCALL */
    assert_int_equal(kvmi_event_hypercall(&VM, 0, &rax), KVMI_V_FAIL);

    arm(KVMI_EVENT_ACTION_CONTINUE, NULL, 0);
    assert_int_equal(kvmi_event_trap(&VM, 0, 3, 0x600, 0, 0x1234), KVMI_V_CONTINUE);
    struct kvmi_event_trap t;
    memcpy(&t, S.ev_body + 544, sizeof(t));
    assert_int_equal(S.ev_hdr.size, 544 + 24);
    assert_int_equal(t.vector, 3);
    assert_int_equal(t.type, 0x600);
    assert_int_equal(t.cr2, 0x1234);

    arm(KVMI_EVENT_ACTION_RETRY, NULL, 0);
    assert_int_equal(kvmi_event_descriptor(&VM, 0, KVMI_DESC_GDTR, true), KVMI_V_RETRY);
    struct kvmi_event_descriptor d;
    memcpy(&d, S.ev_body + 544, sizeof(d));
    assert_int_equal(S.ev_hdr.size, 544 + 8);
    assert_int_equal(d.descriptor, KVMI_DESC_GDTR);
    assert_int_equal(d.write, 1);

    struct kvm_regs r = {.rax = 34, .rdi = 24, .rsi = 0};
    assert_true(kvmi_is_event_hypercall(&r, 8));
    r.rsi = 1;
    assert_false(kvmi_is_event_hypercall(&r, 8));
    r = (struct kvm_regs){.rax = 34, .rbx = 24, .rcx = 0};
    assert_true(kvmi_is_event_hypercall(&r, 4));
}

static void drop(int vcpu)
{
    (void)vcpu;
    kvmi_disconnected(&VM);
}

static void test_session_end_while_waiting_continues(void **state)
{
    (void)state;
    setup2();
    assert_int_equal(control_events(0, KVMI_EVENT_XSETBV, 1), 0);
    /* the introspector never answers; the connection drops instead */
    F.on_poll = drop;
    assert_int_equal(kvmi_event_xsetbv(&VM, 0), KVMI_V_CONTINUE);
    assert_false(kvmi_transport_up(&VM));
}

/* ---- pause loop and CREATE_VCPU --------------------------------------------------- */

static int pauses_seen;
static void answer_pauses(int vcpu)
{
    struct kvmi_msg_hdr h;
    uint8_t b[600];
    while (next_msg(&h, b, sizeof(b))) {
        if (h.id != KVMI_EVENT)
            continue;
        struct kvmi_event ev;
        memcpy(&ev, b, sizeof(ev));
        assert_int_equal(ev.vcpu, vcpu);
        if (ev.event == KVMI_EVENT_PAUSE_VCPU)
            pauses_seen++;
        event_reply(h.seq, (uint16_t)vcpu, KVMI_EVENT_ACTION_CONTINUE, NULL, 0);
    }
}

static void test_pause_loop(void **state)
{
    (void)state;
    setup2();
    uint8_t b[16] = {0};
    b[8] = 1;
    uint32_t p[3];
    for (int i = 0; i < 3; i++)
        p[i] = cmd(KVMI_PAUSE_VCPU, b, 16);
    uint32_t s = vcmd(KVMI_GET_VCPU_INFO, 0, NULL, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(expect_reply(KVMI_PAUSE_VCPU, p[i], NULL, 0), 0);
    assert_true(no_more()); /* the reply comes before any PAUSE event */
    F.on_poll = answer_pauses;
    pauses_seen = 0;
    size_t mark = F.out_rd;
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(pauses_seen, 3);
    assert_int_equal(VM.vcpus[0].pause_requests, 0);
    /* the queued command was answered before the first PAUSE event */
    struct kvmi_msg_hdr h;
    memcpy(&h, F.out + mark, sizeof(h));
    assert_int_equal(h.id, KVMI_GET_VCPU_INFO);
    assert_int_equal(h.seq, s);
}

static void test_create_vcpu_event(void **state)
{
    (void)state;
    fake_setup(2, NULL, true);
    struct kvmi_control_vm_events e = {.event_id = KVMI_EVENT_CREATE_VCPU, .enable = 1};
    uint32_t s = cmd(KVMI_CONTROL_VM_EVENTS, &e, sizeof(e));
    assert_int_equal(expect_reply(KVMI_CONTROL_VM_EVENTS, s, NULL, 0), 0);
    arm(KVMI_EVENT_ACTION_CONTINUE, NULL, 0);
    kvmi_vcpu_service(&VM, 1); /* vCPU 1 sees its create job now */
    struct kvmi_event ev;
    memcpy(&ev, S.ev_body, sizeof(ev));
    assert_int_equal(ev.event, KVMI_EVENT_CREATE_VCPU);
    assert_int_equal(ev.vcpu, 1);
    assert_int_equal(S.ev_hdr.size, 544);
    /* only once per session */
    F.on_poll = NULL;
    kvmi_vcpu_service(&VM, 1);
    assert_true(no_more());
}

static void test_hotplugged_vcpu_sends_create_vcpu(void **state)
{
    (void)state;
    fake_setup(2, NULL, true);
    F.on_poll = NULL;
    kvmi_vcpu_service(&VM, 0); /* the hook's create jobs: event not enabled yet */
    kvmi_vcpu_service(&VM, 1);
    assert_true(no_more());
    struct kvmi_control_vm_events e = {.event_id = KVMI_EVENT_CREATE_VCPU, .enable = 1};
    uint32_t s = cmd(KVMI_CONTROL_VM_EVENTS, &e, sizeof(e));
    assert_int_equal(expect_reply(KVMI_CONTROL_VM_EVENTS, s, NULL, 0), 0);
    /* vCPU 2 appears: only it sends the event, once */
    F.nr_vcpus = 3;
    int kicks = F.kicks[2];
    kvmi_vcpu_added(&VM, 2);
    assert_int_equal(F.kicks[2], kicks + 1);
    assert_true(kvmi_vcpu_has_work(&VM, 2));
    kvmi_vcpu_service(&VM, 0);
    assert_true(no_more());
    arm(KVMI_EVENT_ACTION_CONTINUE, NULL, 0);
    kvmi_vcpu_service(&VM, 2);
    struct kvmi_event ev;
    memcpy(&ev, S.ev_body, sizeof(ev));
    assert_int_equal(ev.event, KVMI_EVENT_CREATE_VCPU);
    assert_int_equal(ev.vcpu, 2);
    F.on_poll = NULL;
    kvmi_vcpu_service(&VM, 2);
    assert_true(no_more());
    /* without a session nothing is queued */
    kvmi_disconnected(&VM);
    F.nr_vcpus = 4;
    kvmi_vcpu_added(&VM, 3);
    assert_int_equal(VM.vcpus[3].create_pending, 0);
    /* out of range: ignored */
    kvmi_vcpu_added(&VM, FAKE_VCPUS);
}

static void test_end_of_session_restores_intercepts(void **state)
{
    (void)state;
    setup2();
    assert_int_equal(control_events(0, KVMI_EVENT_BREAKPOINT, 1), 0);
    assert_int_equal(control_events(0, KVMI_EVENT_DESCRIPTOR, 1), 0);
    assert_int_equal(control_cr(0, 3, 1), 0);
    assert_int_equal(control_cr(0, 4, 1), 0);
    assert_int_equal(control_msr(0, 0x174, 1), 0);
    assert_int_equal(control_msr(0, 0xc0000081, 1), 0);
    kvmi_disconnected(&VM);
    kvmi_vcpu_service(&VM, 0);
    assert_int_equal(F.bp_on[0], 0);
    assert_int_equal(F.desc_on[0], 0);
    assert_int_equal(F.cr_on[0][3], 0);
    assert_int_equal(F.cr_on[0][4], 0);
    assert_int_equal(F.msr_on[0], 0);
    assert_false(kvmi_msr_monitored(&VM, 0, 0x174));
    assert_false(kvmi_event_enabled(&VM, 0, KVMI_EVENT_BREAKPOINT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vcpu_header_padding_is_fatal),
        cmocka_unit_test(test_vcpu_index_and_uninitialized),
        cmocka_unit_test(test_halted_vcpu_refuses_commands),
        cmocka_unit_test(test_jobs_of_a_vcpu_that_halts_are_refused),
        cmocka_unit_test(test_vcpu_command_is_a_job_run_by_the_vcpu),
        cmocka_unit_test(test_replies_off_sampled_at_dispatch),
        cmocka_unit_test(test_back_pressure_when_ring_full),
        cmocka_unit_test(test_control_events_rules),
        cmocka_unit_test(test_control_cr_and_msr),
        cmocka_unit_test(test_get_registers),
        cmocka_unit_test(test_cpuid_xsave_mtrr_inject),
        cmocka_unit_test(test_cpuid_with_replies_off_is_fatal),
        cmocka_unit_test(test_set_registers_outside_event_dropped),
        cmocka_unit_test(test_cr_event_and_reply),
        cmocka_unit_test(test_set_registers_applied_at_reply),
        cmocka_unit_test(test_event_reply_deadline),
        cmocka_unit_test(test_fatal_event_replies),
        cmocka_unit_test(test_unexpected_event_reply_is_fatal),
        cmocka_unit_test(test_pf_event_and_singlestep),
        cmocka_unit_test(test_other_events_payloads_and_actions),
        cmocka_unit_test(test_session_end_while_waiting_continues),
        cmocka_unit_test(test_pause_loop),
        cmocka_unit_test(test_create_vcpu_event),
        cmocka_unit_test(test_hotplugged_vcpu_sends_create_vcpu),
        cmocka_unit_test(test_end_of_session_restores_intercepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
