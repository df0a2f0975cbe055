/*
 * test_kvmi_fake.c - the fake platform of test_kvmi_fake.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_kvmi_fake.h"

struct fake F;
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

/* ---- kvmi_arch.h ---------------------------------------------------------- */

unsigned kvmi_arch_vcpu_count(struct kvmi_vm *vm)
{
    (void)vm;
    return F.nr_vcpus;
}
bool kvmi_arch_vcpu_uninitialized(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm;
    return F.uninit[vcpu];
}
int kvmi_arch_get_regs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_regs *regs)
{
    (void)vm;
    *regs = F.regs[vcpu];
    return 0;
}
int kvmi_arch_set_regs(struct kvmi_vm *vm, unsigned vcpu, const struct kvm_regs *regs)
{
    (void)vm;
    F.regs[vcpu] = *regs;
    return 0;
}
int kvmi_arch_get_sregs(struct kvmi_vm *vm, unsigned vcpu, struct kvm_sregs *sregs)
{
    (void)vm;
    *sregs = F.sregs[vcpu];
    return 0;
}
int kvmi_arch_get_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, uint64_t *value)
{
    (void)vm;
    if (msr == 0xdead)
        return -KVM_EINVAL;
    *value = ((uint64_t)vcpu << 32) | msr;
    return 0;
}
int kvmi_arch_get_cpuid(struct kvmi_vm *vm, unsigned vcpu, uint32_t function, uint32_t index,
                        struct kvmi_get_cpuid_reply *out)
{
    (void)vm, (void)vcpu;
    if (function > 0xd)
        return -KVM_ENOENT;
    *out = (struct kvmi_get_cpuid_reply){function, index, 3, 4};
    return 0;
}
int kvmi_arch_get_xsave(struct kvmi_vm *vm, unsigned vcpu, struct kvm_xsave *out)
{
    (void)vm;
    for (unsigned i = 0; i < 1024; i++)
        out->region[i] = i + vcpu;
    return 0;
}
int kvmi_arch_get_mtrr_type(struct kvmi_vm *vm, unsigned vcpu, uint64_t gpa, uint8_t *type)
{
    (void)vm, (void)vcpu;
    *type = gpa < sizeof(F.mem) ? 6 : 0;
    return 0;
}
int kvmi_arch_inject_exception(struct kvmi_vm *vm, unsigned vcpu, uint8_t nr, bool has_error,
                               uint32_t error_code, uint64_t address)
{
    (void)vm, (void)nr, (void)has_error, (void)error_code, (void)address;
    F.injected[vcpu]++;
    return 0;
}
int kvmi_arch_control_cr(struct kvmi_vm *vm, unsigned vcpu, unsigned cr, bool enable)
{
    (void)vm;
    F.cr_on[vcpu][cr] += enable ? 1 : -1;
    return 0;
}
int kvmi_arch_control_msr(struct kvmi_vm *vm, unsigned vcpu, uint32_t msr, bool enable)
{
    (void)vm, (void)msr;
    F.msr_on[vcpu] += enable ? 1 : -1;
    return 0;
}
int kvmi_arch_control_desc(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    if (F.desc_unsupported)
        return -KVM_EOPNOTSUPP;
    F.desc_on[vcpu] += enable ? 1 : -1;
    return 0;
}
int kvmi_arch_control_bp(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    F.bp_on[vcpu] += enable ? 1 : -1;
    return 0;
}
int kvmi_arch_control_singlestep(struct kvmi_vm *vm, unsigned vcpu, bool enable)
{
    (void)vm;
    F.ss_on[vcpu] += enable ? 1 : -1;
    return 0;
}
uint64_t kvmi_arch_max_gfn(struct kvmi_vm *vm)
{
    (void)vm;
    return FAKE_PAGES - 1;
}
int kvmi_arch_read_phys(struct kvmi_vm *vm, uint64_t gpa, void *buf, size_t size)
{
    (void)vm;
    if (gpa >= sizeof(F.mem))
        return -KVM_ENOENT;
    memcpy(buf, F.mem + gpa, size);
    return 0;
}
int kvmi_arch_write_phys(struct kvmi_vm *vm, uint64_t gpa, const void *buf, size_t size)
{
    (void)vm;
    if (gpa >= sizeof(F.mem))
        return -KVM_ENOENT;
    memcpy(F.mem + gpa, buf, size);
    return 0;
}
int kvmi_arch_set_page_access(struct kvmi_vm *vm, uint64_t gfn, uint8_t access)
{
    (void)vm;
    if (gfn >= FAKE_PAGES)
        return -KVM_EINVAL;
    F.access[gfn] = access;
    return 0;
}
uint64_t kvmi_arch_tsc_hz(struct kvmi_vm *vm)
{
    (void)vm;
    return 1234567890;
}
uint64_t kvmi_arch_random(struct kvmi_vm *vm)
{
    (void)vm;
    return 0x1122334455667788ull;
}
void kvmi_arch_crash(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm, (void)vcpu;
    F.crashes++;
}
void kvmi_arch_kick(struct kvmi_vm *vm, unsigned vcpu, bool wait)
{
    (void)vm;
    F.kicks[vcpu]++;
    if (wait)
        F.kick_waits[vcpu]++;
}
void kvmi_arch_poll(struct kvmi_vm *vm, int vcpu)
{
    (void)vm;
    F.polls++;
    if (F.polls > 100000)
        fail_msg("engine polls forever (vcpu %d)", vcpu);
    if (vcpu >= 0 && F.on_poll)
        F.on_poll(vcpu);
}
void kvmi_arch_relax(struct kvmi_vm *vm)
{
    /* single-threaded: the send lock is never found taken */
    (void)vm;
    fail_msg("send lock contended in a single-threaded test");
}
int kvmi_arch_send(struct kvmi_vm *vm, const void *msg, size_t len)
{
    (void)vm;
    if (F.send_eagain > 0) {
        F.send_eagain--;
        return -KVM_EAGAIN;
    }
    assert_true(F.out_len + len <= sizeof(F.out));
    memcpy(F.out + F.out_len, msg, len);
    F.out_len += len;
    return 0;
}
void kvmi_arch_close(struct kvmi_vm *vm)
{
    (void)vm;
    F.closed = true;
}
void kvmi_arch_trace(struct kvmi_vm *vm, bool dir_in, const void *msg, size_t len)
{
    (void)vm, (void)dir_in, (void)msg, (void)len;
}
void kvmi_arch_log(struct kvmi_vm *vm, const char *what, int64_t value)
{
    (void)vm, (void)what, (void)value;
}
