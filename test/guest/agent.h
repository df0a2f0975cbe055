/*
 * agent: the guest test agent's framework.  The agent is a UEFI application
 * started by startup.nsh after hv.efi; it runs a table of probes, prints
 * "AGENT: ..." markers and one "HVTEST-RESULT: PASS|FAIL <reason>" line on
 * COM1, then powers the machine off (docs/emulators.md, "Result protocol").
 *
 * A probe is one entry in the table in agent.c: a name and a function that
 * returns a verdict and, on failure or skip, a one-line reason.  Later issues
 * add probes by adding a file and a table row.
 */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <efi.h>
#include <stddef.h>

#include "serial.h"

enum verdict { PROBE_PASS, PROBE_FAIL, PROBE_SKIP };

/* Command-line options from startup.nsh ("agent.efi cpus=2 vmx=1"). */
struct agent_options {
    int expect_cpus;  /* cpus=N: enabled CPU count the firmware must report; 0 = any */
    int expect_vmx;   /* vmx=0|1: CPUID.1:ECX.VMX every CPU must show; -1 = any */
    int expect_e1000; /* e1000=0|1: an 8086:100e must be absent/present on PCI; -1 = any */
    uint64_t nic_bar; /* nicbar=0xADDR: where the NIC's BAR0 was; must read as all ones */
    int shutdown;     /* shutdown=0 leaves the machine running (interactive use) */
    int hv;           /* hv=1: the hypervisor runs (debug hypercalls allowed); 0 = it must not */
    int mprounds;     /* mprounds=N: rounds of the MP-services probe on every CPU (probe_vmx.c) */
    int nmis;         /* nmis=N: NMI self-IPIs per AP, with kicks from the BSP when hv=1 */
    int entryfail;    /* entryfail=1: last, ask the hypervisor to fail a VM entry (never returns) */
    int kvmi;         /* kvmi=1: the KVMI scenario's guest half, 2: the demo (probe_kvmi.c) */
    int hostile;      /* hostile=1: attacks on the hypervisor (probe_hostile.c); 2: one vCPU
                       * halted by a store the hypervisor cannot decode (probe_halt.c) */
    int power;        /* power=1..9: ask the machine to power off, reset or sleep (probe_power.c) */
    int dma;          /* dma=1|2: aim e1000 DMA at hv-dmatest.efi's region (probe_dma.c) */
    int pfstress;     /* pfstress=N: N stores and calls per CPU on restricted pages */
    int manypages;    /* manypages=1: one instruction reads 8 restricted pages */
    int evbench;      /* evbench=N: N timed rounds of each KVMI event (probe_evbench.c) */
    int logport;      /* logport=1: slow, then loop back COM1 under the hypervisor's log */
    char secret[64];  /* secret=YEK: the hypervisor's key reversed (probe_secret.c), "" = off */
};

struct agent {
    EFI_HANDLE image;
    EFI_SYSTEM_TABLE *st;
    struct agent_options opt;
};

#define REASON_MAX 160

struct probe {
    const char *name;
    enum verdict (*run)(struct agent *a, char *reason, size_t size);
};

/* Zeroed pages below 4 GiB for a probe's mailbox (the host writes them with
 * WRITE_PHYSICAL); NULL when the firmware has none. */
volatile uint64_t *agent_low_pages(struct agent *a, unsigned npages);

/* Polls *word until it holds want: 0, or -1 after about 2^34 tries. */
int agent_wait_word(volatile uint64_t *word, uint64_t want);

/* Marker lines: "AGENT: <text>\n". */
#define AGENT_LOG(...)                                                                             \
    do {                                                                                           \
        ser_printf("AGENT: ");                                                                     \
        ser_printf(__VA_ARGS__);                                                                   \
        ser_printf("\n");                                                                          \
    } while (0)

/* The probes (one file each). */
enum verdict probe_cpus(struct agent *a, char *reason, size_t size);
enum verdict probe_memmap(struct agent *a, char *reason, size_t size);
/* probe_vmx.c: the VMX core's guest-visible promises (issue 3) */
enum verdict probe_mprounds(struct agent *a, char *reason, size_t size);
enum verdict probe_cpuid_cost(struct agent *a, char *reason, size_t size);
enum verdict probe_hvregion(struct agent *a, char *reason, size_t size);
enum verdict probe_nmi(struct agent *a, char *reason, size_t size);
enum verdict probe_entryfail(struct agent *a, char *reason, size_t size);
enum verdict probe_pci(struct agent *a, char *reason, size_t size);
enum verdict probe_kvmi(struct agent *a, char *reason, size_t size);
enum verdict probe_hostile(struct agent *a, char *reason, size_t size);
enum verdict probe_hostile_halt(struct agent *a, char *reason, size_t size);
/* probe_hostile_pci.c: the PCI attacks, nic = the NIC's CONFIG_ADDRESS, ecam_page its ECAM
 * page or 0 */
enum verdict hostile_pci(struct agent *a, uint32_t nic, uint64_t ecam_page, char *reason,
                         size_t size);
enum verdict probe_dma(struct agent *a, char *reason, size_t size);
enum verdict probe_power(struct agent *a, char *reason, size_t size);
/* probe_power_s3.c: power=8, with the mailbox the power probe shares. */
enum verdict power_s3_race(struct agent *a, volatile uint64_t *mb, char *reason, size_t size);
enum verdict probe_pfstress(struct agent *a, char *reason, size_t size);
enum verdict probe_manypages(struct agent *a, char *reason, size_t size);
enum verdict probe_evbench(struct agent *a, char *reason, size_t size);
enum verdict probe_logport(struct agent *a, char *reason, size_t size);
/* Ends boot services: run last. */
enum verdict probe_secret(struct agent *a, char *reason, size_t size);

#endif
