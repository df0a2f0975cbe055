"""Host tests of test/linux/mklxk.py, the packer behind lxboot.efi: it must
refuse what lxboot could not boot, and what it writes must put every byte
of the kernel's PT_LOAD segments at its physical address once the loader
has zeroed the span and copied the chunks.  Run by `make test-lxk`; the
second test needs the kernel (LXK_KERNEL, default build/linux/vmlinuz.efi,
made by `make linux-guest`)."""
from __future__ import annotations

import lzma
import os
import struct
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MKLXK = os.path.join(HERE, "mklxk.py")
KERNEL = os.environ.get("LXK_KERNEL", "build/linux/vmlinuz.efi")


def mklxk(src: str, dst: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, MKLXK, src, dst], capture_output=True, text=True)


def bzimage(payload: bytes, version: int = 0x020F, xloadflags: int = 0x7F,
            relocatable: int = 1) -> bytes:
    """A minimal bzImage header around payload (setup_sects 1)."""
    bz = bytearray(1024)
    bz[0x1F1] = 1
    bz[0x201] = 0x66
    bz[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", bz, 0x206, version)
    bz[0x234] = relocatable
    struct.pack_into("<H", bz, 0x236, xloadflags)
    struct.pack_into("<II", bz, 0x248, 0, len(payload))
    struct.pack_into("<I", bz, 0x230, 0x200000)
    struct.pack_into("<I", bz, 0x260, 0x400000)
    bz += payload
    return bytes(bz) + bytes(4096)


def elf(segments: list[tuple[int, bytes, int]], entry: int) -> bytes:
    """A 64-bit ELF with PT_LOADs (paddr, data, memsz), data after the headers."""
    ph = 64
    off = ph + 56 * len(segments)
    hdr = bytearray(b"\x7fELF\x02\x01\x01" + bytes(9))
    hdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, ph, 0, 0, 64, 56, len(segments), 0, 0,
                       0)
    body = bytearray()
    for paddr, data, memsz in segments:
        hdr += struct.pack("<IIQQQQQQ", 1, 7, off + len(body), paddr, paddr, len(data), memsz,
                           0x200000)
        body += data
    return bytes(hdr + body)


def xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)


def parse(lxk: bytes) -> tuple[dict, bytes, list[tuple[int, bytes]]]:
    assert lxk[:8] == b"HVLXK\0\0\1"
    size, count, base, span, entry, align = struct.unpack_from("<IIQQQQ", lxk, 8)
    assert size == 48
    (slen,) = struct.unpack_from("<I", lxk, 48)
    setup = lxk[52:52 + slen]
    pos, chunks = 52 + slen, []
    for _ in range(count):
        off, n = struct.unpack_from("<QQ", lxk, pos)
        chunks.append((off, lxk[pos + 16:pos + 16 + n]))
        pos += 16 + n
    assert pos == len(lxk), "bytes after the last chunk"
    return dict(base=base, span=span, entry=entry, align=align), setup, chunks


REFUSED = [
    ("not a bzImage", b"MZ" + bytes(8190), "not a bzImage"),
    ("boot protocol 2.13", bzimage(xz(b"x"), version=0x020D), "2.14"),
    ("no 64-bit entry", bzimage(xz(b"x"), xloadflags=0), "64-bit entry"),
    ("not relocatable", bzimage(xz(b"x"), relocatable=0), "not relocatable"),
    ("gzip payload", bzimage(b"\x1f\x8b" + bytes(64)), "not XZ"),
    ("truncated XZ", bzimage(xz(bytes(100000))[:-40]), "truncated"),
    ("ELF32", bzimage(xz(b"\x7fELF\x01" + bytes(100))), "64-bit ELF"),
    ("overlapping PT_LOADs", bzimage(xz(elf([(0x1000000, b"a" * 8192, 8192),
                                             (0x1001000, b"b" * 4096, 4096)], 0x1000000))),
     "overlap"),
    ("misaligned base", bzimage(xz(elf([(0x1001000, b"a" * 4096, 4096)], 0x1001000))),
     "not aligned"),
    ("entry outside", bzimage(xz(elf([(0x1000000, b"a" * 4096, 4096)], 0x9000000))),
     "outside the image"),
]


@pytest.mark.parametrize("what,image,message", REFUSED, ids=[c[0] for c in REFUSED])
def test_refuses(tmp_path, what, image, message):
    src, dst = tmp_path / "in", tmp_path / "out.lxk"
    src.write_bytes(image)
    r = mklxk(str(src), str(dst))
    assert r.returncode == 1, what
    assert message in r.stderr, r.stderr
    assert not dst.exists(), "a refused input left an output file"


def test_layout_of_a_small_kernel(tmp_path):
    """Zero pages are dropped, non-zero ones land at their offset from the
    lowest segment, and the span covers init_size."""
    page = 4096
    seg1 = b"A" * page + bytes(page) + b"B" * 10 + bytes(page - 10)
    seg2 = bytes(page) + b"C" * page
    image = bzimage(xz(elf([(0x1000000, seg1, len(seg1)), (0x1200000, seg2, 3 * page)],
                           0x1000000)))
    src, dst = tmp_path / "in", tmp_path / "out.lxk"
    src.write_bytes(image)
    r = mklxk(str(src), str(dst))
    assert r.returncode == 0, r.stderr
    h, setup, chunks = parse(dst.read_bytes())
    assert h["base"] == 0x1000000 and h["entry"] == 0x1000000 and h["align"] == 0x200000
    assert h["span"] == 0x400000  # init_size is larger than the extent (0x203000)
    assert setup == image[0x1F1:0x202 + image[0x201]]
    assert [(o, d[:1], len(d)) for o, d in chunks] == [
        (0, b"A", page), (2 * page, b"B", page), (0x200000 + page, b"C", page)]


def test_real_kernel_round_trip(tmp_path):
    """Debian's kernel: the span rebuilt from the chunks equals the ELF's
    PT_LOAD bytes at their physical addresses, zeros elsewhere."""
    if not os.path.exists(KERNEL):
        pytest.skip(f"{KERNEL} not there (make linux-guest fetches it)")
    dst = tmp_path / "k.lxk"
    r = mklxk(KERNEL, str(dst))
    assert r.returncode == 0, r.stderr
    h, setup, chunks = parse(dst.read_bytes())
    span = bytearray(h["span"])
    for off, data in chunks:
        assert off + len(data) <= len(span)
        span[off:off + len(data)] = data
    bz = open(KERNEL, "rb").read()
    start = (bz[0x1F1] + 1) * 512 + struct.unpack_from("<I", bz, 0x248)[0]
    d = lzma.LZMADecompressor()
    vmlinux = d.decompress(bz[start:])
    phoff, = struct.unpack_from("<Q", vmlinux, 32)
    phnum, = struct.unpack_from("<H", vmlinux, 56)
    want = bytearray(len(span))
    for i in range(phnum):
        t, _, off, _, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", vmlinux,
                                                               phoff + 56 * i)
        if t == 1:
            want[paddr - h["base"]:paddr - h["base"] + filesz] = vmlinux[off:off + filesz]
    assert span == want
    assert h["entry"] == struct.unpack_from("<Q", vmlinux, 24)[0]
