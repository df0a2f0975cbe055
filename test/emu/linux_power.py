#!/usr/bin/env python3
"""Linux's own power transitions under the hypervisor, introspected
(docs/kvmi-hv.md, "Power transitions"): make test-linux-power (in make test)
and make test-linux-power-long (make test-long).

Each scenario boots the test-linux guest (test/linux/, Debian's kernel by
lxboot.efi, 2 CPUs, Bochs corei7_haswell_4770) with acpitab.efi before
hv.efi, in the product's configuration plus `listen = 4444`.  /init holds
(hvtest.hold=spawn) until this host has attached through the hypervisor's
NIC and, unless the scenario says otherwise, enabled KVMI_EVENT_UNHOOK;
then the guest is released and takes the path the kernel command line
names: `poweroff -f` (ACPI S5), `reboot -f` with reboot=acpi (the FADT reset
register), kbd (0x64 <- 0xfe), pci (0xcf9) or triple (a null IDT and INT3).
linux-power-off first asks for S3 (`echo mem > /sys/power/state`), which is
refused: the kernel reads the wake status and goes on, and this tool still
pauses and reads its vCPUs; then it powers off.  One boot per ending: each
ends the machine.

Both sides are asserted: here the events (UNHOOK, or none) and the session's
end; in the serial log the hypervisor's account (the request, the unhook and
its time on the TSC, the close, the key scrubbed, the action going on) and
the machine's (Linux's markers; the launcher's "powered off", or Bochs's own
log showing the reset, which OVMF cannot complete under Bochs).

    python3 test/emu/linux_power.py --list
    python3 test/emu/linux_power.py -k linux-power-off
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "client", "python"))
import linux_run as lr  # noqa: E402
import run  # noqa: E402
from kvmi import client as kc  # noqa: E402
from kvmi import wire as w  # noqa: E402

HV = r"hv: \[cpu\d+\] "
GO = "hvtest-go\n"
HOLD = r"LINUX: holding for the host, spawning on 2 CPUs"
UNHOOK_TIMEOUT_MS = 2000
# Bochs's own log: a reset of CPU 0 after power-on (its first one is at time 0).

@dataclasses.dataclass
class Path:
    name: str
    doc: str
    off: str                 # hvtest.off: acpi (poweroff -f) or reboot (reboot -f)
    reboot: str = ""         # the kernel's reboot= option
    tool: str = "close"      # close | stubborn (never closes) | none (UNHOOK not enabled)
    sleep: bool = False      # echo mem first (refused), then the off path
    resume: bool = False     # ... with on_sleep = resume (simulated power loss): S3 and back
    action: str = "S5 power-off"
    asks: str = ""           # the hypervisor's line for the request
    after: str = ""          # its line once the action goes on


def hv_line(h: run.HostRun, pat: str, secs: float = 300) -> str:
    return h.wait_for(HV + pat, secs).group(0).split("] ", 1)[-1]


def wait_end(dom: kc.Domain, secs: float) -> list[w.Event]:
    """Every event until the hypervisor ends the session."""
    seen = dom.events_until_closed(secs)
    if seen is None:
        raise run.HostError(f"the session did not end within {secs:.0f} s")
    return seen


def bochs_reset(h: run.HostRun, secs: float = 180) -> str:
    path = os.path.join(run.BUILD, "emu", h.name, "run", "bochs.log")
    line = run.bochs_reset_line(path, secs)
    if line is not None:
        return line
    raise run.HostError(f"Bochs's log shows no reset within {secs:.0f} s of the hypervisor's")


def pause_and_read(h: run.HostRun, dom: kc.Domain, when: str) -> int:
    """Pauses every vCPU, finds Linux's state in each, lets them go, and
    waits for /init's second hold; returns the vCPU count."""
    n = dom.get_guest_info()
    dom.pause_all(n, timeout=120)
    paused = {}
    while len(paused) < n:
        ev = dom.wait_event(timeout=120, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU)
        if ev is None:
            raise run.HostError(f"{when}: PAUSE_VCPU from vCPUs {sorted(paused)} only")
        paused[ev.vcpu] = ev
    for v in sorted(paused):
        h.notes.append(f"{when}: " + lr.linux_regs(v, dom.get_registers(v)))
    for v in sorted(paused):
        dom.reply(paused[v], w.ACTION_CONTINUE)
    h.wait_for(r"(?s)" + HOLD + r".*" + HOLD, h.timeout)  # /init's second hold
    return n


def still_watched(h: run.HostRun, dom: kc.Domain) -> None:
    """After the refused sleep: no UNHOOK, and the tool still pauses every
    vCPU and finds Linux's state in each."""
    h.wait_for(r"LINUX: sleep: awake after echo mem \(status 0\)", h.timeout)
    h.notes.append(hv_line(h, r"vCPU \d+: the guest's S3 suspend to RAM is refused "
                              r"\(on_sleep = refuse\)"))
    if dom.get_version() != 1:
        raise run.HostError("GET_VERSION after the refused sleep")
    if any(e.event == w.KVMI_EVENT_UNHOOK for e in dom.queued_events()):
        raise run.HostError("KVMI_EVENT_UNHOOK for a sleep that was refused")
    pause_and_read(h, dom, "after the refused sleep")
    h.notes.append("S3 refused: Linux awake (status 0), no UNHOOK, both vCPUs paused and read "
                   "after it")
    h.send(GO)


def resumed_and_watched(h: run.HostRun, dom: kc.Domain) -> kc.Domain:
    """on_sleep = resume: UNHOOK before the sleep, the tool closes; the
    hypervisor sleeps (a simulated power loss under Bochs) and wakes, every
    CPU back in VMX, Linux back at its own waking vector with both CPUs
    online; the tool attaches again and pauses and reads both vCPUs."""
    ev = dom.wait_event(timeout=h.timeout, match=lambda e: e.event == w.KVMI_EVENT_UNHOOK)
    if ev is None:
        raise run.HostError("no KVMI_EVENT_UNHOOK before the S3 sleep")
    h.notes.append(f"S3: KVMI_EVENT_UNHOOK from vCPU {ev.vcpu}")
    dom.close()
    hv_line(h, r"kvmi: unhook done: introspector closed after \d+ ms \(TSC\)")
    h.notes.append(hv_line(h, r"vCPU \d+: S3: the OS's waking vector real mode 0x[0-9a-f]+:0x[0-9a-f]+ "
                              r"is saved, the FACS points at the hypervisor's \(0x[0-9a-f]+\)"))
    hv_line(h, r"S3 \(simulated\): every CPU is out of VMX; the BSP enters the wake path")
    h.notes.append(hv_line(h, r"S3 wake: CPU \d+ is back at the hypervisor's waking vector"))
    hv_line(h, r"net: the NIC is set up again after S3")
    h.notes.append(hv_line(h, r"S3 wake: every CPU is in VMX again; the OS resumes at its waking "
                              r"vector"))
    line = h.wait_for(r"LINUX: sleep: awake after echo mem \(status 0\)[^\n]*cpus online 0-1",
                      h.timeout).group(0)
    h.notes.append(line.split("LINUX: ", 1)[-1])
    try:
        dom = kc.connect("127.0.0.1", h.fwd[4444], timeout=120)
    except (OSError, kc.ProtocolError, kc.ConnectionClosed) as e:
        raise run.HostError(f"KVMI attach after the wake: {e}") from e
    dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    n = pause_and_read(h, dom, "after the wake")
    h.notes.append(f"S3 and back: a new session paused and read all {n} vCPUs")
    h.send(GO)
    return dom


def host_for(p: Path):
    def host(h: run.HostRun) -> None:
        h.wait_for(HOLD, h.timeout)
        try:
            dom = kc.connect("127.0.0.1", h.fwd[4444], timeout=120)
        except (OSError, kc.ProtocolError, kc.ConnectionClosed) as e:
            raise run.HostError(f"KVMI attach through port 4444: {e}") from e
        try:
            if p.tool != "none":
                dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
            h.send(GO)
            if p.resume:
                dom = resumed_and_watched(h, dom)
            elif p.sleep:
                still_watched(h, dom)
            if p.tool == "none":
                events = wait_end(dom, h.timeout)
                if any(e.event == w.KVMI_EVENT_UNHOOK for e in events):
                    raise run.HostError("KVMI_EVENT_UNHOOK although not enabled")
                h.notes.append(hv_line(h, p.asks))
                hv_line(h, r"kvmi: unhook requested by vCPU \d+: the introspector did not "
                           r"enable KVMI_EVENT_UNHOOK")
                h.notes.append(hv_line(h, r"kvmi: " + p.action + r": closing the introspection "
                                          r"session \(UNHOOK not enabled\)"))
            else:
                ev = dom.wait_event(timeout=h.timeout,
                                    match=lambda e: e.event == w.KVMI_EVENT_UNHOOK)
                if ev is None:
                    raise run.HostError("no KVMI_EVENT_UNHOOK before the " + p.action)
                # The held vCPU serves its own commands while it waits.
                regs = dom.get_registers(ev.vcpu)
                h.notes.append(f"KVMI_EVENT_UNHOOK from vCPU {ev.vcpu}, which answers "
                               f"GET_REGISTERS while held (RIP {regs.regs.rip:#x})")
                h.notes.append(hv_line(h, p.asks))
                if p.tool == "close":
                    dom.close()
                    h.notes.append(hv_line(h, r"kvmi: unhook done: introspector closed after "
                                              r"\d+ ms \(TSC\)"))
                else:
                    wait_end(dom, h.timeout)
                    line = hv_line(h, r"kvmi: unhook timed out: going on after \d+ ms \(TSC\)")
                    waited = int(re.search(r"after (\d+) ms", line).group(1))
                    if not UNHOOK_TIMEOUT_MS <= waited < UNHOOK_TIMEOUT_MS + 1000:
                        raise run.HostError(f"the hypervisor waited {waited} ms for a tool that "
                                            f"never closed (unhook_timeout_ms = "
                                            f"{UNHOOK_TIMEOUT_MS})")
                    h.notes.append(line)
                    hv_line(h, r"kvmi: " + p.action + r": closing the introspection session "
                               r"\(unhook timed out\)")
            hv_line(h, r"kvmi: " + p.action + r": the key is scrubbed from the region")
            h.notes.append(hv_line(h, p.after or r"vCPU \d+: " + p.action + r" proceeds"))
            if p.off == "reboot":
                h.notes.append("Bochs: " + bochs_reset(h))
        except (kc.KvmiError, kc.ProtocolError, ValueError) as e:
            raise run.HostError(f"KVMI: {e.__class__.__name__}: {e}") from e
        except kc.ConnectionClosed as e:
            raise run.HostError(f"the session ended early: {e}") from e
        finally:
            dom.close()
    return host


S5 = r"vCPU \d+: the guest asks for S5 power-off \(port 0x[0-9a-f]+ <- 0x[0-9a-f]+\)"
RESET = r"vCPU \d+: the guest asks for reset "
PATHS = [
    # One boot, two paths: the refused sleep leaves the machine running.
    Path("linux-power-off", "echo mem > /sys/power/state (S3) refused (on_sleep = refuse): no "
         "UNHOOK, Linux awake and still paused and read by the tool; then poweroff -f (ACPI "
         "S5): UNHOOK, the tool closes, the power-off", "acpi", sleep=True, asks=S5),
    Path("linux-power-s3", "on_sleep = resume: echo mem > /sys/power/state: UNHOOK, the tool "
         "closes, S3 (a simulated power loss: Bochs cannot resume), the wake through the "
         "hypervisor's vector: every CPU back in VMX, Linux at its own waking vector with both "
         "CPUs online, a new session pauses and reads them; then poweroff -f", "acpi",
         sleep=True, resume=True, asks=S5),
    Path("linux-power-triple", "reboot -f with reboot=triple: a triple fault, which the "
         "hypervisor turns into the platform reset after UNHOOK and the close", "reboot",
         "triple", action="reset",
         asks=r"vCPU \d+: triple fault at RIP 0xffffffff[0-9a-f]+: a shutdown",
         after=r"vCPU \d+: platform reset through the FADT reset register \(port 0xcf9 <- 0x6\)"),
    Path("linux-power-off-stubborn", "poweroff -f with a tool that never closes: the power-off "
         f"after unhook_timeout_ms ({UNHOOK_TIMEOUT_MS}) on the hypervisor's TSC", "acpi",
         tool="stubborn", asks=S5),
    Path("linux-power-off-no-unhook", "poweroff -f without UNHOOK enabled: no event, the "
         "session closed, the power-off at once", "acpi", tool="none", asks=S5),
    Path("linux-power-reboot-acpi", "reboot -f with reboot=acpi: the FADT reset register "
         "(0xcf9 <- 6): UNHOOK, the close, the reset", "reboot", "acpi", action="reset",
         asks=RESET + r"\(port 0xcf9 <- 0x6, the FADT reset register\)"),
    Path("linux-power-reboot-kbd", "reboot -f with reboot=kbd: 0x64 <- 0xfe: UNHOOK, the "
         "close, the reset", "reboot", "kbd", action="reset",
         asks=RESET + r"\(port 0x64 <- 0xfe\)"),
    Path("linux-power-reboot-pci", "reboot -f with reboot=pci: the reset control register "
         "0xcf9: UNHOOK, the close, the reset", "reboot", "pci", action="reset",
         asks=RESET + r"\(port 0xcf9 <- 0x[0-9a-f]+\)"),
]
# make test runs these; make test-long the others (one Linux boot each).
SHORT = {"linux-power-off", "linux-power-triple", "linux-power-s3"}


def scenario(p: Path, timeout: int) -> run.Scenario:
    opts = (f"hvtest.cpus=2 hvtest.vmx=0 hvtest.hv=0 hvtest.workload=0 hvtest.hold=spawn "
            f"hvtest.off={p.off}" + (f" reboot={p.reboot}" if p.reboot else "") +
            (" hvtest.sleep=mem no_console_suspend" if p.sleep else ""))
    conf = "listen = 4444\n" + (f"unhook_timeout_ms = {UNHOOK_TIMEOUT_MS}\n"
                                if p.tool == "stubborn" else "")
    if p.resume:
        conf += "on_sleep = resume\ns3_simulate = yes\n"
    linux = [r"LINUX: init start", r"LINUX: cpus cpuinfo 2 nproc 2 online 0-1\n",
             r"LINUX: released by the host"]
    if p.sleep:
        linux += [r"LINUX: sleep: awake after echo mem \(status 0\)",
                  r"LINUX: released by the host"]
    end = ([r"HVTEST-RESULT: PASS", r"LINUX: poweroff -f"] if p.off == "acpi" else
           [r"HVTEST-RESULT: PASS", r"LINUX: reboot -f \(reboot=" + p.reboot + r"\)"])
    return run.Scenario(
        name=p.name, doc=p.doc, model=lr.MODEL, cpus=2, hv=True, agent=False, nic=True,
        conf=conf, debug=False, timeout=timeout, esp_args=lr.esp_args(opts, "lxboot"),
        expect=lr.acpitab_expect(2, True) + linux + end,
        forbid=lr.LINUX_BAD + lr.HV_BAD + [r"the platform did not reset",
                                           r"guest shutdown through port 0x8900"],
        guest_ports=[4444], host=host_for(p), release=GO,
        # The result line comes before the power-off, which may wait
        # unhook_timeout_ms of emulated TSC (tens of host seconds under load).
        launcher_args=["--grace", "300"],
        launcher_says=r"powered off" if p.off == "acpi" else None,
        stop_after_host=p.off == "reboot")


def main() -> int:
    ap = argparse.ArgumentParser(description="Linux's power transitions under the hypervisor.")
    ap.add_argument("-k", dest="pattern", help="only scenarios whose name contains this")
    ap.add_argument("--set", choices=("short", "long", "all"), default="all",
                    help="short: make test's (" + ", ".join(sorted(SHORT)) + "); long: the "
                    "others (make test-long)")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("LINUX_TIMEOUT", "1200")),
                    help="seconds a run may take (default 1200, or $LINUX_TIMEOUT)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args()
    paths = [p for p in PATHS if args.set == "all" or (p.name in SHORT) == (args.set == "short")]
    chosen, done = run.select([scenario(p, args.timeout) for p in paths], args.pattern,
                              args.list, lambda s: f"{s.name:26} {s.doc}")
    if done is not None:
        return done
    need = [lr.LXBOOT, lr.LXK, lr.INITRD, lr.ACPITAB, run.HV_EFI]
    missing = [p for p in need if not os.path.exists(p)]
    if missing:
        print(f"missing {', '.join(missing)} (run make linux-guest / make)", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    failed = []
    for sc in chosen:  # one at a time: each is a whole Linux boot
        ok, took, report = run.run_scenario(sc)
        if not ok:
            failed.append(sc.name)
        print(f"{'PASS' if ok else 'FAIL'} {sc.name} ({took:.1f} s; {lr.stamps(sc.name)}): "
              f"{report}", flush=True)
    print(f"test-linux-power: {len(chosen) - len(failed)} of {len(chosen)} passed in "
          f"{time.monotonic() - t0:.0f} s" + (f"; FAILED: {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
