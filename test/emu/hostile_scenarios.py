#!/usr/bin/env python3
"""A hostile ring-0 guest against the real hypervisor (docs/security.md).

Bochs (tigerlake, 2 CPUs, an e1000 on slirp) boots hv.efi in the product's
configuration (no test hooks: `debug_hypercalls` is left at its default) with
`connect = 10.0.2.2:PORT`; this process is the introspector.  The guest agent
runs its `hostile` probe (test/guest/probe_hostile.c), which attacks the
hypervisor and asserts each attack's failure from inside the guest; here the
hypervisor's integrity is checked afterwards: the session still answers, every
vCPU still pauses and resumes, and no KVMI_EVENT_UNHOOK arrived although the
introspector asked for it.

    python3 test/emu/hostile_scenarios.py          # every scenario (one Bochs at a time)
    python3 test/emu/hostile_scenarios.py --list
"""
from __future__ import annotations

import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "client", "python"))
import kvmi_scenarios as ks  # noqa: E402
import net_run  # noqa: E402
import run  # noqa: E402
from kvmi import client as kc  # noqa: E402
from kvmi import wire as w  # noqa: E402

HOSTILE_GO = 0x4F472D454C495448  # "HTILE-GO", test/guest/probe_hostile.c
DEBUG_FUNCTIONS = 8  # HV_HC_PING .. one past HV_HC_KVMI_UNHOOK


def is_unhook(ev: w.Event) -> bool:
    return ev.event == w.KVMI_EVENT_UNHOOK


def host_hostile(r: net_run.Run) -> None:
    try:
        _host_hostile(r)
    except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, ValueError) as e:
        raise ks.Fail(f"{e.__class__.__name__}: {e}") from e


def pause_resume_all(dom: kc.Domain, n: int) -> None:
    """Every vCPU answers a pause (its PAUSE event) and runs on after CONTINUE."""
    dom.pause_all(n, timeout=120)
    seen = set()
    while len(seen) < n:
        ev = dom.wait_event(timeout=120, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU)
        ks.check(ev is not None, f"PAUSE events from vCPUs {sorted(seen)} only")
        seen.add(ev.vcpu)
        dom.reply(ev, w.ACTION_CONTINUE)


def nic_address(log: str) -> tuple[int, int]:
    """The NIC's CONFIG_ADDRESS and its ECAM page (0 without an MCFG), from the hypervisor's log:
    the guest cannot find them, they are hidden from it."""
    m = re.search(r"net: NIC ([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) ", log)
    ks.check(m is not None, "no 'net: NIC' line in the serial log")
    bus, dev, fn = (int(x, 16) for x in m.groups())
    bdf = bus << 8 | dev << 3 | fn
    e = re.search(r"ECAM at (0x[0-9a-f]+), buses", log)
    return 0x80000000 | bdf << 8, (int(e.group(1), 16) + (bdf << 12)) if e else 0


def _host_hostile(r: net_run.Run) -> None:
    r.listener.settimeout(300)
    conn, peer = r.listener.accept()
    conn.settimeout(None)
    dom = kc._open_domain(conn, peer, None, check_version=True)
    n = dom.get_guest_info()
    ks.check(n == 2, f"GET_GUEST_INFO vcpu_count {n}, expected 2")
    dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    m = ks.wait_serial(r, r"AGENT: hostile: mailbox at 0x([0-9a-f]+)", 300)
    mailbox = int(m.group(1), 16)
    reg = re.search(r"reserved region (0x[0-9a-f]+) size", r.text())
    ks.check(reg is not None, "no 'reserved region' line in the serial log")
    region = int(reg.group(1), 16)
    dom.write_physical(mailbox + 16, region.to_bytes(8, "little"))
    cf8, ecam = nic_address(r.text())
    dom.write_physical(mailbox + 24, cf8.to_bytes(8, "little"))
    dom.write_physical(mailbox + 32, ecam.to_bytes(8, "little"))
    dom.write_physical(mailbox, HOSTILE_GO.to_bytes(8, "little"))
    ks.wait_serial(r, r"AGENT: hostile: attacks done", 300)
    # A reply comes after every event the hypervisor sent before it.
    ks.check(dom.get_version() == 1, "GET_VERSION after the attacks")
    ks.check(not any(is_unhook(e) for e in dom.queued_events()),
             "KVMI_EVENT_UNHOOK arrived during the attacks")
    pause_resume_all(dom, n)
    r.notes.append(f"after the attacks: GET_VERSION answers, all {n} vCPUs paused and resumed, "
                   "no UNHOOK")
    dom.write_physical(mailbox + 8, HOSTILE_GO.to_bytes(8, "little"))  # the agent ends
    # The agent powers off through Bochs's port 0x8900: in the product's
    # configuration that is no unhook trigger either; the session just ends.
    end = time.monotonic() + 300
    while time.monotonic() < end:
        try:
            ev = dom.wait_event(timeout=5, match=is_unhook)
        except kc.ConnectionClosed:
            r.notes.append("the session ended with the machine, no UNHOOK")
            break
        ks.check(ev is None, "KVMI_EVENT_UNHOOK arrived at the guest's power-off")
    else:
        raise ks.Fail("the session did not end within 300 s of the attacks")
    text, pos = ks.agent_text(r), 0
    for pat in AGENT_EXPECT:
        m = re.compile(pat).search(text, pos)
        ks.check(m is not None, f"agent line /{pat}/ missing (or out of order)")
        pos = m.end()
    r.notes.append(f"agent: all {len(AGENT_EXPECT)} expected lines, in order")


AGENT_EXPECT = [rf"AGENT: hostile: debug hypercall {fn}: #UD 1 time\(s\), registers unchanged"
                for fn in range(DEBUG_FUNCTIONS)] + [
    rf"AGENT: hostile: debug hypercalls refused with #UD: {DEBUG_FUNCTIONS} of {DEBUG_FUNCTIONS}",
    r"AGENT: hostile: hypervisor region at 0x[0-9a-f]*[1-9a-f][0-9a-f]* \(from the host\)",
    r"AGENT: hostile: IA32_APIC_BASE moved over the hypervisor's region: refused",
    r"AGENT: hostile: IA32_APIC_BASE moved away from the protected page: refused",
    r"AGENT: hostile: IA32_APIC_BASE with the APIC disabled: refused",
    r"AGENT: hostile: the xAPIC window taken away: refused",
    r"AGENT: hostile: a free MTRR pair typing the region uncacheable: refused",
    r"AGENT: hostile: RTIT_CTL.TraceEn \(Intel PT\): refused",
    r"AGENT: hostile: RTIT_OUTPUT_BASE \(Intel PT\): refused",
    r"AGENT: hostile: DS_AREA \(BTS/PEBS\): refused",
    r"AGENT: hostile: PEBS_ENABLE: refused",
    r"AGENT: hostile: IA32_MISC_ENABLE.XD_DISABLE: refused",
    r"AGENT: hostile: TSC written 2\^40 ahead: reads",
    r"AGENT: hostile: MSR attacks refused: (\d+) of \1",
    r"AGENT: hostile: the hypervisor's NIC at CONFIG_ADDRESS 0x80[0-9a-f]{6} \(from the host\)",
    r"AGENT: hostile: the NIC's config space at every size and offset: hidden",
    r"AGENT: hostile: straddling reads inl 0xCFB/0xCFA/0xCF9, inw 0xCFB: hidden",
    r"AGENT: hostile: straddling writes to the NIC's command and BAR0: hidden",
    r"AGENT: hostile: CONFIG_ADDRESS race: 1500 reads while the AP flipped \d+ times: "
    r"\d+ host bridge \(0x[0-9a-f]+\), \d+ all ones, 0 other",
    r"AGENT: hostile: a two-vCPU CONFIG_ADDRESS race: hidden",
    r"AGENT: hostile: ECAM writes to the NIC: (hidden|not applicable \(no MCFG: no ECAM\))",
    r"AGENT: hostile: PCI attacks failed: (\d+) of \1",
    r"AGENT: hostile: attacks done",
    r"AGENT: probe hostile: PASS",
    r"HVTEST-RESULT: PASS",
]

SCENARIOS = [
    net_run.Scenario(
        name="bochs-hostile-2cpu",
        doc="the product's configuration under attack from ring 0: every debug hypercall "
        "gets #UD, no UNHOOK reaches the introspector (neither from a hypercall nor from "
        "port 0x8900 at power-off), the MSR and PCI configuration attacks fail, the session "
        "and both vCPUs still answer (so the NIC was neither stopped nor moved)",
        conf="connect = 10.0.2.2:{port}\nreconnect_ms = 500\nname = bochs-hostile\n",
        debug=False,
        guest_ports=[],
        host=host_hostile,
        cpus=2,
        agent_args="cpus=2 hostile=1",
        timeout=600,
        ready=[r"kvmi: engine up for 2 vCPU\(s\)"],
        expect=[r"net: guest config accesses filtered: NIC hidden, \d+ function\(s\) on its path "
                r"protected",
                r"kvmi: engine up for 2 vCPU\(s\)",
                r"hv: \[cpu\d+\] vCPU \d: MTRR 0x20[0-9a-f] <- 0x[0-9a-f]+ dropped: it would retype "
                r"the hypervisor's region",
                r"HVTEST-RESULT: PASS"],
        forbid=ks.FORBID + [r"hv: \[cpu\d+\] debug hypercall",
                            r"guest shutdown through port 0x8900", r"hv: \[cpu\d+\] .*unhook"],
    ),
]


def main() -> int:
    return net_run.scenario_main(__doc__, "test-emu-hostile", SCENARIOS, [os.path.join(net_run.BUILD, "hv.efi"), os.path.join(net_run.BUILD, "agent.efi")], width=20)


if __name__ == "__main__":
    sys.exit(main())
