"""VMX core scenarios (issue 3), added to run.py's table by make(Scenario).

Each boots hv.efi and the agent on Bochs and asserts, from the serial log,
that every CPU was taken and keeps running the firmware as a guest, that the
guest sees no VMX, that MP services work round after round through the
hypervisor's software INIT/SIPI, that the hypervisor region is invisible and
unwritable, that guest NMIs survive kicks, and the capability matrix.
"""
from __future__ import annotations

import re
from typing import Optional

GUEST_OK = [r"FATAL on vCPU", r"VM-entry failure", r"VMLAUNCH failed", r"HVTEST-RESULT: FAIL",
            r"unexpected exception", r"X64 Exception Type"]


def taken(n: int) -> list[str]:
    lines = [rf"hv: \[cpu0\] CPU {i} \(APIC {i}\) runs as a guest" for i in range(1, n)]
    return lines + [rf"hv: \[cpu0\] launching the BSP: the hypervisor owns {n} CPU\(s\)"]


def guest_side(n: int, rounds: int, cpuid_line: str) -> list[str]:
    return [
        r"AGENT: cpus probed %d of %d" % (n, n),
        r"AGENT: mp round %d: %d of %d CPUs ran, 0 with VMX, 0 with CR4.VMXE" % (rounds, n, n),
        r"AGENT: mp round %d: IA32_FEATURE_CONTROL not 'locked, VMX off' on 0 CPU" % rounds,
        cpuid_line,
        r"AGENT: hvregion: marker page at 0x[0-9a-f]+ \(32 bytes\), \d+ MiB of reserved memory "
        r"read, marker found 0 time\(s\), 0 non-zero",
        r"AGENT: hvregion: after writes the page reads zero, hypervisor markers intact",
        r"AGENT: nmi: %d AP\(s\) x \d+ self-NMIs: \d+ delivered, 0 timeout\(s\), 0 CPU\(s\) with "
        r"a wrong count; kicks (\d+) acknowledged \1" % (n - 1),
        r"HVTEST-RESULT: PASS",
        r"hv: \[cpu\d+\] guest shutdown through port 0x8900: statistics follow",
    ]


def every_vcpu_counted(n: int):
    def check(log: str) -> Optional[str]:
        for i in range(n):
            if not re.search(rf"stats vCPU {i}: \d+ exits", log):
                return f"no statistics line for vCPU {i}"
        kicks = [int(k) for k in re.findall(r"stats vCPU \d+: \d+ exits, \d+ root TSC ticks, "
                                            r"kicks sent \d+ received (\d+)", log)]
        if not kicks or sum(kicks) == 0:
            return "no vCPU received a kick"
        return None
    return check


def make(Scenario, TIMEOUT=2, STOPPED=4):
    return [
        Scenario(
            name="bochs-vmx-2cpu",
            doc="every CPU taken; 3 MP rounds via software INIT/SIPI; VMX hidden; region "
            "hidden; NMI self-IPIs under kicks; statistics at shutdown",
            model="tigerlake",
            cpus=2,
            agent_args="cpus=2 vmx=0 hv=1 mprounds=3 nmis=20",
            timeout=300,
            expect=taken(2) + guest_side(2, 3, r"AGENT: cpuid hypervisor bit 0,"),
            forbid=GUEST_OK + [r"missing:"],
            check=every_vcpu_counted(2),
            launcher_says=r"powered off",
        ),
        Scenario(
            name="bochs-vmx-4cpu",
            doc="the same on 4 CPUs, with cpuid_hypervisor_bit = yes (bit 31 and leaf 0x40000000)",
            model="tigerlake",
            cpus=4,
            agent_args="cpus=4 vmx=0 hv=1 mprounds=3 nmis=10",
            conf="cpuid_hypervisor_bit = yes\n",
            timeout=420,
            expect=taken(4) + guest_side(
                4, 3, r"AGENT: cpuid hypervisor bit 1, leaf 0x40000000: eax 0x40000000 "
                r"ebx 0x564b5648 ecx 0x5648494d edx 0x494d564b"),
            forbid=GUEST_OK + [r"missing:"],
            check=every_vcpu_counted(4),
            launcher_says=r"powered off",
        ),
        Scenario(
            name="bochs-vmx-entry-failure",
            doc="a VM entry that fails (test hypercall: guest TR unusable) is diagnosed with "
            "the exit reason, a VMCS dump and a halt of that vCPU, never a silent hang",
            model="tigerlake",
            cpus=2,
            agent_args="cpus=2 hv=1 entryfail=1",
            timeout=150,
            # The halted vCPU cannot power the machine off: the launcher stops
            # it once the halt is logged (not at the timeout).
            launcher_args=["--stop-on", r"vCPU 0 halted"],
            exit_code=STOPPED,
            launcher_says=r"STOPPED",
            expect=[r"AGENT: entryfail: asking the hypervisor",
                    r"hv: \[cpu0\] VM-entry failure: exit reason 33 \(invalid guest state\)",
                    r"hv: \[cpu0\] FATAL on vCPU 0: VM entry failed",
                    r"hv: \[cpu0\] VMCS dump of vCPU 0:",
                    r"guest TR AR=0x10000",
                    r"hv: \[cpu0\] vCPU 0 halted"],
            forbid=[r"HVTEST-RESULT"],
        ),
        Scenario(
            name="bochs-lynnfield-no-ug",
            doc="corei5_lynnfield_750 has EPT but no unrestricted guest: hv.efi refuses "
            "naming it, the firmware boots on",
            model="corei5_lynnfield_750",
            cpus=1,
            agent_args="cpus=1 vmx=1",
            expect=[r"hv: \[cpu0\] missing: unrestricted guest", r"refusing to start",
                    r"HVTEST-RESULT: PASS"],
            forbid=[r"missing: EPT", r"core running at", r"HVTEST-RESULT: FAIL"],
        ),
        Scenario(
            name="bochs-sandybridge-2m",
            doc="corei7_sandy_bridge_2600k has no 1 GiB EPT pages: the identity map uses "
            "2 MiB pages and both CPUs run as guests",
            model="corei7_sandy_bridge_2600k",
            cpus=2,
            agent_args="cpus=2 vmx=0 hv=1 mprounds=1",
            timeout=240,
            expect=[r"hv: \[cpu0\] EPT: identity map up to 0x[0-9a-f]+, \d+ type ranges, "
                    r"leaves 4K \d+ 2M [1-9]\d* 1G 0,"] + taken(2) + [
                r"AGENT: mp round 1: 2 of 2 CPUs ran, 0 with VMX, 0 with CR4.VMXE",
                r"HVTEST-RESULT: PASS"],
            forbid=GUEST_OK + [r"missing:"],
            launcher_says=r"powered off",
        ),
    ]
