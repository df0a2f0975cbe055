/*
 * vm_cmds.c - commands answered by the receive context (spec §4.1 "W"):
 * version and permission queries, guest info, VM events, guest memory,
 * page access, the features we lack (SPP, remote-mapping tokens) and reply
 * suppression.  Each handler checks in the order given by the spec and
 * answers through kvmi_reply(), which applies the replies-off rules.
 */
#include "internal.h"

#define PAGE_SIZE 4096u

struct ctx {
    struct kvmi_vm *vm;
    const struct kvmi_msg_hdr *h;
    const uint8_t *body;
};

static void reply(struct ctx *c, int err, size_t len, bool always_data)
{
    kvmi_reply(c->vm, c->vm->gen, c->vm->out, c->h, err, len, c->vm->replies_disabled, always_data,
               false, -1);
}

static void get_version(struct ctx *c)
{
    struct kvmi_get_version_reply r = {.version = KVMI_VERSION};
    memcpy(kvmi_reply_data(c->vm->out), &r, sizeof(r));
    reply(c, 0, sizeof(r), true);
}

static void check_id(struct ctx *c, uint64_t mask)
{
    struct kvmi_check_command req; /* same layout as kvmi_check_event */
    memcpy(&req, c->body, sizeof(req));
    int err;
    if (req.padding1 || req.padding2)
        err = -KVM_EINVAL;
    else
        err = (req.id < 64 && (mask & KVMI_BIT(req.id))) ? 0 : -KVM_EPERM;
    reply(c, err, 0, false);
}

static void get_guest_info(struct ctx *c)
{
    struct kvmi_get_guest_info_reply r = {.vcpu_count = kvmi_arch_vcpu_count(c->vm)};
    memcpy(kvmi_reply_data(c->vm->out), &r, sizeof(r));
    reply(c, 0, sizeof(r), true);
}

static void control_vm_events(struct ctx *c)
{
    struct kvmi_control_vm_events req;
    memcpy(&req, c->body, sizeof(req));
    int err = 0;
    if (req.padding1 || req.padding2)
        err = -KVM_EINVAL;
    else if (req.event_id != KVMI_EVENT_UNHOOK && req.event_id != KVMI_EVENT_CREATE_VCPU)
        err = -KVM_EINVAL;
    else if (!(c->vm->allow_events & KVMI_BIT(req.event_id)))
        err = -KVM_EPERM;
    else if (req.enable)
        __atomic_or_fetch(&c->vm->vm_events, (uint32_t)KVMI_BIT(req.event_id), __ATOMIC_ACQ_REL);
    else
        __atomic_and_fetch(&c->vm->vm_events, ~(uint32_t)KVMI_BIT(req.event_id), __ATOMIC_ACQ_REL);
    reply(c, err, 0, false);
}

/* KVM-VMI kvmi-v6 rule (what libkvmi kvmi-v6 was written against): a bad
 * range is a -22 reply, not a closed socket. */
static bool bad_range(uint64_t gpa, uint64_t size)
{
    return size == 0 || size > PAGE_SIZE || (gpa & (PAGE_SIZE - 1)) + size > PAGE_SIZE;
}

static void read_physical(struct ctx *c)
{
    struct kvmi_read_physical req;
    memcpy(&req, c->body, sizeof(req));
    int err = bad_range(req.gpa, req.size) ? -KVM_EINVAL : 0;
    if (!err)
        err = kvmi_arch_read_phys(c->vm, req.gpa, kvmi_reply_data(c->vm->out), req.size);
    reply(c, err, err ? 0 : req.size, false);
}

static void write_physical(struct ctx *c)
{
    struct kvmi_write_physical req;
    memcpy(&req, c->body, sizeof(req));
    if (c->h->size < sizeof(req) || req.size > c->h->size - sizeof(req)) {
        kvmi_fatal(c->vm, "WRITE_PHYSICAL size beyond the message", (int64_t)req.size);
        return;
    }
    int err = bad_range(req.gpa, req.size) ? -KVM_EINVAL : 0;
    if (!err)
        err = kvmi_arch_write_phys(c->vm, req.gpa, c->body + sizeof(req), req.size);
    reply(c, err, 0, false);
}

static void get_page_access(struct ctx *c)
{
    struct kvmi_get_page_access req;
    memcpy(&req, c->body, sizeof(req));
    int err = 0;
    if (req.padding)
        err = -KVM_EINVAL;
    else if (req.view != 0)
        err = -KVM_EOPNOTSUPP;
    else if (c->h->size < sizeof(req) + (size_t)req.count * sizeof(uint64_t))
        err = -KVM_EINVAL;
    uint8_t *out = kvmi_reply_data(c->vm->out);
    if (!err) {
        for (unsigned i = 0; i < req.count; i++) {
            uint64_t gpa;
            memcpy(&gpa, c->body + sizeof(req) + 8 * i, sizeof(gpa));
            out[i] = kvmi_page_get(c->vm, gpa >> 12);
        }
    }
    reply(c, err, req.count, false);
}

static void set_page_access(struct ctx *c)
{
    struct kvmi_set_page_access req;
    memcpy(&req, c->body, sizeof(req));
    int err = 0;
    if (req.padding)
        err = -KVM_EINVAL;
    else if (req.view != 0)
        err = -KVM_EOPNOTSUPP;
    else if (c->h->size < sizeof(req) + (size_t)req.count * sizeof(struct kvmi_page_access_entry))
        err = -KVM_EINVAL;
    if (!err) {
        /* As the v6 code (not its doc): every entry is tried and the last
         * error is returned. */
        for (unsigned i = 0; i < req.count; i++) {
            struct kvmi_page_access_entry e;
            memcpy(&e, c->body + sizeof(req) + sizeof(e) * i, sizeof(e));
            int r;
            if (e.padding1 || e.padding2 || e.padding3 || (e.access & ~KVMI_PAGE_ACCESS_RWX))
                r = -KVM_EINVAL;
            else
                r = kvmi_page_set(c->vm, e.gpa >> 12, e.access);
            if (r)
                err = r;
        }
    }
    reply(c, err, 0, false);
}

static void control_spp(struct ctx *c)
{
    struct kvmi_control_spp req;
    memcpy(&req, c->body, sizeof(req));
    /* no sub-page write protection on this platform: KVM answers -95 */
    reply(c, (req.padding1 || req.padding2 || req.padding3) ? -KVM_EINVAL : -KVM_EOPNOTSUPP, 0,
          false);
}

static void page_write_bitmap(struct ctx *c)
{
    struct kvmi_get_page_write_bitmap req; /* same head for GET and SET */
    memcpy(&req, c->body, sizeof(req));
    reply(c, req.padding ? -KVM_EINVAL : -KVM_EOPNOTSUPP, 0, false);
}

static void control_cmd_response(struct ctx *c)
{
    struct kvmi_control_cmd_response req;
    memcpy(&req, c->body, sizeof(req));
    if (req.padding1 || req.padding2) {
        kvmi_fatal(c->vm, "CONTROL_CMD_RESPONSE padding", 0);
        return;
    }
    if (req.now)
        c->vm->replies_disabled = !req.enable;
    reply(c, 0, 0, false);
    if (!req.now)
        c->vm->replies_disabled = !req.enable;
}

static void get_max_gfn(struct ctx *c)
{
    struct kvmi_get_max_gfn_reply r = {.gfn = kvmi_arch_max_gfn(c->vm)};
    memcpy(kvmi_reply_data(c->vm->out), &r, sizeof(r));
    reply(c, 0, sizeof(r), true);
}

enum kvmi_disp kvmi_vm_command(struct kvmi_vm *vm, const struct kvmi_msg_hdr *hdr,
                               const uint8_t *body)
{
    struct ctx c = {vm, hdr, body};
    switch (hdr->id) {
    case KVMI_GET_VERSION:
        get_version(&c);
        break;
    case KVMI_CHECK_COMMAND:
        check_id(&c, vm->allow_cmds);
        break;
    case KVMI_CHECK_EVENT:
        check_id(&c, vm->allow_events);
        break;
    case KVMI_GET_GUEST_INFO:
        get_guest_info(&c);
        break;
    case KVMI_PAUSE_VCPU:
        kvmi_cmd_pause_vcpu(vm, hdr, body);
        break;
    case KVMI_CONTROL_VM_EVENTS:
        control_vm_events(&c);
        break;
    case KVMI_READ_PHYSICAL:
        read_physical(&c);
        break;
    case KVMI_WRITE_PHYSICAL:
        write_physical(&c);
        break;
    case KVMI_GET_PAGE_ACCESS:
        get_page_access(&c);
        break;
    case KVMI_SET_PAGE_ACCESS:
        set_page_access(&c);
        break;
    case KVMI_GET_MAP_TOKEN:
        /* remote mapping needs /dev/kvmmem in a KVM guest: not offered */
        reply(&c, -KVM_EOPNOTSUPP, 0, true);
        break;
    case KVMI_CONTROL_SPP:
        control_spp(&c);
        break;
    case KVMI_GET_PAGE_WRITE_BITMAP:
    case KVMI_SET_PAGE_WRITE_BITMAP:
        page_write_bitmap(&c);
        break;
    case KVMI_CONTROL_CMD_RESPONSE:
        control_cmd_response(&c);
        break;
    case KVMI_GET_MAX_GFN:
        get_max_gfn(&c);
        break;
    default:
        break;
    }
    return KVMI_DISP_OK;
}
