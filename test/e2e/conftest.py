"""End-to-end fixtures: the Python client against build/kvmi-sim.

Every test gets its own listener on an ephemeral port and its own
kvmi-sim dialing it.  Nothing waits for a fixed time: each wait is for a
condition, bounded by a generous timeout (T) that only matters when
something is broken.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))

from kvmi import Listener  # noqa: E402

SIM = os.environ.get("KVMI_SIM", os.path.join(ROOT, "build", "kvmi-sim"))
KVMICTL = os.path.join(ROOT, "client", "kvmictl")
T = 30.0  # bound for any single wait; never reached when things work
VCPUS = 2
MEM_MIB = 16


def wait_until(pred, timeout=T, what="condition"):
    """Polls pred() until it is true; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Sim:
    """One kvmi-sim process."""

    def __init__(self, tmp_path, *args, port=None, listen_port=None, vcpus=VCPUS,
                 mem=MEM_MIB):
        if not os.access(SIM, os.X_OK):
            pytest.fail(f"{SIM} is missing: run `make` first")
        self.logpath = tmp_path / f"kvmi-sim-{time.monotonic_ns()}.log"
        self.log = open(self.logpath, "wb")
        where = (["--connect", f"127.0.0.1:{port}"] if port is not None
                 else ["--listen", str(listen_port)])
        self.argv = [SIM, *where, "--vcpus", str(vcpus), "--mem", str(mem), *args]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.vcpus = vcpus
        self.mem = mem

    def text(self) -> str:
        self.log.flush()
        return self.logpath.read_text(errors="replace")

    def wait_ready(self):
        wait_until(lambda: "kvmi-sim: ready" in self.text() or self.proc.poll() is not None,
                   what="kvmi-sim: ready")
        assert self.proc.poll() is None, self.text()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(T)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(T)
                raise AssertionError("kvmi-sim did not exit on SIGTERM\n" + self.text()[-4000:])
        self.log.close()
        return self.proc.returncode


class Env:
    """A listener, a kvmi-sim dialing it, and the current session (dom)."""

    def __init__(self, tmp_path, *sim_args, key=None, sim_key=None, vcpus=VCPUS,
                 mem=MEM_MIB):
        self.lst = Listener(key=key)
        extra = list(sim_args)
        if sim_key is not None:
            extra += ["--key", sim_key]
        self.sim = Sim(tmp_path, *extra, port=self.lst.port, vcpus=vcpus, mem=mem)
        self.dom = None

    def accept(self, **kw):
        """Waits for the sim to (re)connect and returns the new session."""
        self.dom = self.lst.accept(timeout=T, **kw)
        return self.dom

    def close(self):
        if self.dom is not None:
            self.dom.close()
        rc = self.sim.stop()
        self.lst.close()
        return rc


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    e.accept()
    yield e
    rc = e.close()
    assert rc == 0, "kvmi-sim exit status %s\n%s" % (rc, e.sim.text()[-4000:])


@pytest.fixture
def make_env(tmp_path):
    made = []

    def make(*args, accept=True, **kw):
        e = Env(tmp_path, *args, **kw)
        made.append(e)
        if accept:
            e.accept()
        return e

    yield make
    for e in made:
        e.close()
