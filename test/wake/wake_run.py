#!/usr/bin/env python3
"""A real S3 round trip through the wake trampoline (docs/wake.md).

QEMU TCG, q35 with S3 enabled (-global ICH9-LPC.disable_s3=0), 2 CPUs,
Debian's OVMF; the UEFI shell runs build/test/wake/waketest.efi, which
installs the trampoline, points the FACS waking vector at it and enters S3.
Over QMP this harness sees the machine suspended (and the app's line before
the sleep, none after it), sends system_wakeup, and then checks COM1: the
BSP reached the entry through the firmware's resume path in long mode with
slot 0, the installed CR3 and its own stack; the AP it woke with
INIT-SIPI-SIPI arrived with slot 1 likewise; a third arrival halted in the
trampoline; QEMU powered off through \\_S5.

    python3 test/wake/wake_run.py            # or: make test-wake
    python3 test/wake/wake_run.py --machine pc   # i440FX + PIIX4 PM instead of q35
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(TOP, "build")
WAKETEST = os.path.join(BUILD, "test", "wake", "waketest.efi")
WORK = os.path.join(BUILD, "test", "wake", "run")
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
BOOT_TIMEOUT = 180  # to the suspend: OVMF and the shell under TCG, on a loaded machine
WAKE_TIMEOUT = 120  # from system_wakeup to the power-off
BANNER = "UEFI Interactive Shell"
HEXN = r"0x[0-9a-f]+"


class Qmp:
    """A QMP client over a Unix socket: commands and the events seen meanwhile."""

    def __init__(self, path: str, deadline: float):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.f = self.sock.makefile("rw")
        self.events: list[str] = []
        json.loads(self.f.readline())  # the greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name: str, **args) -> dict:
        self.f.write(json.dumps({"execute": name, **({"arguments": args} if args else {})}) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP closed")
            r = json.loads(line)
            if "event" in r:
                self.events.append(r["event"])
            elif "return" in r or "error" in r:
                return r

    def close(self) -> None:
        self.sock.close()


def serial(path: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return ""
    text = raw.decode("latin-1").replace("\r", "")
    return re.sub(r"\x1b\[[0-9;=?]*[A-Za-z]", "", text)


def wake_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith("WAKE:")]


# The machine and the global that lets its ACPI PM offer S3 (QEMU hides \\_S3 by default).
MACHINES = {"q35": "ICH9-LPC.disable_s3=0", "pc": "PIIX4_PM.disable_s3=0"}


def run(machine: str) -> list[str]:
    """Boots, suspends, wakes; returns the failures (empty: passed)."""
    os.makedirs(WORK, exist_ok=True)
    esp = os.path.join(WORK, "esp")
    subprocess.run(["bash", os.path.join(TOP, "scripts", "mkesp.sh"), "-o", esp, "--no-hv",
                    "--no-agent", "--run", "waketest.efi", "--file",
                    f"{WAKETEST}:waketest.efi"], check=True, stdout=subprocess.DEVNULL)
    vars_copy = os.path.join(WORK, "OVMF_VARS_4M.fd")
    with open(OVMF_VARS, "rb") as src, open(vars_copy, "wb") as dst:
        dst.write(src.read())
    log = os.path.join(WORK, "serial.log")
    qmp_path = os.path.join(WORK, "qmp.sock")
    for p in (log, qmp_path):
        if os.path.exists(p):
            os.unlink(p)
    cmd = ["qemu-system-x86_64", "-machine", machine, "-accel", "tcg", "-m", "256", "-smp", "2",
           "-global", MACHINES[machine],
           "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
           "-drive", f"if=pflash,format=raw,file={vars_copy}",
           "-drive", f"format=raw,file=fat:rw:{esp}",
           "-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot",
           "-serial", f"file:{log}", "-qmp", f"unix:{qmp_path},server=on,wait=off"]
    errors: list[str] = []
    q = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(WORK, "qemu.err"), "wb"))
    t0 = time.monotonic()
    qmp = None
    try:
        qmp = Qmp(qmp_path, t0 + 30)
        # 1. The app enters S3: QEMU stops every CPU and reports "suspended".
        # A key on the PS/2 keyboard skips the shell's 5 s startup.nsh countdown.
        pressed = False
        while True:
            if not pressed and "seconds to skip" in serial(log):
                qmp.cmd("send-key", keys=[{"type": "qcode", "data": "spc"}])
                pressed = True
            if q.poll() is not None:
                return [f"QEMU exited ({q.returncode}) before any suspend"]
            if qmp.cmd("query-status")["return"]["status"] == "suspended":
                break
            if time.monotonic() - t0 > BOOT_TIMEOUT:
                return [f"no suspend within {BOOT_TIMEOUT} s"]
            time.sleep(0.2)
        t_sleep = time.monotonic() - t0
        before = wake_lines(serial(log))
        if not any(ln.startswith("WAKE: sleeping:") for ln in before):
            errors.append(f"suspended without the app's line before the sleep: {before}")
        if len(before) != 1:
            errors.append(f"lines other than the sleep line before the wakeup: {before}")
        if "SUSPEND" not in qmp.events:
            errors.append(f"no SUSPEND event (events {qmp.events})")
        # 2. The wakeup: QEMU resets the machine with the S3 resume flag in
        # the CMOS; OVMF's resume path jumps to the FACS waking vector.
        qmp.cmd("system_wakeup")
        try:
            q.wait(WAKE_TIMEOUT)
        except subprocess.TimeoutExpired:
            errors.append(f"QEMU still running {WAKE_TIMEOUT} s after system_wakeup")
        t_end = time.monotonic() - t0
        try:
            qmp.cmd("query-status")
        except (OSError, EOFError, ValueError):
            pass
        if "WAKEUP" not in qmp.events:
            errors.append(f"no WAKEUP event (events {qmp.events})")
        print(f"wake: suspended after {t_sleep:.1f} s, powered off {t_end - t_sleep:.1f} s "
              "after the wakeup")
    finally:
        if qmp:
            qmp.close()
        if q.poll() is None:
            q.kill()
            q.wait()

    text = serial(log)
    lines = wake_lines(text)
    for ln in lines:
        print("  " + ln)
    if text.count(BANNER) != 1:
        errors.append(f"the shell started {text.count(BANNER)} times (a reboot, not a resume)")
    m = re.search(rf"WAKE: sleeping: page ({HEXN}) CR3 ({HEXN})", text)
    if not m:
        return errors + ["no sleep line"]
    page, cr3 = int(m.group(1), 16), m.group(2)
    if page >= 0x100000 or page & 0xfff:
        errors.append(f"page {page:#x} is not a page below 1 MiB")
    expect = [
        rf"WAKE: slot 0: CR0\.PG 1 EFER\.LMA 1 CR3 {cr3} \(installed\) RSP {HEXN} "
        r"\(in its stack\) BSP flag 1 ok",
        rf"WAKE: slot 1: CR0\.PG 1 EFER\.LMA 1 CR3 {cr3} \(installed\) RSP {HEXN} "
        r"\(in its stack\) BSP flag 0 ok",
        r"WAKE: extra arrival: next_slot 3, no entry call: halted ok",
        r"WAKE: powering off",
    ]
    at = 0
    for pat in expect:
        idx = next((i for i in range(at, len(lines)) if re.fullmatch(pat, lines[i])), None)
        if idx is None:
            errors.append(f"missing (in order): {pat}")
        else:
            at = idx + 1
    bad = [ln for ln in lines if "BAD" in ln or "NOT" in ln or "error" in ln or "never" in ln]
    if bad:
        errors.append(f"failed checks: {bad}")
    if q.returncode != 0:
        errors.append(f"QEMU exit status {q.returncode} (expected 0 from the S5 power-off)")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machine", choices=sorted(MACHINES), default="q35",
                    help="QEMU machine (default q35)")
    args = ap.parse_args()
    for f in (WAKETEST, OVMF_CODE, OVMF_VARS):
        if not os.path.exists(f):
            print(f"missing {f} (make build/test/wake/waketest.efi; package ovmf)",
                  file=sys.stderr)
            return 1
    t = time.monotonic()
    errors = run(args.machine)
    took = time.monotonic() - t
    if errors:
        print(f"FAIL qemu-s3-wake-{args.machine} ({took:.1f} s):")
        for e in errors:
            print("  " + e)
        tail = serial(os.path.join(WORK, "serial.log")).splitlines()[-15:]
        print("  serial tail:\n    " + "\n    ".join(tail))
        return 1
    print(f"PASS qemu-s3-wake-{args.machine} ({took:.1f} s): BSP resumed through the FACS waking vector in "
          "long mode (slot 0), AP by SIPI (slot 1), a third arrival halted, S5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
