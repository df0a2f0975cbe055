"""Host tests of test/linux/diagd.c, the Linux peer of make bench-net: the
same diag protocol as net/diag.c, checked with the same client
(test/emu/net_client.py) the bench uses.  Run by `make test-net-host`;
DIAGD names the binary (built from diagd.c with the guest's flags)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emu"))
from net_client import Diag, pattern  # noqa: E402

DIAGD = os.environ.get("DIAGD", "build/linux-host/diagd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    if not os.path.exists(DIAGD):
        pytest.skip(f"{DIAGD} not built (make test-net-host builds it)")
    port = free_port()
    # "lo" for the counters: the interface is only read from sysfs.
    p = subprocess.Popen([DIAGD, str(port), "lo"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith(f"diagd: serving the diag protocol on TCP port {port}")
    yield p, port
    if p.poll() is None:
        p.kill()
    p.wait()
    p.stdout.close()


def test_commands_and_quit(server):
    p, port = server
    d = Diag.connect("127.0.0.1", port, timeout=30)  # checks the greeting "hv-diag 1"
    st = d.status()
    assert st["peer"] == "linux" and st["ip"] == "127.0.0.1"
    for k in ("rx", "tx"):
        frames, _, nbytes = st[k].partition("/")
        assert frames.isdigit() and nbytes.isdigit()
    assert int(st["cpu_busy_ms"]) > 0
    assert d.ping(3) and len(d.ping(5)) == 5
    assert d.cmd("frobnicate 3") == "error unknown command 'frobnicate'"
    assert d.cmd("echo") == "error unknown command 'echo'"  # no count
    assert d.cmd("sink 0") == "ok 0"
    d.quit()
    assert p.wait(timeout=30) == 0


def test_transfers_checked(server):
    _, port = server
    d = Diag.connect("127.0.0.1", port, timeout=30)
    d.echo(3 * 65536 + 17)
    d.sink(1 << 20)
    d.source(70000)  # every byte against diag_pattern()
    assert d.cmd("ping") == "pong"


def test_data_in_the_command_segment(server):
    """A command and the start of its data in one write: the bytes after the
    newline belong to the transfer, and what follows the transfer is the
    next command."""
    _, port = server
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    d = Diag(s, 30)
    s.sendall(b"echo 5\r\nhelloping\nsource 300\nping\n")
    assert d.exact(5) == b"hello"
    assert d.line() == "pong"
    assert d.exact(300) == pattern(0, 300)
    assert d.line() == "pong"


def test_next_connection_after_a_drop(server):
    _, port = server
    d = Diag.connect("127.0.0.1", port, timeout=30)
    d.s.sendall(b"sink 100\nabc")  # ends in the middle of the sink
    d.s.close()
    d = Diag.connect("127.0.0.1", port, timeout=30)
    assert d.cmd("ping") == "pong"
    d.quit()


def test_pattern_matches_the_hypervisors():
    # net/net_internal.h: diag_pattern(i) = (i * 7 + (i >> 8)) & 0xff
    assert pattern(0, 4) == bytes([0, 7, 14, 21])
    assert pattern(256, 2) == bytes([(256 * 7 + 1) & 255, (257 * 7 + 1) & 255])


def test_bad_port_refused():
    if not os.path.exists(DIAGD):
        pytest.skip(f"{DIAGD} not built")
    r = subprocess.run([DIAGD, "70000"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "bad port" in r.stderr
