/*
 * sim.h - kvmi-sim internals: the fake VM (sim_vm.c, sim_arch.c) and the
 * process around it (sim_main.c: command line, signals, log; sim_net.c: the
 * TCP transport).
 *
 * Offers: struct sim (the one simulated VM), sim_vm_init()/sim_vm_start(),
 * the transport state the arch functions use, and sim_log().
 */
#ifndef KVMI_SIM_H
#define KVMI_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmi/kvmi.h"

#define SIM_MAX_VCPUS 64

struct sim_vcpu {
    unsigned idx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool kicked;
    bool in_guest;

    struct kvm_regs regs;
    struct kvm_sregs sregs;
    uint64_t star, lstar, cstar, sysenter_cs, sysenter_esp, sysenter_eip, pat, kernel_gs_base;
    uint64_t xcr0;
    uint64_t k; /* iteration */

    /* exception the introspector queued, and a #BP being re-injected */
    bool exc_pending;
    uint8_t exc_nr;
    bool exc_has_error;
    uint32_t exc_error;
    uint64_t exc_addr;
    bool exc_collided; /* a second injection arrived while one was pending */
    bool bp_reinject;
    bool singlestep;

    /* counters, for the log and for tests reading the sim's output */
    uint64_t bp_reinjected, gp_faults, exceptions_delivered;
};

struct sim {
    struct kvmi_vm vm;
    unsigned nr_vcpus;  /* atomic: grows by hot-plug (SIGUSR2) */
    unsigned max_vcpus; /* --max-vcpus */
    struct sim_vcpu vcpus[SIM_MAX_VCPUS];
    uint8_t *mem;
    uint64_t mem_size;
    uint8_t *access; /* per gfn: KVMI_PAGE_ACCESS_* the introspector left */
    unsigned period_us;
    bool quiet;

    /* transport */
    pthread_mutex_t fd_mu;
    int fd;
};

extern struct sim g_sim;

/* The command line's transport options (sim_main.c). */
struct sim_opt {
    const char *host;
    const char *port;
    bool listen;
    unsigned unhook_timeout_ms;
};
extern struct sim_opt opt;
extern unsigned g_conn_id; /* bumped at every end of connection */
extern bool g_exiting;     /* SIGTERM/SIGINT: do not reconnect after the unhook */

/* The thread that drains the send queue into the socket (sim_net.c). */
void *sim_writer_thread(void *arg);
/* The main thread's life (sim_net.c): connect or accept, serve, again. */
void sim_connection_loop(void) __attribute__((noreturn));

static inline struct sim_vcpu *V(unsigned i)
{
    return &g_sim.vcpus[i];
}

int sim_vm_init(struct sim *s, unsigned nr_vcpus, unsigned max_vcpus, unsigned mem_mib);
void sim_vm_start(struct sim *s);
/* Hot-plug one vCPU (as a device manager adding a CPU); returns its index,
 * or -1 at --max-vcpus. */
int sim_vm_hotplug(struct sim *s);
unsigned sim_nr_vcpus(void);
/* Where the fake vCPU keeps MSR `msr`, or NULL when it has none (sim_vm.c). */
uint64_t *sim_msr_slot(struct sim_vcpu *v, uint32_t msr);
void sim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
