"""kvmi.linux: System.map, the page walk and ps on a fake guest's memory
(tests/fakeguest.py) and on Debian's kernel image."""

import struct

import pytest

import btfgen
import fakeguest as fg
from kvmi.btf import Btf
from kvmi.linux import GuestError, LinuxGuest, Paging, SystemMap, format_ps
from realkernel import real_kernel


def make(levels=4, cr3_extra=0):
    mem, pt, symbols, addrs = fg.guest(levels)
    g = LinuxGuest(mem.read_phys, pt.root | cr3_extra, Btf(btfgen.task_btf()),
                   SystemMap(symbols), la57=levels == 5)
    return mem, pt, g, addrs


@pytest.mark.parametrize("levels", [4, 5])
def test_translate_every_page_size(levels):
    mem, pt, _, _ = fg.guest(levels)
    p = Paging(mem.read_phys, pt.root | 0x18, la57=levels == 5)  # PCD/PWT bits ignored
    assert p.translate(fg.IMAGE_VA + 0x12345) == fg.IMAGE_PA + 0x12345  # 2 MiB
    assert p.translate(fg.DIRECT_VA + 0x3FFFFFFF) == 0x3FFFFFFF  # 1 GiB
    assert p.translate(fg.VMALLOC_VA + 0x10) == fg.VMALLOC_PA[0] + 0x10  # 4 KiB
    assert p.translate(fg.VMALLOC_VA + 0x1008) == fg.VMALLOC_PA[1] + 8
    with pytest.raises(GuestError, match="not mapped"):
        p.translate(fg.VMALLOC_VA + 0x2000)
    with pytest.raises(GuestError, match="not mapped"):
        p.translate(0x400000)
    with pytest.raises(GuestError, match="not a canonical address"):
        p.translate(0x0000800000000000 if levels == 4 else 0x0100000000000000)


def test_reads_cross_pages_and_tables_are_read_once():
    mem, pt, _, _ = fg.guest()
    fg.write_virt(mem, fg.VMALLOC_VA + 0xFFC, b"abcdefgh")
    p = Paging(mem.read_phys, pt.root)
    assert p.read(fg.VMALLOC_VA + 0xFFC, 8) == b"abcdefgh"
    before = mem.reads
    assert p.read(fg.VMALLOC_VA + 0xFFC, 8) == b"abcdefgh"
    assert mem.reads - before == 2  # the data only: the walk is cached


def test_version_and_ps():
    _, _, g, addrs = make()
    assert g.version() == "Linux version 6.1.0-test (fake) #1 SMP"
    got = [(t.pid, t.tgid, t.ppid, t.comm, t.kernel_thread, t.has_mm, t.addr)
           for t in g.tasks()]
    assert got == [
        (0, 0, 0, "swapper/0", True, False, addrs[0]),
        (1, 1, 0, "init", False, True, addrs[1]),
        (2, 2, 0, "kthreadd", True, False, addrs[2]),
        (57, 57, 1, "sh", False, True, addrs[3]),
        (58, 58, 57, "a-very-long-nam", False, True, addrs[4]),
    ]


def test_a_zombie_is_not_a_kernel_thread_and_a_thread_parent_is_read():
    """A process that exited has no mm but is no kernel thread; a parent
    that is not on the list (a non-leader thread forked it) is read."""
    mem, pt, symbols, addrs = fg.guest()
    fg.write_virt(mem, addrs[3] + fg.MM, bytes(8))
    thread = fg.DIRECT_VA + 0x700000
    fg.write_virt(mem, thread + fg.TGID, struct.pack("<i", 77))
    fg.write_virt(mem, addrs[4] + fg.PARENT, struct.pack("<Q", thread))
    g = LinuxGuest(mem.read_phys, pt.root, Btf(btfgen.task_btf()), SystemMap(symbols))
    t = g.tasks()
    assert (t[3].comm, t[3].kernel_thread, t[3].has_mm) == ("sh", False, False)
    assert t[4].ppid == 77
    table = format_ps(g.tasks()).splitlines()
    assert table[0].split() == ["PID", "PPID", "TASK_STRUCT", "COMMAND"]
    assert table[3].split() == ["2", "0", f"{addrs[2]:#018x}", "[kthreadd]"]
    assert table[4].split() == ["57", "1", f"{addrs[3]:#018x}", "sh"]


def test_ps_with_five_level_paging_and_anonymous_members():
    mem, pt, symbols, _ = fg.guest(5)
    g = LinuxGuest(mem.read_phys, pt.root, Btf(btfgen.task_btf(anon_pid=True)),
                   SystemMap(symbols), la57=True)
    assert [t.pid for t in g.tasks()] == [0, 1, 2, 57, 58]


def test_pti_user_cr3_falls_back_to_the_kernel_tables():
    # bit 12 set: the user half's PGD, empty here, as with page-table isolation
    _, _, g, _ = make(cr3_extra=0x1000)
    assert [t.comm for t in g.tasks()][:2] == ["swapper/0", "init"]


def test_a_looping_list_is_reported():
    mem, pt, symbols, addrs = fg.guest()
    # sh's next goes back to init instead of on towards init_task
    fg.write_virt(mem, addrs[3] + fg.TASKS, struct.pack("<Q", addrs[1] + fg.TASKS))
    g = LinuxGuest(mem.read_phys, pt.root, Btf(btfgen.task_btf()), SystemMap(symbols))
    with pytest.raises(GuestError, match="loops back"):
        g.tasks()


def test_bad_pointers_are_reported_not_followed():
    mem, pt, symbols, addrs = fg.guest()
    fg.write_virt(mem, addrs[2] + fg.TASKS, struct.pack("<Q", 0x4141414141414141))
    g = LinuxGuest(mem.read_phys, pt.root, Btf(btfgen.task_btf()), SystemMap(symbols))
    with pytest.raises(GuestError, match="kthreadd.*not a kernel address"):
        g.tasks()
    fg.write_virt(mem, addrs[2] + fg.TASKS, struct.pack("<Q", 0xFFFF999900000000))
    with pytest.raises(GuestError, match="not mapped"):
        g.tasks()


def test_a_list_longer_than_the_limit_is_refused():
    _, _, g, _ = make()
    with pytest.raises(GuestError, match="more than 3 tasks"):
        g.tasks(limit=3)


def test_unmapped_init_task_and_missing_symbols():
    mem, _, symbols, _ = fg.guest()
    empty = fg.Tables(mem)
    with pytest.raises(GuestError, match="init_task .* is not mapped"):
        LinuxGuest(mem.read_phys, empty.root, Btf(btfgen.task_btf()), SystemMap(symbols))
    with pytest.raises(KeyError, match="init_task"):
        LinuxGuest(mem.read_phys, 0, Btf(btfgen.task_btf()),
                   SystemMap("ffffffff81000000 T _text\n"))


def test_btf_in_memory_check():
    mem, pt, symbols, _ = fg.guest()
    blob = btfgen.task_btf()
    fg.write_virt(mem, fg.IMAGE_VA + 0x8000, blob)
    symbols += f"{fg.IMAGE_VA + 0x8000:016x} R __start_BTF\n"
    g = LinuxGuest(mem.read_phys, pt.root, Btf(blob), SystemMap(symbols))
    assert g.btf_in_memory_matches(blob)
    assert not g.btf_in_memory_matches(blob[:24] + b"x" + blob[25:])


def test_system_map_parsing_and_names():
    m = SystemMap("ffffffff81000000 T _text\nffffffff81000000 T _stext\n"
                  "ffffffff82a079c0 D jiffies\nffffffff82a079c0 D jiffies_64\n"
                  "0000000000001000 A cpu_debug_store\n\n")
    assert len(m) == 5 and m["jiffies_64"] == 0xFFFFFFFF82A079C0
    assert m.name_of(0xFFFFFFFF82A079C8) == "jiffies+0x8"
    assert m.name_of(0xFFFFFFFF81000000) == "_text"
    assert m.name_of(0x1000) == "0x1000"  # absolute symbols name nothing
    assert "cpu_debug_store" in m and "nope" not in m
    with pytest.raises(ValueError, match="line 1"):
        SystemMap("zz T x\n")
    with pytest.raises(ValueError, match="no symbol"):
        SystemMap("\n")
    # what Debian's linux-image packages ship as /boot/System.map-*
    with pytest.raises(ValueError, match="placeholder System.map.*kallsyms"):
        SystemMap("ffffffffffffffff B The real System.map is in the "
                  "linux-image-<version>-dbg package\n")


def test_debian_kernel_image_version_and_its_one_task():
    """Before boot, the image's task list is init_task alone (swapper, pid
    0) and its banner names the kernel of the package."""
    path, elf, blob, _, smap = real_kernel()
    from kvmi.kimage import ElfMemory
    g = LinuxGuest(None, 0, Btf(blob), SystemMap(smap), mem=ElfMemory(elf))
    v = g.version()
    assert v.startswith("Linux version 6.1.") and "Debian" in v
    tasks = g.tasks()
    assert [(t.pid, t.ppid, t.comm, t.kernel_thread) for t in tasks] == [(0, 0, "swapper", True)]
