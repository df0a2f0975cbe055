"""Builds small BTF blobs for the tests (Documentation/bpf/btf.rst layout):
the reader is then checked against types whose layout the test chose."""

from __future__ import annotations

import struct

from kvmi import btf as B


class BtfBuilder:
    def __init__(self):
        self.strings = bytearray(b"\0")
        self.types = bytearray()
        self.count = 0

    def _s(self, name: str) -> int:
        if not name:
            return 0
        off = len(self.strings)
        self.strings += name.encode() + b"\0"
        return off

    def _add(self, name: str, kind: int, vlen: int, size_or_type: int, tail: bytes = b"",
             kflag: int = 0) -> int:
        info = (kflag << 31) | (kind << 24) | vlen
        self.types += struct.pack("<III", self._s(name), info, size_or_type) + tail
        self.count += 1
        return self.count

    def int_(self, name: str, size: int) -> int:
        return self._add(name, B.INT, 0, size, struct.pack("<I", size * 8))

    def ptr(self, target: int) -> int:
        return self._add("", B.PTR, 0, target)

    def typedef(self, name: str, target: int) -> int:
        return self._add(name, B.TYPEDEF, 0, target)

    def const(self, target: int) -> int:
        return self._add("", B.CONST, 0, target)

    def array(self, elem: int, index: int, n: int) -> int:
        return self._add("", B.ARRAY, 0, 0, struct.pack("<III", elem, index, n))

    def struct(self, name: str, size: int, members, union: bool = False,
               bitfields: bool = False) -> int:
        """members: (name, type id, byte offset) or (name, type, bit offset, bits)."""
        tail = b""
        for m in members:
            if len(m) == 3:
                off = m[2] * 8
            else:
                off = (m[3] << 24) | m[2] if bitfields else m[2]
            tail += struct.pack("<III", self._s(m[0]), m[1], off)
        return self._add(name, B.UNION if union else B.STRUCT, len(members), size, tail,
                         1 if bitfields else 0)

    def func_proto(self, ret: int, params) -> int:
        tail = b"".join(struct.pack("<II", self._s(n), t) for n, t in params)
        return self._add("", B.FUNC_PROTO, len(params), ret, tail)

    def enum(self, name: str, values) -> int:
        tail = b"".join(struct.pack("<Ii", self._s(n), v) for n, v in values)
        return self._add(name, B.ENUM, len(values), 4, tail)

    def blob(self) -> bytes:
        hdr = struct.pack("<HBBIIIII", B.MAGIC, 1, 0, 24, 0, len(self.types),
                          len(self.types), len(self.strings))
        return hdr + bytes(self.types) + bytes(self.strings)


def task_btf(comm_len: int = 16, anon_pid: bool = False) -> bytes:
    """A task_struct with the members kvmi.linux reads, at offsets of our
    choosing (checked by the tests): flags 0, tasks 0x40, mm 0x58, pid
    0x80, tgid 0x84, real_parent 0x90, comm 0x100; size 0x200.
    anon_pid: pid and tgid inside an anonymous struct at 0x80."""
    b = BtfBuilder()
    u32 = b.int_("unsigned int", 4)
    i32 = b.int_("int", 4)
    ch = b.int_("char", 1)
    pid_t = b.typedef("pid_t", i32)
    # list_head's members point to a type defined after it (BTF allows it).
    lh = b.count + 1
    b.struct("list_head", 16, [("next", lh + 1, 0), ("prev", lh + 1, 8)])
    b.ptr(lh)
    mm = b.struct("mm_struct", 8, [("x", u32, 0)])
    mmp = b.ptr(mm)
    tsp = b.ptr(b.count + 5)  # task_struct: 4 types after this pointer
    idx = b.int_("__ARRAY_SIZE_TYPE__", 4)
    comm = b.array(ch, idx, comm_len)
    members = [("flags", u32, 0), ("tasks", lh, 0x40), ("mm", mmp, 0x58),
               ("real_parent", tsp, 0x90), ("comm", comm, 0x100)]
    if anon_pid:
        anon = b.struct("", 8, [("pid", pid_t, 0), ("tgid", pid_t, 4)])
        members.append(("", anon, 0x80))
    else:
        members += [("pid", pid_t, 0x80), ("tgid", b.const(pid_t), 0x84)]
    got = b.struct("task_struct", 0x200, members)
    assert got == tsp + 4
    return b.blob()
