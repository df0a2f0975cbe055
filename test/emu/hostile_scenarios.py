#!/usr/bin/env python3
"""A hostile ring-0 guest against the real hypervisor (docs/security.md).

Bochs (tigerlake, 2 CPUs, an e1000 on slirp) boots hv.efi in the product's
configuration (no test hooks: `debug_hypercalls` is left at its default) with
`connect = 10.0.2.2:PORT`; this process is the introspector.  The guest agent
runs its `hostile` probe (test/guest/probe_hostile.c), which attacks the
hypervisor and asserts each attack's failure from inside the guest; here the
hypervisor's integrity is checked afterwards: the session still answers, every
vCPU still pauses and resumes, and no KVMI_EVENT_UNHOOK arrived although the
introspector asked for it.  bochs-hostile-halt (agent hostile=2,
test/guest/probe_halt.c) has an AP run INT3 with CR3 far above RAM: the
BREAKPOINT event's GPA must be ~0 (root mode's walk failed without a read);
its next store halts the vCPU, whose 500 commands must each be refused
with -KVM_EAGAIN while GET_VERSION and the other vCPU still answer.

    python3 test/emu/hostile_scenarios.py          # every scenario (one Bochs at a time)
    python3 test/emu/hostile_scenarios.py -k bochs-hostile-halt   # one
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

HALT_COMMANDS = 500
HALT_VCPU = 1
HALT_BATCH = 500  # commands written back to back before their replies are collected
EAGAIN = 11  # kvmi_abi.h KVM_EAGAIN: "vCPU not introspectable" (docs/protocol.md)


def pipelined_vcpu_info(dom: kc.Domain, vcpu: int, n: int, timeout: float) -> list[int]:
    """n GET_VCPU_INFO for one vCPU written back to back, then every reply
    collected: the error code of each (None: no reply within timeout)."""
    pend = []
    data = b""
    for _ in range(n):
        seq = dom.next_seq()
        p = kc._Pending()
        with dom._cond:
            dom._pending[(w.KVMI_GET_VCPU_INFO, seq)] = p
        pend.append((seq, p))
        data += w.pack_msg(w.KVMI_GET_VCPU_INFO, seq, w.req_vcpu(vcpu))
    dom._send(data)
    end = time.monotonic() + timeout
    errs = []
    for seq, p in pend:
        p.done.wait(max(0.0, end - time.monotonic()))
        with dom._cond:
            dom._pending.pop((w.KVMI_GET_VCPU_INFO, seq), None)
        errs.append(p.err)
    return errs


def host_halt(r: net_run.Run) -> None:
    try:
        _host_halt(r)
    except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, ValueError) as e:
        raise ks.Fail(f"{e.__class__.__name__}: {e}") from e


def _host_halt(r: net_run.Run) -> None:
    r.listener.settimeout(300)
    conn, peer = r.listener.accept()
    conn.settimeout(None)
    dom = kc._open_domain(conn, peer, None, check_version=True)
    n = dom.get_guest_info()
    ks.check(n == 2, f"GET_GUEST_INFO vcpu_count {n}, expected 2")
    m = ks.wait_serial(r, r"AGENT: hostile: halt mailbox at 0x([0-9a-f]+)", 300)
    mailbox = int(m.group(1), 16)
    reg = re.search(r"reserved region (0x[0-9a-f]+) size", r.text())
    ks.check(reg is not None, "no 'reserved region' line in the serial log")
    dom.write_physical(mailbox + 16, int(reg.group(1), 16).to_bytes(8, "little"))
    # The AP (vCPU 1: the boot info lists the BSP first) runs INT3 with CR3 above RAM: the
    # BREAKPOINT event's GPA is root mode's translation of RIP through that CR3.
    dom.control_events(HALT_VCPU, w.KVMI_EVENT_BREAKPOINT, True)
    dom.write_physical(mailbox, HOSTILE_GO.to_bytes(8, "little"))
    try:
        ev = dom.wait_event(timeout=180, match=lambda e: e.event == w.KVMI_EVENT_BREAKPOINT)
        ks.check(ev is not None, "no BREAKPOINT event from the AP (root mode died on its walk?)")
        gpa, cr3 = ev.payload["gpa"], ev.arch.sregs.cr3
        r.notes.append(f"BREAKPOINT from vCPU {ev.vcpu} with CR3 0x{cr3:x}: GPA 0x{gpa:x}")
        ks.check(gpa == (1 << 64) - 1,
                 f"BREAKPOINT GPA 0x{gpa:x} through CR3 0x{cr3:x}, expected ~0")
        regs = ev.arch.regs
        regs.rip += ev.payload["insn_len"]
        dom.set_registers(ev.vcpu, regs)
        dom.reply(ev, w.ACTION_RETRY)  # on to the store, which halts the vCPU
        m = ks.wait_serial(r, r"FATAL on vCPU (\d+): ([^\n]*)", 300, hv=True)
        halted, why = int(m.group(1)), m.group(2).strip()
        other = 1 - halted
        ev = re.search(rf"vCPU {halted} EPT violation: (GPA 0x[0-9a-f]+ GLA 0x[0-9a-f]+)[^\n]*"
                       r"\(([a-z ]*)\)", r.text())
        r.notes.append(f"vCPU {halted} stopped: {why}"
                       + (f" ({ev.group(1)}, {ev.group(2).strip()})" if ev else ""))
        # The session itself first: one command right after the halt.
        ks.check(dom.get_version() == 1, "GET_VERSION right after the halt")
        t0 = time.monotonic()
        errs = []
        for _ in range(HALT_COMMANDS // HALT_BATCH):
            errs += pipelined_vcpu_info(dom, halted, HALT_BATCH, 30)
            if errs[-1] is None:
                r.notes.append(f"a batch went unanswered: {len(dom.unmatched)} unmatched replies")
                break
        secs = time.monotonic() - t0
        answered = sum(e is not None for e in errs)
        refused = sum(e == -EAGAIN for e in errs)
        r.notes.append(f"{HALT_COMMANDS} GET_VCPU_INFO to the halted vCPU {halted}: {answered} "
                       f"answered, {refused} with -KVM_EAGAIN, in {secs:.1f} s")
        ks.check(refused == HALT_COMMANDS,
                 f"only {refused} of {HALT_COMMANDS} commands to the halted vCPU refused with "
                 f"-{EAGAIN} ({answered} answered at all)")
        ks.check(dom.get_version() == 1, "GET_VERSION after the commands to the halted vCPU")
        ks.check(dom.get_vcpu_info(other) > 0, f"GET_VCPU_INFO of vCPU {other}")
        regs = dom.get_registers(other)
        try:
            dom.pause_vcpu(halted)
            raise ks.Fail("PAUSE_VCPU of the halted vCPU accepted")
        except kc.KvmiError as e:
            ks.check(e.code == EAGAIN, f"PAUSE_VCPU of the halted vCPU: error {e.err}")
        dom.pause_vcpu(other)
        ev = dom.wait_event(timeout=120, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU)
        ks.check(ev is not None and ev.vcpu == other, f"no PAUSE event from vCPU {other}")
        dom.reply(ev, w.ACTION_CONTINUE)
        r.notes.append(f"then GET_VERSION, vCPU {other}'s GET_VCPU_INFO, GET_REGISTERS (RIP "
                       f"0x{regs.regs.rip:x}) and a pause/resume answer; PAUSE_VCPU of vCPU "
                       f"{halted} gets -{EAGAIN}")
        # The halting CPU logs its VMCS dump on the shared serial port: the agent
        # ends (and powers off) only after that.
        ks.wait_serial(r, rf"vCPU {halted} halted", 300, hv=True)
    finally:
        try:  # the agent ends (also after a failure, so that the run ends early)
            dom.write_physical(mailbox + 8, HOSTILE_GO.to_bytes(8, "little"))
        except (kc.KvmiError, kc.ConnectionClosed, TimeoutError):
            pass
    end = time.monotonic() + 300
    while time.monotonic() < end and not dom.closed:
        time.sleep(1)
    ks.check(dom.closed, "the session did not end within 300 s of the checks")
    text, pos = ks.agent_text(r), 0
    for pat in HALT_EXPECT:
        m = re.compile(pat).search(text, pos)
        ks.check(m is not None, f"agent line /{pat}/ missing (or out of order)")
        pos = m.end()


HALT_EXPECT = [
    r"AGENT: hostile: AP \d+ runs INT3 and a store to the region \(0x[0-9a-f]+\) with CR3 at "
    r"0x[0-9a-f]+",
    r"AGENT: hostile: halt: the AP stayed stopped at the store; the BSP goes on",
    r"AGENT: probe hostilehalt: PASS",
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
    net_run.Scenario(
        name="bochs-hostile-halt",
        doc="an AP runs INT3 with CR3 above RAM: root mode's walk for the BREAKPOINT event "
        "fails without a read (GPA ~0); its next store halts the vCPU; 500 commands to it are each refused "
        "with -KVM_EAGAIN at once, GET_VERSION and the other vCPU still answer",
        conf="connect = 10.0.2.2:{port}\nreconnect_ms = 500\nname = bochs-hostile-halt\n",
        debug=False,
        guest_ports=[],
        host=host_halt,
        cpus=2,
        agent_args="cpus=2 hostile=2",
        timeout=600,
        ready=[r"kvmi: engine up for 2 vCPU\(s\)"],
        expect=[r"kvmi: engine up for 2 vCPU\(s\)",
                r"FATAL on vCPU \d: ",
                r"vCPU \d halted",
                r"HVTEST-RESULT: PASS"],
        forbid=[r"HVTEST-RESULT: FAIL", r"PANIC", r"lwIP assertion", r"VM-entry failure",
                r"triple fault", r"not acknowledged"],
    ),
]


def main() -> int:
    return net_run.scenario_main(__doc__, "test-emu-hostile", SCENARIOS, [os.path.join(net_run.BUILD, "hv.efi"), os.path.join(net_run.BUILD, "agent.efi")], width=20)


if __name__ == "__main__":
    sys.exit(main())
