"""kvmi.kimage: the kallsyms decoder on a table encoded here, and the
bzImage/ELF/kallsyms readers on Debian's kernel."""

import io
import struct

import pytest

from kvmi import kimage
from kvmi.kimage import ImageError
from realkernel import real_kernel

TEXT = 0xFFFFFFFF81000000
RODATA = 0xFFFFFFFF82000000


def _pad8(b: bytearray) -> None:
    b += bytes(-len(b) % 8)


def encode_kallsyms(symbols, seqs: bool = False, bad_marker: bool = False) -> bytes:
    """A kallsyms table as scripts/kallsyms.c lays it out (base relative,
    absolute per-CPU), with the trivial token table (token i = byte i) and
    two multi-byte tokens, so both the table walk and token expansion count."""
    tokens = [bytes([i]) if 32 < i < 127 else b"" for i in range(256)]
    tokens[1], tokens[2] = b"init_", b"task"
    # every token must be non-empty for the reader's index check to hold
    tokens = [t or bytes([0x41 + i % 26]) for i, t in enumerate(tokens)]
    rev = {t: i for i, t in enumerate(tokens) if i in (1, 2)}
    b = bytearray()
    n = len(symbols)
    for addr, _, _ in symbols:
        b += struct.pack("<i", addr if addr < TEXT else -(addr - TEXT) - 1)
    _pad8(b)
    base_at = len(b)
    b += struct.pack("<Q", TEXT) + struct.pack("<I", n)
    _pad8(b)
    names_at = len(b)
    marks = []
    for i, (_, typ, name) in enumerate(symbols):
        if i % 256 == 0:
            marks.append(len(b) - names_at)
        raw = (typ + name).encode()
        comp = bytearray()
        while raw:
            for t, idx in rev.items():
                if raw.startswith(t):
                    comp.append(idx)
                    raw = raw[len(t):]
                    break
            else:
                comp.append(raw[0])
                raw = raw[1:]
        if len(comp) > 127:
            b += bytes([0x80 | (len(comp) & 0x7F), len(comp) >> 7])
        else:
            b.append(len(comp))
        b += comp
    _pad8(b)
    if bad_marker:
        marks[1] += 1
    b += b"".join(struct.pack("<I", m) for m in marks)
    _pad8(b)
    if seqs:
        order = sorted(range(n), key=lambda i: symbols[i][2])
        b += b"".join(i.to_bytes(3, "big") for i in order)
        _pad8(b)
    pos = []
    for t in tokens:
        pos.append(len(b))
        b += t + b"\0"
    start = pos[0]
    _pad8(b)
    b += b"".join(struct.pack("<H", p - start) for p in pos)
    del base_at
    return bytes(b)


def make_elf(sections) -> bytes:
    """A 64-bit ELF with these (name, address, bytes) sections only."""
    shstr = b"\0" + b"".join(n.encode() + b"\0" for n, _, _ in sections) + b".shstrtab\0"
    body = bytearray(64)
    offs = []
    for _, _, data in sections:
        offs.append(len(body))
        body += data
    stroff = len(body)
    body += shstr
    _pad8(body)
    shoff = len(body)
    sh = [bytes(64)]
    name_at = 1
    for (name, addr, data), off in zip(sections, offs):
        sh.append(struct.pack("<IIQQQQIIQQ", name_at, 1, 2, addr, off, len(data), 0, 0, 1, 0))
        name_at += len(name) + 1
    sh.append(struct.pack("<IIQQQQIIQQ", name_at, 3, 0, 0, stroff, len(shstr), 0, 0, 1, 0))
    body += b"".join(sh)
    hdr = bytearray(b"\x7fELF\x02\x01\x01" + bytes(9))
    hdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64,
                       len(sh), len(sh) - 1)
    body[:64] = hdr
    return bytes(body)


SYMS = [(0x1000, "A", "cpu_debug_store")] + [
    (TEXT + 0x10 * i, "T", f"func_{i}") for i in range(1500)] + [
    (RODATA + 0x100, "D", "init_task"), (RODATA + 0x200, "D", "x" * 200)]


@pytest.mark.parametrize("seqs", [False, True])
def test_kallsyms_round_trip(seqs):
    ro = bytes(0x40) + encode_kallsyms(SYMS, seqs=seqs)
    elf = make_elf([(".text", TEXT, b"\xc3" * 16), (".rodata", RODATA, ro)])
    got = kimage.kallsyms(elf)
    assert got == SYMS
    out = io.StringIO()
    kimage.write_system_map(got[:2], out)
    assert out.getvalue() == ("0000000000001000 A cpu_debug_store\n"
                              "ffffffff81000000 T func_0\n")


def test_no_table_and_damaged_markers_are_refused():
    elf = make_elf([(".text", TEXT, b"\xc3"), (".rodata", RODATA, bytes(4096))])
    with pytest.raises(ImageError, match="no kallsyms table"):
        kimage.kallsyms(elf)
    # a marker that disagrees with the names stream: no table either
    ro = encode_kallsyms(SYMS, bad_marker=True)
    elf = make_elf([(".text", TEXT, b"\xc3"), (".rodata", RODATA, ro)])
    with pytest.raises(ImageError, match="no kallsyms table"):
        kimage.kallsyms(elf)


def test_not_an_image():
    with pytest.raises(ImageError, match="neither an ELF nor a bzImage"):
        kimage.vmlinux_of(b"MZ" + bytes(4096))
    with pytest.raises(ImageError, match="no .BTF section"):
        kimage.elf_section(make_elf([(".text", TEXT, b"\xc3")]), ".BTF")


def test_elf_memory_reads_by_virtual_address():
    _, elf, _, syms, _ = real_kernel()
    mem = kimage.ElfMemory(elf)
    secs = kimage.elf_sections(elf)
    addr, off, _ = secs[".text"]
    assert mem.read(addr, 64) == elf[off:off + 64]
    with pytest.raises(ImageError, match="outside"):
        mem.read(0xFFFF_8000_0000_0000, 8)


def test_debian_kernel_kallsyms_agree_with_its_sections():
    """Independent checks: the symbols that the linker script places at
    section boundaries have the addresses of those sections' headers."""
    path, elf, blob, syms, _ = real_kernel()
    by = {}
    for a, t, n in syms:
        by.setdefault(n, (a, t))
    secs = kimage.elf_sections(elf)
    assert len(syms) > 50000
    assert by["_text"][0] == secs[".text"][0]
    assert by["__start_BTF"][0] == secs[".BTF"][0]
    assert by["__stop_BTF"][0] == secs[".BTF"][0] + len(blob)
    assert by["_sdata"][0] == secs[".data"][0]
    assert by["init_task"][1] in "Dd" and by["jiffies"][1] in "Dd"
    assert [a for a, _, _ in syms if a >= secs[".text"][0]] == sorted(
        a for a, _, _ in syms if a >= secs[".text"][0])
    assert blob[:2] == b"\x9f\xeb"


def _bzimage(payload: bytes) -> bytes:
    """A bzImage shell (boot.rst: setup_sects 1, payload after 2 sectors)."""
    bz = bytearray(1024) + payload
    bz[0x1F1] = 1
    bz[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", bz, 0x248, 0, len(payload))
    return bytes(bz)


def test_bzimage_payloads():
    import gzip
    import lzma
    elf = b"\x7fELF" + bytes(60)
    assert kimage.vmlinux_of(_bzimage(gzip.compress(elf) + b"\1\2\3\4")) == elf
    assert kimage.vmlinux_of(_bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ))) == elf
    assert kimage.vmlinux_of(elf) == elf
    with pytest.raises(ImageError, match="not supported"):
        kimage.vmlinux_of(_bzimage(b"\x28\xb5\x2f\xfd" + bytes(16)))  # zstd
    with pytest.raises(ImageError, match="truncated"):
        kimage.vmlinux_of(_bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ)[:-20]))
    with pytest.raises(ImageError, match="not an ELF"):
        kimage.vmlinux_of(_bzimage(gzip.compress(b"hello")))
