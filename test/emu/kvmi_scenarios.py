#!/usr/bin/env python3
"""KVMI on the real hypervisor, end to end (docs/kvmi-hv.md).

Bochs (tigerlake, 2 CPUs, an e1000 on slirp) boots hv.efi with
`connect = 10.0.2.2:PORT`; this process listens on 127.0.0.1:PORT, which
slirp maps the hypervisor's dial to, and introspects the guest with the
project's Python client (client/python/kvmi) while the guest agent runs its
`kvmi` probe (test/guest/probe_kvmi.c).  Every step is asserted on both
sides: here on the replies and events, in the serial log on what the agent
and the hypervisor saw.  Waits are bounded conditions (serial lines, events,
replies), never sleeps.

    python3 test/emu/kvmi_scenarios.py          # every scenario (one Bochs at a time)
    python3 test/emu/kvmi_scenarios.py --list

The runner is test/emu/net_run.py's (live serial log, a host listener for
`{port}`, host side run while Bochs runs).
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
import net_run  # noqa: E402
import run  # noqa: E402
from kvmi import client as kc  # noqa: E402
from kvmi import wire as w  # noqa: E402

MAILBOX_MAGIC = 0x4B564D4957524954
EVENTS_MAGIC = 0x53544E4556454F47  # "GOEVENTS"
SYSENTER_CS, STAR = 0x174, 0xC0000081
SYSENTER_WRITE, SYSENTER_TOOL = 0x1234, 0x5678
R, W_, X = 1, 2, 4
MARKER = 0x2D494D564B2D5648  # "HV-KVMI-"
CR4_TSD = 1 << 2
CR0_PE, CR0_PG = 1 << 0, 1 << 31


class Fail(AssertionError):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Fail(what)


def agent_text(r: net_run.Run) -> str:
    """The serial log with the hypervisor's lines taken out: both share COM1,
    and a hypervisor line logged while the agent prints lands in the middle
    of the agent's line."""
    return re.sub(r"hv: \[cpu\d+\] [^\n]*\n", "", r.text())


def wait_serial(r: net_run.Run, pat: str, secs: float, hv: bool = False) -> re.Match:
    """A line of the agent (or with hv=True, of the hypervisor) within secs."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        m = re.search(pat, r.text() if hv else agent_text(r))
        if m:
            return m
        time.sleep(0.5)
    raise Fail(f"/{pat}/ not on the serial log within {secs:.0f} s")


def attach(r: net_run.Run, timeout: float = 300) -> kc.Domain:
    """The hypervisor's dial, accepted and handshaken (GET_VERSION checked)."""
    r.listener.settimeout(timeout)
    conn, peer = r.listener.accept()
    conn.settimeout(None)
    return kc._open_domain(conn, peer, None, check_version=True)


def host_session(r: net_run.Run) -> None:
    """The introspector's side of bochs-kvmi-2cpu; protocol-level errors are
    reported as failures of the scenario, not of the runner."""
    try:
        _host_session(r)
    except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, ValueError) as e:
        raise Fail(f"{e.__class__.__name__}: {e}") from e


def _host_session(r: net_run.Run) -> None:
    r.listener.settimeout(300)
    conn, peer = r.listener.accept()
    conn.settimeout(None)
    dom = kc._open_domain(conn, peer, None, check_version=True)
    r.notes.append(f"hypervisor dialled in from {peer[0]}:{peer[1]}, name '{dom.name}', "
                   f"uuid {dom.uuid}, GET_VERSION {dom.version}")
    check(dom.version == 1, f"GET_VERSION {dom.version}")
    n = dom.get_guest_info()
    check(n == 2, f"GET_GUEST_INFO vcpu_count {n}, expected 2")
    gfn = dom.get_max_gfn()
    check(gfn > 0x1000, f"GET_MAX_GFN {gfn:#x}")
    # The engine starts before the CPUs launch: a vCPU not yet in VMX answers
    # -KVM_EAGAIN ("not yet introspectable", docs/protocol.md) until it is, and
    # a tool that dialled in early tries again, as with an AP never started.
    t0 = time.monotonic()
    while True:
        try:
            tsc = dom.get_vcpu_info(0)
            break
        except kc.KvmiError as e:
            if e.code != 11 or time.monotonic() - t0 > 120:
                raise
            time.sleep(0.5)
    if time.monotonic() - t0 > 0.4:
        r.notes.append(f"vCPU 0 answered -KVM_EAGAIN until launched ({time.monotonic() - t0:.1f} s)")
    vendor = dom.get_cpuid(0, 0)
    check(vendor[1:] == (0x756E6547, 0x6C65746E, 0x49656E69), f"CPUID 0 vendor {vendor}")
    r.notes.append(f"vcpus 2, max_gfn {gfn:#x}, tsc {tsc} Hz, CPUID vendor GenuineIntel")

    # The hypervisor's own memory is not guest memory.
    reg = re.search(r"reserved region (0x[0-9a-f]+) size", r.text())
    check(reg is not None, "no 'reserved region' line in the serial log")
    try:
        dom.read_physical(int(reg.group(1), 16), 64)
        raise Fail("READ_PHYSICAL of the hypervisor region succeeded")
    except kc.KvmiError as e:
        check(e.err == -2, f"READ_PHYSICAL of the hypervisor region: error {e.err}, expected -2")

    # The agent's page: wait for its announcement, then pause everything.
    m = wait_serial(r, r"AGENT: kvmi: marker at 0x([0-9a-f]+) value 0x([0-9a-f]+), "
                       r"mailbox at 0x([0-9a-f]+)", 300)
    page, value, mailbox = (int(x, 16) for x in m.groups())
    count = dom.pause_all(n, timeout=120)
    paused = {}
    while len(paused) < count:
        ev = dom.wait_event(timeout=120, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU)
        check(ev is not None, f"PAUSE events from {sorted(paused)} only")
        check(ev.vcpu not in paused, f"two PAUSE events from vCPU {ev.vcpu}")
        paused[ev.vcpu] = ev
    r.notes.append(f"pause-all: PAUSE_VCPU events from vCPUs {sorted(paused)}")

    regs = dom.get_registers(0, msrs=[0xC0000080])
    s = regs.sregs
    check(s.cr0 & CR0_PE and s.cr0 & CR0_PG, f"vCPU 0 CR0 {s.cr0:#x} without PE|PG")
    check(s.cr3 != 0, f"vCPU 0 CR3 {s.cr3:#x}")
    check(regs.mode == 8, f"vCPU 0 mode {regs.mode}, expected 8 (64-bit)")
    check(regs.regs.rip != 0, "vCPU 0 RIP 0")
    efer = regs.msrs[0xC0000080]
    check(efer & (1 << 10), f"EFER {efer:#x} without LMA")
    ev_rip = paused[0].arch.regs.rip
    check(ev_rip == regs.regs.rip, f"PAUSE event RIP {ev_rip:#x} != GET_REGISTERS {regs.regs.rip:#x}")
    r.notes.append(f"vCPU 0 paused: rip {regs.regs.rip:#x} cr0 {s.cr0:#x} cr3 {s.cr3:#x} "
                   f"cr4 {s.cr4:#x} efer {efer:#x}")

    data = dom.read_physical(page, 16)
    got = (int.from_bytes(data[:8], "little"), int.from_bytes(data[8:], "little"))
    check(got == (MARKER, value), f"READ_PHYSICAL {page:#x}: {got[0]:#x} {got[1]:#x}, agent "
          f"wrote {MARKER:#x} {value:#x}")
    r.notes.append(f"READ_PHYSICAL {page:#x} matches the agent's marker {value:#x}")

    # CR4 writes reported on every vCPU; then let the guest go and tell it to write.
    for v in range(n):
        dom.control_events(v, w.KVMI_EVENT_CR, True)
        dom.control_cr(v, 4, True)
    for v in sorted(paused):
        dom.reply(paused[v], w.ACTION_CONTINUE)
    dom.write_physical(mailbox, MAILBOX_MAGIC.to_bytes(8, "little"))
    wait_serial(r, r"AGENT: kvmi: mailbox written by the introspector: 0x4b564d4957524954", 120)

    ev = dom.wait_event(timeout=120, match=lambda e: e.event == w.KVMI_EVENT_CR)
    check(ev is not None, "no CR event after the agent's CR4 write")
    p = ev.payload
    check(p["cr"] == 4 and p["old_value"] ^ p["new_value"] == CR4_TSD,
          f"CR event {p}, expected CR4 with TSD toggled")
    dom.reply(ev, w.ACTION_CONTINUE, new_val=p["old_value"])  # veto: keep the old value
    r.notes.append(f"CR event on vCPU {ev.vcpu}: cr4 {p['old_value']:#x} -> "
                   f"{p['new_value']:#x}, answered with the old value")
    wait_serial(r, r"AGENT: kvmi: cr4 0x[0-9a-f]+ -> write 0x[0-9a-f]+ -> reads 0x[0-9a-f]+ "
                   r"\(vetoed by the introspector\)", 120)
    for v in range(n):
        dom.control_cr(v, 4, False)
        dom.control_events(v, w.KVMI_EVENT_CR, False)
    dom.write_physical(mailbox + 8, (1).to_bytes(8, "little"))
    wait_serial(r, r"AGENT: kvmi: cr4 toggled again with events off: reads 0x[0-9a-f]+ "
                   r"\(written\)", 120)
    stray = [e for e in dom.queued_events() if e.event == w.KVMI_EVENT_CR]
    check(not stray, f"CR events after they were disabled: {stray}")
    events_phase(r, dom, n, page, mailbox)
    dom.close()
    poweroff_session(r, page)
    # (hypervisor lines may interleave with the other CPU's on COM1: short patterns)
    wait_serial(r, r"connected to 10\.0\.2\.2:\d+", 5, hv=True)
    wait_serial(r, r"connection ended \(closed by peer\)", 120, hv=True)
    r.notes.append("closed on UNHOOK (the hypervisor saw it)")
    wait_serial(r, r"HVTEST-RESULT: ", 180)
    text, pos = agent_text(r), 0
    for pat in AGENT_EXPECT:
        m = re.compile(pat).search(text, pos)
        check(m is not None, f"agent: /{pat}/ not found in order")
        pos = m.end()
    r.notes.append(f"agent: all {len(AGENT_EXPECT)} expected lines, in order")


EVENTS = [w.KVMI_EVENT_MSR, w.KVMI_EVENT_BREAKPOINT, w.KVMI_EVENT_HYPERCALL, w.KVMI_EVENT_PF,
          w.KVMI_EVENT_DESCRIPTOR, w.KVMI_EVENT_SINGLESTEP, w.KVMI_EVENT_XSETBV,
          w.KVMI_EVENT_TRAP]


def events_phase(r: net_run.Run, dom: kc.Domain, n: int, page: int, mailbox: int) -> None:
    """One guest action per event (probe_kvmi.c, step 4), answered so that
    the agent can see the effect of each answer."""
    watched = page + 4096
    for v in range(n):
        for e in EVENTS:
            dom.control_events(v, e, True)
        dom.control_msr(v, SYSENTER_CS, True)
        dom.control_msr(v, STAR, True)
    dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    dom.set_page_access([(watched, R | X)])
    acc = dom.get_page_access([watched])
    check(acc == [R | X], f"GET_PAGE_ACCESS {acc}, expected r-x")
    dom.write_physical(mailbox, EVENTS_MAGIC.to_bytes(8, "little"))
    seen: list[str] = []
    pfs = bps = 0
    injected = False
    deadline = time.monotonic() + 300
    while True:
        ev = dom.wait_event(timeout=1)
        if ev is None:
            check(time.monotonic() < deadline, f"events stopped after {seen}")
            if not injected and re.search(r"AGENT: kvmi: waiting for an injected exception",
                                          agent_text(r)):
                dom.inject_exception(0, 22)
                injected = True
                seen.append("(injected 22)")
            continue
        name = w.EVENT_NAMES.get(ev.event, str(ev.event))
        p = ev.payload
        if ev.event == w.KVMI_EVENT_UNHOOK:
            seen.append(name)
            break
        if ev.event == w.KVMI_EVENT_MSR:
            seen.append(f"MSR {p['msr']:#x} {p['old_value']:#x}->{p['new_value']:#x}")
            sub = p["msr"] == SYSENTER_CS and p["new_value"] == SYSENTER_WRITE
            dom.reply(ev, new_val=SYSENTER_TOOL if sub else p["new_value"])
        elif ev.event == w.KVMI_EVENT_BREAKPOINT and bps == 0:
            bps += 1
            seen.append(f"BREAKPOINT len {p['insn_len']}")
            regs = ev.arch.regs
            regs.rip += p["insn_len"]
            dom.set_registers(ev.vcpu, regs)
            dom.reply(ev, w.ACTION_RETRY)
        elif ev.event == w.KVMI_EVENT_BREAKPOINT:
            seen.append("BREAKPOINT (inject 22, CONTINUE)")
            dom.inject_exception(ev.vcpu, 22)
            dom.reply(ev, w.ACTION_CONTINUE)
        elif ev.event == w.KVMI_EVENT_TRAP:
            seen.append(f"TRAP vector {p['vector']} type {p['type']:#x}")
            dom.reply(ev, w.ACTION_CONTINUE)
        elif ev.event == w.KVMI_EVENT_PF:
            pfs += 1
            check(p["gpa"] & ~0xFFF == watched and p["access"] == W_,
                  f"PF event {p}, expected a write to {watched:#x}")
            seen.append(f"PF {p['gpa']:#x} w " + ("CONTINUE" if pfs == 1 else "RETRY+ss"))
            if pfs == 1:
                # the agent's SIDT came before its page writes; the firmware's own
                # descriptor-table reads would only slow the rest down
                for v in range(n):
                    dom.control_events(v, w.KVMI_EVENT_DESCRIPTOR, False)
                dom.reply(ev, w.ACTION_CONTINUE)
            else:
                dom.reply(ev, w.ACTION_RETRY, pf={"singlestep": True})
        elif ev.event == w.KVMI_EVENT_DESCRIPTOR:
            seen.append(f"DESCRIPTOR {p['descriptor']}/{p['write']}")
            dom.reply(ev, w.ACTION_CONTINUE)
        else:
            seen.append(name)
            dom.reply(ev, w.ACTION_CONTINUE)
    r.notes.append("events: " + ", ".join(seen))
    want = [f"MSR {SYSENTER_CS:#x}", f"MSR {STAR:#x}", "BREAKPOINT len 1", "HYPERCALL",
            f"DESCRIPTOR {1}/0", f"PF {watched:#x} w CONTINUE", f"PF {watched + 8:#x} w RETRY+ss",
            "SINGLESTEP", "(injected 22)", "BREAKPOINT (inject 22, CONTINUE)",
            "TRAP vector 3 type 0x600", "UNHOOK"]
    for item in want:
        check(any(s.startswith(item) for s in seen), f"no '{item}' among the events {seen}")


def poweroff_session(r: net_run.Run, page: int) -> None:
    """The hypervisor redials after the close; this second session enables
    UNHOOK, lets the agent finish, and must see KVMI_EVENT_UNHOOK when the
    guest powers off (Bochs's shutdown port), before the machine goes."""
    conn, peer = r.listener.accept()
    conn.settimeout(None)
    dom = kc._open_domain(conn, peer, None, check_version=True)
    dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    dom.write_physical(page + 32, (2).to_bytes(8, "little"))
    ev = dom.wait_event(timeout=180, match=lambda e: e.event == w.KVMI_EVENT_UNHOOK)
    check(ev is not None, "no UNHOOK event when the guest powered off")
    dom.close()
    m = wait_serial(r, r"unhook requested by vCPU \d+: event sent[^\n]*\n(.*\n)*?.*unhook done: "
                       r"introspector closed(.*\n)*?.*guest shutdown through port 0x8900", 120,
                    hv=True)
    r.notes.append("second session: UNHOOK on the guest's power-off, closed; then the "
                   "hypervisor let the power-off go on")


def host_crash(r: net_run.Run) -> None:
    try:
        _host_crash(r)
    except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, ValueError) as e:
        raise Fail(f"{e.__class__.__name__}: {e}") from e


def _host_crash(r: net_run.Run) -> None:
    """CRASH as the answer to the agent's CR4 write: the hypervisor must stop
    the guest on every vCPU (KVM kills the VMM) and say so."""
    r.listener.settimeout(300)
    conn, peer = r.listener.accept()
    conn.settimeout(None)
    dom = kc._open_domain(conn, peer, None, check_version=True)
    n = dom.get_guest_info()
    m = wait_serial(r, r"AGENT: kvmi: marker at 0x([0-9a-f]+) value 0x[0-9a-f]+, "
                       r"mailbox at 0x([0-9a-f]+)", 300)
    mailbox = int(m.group(2), 16)
    for v in range(n):
        dom.control_events(v, w.KVMI_EVENT_CR, True)
        dom.control_cr(v, 4, True)
    dom.write_physical(mailbox, MAILBOX_MAGIC.to_bytes(8, "little"))
    ev = dom.wait_event(timeout=120, match=lambda e: e.event == w.KVMI_EVENT_CR)
    check(ev is not None, "no CR event after the agent's CR4 write")
    dom.reply(ev, w.ACTION_CRASH)
    for v in range(n):
        wait_serial(r, rf"kvmi: vCPU {v} parked \(guest crashed by the introspector\)", 120,
                    hv=True)
    r.notes.append(f"CR event on vCPU {ev.vcpu} answered CRASH: all {n} vCPUs parked")
    # The guest stays stopped: the agent never gets past its CR4 write.
    check(dom.get_version() == 1, "the engine stopped answering after CRASH")
    check(not re.search(r"AGENT: kvmi: cr4 0x", agent_text(r)), "the agent ran on after CRASH")
    dom.close()
    wait_serial(r, r"connection ended \(closed by peer\)", 60, hv=True)
    check(not re.search(r"AGENT: kvmi: cr4 0x", agent_text(r)), "the agent ran on after CRASH")
    r.notes.append("session closed; the guest stays stopped")


FORBID = [r"HVTEST-RESULT: FAIL", r"panic", r"lwIP assertion", r"FATAL on vCPU",
          r"VM-entry failure", r"triple fault", r"unexpected EPT violation"]

SCENARIOS = [
    net_run.Scenario(
        name="bochs-kvmi-2cpu",
        doc="the hypervisor dials a Python introspector through slirp: version, guest info "
        "(2 vCPUs), pause-all with PAUSE events from both, registers, READ/WRITE_PHYSICAL of "
        "the agent's page, a vetoed CR4 write, close; the agent passes",
        conf="connect = 10.0.2.2:{port}\nreconnect_ms = 500\nname = bochs-kvmi\n",
        guest_ports=[],
        host=host_session,
        cpus=2,
        agent_args="cpus=2 kvmi=1",
        timeout=600,
        ready=[r"kvmi: engine up for 2 vCPU\(s\)"],
        expect=[r"kvmi: engine up for 2 vCPU\(s\)", r"HVTEST-RESULT: PASS"],
        forbid=FORBID,
    ),
]

# The agent's side, matched on agent_text() (see there), in this order.
AGENT_EXPECT = [
    r"AGENT: kvmi: marker at 0x[0-9a-f]+",
    r"AGENT: kvmi: mailbox written by the introspector",
    r"AGENT: kvmi: cr4 .*\(vetoed by the introspector\)",
    r"AGENT: kvmi: cr4 toggled again with events off: .*\(written\)",
    r"AGENT: kvmi: events phase",
    r"AGENT: kvmi: msr sysenter_cs wrote 0x1234, reads 0x5678 .*restored ok",
    r"AGENT: kvmi: msr star wrote 0x23001000000000, reads 0x23001000000000",
    r"AGENT: kvmi: int3 stepped over by the introspector: yes",
    r"AGENT: kvmi: kvmi hypercall returned rax 0x0",
    r"AGENT: kvmi: sidt under descriptor events: .*\(same\)",
    r"AGENT: kvmi: writes to the watched page read back 0x1111 0x2222",
    r"AGENT: kvmi: injected vector 22 delivered 1 time\(s\)",
    r"AGENT: kvmi: second int3: #BP delivered 1 time\(s\), vector 22 1 time\(s\) in all",
    r"AGENT: kvmi: unhook hypercall returned 0",
    r"AGENT: kvmi: a second session is attached; powering off next",
    r"AGENT: probe kvmi: PASS",
    r"HVTEST-RESULT: PASS",
]


SCENARIOS.append(net_run.Scenario(
    name="bochs-kvmi-crash",
    doc="the introspector answers an event with CRASH: every vCPU is parked, logged, the "
    "guest never runs on; the session still answers and closes cleanly",
    conf="connect = 10.0.2.2:{port}\nreconnect_ms = 500\n",
    guest_ports=[],
    host=host_crash,
    cpus=2,
    agent_args="cpus=2 kvmi=1",
    timeout=600,
    ready=[r"kvmi: engine up for 2 vCPU\(s\)"],
    stop_after_host=True,
    expect=[r"kvmi: the introspector answered CRASH on vCPU 0: stopping the guest"],
    forbid=FORBID,
))


def main() -> int:
    return net_run.scenario_main(__doc__, "test-emu-kvmi", SCENARIOS, [os.path.join(net_run.BUILD, "hv.efi"), os.path.join(net_run.BUILD, "agent.efi")], width=18)


if __name__ == "__main__":
    sys.exit(main())
