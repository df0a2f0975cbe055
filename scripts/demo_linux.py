#!/usr/bin/env python3
"""`make run`: Debian's Linux under the hypervisor in Bochs, introspected
from this host through the hypervisor's own NIC.

  1. Bochs (corei7_haswell_4770, 2 CPUs, an e1000 on slirp) boots OVMF, which
     runs acpitab.efi (the ACPI tables Bochs's firmware lacks), hv.efi
     (hv.conf: `connect = 10.0.2.2:PORT`; it reads the FADT for the power
     ports), then lxboot.efi, which enters Debian's kernel (test/linux/: the guest that
     `make test-linux` boots).  Its /init (test/linux/init.sh, hvtest.hold=
     spawn) keeps both CPUs starting short-lived processes and waits for the
     host.  A line per stage shows the time since the start.
  2. The hypervisor has dialled 10.0.2.2:PORT (slirp: this host's
     127.0.0.1:PORT); this script accepts the KVMI session and shows, with
     the client library (client/python/kvmi): the handshake; every vCPU
     paused with its registers; the kernel's version banner and its task
     list read from guest memory (layout from the kernel's BTF, symbols from
     its kallsyms table: kvmi.kimage, kvmi.btf, kvmi.linux); CR3 loads per
     vCPU per second; the kernel's writes to the write-protected page that
     holds `jiffies`, as PF events answered CONTINUE.
  3. It enables KVMI_EVENT_UNHOOK and releases the guest, which powers off
     through ACPI S5 (`poweroff -f`): the hypervisor holds the power-off,
     sends UNHOOK, this introspector closes, and the power-off completes.

Exit status 0 when every step passed; otherwise 1 and the step that failed.
Logs: build/run/ (serial.log, serial.stamps, demo.log, the emulator's files).
"""
from __future__ import annotations

import os
import io
import re
import shutil
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "client", "python"))
from kvmi import client as kc  # noqa: E402
from kvmi import wire as w  # noqa: E402
from kvmi.cli import Session  # noqa: E402
from kvmi.linux import CR4_LA57, GuestError, LinuxGuest, load_kernel  # noqa: E402

B = os.path.join(TOP, "build")
LX = os.path.join(B, "linux")
WORK = os.path.join(B, "run")
SERIAL = os.path.join(WORK, "serial.log")
BTF_FILE = os.path.join(WORK, "vmlinux.btf")  # python3 -m kvmi.kimage writes them
MAP_FILE = os.path.join(WORK, "kallsyms.map")
CPUS = 2
MODEL = "corei7_haswell_4770"  # Linux 6.1 hangs on Bochs's tigerlake (docs/emulators.md)
CMDLINE = ("console=ttyS0,115200 quiet nokaslr tsc=reliable nowatchdog mitigations=off "
           "idle=halt pci=nocrs cryptomgr.notests "
           f"hvtest.cpus={CPUS} hvtest.hv=0 hvtest.workload=0 hvtest.hold=spawn hvtest.off=acpi")
EMU_TIMEOUT = 900  # the launcher's own bound; the stages below are bounded too
CR3_SECONDS = 5
PF_EVENTS, PF_SECONDS = 12, 20
EFER = 0xC0000080

# Boot stages: (what, serial pattern, seconds allowed from the start).
STAGES = [
    ("firmware: OVMF's UEFI shell runs startup.nsh", r"UEFI Interactive Shell", 240),
    ("hv.efi up: every CPU runs the firmware as a guest", r"startup\.nsh: hv\.efi returned 0x0",
     300),
    ("kernel started by lxboot.efi", r"LXBOOT: entering Linux", 420),
    ("Linux /init runs", r"LINUX: init start", 600),
    ("guest ready: both CPUs spawning processes, waiting for the host",
     r"LINUX: holding for the host, spawning on \d+ CPUs", 660),
]
BAD = [r"FATAL on vCPU", r"VM-entry failure", r"VMLAUNCH failed", r"missing:",
       r"refusing to start", r"LXBOOT: error", r"Kernel panic", r"BUG: ", r"Oops",
       r"HVTEST-RESULT: FAIL", r"LINUX: check failed"]


class Failed(Exception):
    def __init__(self, step: str, why: str):
        super().__init__(f"{step}: {why}")
        self.step, self.why = step, why


T0 = time.monotonic()
_log = None


def say(text: str = "", stamp: bool = True) -> None:
    line = f"[{time.monotonic() - T0:6.1f} s] {text}" if stamp and text else text
    print(line, flush=True)
    if _log:
        _log.write(line + "\n")
        _log.flush()


def head(text: str) -> None:
    say("")
    say(f"\033[1m== {text}\033[0m", stamp=False)


def serial() -> str:
    try:
        with open(SERIAL, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r", "")
    except OSError:
        return ""


def printable(line: str) -> str:
    """A serial line without terminal escapes (the firmware's screen codes)."""
    line = re.sub(r"\x1b\[[0-9;=?]*[A-Za-z]", "", line)
    return "".join(c for c in line if c.isprintable()).strip()


def listener() -> kc.Listener:
    """The introspector's listener on a free port outside Linux's ephemeral
    range (slirp maps the guest's 10.0.2.2:PORT to 127.0.0.1:PORT here)."""
    import random
    for _ in range(100):
        try:
            return kc.Listener("127.0.0.1", random.randint(20000, 32000))
        except OSError:
            continue
    raise Failed("setup", "no free TCP port in 20000-32000")


def boot(emu: subprocess.Popen) -> None:
    """Waits for each stage on the serial log, printing it with its time."""
    done, last_note = 0, time.monotonic()
    while done < len(STAGES):
        text = serial()
        for pat in BAD:
            m = re.search(pat, text)
            if m:
                line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())]
                raise Failed(STAGES[done][0], f"the serial log says {line.strip()!r}")
        while done < len(STAGES) and re.search(STAGES[done][1], text):
            say(f"stage {done + 1}/{len(STAGES) + 1}: {STAGES[done][0]}")
            done += 1
            last_note = time.monotonic()
        if done == len(STAGES):
            break
        what, _, limit = STAGES[done]
        if emu.poll() is not None:
            raise Failed(what, f"the emulator ended (status {emu.returncode}) first")
        if time.monotonic() - T0 > limit:
            raise Failed(what, f"not reached within {limit} s")
        if time.monotonic() - last_note >= 30:
            lines = [printable(ln) for ln in text.splitlines()]
            lines = [ln for ln in lines if ln]
            say(f"  ... waiting for: {what} (last serial line: "
                f"{lines[-1][:70] if lines else '(none yet)'})")
            last_note = time.monotonic()
        time.sleep(0.5)


def attach(lst: kc.Listener) -> kc.Domain:
    try:
        return lst.accept(timeout=120)
    except TimeoutError:
        raise Failed("introspector attached", "the hypervisor did not dial within 120 s "
                     "(is `net: ... connected` in the serial log?)") from None


def pause_all(dom: kc.Domain, n: int) -> dict[int, w.Event]:
    dom.pause_all(n, timeout=60)
    held = {}
    while len(held) < n:
        ev = dom.wait_event(60, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU)
        if ev is None:
            raise Failed("pause", f"PAUSE_VCPU events from vCPUs {sorted(held)} only")
        held[ev.vcpu] = ev
    return held


def drain(dom: kc.Domain, secs: float = 1.0) -> int:
    """Answers (CONTINUE) events still in flight after they were disabled."""
    n, end = 0, time.monotonic() + secs
    while True:
        ev = dom.wait_event(max(0.0, end - time.monotonic()))
        if ev is None:
            return n
        dom.reply(ev, w.ACTION_CONTINUE)
        n += 1


def introspect(dom: kc.Domain, btf, smap, blob: bytes) -> None:
    head("1. Handshake, every vCPU paused, their registers")
    say(f"KVMI session from {dom.peer[0]}:{dom.peer[1]} (the hypervisor's e1000 through "
        f"slirp): name {dom.name!r}, uuid {dom.uuid}, KVMI version {dom.version}")
    n = dom.get_guest_info()
    if n != CPUS:
        raise Failed("handshake", f"GET_GUEST_INFO says {n} vCPUs, the machine has {CPUS}")
    held = pause_all(dom, n)
    say(f"{n} vCPUs paused (a PAUSE_VCPU event from each)")
    cr3s = {}
    for v in range(n):
        r = dom.get_registers(v, msrs=[EFER])
        rip, cs, cr3 = r.regs.rip, r.sregs.cs.selector, r.sregs.cr3
        cr3s[v] = (cr3, bool(r.sregs.cr4 & CR4_LA57))
        where = smap.name_of(rip) if rip >= 0xFFFF800000000000 else "user space"
        say(f"vCPU {v}: RIP {rip:#018x} ({where}), CS {cs:#x} (ring {cs & 3}), "
            f"CR3 {cr3:#x}, CR4 {r.sregs.cr4:#x}, EFER {r.msrs.get(EFER, r.sregs.efer):#x}")
        if not r.sregs.cr0 & (1 << 31) or not cr3:
            raise Failed("registers", f"vCPU {v} does not run with paging (CR0 {r.sregs.cr0:#x})")

    head("2. The kernel's version, read from guest memory")
    cr3, la57 = cr3s[0]
    try:
        g = LinuxGuest(dom.read_physical, cr3, btf, smap, la57=la57)
        banner = g.version()
        say(f"linux_banner at {smap['linux_banner']:#x} (kallsyms), page walk from vCPU 0's CR3 "
            f"to GPA {g.mem.translate(smap['linux_banner']):#x}:")
        say(f"  {banner}", stamp=False)
        if not banner.startswith("Linux version 6.1"):
            raise Failed("version", f"the banner is {banner[:60]!r}")
        same = g.btf_in_memory_matches(blob)
        say("the guest's own .BTF (__start_BTF) " + ("begins with the same 4 KiB as the BTF "
            "used here" if same else "DIFFERS from the BTF used here"))
        if not same:
            raise Failed("version", "the BTF does not describe the running kernel")

        head("3. The guest's processes, listed from outside (kvmictl ps)")
        say(f"layout from BTF: task_struct.tasks +{g.off['tasks']:#x}, .pid +{g.off['pid']:#x}, "
            f".tgid +{g.off['tgid']:#x}, .comm +{g.off['comm']:#x}, .real_parent "
            f"+{g.off['real_parent']:#x}, .mm +{g.off['mm']:#x}, .flags +{g.off['flags']:#x}; "
            "init_task at "
            f"{smap['init_task']:#x}")
        # kvmictl's own `ps`, in this session (the vCPUs stay paused).
        argv = ["ps", "--btf", BTF_FILE, "--map", MAP_FILE]
        say("$ kvmictl -l 127.0.0.1:PORT " + " ".join(argv).replace(TOP + "/", ""))
        out = io.StringIO()
        sess = Session(dom, out=out)
        sess.held, sess.vcpus = dict(held), n
        t = time.monotonic()
        rc = sess.run_argv(argv)
        took = time.monotonic() - t
        print(out.getvalue(), end="", flush=True)
        if _log:
            _log.write(out.getvalue())
        rows = [ln.split(None, 3) for ln in out.getvalue().splitlines()[1:]]
        if rc or not rows or any(len(r) != 4 for r in rows):
            raise Failed("ps", f"kvmictl ps: status {rc}, output {out.getvalue()[-200:]!r}")
        user = [(int(r[0]), r[3]) for r in rows if not r[3].startswith("[")]
        say(f"{len(rows)} tasks ({len(user)} user processes, {len(rows) - len(user)} kernel "
            f"threads) in {took:.1f} s")
        names = {c for _, c in user}
        for want in ("init", "sh", "sleep"):
            if want not in names:
                raise Failed("ps", f"no {want!r} among the user processes {sorted(names)}")
        if (1, "init") not in user:
            raise Failed("ps", "PID 1 is not init")
        jiffies = smap["jiffies"]
        jiffies_gpa = g.mem.translate(jiffies)
    except GuestError as e:
        raise Failed("reading the kernel", str(e)) from None
    for v, ev in held.items():
        dom.reply(ev, w.ACTION_CONTINUE)
    say(f"{n} vCPUs resumed")

    head(f"4a. Live: CR3 loads (context switches) per vCPU, {CR3_SECONDS} s")
    for v in range(n):
        dom.control_events(v, w.KVMI_EVENT_CR, True)
        dom.control_cr(v, 3, True)
    counts = [[0] * n for _ in range(CR3_SECONDS)]
    start = time.monotonic()
    while True:
        left = start + CR3_SECONDS - time.monotonic()
        if left <= 0:
            break
        ev = dom.wait_event(left)
        if ev is None:
            break
        if ev.event == w.KVMI_EVENT_CR and ev.payload["cr"] == 3:
            sec = min(int(time.monotonic() - start), CR3_SECONDS - 1)
            counts[sec][ev.vcpu] += 1
        dom.reply(ev, w.ACTION_CONTINUE)
    for v in range(n):
        dom.control_cr(v, 3, False)
        dom.control_events(v, w.KVMI_EVENT_CR, False)
    late = drain(dom)
    for s, row in enumerate(counts):
        say(f"  second {s + 1}: " + ", ".join(f"vCPU {v} {c:4d}" for v, c in enumerate(row)),
            stamp=False)
    total = [sum(r[v] for r in counts) for v in range(n)]
    say("CR3 loads per second: " + ", ".join(f"vCPU {v} {total[v] / CR3_SECONDS:.1f}"
                                              for v in range(n)) +
        f" (each one an event answered over the network; {late} more in flight at the end)")
    if sum(total) == 0:
        raise Failed("CR3 events", "no CR3 load in 5 s while both CPUs spawn processes")

    head("4b. Live: writes to the page that holds jiffies, write-protected (PF events, "
         "CONTINUE)")
    page = jiffies_gpa & ~0xFFF
    say(f"jiffies at {jiffies:#x} (kallsyms) = GPA {jiffies_gpa:#x}: page {page:#x} set r-x")
    for v in range(n):
        dom.control_events(v, w.KVMI_EVENT_PF, True)
    dom.set_page_access([(page, 5)])
    seen, hits, start = 0, 0, time.monotonic()
    where: dict[str, int] = {}
    try:
        while seen < PF_EVENTS and time.monotonic() - start < PF_SECONDS:
            ev = dom.wait_event(max(0.1, start + PF_SECONDS - time.monotonic()))
            if ev is None:
                break
            if ev.event == w.KVMI_EVENT_PF:
                seen += 1
                p = ev.payload
                hits += p["gva"] == jiffies
                sym = smap.name_of(p["gva"])
                where[sym] = where.get(sym, 0) + 1
                kind = {1: "read", 2: "write", 4: "fetch"}.get(p["access"], p["access"])
                say(f"  PF vCPU {ev.vcpu}: {kind} at GVA {p['gva']:#x} ({sym}) GPA "
                    f"{p['gpa']:#x}, RIP {smap.name_of(ev.arch.regs.rip)} -> CONTINUE",
                    stamp=False)
            dom.reply(ev, w.ACTION_CONTINUE)
    finally:
        dom.set_page_access([(page, 7)])
        for v in range(n):
            dom.control_events(v, w.KVMI_EVENT_PF, False)
        late = drain(dom)
    say(f"{seen} PF events in {time.monotonic() - start:.1f} s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(where.items(), key=lambda x: -x[1]))
        + f" (the page holds more than jiffies); page rights restored (rwx), {late} more "
        "events answered after")
    if hits == 0:
        raise Failed("PF events", "no write to jiffies arrived as a PF event")

    head("5. Power-off and KVMI_EVENT_UNHOOK")
    dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    say("KVMI_EVENT_UNHOOK enabled; the guest is released and powers off through ACPI S5")


def main() -> int:
    global _log
    if os.path.isdir(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    _log = open(os.path.join(WORK, "demo.log"), "w")
    for f in ("hv.efi",):
        if not os.path.exists(os.path.join(B, f)):
            print(f"make run: build/{f} missing (run make)", file=sys.stderr)
            return 1
    need = [os.path.join(LX, f) for f in ("lxboot.efi", "vmlinux.lxk", "initrd.img",
                                           "acpitab.efi", "vmlinuz.efi")]
    missing = [p for p in need if not os.path.exists(p)]
    if missing:
        print(f"make run: missing {', '.join(missing)} (make linux-guest)", file=sys.stderr)
        return 1
    emu = lst = dom = None
    step = "setup"
    try:
        head("Kernel data, from the kernel image itself (no profile)")
        kernel = os.path.join(LX, "vmlinuz.efi")
        with open(os.path.join(LX, "kernel.txt")) as f:
            say(f"{kernel.replace(TOP + '/', '')}: the kernel of {f.read().strip()}")
        cmd = [sys.executable, "-m", "kvmi.kimage", kernel, "--btf", BTF_FILE, "--map", MAP_FILE]
        say("$ python3 -m kvmi.kimage " + " ".join(cmd[3:]).replace(TOP + "/", ""))
        step = "kernel data"
        r = subprocess.run(cmd, capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONPATH=os.path.join(TOP, "client", "python")))
        for line in r.stdout.splitlines():
            say("  " + line.replace(TOP + "/", ""), stamp=False)
        btf, smap, blob = load_kernel(btf=BTF_FILE, symbols=MAP_FILE)
        say(f"BTF: {len(btf)} types; kallsyms: {len(smap)} symbol names")

        lst = listener()
        port = lst.port
        head(f"Boot: Bochs ({MODEL}, {CPUS} CPUs, e1000) -> OVMF -> acpitab.efi -> hv.efi (dials "
             f"10.0.2.2:{port}) -> lxboot.efi -> Linux")
        esp = os.path.join(WORK, "esp")
        step = "ESP"
        subprocess.run([
            "bash", os.path.join(TOP, "scripts/mkesp.sh"), "-o", esp, "--hv",
            os.path.join(B, "hv.efi"), "--no-agent", "--conf-text",
            f"connect = 10.0.2.2:{port}\\nreconnect_ms = 500\\nname = linux-demo\\n",
            "--file", need[3], "--pre", "acpitab.efi", "--file", need[0], "--file", need[1],
            "--file", need[2], "--run", f"lxboot.efi vmlinux.lxk initrd.img {CMDLINE}"],
            check=True, capture_output=True, text=True)
        serial_input = os.path.join(WORK, "serial.input")
        open(serial_input, "w").close()
        emu = subprocess.Popen(
            ["bash", os.path.join(TOP, "scripts/emu.sh"), "-q", "-e", "bochs", "-m", MODEL,
             "-c", str(CPUS), "--nic", "-t", str(EMU_TIMEOUT), "-s", SERIAL,
             "--stamps", os.path.join(WORK, "serial.stamps"), "--serial-input", serial_input,
             "-w", os.path.join(WORK, "emu"), esp],
            stdout=open(os.path.join(WORK, "emu.out"), "w"), stderr=subprocess.STDOUT)
        step = "boot"
        boot(emu)
        step = "introspector attached"
        dom = attach(lst)
        say(f"stage {len(STAGES) + 1}/{len(STAGES) + 1}: introspector attached (KVMI handshake "
            "done)")
        lst.close()
        lst = None
        introspect(dom, btf, smap, blob)
        with open(serial_input, "a") as f:
            f.write("hvtest-go\n")
        step = "KVMI_EVENT_UNHOOK"
        ev = dom.wait_event(timeout=300, match=lambda e: e.event == w.KVMI_EVENT_UNHOOK)
        if ev is None:
            raise Failed(step, "no KVMI_EVENT_UNHOOK within 300 s of releasing the guest")
        m = re.search(r"hv: \[cpu\d+\] vCPU (\d+): the guest asks for (S5 power-off)[^\n]*",
                      serial())
        say(f"KVMI_EVENT_UNHOOK from vCPU {ev.vcpu}: "
            + (f"the hypervisor holds the guest's {m.group(2)} on vCPU {m.group(1)}" if m else
               "the guest is going away")
            + "; closing the session")
        dom.close()
        dom = None
        head("End: session closed, the power-off goes on")
        step = "guest power-off"
        end = time.monotonic() + 180
        while emu.poll() is None and time.monotonic() < end:
            time.sleep(0.5)
        text = serial()
        if emu.poll() is None:
            raise Failed(step, "the guest did not power off within 180 s of its release")
        if not re.search(r"HVTEST-RESULT: PASS", text):
            raise Failed(step, "no HVTEST-RESULT: PASS from the guest")
        for pat in (r"kvmi: unhook done: introspector closed after \d+ ms \(TSC\)",
                    r"vCPU \d+: S5 power-off proceeds"):
            m = re.search(r"hv: \[cpu\d+\] " + pat, text)
            if not m:
                raise Failed(step, f"the hypervisor's log lacks /{pat}/")
            say(m.group(0))
        say("the guest passed and powered off through ACPI S5 after the introspector closed")
        say(f"make run: done in {time.monotonic() - T0:.0f} s; logs in {WORK}/ (serial.log, "
            "serial.stamps, demo.log, emu/)")
        return 0
    except Failed as e:
        fail(e.step, e.why)
    except subprocess.CalledProcessError as e:
        fail(step, f"{' '.join(e.cmd[:4])} ... failed: {(e.stderr or '').strip()}")
    except (kc.KvmiError, kc.ProtocolError, kc.ConnectionClosed, OSError, TimeoutError,
            KeyError, ValueError) as e:
        fail(step, f"{e.__class__.__name__}: {e}")
    finally:
        if dom is not None:
            dom.close()
        if lst is not None:
            lst.close()
        if emu is not None and emu.poll() is None:
            emu.terminate()  # the launcher stops Bochs
            try:
                emu.wait(30)
            except subprocess.TimeoutExpired:
                emu.kill()
    return 1


def fail(step: str, why: str) -> None:
    lines = [printable(ln) for ln in serial().splitlines()]
    tail = "\n".join("  | " + ln for ln in [ln for ln in lines if ln][-15:]) or "  (empty)"
    say(f"make run: FAILED at step '{step}': {why}")
    print(f"last lines of {SERIAL}:\n{tail}\nlogs in {WORK}/", flush=True)


if __name__ == "__main__":
    sys.exit(main())
