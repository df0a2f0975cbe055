#!/usr/bin/env python3
"""KVMI event round trips, pause-all and the page step on the real hypervisor
(docs/benchmarks.md, "KVMI events").

One Bochs boot (tigerlake, an e1000 on slirp) per vCPU count; hv.efi dials
this process (the introspector) and also serves the diag port, forwarded from
the host.  The guest agent's `evbench` probe (test/guest/probe_evbench.c)
times, in TSC ticks (one per emulated instruction in Bochs), a CPUID, a plain
store, a store into a "-w-" page (stepped by the hypervisor alone), a store
into a write-restricted page (PF event), an INT3 (BREAKPOINT event) and a CR4
write (CR event); the introspector answers every event CONTINUE.  The
hypervisor's statistics at power-off give the ticks from each event's start to
its reply applied (engine, network, tool), so the rest of each round trip is
root-mode work and the exit and entry.  Then, from the host, pause-all rounds
(one libkvmi-style batch of PAUSE_VCPU to the last PAUSE event) and diag pings
through the same NIC, in wall time.

    python3 test/emu/events_bench.py                 # 1, 2 and 4 vCPUs
    python3 test/emu/events_bench.py --cpus 2 --hv OTHER/hv.efi --rounds 200
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
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
from net_client import Diag  # noqa: E402

EVB_GO, EVB_DONE = 0x4F472D4843454E42, 0x454E4F442D484345
R, W_, X = 1, 2, 4
PAUSE_ROUNDS, PINGS = 20, 50
MEASURES = ["cpuid", "store", "wstep", "pf", "bp", "cr"]


def host_bench(r: net_run.Run) -> None:
    try:
        _host_bench(r)
    except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, ValueError) as e:
        raise ks.Fail(f"{e.__class__.__name__}: {e}") from e


def _host_bench(r: net_run.Run) -> None:
    dom = ks.attach(r)
    n = dom.get_guest_info()
    m = ks.wait_serial(r, r"AGENT: evbench: mailbox 0x([0-9a-f]+) pf 0x([0-9a-f]+) wonly "
                          r"0x([0-9a-f]+) rounds (\d+)", 400)
    mbox, pf, wonly = (int(x, 16) for x in m.groups()[:3])
    for v in range(n):
        dom.control_events(v, w.KVMI_EVENT_PF, True)
        dom.control_events(v, w.KVMI_EVENT_BREAKPOINT, True)
        dom.control_events(v, w.KVMI_EVENT_CR, True)
        dom.control_cr(v, 4, True)
    dom.set_page_access([(pf, R | X), (wonly, W_)])
    dom.write_physical(mbox, EVB_GO.to_bytes(8, "little"))
    arrivals = {}
    while True:
        ev = dom.wait_event(timeout=5)
        if ev is None:
            if re.search(r"AGENT: evbench: done", ks.agent_text(r)):
                dom.get_version()
                if dom.pending_events() == 0:
                    break
            continue
        arrivals.setdefault(ev.name, []).append(time.monotonic())
        dom.reply(ev, w.ACTION_CONTINUE)
    for v in range(n):
        dom.control_cr(v, 4, False)
        dom.control_events(v, w.KVMI_EVENT_CR, False)
        dom.control_events(v, w.KVMI_EVENT_BREAKPOINT, False)
    dom.set_page_access([(pf, R | W_ | X), (wonly, R | W_ | X)])
    for name, ts in sorted(arrivals.items()):
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        if gaps:
            r.notes.append(f"wall: {name} {len(ts)} events, median gap "
                           f"{statistics.median(gaps) * 1e3:.2f} ms")
    pauses = []
    for _ in range(PAUSE_ROUNDS):
        t0 = time.monotonic()
        dom.pause_all(n, timeout=120)
        evs = []
        while len(evs) < n:
            ev = dom.wait_event(timeout=120, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU)
            ks.check(ev is not None, f"PAUSE events from {len(evs)} of {n} vCPUs")
            evs.append(ev)
        pauses.append(time.monotonic() - t0)
        for ev in evs:
            dom.reply(ev, w.ACTION_CONTINUE)
    r.notes.append(f"wall: pause-all x{PAUSE_ROUNDS} on {n} vCPUs, median "
                   f"{statistics.median(pauses) * 1e3:.2f} ms, min {min(pauses) * 1e3:.2f} ms")
    d = Diag.connect("127.0.0.1", r.fwd[7777])
    rtt = d.ping(PINGS)
    r.notes.append(f"wall: diag ping x{PINGS} median {statistics.median(rtt) * 1e3:.2f} ms")
    dom.write_physical(mbox + 8, EVB_DONE.to_bytes(8, "little"))


def scenario(cpus: int, rounds: int, hv: str | None) -> net_run.Scenario:
    return net_run.Scenario(
        name=f"bench-events-{cpus}cpu" + ("-other-hv" if hv else ""),
        doc=f"KVMI event round trips, pause-all and the page step on {cpus} vCPU(s)",
        conf="connect = 10.0.2.2:{port}\nreconnect_ms = 500\nname = bench-events\n"
             "diag_port = 7777\n",
        debug=True,  # the statistics at power-off come with the test hooks
        guest_ports=[7777],
        host=host_bench,
        cpus=cpus,
        agent_args=f"cpus={cpus} evbench={rounds}",
        timeout=1200,
        ready=[rf"kvmi: engine up for {cpus} vCPU\(s\)"],
        expect=[r"HVTEST-RESULT: PASS"],  # (agent lines may be cut by the hypervisor's)
        forbid=ks.FORBID,
        esp_args=["--hv", hv] if hv else [],
    )


def figures(text: str) -> dict:
    """Agent averages and the hypervisor's event-to-reply averages (vCPU 0)."""
    f = {}
    agent = re.sub(r"hv: \[cpu\d+\] [^\n]*\n", "", text)  # hypervisor lines cut agent lines
    for name, avg, mn in re.findall(r"AGENT: evbench: (\w+) avg (\d+) min (\d+)", agent):
        f[name] = (int(avg), int(mn))
    for name, cnt, avg in re.findall(r"stats vCPU 0: kvmi (\w+) events (\d+), TSC from event to "
                                     r"reply \d+ avg (\d+)", text):
        f["ev_" + name] = (int(avg), int(cnt))
    return f


def report(cpus: int, f: dict, notes: list[str]) -> None:
    print(f"== {cpus} vCPU(s): guest-measured TSC ticks (Bochs: emulated instructions)")
    print(f"{'measure':8} {'avg':>9} {'min':>9} {'event->reply':>13} {'rest':>9}")
    for m in MEASURES:
        if m not in f:
            continue
        avg, mn = f[m]
        ev = f.get("ev_" + m)
        evs = f"{ev[0]:>13}" if ev else f"{'-':>13}"
        rest = f"{avg - ev[0]:>9}" if ev else f"{'-':>9}"
        print(f"{m:8} {avg:>9} {mn:>9} {evs} {rest}")
    if "wstep" in f and "store" in f:
        print(f"page step (wstep - store): {f['wstep'][0] - f['store'][0]} ticks per stepped store")
    for line in notes:
        if line.startswith("wall:"):
            print(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", type=int, action="append", help="vCPU counts (default 1 2 4)")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--hv", help="another hv.efi (e.g. an older build, for a before/after)")
    args = ap.parse_args()
    failed = 0
    for cpus in args.cpus or [1, 2, 4]:
        sc = scenario(cpus, args.rounds, args.hv)
        ok, took, text_report = net_run.run_scenario(sc)
        serial = os.path.join(net_run.BUILD, "emu", sc.name, "serial.log")
        text = open(serial, errors="replace").read() if os.path.exists(serial) else ""
        print(f"{'PASS' if ok else 'FAIL'} {sc.name} ({took:.1f} s)", flush=True)
        if not ok:
            print(text_report)
            failed += 1
            continue
        notes = [ln.strip() for ln in text_report.splitlines()]
        report(cpus, figures(text), notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
