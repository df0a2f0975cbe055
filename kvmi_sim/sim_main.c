/*
 * sim_main.c - kvmi-sim: the KVMI engine over POSIX TCP with a fake VM, for
 * tests and for introspector authors (docs/kvmi-sim.md).
 *
 * Threads: main = the transport (connect or accept, read, feed kvmi_rx(),
 * reconnect); one per vCPU (sim_vm.c); one for signals (SIGUSR1 = unhook
 * request as a device manager would make it, SIGTERM/SIGINT = unhook then
 * exit 0).  This file also implements the log, random and crash parts of
 * kvmi_arch.h; sim_net.c has the transport.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "kvmi/kvmi_arch.h"
#include "sim.h"

struct sim g_sim;

struct sim_opt opt = {.unhook_timeout_ms = 5000};

unsigned g_conn_id; /* bumped at every end of connection */
bool g_exiting;     /* SIGTERM/SIGINT: do not reconnect after the unhook */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void sim_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_mu);
    fputs("kvmi-sim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_mu);
    va_end(ap);
}

static const char *const msg_names[] = {"EVENT_REPLY",
                                        "EVENT",
                                        "GET_VERSION",
                                        "CHECK_COMMAND",
                                        "CHECK_EVENT",
                                        "GET_GUEST_INFO",
                                        "GET_VCPU_INFO",
                                        "PAUSE_VCPU",
                                        "CONTROL_VM_EVENTS",
                                        "CONTROL_EVENTS",
                                        "CONTROL_CR",
                                        "CONTROL_MSR",
                                        "CONTROL_VE",
                                        "GET_REGISTERS",
                                        "SET_REGISTERS",
                                        "GET_CPUID",
                                        "GET_XSAVE",
                                        "READ_PHYSICAL",
                                        "WRITE_PHYSICAL",
                                        "INJECT_EXCEPTION",
                                        "GET_PAGE_ACCESS",
                                        "SET_PAGE_ACCESS",
                                        "GET_MAP_TOKEN",
                                        "GET_MTRR_TYPE",
                                        "CONTROL_SPP",
                                        "GET_PAGE_WRITE_BITMAP",
                                        "SET_PAGE_WRITE_BITMAP",
                                        "CONTROL_CMD_RESPONSE",
                                        "?28",
                                        "GET_MAX_GFN"};

static const char *const event_names[] = {"UNHOOK",     "CR",          "MSR",        "XSETBV",
                                          "BREAKPOINT", "HYPERCALL",   "PF",         "TRAP",
                                          "DESCRIPTOR", "CREATE_VCPU", "PAUSE_VCPU", "SINGLESTEP"};

static const char *msg_name(unsigned id)
{
    return id < sizeof(msg_names) / sizeof(msg_names[0]) ? msg_names[id] : "UNKNOWN";
}

/* ---- arch: diagnostics, randomness, crash --------------------------------- */

void kvmi_arch_trace(struct kvmi_vm *vm, bool dir_in, const void *msg, size_t len)
{
    (void)vm;
    if (g_sim.quiet || len < sizeof(struct kvmi_msg_hdr))
        return;
    struct kvmi_msg_hdr h;
    memcpy(&h, msg, sizeof(h));
    const uint8_t *body = (const uint8_t *)msg + sizeof(h);
    if (!dir_in && h.id == KVMI_EVENT && len >= sizeof(h) + sizeof(struct kvmi_event)) {
        struct kvmi_event ev;
        memcpy(&ev, body, 8);
        sim_log("-> event %s vcpu=%u seq=%u size=%u",
                ev.event < KVMI_NUM_EVENTS ? event_names[ev.event] : "?", ev.vcpu, h.seq, h.size);
    } else if (!dir_in && len >= sizeof(h) + 4) {
        int32_t err;
        memcpy(&err, body, sizeof(err));
        sim_log("-> reply %s seq=%u size=%u err=%d", msg_name(h.id), h.seq, h.size, err);
    } else if (dir_in && kvmi_msg_has_vcpu_hdr(h.id) && len >= sizeof(h) + 2) {
        uint16_t vcpu;
        memcpy(&vcpu, body, sizeof(vcpu));
        sim_log("<- %s vcpu=%u seq=%u size=%u", msg_name(h.id), vcpu, h.seq, h.size);
    } else {
        sim_log("%s %s seq=%u size=%u", dir_in ? "<-" : "->", msg_name(h.id), h.seq, h.size);
    }
}

void kvmi_arch_log(struct kvmi_vm *vm, const char *what, int64_t value)
{
    (void)vm;
    sim_log("engine: %s (%lld)", what, (long long)value);
}

uint64_t kvmi_arch_random(struct kvmi_vm *vm)
{
    (void)vm;
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    return r;
}

void kvmi_arch_crash(struct kvmi_vm *vm, unsigned vcpu)
{
    (void)vm;
    /* KVM kills the VMM: so does the simulator. */
    sim_log("vcpu %u: CRASH action, the guest is killed", vcpu);
    _exit(3);
}

/* ---- unhook (the device manager's part) ----------------------------------- */

static void unhook(void)
{
    unsigned conn = __atomic_load_n(&g_conn_id, __ATOMIC_ACQUIRE);
    int rc = kvmi_unhook_request(&g_sim.vm);
    if (rc == -KVM_EFAULT) {
        sim_log("unhook: no introspection session");
        return;
    }
    if (rc == 0) {
        sim_log("unhook: event sent, waiting up to %u ms for the introspector to close",
                opt.unhook_timeout_ms);
        for (unsigned ms = 0; ms < opt.unhook_timeout_ms; ms += 10) {
            if (__atomic_load_n(&g_conn_id, __ATOMIC_ACQUIRE) != conn) {
                sim_log("unhook: introspector closed the connection");
                return;
            }
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
        }
        sim_log("unhook: timeout, closing");
    } else {
        sim_log("unhook: event not enabled by the introspector, closing");
    }
    kvmi_arch_close(&g_sim.vm);
    for (unsigned ms = 0; ms < 2000; ms += 10) {
        if (__atomic_load_n(&g_conn_id, __ATOMIC_ACQUIRE) != conn)
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void *signal_thread(void *arg)
{
    sigset_t *set = arg;
    for (;;) {
        int sig;
        if (sigwait(set, &sig))
            continue;
        if (sig == SIGUSR1) {
            sim_log("SIGUSR1: unhook requested");
            unhook();
        } else if (sig == SIGUSR2) {
            int i = sim_vm_hotplug(&g_sim);
            if (i < 0)
                sim_log("SIGUSR2: already at --max-vcpus %u, no vCPU added", g_sim.max_vcpus);
            else
                sim_log("SIGUSR2: vcpu %d hot-plugged (%d vCPUs)", i, i + 1);
        } else {
            sim_log("%s: unhook and exit", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            __atomic_store_n(&g_exiting, true, __ATOMIC_RELEASE);
            unhook();
            exit(0);
        }
    }
    return NULL;
}

/* ---- command line ----------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: kvmi-sim (--connect HOST:PORT | --listen PORT) --vcpus N --mem MIB\n"
          "                [--name NAME] [--uuid UUID] [--key KEY] [--period-us U]\n"
          "                [--unhook-timeout-ms T] [--deny-command ID]... [--deny-event ID]...\n"
          "                [--max-vcpus M] [--quiet]\n"
          "Simulated VM serving the KVMI v6 protocol (see docs/kvmi-sim.md).\n"
          "  --connect HOST:PORT  connect to the introspector (as QEMU does); reconnect\n"
          "                       200 ms after each disconnect\n"
          "  --listen PORT        accept introspector connections instead\n"
          "  --vcpus N            number of vCPUs at start (1-64)\n"
          "  --mem MIB            guest memory in MiB (at least 16)\n"
          "  --name NAME          VM name sent in the handshake (default kvmi-sim)\n"
          "  --uuid UUID          VM UUID, 8-4-4-4-12 hex (default all zero)\n"
          "  --key KEY            require HMAC-SHA1(KEY, handshake) as cookie_hash\n"
          "  --period-us U        guest loop period per vCPU (default 1000)\n"
          "  --unhook-timeout-ms T  wait for the close after UNHOOK (default 5000)\n"
          "  --deny-command ID    disallow a command, as KVM_INTROSPECTION_COMMAND with\n"
          "                       allow=0 would (number, name such as GET_REGISTERS, or\n"
          "                       -1/all; GET_VERSION, CHECK_COMMAND, CHECK_EVENT stay)\n"
          "  --deny-event ID      disallow an event likewise (number, name such as PF, or all)\n"
          "  --max-vcpus M        allow SIGUSR2 to hot-plug vCPUs up to M (default N)\n"
          "  --quiet              do not log each message\n"
          "Signals: SIGUSR1 = unhook request, SIGTERM = unhook then exit 0,\n"
          "         SIGUSR2 = hot-plug one more vCPU (up to --max-vcpus).\n",
          f);
}

/* A message or event ID for --deny-*: a number (-1 = all), "all", or a
 * name from the table, with or without the KVMI_ / KVMI_EVENT_ prefix. */
static bool parse_id(const char *s, const char *const *names, unsigned n, int *id)
{
    char *end;
    long v = strtol(s, &end, 0);
    if (*s && !*end) {
        *id = v < -1000 ? -1000 : v > 1000 ? 1000 : (int)v;
        return true;
    }
    if (!strcasecmp(s, "all")) {
        *id = -1;
        return true;
    }
    if (!strncasecmp(s, "KVMI_EVENT_", 11) && names == event_names)
        s += 11;
    else if (!strncasecmp(s, "KVMI_", 5))
        s += 5;
    for (unsigned i = 0; i < n; i++) {
        if (!strcasecmp(s, names[i])) {
            *id = (int)i;
            return true;
        }
    }
    return false;
}

static int deny(struct kvmi_config *cfg, bool command, const char *val)
{
    int id;
    const char *what = command ? "--deny-command" : "--deny-event";
    bool ok = command ? parse_id(val, msg_names, sizeof(msg_names) / sizeof(msg_names[0]), &id)
                      : parse_id(val, event_names, KVMI_NUM_EVENTS, &id);
    if (!ok) {
        fprintf(stderr, "kvmi-sim: %s %s: not a number or a known name\n", what, val);
        return -1;
    }
    int rc = kvmi_config_allow(cfg, command, id, false);
    if (rc == -KVM_EPERM) {
        fprintf(stderr,
                "kvmi-sim: %s %s: GET_VERSION, CHECK_COMMAND and CHECK_EVENT cannot be "
                "disallowed (KVM: -EPERM)\n",
                what, val);
        return -1;
    }
    if (rc) {
        fprintf(stderr, "kvmi-sim: %s %s: no such %s (KVM: -EINVAL)\n", what, val,
                command ? "command (known: 2-27, 29)" : "event (known: 0-11)");
        return -1;
    }
    return 0;
}

static int parse_uuid(const char *s, uint8_t out[16])
{
    unsigned n = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '-')
            continue;
        int hi, lo;
        char c1 = p[0], c2 = p[1];
        if (!c2)
            return -1;
#define HEXV(c)                                                                                    \
    ((c) >= '0' && (c) <= '9'                 ? (c) - '0'                                          \
     : ((c) | 32) >= 'a' && ((c) | 32) <= 'f' ? ((c) | 32) - 'a' + 10                              \
                                              : -1)
        hi = HEXV(c1);
        lo = HEXV(c2);
#undef HEXV
        if (hi < 0 || lo < 0 || n >= 16)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        p++;
    }
    return n == 16 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct kvmi_config cfg;
    kvmi_default_config(&cfg);
    strcpy(cfg.name, "kvmi-sim");
    unsigned vcpus = 0, mem = 0, max_vcpus = 0;
    g_sim.period_us = 1000;
    static char hostbuf[256];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            g_sim.quiet = true;
            continue;
        }
        if (!val) {
            fprintf(stderr, "kvmi-sim: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--connect")) {
            const char *colon = strrchr(val, ':');
            if (!colon || (size_t)(colon - val) >= sizeof(hostbuf)) {
                fprintf(stderr, "kvmi-sim: --connect wants HOST:PORT\n");
                return 2;
            }
            memcpy(hostbuf, val, (size_t)(colon - val));
            opt.host = hostbuf;
            opt.port = colon + 1;
        } else if (!strcmp(a, "--listen")) {
            opt.listen = true;
            opt.port = val;
        } else if (!strcmp(a, "--vcpus")) {
            vcpus = (unsigned)atoi(val);
        } else if (!strcmp(a, "--max-vcpus")) {
            max_vcpus = (unsigned)atoi(val);
        } else if (!strcmp(a, "--mem")) {
            mem = (unsigned)atoi(val);
        } else if (!strcmp(a, "--name")) {
            memset(cfg.name, 0, sizeof(cfg.name));
            snprintf(cfg.name, sizeof(cfg.name), "%s", val);
        } else if (!strcmp(a, "--uuid")) {
            if (parse_uuid(val, cfg.uuid)) {
                fprintf(stderr, "kvmi-sim: bad --uuid %s\n", val);
                return 2;
            }
        } else if (!strcmp(a, "--key")) {
            size_t n = strlen(val);
            if (n == 0 || n > KVMI_KEY_MAX) {
                fprintf(stderr, "kvmi-sim: --key must be 1-%u bytes\n", KVMI_KEY_MAX);
                return 2;
            }
            memcpy(cfg.key, val, n);
            cfg.key_len = n;
        } else if (!strcmp(a, "--deny-command") || !strcmp(a, "--deny-event")) {
            if (deny(&cfg, a[7] == 'c', val))
                return 2;
        } else if (!strcmp(a, "--period-us")) {
            g_sim.period_us = (unsigned)atoi(val);
        } else if (!strcmp(a, "--unhook-timeout-ms")) {
            opt.unhook_timeout_ms = (unsigned)atoi(val);
        } else {
            fprintf(stderr, "kvmi-sim: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!max_vcpus)
        max_vcpus = vcpus;
    if (!opt.port || vcpus < 1 || vcpus > SIM_MAX_VCPUS || mem < 16 || g_sim.period_us == 0 ||
        max_vcpus < vcpus || max_vcpus > SIM_MAX_VCPUS) {
        usage(stderr);
        return 2;
    }
    cfg.start_time = (int64_t)time(NULL);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread */
    signal(SIGPIPE, SIG_IGN);

    pthread_mutex_init(&g_sim.fd_mu, NULL);
    g_sim.fd = -1;
    if (sim_vm_init(&g_sim, vcpus, max_vcpus, mem)) {
        fprintf(stderr, "kvmi-sim: out of memory\n");
        return 1;
    }
    static struct kvmi_vcpu kv[SIM_MAX_VCPUS];
    static struct kvmi_page_slot pages[65536];
    kvmi_init(&g_sim.vm, &cfg, &g_sim, kv, max_vcpus, pages, 65536);
    sim_vm_start(&g_sim);

    pthread_t st, wt;
    pthread_create(&st, NULL, signal_thread, &set);
    pthread_create(&wt, NULL, sim_writer_thread, NULL);
    sim_connection_loop();
    return 0;
}
