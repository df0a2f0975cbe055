"""Linux seen from outside: symbols, virtual addresses, version, processes.

Offers SystemMap (a System.map, or the kallsyms table kimage.py writes in
that form), Paging (a guest virtual address to a guest physical one by
walking the x86-64 page tables from CR3, 4 or 5 levels), LinuxGuest (the
kernel's version banner and its task list, from the structure layout of
the kernel's own BTF) and Task.

All of it reads guest memory through one callable, read_phys(gpa, size)
-> bytes (Domain.read_memory over KVMI, or a test's memory image), so the
walks are tested without a guest.  KVMI v6 has no command that translates
addresses (KVMI_VCPU_TRANSLATE_GVA came with v7), hence the page walk here.

The guest is not trusted: every pointer read from it is checked to be a
canonical kernel address before it is followed, walks are bounded and
detect loops, and names are decoded with replacement characters.  Reads of
a running guest are not atomic: pause every vCPU around a walk (kvmictl ps
does) or the list can change under it.
"""

from __future__ import annotations

import bisect
import dataclasses
import struct
from typing import Callable

from .btf import Btf, BtfError

PAGE = 4096
ADDR_MASK = 0x000F_FFFF_FFFF_F000  # bits 51:12 of a paging-structure entry
KERNEL_HALF = 0xFFFF_8000_0000_0000
CR4_LA57 = 1 << 12
PTI_USER_BIT = 1 << 12  # with page-table isolation the user PGD is the kernel's + 4 KiB
MAX_TASKS = 65536
PF_KTHREAD = 0x00200000  # include/linux/sched.h, the same value from 2.6.27 to 6.x

ReadPhys = Callable[[int, int], bytes]


class GuestError(Exception):
    """What the guest's memory holds does not make sense (bad pointer,
    unmapped address, a list that loops); the message says where."""


class SystemMap:
    """Symbols by name and by address, from System.map lines
    "ffffffff81000000 T _text".  Absolute ('A') and per-CPU symbols (below
    the kernel half) are kept by name but not used to name addresses."""

    def __init__(self, text: str):
        if "The real System.map is in" in text[:4096]:
            raise ValueError("this is Debian's placeholder System.map (the real one is in the "
                             "kernel's -dbg package): take the symbols from the kernel image's "
                             "kallsyms instead (kvmictl --kernel, python3 -m kvmi.kimage --map)")
        self.by_name: dict[str, int] = {}
        spots = []
        for n, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 3:
                raise ValueError(f"System.map line {n}: {line!r} is not 'ADDRESS TYPE NAME'")
            try:
                addr = int(parts[0], 16)
            except ValueError:
                raise ValueError(f"System.map line {n}: {parts[0]!r} is not hex") from None
            self.by_name.setdefault(parts[2], addr)
            if parts[1] not in "aA" and addr >= KERNEL_HALF:
                spots.append((addr, parts[2]))
        if not self.by_name:
            raise ValueError("System.map holds no symbol")
        # One name per address: the first the map gives (jiffies before
        # its alias jiffies_64).
        spots = sorted({a: n for a, n in reversed(spots)}.items())
        self._addrs = [a for a, _ in spots]
        self._names = [n for _, n in spots]

    @classmethod
    def load(cls, path: str) -> "SystemMap":
        with open(path, encoding="ascii", errors="replace") as f:
            return cls(f.read())

    def __len__(self) -> int:
        return len(self.by_name)

    def __getitem__(self, name: str) -> int:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"symbol {name!r} is not in the System.map") from None

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    def name_of(self, addr: int, max_offset: int = 1 << 20) -> str:
        """"symbol+0xoff" for an address, or its hex if no symbol is near."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0 or addr - self._addrs[i] > max_offset:
            return f"{addr:#x}"
        off = addr - self._addrs[i]
        return self._names[i] + (f"+{off:#x}" if off else "")


def canonical_kernel(addr: int) -> bool:
    return KERNEL_HALF <= addr <= 0xFFFF_FFFF_FFFF_FFFF


class Paging:
    """Guest virtual -> guest physical through the page tables at CR3
    (SDM Vol. 3A 4.5 "4-Level Paging and 5-Level Paging").  Paging-structure
    pages are read once (4 KiB per read) and kept: the kernel's tables do
    not change while the vCPUs are paused."""

    def __init__(self, read_phys: ReadPhys, cr3: int, la57: bool = False):
        self.read_phys = read_phys
        self.root = cr3 & ADDR_MASK
        self.levels = 5 if la57 else 4
        self._tables: dict[int, bytes] = {}

    def _entry(self, table: int, index: int) -> int:
        page = self._tables.get(table)
        if page is None:
            page = self.read_phys(table, PAGE)
            if len(page) != PAGE:
                raise GuestError(f"short read of the paging structure at {table:#x}")
            self._tables[table] = page
        return struct.unpack_from("<Q", page, index * 8)[0]

    def translate(self, gva: int) -> int:
        bits = 48 if self.levels == 4 else 57
        top = gva >> (bits - 1)
        if top not in (0, (1 << (65 - bits)) - 1):
            raise GuestError(f"{gva:#x} is not a canonical address")
        table = self.root
        for level in range(self.levels, 0, -1):
            shift = 12 + 9 * (level - 1)
            e = self._entry(table, (gva >> shift) & 0x1FF)
            if not e & 1:
                raise GuestError(f"{gva:#x} is not mapped (level-{level} entry {e:#x})")
            if level in (2, 3) and e & 0x80:  # PS: a 1 GiB or 2 MiB page
                frame = e & ADDR_MASK & ~((1 << shift) - 1)
                return frame | (gva & ((1 << shift) - 1))
            table = e & ADDR_MASK
        return table | (gva & 0xFFF)

    def read(self, gva: int, size: int) -> bytes:
        """size bytes at a virtual address, page by page."""
        out = bytearray()
        while size > 0:
            n = min(size, PAGE - (gva & 0xFFF))
            data = self.read_phys(self.translate(gva), n)
            if len(data) != n:
                raise GuestError(f"short read at {gva:#x}")
            out += data
            gva += n
            size -= n
        return bytes(out)

    def u64(self, gva: int) -> int:
        return struct.unpack("<Q", self.read(gva, 8))[0]


@dataclasses.dataclass
class Task:
    addr: int  # the task_struct's virtual address
    pid: int
    tgid: int
    ppid: int  # real_parent's tgid; 0 for the init task
    comm: str
    kernel_thread: bool  # PF_KTHREAD in task_struct.flags (the idle task too)
    has_mm: bool  # an address space (a user process that has not exited)


# The task_struct members ps reads; their offsets come from BTF.
_TASK_FIELDS = ("tasks", "pid", "tgid", "comm", "real_parent", "mm", "flags")


class LinuxGuest:
    """One Linux kernel in guest memory, described by its BTF and symbols.

    cr3: any vCPU's CR3 (the kernel half is the same in every address
    space); with page-table isolation a user-mode CR3 lacks most of the
    kernel, so its kernel twin (bit 12 clear) is tried next.  mem: instead
    of read_phys and cr3, any object with read(gva, size) and u64(gva)."""

    def __init__(self, read_phys: ReadPhys | None, cr3: int, btf: Btf, symbols: SystemMap,
                 la57: bool = False, mem=None):
        self.btf = btf
        self.sym = symbols
        try:
            self.off = {f: btf.offsetof("task_struct", f) for f in _TASK_FIELDS}
            _, comm_t = btf.member("task_struct", "comm")
            self.comm_len = btf.array_len(comm_t)
            self.list_next = btf.offsetof("list_head", "next")
        except BtfError as e:
            raise GuestError(f"BTF: {e}") from e
        init_task = symbols["init_task"]
        if mem is not None:  # a ready virtual-memory reader (read, u64), e.g. a kernel image
            self.mem = mem
            return
        tries = [cr3] + ([cr3 & ~PTI_USER_BIT] if cr3 & PTI_USER_BIT else [])
        last = None
        for c in tries:
            self.mem = Paging(read_phys, c, la57)
            try:
                self.mem.translate(init_task)
                break
            except GuestError as e:
                last = e
        else:
            raise GuestError(f"init_task ({init_task:#x}) is not mapped by CR3 {cr3:#x}: {last}")

    def cstring(self, gva: int, limit: int = 512) -> str:
        data = self.mem.read(gva, limit)
        return data.split(b"\0", 1)[0].decode("utf-8", "replace")

    def version(self) -> str:
        """The kernel's banner (linux_banner: "Linux version 6.1.0-... ")."""
        return self.cstring(self.sym["linux_banner"]).rstrip("\n")

    def btf_in_memory_matches(self, blob: bytes, check: int = PAGE) -> bool:
        """Whether the guest's own .BTF (__start_BTF) begins like `blob`:
        the layout in use describes this very kernel."""
        if "__start_BTF" not in self.sym:
            return False
        n = min(check, len(blob))
        return self.mem.read(self.sym["__start_BTF"], n) == blob[:n]

    def _task(self, addr: int) -> tuple[Task, int, int]:
        """(Task without ppid, its real_parent pointer, its tasks.next)."""
        off = self.off
        lo = min(off.values())
        hi = max(max(off[f] + 8 for f in _TASK_FIELDS if f != "comm"),
                 off["comm"] + self.comm_len)
        raw = self.mem.read(addr + lo, hi - lo)

        def u(name: str, fmt: str = "<Q") -> int:
            return struct.unpack_from(fmt, raw, off[name] - lo)[0]

        comm = raw[off["comm"] - lo:off["comm"] - lo + self.comm_len]
        task = Task(addr=addr, pid=u("pid", "<i"), tgid=u("tgid", "<i"), ppid=0,
                    comm=comm.split(b"\0", 1)[0].decode("utf-8", "replace"),
                    kernel_thread=bool(u("flags", "<I") & PF_KTHREAD), has_mm=u("mm") != 0)
        at = off["tasks"] + self.list_next - lo
        nxt = (struct.unpack_from("<Q", raw, at)[0] if at + 8 <= len(raw)
               else self.mem.u64(addr + off["tasks"] + self.list_next))
        return task, u("real_parent"), nxt

    def tasks(self, limit: int = MAX_TASKS) -> list[Task]:
        """Every task on init_task's `tasks` list, init_task first: the
        thread-group leaders (processes and kernel threads), as `ps`
        without threads shows them.  ppid is the real parent's tgid."""
        head = self.sym["init_task"]
        out, parents, seen = [], [], {head}
        addr = head
        while True:
            task, parent, nxt = self._task(addr)
            out.append(task)
            parents.append(parent)
            if not canonical_kernel(nxt):
                raise GuestError(f"task {task.pid} ({task.comm}): tasks.next {nxt:#x} is not "
                                 "a kernel address")
            addr = nxt - self.off["tasks"]
            if addr == head:
                break
            if addr in seen:
                raise GuestError(f"the task list loops back to {addr:#x} without reaching "
                                 "init_task")
            if len(out) >= limit:
                raise GuestError(f"more than {limit} tasks: the list is damaged")
            seen.add(addr)
        tgid_of = {t.addr: t.tgid for t in out}
        for t, parent in zip(out, parents):
            if t.addr == head:
                continue
            if parent in tgid_of:
                t.ppid = tgid_of[parent]
            elif canonical_kernel(parent):
                t.ppid = struct.unpack("<i", self.mem.read(parent + self.off["tgid"], 4))[0]
            else:
                t.ppid = -1
        return out


def format_ps(tasks: list[Task]) -> str:
    """A `ps`-like table: PID, PPID, kernel-thread mark, name."""
    lines = [f"{'PID':>6} {'PPID':>6}  {'TASK_STRUCT':<18}  COMMAND"]
    for t in tasks:
        name = f"[{t.comm}]" if t.kernel_thread else t.comm
        lines.append(f"{t.pid:>6} {t.ppid:>6}  {t.addr:#018x}  {name}")
    return "\n".join(lines)


def load_kernel(image: str | None = None, btf: str | None = None,
                symbols: str | None = None) -> tuple[Btf, SystemMap, bytes]:
    """(Btf, SystemMap, BTF blob) of a kernel: from its image (bzImage or
    vmlinux: .BTF and kallsyms, a few seconds to decode), or from a BTF file
    and a System.map (kimage.py's --btf/--map output, or the real ones);
    a file given explicitly wins over the image."""
    from . import kimage
    elf = blob = smap = None
    if image and not (btf and symbols):
        with open(image, "rb") as f:
            elf = kimage.vmlinux_of(f.read())
    if btf:
        with open(btf, "rb") as f:
            blob = f.read()
    elif elf is not None:
        blob = kimage.elf_section(elf, ".BTF")
    if symbols:
        smap = SystemMap.load(symbols)
    elif elf is not None:
        import io
        text = io.StringIO()
        kimage.write_system_map(kimage.kallsyms(elf), text)
        smap = SystemMap(text.getvalue())
    if blob is None or smap is None:
        raise ValueError("give the kernel image, or both its BTF and its System.map")
    return Btf(blob), smap, blob
