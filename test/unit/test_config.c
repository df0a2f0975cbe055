/* Unit tests of core/config.c, the hv.conf parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "hv_config.h"

struct errs {
    int n;
    unsigned line[8];
    char msg[8][96];
    char what[8][64];
};

static void on_err(void *ctx, unsigned line, const char *msg, const char *what)
{
    struct errs *e = ctx;
    if (e->n < 8) {
        e->line[e->n] = line;
        snprintf(e->msg[e->n], sizeof(e->msg[0]), "%s", msg);
        snprintf(e->what[e->n], sizeof(e->what[0]), "%s", what);
    }
    e->n++;
}

static int parse(struct hv_config *c, struct errs *e, const char *text)
{
    config_defaults(c);
    memset(e, 0, sizeof(*e));
    return config_parse(c, text, strlen(text), on_err, e);
}

static void test_defaults(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    assert_int_equal(parse(&c, &e, ""), 0);
    assert_int_equal(c.memory_mib, 64);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.serial_port, 0x3f8);
    assert_true(c.dhcp);
    assert_int_equal(c.transport, TRANSPORT_CONNECT);
    assert_int_equal(c.peer_ip, 0x0a000202);
    assert_false(c.has_key);
    assert_string_equal(c.name, "hv-guest");
    assert_int_equal(c.reply_timeout_ms, 300000);
    assert_int_equal(c.send_timeout_ms, 30000);
    assert_int_equal(c.handshake_timeout_ms, 10000);
}

static void test_full_file(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    const char *text = "# appliance config\n"
                       "memory = 128\n"
                       "log_level=debug   # chatty\n"
                       "\n"
                       "serial = com2\r\n"
                       "nic = 00:03.0\n"
                       "ip = 192.168.7.20/24\n"
                       "gateway = 192.168.7.1\n"
                       "listen = 4444\n"
                       "key = s3cret#1\n"
                       "name = box-17\n"
                       "uuid = 00112233-4455-6677-8899-aabbccddeeff\n"
                       "unhook_timeout_ms = 2500\n"
                       "reply_timeout_ms = 0\n"
                       "send_timeout_ms = 1500\n"
                       "handshake_timeout_ms = 3600000\n"
                       "poll_interval_us = 200\n"
                       "cpuid_hypervisor_bit = yes\n"
                       "chain = \\EFI\\debian\\grubx64.efi\n";
    assert_int_equal(parse(&c, &e, text), 0);
    assert_int_equal(c.memory_mib, 128);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.serial_port, 0x2f8);
    assert_int_equal(c.nic_select, NIC_BY_PCI);
    assert_int_equal(c.nic_dev, 3);
    assert_false(c.dhcp);
    assert_int_equal(c.ip, 0xc0a80714);
    assert_int_equal(c.netmask, 0xffffff00);
    assert_int_equal(c.gateway, 0xc0a80701);
    assert_int_equal(c.transport, TRANSPORT_LISTEN);
    assert_int_equal(c.listen_port, 4444);
    assert_true(c.has_key);
    assert_string_equal(c.key, "s3cret#1"); /* '#' not after a space is data */
    assert_string_equal(c.name, "box-17");
    assert_true(c.has_uuid);
    assert_int_equal(c.uuid[0], 0x00);
    assert_int_equal(c.uuid[15], 0xff);
    assert_int_equal(c.unhook_timeout_ms, 2500);
    assert_int_equal(c.reply_timeout_ms, 0); /* no deadline */
    assert_int_equal(c.send_timeout_ms, 1500);
    assert_int_equal(c.handshake_timeout_ms, 3600000);
    assert_int_equal(c.poll_interval_us, 200);
    assert_true(c.cpuid_hv_bit);
    assert_string_equal(c.chain, "\\EFI\\debian\\grubx64.efi");
}

static void test_nic_by_mac_and_connect(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    assert_int_equal(parse(&c, &e, "nic = 52:54:00:12:34:56\nconnect = 10.0.2.2:5555\n"), 0);
    assert_int_equal(c.nic_select, NIC_BY_MAC);
    assert_int_equal(c.nic_mac[5], 0x56);
    assert_int_equal(c.peer_port, 5555);
}

static void test_errors_name_the_line(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    const char *text = "memory = 64\n"
                       "# fine\n"
                       "colour = blue\n"
                       "memory = 8\n"
                       "log_level = loud\n"
                       "this line has no equals sign\n";
    assert_int_equal(parse(&c, &e, text), 4);
    assert_int_equal(e.line[0], 3);
    assert_string_equal(e.msg[0], "unknown key");
    assert_string_equal(e.what[0], "colour");
    assert_int_equal(e.line[1], 4);
    assert_string_equal(e.msg[1], "duplicate key");
    assert_int_equal(e.line[2], 5);
    assert_string_equal(e.what[2], "loud");
    assert_int_equal(e.line[3], 6);
}

static void test_on_sleep(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    assert_int_equal(parse(&c, &e, ""), 0);
    assert_int_equal(c.on_sleep, ON_SLEEP_REFUSE); /* the default: safe where S3 is untested */
    assert_false(c.s3_simulate);
#ifdef HV_TEST_HOOKS
    assert_int_equal(parse(&c, &e, "on_sleep = resume\ns3_simulate = yes\n"), 0);
    assert_int_equal(c.on_sleep, ON_SLEEP_RESUME);
    assert_true(c.s3_simulate);
#else
    assert_int_equal(parse(&c, &e, "on_sleep = resume\ns3_simulate = yes\n"), 1);
    assert_non_null(strstr(e.msg[0], "only in the test build"));
#endif
    assert_int_equal(parse(&c, &e, "on_sleep = resume\ns3_simulate = no\n"), 0);
    assert_int_equal(c.on_sleep, ON_SLEEP_RESUME);
    assert_false(c.s3_simulate);
    assert_int_equal(parse(&c, &e, "on_sleep = refuse\n"), 0);
    assert_int_equal(c.on_sleep, ON_SLEEP_REFUSE);
}

static void test_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "memory = 8\n",
        "memory = 99999\n",
        "reply_timeout_ms = 3600001\n",
        "send_timeout_ms = -1\n",
        "handshake_timeout_ms = soon\n",
        "memory = 12abc\n",
        "serial = com9\n",
        "nic = 00:3\n",
        "nic = 52:54:00:12:34\n",
        "ip = 10.0.0.1\n",
        "ip = 10.0.0.256/24\n",
        "ip = 10.0.0.1/33\n",
        "connect = 10.0.2.2\n",
        "connect = 10.0.2.2:0\n",
        "listen = 70000\n",
        "uuid = 1234\n",
        "cpuid_hypervisor_bit = maybe\n",
        "key = \n",
        "poll_interval_us = 1\n",
        "gateway = 10.0.0.1\n", /* gateway without a static ip */
        "on_sleep = hibernate\n",
        "s3_simulate = maybe\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hv_config c;
        struct errs e;
        int n = parse(&c, &e, bad[i]);
        if (n != 1)
            fail_msg("'%s' gave %d errors", bad[i], n);
        assert_int_equal(e.line[0], 1);
    }
}

static void test_connect_and_listen_conflict(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    assert_int_equal(parse(&c, &e, "listen = 1\nconnect = 1.2.3.4:5\n"), 1);
    assert_int_equal(e.line[0], 2);
}

static void test_diag_port_and_net_selftest(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    assert_int_equal(parse(&c, &e, ""), 0);
    assert_int_equal(c.diag_port, 0); /* off by default */
    assert_false(c.net_selftest);
    assert_int_equal(parse(&c, &e, "diag_port = 7777\nnet_selftest = yes\n"), 0);
    assert_int_equal(c.diag_port, 7777);
    assert_true(c.net_selftest);
    assert_int_equal(parse(&c, &e, "diag_port = off\n"), 0);
    assert_int_equal(c.diag_port, 0);
    assert_int_equal(parse(&c, &e, "diag_port = 0\nnet_selftest = maybe\n"), 2);
    assert_int_equal(e.line[0], 1);
    assert_int_equal(e.line[1], 2);
    assert_int_equal(parse(&c, &e, "listen = 4444\ndiag_port = 4444\n"), 1);
    assert_int_equal(e.line[0], 2);
    assert_non_null(strstr(e.msg[0], "same port"));
}

static void test_debug_hypercalls(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    assert_int_equal(parse(&c, &e, ""), 0);
    assert_false(c.debug_hypercalls); /* the product answers no test hypercall */
#ifdef HV_TEST_HOOKS
    assert_int_equal(parse(&c, &e, "debug_hypercalls = yes\n"), 0);
    assert_true(c.debug_hypercalls);
#else
    /* The product build has no test hook to turn on (include/test_hooks.h). */
    assert_int_equal(parse(&c, &e, "debug_hypercalls = yes\n"), 1);
    assert_non_null(strstr(e.msg[0], "only in the test build"));
#endif
    assert_int_equal(parse(&c, &e, "debug_hypercalls = no\n"), 0);
    assert_false(c.debug_hypercalls);
    assert_int_equal(parse(&c, &e, "debug_hypercalls = sometimes\n"), 1);
    assert_false(c.debug_hypercalls);
}

/* No error message carries the key's value, whatever is wrong with the line. */
static void test_errors_never_echo_the_key(void **state)
{
    (void)state;
    static const char secret[] = "S3cretS3cretS3cretS3cretS3cretS3cretS3cretS3cretS3cretS3cretXYZW";
    char text[256];
    const char *forms[] = {"key = %s\n", "key %s\n", "key: %s\n", "key = %s\nkey = %s\n"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct hv_config c;
        struct errs e;
        snprintf(text, sizeof(text), forms[i], secret, secret);
        int n = parse(&c, &e, text);
        if (n < 1)
            fail_msg("form %zu: no error", i);
        for (int k = 0; k < n && k < 8; k++) {
            if (strstr(e.what[k], "S3cret") || strstr(e.msg[k], "S3cret"))
                fail_msg("form %zu: error %d echoes the key: '%s' '%s'", i, k, e.msg[k], e.what[k]);
        }
    }
}

/* The key line becomes a comment of the same length; the rest parses as before. */
static void test_blank_key(void **state)
{
    (void)state;
    char text[] = "memory = 64\r\n  key = s3cret#1\r\n# key = not-a-line\nname = vm1 # key = x\n"
                  "key=ab\nlog_level = debug";
    size_t len = strlen(text);
    assert_int_equal(config_blank_key(text, len), 2);
    assert_int_equal(strlen(text), len);
    assert_null(strstr(text, "s3cret"));
    assert_null(strstr(text, "=ab"));
    assert_non_null(strstr(text, "# key = not-a-line\n"));        /* comments stay */
    assert_non_null(strstr(text, "name = vm1 # key = x\n"));      /* a key only in a comment */
    assert_non_null(strstr(text, "\r\n# key: in the fi\r\n"));    /* 16 bytes, as the line */
    assert_non_null(strstr(text, "\n# key:\nlog_level = debug")); /* "key=ab": 6 bytes of note */
    struct hv_config c;
    struct errs e;
    assert_int_equal(parse(&c, &e, text), 0);
    assert_false(c.has_key);
    assert_int_equal(c.memory_mib, 64);
    assert_string_equal(c.name, "vm1");
    assert_int_equal(c.log_level, LOG_DEBUG);
    char none[] = "memory = 64\n";
    assert_int_equal(config_blank_key(none, strlen(none)), 0);
    assert_string_equal(none, "memory = 64\n");
}

static void test_dma_protection(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    assert_int_equal(parse(&c, &e, ""), 0);
    assert_int_equal(c.dma_protection, DMA_PROT_AUTO); /* protect where a DMAR exists */
    assert_int_equal(parse(&c, &e, "dma_protection = require\n"), 0);
    assert_int_equal(c.dma_protection, DMA_PROT_REQUIRE);
    assert_int_equal(parse(&c, &e, "dma_protection = off\n"), 0);
    assert_int_equal(c.dma_protection, DMA_PROT_OFF);
    assert_int_equal(parse(&c, &e, "dma_protection = auto\n"), 0);
    assert_int_equal(c.dma_protection, DMA_PROT_AUTO);
    assert_int_equal(parse(&c, &e, "\ndma_protection = yes\n"), 1);
    assert_int_equal(e.line[0], 2);
    assert_non_null(strstr(e.msg[0], "require, auto or off"));
}

static void test_binary_garbage(void **state)
{
    (void)state;
    struct hv_config c;
    struct errs e;
    const char text[] = {'m', 'e', 'm', 'o', 'r', 'y', '=', '6', '4', '\0', '\n', 'x', '=', '\n'};
    config_defaults(&c);
    memset(&e, 0, sizeof(e));
    assert_int_equal(config_parse(&c, text, sizeof(text), on_err, &e), 2);
    assert_int_equal(e.line[0], 1);
    assert_int_equal(e.line[1], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_nic_by_mac_and_connect),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_connect_and_listen_conflict),
        cmocka_unit_test(test_binary_garbage),
        cmocka_unit_test(test_diag_port_and_net_selftest),
        cmocka_unit_test(test_debug_hypercalls),
        cmocka_unit_test(test_errors_never_echo_the_key),
        cmocka_unit_test(test_dma_protection),
        cmocka_unit_test(test_blank_key),
        cmocka_unit_test(test_on_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
