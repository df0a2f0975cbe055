#!/usr/bin/env python3
"""No missed page event with several vCPUs (docs/kvmi-hv.md, "Page steps").

Bochs (tigerlake, 2 or 4 CPUs, an e1000 on slirp) boots hv.efi in the
product's configuration with `connect = 10.0.2.2:PORT`; this process is the
introspector.  The guest agent's `pfstress` probe (test/guest/probe_pfstress.c)
has every CPU store N times into its own slot of one page whose write right
the introspector removed, then call N times into its own RET on one page whose
execute right it removed.  Every PF event is answered CONTINUE, and each must
stand for exactly one access: a store's event carries the value being stored
in RAX (cpu << 32 | i) and a call's carries i, so the events of each vCPU must
read 1, 2, ..., N in order, a missed access shows as a gap and a doubled one
as a repeat.  The agent checks that every store landed.  In `bochs-manypages` one AVX2
gather reads 8 pages with no rights left, more than a vCPU's EPT view holds:
exactly one event per page, and the gather completes with the pages' values.

    python3 test/emu/views_scenarios.py          # every scenario (one Bochs at a time)
    python3 test/emu/views_scenarios.py --list
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
from kvmi import client as kc  # noqa: E402
from kvmi import wire as w  # noqa: E402

PFS_GO = 0x4F472D5353455254  # "TRESS-GO", test/guest/probe_pfstress.c
R, W_, X = 1, 2, 4
ACCESSES = int(os.environ.get("PFSTRESS_N", "100"))


def host_pfstress(r: net_run.Run) -> None:
    try:
        _host_pfstress(r)
    except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, ValueError) as e:
        raise ks.Fail(f"{e.__class__.__name__}: {e}") from e


def judge(kind: str, seqs: dict, n: int, cpus: int) -> list[str]:
    """Per vCPU, the values its events carried must be exactly 1..n; the
    findings (misses, repeats) as lines, empty when every access had one event."""
    bad = []
    check_cpus = set()
    for vcpu in range(cpus):
        vals = seqs.get(vcpu, [])
        owners = {v >> 32 for v in vals}
        idx = [v & 0xFFFFFFFF for v in vals]
        if kind == "store" and len(owners) > 1:
            bad.append(f"vCPU {vcpu}: stores of CPUs {sorted(owners)}")
        check_cpus |= owners
        missed = sorted(set(range(1, n + 1)) - set(idx))
        repeats = len(idx) - len(set(idx))
        order = idx == sorted(idx)
        if missed or repeats or not order or len(idx) != n:
            bad.append(f"vCPU {vcpu}: {len(idx)} {kind} events for {n} {kind}s, "
                       f"{len(missed)} missed (first {missed[:5]}), {repeats} repeated"
                       f"{'' if order else ', out of order'}")
    return bad


def _host_pfstress(r: net_run.Run) -> None:
    dom = ks.attach(r)
    cpus = dom.get_guest_info()
    m = ks.wait_serial(r, r"AGENT: pfstress: mailbox 0x([0-9a-f]+) data 0x([0-9a-f]+) code "
                          r"0x([0-9a-f]+) stride (\d+) cpus (\d+) accesses (\d+)", 400)
    mbox, data, code = (int(x, 16) for x in m.groups()[:3])
    stride, agent_cpus, n = (int(x) for x in m.groups()[3:])
    ks.check(agent_cpus == cpus, f"agent has {agent_cpus} CPUs, GET_GUEST_INFO {cpus}")
    for v in range(cpus):
        dom.control_events(v, w.KVMI_EVENT_PF, True)
    dom.set_page_access([(data, R | X), (code, R | W_)])
    dom.write_physical(mbox, PFS_GO.to_bytes(8, "little"))

    stores, calls, other = {}, {}, []
    want = 2 * n * cpus
    got = 0
    end = time.monotonic() + 60 + want * 2.0
    calls_done = False
    while time.monotonic() < end:
        ev = dom.wait_event(timeout=5)
        if ev is None:
            # every access done and every event in: the agent says so, and a
            # reply comes after every event sent before it
            if re.search(r"AGENT: pfstress: calls done", ks.agent_text(r)):
                dom.get_version()
                if dom.pending_events() == 0:
                    calls_done = True
                    break
            continue
        got += 1
        if ev.event != w.KVMI_EVENT_PF:
            other.append(ev.name)
        elif (ev.gpa & ~0xFFF) == data and ev.access == W_:
            stores.setdefault(ev.vcpu, []).append(ev.arch.regs.rax)
        elif (ev.gpa & ~0xFFF) == code and ev.access == X:
            calls.setdefault(ev.vcpu, []).append(ev.arch.regs.rax
                                                 | ((ev.gpa & 0xFFF) // stride) << 32)
        else:
            other.append(f"PF gpa {ev.gpa:#x} access {ev.access}")
        dom.reply(ev, w.ACTION_CONTINUE)
    ks.check(calls_done, f"the agent did not finish its calls ({got} events so far)")
    dom.set_page_access([(data, R | W_ | X), (code, R | W_ | X)])
    findings = judge("store", stores, n, cpus) + judge("call", calls, n, cpus)
    for vcpu, vals in calls.items():
        owners = {v >> 32 for v in vals}
        if len(owners) > 1:
            findings.append(f"vCPU {vcpu}: calls into the RETs of CPUs {sorted(owners)}")
    nstores = sum(len(v) for v in stores.values())
    ncalls = sum(len(v) for v in calls.values())
    r.notes.append(f"{cpus} vCPUs x {n}: {nstores} store events for {n * cpus} stores, "
                   f"{ncalls} call events for {n * cpus} calls")
    ks.check(not other, f"unexpected events: {other[:5]}")
    dom.write_physical(mbox + 8, PFS_GO.to_bytes(8, "little"))
    ks.check(not findings, "; ".join(findings))
    ks.wait_serial(r, rf"AGENT: pfstress: writes done on {cpus} CPU\(s\): {cpus} slot\(s\) hold "
                      r"their last store", 60)


MP_GO = 0x4F472D5347415045  # "EPAGS-GO", test/guest/probe_manypages.c
MP_EVENT_CAP = 40  # far more than one event per page: the same page's event repeating


def host_manypages(r: net_run.Run) -> None:
    try:
        _host_manypages(r)
    except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, ValueError) as e:
        raise ks.Fail(f"{e.__class__.__name__}: {e}") from e


def _host_manypages(r: net_run.Run) -> None:
    """One gather reads 8 pages with no rights: 8 PF events, one per page, all
    CONTINUE, and the instruction completes; more than EPT_VIEW_PAGES (6)
    pages, so the step outgrows its vCPU's view."""
    dom = ks.attach(r)
    cpus = dom.get_guest_info()
    m = ks.wait_serial(r, r"AGENT: manypages: mailbox 0x([0-9a-f]+) data 0x([0-9a-f]+) "
                          r"pages (\d+)", 400)
    mbox, data, npages = int(m.group(1), 16), int(m.group(2), 16), int(m.group(3))
    pages = [data + 4096 * k for k in range(npages)]
    for v in range(cpus):
        dom.control_events(v, w.KVMI_EVENT_PF, True)
    dom.set_page_access([(p, 0) for p in pages])
    dom.write_physical(mbox, MP_GO.to_bytes(8, "little"))
    seen, other = [], []
    end = time.monotonic() + 300
    done = False
    while time.monotonic() < end and len(seen) < MP_EVENT_CAP:
        ev = dom.wait_event(timeout=5)
        if ev is None:
            if re.search(r"AGENT: manypages: gather done", ks.agent_text(r)):
                dom.get_version()
                if dom.pending_events() == 0:
                    done = True
                    break
            continue
        if ev.event == w.KVMI_EVENT_PF and (ev.gpa & ~0xFFF) in pages:
            seen.append(((ev.gpa & ~0xFFF) - data) // 4096)
        else:
            other.append(ev.name)
        dom.reply(ev, w.ACTION_CONTINUE)
    dom.set_page_access([(p, R | W_ | X) for p in pages])
    dom.write_physical(mbox + 8, MP_GO.to_bytes(8, "little"))  # the agent ends either way
    r.notes.append(f"{len(seen)} PF events for one gather over {npages} restricted pages "
                   f"(pages in event order: {seen[:16]})")
    ks.check(not other, f"unexpected events: {other[:5]}")
    ks.check(done, f"the gather did not complete: {len(seen)} events, pages {seen[:MP_EVENT_CAP]}")
    ks.check(sorted(seen) == list(range(npages)),
             f"{len(seen)} events for {npages} pages, not one each: {seen}")
    ks.wait_serial(r, rf"AGENT: manypages: gather done: {npages} of {npages} elements right", 60)


def scenario_manypages() -> net_run.Scenario:
    return net_run.Scenario(
        name="bochs-manypages",
        doc="one AVX2 gather reads 8 pages the introspector left no right on, more than a "
        "vCPU's EPT view holds: one PF event per page (CONTINUE), then the gather completes",
        conf="connect = 10.0.2.2:{port}\nreconnect_ms = 500\nname = bochs-manypages\n",
        debug=False,
        guest_ports=[],
        host=host_manypages,
        cpus=2,
        agent_args="cpus=2 manypages=1",
        timeout=900,
        ready=[r"kvmi: engine up for 2 vCPU\(s\)"],
        expect=[r"kvmi: engine up for 2 vCPU\(s\)", r"AGENT: probe manypages: PASS",
                r"HVTEST-RESULT: PASS"],
        forbid=ks.FORBID,
    )


def scenario(cpus: int) -> net_run.Scenario:
    return net_run.Scenario(
        name=f"bochs-pfstress-{cpus}cpu",
        doc=f"{cpus} vCPUs store into one write-restricted page and call into one "
        "exec-restricted page at once; every access raises exactly one PF event (CONTINUE)",
        conf="connect = 10.0.2.2:{port}\nreconnect_ms = 500\nname = bochs-pfstress\n",
        debug=False,
        guest_ports=[],
        host=host_pfstress,
        cpus=cpus,
        agent_args=f"cpus={cpus} pfstress={ACCESSES}",
        timeout=900,
        ready=[rf"kvmi: engine up for {cpus} vCPU\(s\)"],
        expect=[rf"kvmi: engine up for {cpus} vCPU\(s\)", r"AGENT: probe pfstress: PASS",
                r"HVTEST-RESULT: PASS"],
        forbid=ks.FORBID,
    )


SCENARIOS = [scenario(2), scenario(4), scenario_manypages()]


def main() -> int:
    return net_run.scenario_main(__doc__, "test-emu-views", SCENARIOS,
                                 [os.path.join(net_run.BUILD, "hv.efi"),
                                  os.path.join(net_run.BUILD, "agent.efi")], width=22)


if __name__ == "__main__":
    sys.exit(main())
