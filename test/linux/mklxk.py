#!/usr/bin/env python3
"""mklxk.py: unpack Debian's bzImage into the form lxboot.efi loads fast.

    test/linux/mklxk.py build/linux/vmlinuz.efi build/linux/vmlinux.lxk

Why: the kernel's EFI stub decompresses its XZ payload (66 MB of ELF) before
it loads the initrd, and under Bochs that alone costs 100-150 s of host time
per boot (docs/emulators.md, "Linux guest").  The payload is the same on every
boot, so it is decompressed once here and lxboot.efi (test/linux/lxboot.c)
only copies it into place and enters the kernel through the 64-bit boot
protocol (Documentation/x86/boot.rst).

The output ("lxk", all little endian):

    header  magic "HVLXK\\0\\0\\1", u32 header size (48), u32 chunk count,
            u64 base (the lowest PT_LOAD physical address, 16 MiB),
            u64 span (bytes from base the kernel needs: the larger of the
            segments' extent and the setup header's init_size),
            u64 entry (ELF e_entry, a physical address), u64 alignment
    setup   u32 length, then the bzImage's setup header from offset 0x1f1
            (0x202 + byte 0x201 - 0x1f1 bytes: boot.rst "The real-mode
            kernel header"), which the loader copies into the zero page
    chunks  u64 offset from base, u64 length, the bytes; only the pages of
            the PT_LOAD segments that are not all zeros (the loader zeroes
            the span first), which halves what the firmware has to read
"""
from __future__ import annotations

import lzma
import os
import struct
import sys

PAGE = 4096
MAGIC = b"HVLXK\0\0\1"


def fail(msg: str) -> None:
    print(f"mklxk.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def payload(bz: bytes) -> tuple[bytes, bytes]:
    """The decompressed vmlinux ELF and the setup header of a bzImage."""
    if len(bz) < 0x1000 or bz[0x202:0x206] != b"HdrS":
        fail("not a bzImage (no HdrS at 0x202)")
    version = struct.unpack_from("<H", bz, 0x206)[0]
    if version < 0x020E:
        fail(f"boot protocol {version:#x} < 2.14: no acpi_rsdp_addr, no 64-bit entry we trust")
    xloadflags, relocatable = struct.unpack_from("<H", bz, 0x236)[0], bz[0x234]
    if not xloadflags & 1:
        fail("the kernel has no 64-bit entry (xloadflags bit 0, XLF_KERNEL_64)")
    if not relocatable:
        fail("the kernel is not relocatable (lxboot.efi may have to move it)")
    setup_sects = bz[0x1F1] or 4
    off, length = struct.unpack_from("<II", bz, 0x248)
    start = (setup_sects + 1) * 512 + off
    data = bz[start:start + length]
    if not data.startswith(b"\xfd7zXZ\0"):
        fail("payload is not XZ (this packer knows Debian's XZ kernels only)")
    # The build appends the decompressed size (4 bytes) after the stream.
    dec = lzma.LZMADecompressor()
    elf = dec.decompress(data)
    if not dec.eof:
        fail("XZ payload is truncated")
    hdr_end = 0x202 + bz[0x201]
    return elf, bz[0x1F1:hdr_end]


def chunks(elf: bytes) -> tuple[int, int, int, list[tuple[int, bytes]]]:
    """(base, extent, entry, [(physical address, bytes)]) of the PT_LOADs,
    runs of non-zero pages only."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        fail("payload is not a 64-bit ELF")
    entry, phoff = struct.unpack_from("<QQ", elf, 24)
    phentsize, phnum = struct.unpack_from("<HH", elf, 54)
    if phentsize != 56:
        fail(f"program headers of {phentsize} bytes, not 56")
    loads = []
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", elf, phoff + i * phentsize)
        if p_type == 1:
            if off + filesz > len(elf) or filesz > memsz:
                fail(f"PT_LOAD at {paddr:#x} is truncated or inconsistent")
            loads.append((paddr, elf[off:off + filesz], memsz))
    if not loads:
        fail("no PT_LOAD segment")
    # The loader zeroes the span and copies non-zero pages only: overlapping
    # segments would make the result depend on the order.
    loads.sort(key=lambda x: x[0])
    for (p1, _, m1), (p2, _, _) in zip(loads, loads[1:]):
        if p1 + m1 > p2:
            fail(f"PT_LOAD segments at {p1:#x} and {p2:#x} overlap")
    base = loads[0][0]
    extent = max(p + m for p, _, m in loads) - base
    out = []
    for paddr, seg, _ in loads:
        run_at, run = None, bytearray()
        for at in range(0, len(seg), PAGE):
            page = seg[at:at + PAGE]
            if any(page):
                if run_at is None:
                    run_at = paddr + at
                run += page
            elif run_at is not None:
                out.append((run_at, bytes(run)))
                run_at, run = None, bytearray()
        if run_at is not None:
            out.append((run_at, bytes(run)))
    return base, extent, entry, out


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        bz = f.read()
    elf, setup = payload(bz)
    base, extent, entry, runs = chunks(elf)
    align, init_size = struct.unpack_from("<I", bz, 0x230)[0], struct.unpack_from("<I", bz, 0x260)[0]
    span = (max(extent, init_size) + PAGE - 1) // PAGE * PAGE
    if align < 0x200000 or base % align:
        fail(f"base {base:#x} is not aligned to kernel_alignment {align:#x} (2 MiB at least)")
    if not base <= entry < base + extent:
        fail(f"entry {entry:#x} outside the image {base:#x}+{extent:#x}")
    blob = bytearray(MAGIC + struct.pack("<IIQQQQ", 48, len(runs), base, span, entry, align))
    blob += struct.pack("<I", len(setup)) + setup
    for at, data in runs:
        blob += struct.pack("<QQ", at - base, len(data)) + data
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, sys.argv[2])
    print(f"mklxk.py: {sys.argv[2]}: {len(runs)} chunks, {len(blob)} bytes "
          f"(ELF {len(elf)}), base {base:#x} span {span:#x} entry {entry:#x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
