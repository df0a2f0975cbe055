/*
 * framing.c - kvmi_rx(): turns the byte stream into messages.
 *
 * Push-based so that both transports fit: the simulator's reader thread and
 * lwIP's receive callback hand over whatever arrived.  A message is copied
 * into vm->rx_buf (header, then hdr.size bytes) and dispatched once whole;
 * the bytes after hdr.size up to 512 are zeroed because KVM reads fixed-size
 * requests from a zero-filled buffer (spec §3.6): a short request reads as
 * zeros, never as stale data.  When a vCPU ring is full the complete message
 * stays in rx_buf and kvmi_rx() returns early; the transport keeps the rest.
 */
#include "internal.h"

#define HDR sizeof(struct kvmi_msg_hdr)

size_t kvmi_rx(struct kvmi_vm *vm, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t used = 0;

    /* Also called with len 0 whenever the transport may send: the place to
     * answer what a vCPU that halted meanwhile left in its ring. */
    if (kvmi_load(&vm->state) == KVMI_ST_ACTIVE)
        kvmi_refuse_halted_jobs(vm);
    if (vm->rx_pending) {
        if (kvmi_load(&vm->state) == KVMI_ST_ACTIVE && kvmi_dispatch(vm) == KVMI_DISP_BUSY)
            return 0;
        vm->rx_pending = false;
        vm->rx_have = 0;
    }

    while (used < len) {
        uint32_t st = kvmi_load(&vm->state);
        if (st == KVMI_ST_HANDSHAKE) {
            used += kvmi_handshake_rx(vm, p + used, len - used);
            continue;
        }
        if (st != KVMI_ST_ACTIVE)
            return len; /* closing or idle: nothing more is read */

        if (vm->rx_have < HDR) {
            size_t n = HDR - vm->rx_have;
            if (n > len - used)
                n = len - used;
            memcpy(vm->rx_buf + vm->rx_have, p + used, n);
            vm->rx_have += (uint32_t)n;
            used += n;
            if (vm->rx_have < HDR)
                break;
            struct kvmi_msg_hdr h;
            memcpy(&h, vm->rx_buf, HDR);
            if (h.size > KVMI_MSG_SIZE) {
                kvmi_fatal(vm, "message larger than KVMI_MSG_SIZE", h.size);
                return len;
            }
        }
        struct kvmi_msg_hdr h;
        memcpy(&h, vm->rx_buf, HDR);
        size_t need = HDR + h.size - vm->rx_have;
        size_t n = need < len - used ? need : len - used;
        memcpy(vm->rx_buf + vm->rx_have, p + used, n);
        vm->rx_have += (uint32_t)n;
        used += n;
        if (vm->rx_have < HDR + h.size)
            break;

        if (h.size < 512)
            memset(vm->rx_buf + HDR + h.size, 0, 512 - h.size);
        kvmi_arch_trace(vm, true, vm->rx_buf, HDR + h.size);
        if (kvmi_dispatch(vm) == KVMI_DISP_BUSY) {
            vm->rx_pending = true;
            return used;
        }
        vm->rx_have = 0;
    }
    return used;
}
