#!/usr/bin/env python3
"""Emulator scenarios: boot hv.efi and the guest test agent, assert on COM1.

Each scenario assembles an ESP under build/emu/<name>/ with scripts/mkesp.sh,
boots it with scripts/emu.sh (bounded by a timeout), then checks the
launcher's exit code and the serial log: patterns that must appear in order,
patterns that must not appear, and optional cross-checks over the whole log.
A failing scenario prints why and the tail of its serial log.

At most two emulators run at once (one host thread each; CI has two cores).

    python3 test/emu/run.py            # every scenario
    python3 test/emu/run.py -k qemu    # those whose name contains "qemu"
    python3 test/emu/run.py --list
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Optional

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(TOP, "build")
HV_EFI = os.path.join(BUILD, "hv.efi")
# The test build (include/test_hooks.h): the product has no test hook.
HV_TEST_EFI = os.path.join(BUILD, "hv-test.efi")
TEST_KEYS = re.compile(r"^\s*(debug_hypercalls|s3_simulate)\s*=\s*yes\b", re.M)


def hv_for(conf_text: Optional[str]) -> list[str]:
    """mkesp.sh's --hv for a configuration: the test build when it asks for a
    test hook (the product would refuse the key), else the product."""
    return ["--hv", HV_TEST_EFI if conf_text and TEST_KEYS.search(conf_text) else HV_EFI]
AGENT_EFI = os.path.join(BUILD, "agent.efi")

# Launcher exit codes (docs/emulators.md, "Result protocol").
PASS, FAIL, TIMEOUT, NO_RESULT, STOPPED = 0, 1, 2, 3, 4

HEX = r"0x([0-9a-fA-F]+)"


@dataclasses.dataclass
class Scenario:
    name: str
    doc: str
    emu: str = "bochs"  # bochs | qemu
    model: Optional[str] = None
    cpus: int = 2
    hv: bool = True
    conf: Optional[str] = None  # hv.conf text; None: no hv.conf
    # hv.conf gains `debug_hypercalls = yes` (the agent's test hypercalls, port
    # 0x8900's statistics at power-off); False runs the product's default.
    debug: bool = True
    agent: bool = True
    agent_args: str = ""
    poweroff: bool = True
    nic: bool = False  # an e1000 on user networking, with a TCP forward from a free host port
    launcher_args: list[str] = dataclasses.field(default_factory=list)
    esp_args: list[str] = dataclasses.field(default_factory=list)  # more mkesp.sh options
    timeout: int = 180
    exit_code: int = PASS
    expect: list[str] = dataclasses.field(default_factory=list)  # in this order
    forbid: list[str] = dataclasses.field(default_factory=list)
    check: Optional[Callable[[str], Optional[str]]] = None  # returns an error or None
    launcher_says: Optional[str] = None  # pattern in the launcher's summary line
    # Guest TCP ports forwarded from free host ports when nic is set.
    guest_ports: list[int] = dataclasses.field(default_factory=lambda: [4444])
    # The host side, run while the emulator runs (see HostRun); raises on failure.
    host: Optional[Callable[["HostRun"], None]] = None
    # Written to the guest's COM1 after the host side, whether it passed or
    # not, so that a guest waiting for the host is always let go.
    release: Optional[str] = None
    # The guest does not end by itself (a reset OVMF cannot complete under
    # Bochs): the launcher is stopped once the host side is done, and its
    # exit status is not judged.
    stop_after_host: bool = False


class HostError(Exception):
    """A host side's failure, with the reason the scenario report shows."""


@dataclasses.dataclass
class HostRun:
    """What Scenario.host gets: the live serial log, the guest's COM1 input,
    the forwarded ports and a list of notes for the report."""
    name: str
    serial: str
    serial_input: str
    fwd: dict[int, int]  # guest port -> host port on 127.0.0.1
    proc: subprocess.Popen
    timeout: int  # the scenario's, in seconds: an upper bound for any wait
    notes: list[str] = dataclasses.field(default_factory=list)

    def text(self) -> str:
        return serial_text(self.serial)

    def wait_for(self, pat: str, secs: float) -> re.Match:
        """The first match of pat on the serial log, waiting up to secs
        (host time) for it; HostError if it does not come or the emulator
        ends first."""
        end = time.monotonic() + secs
        while True:
            m = re.search(pat, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                raise HostError(f"the emulator ended before /{pat}/ was on the serial log")
            if time.monotonic() >= end:
                raise HostError(f"/{pat}/ not on the serial log within {secs:.0f} s")
            time.sleep(0.5)

    def send(self, text: str) -> None:
        """Types text on the guest's COM1 (scripts/emu.sh --serial-input)."""
        with open(self.serial_input, "a") as f:
            f.write(text)


def core_in_reserved_region(log: str) -> Optional[str]:
    """The core runs inside the region hv.efi reserved, and after hv.efi has
    returned the firmware's memory map still lists that region as
    EfiReservedMemoryType (so the OS will never reuse it)."""
    m = re.search(rf"core running at {HEX} \(reserved region {HEX} size {HEX}\)", log)
    if not m:
        return "no 'core running at' line"
    entry, base, size = (int(g, 16) for g in m.groups())
    if not base <= entry < base + size:
        return f"core entry {entry:#x} outside region {base:#x}+{size:#x}"
    for r in re.finditer(rf"AGENT: reserved {HEX}-{HEX}", log):
        lo, hi = int(r.group(1), 16), int(r.group(2), 16)
        if lo <= base and base + size - 1 <= hi:
            return None
    return f"the agent's memory map has no reserved range covering {base:#x}+{size:#x}"


SCENARIOS = [
    Scenario(
        name="bochs-tigerlake-2cpu",
        doc="hv.efi starts the core from its reserved region, returns; the firmware "
        "boots on and the agent sees 2 CPUs but not the e1000 the hypervisor took: not in "
        "config space, and its old BAR0 (0x80000000, cross-checked with the hypervisor's "
        "log) reads all ones",
        emu="bochs",
        model="tigerlake",
        cpus=2,
        nic=True,
        agent_args="cpus=2 e1000=0 nicbar=0x80000000",
        expect=[
            r"hv: \[cpu0\] core running at 0x[0-9a-f]+ \(reserved region",
            r"net: NIC [0-9a-f:.]+ 8086:100e \(.*\) BAR0 0x80000000\b",
            r"hide: NIC [0-9a-f:.]+ hidden from the guest",
            r"hv: \[cpu0\] core returned to loader: ok",
            r"hv: \[cpu0\] launching the BSP: .*then returning to firmware",
            r"startup.nsh: hv.efi returned 0x0\b",
            r"AGENT: cpus 2 enabled 2",
            r"AGENT: cpus probed 2 of 2",
            r"HVTEST-RESULT: PASS",
        ],
        forbid=[r"missing:", r"refusing to start", r"HVTEST-RESULT: FAIL"],
        check=core_in_reserved_region,
        launcher_says=r"powered off",
    ),
    Scenario(
        name="qemu-tcg-no-vmx",
        doc="QEMU TCG has no VMX: hv.efi refuses naming VMX, the agent still runs",
        emu="qemu",
        cpus=2,
        nic=True,
        agent_args="cpus=2 vmx=0 e1000=1",
        timeout=90,
        expect=[
            r"hv: \[cpu0\] missing: VMX \(",
            r"hv: \[cpu0\] refusing to start",
            r"AGENT: cpus 2 enabled 2",
            r"HVTEST-RESULT: PASS",
        ],
        forbid=[r"core running at", r"HVTEST-RESULT: FAIL"],
    ),
    Scenario(
        name="bochs-penryn-no-ept",
        doc="Bochs core2_penryn_t9600 has VMX without EPT: hv.efi refuses naming EPT",
        emu="bochs",
        model="core2_penryn_t9600",
        cpus=1,
        agent_args="cpus=1 vmx=1 e1000=0",
        expect=[
            r"hv: \[cpu0\] missing: EPT",
            r"hv: \[cpu0\] refusing to start",
            r"AGENT: cpus 1 enabled 1",
            r"HVTEST-RESULT: PASS",
        ],
        forbid=[r"missing: VMX \(", r"core running at", r"HVTEST-RESULT: FAIL"],
    ),
    Scenario(
        name="qemu-bad-conf",
        doc="a malformed hv.conf: hv.efi names the line and refuses before any "
        "other check, the agent still runs",
        emu="qemu",
        cpus=1,
        conf="# scenario qemu-bad-conf: line 3 is malformed\n"
        "log_level = info\n"
        "this line has no equals sign\n",
        agent_args="cpus=1",
        timeout=90,
        expect=[
            r"hv: \[cpu0\] hv.conf:3: ",
            r"hv: \[cpu0\] refusing to start: bad configuration",
            r"AGENT: start",
            r"HVTEST-RESULT: PASS",
        ],
        forbid=[r"hv.conf:[124]:", r"missing:", r"core running at", r"HVTEST-RESULT: FAIL"],
    ),
    # The launcher's own result protocol, on QEMU (a few seconds each).
    Scenario(
        name="launcher-fail",
        doc="a failing probe gives exit status 1 and the reason",
        emu="qemu",
        cpus=2,
        hv=False,
        agent_args="cpus=3",
        timeout=60,
        exit_code=FAIL,
        expect=[r"HVTEST-RESULT: FAIL cpus: 2 enabled CPUs, expected 3"],
        launcher_says=r"FAIL .*expected 3; powered off",
    ),
    Scenario(
        name="launcher-no-poweroff",
        doc="a PASS from a guest that does not power off: killed after the grace time",
        emu="qemu",
        cpus=1,
        hv=False,
        poweroff=False,
        timeout=60,
        launcher_args=["--grace", "2"],
        expect=[r"HVTEST-RESULT: PASS"],
        launcher_says=r"PASS .*did not power off within 2s",
    ),
    Scenario(
        name="launcher-stop-on",
        doc="--stop-on: a run that never reports is stopped as soon as the serial log "
        "matches, exit status 4 (not the timeout)",
        emu="qemu",
        cpus=1,
        hv=False,
        agent=False,
        poweroff=False,
        timeout=120,
        esp_args=["--run", "echo stop-here-4711"],
        launcher_args=["--stop-on", "stop-here-[0-9]+"],
        exit_code=STOPPED,
        expect=[r"stop-here-4711"],
        launcher_says=r"STOPPED .*matched --stop-on /stop-here-\[0-9\]\+/",
    ),
    Scenario(
        name="launcher-no-result",
        doc="a run that powers off without a result line gives exit status 3",
        emu="qemu",
        cpus=1,
        hv=False,
        agent=False,
        timeout=60,
        exit_code=NO_RESULT,
        expect=[r"startup.nsh: nothing powered off"],
        launcher_says=r"without a result line",
    ),
    Scenario(
        name="launcher-timeout",
        doc="a guest that never reports is killed at the timeout: exit status 2",
        emu="qemu",
        cpus=1,
        hv=False,
        agent=False,
        poweroff=False,
        timeout=12,
        exit_code=TIMEOUT,
        launcher_says=r"TIMEOUT .*no result within 12s",
    ),
]


def free_port() -> int:
    # The emulator binds it a moment later; a clash with another process in
    # that window would show as an emulator error, not a wrong verdict.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The VMX core's scenarios (issue 3) live in their own file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmx_scenarios  # noqa: E402

SCENARIOS += vmx_scenarios.make(Scenario, STOPPED=STOPPED)


def normalise(raw: bytes) -> str:
    # COM1 carries CRLF line ends and the firmware's terminal escapes; only
    # the text matters to the patterns.  The guest and the hypervisor share
    # the UART (docs/architecture.md, "Known limit"), so a guest's escape
    # sequence can be cut by a hypervisor line: "10.0.2<ESC>.2:55436" was
    # seen, its "[1m..." on the next line.  What is left of such a cut
    # sequence (the lone ESC, or a "[...m" run at a line's start) goes too.
    text = raw.decode("utf-8", "replace").replace("\r", "")
    text = re.sub(r"\x1b\[[0-9;=?]*[A-Za-z]", "", text)
    text = re.sub(r"(?m)^(?:\[[0-9;=?]+[A-Za-z])+", "", text)
    return text.replace("\x1b", "")


def select(scenarios: list, pattern: Optional[str], show: bool,
           line: Callable[[Any], str]) -> tuple[list, Optional[int]]:
    """The scenarios whose name contains pattern (all without one), and an
    exit status when the runner is done already: 0 after printing them for
    --list (one line(s) each), 1 when none matches."""
    chosen = [s for s in scenarios if not pattern or pattern in s.name]
    if show:
        for s in chosen:
            print(line(s))
        return chosen, 0
    if not chosen:
        print(f"no scenario matches {pattern!r}", file=sys.stderr)
        return chosen, 1
    return chosen, None


def serial_text(path: str) -> str:
    """A serial log as it is now, normalised; "" while it does not exist."""
    try:
        with open(path, "rb") as f:
            return normalise(f.read())
    except OSError:
        return ""


DEBUG_CONF = "debug_hypercalls = yes\n"


BOCHS_RESET = re.compile(r"^0*[1-9]\d*i\[(?:SYS|CPU0) *\] (bx_pc_system_c::Reset\(\w+\) called|"
                         r"cpu (?:hardware|software) reset)", re.M)


def bochs_reset_line(path: str, secs: float) -> Optional[str]:
    """Bochs's log line of a machine reset, waited for up to secs; None if none came."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                m = BOCHS_RESET.search(f.read())
        except OSError:
            m = None
        if m:
            return m.group(1)
        time.sleep(1)
    return None


def with_debug(conf: Optional[str], debug: bool) -> Optional[str]:
    """The hv.conf text with the test hooks turned on when asked: appended,
    so that the line numbers a scenario's own text expects stay put."""
    if not debug or (conf is not None and "debug_hypercalls" in conf):
        return conf
    if conf and not conf.endswith("\n"):
        conf += "\n"
    return (conf or "") + DEBUG_CONF


def run_scenario(sc: Scenario) -> tuple[bool, float, str]:
    """Returns (passed, seconds, report)."""
    work = os.path.join(BUILD, "emu", sc.name)
    esp = os.path.join(work, "esp")
    log = os.path.join(work, "serial.log")
    os.makedirs(work, exist_ok=True)

    mk = [os.path.join(TOP, "scripts/mkesp.sh"), "-o", esp]
    conf_text = with_debug(sc.conf, sc.hv and sc.debug)
    if not sc.hv:
        mk.append("--no-hv")
    else:
        mk += hv_for(conf_text)
    if conf_text is not None:
        conf = os.path.join(work, "hv.conf")
        with open(conf, "w") as f:
            f.write(conf_text)
        mk += ["--conf", conf]
    if not sc.agent:
        mk.append("--no-agent")
    if sc.agent_args:
        mk += ["--agent-args", sc.agent_args]
    if not sc.poweroff:
        mk.append("--no-poweroff")
    mk += sc.esp_args
    r = subprocess.run(mk, capture_output=True, text=True)
    if r.returncode != 0:
        return False, 0.0, f"mkesp.sh failed: {r.stderr.strip()}"

    cmd = [os.path.join(TOP, "scripts/emu.sh"), "-q", "-e", sc.emu, "-c", str(sc.cpus),
           "-t", str(sc.timeout), "-s", log, "-w", os.path.join(work, "run"),
           "--stamps", os.path.join(work, "serial.stamps"), esp]
    if sc.model:
        cmd[2:2] = ["-m", sc.model]
    fwd = {gp: free_port() for gp in sc.guest_ports} if sc.nic else {}
    for gp, hp in fwd.items():
        cmd[2:2] = ["-f", f"{hp}:{gp}"]
    serial_input = os.path.join(work, "serial.input")
    if sc.host:
        with open(serial_input, "w"):
            pass  # empty: the guest gets only what the host side writes
        cmd[2:2] = ["--serial-input", serial_input]
    cmd[2:2] = sc.launcher_args
    t0 = time.monotonic()
    notes: list[str] = []
    host_error = None
    if sc.host:
        # A stale log from the last run would satisfy the host's waits
        # before the launcher truncates it.
        if os.path.exists(log):
            os.unlink(log)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        hr = HostRun(sc.name, log, serial_input, fwd, proc, sc.timeout, notes)
        try:
            sc.host(hr)
        except Exception as e:  # any failure of the host side fails the scenario
            host_error = f"host side: {e.__class__.__name__}: {e}"
        finally:
            if sc.release is not None:
                hr.send(sc.release)
        if sc.stop_after_host and proc.poll() is None:
            proc.terminate()  # the launcher's trap stops the emulator
        try:
            _, stderr = proc.communicate(timeout=sc.timeout + 60)
        except subprocess.TimeoutExpired:
            proc.kill()  # (the launcher's own timeout should have come first)
            _, stderr = proc.communicate()
        r = subprocess.CompletedProcess(cmd, proc.returncode, "", stderr)
    else:
        r = subprocess.run(cmd, capture_output=True, text=True)
    took = time.monotonic() - t0
    summary = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "(no summary)"

    try:
        with open(log, "rb") as f:
            text = normalise(f.read())
    except OSError as e:
        text = ""
        summary += f"; cannot read {log}: {e}"

    errors = [host_error] if host_error else []
    if r.returncode != sc.exit_code and not sc.stop_after_host:
        errors.append(f"launcher exit status {r.returncode}, expected {sc.exit_code}")
    if sc.launcher_says and not re.search(sc.launcher_says, summary):
        errors.append(f"launcher summary lacks /{sc.launcher_says}/")
    pos = 0
    for pat in sc.expect:
        m = re.compile(pat).search(text, pos)
        if not m:
            where = "after the previous match" if re.search(pat, text) else "anywhere"
            errors.append(f"expected /{pat}/ not found {where}")
            break
        pos = m.end()
    for pat in sc.forbid:
        m = re.search(pat, text)
        if m:
            line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())]
            errors.append(f"forbidden /{pat}/ found: {line.strip()!r}")
    if sc.check and not errors:
        err = sc.check(text)
        if err:
            errors.append(err)

    report = summary + "".join(f"\n    {n}" for n in notes)
    if errors:
        tail = "\n".join("    | " + l for l in text.rstrip("\n").splitlines()[-25:])
        report += "\n  " + "\n  ".join(errors) + f"\n  last lines of {log}:\n{tail}"
    return not errors, took, report


def main() -> int:
    ap = argparse.ArgumentParser(description="Run the emulator scenarios.")
    ap.add_argument("-k", dest="pattern", help="only scenarios whose name contains this")
    ap.add_argument("-j", dest="jobs", type=int,
                    default=int(os.environ.get("EMU_JOBS", "2")),
                    help="emulators at once (default 2, or $EMU_JOBS)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args()

    chosen, done = select(SCENARIOS, args.pattern, args.list,
                          lambda s: f"{s.name:24} {s.emu:5} {s.doc}")
    if done is not None:
        return done
    missing = [p for p in (AGENT_EFI, HV_EFI) if not os.path.exists(p)]
    if missing:
        print(f"missing {', '.join(missing)} (run make first)", file=sys.stderr)
        return 1

    # Longest first (Bochs), so the two workers finish close together.
    order = sorted(chosen, key=lambda s: (s.emu != "bochs", -s.timeout))
    t0 = time.monotonic()
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_scenario, s): s for s in order}
        for fut in concurrent.futures.as_completed(futures):
            sc = futures[fut]
            ok, took, report = fut.result()
            results[sc.name] = ok
            print(f"{'PASS' if ok else 'FAIL'} {sc.name} ({took:.1f} s): {report}", flush=True)
    failed = [n for n, ok in results.items() if not ok]
    total = time.monotonic() - t0
    print(f"test-emu: {len(results) - len(failed)} of {len(results)} scenarios passed "
          f"in {total:.0f} s" + (f"; FAILED: {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
