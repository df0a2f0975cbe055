"""Host tests of scripts/serial_sink.py: the live log, and --input (bytes
appended to a file reach the emulator's COM1 once each, in order), which
test/emu/linux_run.py uses to release a guest that waits for the host.
Run by `make test-net-host`."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SINK = os.path.join(TOP, "scripts", "serial_sink.py")


def start(tmp_path, *extra):
    port_file = tmp_path / "port"
    log = tmp_path / "serial.log"
    p = subprocess.Popen([sys.executable, SINK, "--port-file", str(port_file), "--log", str(log),
                          *extra])
    end = time.monotonic() + 30
    while not port_file.exists():
        assert p.poll() is None and time.monotonic() < end, "the sink gave no port"
        time.sleep(0.05)
    emu = socket.create_connection(("127.0.0.1", int(port_file.read_text())), timeout=30)
    return p, emu, log


def recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "the sink closed the connection"
        out += chunk
    return out


def test_input_forwarded_once_in_order(tmp_path):
    inp = tmp_path / "input"
    inp.write_bytes(b"")
    p, emu, log = start(tmp_path, "--input", str(inp))
    try:
        emu.sendall(b"LINUX: holding for the host\r\n")
        with open(inp, "ab") as f:
            f.write(b"hvtest")
        assert recv_exact(emu, 6) == b"hvtest"
        with open(inp, "ab") as f:
            f.write(b"-go\n")
        assert recv_exact(emu, 4) == b"-go\n"
        emu.sendall(b"released\r\n")
    finally:
        emu.close()
    assert p.wait(timeout=30) == 0
    assert log.read_bytes() == b"LINUX: holding for the host\r\nreleased\r\n"


def test_input_file_made_later(tmp_path):
    inp = tmp_path / "later"
    p, emu, _ = start(tmp_path, "--input", str(inp))
    try:
        inp.write_bytes(b"x\n")
        assert recv_exact(emu, 2) == b"x\n"
    finally:
        emu.close()
    assert p.wait(timeout=30) == 0


def test_shell_key_and_stamps(tmp_path):
    stamps = tmp_path / "stamps"
    p, emu, log = start(tmp_path, "--skip-shell-delay", "--stamps", str(stamps))
    try:
        emu.sendall(b"Press ESC in 5 seconds to skip startup.nsh\r\nnext line\r\n")
        assert recv_exact(emu, 1) == b" "
    finally:
        emu.close()
    assert p.wait(timeout=30) == 0
    lines = stamps.read_text().splitlines()
    assert [ln.split(None, 1)[1] for ln in lines] == [
        "Press ESC in 5 seconds to skip startup.nsh", "next line"]
    assert log.read_bytes().endswith(b"next line\r\n")
