/*
 * handshake.c - the device-manager side of the pre-KVMI handshake
 * (spec §2.2) and the optional shared-key check.
 *
 * We send struct kvmi_qemu2introspector (96 bytes: UUID, start time, name)
 * and read the introspector's struct kvmi_introspector2qemu, consuming
 * whatever struct_size it announces (24 to 64 KiB).
 *
 * Key scheme (docs/protocol.md): with a key configured, the otherwise unused
 * u32 `padding` at offset 20 carries a fresh random nonce, and the
 * introspector must answer cookie_hash = HMAC-SHA1(key, the 96 bytes we sent).
 * A wrong or missing proof closes the connection before any command is
 * read.  Without a key the cookie is ignored, as QEMU kvmi-v6 does, so
 * libkvmi kvmi-v6 works unchanged.
 */
#include "internal.h"
#include "sha1.h"

#define HS_REPLY_MIN sizeof(struct kvmi_introspector2qemu)
#define HS_REPLY_MAX (64u * 1024u)

int kvmi_handshake_send(struct kvmi_vm *vm)
{
    struct kvmi_qemu2introspector *hs = &vm->hs_sent;
    memset(hs, 0, sizeof(*hs));
    hs->struct_size = sizeof(*hs);
    memcpy(hs->uuid, vm->cfg.uuid, sizeof(hs->uuid));
    hs->padding = vm->cfg.key_len ? (uint32_t)kvmi_arch_random(vm) : 0;
    hs->start_time = vm->cfg.start_time;
    memcpy(hs->name, vm->cfg.name, sizeof(hs->name));
    hs->name[sizeof(hs->name) - 1] = 0;

    for (;;) {
        kvmi_send_lock(vm);
        int rc = kvmi_arch_send(vm, hs, sizeof(*hs));
        kvmi_send_unlock(vm);
        if (rc != -KVM_EAGAIN)
            return rc;
        if (kvmi_deadline_passed(vm, vm->hs_start_ms, vm->cfg.handshake_timeout_ms))
            return -KVM_EFAULT; /* kvmi_connected ends the session */
        kvmi_arch_poll(vm, -1);
    }
}

static bool cookie_ok(struct kvmi_vm *vm)
{
    uint8_t want[SHA1_DIGEST_SIZE];
    hmac_sha1(vm->cfg.key, vm->cfg.key_len, &vm->hs_sent, sizeof(vm->hs_sent), want);
    const uint8_t *got = vm->hs_reply + offsetof(struct kvmi_introspector2qemu, cookie_hash);
    uint8_t diff = 0; /* constant time: no early exit on the first wrong byte */
    for (int i = 0; i < SHA1_DIGEST_SIZE; i++)
        diff |= (uint8_t)(want[i] ^ got[i]);
    return diff == 0;
}

size_t kvmi_handshake_rx(struct kvmi_vm *vm, const uint8_t *data, size_t len)
{
    size_t used = 0;
    while (used < len) {
        if (vm->hs_have < sizeof(uint32_t)) {
            vm->hs_reply[vm->hs_have++] = data[used++];
            if (vm->hs_have == sizeof(uint32_t)) {
                memcpy(&vm->hs_size, vm->hs_reply, sizeof(uint32_t));
                if (vm->hs_size < HS_REPLY_MIN || vm->hs_size > HS_REPLY_MAX) {
                    kvmi_fatal(vm, "bad handshake struct_size", vm->hs_size);
                    return len;
                }
            }
            continue;
        }
        size_t n = vm->hs_size - vm->hs_have;
        if (n > len - used)
            n = len - used;
        /* keep what we know (the first 24 bytes), skip any extension */
        for (size_t i = 0; i < n; i++) {
            uint32_t at = vm->hs_have + (uint32_t)i;
            if (at < sizeof(vm->hs_reply))
                vm->hs_reply[at] = data[used + i];
        }
        vm->hs_have += (uint32_t)n;
        used += n;
        if (vm->hs_have == vm->hs_size) {
            if (vm->cfg.key_len && !cookie_ok(vm)) {
                kvmi_fatal(vm, "handshake key proof rejected", 0);
                return len;
            }
            kvmi_session_start(vm);
            return used;
        }
    }
    return used;
}
