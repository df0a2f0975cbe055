"""What a Linux kernel image carries about itself, read on the host.

Offers vmlinux_of() (the ELF inside an x86 bzImage, e.g. Debian's
/boot/vmlinuz-*), elf_section() (a section's bytes by name), ElfMemory
(reads by virtual address from the image), kallsyms()
(the kernel's own symbol table, decoded from the ELF's .rodata) and
write_system_map() (those symbols in System.map form), plus a command line
that writes the BTF blob and the symbol map of a kernel:

    python3 -m kvmi.kimage vmlinuz --btf vmlinux.btf --map System.map

Why kallsyms: Debian's kernel package ships a placeholder System.map (one
line: "The real System.map is in the linux-image-<version>-dbg package",
an 860 MB download), while the kernel itself, built with CONFIG_KALLSYMS_ALL,
carries every text and data symbol in a compressed table that
scripts/kallsyms.c lays out in .rodata.  That table is found here by its
shape, not by symbols (the image is stripped): kallsyms_relative_base (the
lowest text address), kallsyms_num_syms after it, kallsyms_offsets before
it, then kallsyms_names, kallsyms_markers, kallsyms_token_table and
kallsyms_token_index, each 8-byte aligned, and every part checked against
the others.  This is scripts/kallsyms.c's order with
CONFIG_KALLSYMS_BASE_RELATIVE (x86-64 distribution kernels from 4.6 on),
with or without kallsyms_seqs_of_names after the markers (upstream 6.2;
Debian's 6.1 has it).  Checked against Debian 12's 6.1 only; a kernel whose
table is laid out otherwise is refused with a clear error, never misread
(every part must agree with the others).
"""

from __future__ import annotations

import lzma
import os
import struct
import sys
import zlib

ELF_MAGIC = b"\x7fELF"


class ImageError(Exception):
    """The file is not what the reader expects (message says what is wrong)."""


def _gunzip(data: bytes) -> bytes:
    """A gzip stream followed by other bytes (the build appends the size)."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    except zlib.error as e:
        raise ImageError(f"the bzImage's gzip payload: {e}") from None


def vmlinux_of(image: bytes) -> bytes:
    """The vmlinux ELF of a kernel image: an ELF is returned as it is; a
    bzImage's payload (Documentation/x86/boot.rst: payload_offset and
    payload_length of the setup header) is decompressed (XZ or gzip)."""
    if image.startswith(ELF_MAGIC):
        return image
    if len(image) < 0x270 or image[0x202:0x206] != b"HdrS":
        raise ImageError("neither an ELF nor a bzImage (no HdrS at 0x202)")
    setup_sects = image[0x1F1] or 4
    off, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + off
    data = image[start:start + length]
    if data.startswith(b"\xfd7zXZ\0"):
        dec = lzma.LZMADecompressor()
        elf = dec.decompress(data)
        if not dec.eof:
            raise ImageError("the bzImage's XZ payload is truncated")
    elif data.startswith(b"\x1f\x8b"):
        elf = _gunzip(data)
    else:
        raise ImageError(f"payload compression {data[:6].hex()} not supported (XZ, gzip)")
    if not elf.startswith(ELF_MAGIC):
        raise ImageError("the bzImage's payload is not an ELF")
    return elf


def elf_sections(elf: bytes) -> dict[str, tuple[int, int, int]]:
    """name -> (address, file offset, size) of a 64-bit little-endian ELF."""
    if not elf.startswith(ELF_MAGIC) or elf[4] != 2 or elf[5] != 1:
        raise ImageError("not a 64-bit little-endian ELF")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    if shentsize != 64 or shoff + shnum * 64 > len(elf) or shstrndx >= shnum:
        raise ImageError("ELF section headers out of the file")

    def sh(i: int) -> tuple:
        return struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * 64)

    stroff = sh(shstrndx)[4]
    out = {}
    for i in range(1, shnum):
        name_off, typ, _, addr, off, size = sh(i)[:6]
        end = elf.find(b"\0", stroff + name_off)
        name = elf[stroff + name_off:end].decode("ascii", "replace")
        if typ != 8 and off + size > len(elf):  # SHT_NOBITS has no bytes
            raise ImageError(f"ELF section {name} runs past the end of the file")
        out[name] = (addr, off, size)
    return out


def elf_section(elf: bytes, name: str) -> bytes:
    """The bytes of section `name` (e.g. ".BTF")."""
    secs = elf_sections(elf)
    if name not in secs:
        raise ImageError(f"the ELF has no {name} section")
    _, off, size = secs[name]
    return elf[off:off + size]


class ElfMemory:
    """The kernel's virtual memory as the image initialises it: reads by
    virtual address from the ELF's PT_LOAD segments (zeros past a
    segment's file part).  Lets the guest-side walks of linux.py run over
    the image itself, e.g. init_task as it is before boot."""

    def __init__(self, elf: bytes):
        if not elf.startswith(ELF_MAGIC) or elf[4] != 2:
            raise ImageError("not a 64-bit ELF")
        self.elf = elf
        phoff = struct.unpack_from("<Q", elf, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
        self.loads = []
        for i in range(phnum):
            typ, _, off, vaddr, _, filesz, memsz, _ = struct.unpack_from(
                "<IIQQQQQQ", elf, phoff + i * phentsize)
            if typ == 1:
                self.loads.append((vaddr, memsz, off, filesz))

    def read(self, gva: int, size: int) -> bytes:
        for vaddr, memsz, off, filesz in self.loads:
            if vaddr <= gva and gva + size <= vaddr + memsz:
                rel = gva - vaddr
                data = self.elf[off + rel:off + min(rel + size, filesz)] if rel < filesz else b""
                return data + bytes(size - len(data))
        raise ImageError(f"{gva:#x}+{size} is outside the image's segments")

    def u64(self, gva: int) -> int:
        return struct.unpack("<Q", self.read(gva, 8))[0]


def _align8(x: int) -> int:
    return (x + 7) & ~7


def _decode_names(ro: bytes, at: int, n: int) -> tuple[list[bytes], list[int], int]:
    """n compressed names from kallsyms_names at `at`: ([token-index bytes],
    [stream offset of each 256th], end).  A length byte with bit 7 set is
    the first of two (ULEB128, Linux 6.1's long Rust names)."""
    names, marks = [], []
    p = at
    for i in range(n):
        if i % 256 == 0:
            marks.append(p - at)
        if p >= len(ro):
            raise ImageError("kallsyms_names runs past .rodata")
        ln = ro[p]
        p += 1
        if ln & 0x80:
            ln = (ln & 0x7F) | (ro[p] << 7)
            p += 1
        if ln == 0 or p + ln > len(ro):
            raise ImageError("kallsyms_names holds an empty or truncated entry")
        names.append(ro[p:p + ln])
        p += ln
    return names, marks, p


def _tokens(ro: bytes, at: int) -> list[bytes] | None:
    """kallsyms_token_table at `at` if kallsyms_token_index (256 u16
    offsets into it) follows and agrees, else None."""
    tokens, p = [], at
    for _ in range(256):
        e = ro.find(b"\0", p, p + 256)
        if e < 0:
            return None
        tokens.append(ro[p:e])
        p = e + 1
    index_at = _align8(p)
    if index_at + 512 > len(ro):
        return None
    pos, expect = 0, []
    for t in tokens:
        expect.append(pos)
        pos += len(t) + 1
    if list(struct.unpack_from("<256H", ro, index_at)) != expect:
        return None
    return tokens


def _try_table(ro: bytes, base_at: int) -> list[tuple[int, str, str]] | None:
    """The symbol table if kallsyms_relative_base is at .rodata offset
    base_at, else None."""
    base, n = struct.unpack_from("<QI", ro, base_at)
    if not 1000 <= n <= 4_000_000:
        return None
    offsets_at = base_at - _align8(4 * n)
    if offsets_at < 0:
        return None
    offsets = struct.unpack_from(f"<{n}i", ro, offsets_at)
    try:
        names, marks, end = _decode_names(ro, base_at + 16, n)
    except ImageError:
        return None
    markers_at = _align8(end)
    nm = (n + 255) // 256
    if markers_at + 4 * nm > len(ro):
        return None
    if list(struct.unpack_from(f"<{nm}I", ro, markers_at)) != marks:
        return None
    after = _align8(markers_at + 4 * nm)
    tokens = _tokens(ro, after)
    if tokens is None:
        # kallsyms_seqs_of_names (3 bytes per symbol, a permutation of the
        # symbols by name; Linux 6.2, and backported to 6.1 stable).
        seqs = ro[after:after + 3 * n]
        if len(seqs) == 3 * n and len({int.from_bytes(seqs[i:i + 3], "big")
                                       for i in range(0, 3 * n, 3)} & set(range(n))) == n:
            tokens = _tokens(ro, _align8(after + 3 * n))
    if tokens is None:
        return None
    out = []
    for off, comp in zip(offsets, names):
        text = b"".join(tokens[b] for b in comp).decode("ascii", "replace")
        # CONFIG_KALLSYMS_ABSOLUTE_PERCPU: a non-negative offset is the
        # (per-CPU) address itself; otherwise base - 1 - offset.
        addr = off if off >= 0 else base - 1 - off
        out.append((addr, text[:1], text[1:]))
    return out


def kallsyms(elf: bytes) -> list[tuple[int, str, str]]:
    """[(address, type letter, name)] of every symbol the kernel's own
    kallsyms table holds, in its order (by address).  Raises ImageError
    when no consistent table is found."""
    secs = elf_sections(elf)
    if ".rodata" not in secs:
        raise ImageError("the ELF has no .rodata section")
    _, off, size = secs[".rodata"]
    ro = elf[off:off + size]
    text = secs.get(".text", (0xFFFFFFFF81000000, 0, 0))[0]
    needle = struct.pack("<Q", text)
    at = ro.find(needle)
    while at >= 0:
        if at % 8 == 0 and at + 16 <= len(ro):
            table = _try_table(ro, at)
            if table:
                return table
        at = ro.find(needle, at + 1)
    raise ImageError("no kallsyms table in .rodata (this reader knows scripts/kallsyms.c's "
                     "base-relative layout, with or without kallsyms_seqs_of_names)")


def write_system_map(symbols, out) -> None:
    """System.map lines ("ffffffff81000000 T _text") to a text stream."""
    for addr, typ, name in symbols:
        out.write(f"{addr:016x} {typ} {name}\n")


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python3 -m kvmi.kimage", description=(
        "Write the BTF blob (.BTF) and the kallsyms table (as a System.map) "
        "that a Linux kernel image carries."))
    ap.add_argument("image", help="bzImage (e.g. /boot/vmlinuz-*) or vmlinux ELF")
    ap.add_argument("--btf", help="write the .BTF section here")
    ap.add_argument("--map", help="write the kallsyms symbols here, System.map format")
    a = ap.parse_args(argv)
    try:
        with open(a.image, "rb") as f:
            elf = vmlinux_of(f.read())
        if a.btf:
            blob = elf_section(elf, ".BTF")
            with open(a.btf + ".tmp", "wb") as f:
                f.write(blob)
            os.replace(a.btf + ".tmp", a.btf)
            print(f"{a.btf}: {len(blob)} bytes of BTF")
        if a.map:
            syms = kallsyms(elf)
            with open(a.map + ".tmp", "w") as f:
                write_system_map(syms, f)
            os.replace(a.map + ".tmp", a.map)
            print(f"{a.map}: {len(syms)} symbols from kallsyms")
    except (OSError, ImageError) as e:
        print(f"kimage: {a.image}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
