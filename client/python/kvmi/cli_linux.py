"""kvmictl's Linux commands: `linux-version` and `ps`.

Offers add_commands(cmd) (their argument parsers), run(session, args) and
KernelDataError.
Both read the guest through KVMI memory reads and a page walk
(kvmi.linux), with the kernel's layout from its own BTF and its symbols
from kallsyms or a System.map (--kernel IMAGE, or --btf and --map).  Every
vCPU is paused for the walk (unless the script holds it already) and
resumed after, so the kernel does not change the list under the reader.
"""

from __future__ import annotations

from . import wire as w
from .btf import BtfError
from .kimage import ImageError
from .linux import CR4_LA57, GuestError, LinuxGuest, format_ps, load_kernel


class KernelDataError(Exception):
    """The kernel's BTF or symbols cannot be loaded (a usage error)."""


def add_commands(cmd) -> None:
    for name, help_ in (
            ("linux-version", "the Linux kernel's version banner (linux_banner), read from "
                              "guest memory"),
            ("ps", "list the guest Linux kernel's tasks (PID, parent, name; [kernel "
                   "threads]) by walking init_task's list, with the layout from the "
                   "kernel's BTF")):
        c = cmd(name, help_)
        c.add_argument("--kernel", metavar="IMAGE",
                       help="the guest's kernel (bzImage or vmlinux): BTF and kallsyms from it")
        c.add_argument("--btf", metavar="FILE", help="the kernel's BTF blob (.BTF)")
        c.add_argument("--map", metavar="FILE",
                       help="the kernel's System.map (or `python3 -m kvmi.kimage --map`)")
        c.add_argument("--vcpu", type=int, default=0,
                       help="whose CR3 to walk the page tables from (default 0)")


def _guest(session, a) -> LinuxGuest:
    key = (a.kernel, a.btf, a.map)
    cache = getattr(session, "_kernels", None)
    if cache is None:
        cache = session._kernels = {}
    if key not in cache:
        try:
            cache[key] = load_kernel(a.kernel, a.btf, a.map)
        except (OSError, ValueError, ImageError, BtfError) as e:
            raise KernelDataError(f"{a.cmd}: kernel data: {e}") from None
    btf, smap, _ = cache[key]
    sregs = session.dom.get_registers(a.vcpu).sregs
    return LinuxGuest(session.dom.read_physical, sregs.cr3, btf, smap,
                      la57=bool(sregs.cr4 & CR4_LA57))


def _paused(session, fn):
    """fn() with every vCPU paused; those it paused are resumed after."""
    dom = session.dom
    n = session.vcpu_count()
    todo = [v for v in range(n) if v not in session.held]
    got = {}
    if todo:
        with dom.batch() as b:
            for v in todo:
                b.pause_vcpu(v, wait=True)
        want = set(todo)
        while want:
            ev = dom.wait_event(60.0, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU
                                and e.vcpu in want)
            if ev is None:
                raise TimeoutError(f"no PAUSE event from vCPU(s) {sorted(want)}")
            want.discard(ev.vcpu)
            got[ev.vcpu] = ev
    try:
        return fn()
    finally:
        for ev in got.values():
            dom.reply(ev, w.ACTION_CONTINUE)


def run(session, a) -> int:
    def work():
        g = _guest(session, a)
        if a.cmd == "linux-version":
            session.print(g.version())
        else:
            session.print(format_ps(g.tasks()))
    try:
        _paused(session, work)
    except GuestError as e:
        session.print(f"{a.cmd}: the guest's memory does not fit the kernel data: {e}")
        return 1
    return 0

