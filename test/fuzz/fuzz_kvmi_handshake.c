/*
 * fuzz_kvmi_handshake.c - libFuzzer target over the pre-KVMI handshake
 * (kvmi/handshake.c), keyed and keyless: the bytes before any command are
 * the least trusted the engine reads (anyone who reaches the port sends
 * them).  fuzz_kvmi_rx starts after a completed handshake; this one starts
 * at the connection.
 *
 * Input: byte 0 bit 0 = a key is configured, bit 1 = the target sends a
 * correct reply first (struct_size 24 + byte 1, the HMAC-SHA1 proof when
 * keyed) so the fuzzer also reaches what follows a handshake; then (length
 * byte, chunk) pairs fed to kvmi_rx() with the vCPU serviced between them.
 * The platform is the unit tests' fake (test/unit/kvmi_fake_arch.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvmi/kvmi.h"
#include "kvmi/kvmi_arch.h"
#include "kvmi/sha1.h"
#include "test_kvmi_fake.h"

static struct kvmi_vm vm;
static struct kvmi_vcpu vcpus[1];
static struct kvmi_page_slot slots[4];
static const char key[] = "fuzzing-key-0123";

void fake_fail(const char *what)
{
    (void)what;
    abort();
}

static void on_poll(int vcpu)
{
    (void)vcpu;
    kvmi_disconnected(&vm); /* an event waits for a reply: the introspector is gone */
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 2)
        return 0;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    if (d[0] & 1) {
        memcpy(cfg.key, key, sizeof(key) - 1);
        cfg.key_len = sizeof(key) - 1;
    }
    memset(&F, 0, sizeof(F));
    F.nr_vcpus = 1;
    F.out_wrap = true;
    F.on_poll = on_poll;
    kvmi_init(&vm, &cfg, &F, vcpus, 1, slots, 4);
    kvmi_connected(&vm);
    if (d[0] & 2) {
        uint8_t reply[24 + 255];
        memset(reply, 0, sizeof(reply));
        uint32_t struct_size = 24u + d[1];
        memcpy(reply, &struct_size, 4);
        if (cfg.key_len)
            hmac_sha1(cfg.key, cfg.key_len, &vm.hs_sent, sizeof(vm.hs_sent), reply + 4);
        kvmi_rx(&vm, reply, struct_size);
    }
    for (size_t i = 2; i < n;) {
        size_t len = (size_t)(d[i++] % 64) + 1;
        if (len > n - i)
            len = n - i;
        size_t done = 0;
        for (int tries = 0; done < len && tries < 64; tries++) {
            done += kvmi_rx(&vm, d + i + done, len - done);
            kvmi_vcpu_service(&vm, 0);
        }
        i += len;
    }
    kvmi_disconnected(&vm);
    kvmi_vcpu_service(&vm, 0);
    return 0;
}
