#!/usr/bin/env python3
"""The key, the log port and refusals under a hostile guest (docs/security.md).

Bochs (tigerlake, 2 CPUs, an e1000 on slirp) boots hv.efi; this process is the
introspector where the hypervisor dials it.

  bochs-secret-2cpu   hv.conf holds `key = ...`: hv.efi moves the key into the
                      boot-service variable HvKey and overwrites its line.  The
                      introspector proves the key (a wrong proof is refused
                      first); the agent (test/guest/probe_logport.c) slows COM1
                      to its slowest rate with the FIFO off while the hypervisor
                      logs, and the session still answers; with COM1 in loopback
                      no byte of the log reaches the guest; the log then says how
                      many lines it dropped.  Last the agent
                      (test/guest/probe_secret.c) finds no key line in hv.conf,
                      ends boot services, gets EFI_NOT_FOUND for HvKey at runtime
                      and finds the key nowhere in RAM outside runtime-services
                      memory (the firmware's variable store: counted, open).
  bochs-nic-missing   hv.conf names a NIC that is not there: hv.efi refuses before
                      any CPU enters VMX, releases its region, and the firmware
                      boots on with VMX and the e1000 visible to the guest.

    python3 test/emu/secret_scenarios.py          # every scenario (one Bochs at a time)
    python3 test/emu/secret_scenarios.py --list
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

KEY = "Zq7-hv-secret-5e0c41d9b2a8f3"
LOGPORT_SLOW = 0x574F4C532D474F4C  # "LOG-SLOW", test/guest/probe_logport.c
LOGPORT_GO = 0x4F472D54524F5047  # "GPORT-GO"


def accept(r: net_run.Run, key: str) -> kc.Domain:
    try:
        conn, peer = r.listener.accept()
    except TimeoutError as e:
        raise ks.Fail("the hypervisor never dialled the introspector") from e
    conn.settimeout(None)
    return kc._open_domain(conn, peer, key, check_version=True)


def pause_resume_all(dom: kc.Domain, n: int) -> None:
    dom.pause_all(n, timeout=120)
    seen = set()
    while len(seen) < n:
        ev = dom.wait_event(timeout=120, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU)
        ks.check(ev is not None, f"PAUSE events from vCPUs {sorted(seen)} only")
        seen.add(ev.vcpu)
        dom.reply(ev, w.ACTION_CONTINUE)


def host_secret(r: net_run.Run) -> None:
    try:
        _host_secret(r)
    except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, ValueError) as e:
        raise ks.Fail(f"{e.__class__.__name__}: {e}") from e


def _host_secret(r: net_run.Run) -> None:
    r.listener.settimeout(300)
    try:
        accept(r, "not-" + KEY).close()
    except (kc.ProtocolError, kc.ConnectionClosed, OSError):
        ks.wait_serial(r, r"hv: \[cpu\d+\] kvmi: handshake key proof rejected", 60, hv=True)
        r.notes.append("a wrong key proof: the session is refused (the hypervisor says so)")
    else:
        raise ks.Fail("a session with the wrong key answered GET_VERSION")
    dom = accept(r, KEY)  # the hypervisor dials again after reconnect_ms
    r.notes.append("the key from HvKey authenticates the session (GET_VERSION answered)")
    n = dom.get_guest_info()
    m = ks.wait_serial(r, r"AGENT: logport: mailbox at 0x([0-9a-f]+)", 300)
    mailbox = int(m.group(1), 16)
    end = time.monotonic() + 300
    while int.from_bytes(dom.read_physical(mailbox + 8, 8), "little") != LOGPORT_SLOW:
        ks.check(time.monotonic() < end, "the agent never slowed COM1")
        time.sleep(0.5)
    t0 = time.monotonic()
    ks.check(dom.get_version() == 1, "GET_VERSION with COM1 slowed")
    pause_resume_all(dom, n)
    r.notes.append(f"COM1 at divisor 0xffff, FIFO off: GET_VERSION and pause/resume of {n} "
                   f"vCPUs answered in {time.monotonic() - t0:.1f} s")
    dom.write_physical(mailbox, LOGPORT_GO.to_bytes(8, "little"))
    ks.wait_serial(r, r"AGENT: probe secret: (PASS|FAIL)", 400)
    m = re.search(r"hv: log: (\d+) line\(s\) dropped: serial port too slow", r.text())
    ks.check(m is not None, "no 'line(s) dropped' note from the hypervisor's log")
    r.notes.append(f"the log reported {m.group(1)} line(s) dropped while COM1 was slow")
    m = re.search(r"AGENT: secret: scanned (\d+) MiB", ks.agent_text(r))
    if m:
        r.notes.append(f"agent scanned {m.group(1)} MiB of RAM after ExitBootServices")
    m = re.search(r"the key found (\d+) time\(s\) outside runtime-services memory, (\d+) "
                  r"time\(s\) in it", ks.agent_text(r))
    if m:
        r.notes.append(f"the key in RAM: {m.group(1)} cop(ies) outside runtime-services memory, "
                       f"{m.group(2)} in it (the firmware's variable store)")
    m = re.search(r"key: (\d+) stray cop(y|ies) overwritten", r.text())
    if m:
        r.notes.append(f"hv.efi overwrote {m.group(1)} stray cop(ies) of the key")


def host_wait_result(r: net_run.Run) -> None:
    ks.wait_serial(r, r"HVTEST-RESULT: ", 400)


SCENARIOS = [
    net_run.Scenario(
        name="bochs-secret-2cpu",
        doc="the key moves from hv.conf into a boot-service variable: authenticates, "
        "unreadable after ExitBootServices and nowhere in RAM; a slowed or looped-back "
        "COM1 neither stalls the session nor receives the log",
        conf=f"connect = 10.0.2.2:{{port}}\nreconnect_ms = 500\nname = bochs-secret\n"
        f"key = {KEY}\n",
        guest_ports=[],
        host=host_secret,
        cpus=2,
        agent_args=f"cpus=2 logport=1 secret={KEY[::-1]}",
        timeout=900,
        ready=[r"kvmi: engine up for 2 vCPU\(s\)"],
        expect=[r"hv: \[cpu0\] key: moved from hv.conf into the boot-service variable HvKey",
                r"kvmi: engine up for 2 vCPU\(s\)",
                r"hv: \[cpu0\] key: \d+ stray cop(y|ies) overwritten in memory the OS gets",
                r"AGENT: logport: COM1 in loopback: 0 byte\(s\)",
                r"AGENT: probe logport: PASS",
                r"AGENT: secret: hv.conf has \d+ bytes, 0 key line\(s\), the key absent",
                r"AGENT: secret: before ExitBootServices GetVariable\(HvKey\): status 0x0, "
                r"attributes 0x3, 28 bytes, the key",
                r"AGENT: secret: after ExitBootServices GetVariable\(HvKey\): status "
                r"0x800000000000000e \(EFI_NOT_FOUND\)",
                r"AGENT: secret: scanned \d+ MiB of the memory map: the key found 0 time\(s\) "
                r"outside runtime-services memory",
                r"AGENT: probe secret: PASS",
                r"HVTEST-RESULT: PASS"],
        forbid=ks.FORBID + [KEY, r"hv: \[cpu\d+\] .*key: cannot store"],
    ),
    net_run.Scenario(
        name="bochs-nic-missing",
        doc="hv.conf names a NIC that is not there: hv.efi refuses before any CPU enters "
        "VMX and releases its region; the firmware boots on (VMX and the e1000 visible)",
        conf="nic = 00:1f.7\n",
        guest_ports=[],
        host=host_wait_result,
        cpus=2,
        agent_args="cpus=2 vmx=1 hv=0 e1000=1",
        timeout=300,
        ready=[r"hv.efi 0.1 starting"],
        expect=[r"hv: \[cpu0\] refusing to start: the NIC hv.conf names is not there",
                r"AGENT: memory map: \d+ entries",
                r"HVTEST-RESULT: PASS"],
        forbid=[r"core running at", r"runs as a guest", r"HVTEST-RESULT: FAIL",
                r"AGENT: reserved [^\n]* pages 0x4000 "],
    ),
]


def main() -> int:
    return net_run.scenario_main(__doc__, "test-emu-secret", SCENARIOS,
                                 [os.path.join(net_run.BUILD, "hv.efi"),
                                  os.path.join(net_run.BUILD, "agent.efi")], width=18)


if __name__ == "__main__":
    sys.exit(main())
