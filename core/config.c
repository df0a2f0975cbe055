/*
 * config.c - hv.conf parser (see hv_config.h).  No C library: it runs in
 * the EFI loader, the core and host tests alike.
 */
#include "hv_config.h"
#include "test_hooks.h"

/* A test hook asked of the product build (include/test_hooks.h). */
#define NOT_IN_PRODUCT                                                                             \
    "a test hook, only in the test build (build/hv-test.efi), never in the product"

#define LINE_MAX_LEN 256

struct span {
    const char *p;
    size_t n;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static struct span trim(struct span s)
{
    while (s.n && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

static bool eq(struct span s, const char *lit)
{
    size_t i = 0;
    for (; lit[i]; i++)
        if (i >= s.n || s.p[i] != lit[i])
            return false;
    return i == s.n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Unsigned number (decimal, or hex with 0x) filling all of s. */
static bool parse_u64(struct span s, uint64_t *out)
{
    uint64_t v = 0;
    unsigned base = 10;
    size_t i = 0;
    if (s.n > 2 && s.p[0] == '0' && (s.p[1] == 'x' || s.p[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (i == s.n)
        return false;
    for (; i < s.n; i++) {
        int d = hexval(s.p[i]);
        if (d < 0 || (unsigned)d >= base)
            return false;
        if (v > (UINT64_MAX - (unsigned)d) / base)
            return false;
        v = v * base + (unsigned)d;
    }
    *out = v;
    return true;
}

static bool parse_range(struct span s, uint64_t lo, uint64_t hi, uint32_t *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v < lo || v > hi)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Dotted IPv4 address, returned in host byte order. */
static bool parse_ipv4(struct span s, uint32_t *out)
{
    uint32_t ip = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        uint32_t v = 0;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9' && i - start < 3)
            v = v * 10 + (uint32_t)(s.p[i++] - '0');
        if (i == start || v > 255)
            return false;
        ip = (ip << 8) | v;
        if (part < 3) {
            if (i >= s.n || s.p[i] != '.')
                return false;
            i++;
        }
    }
    if (i != s.n)
        return false;
    *out = ip;
    return true;
}

static bool split_at(struct span s, char c, struct span *a, struct span *b)
{
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == c) {
            *a = (struct span){s.p, i};
            *b = (struct span){s.p + i + 1, s.n - i - 1};
            return true;
        }
    }
    return false;
}

static bool parse_bool(struct span s, bool *out)
{
    if (eq(s, "yes") || eq(s, "true") || eq(s, "on") || eq(s, "1")) {
        *out = true;
        return true;
    }
    if (eq(s, "no") || eq(s, "false") || eq(s, "off") || eq(s, "0")) {
        *out = false;
        return true;
    }
    return false;
}

static bool parse_str(struct span s, char *dst, size_t cap, bool allow_empty)
{
    if (s.n >= cap || (!allow_empty && s.n == 0))
        return false;
    for (size_t i = 0; i < s.n; i++) {
        if ((unsigned char)s.p[i] < 0x20)
            return false;
        dst[i] = s.p[i];
    }
    dst[s.n] = '\0';
    return true;
}

/* MAC address aa:bb:cc:dd:ee:ff. */
static bool parse_mac(struct span s, uint8_t mac[6])
{
    if (s.n != 17)
        return false;
    for (int i = 0; i < 6; i++) {
        int h = hexval(s.p[i * 3]), l = hexval(s.p[i * 3 + 1]);
        if (h < 0 || l < 0 || (i < 5 && s.p[i * 3 + 2] != ':'))
            return false;
        mac[i] = (uint8_t)(h << 4 | l);
    }
    return true;
}

/* PCI address "BB:DD.F" in hex, optionally prefixed by segment "0000:". */
static bool parse_pci(struct span s, uint8_t *bus, uint8_t *dev, uint8_t *fn)
{
    struct span a, b, c, d;
    if (s.n == 12 && s.p[4] == ':') {
        for (int i = 0; i < 4; i++)
            if (s.p[i] != '0')
                return false; /* only segment 0 exists on the platforms we boot */
        s.p += 5;
        s.n -= 5;
    }
    if (!split_at(s, ':', &a, &b) || !split_at(b, '.', &c, &d))
        return false;
    uint64_t vb = 0, vd = 0, vf = 0;
    for (size_t i = 0; i < a.n; i++) {
        int h = hexval(a.p[i]);
        if (h < 0)
            return false;
        vb = vb * 16 + (unsigned)h;
    }
    for (size_t i = 0; i < c.n; i++) {
        int h = hexval(c.p[i]);
        if (h < 0)
            return false;
        vd = vd * 16 + (unsigned)h;
    }
    if (d.n != 1 || hexval(d.p[0]) < 0)
        return false;
    vf = (unsigned)hexval(d.p[0]);
    if (a.n == 0 || a.n > 2 || c.n == 0 || c.n > 2 || vb > 255 || vd > 31 || vf > 7)
        return false;
    *bus = (uint8_t)vb;
    *dev = (uint8_t)vd;
    *fn = (uint8_t)vf;
    return true;
}

static bool parse_uuid(struct span s, uint8_t out[16])
{
    /* 8-4-4-4-12 hex digits, bytes in text order (as QEMU's -uuid). */
    if (s.n != 36)
        return false;
    int k = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s.p[i] != '-')
                return false;
            i++;
            continue;
        }
        int h = hexval(s.p[i]), l = hexval(s.p[i + 1]);
        if (h < 0 || l < 0)
            return false;
        out[k++] = (uint8_t)(h << 4 | l);
        i += 2;
    }
    return k == 16;
}

void config_defaults(struct hv_config *c)
{
    uint8_t *b = (uint8_t *)c;
    for (size_t i = 0; i < sizeof(*c); i++)
        b[i] = 0;
    c->memory_mib = 64;
    c->log_level = LOG_INFO;
    c->serial_port = 0x3f8;
    c->nic_select = NIC_AUTO;
    c->dhcp = true;
    c->transport = TRANSPORT_CONNECT;
    c->peer_ip = (10u << 24) | 2 | (2 << 8); /* 10.0.2.2: the host under slirp/user-net */
    c->peer_port = 4444;
    c->reconnect_ms = 1000;
    c->unhook_timeout_ms = 10000;
    c->reply_timeout_ms = 300000;
    c->send_timeout_ms = 30000;
    c->handshake_timeout_ms = 10000;
    c->poll_interval_us = 1000;
    c->cpuid_hv_bit = false;
    const char *n = "hv-guest";
    for (int i = 0; n[i]; i++)
        c->name[i] = n[i];
}

const char *config_log_level_name(uint32_t level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return level < 4 ? names[level] : "?";
}

enum key_id {
    K_MEMORY,
    K_LOG_LEVEL,
    K_SERIAL,
    K_NIC,
    K_IP,
    K_GATEWAY,
    K_CONNECT,
    K_LISTEN,
    K_RECONNECT,
    K_UNHOOK,
    K_REPLY_TIMEOUT,
    K_SEND_TIMEOUT,
    K_HANDSHAKE_TIMEOUT,
    K_POLL,
    K_CPUID_HV,
    K_KEY,
    K_NAME,
    K_UUID,
    K_CHAIN,
    K_DIAG_PORT,
    K_NET_SELFTEST,
    K_DEBUG_HC,
    K_DMA_PROTECTION,
    K_ON_SLEEP,
    K_S3_SIMULATE,
    K_COUNT
};

static const char *const key_names[K_COUNT] = {
    [K_MEMORY] = "memory",
    [K_LOG_LEVEL] = "log_level",
    [K_SERIAL] = "serial",
    [K_NIC] = "nic",
    [K_IP] = "ip",
    [K_GATEWAY] = "gateway",
    [K_CONNECT] = "connect",
    [K_LISTEN] = "listen",
    [K_RECONNECT] = "reconnect_ms",
    [K_UNHOOK] = "unhook_timeout_ms",
    [K_REPLY_TIMEOUT] = "reply_timeout_ms",
    [K_SEND_TIMEOUT] = "send_timeout_ms",
    [K_HANDSHAKE_TIMEOUT] = "handshake_timeout_ms",
    [K_POLL] = "poll_interval_us",
    [K_CPUID_HV] = "cpuid_hypervisor_bit",
    [K_KEY] = "key",
    [K_NAME] = "name",
    [K_UUID] = "uuid",
    [K_CHAIN] = "chain",
    [K_DIAG_PORT] = "diag_port",
    [K_NET_SELFTEST] = "net_selftest",
    [K_DEBUG_HC] = "debug_hypercalls",
    [K_DMA_PROTECTION] = "dma_protection",
    [K_ON_SLEEP] = "on_sleep",
    [K_S3_SIMULATE] = "s3_simulate",
};

/* Applies one value; returns NULL on success or what is wrong with it. */
static const char *apply(struct hv_config *c, enum key_id k, struct span v)
{
    uint32_t u;
    struct span a, b;
    switch (k) {
    case K_MEMORY:
        if (!parse_range(v, 16, 4096, &c->memory_mib))
            return "memory must be a size in MiB between 16 and 4096";
        return 0;
    case K_LOG_LEVEL:
        for (uint32_t l = 0; l < 4; l++) {
            if (eq(v, config_log_level_name(l))) {
                c->log_level = l;
                return 0;
            }
        }
        return "log_level must be error, warn, info or debug";
    case K_SERIAL:
        if (eq(v, "none"))
            c->serial_port = 0;
        else if (eq(v, "com1"))
            c->serial_port = 0x3f8;
        else if (eq(v, "com2"))
            c->serial_port = 0x2f8;
        else if (parse_range(v, 1, 0xfff8, &u))
            c->serial_port = (uint16_t)u;
        else
            return "serial must be none, com1, com2 or an I/O port";
        return 0;
    case K_NIC:
        if (eq(v, "auto"))
            c->nic_select = NIC_AUTO;
        else if (eq(v, "none"))
            c->nic_select = NIC_NONE;
        else if (parse_mac(v, c->nic_mac))
            c->nic_select = NIC_BY_MAC;
        else if (parse_pci(v, &c->nic_bus, &c->nic_dev, &c->nic_fn))
            c->nic_select = NIC_BY_PCI;
        else
            return "nic must be auto, none, a PCI address BB:DD.F or a MAC aa:bb:cc:dd:ee:ff";
        return 0;
    case K_IP:
        if (eq(v, "dhcp")) {
            c->dhcp = true;
            c->ip = c->netmask = 0;
            return 0;
        }
        if (!split_at(v, '/', &a, &b) || !parse_ipv4(a, &c->ip) || !parse_range(b, 1, 32, &u))
            return "ip must be dhcp or A.B.C.D/PREFIX";
        c->netmask = u == 32 ? 0xffffffffu : ~(0xffffffffu >> u);
        c->dhcp = false;
        return 0;
    case K_GATEWAY:
        return parse_ipv4(v, &c->gateway) ? 0 : "gateway must be an IPv4 address A.B.C.D";
    case K_CONNECT:
        if (!split_at(v, ':', &a, &b) || !parse_ipv4(a, &c->peer_ip) ||
            !parse_range(b, 1, 65535, &u))
            return "connect must be A.B.C.D:PORT";
        c->peer_port = (uint16_t)u;
        c->transport = TRANSPORT_CONNECT;
        return 0;
    case K_LISTEN:
        if (!parse_range(v, 1, 65535, &u))
            return "listen must be a TCP port 1-65535";
        c->listen_port = (uint16_t)u;
        c->transport = TRANSPORT_LISTEN;
        return 0;
    case K_RECONNECT:
        return parse_range(v, 10, 600000, &c->reconnect_ms)
                   ? 0
                   : "reconnect_ms must be between 10 and 600000";
    case K_UNHOOK:
        return parse_range(v, 0, 3600000, &c->unhook_timeout_ms)
                   ? 0
                   : "unhook_timeout_ms must be between 0 and 3600000";
    case K_REPLY_TIMEOUT:
        return parse_range(v, 0, 3600000, &c->reply_timeout_ms)
                   ? 0
                   : "reply_timeout_ms must be between 0 and 3600000";
    case K_SEND_TIMEOUT:
        return parse_range(v, 0, 3600000, &c->send_timeout_ms)
                   ? 0
                   : "send_timeout_ms must be between 0 and 3600000";
    case K_HANDSHAKE_TIMEOUT:
        return parse_range(v, 0, 3600000, &c->handshake_timeout_ms)
                   ? 0
                   : "handshake_timeout_ms must be between 0 and 3600000";
    case K_POLL:
        return parse_range(v, 10, 1000000, &c->poll_interval_us)
                   ? 0
                   : "poll_interval_us must be between 10 and 1000000";
    case K_DMA_PROTECTION:
        if (eq(v, "auto"))
            c->dma_protection = DMA_PROT_AUTO;
        else if (eq(v, "require"))
            c->dma_protection = DMA_PROT_REQUIRE;
        else if (eq(v, "off"))
            c->dma_protection = DMA_PROT_OFF;
        else
            return "dma_protection must be require, auto or off";
        return 0;
    case K_ON_SLEEP:
        if (eq(v, "refuse"))
            c->on_sleep = ON_SLEEP_REFUSE;
        else if (eq(v, "resume"))
            c->on_sleep = ON_SLEEP_RESUME;
        else
            return "on_sleep must be refuse or resume";
        return 0;
    case K_CPUID_HV:
        return parse_bool(v, &c->cpuid_hv_bit) ? 0 : "expected yes or no";
    case K_KEY:
        if (!parse_str(v, c->key, sizeof(c->key), false))
            return "key must be 1 to 63 printable characters";
        c->has_key = true;
        return 0;
    case K_NAME:
        return parse_str(v, c->name, sizeof(c->name), true)
                   ? 0
                   : "name must be at most 63 printable characters";
    case K_UUID:
        if (!parse_uuid(v, c->uuid))
            return "uuid must be 8-4-4-4-12 hex digits";
        c->has_uuid = true;
        return 0;
    case K_CHAIN:
        return parse_str(v, c->chain, sizeof(c->chain), false)
                   ? 0
                   : "chain must be a path of at most 127 characters";
    case K_DIAG_PORT:
        if (eq(v, "off")) {
            c->diag_port = 0;
            return 0;
        }
        if (!parse_range(v, 1, 65535, &u))
            return "diag_port must be off or a TCP port 1-65535";
        c->diag_port = (uint16_t)u;
        return 0;
    case K_NET_SELFTEST:
        return parse_bool(v, &c->net_selftest) ? 0 : "expected yes or no";
    case K_DEBUG_HC:
        if (!parse_bool(v, &c->debug_hypercalls))
            return "expected yes or no";
        return !TEST_HOOKS && c->debug_hypercalls ? NOT_IN_PRODUCT : 0;
    case K_S3_SIMULATE:
        if (!parse_bool(v, &c->s3_simulate))
            return "expected yes or no";
        return !TEST_HOOKS && c->s3_simulate ? NOT_IN_PRODUCT : 0;
    case K_COUNT:
        break;
    }
    return "internal error";
}

static void report(config_error_fn err, void *ctx, unsigned line, const char *msg, struct span what)
{
    char buf[LINE_MAX_LEN];
    size_t n = what.n < sizeof(buf) - 1 ? what.n : sizeof(buf) - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = what.p[i];
    buf[n] = '\0';
    if (err)
        err(ctx, line, msg, buf);
}

int config_parse(struct hv_config *c, const char *text, size_t len, config_error_fn err, void *ctx)
{
    int errors = 0;
    unsigned line = 0;
    unsigned seen[K_COUNT] = {0};
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        struct span l = {text + pos, end - pos};
        pos = end + 1;
        line++;
        /* A comment starts at '#' at the beginning or after white space. */
        for (size_t i = 0; i < l.n; i++) {
            if (l.p[i] == '#' && (i == 0 || is_space(l.p[i - 1]))) {
                l.n = i;
                break;
            }
        }
        l = trim(l);
        if (l.n == 0)
            continue;
        for (size_t i = 0; i < l.n; i++) {
            if (l.p[i] == '\0') {
                report(err, ctx, line, "NUL byte in line", (struct span){"", 0});
                errors++;
                goto next;
            }
        }
        struct span key, val;
        if (!split_at(l, '=', &key, &val)) {
            /* A mistyped `key` line may hold the secret: echo only its first word. */
            struct span word = {l.p, 0};
            while (word.n < l.n && !is_space(l.p[word.n]) && l.p[word.n] != ':')
                word.n++;
            report(err, ctx, line, "expected 'key = value'", word);
            errors++;
            continue;
        }
        key = trim(key);
        val = trim(val);
        int k = -1;
        for (int i = 0; i < K_COUNT; i++)
            if (eq(key, key_names[i]))
                k = i;
        if (k < 0) {
            report(err, ctx, line, "unknown key", key);
            errors++;
            continue;
        }
        if (seen[k]) {
            report(err, ctx, line, "duplicate key", key);
            errors++;
            continue;
        }
        seen[k] = line;
        const char *why = apply(c, (enum key_id)k, val);
        if (why) {
            /* The key is a secret: its errors name the key, never the value. */
            report(err, ctx, line, why, k == K_KEY ? key : val);
            errors++;
            continue;
        }
        if ((k == K_CONNECT && seen[K_LISTEN]) || (k == K_LISTEN && seen[K_CONNECT])) {
            report(err, ctx, line, "connect and listen exclude each other", key);
            errors++;
        }
    next:;
    }
    if (seen[K_GATEWAY] && c->dhcp) {
        report(err, ctx, seen[K_GATEWAY], "gateway needs a static ip (ip = A.B.C.D/PREFIX)",
               (struct span){"gateway", 7});
        errors++;
    }
    if (seen[K_DIAG_PORT] && c->diag_port && c->transport == TRANSPORT_LISTEN &&
        c->diag_port == c->listen_port) {
        report(err, ctx, seen[K_DIAG_PORT], "diag_port and listen use the same port",
               (struct span){"diag_port", 9});
        errors++;
    }
    return errors;
}

size_t config_blank_key(char *text, size_t len)
{
    static const char note[] = "# key: in the firmware's boot-service variable";
    size_t blanked = 0, pos = 0;
    while (pos < len) {
        size_t start = pos, end = pos;
        while (end < len && text[end] != '\n')
            end++;
        pos = end + 1;
        struct span l = {text + start, end - start};
        for (size_t i = 0; i < l.n; i++) {
            if (l.p[i] == '#' && (i == 0 || is_space(l.p[i - 1]))) {
                l.n = i;
                break;
            }
        }
        struct span key, val;
        if (!split_at(trim(l), '=', &key, &val) || !eq(trim(key), "key"))
            continue;
        /* Every byte of the line but its end changes, so no part of the value survives in
         * the file's clusters (the file keeps its length). */
        size_t n = end - start;
        if (n && text[start + n - 1] == '\r')
            n--;
        for (size_t i = 0; i < n; i++)
            text[start + i] = i < sizeof(note) - 1 ? note[i] : ' ';
        blanked++;
    }
    return blanked;
}
