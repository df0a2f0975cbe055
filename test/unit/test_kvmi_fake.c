/*
 * test_kvmi_fake.c - the unit tests' side of the fake platform
 * (test_kvmi_fake.h): a fresh engine, scripted input, captured output; a
 * broken expectation of the fake (kvmi_fake_arch.c) fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_kvmi_fake.h"

struct kvmi_vm VM;
static struct kvmi_vcpu vcpus[FAKE_VCPUS];
static struct kvmi_page_slot slots[FAKE_SLOTS];

void fake_setup(unsigned nr_vcpus, const struct kvmi_config *cfg, bool handshake)
{
    struct kvmi_config def;
    if (!cfg) {
        kvmi_default_config(&def);
        cfg = &def;
    }
    memset(&F, 0, sizeof(F));
    F.nr_vcpus = nr_vcpus;
    memset(F.access, KVMI_PAGE_ACCESS_RWX, sizeof(F.access));
    for (unsigned i = 0; i < FAKE_VCPUS; i++) {
        F.regs[i].rip = 0x1000 + i;
        F.sregs[i].efer = 0xd01;
        F.sregs[i].cr0 = 0x80050033;
        F.sregs[i].cs.l = 1;
    }
    kvmi_init(&VM, cfg, &F, vcpus, FAKE_VCPUS, slots, FAKE_SLOTS);
    if (!handshake)
        return;
    assert_int_equal(kvmi_connected(&VM), 0);
    assert_int_equal(F.out_len, 96);
    F.out_len = F.out_rd = 0;
    struct kvmi_introspector2qemu r = {.struct_size = 24};
    assert_int_equal(feed(&r, sizeof(r)), sizeof(r));
    assert_true(kvmi_session_active(&VM));
}

size_t feed(const void *data, size_t len)
{
    return kvmi_rx(&VM, data, len);
}

size_t put_msg(uint8_t *buf, size_t at, uint16_t id, uint32_t seq, const void *body, size_t len)
{
    struct kvmi_msg_hdr h = {.id = id, .size = (uint16_t)len, .seq = seq};
    memcpy(buf + at, &h, sizeof(h));
    if (len)
        memcpy(buf + at + sizeof(h), body, len);
    return at + sizeof(h) + len;
}

static uint32_t next_seq = 1000;

uint32_t cmd(uint16_t id, const void *body, size_t len)
{
    static uint8_t buf[65536];
    uint32_t seq = ++next_seq;
    size_t n = put_msg(buf, 0, id, seq, body, len);
    assert_int_equal(feed(buf, n), n);
    return seq;
}

uint32_t vcmd(uint16_t id, uint16_t vcpu, const void *req, size_t len)
{
    uint8_t body[8192];
    struct kvmi_vcpu_hdr vh = {.vcpu = vcpu};
    memcpy(body, &vh, sizeof(vh));
    if (len)
        memcpy(body + sizeof(vh), req, len);
    return cmd(id, body, sizeof(vh) + len);
}

bool next_msg(struct kvmi_msg_hdr *h, uint8_t *body, size_t cap)
{
    if (F.out_rd + sizeof(*h) > F.out_len)
        return false;
    memcpy(h, F.out + F.out_rd, sizeof(*h));
    assert_true(F.out_rd + sizeof(*h) + h->size <= F.out_len);
    size_t n = h->size < cap ? h->size : cap;
    if (body && n)
        memcpy(body, F.out + F.out_rd + sizeof(*h), n);
    F.out_rd += sizeof(*h) + h->size;
    return true;
}

int expect_reply(uint16_t id, uint32_t seq, void *data, size_t len)
{
    struct kvmi_msg_hdr h;
    uint8_t body[16384];
    assert_true(next_msg(&h, body, sizeof(body)));
    assert_int_equal(h.id, id);
    assert_int_equal(h.seq, seq);
    assert_true(h.size >= 8);
    struct kvmi_error_code ec;
    memcpy(&ec, body, sizeof(ec));
    assert_int_equal(ec.padding, 0);
    if (ec.err)
        assert_int_equal(h.size, 8); /* no data on error */
    else if (data)
        memcpy(data, body + 8, len);
    return ec.err;
}

bool no_more(void)
{
    return F.out_rd == F.out_len;
}

void event_reply(uint32_t seq, uint16_t vcpu, uint8_t action, const void *spec, size_t len)
{
    uint8_t body[1024] = {0};
    struct kvmi_vcpu_hdr vh = {.vcpu = vcpu};
    struct kvmi_event_reply er = {.action = action};
    memcpy(body, &vh, 8);
    memcpy(body + 8, &er, 8);
    if (len)
        memcpy(body + 16, spec, len);
    uint8_t buf[1100];
    size_t n = put_msg(buf, 0, KVMI_EVENT_REPLY, seq, body, 16 + len);
    assert_int_equal(feed(buf, n), n);
}

void fake_fail(const char *what)
{
    fail_msg("%s", what);
}
