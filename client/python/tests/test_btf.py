"""kvmi.btf: the BTF reader, on blobs of known layout and on the BTF of
Debian's kernel (checked against that kernel's own init_task)."""

import struct

import pytest

import btfgen
from kvmi import btf as B
from kvmi.btf import Btf, BtfError
from realkernel import real_kernel


def test_offsets_sizes_and_aliases():
    b = Btf(btfgen.task_btf())
    assert [b.offsetof("task_struct", f) for f in
            ("flags", "tasks", "mm", "pid", "tgid", "real_parent", "comm")] == \
        [0, 0x40, 0x58, 0x80, 0x84, 0x90, 0x100]
    assert b.offsetof("task_struct", "tasks.prev") == 0x48
    off, t = b.member("task_struct", "tgid")  # const pid_t -> int
    assert t.kind == B.INT and t.name == "int"
    _, comm = b.member("task_struct", "comm")
    assert b.array_len(comm) == 16 and b.sizeof(comm.id) == 16
    assert b.sizeof(b.find("task_struct").id) == 0x200
    assert b.sizeof(b.find("list_head").id) == 16
    _, rp = b.member("task_struct", "real_parent")
    assert rp.kind == B.PTR and b.type(rp.size_or_type).name == "task_struct"


def test_anonymous_struct_members_are_found():
    b = Btf(btfgen.task_btf(anon_pid=True))
    assert b.offsetof("task_struct", "pid") == 0x80
    assert b.offsetof("task_struct", "tgid") == 0x84


def test_every_kind_with_a_tail_is_skipped_right():
    g = btfgen.BtfBuilder()
    i = g.int_("int", 4)
    g.func_proto(i, [("a", i), ("b", i)])
    g.enum("colour", [("RED", 0), ("GREEN", 1), ("BLUE", 2)])
    g.struct("after", 4, [("x", i, 0)])
    b = Btf(g.blob())
    assert len(b) == 4 and b.offsetof("after", "x") == 0
    assert b.find("colour", B.ENUM).kind == B.ENUM


def test_bitfields_are_refused_and_names_missing_say_so():
    g = btfgen.BtfBuilder()
    u = g.int_("unsigned int", 4)
    g.struct("s", 4, [("a", u, 0, 3), ("b", u, 3, 5)], bitfields=True)
    b = Btf(g.blob())
    with pytest.raises(BtfError, match="bitfield"):
        b.offsetof("s", "b")
    with pytest.raises(BtfError, match="no member 'c'"):
        b.offsetof("s", "c")
    with pytest.raises(BtfError, match="no struct named 'nope'"):
        b.find("nope")


@pytest.mark.parametrize("damage, why", [
    (lambda blob: blob[:10], "shorter than the BTF header"),
    (lambda blob: b"\xeb\x9f" + blob[2:], "magic"),
    (lambda blob: blob[:2] + b"\x02" + blob[3:], "version 2"),
    (lambda blob: blob[:12] + struct.pack("<I", len(blob)) + blob[16:], "runs past"),
    (lambda blob: blob[:-40], "runs past"),
])
def test_malformed_blobs_raise_btferror(damage, why):
    with pytest.raises(BtfError, match=why):
        Btf(damage(btfgen.task_btf()))


def test_truncated_type_and_bad_reference_and_bad_kind():
    g = btfgen.BtfBuilder()
    g.ptr(7)  # no type 7
    with pytest.raises(BtfError, match="refers to type 7"):
        Btf(g.blob())
    g = btfgen.BtfBuilder()
    g._add("x", 31, 0, 0)
    with pytest.raises(BtfError, match="unknown kind 31"):
        Btf(g.blob())
    g = btfgen.BtfBuilder()
    g.struct("s", 8, [("a", 0, 0), ("b", 0, 4)])
    blob = bytearray(g.blob())
    struct.pack_into("<I", blob, 12, 12 + 12)  # type_len cuts the member list
    with pytest.raises(BtfError, match="tail runs past"):
        Btf(bytes(blob))


def test_a_typedef_loop_is_an_error_not_a_hang():
    g = btfgen.BtfBuilder()
    g.typedef("a", 2)
    g.typedef("b", 1)
    b = Btf(g.blob())
    with pytest.raises(BtfError, match="loop"):
        b.resolve(1)


def test_debian_kernel_btf_describes_its_init_task():
    """The layout from the kernel's BTF, applied to init_task as the image
    initialises it (init/init_task.c): tasks is an empty list (next points
    back at itself), comm is "swapper", pid 0, and real_parent is
    init_task itself."""
    _, elf, blob, syms, _ = real_kernel()
    from kvmi.kimage import ElfMemory
    b = Btf(blob)
    assert len(b) > 10000
    mem = ElfMemory(elf)
    init = {n: a for a, _, n in syms}["init_task"]
    tasks = b.offsetof("task_struct", "tasks")
    assert mem.u64(init + tasks + b.offsetof("list_head", "next")) == init + tasks
    assert mem.u64(init + tasks + b.offsetof("list_head", "prev")) == init + tasks
    _, comm_t = b.member("task_struct", "comm")
    comm = mem.read(init + b.offsetof("task_struct", "comm"), b.array_len(comm_t))
    assert comm.split(b"\0")[0] == b"swapper"
    assert mem.read(init + b.offsetof("task_struct", "pid"), 4) == bytes(4)
    assert mem.u64(init + b.offsetof("task_struct", "real_parent")) == init
    assert b.sizeof(b.find("task_struct").id) > b.offsetof("task_struct", "comm")
