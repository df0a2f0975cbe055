/*
 * test_kvmi_engine.c - the receive side of the engine against the fake
 * arch: handshake and key, framing, every VM command (spec §4.1 "W" rows),
 * allow masks, reply suppression, PAUSE_VCPU accounting, page access,
 * unhook and end of introspection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../kvmi/sha1.h"
#include "test_kvmi_fake.h"

static void setup2(void)
{
    fake_setup(2, NULL, true);
}

/* ---- handshake ------------------------------------------------------------ */

static void test_handshake_struct_sent(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    for (int i = 0; i < 16; i++)
        cfg.uuid[i] = (uint8_t)(i + 1);
    cfg.start_time = 1700000000;
    strcpy(cfg.name, "guest-a");
    fake_setup(1, &cfg, false);
    assert_int_equal(kvmi_connected(&VM), 0);
    assert_int_equal(F.out_len, 96);
    struct kvmi_qemu2introspector hs;
    memcpy(&hs, F.out, sizeof(hs));
    assert_int_equal(hs.struct_size, 96);
    assert_memory_equal(hs.uuid, cfg.uuid, 16);
    assert_int_equal(hs.padding, 0); /* keyless: as QEMU */
    assert_int_equal(hs.start_time, 1700000000);
    assert_string_equal(hs.name, "guest-a");
    assert_false(kvmi_session_active(&VM));
}

static void test_handshake_larger_struct_size_byte_by_byte(void **state)
{
    (void)state;
    fake_setup(1, NULL, false);
    kvmi_connected(&VM);
    F.out_len = 0;
    uint8_t buf[200];
    memset(buf, 0xee, sizeof(buf));
    uint32_t sz = 100; /* an introspector announcing a bigger struct */
    memcpy(buf, &sz, 4);
    size_t n = put_msg(buf, 100, KVMI_GET_VERSION, 7, NULL, 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(feed(buf + i, 1), 1);
    struct kvmi_get_version_reply r;
    assert_int_equal(expect_reply(KVMI_GET_VERSION, 7, &r, sizeof(r)), 0);
    assert_int_equal(r.version, 1);
    assert_false(F.closed);
}

static void test_handshake_too_small_closes(void **state)
{
    (void)state;
    fake_setup(1, NULL, false);
    kvmi_connected(&VM);
    uint32_t sz = 8;
    feed(&sz, 4);
    assert_true(F.closed);
    assert_false(kvmi_session_active(&VM));
}

static void key_session(const char *key, bool right)
{
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    memcpy(cfg.key, "s3cret", 6);
    cfg.key_len = 6;
    fake_setup(1, &cfg, false);
    kvmi_connected(&VM);
    struct kvmi_qemu2introspector hs;
    memcpy(&hs, F.out, sizeof(hs));
    assert_int_equal(hs.padding, (uint32_t)0x55667788); /* the nonce */
    F.out_len = 0;
    struct kvmi_introspector2qemu r = {.struct_size = 24};
    hmac_sha1(key, strlen(key), &hs, sizeof(hs), r.cookie_hash);
    uint8_t buf[64];
    memcpy(buf, &r, sizeof(r));
    size_t n = put_msg(buf, sizeof(r), KVMI_GET_VERSION, 1, NULL, 0);
    feed(buf, n);
    assert_int_equal(kvmi_session_active(&VM), right);
    assert_int_equal(F.closed, !right);
    if (right)
        assert_int_equal(expect_reply(KVMI_GET_VERSION, 1, NULL, 0), 0);
    else
        assert_true(no_more()); /* nothing served before the proof */
}

static void test_key_accepted(void **state)
{
    (void)state;
    key_session("s3cret", true);
}

static void test_key_rejected(void **state)
{
    (void)state;
    key_session("wrong", false);
}

/* ---- framing ---------------------------------------------------------------- */

static void test_get_version_bytes_exact(void **state)
{
    (void)state;
    setup2();
    const uint8_t req[] = {0x02, 0, 0, 0, 1, 0, 0, 0};
    feed(req, sizeof(req));
    const uint8_t want[] = {0x02, 0, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                            0,    0, 0,    0, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(F.out_len, sizeof(want));
    assert_memory_equal(F.out, want, sizeof(want));
}

static void test_pipelined_batch_in_odd_pieces(void **state)
{
    (void)state;
    setup2();
    uint8_t buf[256];
    size_t n = 0;
    for (uint32_t s = 1; s <= 5; s++)
        n = put_msg(buf, n, s % 2 ? KVMI_GET_VERSION : KVMI_GET_GUEST_INFO, s, NULL, 0);
    for (size_t off = 0; off < n; off += 3)
        assert_int_equal(feed(buf + off, off + 3 <= n ? 3 : n - off), off + 3 <= n ? 3 : n - off);
    for (uint32_t s = 1; s <= 5; s++)
        assert_int_equal(expect_reply(s % 2 ? KVMI_GET_VERSION : KVMI_GET_GUEST_INFO, s, NULL, 0),
                         0);
    assert_true(no_more());
}

static void test_oversized_message_closes(void **state)
{
    (void)state;
    setup2();
    struct kvmi_msg_hdr h = {.id = KVMI_GET_VERSION, .size = KVMI_MSG_SIZE + 1, .seq = 1};
    feed(&h, sizeof(h));
    assert_true(F.closed);
    assert_true(no_more());
    /* a message of exactly KVMI_MSG_SIZE is fine */
    setup2();
    static uint8_t body[KVMI_MSG_SIZE];
    uint32_t s = cmd(KVMI_GET_GUEST_INFO, body, sizeof(body));
    assert_int_equal(expect_reply(KVMI_GET_GUEST_INFO, s, NULL, 0), 0);
}

static void test_send_retries_when_no_room(void **state)
{
    (void)state;
    setup2();
    F.send_eagain = 3;
    uint32_t s = cmd(KVMI_GET_VERSION, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_VERSION, s, NULL, 0), 0);
    assert_true(F.polls >= 3);
}

/* An introspector that stops reading: the wait for send room ends the session at its deadline
 * (the fake clock moves 10 ms per poll), and the sender returns. */
static void test_send_deadline_ends_session(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    cfg.send_timeout_ms = 500;
    fake_setup(2, &cfg, true);
    F.poll_ms = 10;
    F.send_eagain = 1000000; /* never any room */
    cmd(KVMI_GET_VERSION, NULL, 0);
    assert_true(F.closed);
    assert_false(kvmi_session_active(&VM));
    assert_true(F.polls >= 50 && F.polls <= 51);
    assert_true(F.now_ms >= 500);
    F.send_eagain = 0;
}

/* The handshake: an introspector that connects and never answers is dropped at the deadline;
 * one that answers in time is not. */
static void test_handshake_deadline(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    cfg.handshake_timeout_ms = 1000;
    fake_setup(1, &cfg, false);
    F.now_ms = 5000;
    assert_int_equal(kvmi_connected(&VM), 0);
    F.now_ms = 5999;
    kvmi_check_deadlines(&VM);
    assert_false(F.closed);
    F.now_ms = 6000;
    kvmi_check_deadlines(&VM);
    assert_true(F.closed);
    assert_false(kvmi_session_active(&VM));
    /* a new connection gets a new deadline; answered in time, the session lives on */
    kvmi_disconnected(&VM);
    F.closed = false;
    F.out_len = F.out_rd = 0;
    assert_int_equal(kvmi_connected(&VM), 0);
    F.now_ms = 6500;
    struct kvmi_introspector2qemu r = {.struct_size = 24};
    assert_int_equal(feed(&r, sizeof(r)), sizeof(r));
    assert_true(kvmi_session_active(&VM));
    F.now_ms = 100000;
    kvmi_check_deadlines(&VM);
    assert_false(F.closed);
    /* without a deadline (0), a silent introspector is never dropped by time */
    kvmi_default_config(&cfg);
    fake_setup(1, &cfg, false);
    assert_int_equal(kvmi_connected(&VM), 0);
    F.now_ms = 1ull << 40;
    kvmi_check_deadlines(&VM);
    assert_false(F.closed);
}

/* ---- unsupported, allow masks, checks ---------------------------------------- */

static void test_unsupported_ids_even_with_replies_off(void **state)
{
    (void)state;
    setup2();
    struct kvmi_control_cmd_response off = {.enable = 0, .now = 1};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &off, sizeof(off));
    assert_true(no_more());
    const uint16_t ids[] = {KVMI_EVENT, KVMI_CONTROL_VE, 28, 30, 63, 64, 1000};
    for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        uint8_t junk[5] = {1, 2, 3, 4, 5};
        uint32_t s = cmd(ids[i], junk, sizeof(junk)); /* body consumed */
        assert_int_equal(expect_reply(ids[i], s, NULL, 0), -KVM_EOPNOTSUPP);
    }
    assert_false(F.closed);
}

static void test_disallowed_command_eperm_even_with_replies_off(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    cfg.allow_commands &= ~(1ull << KVMI_GET_GUEST_INFO);
    cfg.allow_commands &= ~(1ull << KVMI_GET_VERSION); /* always allowed anyway */
    fake_setup(1, &cfg, true);
    uint32_t s = cmd(KVMI_GET_GUEST_INFO, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_GUEST_INFO, s, NULL, 0), -KVM_EPERM);
    s = cmd(KVMI_GET_VERSION, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_VERSION, s, NULL, 0), 0);
    struct kvmi_control_cmd_response off = {.enable = 0, .now = 1};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &off, sizeof(off));
    s = cmd(KVMI_GET_GUEST_INFO, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_GUEST_INFO, s, NULL, 0), -KVM_EPERM);
    assert_false(F.closed);
}

static void test_config_allow_rules(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    const uint64_t all_cmds = cfg.allow_commands, all_events = cfg.allow_events;
    /* KVM_INTROSPECTION_COMMAND/EVENT argument rules (spec §2.3) */
    assert_int_equal(kvmi_config_allow(&cfg, true, -2, false), -KVM_EINVAL);
    assert_int_equal(kvmi_config_allow(&cfg, true, 28, false), -KVM_EINVAL); /* unknown */
    assert_int_equal(kvmi_config_allow(&cfg, true, 0, false), -KVM_EINVAL);  /* EVENT_REPLY */
    assert_int_equal(kvmi_config_allow(&cfg, false, 12, false), -KVM_EINVAL);
    assert_int_equal(kvmi_config_allow(&cfg, false, 64, true), -KVM_EINVAL);
    for (int id = KVMI_GET_VERSION; id <= KVMI_CHECK_EVENT; id++)
        assert_int_equal(kvmi_config_allow(&cfg, true, id, false), -KVM_EPERM);
    assert_true(cfg.allow_commands == all_cmds && cfg.allow_events == all_events);
    /* 12 (CONTROL_VE) is a known command: it can be disallowed */
    assert_int_equal(kvmi_config_allow(&cfg, true, KVMI_CONTROL_VE, false), 0);
    assert_int_equal(kvmi_config_allow(&cfg, true, KVMI_GET_REGISTERS, false), 0);
    assert_true(cfg.allow_commands ==
                (all_cmds & ~((1ull << KVMI_CONTROL_VE) | (1ull << KVMI_GET_REGISTERS))));
    assert_int_equal(kvmi_config_allow(&cfg, true, KVMI_GET_REGISTERS, true), 0);
    assert_true(cfg.allow_commands == (all_cmds & ~(1ull << KVMI_CONTROL_VE)));
    /* "all" keeps the three that cannot be disallowed */
    assert_int_equal(kvmi_config_allow(&cfg, true, -1, false), 0);
    assert_true(cfg.allow_commands == ((1ull << KVMI_GET_VERSION) | (1ull << KVMI_CHECK_COMMAND) |
                                       (1ull << KVMI_CHECK_EVENT)));
    assert_int_equal(kvmi_config_allow(&cfg, true, -1, true), 0);
    assert_true(cfg.allow_commands == all_cmds);
    assert_int_equal(kvmi_config_allow(&cfg, false, KVMI_EVENT_PAUSE_VCPU, false), 0);
    assert_true(cfg.allow_events == (all_events & ~(1ull << KVMI_EVENT_PAUSE_VCPU)));
    assert_int_equal(kvmi_config_allow(&cfg, false, -1, false), 0);
    assert_true(cfg.allow_events == 0);
    assert_int_equal(kvmi_config_allow(&cfg, false, KVMI_EVENT_UNHOOK, true), 0);
    assert_true(cfg.allow_events == 1);
}

static void test_check_command_and_event(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    cfg.allow_events &= ~(1ull << KVMI_EVENT_PF);
    fake_setup(1, &cfg, true);
    struct {
        uint16_t id;
        int want;
    } cc[] = {{KVMI_GET_VERSION, 0},    {KVMI_CONTROL_VE, 0},
              {KVMI_GET_MAX_GFN, 0},    {KVMI_EVENT_REPLY, -KVM_EPERM},
              {KVMI_EVENT, -KVM_EPERM}, {28, -KVM_EPERM},
              {30, -KVM_EPERM},         {999, -KVM_EPERM}};
    for (unsigned i = 0; i < sizeof(cc) / sizeof(cc[0]); i++) {
        struct kvmi_check_command r = {.id = cc[i].id};
        uint32_t s = cmd(KVMI_CHECK_COMMAND, &r, sizeof(r));
        assert_int_equal(expect_reply(KVMI_CHECK_COMMAND, s, NULL, 0), cc[i].want);
    }
    struct kvmi_check_event e = {.id = KVMI_EVENT_CR};
    uint32_t s = cmd(KVMI_CHECK_EVENT, &e, sizeof(e));
    assert_int_equal(expect_reply(KVMI_CHECK_EVENT, s, NULL, 0), 0);
    e.id = KVMI_EVENT_PF;
    s = cmd(KVMI_CHECK_EVENT, &e, sizeof(e));
    assert_int_equal(expect_reply(KVMI_CHECK_EVENT, s, NULL, 0), -KVM_EPERM);
    e.id = 12;
    s = cmd(KVMI_CHECK_EVENT, &e, sizeof(e));
    assert_int_equal(expect_reply(KVMI_CHECK_EVENT, s, NULL, 0), -KVM_EPERM);
    e.id = KVMI_EVENT_CR;
    e.padding2 = 1;
    s = cmd(KVMI_CHECK_EVENT, &e, sizeof(e));
    assert_int_equal(expect_reply(KVMI_CHECK_EVENT, s, NULL, 0), -KVM_EINVAL);
    struct kvmi_check_command c = {.id = 2, .padding1 = 1};
    s = cmd(KVMI_CHECK_COMMAND, &c, sizeof(c));
    assert_int_equal(expect_reply(KVMI_CHECK_COMMAND, s, NULL, 0), -KVM_EINVAL);
}

/* ---- simple VM commands --------------------------------------------------- */

static void test_guest_info_and_max_gfn(void **state)
{
    (void)state;
    fake_setup(3, NULL, true);
    struct kvmi_get_guest_info_reply gi;
    uint32_t s = cmd(KVMI_GET_GUEST_INFO, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_GUEST_INFO, s, &gi, sizeof(gi)), 0);
    assert_int_equal(gi.vcpu_count, 3);
    struct kvmi_get_max_gfn_reply mg;
    s = cmd(KVMI_GET_MAX_GFN, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_MAX_GFN, s, &mg, sizeof(mg)), 0);
    assert_int_equal(mg.gfn, FAKE_PAGES - 1);
}

static void test_spp_and_map_token_unsupported(void **state)
{
    (void)state;
    setup2();
    struct kvmi_control_spp spp = {.enable = 1};
    uint32_t s = cmd(KVMI_CONTROL_SPP, &spp, sizeof(spp));
    assert_int_equal(expect_reply(KVMI_CONTROL_SPP, s, NULL, 0), -KVM_EOPNOTSUPP);
    spp.padding3 = 1;
    s = cmd(KVMI_CONTROL_SPP, &spp, sizeof(spp));
    assert_int_equal(expect_reply(KVMI_CONTROL_SPP, s, NULL, 0), -KVM_EINVAL);
    uint8_t wb[24] = {0, 0, 1, 0};
    s = cmd(KVMI_GET_PAGE_WRITE_BITMAP, wb, 16);
    assert_int_equal(expect_reply(KVMI_GET_PAGE_WRITE_BITMAP, s, NULL, 0), -KVM_EOPNOTSUPP);
    s = cmd(KVMI_SET_PAGE_WRITE_BITMAP, wb, 24);
    assert_int_equal(expect_reply(KVMI_SET_PAGE_WRITE_BITMAP, s, NULL, 0), -KVM_EOPNOTSUPP);
    wb[4] = 1; /* padding */
    s = cmd(KVMI_SET_PAGE_WRITE_BITMAP, wb, 24);
    assert_int_equal(expect_reply(KVMI_SET_PAGE_WRITE_BITMAP, s, NULL, 0), -KVM_EINVAL);
    s = cmd(KVMI_GET_MAP_TOKEN, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_MAP_TOKEN, s, NULL, 0), -KVM_EOPNOTSUPP);
}

/* ---- CONTROL_CMD_RESPONSE ---------------------------------------------------- */

static void test_cmd_response_semantics(void **state)
{
    (void)state;
    setup2();
    struct kvmi_control_cmd_response r = {.enable = 0, .now = 1};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &r, sizeof(r)); /* applied first: no reply */
    assert_true(no_more());
    struct kvmi_check_command c = {.id = 2};
    cmd(KVMI_CHECK_COMMAND, &c, sizeof(c)); /* error-code-only reply dropped */
    c.padding1 = 1;
    cmd(KVMI_CHECK_COMMAND, &c, sizeof(c)); /* errors dropped too */
    assert_true(no_more());
    r = (struct kvmi_control_cmd_response){.enable = 1, .now = 0};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &r, sizeof(r)); /* reply first (off), then apply */
    assert_true(no_more());
    uint32_t s = cmd(KVMI_GET_VERSION, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_VERSION, s, NULL, 0), 0);
    r = (struct kvmi_control_cmd_response){.enable = 1, .now = 1};
    s = cmd(KVMI_CONTROL_CMD_RESPONSE, &r, sizeof(r));
    assert_int_equal(expect_reply(KVMI_CONTROL_CMD_RESPONSE, s, NULL, 0), 0);
    r = (struct kvmi_control_cmd_response){.enable = 0, .now = 0};
    s = cmd(KVMI_CONTROL_CMD_RESPONSE, &r, sizeof(r)); /* replied, then off */
    assert_int_equal(expect_reply(KVMI_CONTROL_CMD_RESPONSE, s, NULL, 0), 0);
    assert_false(F.closed);
}

static void test_cmd_response_padding_is_fatal(void **state)
{
    (void)state;
    setup2();
    struct kvmi_control_cmd_response r = {.enable = 1, .now = 1, .padding2 = 1};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &r, sizeof(r));
    assert_true(F.closed);
    assert_true(no_more());
}

static void test_data_reply_with_replies_off_is_fatal(void **state)
{
    (void)state;
    const uint16_t ids[] = {KVMI_GET_VERSION, KVMI_GET_GUEST_INFO, KVMI_GET_MAX_GFN,
                            KVMI_GET_MAP_TOKEN, KVMI_READ_PHYSICAL};
    for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        setup2();
        struct kvmi_control_cmd_response r = {.enable = 0, .now = 1};
        cmd(KVMI_CONTROL_CMD_RESPONSE, &r, sizeof(r));
        struct kvmi_read_physical rp = {.gpa = 0, .size = 8};
        cmd(ids[i], &rp, ids[i] == KVMI_READ_PHYSICAL ? sizeof(rp) : 0);
        assert_true(F.closed);
        assert_true(no_more());
    }
    /* but a READ_PHYSICAL that fails only drops its error */
    setup2();
    struct kvmi_control_cmd_response r = {.enable = 0, .now = 1};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &r, sizeof(r));
    struct kvmi_read_physical rp = {.gpa = 0, .size = 0};
    cmd(KVMI_READ_PHYSICAL, &rp, sizeof(rp));
    assert_false(F.closed);
}

/* ---- guest memory ------------------------------------------------------------ */

static void test_read_write_physical(void **state)
{
    (void)state;
    setup2();
    uint8_t w[16 + 8];
    struct kvmi_write_physical wp = {.gpa = 0x1ff8, .size = 8};
    memcpy(w, &wp, 16);
    memcpy(w + 16, "ABCDEFGH", 8);
    uint32_t s = cmd(KVMI_WRITE_PHYSICAL, w, sizeof(w));
    assert_int_equal(expect_reply(KVMI_WRITE_PHYSICAL, s, NULL, 0), 0);
    assert_memory_equal(F.mem + 0x1ff8, "ABCDEFGH", 8);
    struct kvmi_read_physical rp = {.gpa = 0x1ff8, .size = 8};
    char got[8];
    s = cmd(KVMI_READ_PHYSICAL, &rp, sizeof(rp));
    assert_int_equal(expect_reply(KVMI_READ_PHYSICAL, s, got, 8), 0);
    assert_memory_equal(got, "ABCDEFGH", 8);

    struct kvmi_read_physical bad[] = {{0x1000, 0}, {0x1000, 4097}, {0x1ff8, 9}, {0x1001, 4096}};
    for (unsigned i = 0; i < 4; i++) {
        s = cmd(KVMI_READ_PHYSICAL, &bad[i], sizeof(bad[i]));
        assert_int_equal(expect_reply(KVMI_READ_PHYSICAL, s, NULL, 0), -KVM_EINVAL);
    }
    rp.gpa = FAKE_PAGES * 4096; /* not guest memory */
    s = cmd(KVMI_READ_PHYSICAL, &rp, sizeof(rp));
    assert_int_equal(expect_reply(KVMI_READ_PHYSICAL, s, NULL, 0), -KVM_ENOENT);
    wp.gpa = FAKE_PAGES * 4096;
    memcpy(w, &wp, 16);
    s = cmd(KVMI_WRITE_PHYSICAL, w, sizeof(w));
    assert_int_equal(expect_reply(KVMI_WRITE_PHYSICAL, s, NULL, 0), -KVM_ENOENT);
    assert_false(F.closed);
}

static void test_write_physical_beyond_message_is_fatal(void **state)
{
    (void)state;
    setup2();
    uint8_t w[16 + 4];
    struct kvmi_write_physical wp = {.gpa = 0, .size = 8};
    memcpy(w, &wp, 16);
    cmd(KVMI_WRITE_PHYSICAL, w, sizeof(w));
    assert_true(F.closed);
    setup2();
    cmd(KVMI_WRITE_PHYSICAL, w, 4); /* not even the fixed part */
    assert_true(F.closed);
}

/* ---- page access -------------------------------------------------------------- */

static int set_access(const uint64_t *gpa, const uint8_t *acc, unsigned n, uint16_t view,
                      int pad_entry)
{
    uint8_t b[8 + 16 * 16] = {0};
    struct kvmi_set_page_access h = {.view = view, .count = (uint16_t)n};
    memcpy(b, &h, 8);
    for (unsigned i = 0; i < n; i++) {
        struct kvmi_page_access_entry e = {.gpa = gpa[i], .access = acc[i]};
        if ((int)i == pad_entry)
            e.padding3 = 1;
        memcpy(b + 8 + 16 * i, &e, 16);
    }
    uint32_t s = cmd(KVMI_SET_PAGE_ACCESS, b, 8 + 16 * n);
    return expect_reply(KVMI_SET_PAGE_ACCESS, s, NULL, 0);
}

static int get_access(const uint64_t *gpa, unsigned n, uint8_t *out, size_t short_by)
{
    uint8_t b[8 + 8 * 16] = {0};
    struct kvmi_get_page_access h = {.count = (uint16_t)n};
    memcpy(b, &h, 8);
    memcpy(b + 8, gpa, 8 * n);
    uint32_t s = cmd(KVMI_GET_PAGE_ACCESS, b, 8 + 8 * n - short_by);
    return expect_reply(KVMI_GET_PAGE_ACCESS, s, out, n);
}

static void test_page_access(void **state)
{
    (void)state;
    setup2();
    uint64_t g[3] = {0x3000, 0x5123, 0x7000};
    uint8_t a[3] = {KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X, KVMI_PAGE_ACCESS_R, 7};
    assert_int_equal(set_access(g, a, 3, 0, -1), 0);
    assert_int_equal(F.access[3], 5);
    assert_int_equal(F.access[5], 1);
    uint8_t out[3];
    assert_int_equal(get_access(g, 3, out, 0), 0);
    assert_memory_equal(out, a, 3);
    assert_int_equal(get_access(g, 3, out, 1), -KVM_EINVAL); /* short */

    /* bad bits / padding in one entry: the others still apply, -22 */
    uint8_t b2[3] = {KVMI_PAGE_ACCESS_R, 8, KVMI_PAGE_ACCESS_X};
    assert_int_equal(set_access(g, b2, 3, 0, -1), -KVM_EINVAL);
    assert_int_equal(F.access[3], 1);
    assert_int_equal(F.access[7], 4);
    assert_int_equal(set_access(g, a, 1, 0, 0), -KVM_EINVAL);
    assert_int_equal(set_access(g, a, 1, 1, -1), -KVM_EOPNOTSUPP); /* view */

    /* rwx forgets the page */
    uint8_t rwx[3] = {7, 7, 7};
    assert_int_equal(set_access(g, rwx, 3, 0, -1), 0);
    assert_int_equal(VM.page_count, 0);
    assert_int_equal(F.access[5], 7);

    /* capacity: FAKE_SLOTS restrictions, then -ENOMEM */
    uint64_t many[FAKE_SLOTS + 1];
    uint8_t r[FAKE_SLOTS + 1];
    for (unsigned i = 0; i <= FAKE_SLOTS; i++) {
        many[i] = 0x1000ull * (i + 1);
        r[i] = KVMI_PAGE_ACCESS_R;
    }
    assert_int_equal(set_access(many, r, FAKE_SLOTS, 0, -1), 0);
    assert_int_equal(set_access(many + FAKE_SLOTS, r, 1, 0, -1), -KVM_ENOMEM);
    /* outside guest memory */
    uint64_t far = FAKE_PAGES * 4096ull;
    assert_int_equal(set_access(&far, r, 1, 0, -1), -KVM_EINVAL);

    /* the end of introspection lifts every restriction */
    kvmi_disconnected(&VM);
    for (unsigned i = 0; i < FAKE_PAGES; i++)
        assert_int_equal(F.access[i], 7);
    assert_int_equal(VM.page_count, 0);
}

static void test_page_table_delete_keeps_probe_chains(void **state)
{
    (void)state;
    setup2();
    uint8_t ro = KVMI_PAGE_ACCESS_R, rwx = 7;
    /* fill, then remove every other one; the rest must still be found */
    for (uint64_t i = 0; i < FAKE_SLOTS; i++) {
        uint64_t gpa = i * 0x1000 * 5; /* gfn 0, 5, 10, ... */
        assert_int_equal(set_access(&gpa, &ro, 1, 0, -1), 0);
    }
    for (uint64_t i = 0; i < FAKE_SLOTS; i += 2) {
        uint64_t gpa = i * 0x1000 * 5;
        assert_int_equal(set_access(&gpa, &rwx, 1, 0, -1), 0);
    }
    for (uint64_t i = 0; i < FAKE_SLOTS; i++) {
        uint64_t gpa = i * 0x1000 * 5;
        uint8_t got;
        assert_int_equal(get_access(&gpa, 1, &got, 0), 0);
        assert_int_equal(got, i % 2 ? ro : rwx);
    }
}

/* ---- VM events and unhook ---------------------------------------------------- */

static int control_vm_event(uint16_t id, uint8_t enable, uint8_t pad)
{
    struct kvmi_control_vm_events e = {.event_id = id, .enable = enable, .padding1 = pad};
    uint32_t s = cmd(KVMI_CONTROL_VM_EVENTS, &e, sizeof(e));
    return expect_reply(KVMI_CONTROL_VM_EVENTS, s, NULL, 0);
}

static void test_control_vm_events(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    cfg.allow_events &= ~(1ull << KVMI_EVENT_CREATE_VCPU);
    fake_setup(1, &cfg, true);
    assert_int_equal(control_vm_event(KVMI_EVENT_CR, 1, 0), -KVM_EINVAL);
    assert_int_equal(control_vm_event(12, 1, 0), -KVM_EINVAL);
    assert_int_equal(control_vm_event(KVMI_EVENT_UNHOOK, 1, 1), -KVM_EINVAL);
    assert_int_equal(control_vm_event(KVMI_EVENT_CREATE_VCPU, 1, 0), -KVM_EPERM);
    assert_int_equal(control_vm_event(KVMI_EVENT_UNHOOK, 1, 0), 0);
    assert_true(kvmi_event_enabled(&VM, 0, KVMI_EVENT_UNHOOK));
    assert_int_equal(control_vm_event(KVMI_EVENT_UNHOOK, 0, 0), 0);
    assert_false(kvmi_event_enabled(&VM, 0, KVMI_EVENT_UNHOOK));
}

static void test_unhook_request(void **state)
{
    (void)state;
    fake_setup(2, NULL, false);
    assert_int_equal(kvmi_unhook_request(&VM), -KVM_EFAULT); /* no session */
    setup2();
    assert_int_equal(kvmi_unhook_request(&VM), -KVM_ENOENT); /* not enabled */
    assert_true(no_more());
    assert_int_equal(control_vm_event(KVMI_EVENT_UNHOOK, 1, 0), 0);
    assert_int_equal(kvmi_unhook_request(&VM), 0);
    struct kvmi_msg_hdr h;
    uint8_t b[600];
    assert_true(next_msg(&h, b, sizeof(b)));
    assert_int_equal(h.id, KVMI_EVENT);
    assert_int_equal(h.size, 544);
    assert_int_equal(h.seq, 1); /* first event of the session */
    struct kvmi_event ev;
    memcpy(&ev, b, sizeof(ev));
    assert_int_equal(ev.size, 544);
    assert_int_equal(ev.vcpu, 0);
    assert_int_equal(ev.event, KVMI_EVENT_UNHOOK);
    static const uint8_t zero[536];
    assert_memory_equal(&ev.arch, zero, sizeof(zero)); /* arch all zero */
    /* commands are still served while the tool unhooks */
    uint32_t s = cmd(KVMI_GET_VERSION, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_VERSION, s, NULL, 0), 0);
    F.send_eagain = 1000000; /* a write that can never complete... */
    F.send_eagain = 0;
    kvmi_disconnected(&VM);
    assert_int_equal(kvmi_unhook_request(&VM), -KVM_EFAULT);
}

/* ---- PAUSE_VCPU (receive side) ------------------------------------------------ */

static int pause_cmd(uint16_t vcpu, uint8_t wait, uint16_t vpad, uint8_t ppad)
{
    uint8_t b[16] = {0};
    struct kvmi_vcpu_hdr vh = {.vcpu = vcpu, .padding1 = vpad};
    struct kvmi_pause_vcpu p = {.wait = wait, .padding1 = ppad};
    memcpy(b, &vh, 8);
    memcpy(b + 8, &p, 8);
    uint32_t s = cmd(KVMI_PAUSE_VCPU, b, 16);
    if (no_more())
        return 1; /* no reply */
    return expect_reply(KVMI_PAUSE_VCPU, s, NULL, 0);
}

static void test_pause_checks(void **state)
{
    (void)state;
    setup2();
    assert_int_equal(pause_cmd(0, 1, 0, 1), -KVM_EINVAL);
    assert_int_equal(pause_cmd(0, 1, 1, 0), -KVM_EINVAL); /* a reply, not fatal */
    assert_int_equal(pause_cmd(2, 1, 0, 0), -KVM_EINVAL);
    assert_false(F.closed);
    assert_int_equal(VM.vcpus[0].pause_requests, 0);
    assert_int_equal(pause_cmd(1, 1, 0, 0), 0);
    assert_int_equal(F.kick_waits[1], 1);
    assert_int_equal(pause_cmd(1, 2, 0, 0), 0); /* wait != 1: no wait */
    assert_int_equal(F.kick_waits[1], 1);
    assert_int_equal(F.kicks[1], 1 + 2); /* the session start kick + 2 */
    assert_int_equal(VM.vcpus[1].pause_requests, 2);
}

static void test_pause_ebusy_above_1001(void **state)
{
    (void)state;
    setup2();
    for (unsigned i = 0; i < 1002; i++)
        assert_int_equal(pause_cmd(0, 0, 0, 0), 0); /* counter 0..1001 accepted */
    assert_int_equal(VM.vcpus[0].pause_requests, 1002);
    assert_int_equal(pause_cmd(0, 0, 0, 0), -KVM_EBUSY); /* found 1002 > 1001 */
    assert_int_equal(VM.vcpus[0].pause_requests, 1002);
    assert_int_equal(pause_cmd(1, 0, 0, 0), 0); /* per vCPU */
}

static void test_pause_eperm_sent_with_replies_off(void **state)
{
    (void)state;
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    cfg.allow_events &= ~(1ull << KVMI_EVENT_PAUSE_VCPU);
    fake_setup(2, &cfg, true);
    struct kvmi_control_cmd_response r = {.enable = 0, .now = 1};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &r, sizeof(r));
    assert_int_equal(pause_cmd(0, 1, 0, 0), -KVM_EPERM);
    /* the permission check comes before the vCPU index check */
    assert_int_equal(pause_cmd(5, 1, 0, 0), -KVM_EPERM);
    assert_false(F.closed);
    /* with the event allowed, a -22 is an ordinary reply: dropped */
    setup2();
    cmd(KVMI_CONTROL_CMD_RESPONSE, &r, sizeof(r));
    assert_int_equal(pause_cmd(5, 1, 0, 0), 1);
    assert_false(F.closed);
}

static void test_pause_all_batch_one_reply(void **state)
{
    (void)state;
    setup2();
    uint8_t buf[256];
    size_t n = 0;
    struct kvmi_control_cmd_response off = {.enable = 0, .now = 1}, on = {.enable = 1, .now = 1};
    n = put_msg(buf, n, KVMI_CONTROL_CMD_RESPONSE, 10, &off, 8);
    for (uint16_t v = 0; v < 2; v++) {
        uint8_t b[16] = {0};
        memcpy(b, &v, 2);
        b[8] = 1;
        n = put_msg(buf, n, KVMI_PAUSE_VCPU, 11 + v, b, 16);
    }
    n = put_msg(buf, n, KVMI_CONTROL_CMD_RESPONSE, 13, &on, 8);
    assert_int_equal(feed(buf, n), n);
    assert_int_equal(expect_reply(KVMI_CONTROL_CMD_RESPONSE, 13, NULL, 0), 0);
    assert_true(no_more());
    assert_int_equal(VM.vcpus[0].pause_requests, 1);
    assert_int_equal(VM.vcpus[1].pause_requests, 1);
    assert_int_equal(F.kick_waits[0] + F.kick_waits[1], 2);
}

/* ---- end of introspection ------------------------------------------------------- */

static void test_disconnect_resets_and_reconnects(void **state)
{
    (void)state;
    setup2();
    assert_int_equal(pause_cmd(0, 0, 0, 0), 0);
    assert_int_equal(control_vm_event(KVMI_EVENT_UNHOOK, 1, 0), 0);
    struct kvmi_control_cmd_response off = {.enable = 0, .now = 1};
    cmd(KVMI_CONTROL_CMD_RESPONSE, &off, sizeof(off));
    kvmi_disconnected(&VM);
    assert_false(kvmi_transport_up(&VM));
    assert_int_equal(VM.vcpus[0].pause_requests, 0);
    /* a new session starts clean: replies on, VM events off, seq from 1 */
    F.out_len = F.out_rd = 0;
    assert_int_equal(kvmi_connected(&VM), 0);
    F.out_len = 0;
    struct kvmi_introspector2qemu r = {.struct_size = 24};
    feed(&r, sizeof(r));
    assert_true(kvmi_session_active(&VM));
    uint32_t s = cmd(KVMI_GET_VERSION, NULL, 0);
    assert_int_equal(expect_reply(KVMI_GET_VERSION, s, NULL, 0), 0);
    assert_false(kvmi_event_enabled(&VM, 0, KVMI_EVENT_UNHOOK));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_struct_sent),
        cmocka_unit_test(test_handshake_larger_struct_size_byte_by_byte),
        cmocka_unit_test(test_handshake_too_small_closes),
        cmocka_unit_test(test_key_accepted),
        cmocka_unit_test(test_key_rejected),
        cmocka_unit_test(test_get_version_bytes_exact),
        cmocka_unit_test(test_pipelined_batch_in_odd_pieces),
        cmocka_unit_test(test_oversized_message_closes),
        cmocka_unit_test(test_send_retries_when_no_room),
        cmocka_unit_test(test_unsupported_ids_even_with_replies_off),
        cmocka_unit_test(test_disallowed_command_eperm_even_with_replies_off),
        cmocka_unit_test(test_config_allow_rules),
        cmocka_unit_test(test_check_command_and_event),
        cmocka_unit_test(test_guest_info_and_max_gfn),
        cmocka_unit_test(test_spp_and_map_token_unsupported),
        cmocka_unit_test(test_cmd_response_semantics),
        cmocka_unit_test(test_cmd_response_padding_is_fatal),
        cmocka_unit_test(test_data_reply_with_replies_off_is_fatal),
        cmocka_unit_test(test_read_write_physical),
        cmocka_unit_test(test_write_physical_beyond_message_is_fatal),
        cmocka_unit_test(test_page_access),
        cmocka_unit_test(test_page_table_delete_keeps_probe_chains),
        cmocka_unit_test(test_control_vm_events),
        cmocka_unit_test(test_unhook_request),
        cmocka_unit_test(test_pause_checks),
        cmocka_unit_test(test_pause_ebusy_above_1001),
        cmocka_unit_test(test_pause_eperm_sent_with_replies_off),
        cmocka_unit_test(test_pause_all_batch_one_reply),
        cmocka_unit_test(test_disconnect_resets_and_reconnects),
        cmocka_unit_test(test_send_deadline_ends_session),
        cmocka_unit_test(test_handshake_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
