#!/usr/bin/env python3
"""Writes the seed corpus of one small fuzz target (test/fuzz/fuzz.mk):
    gen_small_seeds.py TARGET DIR
Each seed is an input in the target's own format (see the target's header)."""
import os
import struct
import sys


def pci_op(kind, port, size_log, val=0):
    """kind bit 0 write, bit 1 CONFIG_ADDRESS first (function = port byte % 4, register =
    size byte & 0xfc), bit 2 judge an ECAM access; port = 0xCF4 + port byte % 13."""
    return bytes([kind, port, size_log]) + struct.pack("<I", val)


def pci_guard():
    nic, root = 2, 1  # model functions: host 0, root port 1, NIC 2, other 3
    # straddling reads and writes with CONFIG_ADDRESS on the NIC
    yield "straddle", bytes([1]) + b"".join(
        pci_op(2 | w, nic + 13 * k, 2 if s == 4 else 1, 0)
        for w in (0, 1) for k, s in ((7, 4), (6, 4), (5, 4), (7, 2)))
    yield "aligned", bytes([3]) + b"".join(pci_op(2 | w, nic + 13 * (8 + o), sl, 0xffffffff)
                                           for w in (0, 1) for o in range(4) for sl in range(3))
    yield "bridge", bytes([1]) + b"".join(pci_op(3, root + 13 * 8, 2, 0) for _ in range(4))
    yield "ecam", bytes([7 | 0x10]) + b"".join(pci_op(4 | w, i, i % 4, 0x10) for w in (0, 1)
                                                for i in range(6))


def config():
    yield "basic", b"memory = 64\nnic = auto\nconnect = 10.0.2.2:4444\nreconnect_ms = 500\n"
    yield "listen", b"# comment\nnic = 00:02.0\nlisten = 4444\nlog_level = debug\nname = vm1\n"
    yield "mac", b"nic = 52:54:00:12:34:56\nip = 10.0.2.15/24\ngateway = 10.0.2.2\n"
    yield "key", b"key = 00112233445566778899aabbccddeeff\ndma_protection = require\n"
    yield "bad", b"memory = lots\nnic = 00:02\nunknown = 1\nmemory = 8\n  = \n"


def insn():
    for name, mode, code in (
            ("mov32", 1, b"\x89\x08"), ("mov64", 2, b"\x48\x89\x08"),
            ("movimm", 2, b"\xc7\x00\x78\x56\x34\x12"), ("mov16", 1, b"\x66\x89\x08"),
            ("movah", 1, b"\x88\x20"), ("xchg", 2, b"\x87\x08"),
            ("sib", 2, b"\x64\x89\x0c\x25\x00\x10\x00\x00"), ("disp8", 0, b"\xc6\x40\x10\xff"),
            ("rex", 2, b"\x4c\x89\x44\x24\x08"), ("rip", 2, b"\x89\x05\x10\x00\x00\x00")):
        yield name, bytes([mode]) + code


def gwalk():
    def mem(entries, size=0x6000):
        m = bytearray(size)
        for addr, val in entries.items():
            m[addr:addr + 8] = struct.pack("<Q", val)
        return bytes(m)
    regs = struct.pack("<QQQQQ", 0x80000001, 0x1000, 0x20, 0x500, 0x401234)
    yield "ia32e", regs + mem({0x1000: 0x2003, 0x2000: 0x3003, 0x3000 + 8 * 2: 0x4003,
                               0x4000 + 8 * 1: 0x5003})
    yield "ia32e-2m", regs + mem({0x1000: 0x2003, 0x2000: 0x3003, 0x3000 + 8 * 2: 0x200083})
    regs = struct.pack("<QQQQQ", 0x80000001, 0x1000, 0, 0, 0x401000)
    yield "32bit", regs + mem({0x1004: 0x2003, 0x2004: 0x3003})
    regs = struct.pack("<QQQQQ", 0x80000001, 0x1000, 0x20, 0, 0x401000)
    yield "pae", regs + mem({0x1000: 0x2001, 0x2000 + 8 * 2: 0x3003, 0x3000 + 8: 0x4003})
    yield "off", struct.pack("<QQQQQ", 1, 0, 0, 0, 0x1234)


def msg(mid, seq, body=b""):
    return struct.pack("<HHI", mid, len(body), seq) + body


def chunks(data, step=37):
    out = b""
    for i in range(0, len(data), step):
        c = data[i:i + step]
        out += bytes([len(c) - 1]) + c
    return out


def kvmi_handshake():
    cmds = msg(2, 1) + msg(5, 2) + msg(3, 3, struct.pack("<HHI", 13, 0, 0))
    reply = struct.pack("<I", 24) + bytes(20)
    yield "keyless-raw", bytes([0, 0]) + chunks(reply + cmds)
    yield "keyed-wrong", bytes([1, 0]) + chunks(reply + cmds)
    yield "keyless-long", bytes([0, 0]) + chunks(struct.pack("<I", 300) + bytes(296) + cmds)
    yield "short-size", bytes([1, 0]) + chunks(struct.pack("<I", 8) + bytes(4))
    yield "keyed-proof", bytes([3, 8]) + chunks(cmds)
    yield "keyless-proof", bytes([2, 0]) + chunks(cmds)


TARGETS = {"pci_guard": pci_guard, "config": config, "insn": insn, "gwalk": gwalk,
           "kvmi_handshake": kvmi_handshake}


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in TARGETS:
        print(__doc__ + "targets: " + " ".join(TARGETS), file=sys.stderr)
        return 2
    os.makedirs(sys.argv[2], exist_ok=True)
    for name, data in TARGETS[sys.argv[1]]():
        with open(os.path.join(sys.argv[2], name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
