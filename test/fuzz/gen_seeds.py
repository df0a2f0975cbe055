#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_kvmi_rx: one file per interesting message
sequence (every command id, a pause + event reply, batches), encoded as the
target reads them: (length byte, chunk) pairs."""
import os
import struct
import sys


def msg(mid, seq, body=b""):
    return struct.pack("<HHI", mid, len(body), seq) + body


def vh(vcpu=0):
    return struct.pack("<HHI", vcpu, 0, 0)


def chunks(data, step=37):
    out = b""
    for i in range(0, len(data), step):
        c = data[i:i + step]
        out += bytes([len(c) - 1]) + c
    return out


def seeds():
    yield "version", msg(2, 1)
    yield "checks", msg(3, 1, struct.pack("<HHI", 13, 0, 0)) + msg(4, 2, struct.pack("<HHI", 6, 0, 0))
    yield "info", msg(5, 1) + msg(29, 2) + msg(6, 3, vh(1))
    yield "regs", msg(13, 1, vh() + struct.pack("<HHI", 2, 0, 0) + struct.pack("<II", 0x174, 0xc0000080))
    yield "setregs", msg(14, 1, vh() + bytes(144))
    yield "cpuid", msg(15, 1, vh() + struct.pack("<II", 1, 0)) + msg(16, 2, vh()) + msg(23, 3, vh() + struct.pack("<Q", 0x1000))
    yield "phys", msg(17, 1, struct.pack("<QQ", 0x1000, 16)) + msg(18, 2, struct.pack("<QQ", 0x2000, 4) + b"abcd")
    yield "access", msg(21, 1, struct.pack("<HHI", 0, 2, 0) + struct.pack("<QBBHI", 0x1000, 1, 0, 0, 0) + struct.pack("<QBBHI", 0x2000, 5, 0, 0, 0)) + msg(20, 2, struct.pack("<HHI", 0, 2, 0) + struct.pack("<QQ", 0x1000, 0x2000))
    yield "controls", (msg(9, 1, vh() + struct.pack("<HBBI", 1, 1, 0, 0)) + msg(10, 2, vh() + struct.pack("<BBHI", 1, 0, 0, 3))
                       + msg(11, 3, vh() + struct.pack("<BBHI", 1, 0, 0, 0xc0000081)) + msg(9, 4, vh() + struct.pack("<HBBI", 6, 1, 0, 0)))
    yield "vmevents", msg(8, 1, struct.pack("<HBBI", 0, 1, 0, 0)) + msg(8, 2, struct.pack("<HBBI", 9, 1, 0, 0))
    yield "inject", msg(19, 1, vh() + struct.pack("<BBHIQ", 14, 1, 0, 2, 0x1234))
    yield "spp", msg(24, 1, bytes(8)) + msg(25, 2, struct.pack("<HHIQ", 0, 1, 0, 0)) + msg(22, 3)
    batch = msg(27, 1, struct.pack("<BBHI", 0, 1, 0, 0))
    for v in range(3):
        batch += msg(7, 2 + v, vh(v) + struct.pack("<BBHI", 1, 0, 0, 0))
    batch += msg(27, 9, struct.pack("<BBHI", 1, 1, 0, 0))
    yield "pauseall", batch
    # pause then the reply to event seq 1, with a SET_REGISTERS in between
    yield "pausereply", (msg(7, 1, vh() + struct.pack("<BBHI", 1, 0, 0, 0)) + msg(14, 2, vh() + bytes(144))
                         + msg(0, 1, vh() + struct.pack("<BBHI", 0, 10, 0, 0)))
    yield "crreply", msg(0, 1, vh() + struct.pack("<BBHI", 0, 1, 0, 0) + struct.pack("<Q", 7))
    yield "pfreply", msg(0, 2, vh() + struct.pack("<BBHI", 1, 6, 0, 0) + struct.pack("<QIBBH", 0, 4, 1, 0, 0) + bytes(256))
    yield "unsupported", msg(1, 1) + msg(12, 2) + msg(28, 3, b"xyz") + msg(500, 4)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(chunks(data))


if __name__ == "__main__":
    main()
