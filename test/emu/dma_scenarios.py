#!/usr/bin/env python3
"""DMA-protection scenarios (hv.conf dma_protection, vtd/, docs/security.md).

QEMU (TCG, q35 with intel-iommu, so the firmware publishes a DMAR): the test
build hv-dmatest.efi runs the loader's DMA-protection step and returns to the
firmware with remapping on; the agent's probe_dma then aims the e1000's DMA
at the hypervisor's region and at ordinary memory, or Linux boots and uses
its e1000.  Bochs (no IOMMU, no
DMAR): `auto` warns and the hypervisor runs, `require` refuses.

    python3 test/emu/dma_scenarios.py            # every scenario
    python3 test/emu/dma_scenarios.py -k qemu
    python3 test/emu/dma_scenarios.py --list
"""
from __future__ import annotations

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linux_run  # noqa: E402
import net_run  # noqa: E402
import run  # noqa: E402
from net_client import Diag  # noqa: E402
from run import FAIL, HEX, Scenario  # noqa: E402

DMATEST_EFI = os.path.join(run.BUILD, "hv-dmatest.efi")
QEMU_DMA = dict(emu="qemu", cpus=1, nic=True, timeout=90, launcher_args=["--iommu"],
                esp_args=["--hv", DMATEST_EFI])
PROTECTED = [
    r"hv: \[cpu0\] VT-d unit 0: registers 0xfed90000 segment 0",
    r"hv: \[cpu0\] ACPI: DMAR hidden from the guest \([12] root entr(y|ies) removed",
    r"hv: \[cpu0\] DMA protection on: 1 remapping unit\(s\) translate; devices reach all "
    r"memory but " + HEX + "-" + HEX,
    r"hv: \[cpu0\] dmatest: region 0x[0-9a-f]+ size 0x[0-9a-f]+, target 0x[0-9a-f]+",
    r"AGENT: dma: ACPI lists no DMAR \(roots valid\); unit from the loader",
    r"AGENT: dma: VT-d unit 0xfed90000 GSTS 0x[c-f]",
    r"AGENT: dma: control: frame received intact, fault none",
    r"AGENT: dma: read from the region: fault recorded sid 00:02.0 addr 0x[0-9a-f]+ read",
    r"AGENT: dma: write into the region: fault recorded sid 00:02.0 addr 0x[0-9a-f]+ write",
]


def fault_at_target(log: str):
    """Each recorded fault names the very page the loader filled."""
    m = re.search(r"dmatest: region .*target (0x[0-9a-f]+)", log)
    addrs = re.findall(r"into the region: fault recorded .* addr (0x[0-9a-f]+)|"
                       r"from the region: fault recorded .* addr (0x[0-9a-f]+)", log)
    got = {a or b for a, b in addrs}
    if not m or got != {m.group(1)}:
        return f"fault addresses {sorted(got)} are not the target page"
    return None


def host_linux_net(h: run.HostRun) -> None:
    """Linux's own e1000 driver, with remapping on and no DMAR to see,
    moves a checked 1 MiB echo for the host, then is told to quit."""
    h.wait_for(r"LINUX: net serving diag on TCP port 7777", h.timeout)
    d = Diag.connect("127.0.0.1", h.fwd[7777], timeout=60)
    rtt = d.ping(5)
    secs = d.echo(1 << 20)
    h.notes.append(f"Linux's e1000 under VT-d: ping x5 max {max(rtt) * 1e3:.1f} ms, "
                   f"1 MiB echo checked in {secs:.1f} s")
    d.quit()


LINUX_LINE = (f"lxboot.efi vmlinux.lxk initrd.img {linux_run.CMDLINE} hvtest.cpus=1 "
              "hvtest.dmar=0 hvtest.net=serve hvtest.off=acpi")

SCENARIOS = [
    Scenario(
        name="qemu-iommu-dma-guest",
        doc="VT-d on: the e1000 (a guest device) reads and writes ordinary memory, "
        "its DMA from and into the region faults at the region's page, the page unchanged; "
        "a page the loader took out of the guest's domain (vtd_guest_unmap) faults too",
        conf="nic = none\n",
        agent_args="dma=1",
        expect=PROTECTED + [
            r"AGENT: dma: read from the removed page: fault recorded sid 00:02.0 addr "
            r"0x[0-9a-f]+ read",
            r"AGENT: dma: target page unchanged", r"HVTEST-RESULT: PASS"],
        forbid=[r"DMA PROTECTION OFF", r"HVTEST-RESULT: FAIL", r"refusing to start"],
        check=fault_at_target,
        **QEMU_DMA,
    ),
    Scenario(
        name="qemu-iommu-dma-aw48",
        doc="the same with a 48-bit IOMMU (aw-bits=48): 4-level tables, as on current hardware",
        conf="nic = none\n",
        agent_args="dma=1",
        expect=[r"VT-d: 1 unit\(s\), 4-level tables"] + PROTECTED[2:] + [
            r"AGENT: dma: read from the removed page: fault recorded",
            r"AGENT: dma: target page unchanged", r"HVTEST-RESULT: PASS"],
        forbid=[r"DMA PROTECTION OFF", r"HVTEST-RESULT: FAIL", r"refusing to start"],
        check=fault_at_target,
        **dict(QEMU_DMA, launcher_args=["--iommu=aw-bits=48"]),
    ),
    Scenario(
        name="qemu-iommu-dma-nic",
        doc="the hypervisor's NIC in a domain of its own: its mapped page works, DMA to the "
        "region and to ordinary guest memory faults",
        conf="nic = auto\n",
        agent_args="dma=2",
        expect=PROTECTED[:2]
        + [r"DMA protection on: .*the hypervisor's NIC has a domain of its own"]
        + PROTECTED[3:]
        + [r"AGENT: dma: read from guest memory: fault recorded sid 00:02.0 .* read",
           r"AGENT: dma: write into guest memory: fault recorded sid 00:02.0 .* write",
           r"AGENT: dma: target page unchanged", r"AGENT: dma: guest page unchanged",
           r"HVTEST-RESULT: PASS"],
        forbid=[r"DMA PROTECTION OFF", r"HVTEST-RESULT: FAIL", r"refusing to start"],
        check=fault_at_target,
        **QEMU_DMA,
    ),
    Scenario(
        name="qemu-iommu-dma-off",
        doc="control: with dma_protection = off the same DMA reads and overwrites the region "
        "and the agent fails naming it (the test detects an unprotected machine)",
        conf="nic = none\ndma_protection = off\n",
        agent_args="dma=1",
        exit_code=FAIL,
        expect=[r"DMA protection disabled by hv.conf",
                r"AGENT: dma: ACPI lists a DMAR",
                r"AGENT: dma: translation is OFF",
                r"AGENT: dma: read from the region: fault NONE",
                r"AGENT: dma: target page CHANGED",
                r"HVTEST-RESULT: FAIL dma: translation off; a blocked DMA recorded no fault; "
                r"region read by DMA; region written by DMA"],
        **QEMU_DMA,
    ),
    Scenario(
        name="qemu-iommu-linux",
        doc="Linux after hv-dmatest.efi left VT-d on: it boots, finds no DMAR in ACPI, and "
        "its own e1000 driver (DMA to ordinary memory) serves a checked echo",
        emu="qemu",
        cpus=1,
        nic=True,
        guest_ports=[7777],
        agent=False,
        conf="nic = none\n",
        timeout=240,
        launcher_args=["--iommu"],
        esp_args=["--hv", DMATEST_EFI, "--file", linux_run.LXBOOT, "--file", linux_run.LXK,
                  "--file", linux_run.INITRD, "--run", LINUX_LINE],
        host=host_linux_net,
        expect=PROTECTED[:4] + [
            r"LINUX: init start",
            r"LINUX: acpi dmar 0",
            r"LINUX: net eth0 .* driver e1000 carrier 1",
            r"LINUX: net gateway 10.0.2.2 answers",
            r"LINUX: net diagd ended",
            r"HVTEST-RESULT: PASS",
            r"reboot: Power down"],
        forbid=linux_run.LINUX_BAD + [r"DMA PROTECTION OFF", r"refusing to start"],
        launcher_says=r"powered off",
    ),
    Scenario(
        name="bochs-dma-require",
        doc="Bochs has no DMAR: dma_protection = require refuses, naming why, and the "
        "firmware boots on",
        emu="bochs",
        cpus=1,
        conf="dma_protection = require\n",
        agent_args="cpus=1",
        timeout=150,
        expect=[r"hv: \[cpu0\] refusing to start: dma_protection = require but the firmware "
                r"reports no VT-d DMA remapping \(no ACPI DMAR\)",
                r"startup.nsh: hv.efi returned",
                r"HVTEST-RESULT: PASS"],
        forbid=[r"core running at", r"HVTEST-RESULT: FAIL"],
    ),
    Scenario(
        name="bochs-dma-auto",
        doc="Bochs has no DMAR: dma_protection = auto (the default) warns on COM1 and the "
        "hypervisor runs",
        emu="bochs",
        cpus=1,
        conf="nic = none\n",
        agent_args="cpus=1",
        timeout=180,
        expect=[r"hv: \[cpu0\] DMA PROTECTION OFF: the firmware reports no VT-d DMA remapping "
                r"\(no ACPI DMAR\); any bus master",
                r"hv: \[cpu0\] core running at",
                r"hv: \[cpu0\] launching the BSP",
                r"HVTEST-RESULT: PASS",
                r"stats: 0 device DMA request\(s\) blocked by VT-d"],
        forbid=[r"refusing to start", r"HVTEST-RESULT: FAIL", r"DMA protection on"],
    ),
]


def main() -> int:
    # one at a time: the Bochs runs need a whole core
    return net_run.scenario_main(__doc__, "test-dma", SCENARIOS,
                                 [run.HV_EFI, run.AGENT_EFI, DMATEST_EFI, linux_run.LXK,
                                  linux_run.INITRD], runner=run.run_scenario, width=22)


if __name__ == "__main__":
    sys.exit(main())
