"""A fake Linux guest's physical memory for the tests of kvmi.linux: page
tables built here (4 or 5 levels, 4 KiB, 2 MiB and 1 GiB pages) and a task
list laid out with the task_struct of btfgen.task_btf()."""

from __future__ import annotations

import struct

PAGE = 4096
P, RW, PS = 1, 2, 0x80
# task_struct offsets of btfgen.task_btf()
FLAGS, TASKS, MM, PID, TGID, PARENT, COMM = 0, 0x40, 0x58, 0x80, 0x84, 0x90, 0x100
PF_KTHREAD = 0x00200000

IMAGE_VA, IMAGE_PA = 0xFFFFFFFF82000000, 0x2000000  # a 2 MiB page
DIRECT_VA = 0xFFFF888000000000  # a 1 GiB page onto physical 0
VMALLOC_VA = 0xFFFFC90000000000  # two 4 KiB pages, physically apart
VMALLOC_PA = (0x300000, 0x500000)


class PhysMem:
    def __init__(self):
        self.pages: dict[int, bytearray] = {}
        self.reads = 0
        self.next_table = 0x10000

    def page(self, gpa: int) -> bytearray:
        return self.pages.setdefault(gpa & ~0xFFF, bytearray(PAGE))

    def write(self, gpa: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.page(gpa + i)[(gpa + i) & 0xFFF] = b

    def read_phys(self, gpa: int, size: int) -> bytes:
        """Like KVMI READ_PHYSICAL: one page at most per read."""
        assert size <= PAGE - (gpa & 0xFFF), "a read crossed a page"
        self.reads += 1
        p = self.pages.get(gpa & ~0xFFF, bytes(PAGE))
        return bytes(p[gpa & 0xFFF:(gpa & 0xFFF) + size])

    def table(self) -> int:
        t = self.next_table
        self.next_table += PAGE
        self.page(t)
        return t


class Tables:
    def __init__(self, mem: PhysMem, levels: int = 4):
        self.mem, self.levels = mem, levels
        self.root = mem.table()

    def map(self, va: int, pa: int, level: int = 1) -> None:
        """level 1: a 4 KiB page; 2: 2 MiB; 3: 1 GiB."""
        t = self.root
        for lv in range(self.levels, level, -1):
            at = t + ((va >> (12 + 9 * (lv - 1))) & 0x1FF) * 8
            e = struct.unpack_from("<Q", self.mem.page(at), at & 0xFFF)[0]
            if not e & P:
                e = self.mem.table() | P | RW
                self.mem.write(at, struct.pack("<Q", e))
            t = e & 0x000FFFFFFFFFF000
        at = t + ((va >> (12 + 9 * (level - 1))) & 0x1FF) * 8
        self.mem.write(at, struct.pack("<Q", pa | P | RW | (PS if level > 1 else 0)))


def guest(levels: int = 4, root: int = 0x10000):
    """(PhysMem, Tables, SystemMap text, [task addresses]) of a guest with
    the kernel image, the direct map and two vmalloc pages mapped, a banner
    and five tasks: swapper (init_task), init, kthreadd, sh and one whose
    task_struct straddles the two vmalloc pages."""
    mem = PhysMem()
    mem.next_table = root  # the tables: from here on, below 0x200000
    pt = Tables(mem, levels)
    pt.map(IMAGE_VA, IMAGE_PA, 2)
    pt.map(DIRECT_VA, 0, 3)
    pt.map(VMALLOC_VA, VMALLOC_PA[0])
    pt.map(VMALLOC_VA + PAGE, VMALLOC_PA[1])
    init_task = IMAGE_VA + 0x1000
    banner = IMAGE_VA + 0x100
    mem.write(IMAGE_PA + 0x100, b"Linux version 6.1.0-test (fake) #1 SMP\n\0")
    tasks = [  # (address, pid, parent index, comm, has mm)
        (init_task, 0, 0, b"swapper/0", False),
        (DIRECT_VA + 0x600000, 1, 0, b"init", True),
        (DIRECT_VA + 0x601200, 2, 0, b"kthreadd", False),
        (DIRECT_VA + 0x6FF000, 57, 1, b"sh", True),
        (VMALLOC_VA + 0xF00, 58, 3, b"a-very-long-name-cut", True),
    ]
    for i, (addr, pid, parent, comm, has_mm) in enumerate(tasks):
        nxt = tasks[(i + 1) % len(tasks)][0]
        write_task(mem, pt, addr, pid=pid, parent=tasks[parent][0], comm=comm[:15],
                   mm=0xFFFF888000400000 if has_mm else 0, next_task=nxt,
                   flags=0 if has_mm else PF_KTHREAD)
    symbols = (f"{IMAGE_VA:016x} T _text\n{banner:016x} D linux_banner\n"
               f"{init_task:016x} D init_task\n0000000000001000 A cpu_debug_store\n")
    return mem, pt, symbols, [t[0] for t in tasks]


def virt_to_phys(addr: int) -> int:
    if addr >= IMAGE_VA:
        return IMAGE_PA + addr - IMAGE_VA
    if addr >= VMALLOC_VA:
        off = addr - VMALLOC_VA
        return VMALLOC_PA[off // PAGE] + off % PAGE
    return addr - DIRECT_VA


def write_virt(mem: PhysMem, addr: int, data: bytes) -> None:
    for i, b in enumerate(data):
        mem.write(virt_to_phys(addr + i), bytes([b]))


def write_task(mem, pt, addr, pid, parent, comm, mm, next_task, flags=0) -> None:
    w = lambda off, data: write_virt(mem, addr + off, data)  # noqa: E731
    w(FLAGS, struct.pack("<I", flags))
    w(TASKS, struct.pack("<QQ", next_task + TASKS, 0))
    w(MM, struct.pack("<Q", mm))
    w(PID, struct.pack("<ii", pid, pid))
    w(PARENT, struct.pack("<Q", parent))
    w(COMM, comm.ljust(16, b"\0"))
