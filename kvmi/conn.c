/*
 * conn.c - the life of a session: setup, start after the handshake, fatal
 * errors, end of introspection (spec §2.4) and the unhook request (§2.5).
 *
 * Sessions are numbered (vm->gen, bumped at every start and every end).
 * Jobs, replies and events carry the number of the session they belong to,
 * so that nothing of an ended session leaks into the next one, and each vCPU
 * restores its own intercepts the next time it runs kvmi_vcpu_service()
 * (intercept controls live in per-core VMCSs, which only that core may
 * write).
 */
#include "internal.h"

void kvmi_default_config(struct kvmi_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->allow_commands = KVMI_KNOWN_COMMANDS;
    cfg->allow_events = KVMI_KNOWN_EVENTS;
}

int kvmi_config_allow(struct kvmi_config *cfg, bool command, int id, bool allow)
{
    const uint64_t known = command ? KVMI_KNOWN_COMMANDS : KVMI_KNOWN_EVENTS;
    const uint64_t always = command ? KVMI_BIT(KVMI_GET_VERSION) | KVMI_BIT(KVMI_CHECK_COMMAND) |
                                          KVMI_BIT(KVMI_CHECK_EVENT)
                                    : 0;
    if (id < -1)
        return -KVM_EINVAL;
    uint64_t set = id == -1 ? known : (id < 64 ? KVMI_BIT(id) & known : 0);
    if (!set)
        return -KVM_EINVAL;
    uint64_t *mask = command ? &cfg->allow_commands : &cfg->allow_events;
    if (allow) {
        *mask |= set;
        return 0;
    }
    if (id != -1 && (set & always))
        return -KVM_EPERM;
    *mask &= ~(set & ~always);
    return 0;
}

void kvmi_init(struct kvmi_vm *vm, const struct kvmi_config *cfg, void *arch,
               struct kvmi_vcpu *vcpus, unsigned max_vcpus, struct kvmi_page_slot *pages,
               uint32_t page_cap)
{
    memset(vm, 0, sizeof(*vm));
    vm->cfg = *cfg;
    if (vm->cfg.key_len > KVMI_KEY_MAX)
        vm->cfg.key_len = KVMI_KEY_MAX;
    vm->arch = arch;
    vm->vcpus = vcpus;
    vm->max_vcpus = max_vcpus;
    vm->pages = pages;
    vm->page_cap = page_cap;
    spin_init(&vm->send_lock);
    spin_init(&vm->pages_lock);
    memset(vcpus, 0, sizeof(*vcpus) * max_vcpus);
    for (unsigned i = 0; i < max_vcpus; i++)
        spin_init(&vcpus[i].ring_lock);
    memset(pages, 0, sizeof(*pages) * page_cap);
    vm->state = KVMI_ST_IDLE;
}

bool kvmi_session_active(struct kvmi_vm *vm)
{
    return kvmi_load(&vm->state) == KVMI_ST_ACTIVE;
}

bool kvmi_transport_up(struct kvmi_vm *vm)
{
    return kvmi_load(&vm->state) != KVMI_ST_IDLE;
}

int kvmi_connected(struct kvmi_vm *vm)
{
    if (kvmi_load(&vm->state) != KVMI_ST_IDLE)
        kvmi_disconnected(vm);
    vm->rx_have = 0;
    vm->rx_pending = false;
    vm->hs_have = 0;
    vm->hs_size = 0;
    vm->hs_start_ms = kvmi_arch_now_ms(vm);
    kvmi_store(&vm->state, KVMI_ST_HANDSHAKE);
    int rc = kvmi_handshake_send(vm);
    if (rc) {
        kvmi_fatal(vm, "handshake send failed", rc);
        return rc;
    }
    return 0;
}

void kvmi_session_start(struct kvmi_vm *vm)
{
    /* The host policy is in force before the first message is read, unlike
     * QEMU's HOOK-then-allow window (spec §2.3). */
    vm->allow_cmds = (vm->cfg.allow_commands & KVMI_KNOWN_COMMANDS) | KVMI_BIT(KVMI_GET_VERSION) |
                     KVMI_BIT(KVMI_CHECK_COMMAND) | KVMI_BIT(KVMI_CHECK_EVENT);
    vm->allow_events = vm->cfg.allow_events & KVMI_KNOWN_EVENTS;
    vm->replies_disabled = false;
    kvmi_store(&vm->vm_events, 0);
    kvmi_store(&vm->ev_seq, 0);
    vm->rx_have = 0;
    kvmi_send_lock(vm);
    __atomic_add_fetch(&vm->gen, 1, __ATOMIC_ACQ_REL);
    kvmi_store(&vm->state, KVMI_ST_ACTIVE);
    kvmi_send_unlock(vm);
    /* HOOK queues a "create vCPU" job on every existing vCPU. */
    unsigned n = kvmi_arch_vcpu_count(vm);
    for (unsigned i = 0; i < n && i < vm->max_vcpus; i++) {
        kvmi_store(&vm->vcpus[i].create_pending, 1);
        kvmi_arch_kick(vm, i, false);
    }
}

void kvmi_vcpu_added(struct kvmi_vm *vm, unsigned vcpu)
{
    /* As KVM's vCPU creation with introspection active: a "create vCPU" job
     * runs before the first guest entry.  Without a session nothing is
     * queued: the next session's start covers every existing vCPU. */
    if (vcpu >= vm->max_vcpus || !kvmi_session_active(vm))
        return;
    kvmi_store(&vm->vcpus[vcpu].create_pending, 1);
    kvmi_arch_kick(vm, vcpu, false);
}

void kvmi_fatal(struct kvmi_vm *vm, const char *why, int64_t value)
{
    kvmi_arch_log(vm, why, value);
    kvmi_send_lock(vm);
    uint32_t st = kvmi_load(&vm->state);
    bool close = st == KVMI_ST_ACTIVE || st == KVMI_ST_HANDSHAKE;
    if (close)
        kvmi_store(&vm->state, KVMI_ST_CLOSING);
    kvmi_send_unlock(vm);
    if (close) {
        /* waiting vCPUs see the state change and continue as CONTINUE */
        kvmi_arch_close(vm);
        unsigned n = kvmi_arch_vcpu_count(vm);
        for (unsigned i = 0; i < n && i < vm->max_vcpus; i++)
            kvmi_arch_kick(vm, i, false);
    }
}

bool kvmi_deadline_passed(struct kvmi_vm *vm, uint64_t start_ms, uint32_t timeout_ms)
{
    return timeout_ms && kvmi_arch_now_ms(vm) - start_ms >= timeout_ms;
}

void kvmi_check_deadlines(struct kvmi_vm *vm)
{
    if (kvmi_load(&vm->state) == KVMI_ST_HANDSHAKE &&
        kvmi_deadline_passed(vm, vm->hs_start_ms, vm->cfg.handshake_timeout_ms))
        kvmi_fatal(vm, "handshake timed out (ms)", vm->cfg.handshake_timeout_ms);
}

void kvmi_disconnected(struct kvmi_vm *vm)
{
    kvmi_send_lock(vm);
    kvmi_store(&vm->state, KVMI_ST_IDLE);
    __atomic_add_fetch(&vm->gen, 1, __ATOMIC_ACQ_REL);
    kvmi_send_unlock(vm);

    vm->rx_have = 0;
    vm->rx_pending = false;
    vm->replies_disabled = false;
    kvmi_store(&vm->vm_events, 0);
    unsigned n = kvmi_arch_vcpu_count(vm);
    for (unsigned i = 0; i < vm->max_vcpus; i++) {
        struct kvmi_vcpu *v = &vm->vcpus[i];
        kvmi_store(&v->pause_requests, 0);
        kvmi_store(&v->create_pending, 0);
        kvmi_job_clear(v);
    }
    kvmi_page_reset_all(vm);
    /* wake every vCPU so that waits end and intercepts are restored now */
    for (unsigned i = 0; i < n && i < vm->max_vcpus; i++)
        kvmi_arch_kick(vm, i, false);
}

int kvmi_unhook_request(struct kvmi_vm *vm)
{
    if (!kvmi_session_active(vm))
        return -KVM_EFAULT;
    if (!(kvmi_load(&vm->vm_events) & KVMI_BIT(KVMI_EVENT_UNHOOK)))
        return -KVM_ENOENT;
    return kvmi_send_unhook_event(vm) ? -KVM_ENOENT : 0;
}
