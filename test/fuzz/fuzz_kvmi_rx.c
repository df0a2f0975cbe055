/*
 * fuzz_kvmi_rx.c - libFuzzer target over the engine's receive path.
 *
 * Input: a sequence of (length byte, chunk) pairs fed to kvmi_rx() after a
 * completed handshake, with every vCPU's kvmi_vcpu_service() run between
 * chunks, so that framing across arbitrary splits, dispatch, VM commands,
 * vCPU jobs, the pause loop and event replies are all reached.  A vCPU that
 * waits for an event reply gets the next chunks from kvmi_arch_poll() (the
 * introspector "answers"); when the input runs out the connection ends.
 * The platform is the unit tests' fake (test/unit/kvmi_fake_arch.c), set up
 * for the paths a fuzzer should reach: one vCPU never started (-EAGAIN), one
 * without descriptor exiting, odd MSRs unreadable; its output capture
 * starts over when full.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvmi/kvmi.h"
#include "kvmi/kvmi_arch.h"
#include "test_kvmi_fake.h"

#define NVCPUS 3

static struct kvmi_vm vm;
static struct kvmi_vcpu vcpus[NVCPUS];
static struct kvmi_page_slot slots[32];

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

/* The single-threaded fake can only fail by an engine bug: let the fuzzer see it. */
void fake_fail(const char *what)
{
    (void)what;
    abort();
}

/* A vCPU waits for its reply: the introspector sends more, or goes. */
static void on_poll(int vcpu)
{
    (void)vcpu;
    depth++;
    bool more = depth < 8 && feed_chunk();
    depth--;
    if (!more)
        kvmi_disconnected(&vm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    memset(&F, 0, sizeof(F));
    F.nr_vcpus = NVCPUS;
    F.uninit[2] = true;        /* one AP never started: -EAGAIN paths */
    F.desc_unsupported_on = 2; /* vCPU 1 lacks descriptor-table exiting */
    F.odd_msrs_invalid = true;
    F.out_wrap = true;
    F.on_poll = on_poll;
    for (unsigned v = 0; v < NVCPUS; v++) {
        F.sregs[v].efer = 0xd01;
        F.sregs[v].cs.l = 1;
    }
    memset(F.access, KVMI_PAGE_ACCESS_RWX, sizeof(F.access));
    kvmi_init(&vm, &cfg, &F, vcpus, NVCPUS, slots, 32);
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
