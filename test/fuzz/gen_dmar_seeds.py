#!/usr/bin/env python3
"""Seed corpus for fuzz_dmar: physical-memory images with the RSDP at 16,
an XSDT (or RSDT) and a DMAR with units, scopes and an RMRR, plus bare DMARs;
and an image with a FADT whose DSDT holds \\_S3 and \\_S5 (the power parse)."""
import os
import struct
import sys


def fix(t, at):
    t[at] = 0
    t[at] = (-sum(t)) & 0xFF
    return t


def table(sig, body, rev=1):
    t = bytearray(sig + struct.pack("<IB", 36 + len(body), rev) + b"\0" * 27 + body)
    return fix(t, 9)


def scope(typ, bus, path, enum_id=0):
    b = b"".join(bytes(p) for p in path)
    return struct.pack("<BBHBB", typ, 6 + len(b), 0, enum_id, bus) + b


def dmar(units, rmrrs=()):
    body = bytearray(struct.pack("<BB", 38, 1) + b"\0" * 10)
    for flags, base, scopes in units:
        s = b"".join(scopes)
        body += struct.pack("<HHBBHQ", 0, 16 + len(s), flags, 0, 0, base) + s
    for base, limit, scopes in rmrrs:
        s = b"".join(scopes)
        body += struct.pack("<HHHHQQ", 1, 24 + len(s), 0, 0, base, limit) + s
    return table(b"DMAR", bytes(body))


def image(tables, xsdt=True):
    mem = bytearray(64)  # RSDP at 16 (36 bytes)
    addrs = []
    for t in tables:
        addrs.append(len(mem))
        mem += t
    root_at = len(mem)
    if xsdt:
        mem += table(b"XSDT", b"".join(struct.pack("<Q", a) for a in addrs))
    else:
        mem += table(b"RSDT", b"".join(struct.pack("<I", a) for a in addrs))
    r = bytearray(b"RSD PTR " + b"\0" + b"OEMID " + bytes([2 if xsdt else 0]))
    r += struct.pack("<I", 0 if xsdt else root_at)
    r += struct.pack("<IQ", 36, root_at if xsdt else 0) + b"\0\0\0\0"
    r[8] = 0
    r[8] = (-sum(r[:20])) & 0xFF
    r[32] = 0
    r[32] = (-sum(r)) & 0xFF
    mem[16:52] = r
    return bytes(mem)


def power_image():
    """DSDT first (at 64, where the FADT points), then a FADT with PM1a event/control,
    PM1b control, the reset register (I/O 0xcf9, value 6) and the hardware-reduced
    sleep control register."""
    aml = (b"\x08_S3_\x12\x08\x04\x0a\x05\x0a\x05\x00\x00"
           b"\x08\\_S5_\x12\x04\x02\x00\x01")
    dsdt = table(b"DSDT", aml, rev=2)
    body = bytearray(276 - 36)
    def put(off, fmt, *v):
        struct.pack_into(fmt, body, off - 36, *v)
    put(40, "<I", 64)
    put(56, "<I", 0xB000)
    put(64, "<I", 0xB004)
    put(68, "<I", 0xB008)
    put(112, "<I", 1 << 10)
    put(116, "<BBBBQ", 1, 8, 0, 1, 0xCF9)
    put(128, "<B", 6)
    put(244, "<BBBBQ", 1, 8, 0, 1, 0x404)
    return image([dsdt, table(b"FACP", bytes(body), rev=6)])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    d1 = dmar([(0, 0xFED90000, [scope(1, 0, [(2, 0)])]),
               (1, 0xFED91000, [scope(3, 0xF0, [(0x1F, 0)], 8), scope(4, 0, [(0x1F, 0)])])],
              [(0x7B800000, 0x7FFFFFFF, [scope(1, 0, [(0x14, 0)])])])
    d2 = dmar([(1, 0xFED90000, [])])
    facp = table(b"FACP", b"\0" * 80)
    seeds = {
        "xsdt": image([facp, d1]),
        "rsdt": image([d2, facp], xsdt=False),
        "bare-dmar": bytes(d1),
        "bridge": bytes(dmar([(0, 0xFED90000, [scope(2, 0, [(0x1C, 0), (0, 0)])])])),
        "power": power_image(),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
