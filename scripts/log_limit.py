#!/usr/bin/env python3
"""Bounded copy of a stream for scripts/emu.sh: keeps the head and the tail.

Bochs logs every unhandled I/O port access; a guest stuck in such a loop made
1.3 GB of bochs.log in 70 s here.  The launcher points Bochs's `log:` at a FIFO
and runs this on the other end: it writes the first --head bytes to --out,
keeps the last --tail bytes in memory, and at end of input appends a note of
how much it dropped followed by that tail.  It always reads on, so the writer
never blocks or sees a broken pipe.
"""
import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in", dest="src", required=True, help="input path (a FIFO)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--head", type=int, default=8 << 20)
    ap.add_argument("--tail", type=int, default=8 << 20)
    args = ap.parse_args()

    written = dropped = 0
    tail = bytearray()
    with open(args.src, "rb", buffering=0) as src, open(args.out, "wb") as out:
        while True:
            chunk = src.read(1 << 16)
            if not chunk:
                break
            if written < args.head:
                take = chunk[: args.head - written]
                out.write(take)
                out.flush()
                written += len(take)
                chunk = chunk[len(take):]
            if chunk:
                tail += chunk
                if len(tail) > args.tail:
                    cut = len(tail) - args.tail
                    dropped += cut
                    del tail[:cut]
        if dropped:
            out.write(f"\n[log_limit: {dropped} bytes dropped here]\n".encode())
        out.write(tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
