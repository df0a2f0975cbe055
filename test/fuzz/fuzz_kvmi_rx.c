/*
 * fuzz_kvmi_rx.c - libFuzzer target over the engine's receive path.
 *
 * Input: a sequence of (length byte, chunk) pairs fed to kvmi_rx() after a
 * completed handshake, with every vCPU's kvmi_vcpu_service() run between
 * chunks, so that framing across arbitrary splits, dispatch, VM commands,
 * vCPU jobs, the pause loop and event replies are all reached.  A vCPU that
 * waits for an event reply gets the next chunks from kvmi_arch_poll() (the
 * introspector "answers"); when the input runs out the connection ends.
 * The fake platform below keeps everything in static memory.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvmi/kvmi.h"
#include "kvmi/kvmi_arch.h"

#define NVCPUS 3
#define PAGES  16

static struct kvmi_vm vm;
static struct kvmi_vcpu vcpus[NVCPUS];
static struct kvmi_page_slot slots[32];
static uint8_t mem[PAGES * 4096];
static struct kvm_regs regs[NVCPUS];

static const uint8_t *in;
static size_t in_len, in_off;
static int depth;

/* feed the next chunk; false when the input is exhausted */
static bool feed_chunk(void)
{
    if (in_off >= in_len)
        return false;
    size_t n = (size_t)(in[in_off++] % 64) + 1;
    if (n > in_len - in_off)
        n = in_len - in_off;
    const uint8_t *p = in + in_off;
    in_off += n;
    size_t done = 0;
    for (int tries = 0; done < n && tries < 64; tries++) {
        done += kvmi_rx(&vm, p + done, n - done);
        if (done < n && depth == 0)
            for (unsigned v = 0; v < NVCPUS; v++)
                kvmi_vcpu_service(&vm, v);
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    kvmi_init(&vm, &cfg, NULL, vcpus, NVCPUS, slots, 32);
    memset(regs, 0, sizeof(regs));
    in = data;
    in_len = size;
    in_off = 0;
    depth = 0;
    kvmi_connected(&vm);
    struct kvmi_introspector2qemu r = {.struct_size = 24};
    kvmi_rx(&vm, &r, sizeof(r));
    while (feed_chunk()) {
        for (unsigned v = 0; v < NVCPUS; v++)
            kvmi_vcpu_service(&vm, v);
        /* an exit-time event now and then, to reach the event paths */
        uint64_t nv = in_off;
        kvmi_event_cr(&vm, in_off % NVCPUS, 3, 0, &nv);
        struct kvmi_event_pf_reply pf;
        kvmi_event_pf(&vm, in_off % NVCPUS, 0x1000, 0, 2, &pf);
    }
    kvmi_disconnected(&vm);
    for (unsigned v = 0; v < NVCPUS; v++)
        kvmi_vcpu_service(&vm, v);
    return 0;
}

/* ---- fake platform -------------------------------------------------------- */

unsigned kvmi_arch_vcpu_count(struct kvmi_vm *m)
{
    (void)m;
    return NVCPUS;
}
bool kvmi_arch_vcpu_uninitialized(struct kvmi_vm *m, unsigned v)
{
    (void)m;
    return v == 2; /* one AP never started: -EAGAIN paths */
}
int kvmi_arch_get_regs(struct kvmi_vm *m, unsigned v, struct kvm_regs *r)
{
    (void)m;
    *r = regs[v];
    return 0;
}
int kvmi_arch_set_regs(struct kvmi_vm *m, unsigned v, const struct kvm_regs *r)
{
    (void)m;
    regs[v] = *r;
    return 0;
}
int kvmi_arch_get_sregs(struct kvmi_vm *m, unsigned v, struct kvm_sregs *s)
{
    (void)m, (void)v;
    memset(s, 0, sizeof(*s));
    s->efer = 0xd01;
    s->cs.l = 1;
    return 0;
}
int kvmi_arch_get_msr(struct kvmi_vm *m, unsigned v, uint32_t msr, uint64_t *val)
{
    (void)m, (void)v;
    if (msr & 1)
        return -KVM_EINVAL;
    *val = msr;
    return 0;
}
int kvmi_arch_get_cpuid(struct kvmi_vm *m, unsigned v, uint32_t f, uint32_t i,
                        struct kvmi_get_cpuid_reply *o)
{
    (void)m, (void)v;
    if (f > 7)
        return -KVM_ENOENT;
    *o = (struct kvmi_get_cpuid_reply){f, i, 0, 0};
    return 0;
}
int kvmi_arch_get_xsave(struct kvmi_vm *m, unsigned v, struct kvm_xsave *o)
{
    (void)m, (void)v;
    memset(o, 0, sizeof(*o));
    return 0;
}
int kvmi_arch_get_mtrr_type(struct kvmi_vm *m, unsigned v, uint64_t gpa, uint8_t *t)
{
    (void)m, (void)v, (void)gpa;
    *t = 6;
    return 0;
}
int kvmi_arch_inject_exception(struct kvmi_vm *m, unsigned v, uint8_t nr, bool he, uint32_t ec,
                               uint64_t a)
{
    (void)m, (void)v, (void)nr, (void)he, (void)ec, (void)a;
    return 0;
}
int kvmi_arch_control_cr(struct kvmi_vm *m, unsigned v, unsigned cr, bool e)
{
    (void)m, (void)v, (void)cr, (void)e;
    return 0;
}
int kvmi_arch_control_msr(struct kvmi_vm *m, unsigned v, uint32_t msr, bool e)
{
    (void)m, (void)v, (void)msr, (void)e;
    return 0;
}
int kvmi_arch_control_desc(struct kvmi_vm *m, unsigned v, bool e)
{
    (void)m, (void)e;
    return v == 1 ? -KVM_EOPNOTSUPP : 0;
}
int kvmi_arch_control_bp(struct kvmi_vm *m, unsigned v, bool e)
{
    (void)m, (void)v, (void)e;
    return 0;
}
int kvmi_arch_control_singlestep(struct kvmi_vm *m, unsigned v, bool e)
{
    (void)m, (void)v, (void)e;
    return 0;
}
uint64_t kvmi_arch_max_gfn(struct kvmi_vm *m)
{
    (void)m;
    return PAGES - 1;
}
int kvmi_arch_read_phys(struct kvmi_vm *m, uint64_t gpa, void *b, size_t n)
{
    (void)m;
    if (gpa >= sizeof(mem) || n > sizeof(mem) - gpa)
        return -KVM_ENOENT;
    memcpy(b, mem + gpa, n);
    return 0;
}
int kvmi_arch_write_phys(struct kvmi_vm *m, uint64_t gpa, const void *b, size_t n)
{
    (void)m;
    if (gpa >= sizeof(mem) || n > sizeof(mem) - gpa)
        return -KVM_ENOENT;
    memcpy(mem + gpa, b, n);
    return 0;
}
int kvmi_arch_set_page_access(struct kvmi_vm *m, uint64_t gfn, uint8_t a)
{
    (void)m, (void)a;
    return gfn < PAGES ? 0 : -KVM_EINVAL;
}
uint64_t kvmi_arch_tsc_hz(struct kvmi_vm *m)
{
    (void)m;
    return 1;
}
uint64_t kvmi_arch_random(struct kvmi_vm *m)
{
    (void)m;
    return 42;
}
void kvmi_arch_crash(struct kvmi_vm *m, unsigned v)
{
    (void)m, (void)v;
}
void kvmi_arch_kick(struct kvmi_vm *m, unsigned v, bool w)
{
    (void)m, (void)v, (void)w;
}
void kvmi_arch_poll(struct kvmi_vm *m, int v)
{
    if (v < 0)
        return;
    /* a vCPU waits for its reply: the introspector sends more, or goes */
    depth++;
    bool more = depth < 8 && feed_chunk();
    depth--;
    if (!more)
        kvmi_disconnected(m);
}
void kvmi_arch_relax(struct kvmi_vm *m)
{
    /* single-threaded: the send lock can only be found taken by a bug */
    (void)m;
    abort();
}
int kvmi_arch_send(struct kvmi_vm *m, const void *msg, size_t len)
{
    (void)m;
    /* touch every byte so ASan sees out-of-bounds sends */
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += ((const uint8_t *)msg)[i];
    (void)sum;
    return 0;
}
void kvmi_arch_close(struct kvmi_vm *m)
{
    (void)m;
}
void kvmi_arch_trace(struct kvmi_vm *m, bool in_, const void *msg, size_t len)
{
    (void)m, (void)in_, (void)msg, (void)len;
}
void kvmi_arch_log(struct kvmi_vm *m, const char *w, int64_t v)
{
    (void)m, (void)w, (void)v;
}
