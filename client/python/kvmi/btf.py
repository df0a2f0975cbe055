"""BTF: the type information a Linux kernel carries about itself.

Offers Btf (a parsed .BTF blob: types by id and by name, struct member
offsets along dotted paths, sizes, array lengths) and BtfError.  The format
is the kernel's Documentation/bpf/btf.rst: a 24-byte header (magic 0xeB9F,
version 1, type and string section offsets), then the type section, a run
of `struct btf_type` records (name_off, info, size-or-type) each followed by
a kind-specific tail, ids counted from 1 (0 is void), then the string
section.  The introspector uses it for the layout of task_struct and the
like, so that one reader serves every kernel built with
CONFIG_DEBUG_INFO_BTF instead of a hand-made profile per kernel.

Every length and index in the blob is checked: a blob from the guest (or a
damaged file) raises BtfError, never IndexError or an endless loop.
"""

from __future__ import annotations

import dataclasses
import struct

MAGIC = 0xEB9F

# Kinds (btf.rst "2.2 Type encoding") and the size of each one's tail:
# a fixed part, plus per-entry bytes times vlen.
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, \
    FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(1, 20)
_TAIL = {INT: (4, 0), PTR: (0, 0), ARRAY: (12, 0), STRUCT: (0, 12), UNION: (0, 12),
         ENUM: (0, 8), FWD: (0, 0), TYPEDEF: (0, 0), VOLATILE: (0, 0), CONST: (0, 0),
         RESTRICT: (0, 0), FUNC: (0, 0), FUNC_PROTO: (0, 8), VAR: (4, 0), DATASEC: (0, 12),
         FLOAT: (0, 0), DECL_TAG: (4, 0), TYPE_TAG: (0, 0), ENUM64: (0, 12)}
# Kinds that only qualify or rename another type.
_ALIASES = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)


class BtfError(Exception):
    """The blob is malformed, or a name or member is not in it."""


@dataclasses.dataclass(frozen=True)
class Member:
    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int  # 0: not a bitfield


@dataclasses.dataclass(frozen=True)
class Type:
    id: int
    kind: int
    name: str
    size_or_type: int  # size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, else a type id
    members: tuple = ()  # Member for STRUCT/UNION
    array: tuple = ()  # (element type, index type, nelems) for ARRAY


class Btf:
    """A parsed BTF blob.  Btf(blob) raises BtfError if it is malformed."""

    def __init__(self, blob: bytes):
        if len(blob) < 24:
            raise BtfError(f"{len(blob)} bytes: shorter than the BTF header")
        magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
        if magic != MAGIC:
            raise BtfError(f"magic {magic:#06x}, not {MAGIC:#06x} (or not little endian)")
        if version != 1:
            raise BtfError(f"BTF version {version}, this reader knows 1")
        if hdr_len < 24 or hdr_len > len(blob):
            raise BtfError(f"header length {hdr_len} out of range")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
        t0, s0 = hdr_len + type_off, hdr_len + str_off
        if t0 + type_len > len(blob) or s0 + str_len > len(blob):
            raise BtfError("type or string section runs past the blob")
        self._strings = blob[s0:s0 + str_len]
        self.types: list[Type | None] = [None]  # id 0 is void
        self._by_name: dict[tuple[int, str], int] = {}
        p, end = t0, t0 + type_len
        while p < end:
            if p + 12 > end:
                raise BtfError(f"type {len(self.types)} truncated")
            name_off, info, size_or_type = struct.unpack_from("<III", blob, p)
            p += 12
            kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
            if kind not in _TAIL:
                raise BtfError(f"type {len(self.types)}: unknown kind {kind}")
            fixed, per = _TAIL[kind]
            tail = fixed + per * vlen
            if p + tail > end:
                raise BtfError(f"type {len(self.types)}: tail runs past the type section")
            members, array = (), ()
            if kind in (STRUCT, UNION):
                ms = []
                for i in range(vlen):
                    m_name, m_type, m_off = struct.unpack_from("<III", blob, p + 12 * i)
                    bits = m_off >> 24 if kflag else 0
                    ms.append(Member(self._str(m_name), m_type,
                                     m_off & 0xFFFFFF if kflag else m_off, bits))
                members = tuple(ms)
            elif kind == ARRAY:
                array = struct.unpack_from("<III", blob, p)
            t = Type(len(self.types), kind, self._str(name_off), size_or_type, members, array)
            if t.name:
                self._by_name.setdefault((kind, t.name), t.id)
            self.types.append(t)
            p += tail
        for t in self.types[1:]:
            refs = [m.type_id for m in t.members] + list(t.array[:2])
            if t.kind in (PTR, ARRAY, FUNC, VAR, DECL_TAG) + _ALIASES:
                refs.append(t.size_or_type if t.kind != ARRAY else t.array[0])
            for r in refs:
                if r >= len(self.types):
                    raise BtfError(f"type {t.id} refers to type {r}, past the last one")

    def _str(self, off: int) -> str:
        if off >= len(self._strings):
            raise BtfError(f"string offset {off} past the string section")
        end = self._strings.find(b"\0", off)
        if end < 0:
            raise BtfError(f"string at {off} is not terminated")
        return self._strings[off:end].decode("utf-8", "replace")

    def __len__(self) -> int:
        return len(self.types) - 1

    def type(self, type_id: int) -> Type:
        if not 0 < type_id < len(self.types):
            raise BtfError(f"no type {type_id}")
        return self.types[type_id]

    def find(self, name: str, kind: int = STRUCT) -> Type:
        """The first type of this kind and name (e.g. find("task_struct"))."""
        tid = self._by_name.get((kind, name))
        if tid is None:
            raise BtfError(f"no {_KIND_NAMES.get(kind, kind)} named {name!r}")
        return self.types[tid]

    def resolve(self, type_id: int) -> Type:
        """Follows typedefs and qualifiers to the type they name."""
        for _ in range(64):
            t = self.type(type_id)
            if t.kind not in _ALIASES:
                return t
            type_id = t.size_or_type
        raise BtfError(f"type {type_id}: qualifier chain too long (a loop?)")

    def sizeof(self, type_id: int) -> int:
        t = self.resolve(type_id)
        if t.kind in (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC):
            return t.size_or_type
        if t.kind == PTR:
            return 8
        if t.kind == ARRAY:
            return t.array[2] * self.sizeof(t.array[0])
        raise BtfError(f"type {t.id} ({_KIND_NAMES.get(t.kind)}) has no size")

    def _member(self, t: Type, name: str) -> tuple[Member, int] | None:
        """The member `name` of struct/union t, looking into anonymous
        struct and union members; (member, byte offset of its parent)."""
        for m in t.members:
            if m.name == name:
                return m, 0
        for m in t.members:
            if not m.name:
                inner = self.resolve(m.type_id)
                if inner.kind in (STRUCT, UNION):
                    got = self._member(inner, name)
                    if got:
                        return got[0], got[1] + m.bit_offset // 8
        return None

    def member(self, struct_name: str, path: str) -> tuple[int, Type]:
        """(byte offset, resolved type) of a member path such as "tasks",
        "tasks.next" or "thread.sp" inside struct `struct_name`."""
        t = self.find(struct_name)
        off = 0
        for part in path.split("."):
            if t.kind not in (STRUCT, UNION):
                raise BtfError(f"{struct_name}.{path}: {part!r} is not inside a struct")
            got = self._member(t, part)
            if got is None:
                raise BtfError(f"struct {t.name or '(anonymous)'} has no member {part!r}")
            m, base = got
            if m.bitfield_size or m.bit_offset % 8:
                raise BtfError(f"{struct_name}.{path}: {part!r} is a bitfield")
            off += base + m.bit_offset // 8
            t = self.resolve(m.type_id)
        return off, t

    def offsetof(self, struct_name: str, path: str) -> int:
        return self.member(struct_name, path)[0]

    def array_len(self, t: Type) -> int:
        if t.kind != ARRAY:
            raise BtfError(f"type {t.id} is not an array")
        return t.array[2]


_KIND_NAMES = {INT: "int", PTR: "pointer", ARRAY: "array", STRUCT: "struct", UNION: "union",
               ENUM: "enum", FWD: "forward declaration", TYPEDEF: "typedef",
               VOLATILE: "volatile", CONST: "const", RESTRICT: "restrict", FUNC: "function",
               FUNC_PROTO: "function prototype", VAR: "variable", DATASEC: "data section",
               FLOAT: "float", DECL_TAG: "declaration tag", TYPE_TAG: "type tag",
               ENUM64: "enum64"}
