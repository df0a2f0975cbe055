/*
 * probe_cpus: counts CPUs through EFI_MP_SERVICES_PROTOCOL and runs a sample
 * on every enabled CPU (the BSP directly, the APs through StartupAllAPs),
 * reporting CPUID.1:ECX.VMX and CR4.VMXE for each.  Under the hypervisor this
 * is what shows the guest's view of every core, and StartupAllAPs is what
 * sends the firmware's INIT/SIPI (or its wake-up of parked APs) through it.
 */
#include "agent.h"
#include "cpu.h"
#include "mp.h"

#define MAX_CPUS 256

struct cpu_sample {
    volatile UINT32 done; /* written last by the sampling CPU */
    UINT32 apic_id;       /* initial APIC ID, CPUID.1:EBX[31:24] */
    UINT32 vmx;           /* CPUID.1:ECX.VMX */
    UINT64 cr4;
};

static struct cpu_sample samples[MAX_CPUS];

static void sample_here(struct cpu_sample *s)
{
    struct cpuid_regs r = cpuid(1, 0);
    s->apic_id = r.ebx >> 24;
    s->vmx = (r.ecx & CPUID1_ECX_VMX) != 0;
    s->cr4 = read_cr4();
    __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
}

/* Runs on each AP: only MP services' WhoAmI is called, as the PI spec allows. */
static VOID EFIAPI ap_sample(VOID *arg)
{
    struct mp_services *mp = arg;
    UINTN me = 0;
    if (mp->who_am_i(mp, &me) == EFI_SUCCESS && me < MAX_CPUS)
        sample_here(&samples[me]);
}

enum verdict probe_cpus(struct agent *a, char *reason, size_t size)
{
    EFI_GUID guid = AGENT_MP_SERVICES_GUID;
    struct mp_services *mp = NULL;
    EFI_STATUS st = a->st->BootServices->LocateProtocol(&guid, NULL, (VOID **)&mp);
    if (st != EFI_SUCCESS || !mp) {
        str_printf(reason, size, "no EFI_MP_SERVICES_PROTOCOL (status 0x%lx)", (UINT64)st);
        return PROBE_FAIL;
    }

    UINTN count = 0, enabled = 0, bsp = 0;
    st = mp->get_number_of_processors(mp, &count, &enabled);
    if (st != EFI_SUCCESS) {
        str_printf(reason, size, "GetNumberOfProcessors: status 0x%lx", (UINT64)st);
        return PROBE_FAIL;
    }
    mp->who_am_i(mp, &bsp);
    AGENT_LOG("cpus %lu enabled %lu bsp %lu", (UINT64)count, (UINT64)enabled, (UINT64)bsp);
    if (count > MAX_CPUS) {
        str_printf(reason, size, "%lu CPUs, more than the agent's %d", (UINT64)count, MAX_CPUS);
        return PROBE_FAIL;
    }

    for (UINTN i = 0; i < count; i++)
        samples[i].done = 0;
    if (bsp < count)
        sample_here(&samples[bsp]);
    if (enabled > 1) {
        /*
         * Blocking (no event) and no timeout: with Bochs's clock: sync=none,
         * guest time races ahead, so a timeout inside the guest would fire
         * spuriously; the launcher bounds the run from the host instead.
         */
        st = mp->startup_all_aps(mp, ap_sample, FALSE, NULL, 0, mp, NULL);
        if (st != EFI_SUCCESS) {
            str_printf(reason, size, "StartupAllAPs: status 0x%lx", (UINT64)st);
            return PROBE_FAIL;
        }
    }

    UINTN ran = 0;
    enum verdict v = PROBE_PASS;
    for (UINTN i = 0; i < count; i++) {
        struct mp_processor_info info = {0};
        mp->get_processor_info(mp, i, &info);
        int is_enabled = (info.status_flag & MP_PROCESSOR_ENABLED) != 0;
        struct cpu_sample *s = &samples[i];
        if (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
            AGENT_LOG("cpu %lu apic %lu %s: probe did not run", (UINT64)i,
                      (UINT64)info.processor_id, is_enabled ? "enabled" : "disabled");
            if (is_enabled && v == PROBE_PASS) {
                str_printf(reason, size, "cpu %lu did not run the probe", (UINT64)i);
                v = PROBE_FAIL;
            }
            continue;
        }
        ran++;
        int vmxe = (s->cr4 & CR4_VMXE) != 0;
        AGENT_LOG("cpu %lu apic %u%s vmx %u cr4 0x%lx vmxe %d", (UINT64)i, s->apic_id,
                  i == bsp ? " bsp" : "", s->vmx, s->cr4, vmxe);
        if (a->opt.expect_vmx >= 0 && (int)s->vmx != a->opt.expect_vmx && v == PROBE_PASS) {
            str_printf(reason, size, "cpu %lu: CPUID.1:ECX.VMX=%u, expected %d", (UINT64)i, s->vmx,
                       a->opt.expect_vmx);
            v = PROBE_FAIL;
        }
    }
    AGENT_LOG("cpus probed %lu of %lu", (UINT64)ran, (UINT64)enabled);
    if (v == PROBE_PASS && a->opt.expect_cpus && (UINTN)a->opt.expect_cpus != enabled) {
        str_printf(reason, size, "%lu enabled CPUs, expected %d", (UINT64)enabled,
                   a->opt.expect_cpus);
        v = PROBE_FAIL;
    }
    return v;
}
