"""kvmictl: command-line introspector for KVMI v6 hypervisors (and kvmi-sim).

Offers main(argv).  One invocation = one introspection session: kvmictl
listens (or dials), does the handshake, runs one command (or a script of
commands with `run`/`shell`) and closes the connection, which ends the
session on the hypervisor side (paused vCPUs resume, page rights reset).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from . import cli_linux
from . import wire as w
from .client import ConnectionClosed, KvmiError, Listener, ProtocolError, connect

PROG = "kvmictl"

DESCRIPTION = """\
Introspect a virtual machine over KVMI v6 (the protocol of KVM's VM
introspection, as served by this project's hypervisor and by kvmi-sim).

The introspector is the server: the hypervisor dials in.  Start kvmictl
with --listen, then point the hypervisor (or `kvmi-sim --connect`) at it;
kvmictl waits for the connection, runs the command and disconnects.  For a
hypervisor that listens itself (`kvmi-sim --listen PORT`) use --connect.

Closing the connection ends the session: paused vCPUs resume and every
page restriction is lifted.  To do several things in one session use
`run 'cmd; cmd; ...'` or `shell` (commands read from standard input).
Numbers may be decimal or 0x-prefixed hex."""

EPILOG = """\
examples (with `build/kvmi-sim --connect 127.0.0.1:4444 --vcpus 2 --mem 64`):
  kvmictl -l 4444 info
  kvmictl -l 4444 regs 0 --msr 0xc0000080
  kvmictl -l 4444 read 0x200000 64
  kvmictl -l 4444 dump 0x0 0x100000 -o low1m.bin
  kvmictl -l 4444 run 'pause; regs 1; write 0x300000 0xdeadbeef --u64; resume'
  kvmictl -l 4444 watch cr,msr,breakpoint --count 20
  kvmictl -l 4444 watch pf --protect 0x300000=r-x --count 5
  kvmictl -l 4444 unhook-wait --timeout 60     (then: kill -USR1 <kvmi-sim pid>)
a Linux guest (its kernel image gives the BTF layout and kallsyms symbols):
  kvmictl -l 4444 run 'linux-version --kernel vmlinuz; ps --kernel vmlinuz'

exit status: 0 ok, 1 a command failed (KVM error code printed),
2 usage error, 3 no connection / connection lost."""


def num(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def value_in(cmd_name: str, text: str, bits: int = 64) -> int:
    """A number given inside a command (not checked by argparse)."""
    try:
        v = num(text)
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"{PROG}: {cmd_name}: {e}") from None
    if not 0 <= v < 1 << bits:
        raise UsageError(f"{PROG}: {cmd_name}: {text!r} is not a {bits}-bit unsigned value")
    return v


def command_id(text: str) -> int:
    """A command by number or name (GET_REGISTERS, kvmi_get_registers)."""
    name = text.strip().upper()
    if name.startswith("KVMI_"):
        name = name[5:]
    for msg_id, known in w.COMMAND_NAMES.items():
        if known == name:
            return msg_id
    try:
        return num(text)
    except argparse.ArgumentTypeError:
        raise UsageError(f"{PROG}: check: unknown command {text!r}; commands: "
                         f"{', '.join(w.COMMAND_NAMES.values())} or a number") from None


def rights(text: str) -> int:
    """'rwx', 'r-x', '--x', or a number 0..7."""
    if text.isdigit():
        v = int(text)
    else:
        if len(text) != 3 or any(c not in allowed + "-" for c, allowed in zip(text, "rwx")):
            raise argparse.ArgumentTypeError(f"rights are like rwx, r-x, r--, --- or 0..7: "
                                             f"{text!r}")
        v = sum(bit for c, bit in zip(text, (1, 2, 4)) if c != "-")
    if not 0 <= v <= 7:
        raise argparse.ArgumentTypeError(f"rights out of range: {text!r}")
    return v


def rights_str(v: int) -> str:
    return "".join(c if v & bit else "-" for c, bit in zip("rwx", (1, 2, 4)))


def event_list(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("-", "_")
        if part == "all":
            out.extend(e for e in w.EVENT_NAMES if e != w.KVMI_EVENT_UNHOOK)
        elif part in w.EVENT_IDS:
            out.append(w.EVENT_IDS[part])
        elif part.isdigit() and int(part) in w.EVENT_NAMES:
            out.append(int(part))
        else:
            raise argparse.ArgumentTypeError(
                f"unknown event {part!r}; events: {', '.join(w.EVENT_IDS)}, all")
    return out


def hexdump(gpa: int, data: bytes) -> str:
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{gpa + off:016x}  {hexpart:<47}  {text}")
    return "\n".join(lines)


# ----------------------------------------------------------- the parser
class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # raise instead of exiting so `shell` survives typos
        raise UsageError(f"{self.prog}: {message}")


def build_command_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, add_help=False)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def cmd(name, help_, **kw):
        return sub.add_parser(name, help=help_, description=help_, **kw)

    cmd("attach", "print who connected (UUID, name, start time, peer) and the KVMI version")
    cmd("info", "attach + vCPU count, max GFN, TSC of each vCPU, commands and events "
                "allowed by the host")
    c = cmd("pause", "pause vCPUs (all by default, in one libkvmi-style batch) and hold them "
                     "until `resume` or the end of the session")
    c.add_argument("vcpus", nargs="*", type=num, metavar="VCPU")
    c = cmd("resume", "resume vCPUs held by `pause` (all by default)")
    c.add_argument("vcpus", nargs="*", type=num, metavar="VCPU")
    c = cmd("regs", "show registers, special registers and chosen MSRs of a vCPU")
    c.add_argument("vcpu", type=num)
    c.add_argument("--msr", type=num, action="append", default=[], metavar="INDEX",
                   help="also read this MSR (repeatable)")
    c = cmd("setregs", "change general registers of a vCPU held by `pause` "
                       "(applied when it resumes), e.g. setregs 0 rip=0x2000 rax=1")
    c.add_argument("vcpu", type=num)
    c.add_argument("assign", nargs="+", metavar="REG=VALUE")
    c = cmd("read", "hex-dump guest physical memory")
    c.add_argument("gpa", type=num)
    c.add_argument("size", type=num)
    c.add_argument("--raw", action="store_true", help="write the bytes to stdout as they are")
    c = cmd("write", "write guest physical memory")
    c.add_argument("gpa", type=num)
    c.add_argument("value", nargs="?", help="hex bytes (e.g. 90c3)")
    c.add_argument("--u64", metavar="V", help="write the number V as 8 little-endian bytes")
    c.add_argument("--file", help="write the contents of this file")
    c = cmd("dump", "save guest physical memory [GPA, GPA+SIZE) to a file")
    c.add_argument("gpa", type=num)
    c.add_argument("size", type=num)
    c.add_argument("-o", "--output", required=True)
    c = cmd("access", "show (or with --set change) the page access rights the introspector "
                      "keeps on guest pages")
    c.add_argument("gpas", nargs="+", type=num, metavar="GPA")
    c.add_argument("--set", type=rights, metavar="RIGHTS",
                   help="rwx, r-x, r--, --x ... (rwx lifts the restriction)")
    c = cmd("watch", "enable events, print one line per event as it comes and let the guest "
                     "go on (CONTINUE; CR/MSR writes allowed)")
    c.add_argument("events", type=event_list,
                   help="comma-separated: " + ", ".join(w.EVENT_IDS) + ", all")
    c.add_argument("--vcpu", type=num, action="append", metavar="N",
                   help="only this vCPU (repeatable; default: all)")
    c.add_argument("--cr", type=num, action="append", metavar="N",
                   help="CR to monitor for `cr` (repeatable; default 0, 3, 4)")
    c.add_argument("--msr", type=num, action="append", metavar="INDEX",
                   help="MSR to monitor for `msr` (repeatable; default STAR, LSTAR, "
                        "SYSENTER_CS/ESP/EIP)")
    c.add_argument("--protect", action="append", default=[], metavar="GPA=RIGHTS",
                   help="restrict a page first so that `pf` fires (e.g. 0x300000=r-x)")
    c.add_argument("--pf-action", choices=("continue", "retry"), default="continue",
                   help="answer to PF events (retry with --protect keeps the guest retrying)")
    c.add_argument("--bp-action", choices=("continue", "retry"), default="retry",
                   help="answer to BREAKPOINT events: retry = swallow the INT3 (default), "
                        "continue = re-inject #BP into the guest")
    c.add_argument("--count", type=num, help="stop after this many events")
    c.add_argument("--seconds", type=float, help="stop after this many seconds")
    c = cmd("unhook-wait", "enable the UNHOOK event and wait for the hypervisor to ask for an "
                           "unhook (pause/suspend/migration); then close the connection, "
                           "which acknowledges it")
    c.add_argument("--timeout", type=float, help="give up after this many seconds (exit 1)")
    c = cmd("enable", "enable events (per vCPU, or per VM for unhook/create_vcpu)")
    c.add_argument("events", type=event_list)
    c.add_argument("--vcpu", type=num, action="append", metavar="N")
    c = cmd("disable", "disable events")
    c.add_argument("events", type=event_list)
    c.add_argument("--vcpu", type=num, action="append", metavar="N")
    c = cmd("cpuid", "guest CPUID leaf as seen by a vCPU")
    c.add_argument("vcpu", type=num)
    c.add_argument("leaf", type=num)
    c.add_argument("subleaf", type=num, nargs="?", default=0)
    c = cmd("xsave", "hex-dump the XSAVE area of a vCPU")
    c.add_argument("vcpu", type=num)
    c.add_argument("--raw", action="store_true")
    c = cmd("mtrr", "MTRR memory type of a guest physical address")
    c.add_argument("gpa", type=num)
    c = cmd("inject", "inject an exception into a vCPU at its next entry")
    c.add_argument("vcpu", type=num)
    c.add_argument("vector", type=num)
    c.add_argument("--error-code", type=num)
    c.add_argument("--address", type=num, default=0, help="CR2 for #PF (vector 14)")
    c = cmd("check", "is a command or event (by name or number) allowed by the host?")
    c.add_argument("what", choices=("command", "event"))
    c.add_argument("id")
    cli_linux.add_commands(cmd)
    cmd("maxgfn", "highest guest frame number")
    cmd("version", "KVMI version of the host")
    c = cmd("sleep", "wait (in `run`/`shell` scripts)")
    c.add_argument("seconds", type=float)
    c = cmd("run", "run several commands in one session: run 'pause; regs 0; resume'")
    c.add_argument("script")
    cmd("shell", "read commands from standard input, one per line, in one session")
    return p


def build_main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("-l", "--listen", metavar="[HOST:]PORT",
                   help="wait for the hypervisor to connect here (default host 127.0.0.1; "
                        "use 0.0.0.0:PORT for remote hypervisors)")
    g.add_argument("-c", "--connect", metavar="HOST:PORT",
                   help="dial a hypervisor that listens (kvmi-sim --listen)")
    p.add_argument("--key", help="shared key the hypervisor requires (see docs/protocol.md)")
    p.add_argument("--accept-timeout", type=float, default=120.0, metavar="S",
                   help="how long to wait for the hypervisor (default 120 s)")
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="one of: " + ", ".join(_COMMANDS) + " (`kvmictl help COMMAND`)")
    return p


_COMMANDS = ("attach", "info", "pause", "resume", "regs", "setregs", "read", "write", "dump",
             "access", "watch", "unhook-wait", "enable", "disable", "cpuid", "xsave", "mtrr",
             "inject", "check", "linux-version", "ps", "maxgfn", "version", "sleep", "run",
             "shell")


# ------------------------------------------------------------ the session
class Session:
    def __init__(self, dom, out=sys.stdout):
        self.dom = dom
        self.out = out
        self.held: dict[int, w.Event] = {}  # vCPU -> its unanswered PAUSE event
        self.vcpus = None
        self.closed_by_command = False

    def print(self, *a):
        print(*a, file=self.out, flush=True)

    def vcpu_count(self) -> int:
        if self.vcpus is None:
            self.vcpus = self.dom.get_guest_info()
        return self.vcpus

    def run(self, args):
        return getattr(self, "do_" + args.cmd.replace("-", "_"))(args)

    # --------------------------------------------------------- commands
    def do_attach(self, a):
        d = self.dom
        self.print(f"uuid {d.uuid}")
        self.print(f"name {d.name or '(none)'}")
        self.print(f"start_time {d.start_time}")
        if d.peer:
            self.print(f"peer {d.peer[0]}:{d.peer[1]}")
        self.print(f"kvmi_version {getattr(d, 'version', None) or d.get_version()}")

    def do_info(self, a):
        self.do_attach(a)
        n = self.vcpu_count()
        self.print(f"vcpus {n}")
        gfn = self.dom.get_max_gfn()
        self.print(f"max_gfn {gfn:#x} ({(gfn + 1) * 4096 // (1 << 20)} MiB)")
        for i in range(n):
            try:
                self.print(f"vcpu{i} tsc_hz {self.dom.get_vcpu_info(i)}")
            except KvmiError as e:
                self.print(f"vcpu{i} {e}")
        cmds = [w.COMMAND_NAMES[c] for c in sorted(w.COMMAND_NAMES)
                if self.dom.check_command(c)]
        evs = [w.EVENT_NAMES[e] for e in sorted(w.EVENT_NAMES) if self.dom.check_event(e)]
        self.print("commands_allowed " + " ".join(cmds))
        self.print("events_allowed " + " ".join(evs))

    def _targets(self, vcpus):
        return list(vcpus) if vcpus else list(range(self.vcpu_count()))

    def do_pause(self, a):
        targets = self._targets(a.vcpus)
        todo = [v for v in targets if v not in self.held]
        if not todo:
            return
        if not a.vcpus:
            self.dom.pause_all(self.vcpu_count())
        else:
            with self.dom.batch() as b:
                for v in todo:
                    b.pause_vcpu(v, wait=True)
        want = set(todo)
        while want:
            ev = self.dom.wait_event(
                60.0, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU and e.vcpu in want)
            if ev is None:
                raise TimeoutError(f"no PAUSE event from vCPU(s) {sorted(want)}")
            want.discard(ev.vcpu)
            self.held[ev.vcpu] = ev
            self.print(f"vcpu{ev.vcpu} paused (event seq {ev.seq}, rip {ev.arch.regs.rip:#x})")

    def do_resume(self, a):
        targets = [v for v in self._targets(a.vcpus) if v in self.held]
        if not targets:
            self.print("nothing to resume (no vCPU held by `pause`)")
            return
        for v in targets:
            self.dom.reply(self.held.pop(v), w.ACTION_CONTINUE)
            self.print(f"vcpu{v} resumed")

    def do_regs(self, a):
        r = self.dom.get_registers(a.vcpu, a.msr)
        mode = {2: "16-bit", 4: "32-bit", 8: "64-bit"}.get(r.mode, f"mode {r.mode}")
        self.print(f"vcpu{a.vcpu} {mode}")
        names = w.REG_NAMES
        for i in range(0, len(names), 3):
            self.print("  ".join(f"{n:>6} {getattr(r.regs, n):016x}" for n in names[i:i + 3]))
        s = r.sregs
        self.print("  ".join(f"{n:>6} {getattr(s, n):016x}"
                             for n in ("cr0", "cr2", "cr3")))
        self.print("  ".join(f"{n:>6} {getattr(s, n):016x}"
                             for n in ("cr4", "cr8", "efer")))
        self.print(f"{'apic':>6} {s.apic_base:016x}")
        for n in w.SEG_NAMES:
            g = getattr(s, n)
            self.print(f"{n:>6} sel {g.selector:04x} base {g.base:016x} limit {g.limit:08x} "
                       f"type {g.type:x} p {g.present} dpl {g.dpl} db {g.db} s {g.s} "
                       f"l {g.l} g {g.g}")
        self.print(f"{'gdt':>6} base {s.gdt.base:016x} limit {s.gdt.limit:04x}")
        self.print(f"{'idt':>6} base {s.idt.base:016x} limit {s.idt.limit:04x}")
        for idx, val in r.msrs.items():
            self.print(f"   msr {idx:#010x} {val:016x}")

    def do_setregs(self, a):
        if a.vcpu not in self.held:
            raise UsageError("setregs: the vCPU must be held by `pause` first (KVM applies "
                             "SET_REGISTERS only while the vCPU waits for an event reply)")
        regs = self.dom.get_registers(a.vcpu).regs
        for item in a.assign:
            name, _, value = item.partition("=")
            if name not in w.REG_NAMES or not value:
                raise UsageError(f"setregs: bad assignment {item!r} "
                                 f"(registers: {' '.join(w.REG_NAMES)})")
            setattr(regs, name, value_in("setregs", value))
        self.dom.set_registers(a.vcpu, regs)
        self.print(f"vcpu{a.vcpu} registers set (applied at resume)")

    def do_read(self, a):
        data = self.dom.read_memory(a.gpa, a.size)
        if a.raw:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            self.print(hexdump(a.gpa, data))

    def do_write(self, a):
        if (a.file is not None) + (a.u64 is not None) + (a.value is not None) != 1:
            raise UsageError(f"{PROG}: write: give exactly one of HEX, --u64 V, --file F")
        if a.file:
            with open(a.file, "rb") as f:
                data = f.read()
        elif a.u64 is not None:
            data = value_in("write", a.u64).to_bytes(8, "little")
        else:
            try:
                data = bytes.fromhex(a.value)
            except ValueError:
                raise UsageError(f"write: not hex bytes: {a.value!r}") from None
        self.dom.write_memory(a.gpa, data)
        self.print(f"wrote {len(data)} bytes at {a.gpa:#x}")

    def do_dump(self, a):
        with open(a.output, "wb") as f:
            gpa, left = a.gpa, a.size
            while left > 0:
                n = min(left, 4096 - (gpa & 0xFFF))
                f.write(self.dom.read_physical(gpa, n))
                gpa += n
                left -= n
        self.print(f"dumped {a.size} bytes from {a.gpa:#x} to {a.output}")

    def do_access(self, a):
        if a.set is not None:
            self.dom.set_page_access([(g, a.set) for g in a.gpas])
        for g, acc in zip(a.gpas, self.dom.get_page_access(a.gpas)):
            self.print(f"{g & ~0xFFF:#x} {rights_str(acc)}")

    def _control(self, events, vcpus, enable, crs=(), msrs=()):
        for ev in events:
            if ev in w.VM_EVENTS:
                self.dom.control_vm_events(ev, enable)
                continue
            for v in vcpus:
                self.dom.control_events(v, ev, enable)
                if ev == w.KVMI_EVENT_CR:
                    for cr in crs:
                        self.dom.control_cr(v, cr, enable)
                if ev == w.KVMI_EVENT_MSR:
                    for msr in msrs:
                        self.dom.control_msr(v, msr, enable)

    def do_enable(self, a):
        self._control(a.events, self._targets(a.vcpu), True, (0, 3, 4), DEFAULT_MSRS)
        self.print("enabled " + ",".join(w.EVENT_NAMES[e] for e in a.events))

    def do_disable(self, a):
        self._control(a.events, self._targets(a.vcpu), False, (0, 3, 4), DEFAULT_MSRS)
        self.print("disabled " + ",".join(w.EVENT_NAMES[e] for e in a.events))

    def do_watch(self, a):
        vcpus = self._targets(a.vcpu)
        crs = a.cr or [0, 3, 4]
        msrs = a.msr or list(DEFAULT_MSRS)
        protected = []
        for item in a.protect:
            g, _, r = item.partition("=")
            try:
                protected.append((num(g), rights(r)))
            except argparse.ArgumentTypeError as e:
                raise UsageError(f"watch: --protect {item!r}: {e}") from None
        self._control(a.events, vcpus, True, crs, msrs)
        if protected:
            self.dom.set_page_access(protected)
        actions = {
            w.KVMI_EVENT_PF: w.ACTION_RETRY if a.pf_action == "retry" else w.ACTION_CONTINUE,
            w.KVMI_EVENT_BREAKPOINT:
                w.ACTION_RETRY if a.bp_action == "retry" else w.ACTION_CONTINUE,
        }
        deadline = None if a.seconds is None else time.monotonic() + a.seconds
        seen = 0
        try:
            while a.count is None or seen < a.count:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                ev = self.dom.wait_event(left, match=lambda e: e.vcpu not in self.held
                                         or e.event != w.KVMI_EVENT_PAUSE_VCPU)
                if ev is None:
                    break
                seen += 1
                self.print(format_event(ev))
                if ev.event == w.KVMI_EVENT_UNHOOK:
                    self.print("unhook requested: closing the session")
                    self.closed_by_command = True
                    return
                self.dom.reply(ev, actions.get(ev.event, w.ACTION_CONTINUE))
        finally:
            if not self.dom.closed and not self.closed_by_command:
                if protected:
                    self.dom.set_page_access([(g, 7) for g, _ in protected])
                self._control(a.events, vcpus, False, crs, msrs)
        self.print(f"{seen} events")

    def do_unhook_wait(self, a):
        self.dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
        self.print("waiting for an unhook request")
        ev = self.dom.wait_event(a.timeout, match=lambda e: e.event == w.KVMI_EVENT_UNHOOK)
        if ev is None:
            self.print("no unhook request")
            return 1
        self.print(format_event(ev))
        # Nothing of ours is left in the guest in this CLI: acknowledge by closing.
        for v in list(self.held):
            self.dom.reply(self.held.pop(v))
        self.closed_by_command = True
        self.print("unhooked: connection closed")
        return 0

    def do_cpuid(self, a):
        eax, ebx, ecx, edx = self.dom.get_cpuid(a.vcpu, a.leaf, a.subleaf)
        self.print(f"eax {eax:08x} ebx {ebx:08x} ecx {ecx:08x} edx {edx:08x}")

    def do_xsave(self, a):
        data = self.dom.get_xsave(a.vcpu)
        if a.raw:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            self.print(hexdump(0, data))

    def do_mtrr(self, a):
        t = self.dom.get_mtrr_type(a.gpa)
        names = {0: "UC", 1: "WC", 4: "WT", 5: "WP", 6: "WB", 7: "UC-"}
        self.print(f"{a.gpa:#x} type {t} ({names.get(t, '?')})")

    def do_inject(self, a):
        self.dom.inject_exception(a.vcpu, a.vector, a.error_code, a.address)
        self.print(f"vcpu{a.vcpu} exception {a.vector} queued")

    def do_check(self, a):
        if a.what == "command":
            ok = self.dom.check_command(command_id(a.id))
        else:
            try:
                ok = self.dom.check_event(event_list(a.id)[0])
            except argparse.ArgumentTypeError as e:
                raise UsageError(f"{PROG}: check: {e}") from None
        self.print("allowed" if ok else "not allowed")
        return 0 if ok else 1

    def do_linux_version(self, a):
        return self._linux(a)

    def do_ps(self, a):
        return self._linux(a)

    def _linux(self, a):
        try:
            return cli_linux.run(self, a)
        except cli_linux.KernelDataError as e:
            raise UsageError(f"{PROG}: {e}") from None

    def do_maxgfn(self, a):
        self.print(f"{self.dom.get_max_gfn():#x}")

    def do_version(self, a):
        self.print(self.dom.get_version())

    def do_sleep(self, a):
        time.sleep(a.seconds)

    def do_run(self, a):
        for part in a.script.split(";"):
            argv = shlex.split(part)
            if argv:
                rc = self.run_argv(argv)
                if rc:
                    return rc
                if self.closed_by_command:
                    break
        return 0

    def do_shell(self, a):
        interactive = sys.stdin.isatty()
        rc = 0
        while not self.closed_by_command:
            if interactive:
                print("kvmi> ", end="", flush=True, file=sys.stderr)
            line = sys.stdin.readline()
            if not line:
                break
            argv = shlex.split(line, comments=True)
            if not argv:
                continue
            if argv[0] in ("quit", "exit"):
                break
            try:
                rc = self.run_argv(argv) or 0
            except KvmiError as e:
                print(f"{PROG}: {e}", file=sys.stderr)
                rc = 1
            except UsageError as e:
                print(e, file=sys.stderr)
                rc = 2
        return rc

    def run_argv(self, argv):
        if argv[0] in ("run", "shell"):
            raise UsageError(f"{PROG}: `{argv[0]}` cannot be nested")
        args = build_command_parser().parse_args(argv)
        return self.run(args) or 0


DEFAULT_MSRS = (0xC0000081, 0xC0000082, 0x174, 0x175, 0x176)


def format_event(ev: w.Event) -> str:
    head = f"seq {ev.seq} vcpu{ev.vcpu} {ev.name}"
    p = ev.payload
    if ev.event == w.KVMI_EVENT_CR:
        tail = f"cr{p['cr']} {p['old_value']:#x} -> {p['new_value']:#x}"
    elif ev.event == w.KVMI_EVENT_MSR:
        tail = f"msr {p['msr']:#x} {p['old_value']:#x} -> {p['new_value']:#x}"
    elif ev.event == w.KVMI_EVENT_BREAKPOINT:
        tail = f"gpa {p['gpa']:#x} insn_len {p['insn_len']}"
    elif ev.event == w.KVMI_EVENT_PF:
        tail = (f"gpa {p['gpa']:#x} gva {p['gva']:#x} access {rights_str(p['access'])} "
                f"view {p['view']}")
    elif ev.event == w.KVMI_EVENT_TRAP:
        tail = (f"vector {p['vector']} type {p['type']:#x} error_code {p['error_code']:#x} "
                f"cr2 {p['cr2']:#x}")
    elif ev.event == w.KVMI_EVENT_DESCRIPTOR:
        tail = (f"{w.DESC_NAMES.get(p['descriptor'], p['descriptor'])} "
                f"{'write' if p['write'] else 'read'}")
    elif ev.event == w.KVMI_EVENT_XSETBV:
        r = ev.arch.regs
        tail = f"xcr0 {((r.rdx & 0xFFFFFFFF) << 32) | (r.rax & 0xFFFFFFFF):#x}"
    elif ev.event == w.KVMI_EVENT_HYPERCALL:
        r = ev.arch.regs
        tail = f"rax {r.rax:#x} rdi {r.rdi:#x} rsi {r.rsi:#x}"
    else:
        tail = ""
    rip = "" if ev.event == w.KVMI_EVENT_UNHOOK else f" rip {ev.arch.regs.rip:#x}"
    return f"{head} {tail}{rip}".replace("  ", " ").rstrip()


def _parse_hostport(text: str, default_host: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host = default_host
    try:
        return host or default_host, int(port)
    except ValueError:
        raise UsageError(f"{PROG}: bad HOST:PORT {text!r}") from None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    main_parser = build_main_parser()
    if argv and argv[0] == "help":
        if len(argv) > 1:
            argv = [argv[1], "--help"]
            try:
                build_command_parser().parse_args(argv)
            except SystemExit:
                return 0
            except UsageError as e:
                print(e, file=sys.stderr)
                return 2
        main_parser.print_help()
        return 0
    opts = main_parser.parse_args(argv)
    if not opts.command:
        main_parser.print_usage(sys.stderr)
        print(f"{PROG}: a COMMAND is required (try --help)", file=sys.stderr)
        return 2
    try:
        args = build_command_parser().parse_args(opts.command)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    except SystemExit as e:  # `COMMAND --help`
        return int(e.code or 0)
    if not opts.listen and not opts.connect:
        print(f"{PROG}: say where the hypervisor is: --listen [HOST:]PORT or "
              "--connect HOST:PORT", file=sys.stderr)
        return 2
    key = opts.key
    try:
        if opts.listen:
            host, port = _parse_hostport(opts.listen, "127.0.0.1")
            with Listener(host, port, key=key) as lst:
                print(f"{PROG}: listening on {lst.host}:{lst.port}", file=sys.stderr,
                      flush=True)
                dom = lst.accept(timeout=opts.accept_timeout)
        else:
            host, port = _parse_hostport(opts.connect, "127.0.0.1")
            dom = connect(host, port, key=key, timeout=opts.accept_timeout)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    except (OSError, TimeoutError, ProtocolError, ConnectionClosed, KvmiError) as e:
        print(f"{PROG}: no session: {e}", file=sys.stderr)
        return 3
    session = Session(dom)
    try:
        return session.run(args) or 0
    except KvmiError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    except (ConnectionClosed, TimeoutError, ProtocolError) as e:
        print(f"{PROG}: connection: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    finally:
        dom.close()
