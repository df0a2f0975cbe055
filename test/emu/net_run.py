#!/usr/bin/env python3
"""Network scenarios and benchmarks of the hypervisor's own stack (issue 4).

Each run boots hv.efi with `net_selftest = yes` in Bochs (tigerlake, one
CPU, an e1000 on slirp), waits on the live serial log until the hypervisor
has its DHCP address, then talks to its diagnostic service from this host
(test/emu/net_client.py) through slirp, and finally sends "quit": the core
stops the NIC, returns to the firmware, the guest agent runs and powers the
machine off.  Asserted on both sides: the host checks every byte it gets
back, the serial log must show the hypervisor's side of the story.

Bochs runs one at a time (one host core each; the machine is shared).

    python3 test/emu/net_run.py             # every scenario
    python3 test/emu/net_run.py -k connect  # by name
    python3 test/emu/net_run.py --bench     # the benchmark run (docs/benchmarks.md)

The benchmark runs the same host measurement (measure()) against the
hypervisor (Bochs corei7_haswell_4770 here) and then against a bare Linux
guest on the same model, CPU count and e1000 serving the same protocol
(test/linux/diagd.c; booted by run.py with a host hook), and prints both
columns side by side; without the Linux guest's files it says why it
skips that column.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from typing import Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from net_client import Diag, DiagError  # noqa: E402
import run  # noqa: E402
from run import BUILD, TOP, serial_text  # noqa: E402

sys.path.insert(0, os.path.join(TOP, "client", "python"))
from kvmi import wire as w  # noqa: E402

MAC = "52:54:00:12:34:56"
MIB = 1 << 20


def free_port() -> int:
    """A free local TCP port, outside Linux's ephemeral range (32768+) so
    that no outgoing connection takes it between this check and Bochs's bind."""
    import random
    for _ in range(100):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port in 20000-32000")


@dataclasses.dataclass
class Run:
    """What a scenario's host side gets: forwarded ports, the serial log, notes."""
    name: str
    work: str
    serial: str
    fwd: dict[int, int]  # guest port -> host port
    notes: list[str] = dataclasses.field(default_factory=list)
    listener: Optional[socket.socket] = None  # for scenarios the hypervisor dials

    def text(self) -> str:
        return serial_text(self.serial)


@dataclasses.dataclass
class Scenario:
    name: str
    doc: str
    conf: str
    guest_ports: list[int]
    host: Callable[[Run], None]  # raises on failure
    expect: list[str]            # serial patterns, in order
    forbid: list[str] = dataclasses.field(default_factory=list)
    timeout: int = 400
    pktlog: bool = False
    cpus: int = 1
    agent_args: str = "cpus=1"
    # Serial patterns that must all be there before the host side starts.
    ready: list[str] = dataclasses.field(
        default_factory=lambda: [r"net: address \d", r"net: self-test: serving"])
    # The guest keeps running (no power-off): stop the emulator once the host
    # side is done and judge by the serial log alone.
    stop_after_host: bool = False
    model: Optional[str] = None  # Bochs CPU model; None: emu.sh's default (tigerlake)
    # hv.conf gains `debug_hypercalls = yes` (run.with_debug); False: the product's default.
    debug: bool = True
    esp_args: list[str] = dataclasses.field(default_factory=list)  # more mkesp.sh options
    # Seconds the launcher waits after the result line for the power-off (emu.sh --grace);
    # None: its default.
    grace: Optional[int] = None


# ---- host sides ----------------------------------------------------------------

def host_listen_16m(r: Run) -> None:
    d = Diag.connect("127.0.0.1", r.fwd[7777])
    st = d.status()
    if st.get("ip") != "10.0.2.15":
        raise DiagError(f"status reports ip {st.get('ip')}, expected the DHCP lease 10.0.2.15")
    rtt = d.ping(20)
    r.notes.append(f"ping x20 median {statistics.median(rtt) * 1e3:.1f} ms")
    n = 16 * MIB
    secs = d.echo(n)
    r.notes.append(f"echo {n} B both ways in {secs:.1f} s ({n / secs / 1e6:.2f} MB/s), "
                   "every byte checked")
    secs = d.source(MIB)
    r.notes.append(f"source 1 MiB checked in {secs:.1f} s")
    st = d.status()
    for k in ("rx_err", "hw_crc"):
        if st.get(k) != "0":
            raise DiagError(f"status {k}={st.get(k)} after the transfer")
    r.notes.append("hv counters: " + " ".join(f"{k}={st[k]}" for k in
                                             ("rx", "tx", "rx_drop", "tx_busy", "hw_missed")))
    d.quit()


def host_connect(r: Run) -> None:
    """The hypervisor dials 10.0.2.2:PORT, which slirp maps to this host's
    127.0.0.1:PORT.  The first connection is closed at once by us: the
    hypervisor must dial again (reconnect with backoff) and serve the second."""
    lst = r.listener
    lst.settimeout(180)
    c1, a1 = lst.accept()
    d1 = Diag(c1)
    r.notes.append(f"1st connection from {a1[0]}:{a1[1]} greeted; closing it")
    d1.s.close()
    t = time.monotonic()
    c2, _ = lst.accept()
    r.notes.append(f"redialled after {time.monotonic() - t:.1f} s")
    d2 = Diag(c2)
    st = d2.status()
    if st.get("ip") != "10.0.2.15":
        raise DiagError(f"status reports ip {st.get('ip')}")
    secs = d2.echo(2 * MIB)
    r.notes.append(f"echo 2 MiB over the dialled connection in {secs:.1f} s, checked")
    d2.quit()
    lst.close()


def host_under_vmx(r: Run) -> None:
    """The firmware runs as a guest on every CPU (the agent has passed and
    the UEFI shell idles); the NIC is served only from the vCPUs'
    preemption-timer exits calling service_poll()."""
    d = Diag.connect("127.0.0.1", r.fwd[7777])
    st = d.status()
    if st.get("ip") != "10.0.2.15":
        raise DiagError(f"status reports ip {st.get('ip')}")
    rtt = d.ping(20)
    r.notes.append(f"ping x20 median {statistics.median(rtt) * 1e3:.1f} ms (guest running)")
    n = 4 * MIB
    secs = d.echo(n)
    r.notes.append(f"echo 4 MiB checked in {secs:.1f} s ({n / secs / 1e6:.2f} MB/s) "
                   "while the firmware runs as guest")
    d.source(MIB)
    st = d.status()
    r.notes.append(f"hv polls={st.get('polls')} rx_drop={st.get('rx_drop')} "
                   f"hw_missed={st.get('hw_missed')}")
    d.s.close()


# The bench's measurement, the same for every peer (docs/benchmarks.md):
# sizes and rounds are fixed here so both columns of the table mean the same.
BENCH_PINGS, BENCH_WARMUP, BENCH_SIZE = 200, 10, 8 * MIB
BENCH_MODEL = "corei7_haswell_4770"  # the model the Linux peer can boot on
BENCH_IPS = 100_000_000  # scripts/emu.sh's default --ips, used by both runs
BENCH_RESULTS: dict[str, dict[str, str]] = {}  # peer -> measure -> value


def measure(d: Diag, peer: str, notes: list[str]) -> None:
    """Ping round trips and sink/source/echo throughput against one diag
    server (the hypervisor's or Linux's diagd), into BENCH_RESULTS[peer].
    Where the server reports the hypervisor's busy-poll counters, also the
    TSC ticks (= emulated instructions) per frame."""
    d.ping(BENCH_WARMUP)  # warm up ARP and caches
    rtt = sorted(d.ping(BENCH_PINGS))
    n = BENCH_SIZE

    def frames(st: dict[str, str]) -> tuple[int, int, int]:
        return (int(st["rx"].split("/")[0]) + int(st["tx"].split("/")[0]),
                int(st.get("busy_tsc", 0)), int(st.get("busy_polls", 0)))

    st0 = d.status()
    t_sink = d.sink(n)
    st1 = d.status()
    t_src = d.source(n)
    st2 = d.status()
    t_echo = d.echo(n)
    st = d.status()
    d.quit()
    for k in ("rx_err", "hw_crc"):
        if st.get(k, "0") != "0":
            raise DiagError(f"{peer}: status {k}={st.get(k)} after the transfers")
    res = {
        "ping round trip median (ms)": f"{statistics.median(rtt) * 1e3:.2f}",
        "ping round trip p90 (ms)": f"{rtt[int(len(rtt) * 0.9)] * 1e3:.2f}",
        f"host -> peer (sink {n >> 20} MiB), MB/s": f"{n / t_sink / 1e6:.2f}",
        f"peer -> host (source {n >> 20} MiB), MB/s": f"{n / t_src / 1e6:.2f}",
        f"echo {n >> 20} MiB both ways, MB/s each way": f"{n / t_echo / 1e6:.2f}",
        "frames rx+tx during sink / source / echo": " / ".join(
            str(frames(b)[0] - frames(a)[0]) for a, b in ((st0, st1), (st1, st2), (st2, st))),
        "rx_drop / tx_busy / hw_missed": " / ".join(
            st.get(k, "-") for k in ("rx_drop", "tx_busy", "hw_missed")),
    }
    # Emulated instructions per frame (rx + tx), load-independent: with
    # clock sync=none one TSC tick is one emulated instruction and one
    # emulated second is BENCH_IPS of them.  The hypervisor counts the TSC
    # of its polls that moved frames (busy_tsc); Linux's diagd reports the
    # non-idle CPU time of the whole kernel and itself (cpu_busy_ms).
    per = []
    for a, b in ((st0, st1), (st1, st2), (st2, st)):
        df = max(1, frames(b)[0] - frames(a)[0])
        if "busy_tsc" in st:
            per.append((frames(b)[1] - frames(a)[1]) / df)
        elif "cpu_busy_ms" in st:
            per.append((int(b["cpu_busy_ms"]) - int(a["cpu_busy_ms"])) * BENCH_IPS / 1000 / df)
    if per:
        res["instructions per frame, sink / source / echo"] = " / ".join(f"{x:.0f}" for x in per)
    if "busy_tsc" in st:
        for name, a, b in (("sink", st0, st1), ("source", st1, st2), ("echo", st2, st)):
            (fa, ta, pa), (fb, tb, pb) = frames(a), frames(b)
            res[f"hv frames per busy poll, {name}"] = f"{(fb - fa) / max(1, pb - pa):.1f}"
    BENCH_RESULTS[peer] = res
    for k, v in res.items():
        notes.append(f"{k}: {v}")


def host_bench(r: Run) -> None:
    measure(Diag.connect("127.0.0.1", r.fwd[7777]), "hv", r.notes)


COMMON_EXPECT = [
    r"hv: \[cpu0\] NIC 00:02\.0 8086:100e claimed for the hypervisor",
    r"hv: \[cpu0\] net: NIC 00:02\.0 8086:100e \(82540EM\) BAR0 0x[0-9a-f]+",
    r"hv: \[cpu0\] net: 82540EM MAC 52:54:00:12:34:56, link up",
]
END_EXPECT = [
    r"hv: \[cpu0\] net: self-test ended by quit: ip=10\.0\.2\.15 .* rx_err=0 ",
    r"hv: \[cpu0\] net: NIC stopped, bus mastering off",
    r"hv: \[cpu0\] core returned to loader: ok",
    r"HVTEST-RESULT: PASS",
]
FORBID = [r"HVTEST-RESULT: FAIL", r"panic", r"lwIP assertion", r"ended by its time limit"]

SCENARIOS = [
    Scenario(
        name="net-listen-16m",
        doc="DHCP lease 10.0.2.15; a host process exchanges 16 MiB with the diag "
        "service through the e1000 and checks every byte; ARP answered (pktlog)",
        conf="diag_port = 7777\nnet_selftest = yes\nlisten = 4444\n",
        guest_ports=[7777],
        host=host_listen_16m,
        expect=COMMON_EXPECT + [
            r"net: listening on TCP port 7777",
            r"net: address 10\.0\.2\.15 netmask 255\.255\.255\.0 gateway 10\.0\.2\.2 \(dhcp\)",
            r"net: stream port 7777: connected to 10\.0\.2\.2:\d+",
        ] + END_EXPECT,
        forbid=FORBID,
        pktlog=True,
    ),
    Scenario(
        name="net-connect",
        doc="static address; connect = 10.0.2.2:PORT reaches a listener on the host's "
        "127.0.0.1:PORT through slirp; after the host drops it, the hypervisor redials",
        conf="net_selftest = yes\nconnect = 10.0.2.2:{port}\nreconnect_ms = 500\n"
        "ip = 10.0.2.15/24\ngateway = 10.0.2.2\n",
        guest_ports=[],
        host=host_connect,
        expect=COMMON_EXPECT + [
            r"net: address 10\.0\.2\.15 netmask 255\.255\.255\.0 gateway 10\.0\.2\.2 \(static\)",
            r"net: will connect to 10\.0\.2\.2:\d+",
            r"net: stream port \d+: connected to 10\.0\.2\.2:\d+",
            r"net: stream port \d+: connection ended \(closed by peer\)",
            r"net: stream port \d+: connected to 10\.0\.2\.2:\d+",
        ] + END_EXPECT,
        forbid=FORBID,
    ),
]

SCENARIOS.append(Scenario(
    name="net-under-vmx",
    doc="no self-test: every CPU runs the firmware as a guest, and the NIC is served "
    "from the vCPUs' preemption-timer ticks; 4 MiB echo checked while the guest runs",
    conf="diag_port = 7777\n",
    guest_ports=[7777],
    host=host_under_vmx,
    cpus=2,
    agent_args="cpus=2",
    # (the DHCP line is logged from a vCPU's tick and may interleave with
    # another CPU's line on COM1, so the address is checked through status)
    ready=[r"HVTEST-RESULT: PASS"],
    stop_after_host=True,
    expect=COMMON_EXPECT + [
        r"net: listening on TCP port 7777",
        r"HVTEST-RESULT: PASS",
        r"net: stream port 7777: connected to 10\.0\.2\.2:\d+",
    ],
    forbid=FORBID + [r"net: self-test", r"VM-entry failure", r"triple fault"],
))

BENCH = Scenario(
    name="bench-net",
    doc="ping round trips and TCP throughput of the hypervisor's stack",
    conf="diag_port = 7777\nnet_selftest = yes\n",
    guest_ports=[7777],
    host=host_bench,
    expect=[r"HVTEST-RESULT: PASS"],
    forbid=FORBID,
    model=BENCH_MODEL,
)

# The Linux peer: bare Linux (no hv.efi) on the same Bochs model, CPU count
# and e1000, its own driver (e1000.ko) and TCP stack serving the same diag
# protocol (test/linux/diagd.c, init.sh hvtest.net=serve).
LINUX_SERVING = r"LINUX: net serving diag on TCP port 7777"


def host_bench_linux(h) -> None:
    h.wait_for(LINUX_SERVING, h.timeout)
    measure(Diag.connect("127.0.0.1", h.fwd[7777]), "linux", h.notes)


def linux_peer(timeout: int):
    """The run.py Scenario of the Linux peer, or a reason it cannot run."""
    import linux_run
    import run
    missing = [p for p in (linux_run.KERNEL, linux_run.INITRD, linux_run.ACPITAB)
               if not os.path.exists(p)]
    if missing:
        return f"missing {', '.join(missing)} (make linux-guest)"
    # lxboot.efi (the kernel without its stub's XZ pass) where it was built:
    # minutes less of Bochs, and the kernel that serves is the same.
    boot = "lxboot" if all(os.path.exists(p) for p in (linux_run.LXBOOT, linux_run.LXK)) \
        else "stub"
    opts = ("hvtest.cpus=1 hvtest.vmx=1 hvtest.e1000=1 hvtest.off=acpi hvtest.net=serve")
    return run.Scenario(
        name="bench-net-linux", doc=f"Linux's e1000 driver and stack serving the diag bench "
        f"(kernel started by {boot})",
        model=BENCH_MODEL, cpus=1, hv=False, agent=False, nic=True, guest_ports=[7777],
        timeout=timeout, esp_args=linux_run.esp_args(opts, boot), host=host_bench_linux,
        expect=[r"LINUX: net eth0 52:54:00:12:34:56 driver e1000 carrier 1",
                LINUX_SERVING, r"diagd: connection ended by quit", r"HVTEST-RESULT: PASS",
                r"reboot: Power down"],
        forbid=linux_run.LINUX_BAD, launcher_says=r"powered off")


def wait_for(r: Run, pats: list[str], proc: subprocess.Popen, secs: float) -> Optional[str]:
    end = time.monotonic() + secs
    while time.monotonic() < end:
        text = r.text()
        if all(re.search(p, text) for p in pats):
            return None
        if proc.poll() is not None:
            return f"emulator ended (status {proc.returncode}) before {pats}"
        time.sleep(0.5)
    return f"{pats} not on the serial log within {secs:.0f} s"


class OwnListener:
    """The scenario's listener, taking only its own hypervisor's KVMI
    connections.  Another emulator still running (in its power-off grace, or
    another test run on this host) keeps redialling the port it was given;
    once that port is free again, this scenario's free_port() may pick it,
    and the stranger's session would be taken for ours (a test then writes
    into the wrong guest).  The hypervisor speaks first (its handshake
    struct names the VM: hv.conf's `name`), so a connection is peeked at and
    closed unless the name is ours."""

    def __init__(self, sock: socket.socket, name: str):
        self.sock, self.name = sock, name

    def __getattr__(self, attr):
        return getattr(self.sock, attr)

    def _name_of(self, conn: socket.socket) -> Optional[str]:
        conn.settimeout(30)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                head = conn.recv(w.HANDSHAKE_VM_SIZE, socket.MSG_PEEK)
                if not head:
                    return None
                if len(head) >= w.HANDSHAKE_VM_SIZE:
                    return w.unpack_vm_hello(head).name
                time.sleep(0.05)
        except OSError:
            return None
        return None

    def accept(self):
        while True:
            conn, peer = self.sock.accept()
            got = self._name_of(conn)
            if got == self.name:
                conn.settimeout(None)
                return conn, peer
            print(f"  (a connection from VM {got!r}, not {self.name!r}: closed)", flush=True)
            conn.close()


def run_scenario(sc: Scenario) -> tuple[bool, float, str]:
    work = os.path.join(BUILD, "emu", sc.name)
    os.makedirs(work, exist_ok=True)
    r = Run(sc.name, work, os.path.join(work, "serial.log"),
            {gp: free_port() for gp in sc.guest_ports})
    conf_text = sc.conf
    if "{port}" in conf_text:
        r.listener = socket.create_server(("127.0.0.1", free_port()))
        conf_text = conf_text.format(port=r.listener.getsockname()[1])
        name = re.search(r"^name = (\S+)$", conf_text, re.M)
        if name and not re.search(r"^net_selftest = yes", conf_text, re.M):
            r.listener = OwnListener(r.listener, name.group(1))
    conf = os.path.join(work, "hv.conf")
    with open(conf, "w") as f:
        f.write(f"# network scenario {sc.name}\n" + run.with_debug(conf_text, sc.debug))
    esp = os.path.join(work, "esp")
    mk_cmd = [os.path.join(TOP, "scripts/mkesp.sh"), "-o", esp, "--conf", conf,
              "--agent-args", sc.agent_args] + run.hv_for(run.with_debug(conf_text, sc.debug))
    if sc.stop_after_host:
        mk_cmd.append("--no-poweroff")
    mk_cmd += sc.esp_args
    mk = subprocess.run(mk_cmd, capture_output=True, text=True)
    if mk.returncode:
        return False, 0.0, f"mkesp.sh failed: {mk.stderr.strip()}"
    # Our own slirp config (hostfwd + packet log) replaces the launcher's: a
    # later e1000 line in the bochsrc overrides the earlier one's options.
    slirp = os.path.join(work, "slirp.conf")
    pktlog = os.path.join(work, "pktlog.txt")
    with open(slirp, "w") as f:
        f.write("# slirp config\n")
        for gp, hp in r.fwd.items():
            f.write(f"hostfwd = tcp:127.0.0.1:{hp}-:{gp}\n")
        if sc.pktlog:
            f.write(f"pktlog = {pktlog}\n")
    # A stale serial log from the last run would satisfy wait_for() before
    # the launcher truncates it.
    for stale in (pktlog, r.serial):
        if os.path.exists(stale):
            os.unlink(stale)
    # Run a snapshot of the launcher: bash reads a script as it goes, and
    # scripts/emu.sh may be edited in the shared tree while a run is on.
    snap = os.path.join(work, "launcher", "scripts")
    os.makedirs(snap, exist_ok=True)
    for f in os.listdir(os.path.join(TOP, "scripts")):
        if f.endswith((".sh", ".py")):
            shutil.copy2(os.path.join(TOP, "scripts", f), snap)
    cmd = [os.path.join(snap, "emu.sh"), "-q", "-c", str(sc.cpus), "-n", "-t", str(sc.timeout),
           *(["-m", sc.model] if sc.model else []),
           "-s", r.serial, "-w", os.path.join(work, "run"), "--mac", MAC,
           "--bochs-line", f"e1000: enabled=1, mac={MAC}, ethmod=slirp, script={slirp}", esp]
    if sc.stop_after_host:
        cmd[1:1] = ["--grace", str(sc.timeout)]  # we stop it, not the result line
    elif sc.grace is not None:
        cmd[1:1] = ["--grace", str(sc.grace)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors = []
    err = wait_for(r, sc.ready, proc, max(240, sc.timeout // 2))  # boots slow down with load
    if err:
        errors.append(err)
    else:
        try:
            sc.host(r)
        except (DiagError, OSError, AssertionError) as e:
            errors.append(f"host side: {e.__class__.__name__}: {e}")
    if sc.stop_after_host and proc.poll() is None:
        proc.terminate()  # the launcher's trap stops Bochs
    try:
        _, stderr = proc.communicate(timeout=sc.timeout + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        errors.append("launcher did not finish")
    took = time.monotonic() - t0
    summary = stderr.strip().splitlines()[-1] if stderr.strip() else "(no summary)"
    if proc.returncode != 0 and not sc.stop_after_host:
        errors.append(f"launcher exit status {proc.returncode}: {summary}")
    text = r.text()
    pos = 0
    for pat in sc.expect:
        m = re.compile(pat).search(text, pos)
        if not m:
            where = "after the previous match" if re.search(pat, text) else "anywhere"
            errors.append(f"expected /{pat}/ not found {where}")
            break
        pos = m.end()
    for pat in sc.forbid:
        m = re.search(pat, text)
        if m:
            errors.append(f"forbidden /{pat}/ found")
    if sc.pktlog:
        try:
            r.notes.append(arp_from_pktlog(pktlog))
        except DiagError as e:
            errors.append(str(e))
    report = summary + "".join(f"\n    {n}" for n in r.notes)
    if errors:
        tail = "\n".join("    | " + l for l in text.rstrip("\n").splitlines()[-20:])
        report += "\n  " + "\n  ".join(errors) + f"\n  last lines of {r.serial}:\n{tail}"
    return not errors, took, report


def arp_from_pktlog(path: str) -> str:
    """Counts what slirp's packet log shows besides IPv4 bulk: ARP requests
    and replies in each direction, ICMP frames.  The log (a hex dump of
    every frame, ~150 MB for the 16 MiB transfer) is deleted afterwards;
    the summary stays in the report.  Raises DiagError if the hypervisor
    never answered an ARP request from slirp."""
    counts: dict[str, int] = {}
    direction = None
    want_first_line = False
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("a packet from"):
                    direction = "hv->host" if "guest to host" in line else "host->hv"
                    want_first_line = True
                    frame = []
                    continue
                if want_first_line and re.match(r"^[0-9a-f]{2} ", line):
                    frame += line[:48].split()
                    if len(frame) < 32:
                        continue
                    want_first_line = False
                    ethertype = frame[12] + frame[13]
                    if ethertype == "0806":
                        op = "request" if frame[21] == "01" else "reply"
                        key = f"ARP {op} {direction}"
                    elif ethertype == "0800" and frame[23] == "01":
                        key = f"ICMP {direction}"
                    else:
                        continue
                    counts[key] = counts.get(key, 0) + 1
    except OSError:
        return "pktlog: none written"
    finally:
        if os.path.exists(path):
            os.unlink(path)
    summary = "pktlog: " + (", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
                            or "no ARP or ICMP frames")
    if counts.get("ARP request host->hv") and not counts.get("ARP reply hv->host"):
        raise DiagError(summary + ": slirp asked, the hypervisor never answered ARP")
    return summary


def print_bench(linux_skip: Optional[str]) -> None:
    """The comparison table: the same host measurement against both peers."""
    hv, lx = BENCH_RESULTS.get("hv", {}), BENCH_RESULTS.get("linux", {})
    print(f"\nbench-net: the same host measurement against two peers on Bochs {BENCH_MODEL},"
          f" 1 CPU, ips={BENCH_IPS} (clock sync=none), e1000 + slirp; host wall clock through"
          f" slirp's port forward; {BENCH_PINGS} pings after {BENCH_WARMUP}, "
          f"{BENCH_SIZE >> 20} MiB transfers, every received byte checked")
    print(f"  {'measure':46} {'hypervisor (lwIP)':>20} {'Linux 6.1 (e1000.ko)':>22}")
    for k in list(hv) + [k for k in lx if k not in hv]:
        print(f"  {k:46} {hv.get(k, '-'):>20} {lx.get(k, '-'):>22}")
    if linux_skip:
        print(f"  Linux peer skipped: {linux_skip}")
    for k in ("ping round trip median (ms)", f"peer -> host (source {BENCH_SIZE >> 20} MiB), MB/s"):
        if k in hv and k in lx and float(lx[k]):
            print(f"  ratio hypervisor / Linux, {k}: {float(hv[k]) / float(lx[k]):.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", dest="pattern", help="only scenarios whose name contains this")
    ap.add_argument("--bench", action="store_true", help="run the benchmark instead")
    ap.add_argument("--peer", choices=("both", "hv", "linux"), default="both",
                    help="--bench: which peers to measure (default both)")
    ap.add_argument("--linux-timeout", type=int, default=1200,
                    help="--bench: seconds the Linux peer's run may take (default 1200)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    chosen = [BENCH] if args.bench and args.peer != "linux" else [] if args.bench else [
        s for s in SCENARIOS if not args.pattern or args.pattern in s.name]
    if args.list:
        for s in chosen:
            print(f"{s.name:18} {s.doc}")
        return 0
    for p in ("hv.efi", "agent.efi"):
        if not os.path.exists(os.path.join(BUILD, p)):
            print(f"missing build/{p} (run make first)", file=sys.stderr)
            return 1
    failed = []
    t0 = time.monotonic()
    for sc in chosen:
        ok, took, report = run_scenario(sc)
        print(f"{'PASS' if ok else 'FAIL'} {sc.name} ({took:.1f} s): {report}", flush=True)
        if not ok:
            failed.append(sc.name)
    if BENCH.name in failed:
        BENCH_RESULTS.pop("hv", None)  # numbers of a failed run are not shown
    ran = len(chosen)
    linux_skip = None
    if args.bench and args.peer != "hv":
        import run
        peer = linux_peer(args.linux_timeout)
        if isinstance(peer, str):
            linux_skip = peer
            print(f"SKIP bench-net-linux: {peer}", flush=True)
        else:
            ran += 1
            ok, took, report = run.run_scenario(peer)
            print(f"{'PASS' if ok else 'FAIL'} {peer.name} ({took:.1f} s): {report}", flush=True)
            if not ok:
                failed.append(peer.name)
                linux_skip = "its run failed (above)"
                BENCH_RESULTS.pop("linux", None)  # numbers of a failed run are not shown
    if args.bench and BENCH_RESULTS:
        print_bench(linux_skip)
    label = "bench-net" if args.bench else "test-emu-net"
    print(f"{label}: {ran - len(failed)} of {ran} passed in "
          f"{time.monotonic() - t0:.0f} s" + (f"; FAILED: {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def scenario_main(doc: str, target: str, scenarios: list, needs: list[str],
                  runner: Callable = None, width: int = 20) -> int:
    """The command line every scenario runner shares: -k PATTERN, --list; checks
    that the files it needs exist, runs the chosen scenarios one at a time (each
    Bochs needs a whole core) and prints a line per scenario and a summary."""
    runner = runner or run_scenario
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("-k", dest="pattern", help="only scenarios whose name contains this")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    chosen, done = run.select(scenarios, args.pattern, args.list,
                              lambda s: f"{s.name:{width}} {s.doc}")
    if done is not None:
        return done
    for p in needs:
        if not os.path.exists(p):
            print(f"missing {p} (run make first)", file=sys.stderr)
            return 1
    failed = []
    t0 = time.monotonic()
    for sc in chosen:
        ok, took, report = runner(sc)
        print(f"{'PASS' if ok else 'FAIL'} {sc.name} ({took:.1f} s): {report}", flush=True)
        if not ok:
            failed.append(sc.name)
    print(f"{target}: {len(chosen) - len(failed)} of {len(chosen)} passed in "
          f"{time.monotonic() - t0:.0f} s" + (f"; FAILED: {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
