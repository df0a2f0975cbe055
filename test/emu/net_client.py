#!/usr/bin/env python3
"""Host side of the hypervisor's diagnostic service (net/diag.c).

A tiny line protocol over TCP: the hypervisor greets with "hv-diag 1", then
answers `ping`, `status`, `echo N`, `sink N`, `source N` and `quit`
(docs/network.md).  Used by the network scenarios and benchmarks
(test/emu/net_run.py) and by people:

    python3 test/emu/net_client.py 127.0.0.1:7777 status
    python3 test/emu/net_client.py 127.0.0.1:7777 echo 16777216
    python3 test/emu/net_client.py 127.0.0.1:7777 quit
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time


def pattern(start: int, n: int) -> bytes:
    """Bytes start..start+n of the hypervisor's `source` pattern (diag_pattern())."""
    return bytes(((i * 7 + (i >> 8)) & 0xFF) for i in range(start, start + n))


class DiagError(Exception):
    pass


class Diag:
    """One diag connection; `sock` is connected (or accepted) already."""

    def __init__(self, sock: socket.socket, timeout: float = 120.0):
        self.s = sock
        self.s.settimeout(timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        greet = self.line()
        if greet != "hv-diag 1":
            raise DiagError(f"unexpected greeting {greet!r}")

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 120.0) -> "Diag":
        return cls(socket.create_connection((host, port), timeout=timeout), timeout)

    def _fill(self) -> None:
        chunk = self.s.recv(1 << 16)
        if not chunk:
            raise DiagError("connection closed by the hypervisor")
        self.buf += chunk

    def line(self) -> str:
        while b"\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\n")
        text = bytes(self.buf[:i]).decode("ascii", "replace")
        del self.buf[: i + 1]
        return text

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def cmd(self, text: str) -> str:
        self.s.sendall(text.encode() + b"\n")
        return self.line()

    def status(self) -> dict[str, str]:
        reply = self.cmd("status")
        if not reply.startswith("status "):
            raise DiagError(f"bad status reply {reply!r}")
        return dict(kv.split("=", 1) for kv in reply.split()[1:] if "=" in kv)

    def ping(self, rounds: int) -> list[float]:
        """Round-trip times in seconds of `rounds` ping/pong exchanges."""
        out = []
        for _ in range(rounds):
            t = time.perf_counter()
            if self.cmd("ping") != "pong":
                raise DiagError("ping got no pong")
            out.append(time.perf_counter() - t)
        return out

    def echo(self, n: int, chunk: int = 1 << 16) -> float:
        """Sends n random bytes and checks every byte comes back; returns seconds."""
        data = os.urandom(n)
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                self.s.sendall(f"echo {n}\n".encode())
                for off in range(0, n, chunk):
                    self.s.sendall(data[off:off + chunk])
            except BaseException as e:  # reported by the reader's thread
                errors.append(e)

        t = time.perf_counter()
        w = threading.Thread(target=writer)
        w.start()
        got = 0
        while got < n:
            part = self.exact(min(chunk, n - got))
            if part != data[got:got + len(part)]:
                bad = next(i for i, (a, b) in enumerate(zip(part, data[got:])) if a != b)
                w.join()
                raise DiagError(f"echo: byte {got + bad} differs")
            got += len(part)
        w.join()
        if errors:
            raise DiagError(f"echo: send failed: {errors[0]}")
        return time.perf_counter() - t

    def sink(self, n: int, chunk: int = 1 << 16) -> float:
        """Host -> hypervisor: n bytes, until its "ok N"; returns seconds."""
        block = os.urandom(chunk)
        t = time.perf_counter()
        self.s.sendall(f"sink {n}\n".encode())
        left = n
        while left:
            k = min(left, chunk)
            self.s.sendall(block[:k])
            left -= k
        reply = self.line()
        if reply != f"ok {n}":
            raise DiagError(f"sink: unexpected reply {reply!r}")
        return time.perf_counter() - t

    def source(self, n: int, chunk: int = 1 << 16) -> float:
        """Hypervisor -> host: n pattern bytes, each checked; returns seconds."""
        t = time.perf_counter()
        self.s.sendall(f"source {n}\n".encode())
        got = 0
        while got < n:
            part = self.exact(min(chunk, n - got))
            if part != pattern(got, len(part)):
                raise DiagError(f"source: bytes {got}..{got + len(part)} differ")
            got += len(part)
        return time.perf_counter() - t

    def quit(self) -> None:
        reply = self.cmd("quit")
        if reply != "bye":
            raise DiagError(f"quit: unexpected reply {reply!r}")
        # The hypervisor closes after "bye".
        try:
            while self.s.recv(4096):
                pass
        except OSError:
            pass
        self.s.close()


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = argv[1].rsplit(":", 1)
    d = Diag.connect(host, int(port))
    what, args = argv[2], argv[3:]
    if what == "status":
        print(d.cmd("status"))
    elif what == "ping":
        rtt = d.ping(int(args[0]) if args else 10)
        print(f"ping: {len(rtt)} rounds, median {sorted(rtt)[len(rtt) // 2] * 1e3:.2f} ms")
    elif what in ("echo", "sink", "source"):
        n = int(args[0])
        secs = getattr(d, what)(n)
        print(f"{what} {n} bytes: {secs:.2f} s, {n / secs / 1e6:.2f} MB/s, all bytes checked")
    elif what == "quit":
        d.quit()
        print("bye")
    else:
        print(f"unknown command {what}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
