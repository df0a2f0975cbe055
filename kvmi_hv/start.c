/*
 * start.c - the bare-metal KVMI binding's session: the engine started on the BSP
 * over the transport (link.c), the engine's sends and closes, its
 * diagnostics, and the hooks handed to vmx/ (kvmi_hv.h).  docs/kvmi-hv.md is
 * the design.
 */
#include <string.h>

#include "kvmi_hv.h"
#include "log.h"
#include "internal.h"

struct kvmi_vm g_kvmi;
struct net_kvmi khv_link;
bool khv_running;
volatile uint32_t khv_crashed;
volatile uint32_t khv_starved_cpu, khv_unhook_cpu;
spinlock_t khv_ept_lock;
static struct kvmi_rights_entry khv_rights_store[RIGHTS_CAP];
struct kvmi_rights khv_rights;
struct hv_vcpu khv[BI_MAX_CPUS];

bool kvmi_hv_on(void)
{
    return khv_running;
}

/* ---- start ------------------------------------------------------------------------ */

/* Bytes of a "12345678-..." or plain-hex UUID already parsed by config: none here;
 * without one, a stable UUID from the NIC-independent facts we have. */
static void default_uuid(uint8_t uuid[16], const struct boot_info *bi)
{
    uint64_t a = 0x48564b564d49ull ^ bi->region_base, b = bi->tsc_hz ^ ((uint64_t)bi->ncpus << 56);
    memcpy(uuid, &a, 8);
    memcpy(uuid + 8, &b, 8);
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4 layout */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}

void kvmi_hv_start(struct boot_info *bi)
{
    const struct hv_config *c = &bi->config;
    if (!net_up() || c->net_selftest) {
        log_info("kvmi: no introspection (%s)", net_up() ? "net_selftest" : "no network");
        return;
    }
    unsigned n = g_vmx.ncpus;
    size_t vbytes = sizeof(struct kvmi_vcpu) * n;
    struct kvmi_vcpu *vcpus = page_alloc(&g_pages, (vbytes + PAGE_SIZE - 1) / PAGE_SIZE);
    size_t pbytes = sizeof(struct kvmi_page_slot) * PAGE_CAP;
    struct kvmi_page_slot *pages = page_alloc(&g_pages, (pbytes + PAGE_SIZE - 1) / PAGE_SIZE);
    bool ok = vcpus && pages;
    for (unsigned i = 0; ok && i < n; i++)
        ok = (khv[i].xsave = page_alloc(&g_pages, 1)) != NULL;
    if (!ok) {
        log_error("kvmi: not enough reserved memory for %u vCPU(s); no introspection", n);
        return;
    }
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    if (c->has_uuid)
        memcpy(cfg.uuid, c->uuid, 16);
    else
        default_uuid(cfg.uuid, bi);
    strncpy(cfg.name, c->name[0] ? c->name : "hv", sizeof(cfg.name) - 1);
    cfg.start_time = 0; /* no wall clock in VMX root (QEMU kvmi-v6 sends 0 too) */
    cfg.reply_timeout_ms = c->reply_timeout_ms;
    cfg.send_timeout_ms = c->send_timeout_ms;
    cfg.handshake_timeout_ms = c->handshake_timeout_ms;
    if (c->has_key) {
        cfg.key_len = 0;
        while (cfg.key_len < sizeof(c->key) && c->key[cfg.key_len])
            cfg.key_len++;
        if (cfg.key_len > KVMI_KEY_MAX)
            cfg.key_len = KVMI_KEY_MAX;
        memcpy(cfg.key, c->key, cfg.key_len);
    }
    spin_init(&khv_ept_lock);
    kvmi_rights_init(&khv_rights, khv_rights_store, RIGHTS_CAP);
    kvmi_init(&g_kvmi, &cfg, NULL, vcpus, n, pages, PAGE_CAP);
    if (net_kvmi_attach(&khv_link, &g_kvmi)) {
        log_warn("kvmi: the transport could not be opened; no introspection");
        return;
    }
    khv_running = true;
    log_info("kvmi: engine up for %u vCPU(s) (%llu KiB), name '%s', %s", n,
             (unsigned long long)((vbytes + pbytes) >> 10), cfg.name,
             cfg.key_len ? "keyed" : "keyless");
}

/* ---- transport -------------------------------------------------------------------------- */

int kvmi_arch_send(struct kvmi_vm *vm, const void *msg, size_t len)
{
    (void)vm;
    if (__atomic_load_n(&khv_starved_cpu, __ATOMIC_ACQUIRE) == me1()) {
        __atomic_store_n(&khv_starved_cpu, 0, __ATOMIC_RELEASE);
        log_warn("kvmi: send queue full in the receive context (introspector not reading): "
                 "closing");
        net_kvmi_close(&khv_link);
        return -KVM_EFAULT;
    }
    return net_kvmi_send(&khv_link, msg, len);
}

void kvmi_arch_close(struct kvmi_vm *vm)
{
    (void)vm;
    net_kvmi_close(&khv_link);
}

/* ---- diagnostics ------------------------------------------------------------------------ */

void kvmi_arch_trace(struct kvmi_vm *vm, bool dir_in, const void *msg, size_t len)
{
    (void)vm;
    const struct kvmi_msg_hdr *h = msg;
    if (len >= sizeof(*h))
        log_debug("kvmi: %s id %u size %u seq %u", dir_in ? "in " : "out", h->id, h->size, h->seq);
}

void kvmi_arch_log(struct kvmi_vm *vm, const char *what, int64_t value)
{
    (void)vm;
    log_warn("kvmi: %s (%lld)", what, (long long)value);
}

/* ---- the hooks vmx/ calls (vmx_hooks.h) ----------------------------------------------- */

const struct vmx_hooks kvmi_hv_vmx_hooks = {
    .before_entry = kvmi_hv_before_entry,
    .cr_write = kvmi_hv_cr_write,
    .wrmsr = kvmi_hv_wrmsr,
    .xsetbv = kvmi_hv_xsetbv,
    .exception = kvmi_hv_exception,
    .vmcall = kvmi_hv_vmcall,
    .ept_violation = kvmi_hv_ept_violation,
    .mtf = kvmi_hv_mtf,
    .desc = kvmi_hv_desc,
    .unhook = kvmi_hv_unhook,
    .power = kvmi_hv_power,
};
