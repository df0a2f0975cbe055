"""kvmictl against kvmi-sim, as a person would use it (docs/client.md)."""

import re
import signal
import subprocess
import sys

from conftest import KVMICTL, MEM_MIB, VCPUS, T, Sim, wait_until


class Ctl:
    """kvmictl -l 127.0.0.1:0 ARGS with a kvmi-sim dialing the port it prints."""

    def __init__(self, tmp_path, *args, sim_args=(), stdin=None):
        self.p = subprocess.Popen([sys.executable, KVMICTL, "-l", "127.0.0.1:0", *args],
                                  stdin=subprocess.PIPE if stdin is not None else None,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert m, line
        self.sim = Sim(tmp_path, *sim_args, port=int(m.group(1)))
        self.stdin = stdin

    def finish(self):
        try:
            out, err = self.p.communicate(self.stdin, timeout=T * 2)
        finally:
            assert self.sim.stop() == 0, self.sim.text()[-3000:]
        return self.p.returncode, out, err


def ctl(tmp_path, *args, **kw):
    return Ctl(tmp_path, *args, **kw).finish()


def test_info(tmp_path):
    rc, out, err = ctl(tmp_path, "info")
    assert rc == 0, err
    assert re.search(r"^uuid [0-9a-f-]{36}$", out, re.M)
    assert f"vcpus {VCPUS}" in out
    assert f"max_gfn {MEM_MIB * 256 - 1:#x}" in out
    assert "kvmi_version 1" in out
    allowed = out.split("commands_allowed ")[1].splitlines()[0].split()
    assert "GET_MAX_GFN" in allowed and "PAUSE_VCPU" in allowed


def test_attach_name_and_uuid(tmp_path):
    uuid = "12345678-9abc-def0-1234-56789abcdef0"
    rc, out, err = ctl(tmp_path, "attach", sim_args=("--name", "guest-a", "--uuid", uuid))
    assert rc == 0, err
    assert f"uuid {uuid}" in out and "name guest-a" in out


def test_regs(tmp_path):
    rc, out, err = ctl(tmp_path, "regs", "1", "--msr", "0xc0000080")
    assert rc == 0, err
    assert "vcpu1 64-bit" in out
    assert re.search(r"rip 0000000000001100", out)
    assert re.search(r"rsp 0000000000081000", out)
    assert "msr 0xc0000080 0000000000000d01" in out


def test_write_read_dump(tmp_path):
    f = tmp_path / "page.bin"
    rc, out, err = ctl(tmp_path, "run",
                       f"write 0x600010 48656c6c6f; read 0x600010 5; dump 0x600000 4096 -o {f}")
    assert rc == 0, err
    assert "wrote 5 bytes at 0x600010" in out
    assert re.search(r"^0000000000600010  48 65 6c 6c 6f\s+Hello$", out, re.M)
    data = f.read_bytes()
    assert len(data) == 4096 and data[0x10:0x15] == b"Hello"


def test_write_u64_and_usage_errors(tmp_path):
    rc, out, err = ctl(tmp_path, "run", "write 0x600000 --u64 0x1122334455667788; "
                       "read 0x600000 8")
    assert rc == 0, err
    assert "wrote 8 bytes at 0x600000" in out
    assert re.search(r"^0000000000600000  88 77 66 55 44 33 22 11", out, re.M)
    for bad in (["write", "0x1000"], ["write", "0x1000", "90", "--u64", "1"],
                ["write", "0x1000", "--u64", "zz"], ["write", "0x1000", "--u64", "-1"]):
        rc, out, err = ctl(tmp_path, *bad)
        assert rc == 2 and "Traceback" not in err, (bad, err)
        assert "write:" in err


def test_deny_options_seen_by_info_and_check(tmp_path):
    deny = ("--deny-command", "GET_REGISTERS", "--deny-event", "pf")
    rc, out, err = ctl(tmp_path, "info", sim_args=deny)
    assert rc == 0, err
    allowed = out.split("commands_allowed ")[1].splitlines()[0].split()
    assert "GET_REGISTERS" not in allowed and "GET_VERSION" in allowed
    events = out.split("events_allowed ")[1].splitlines()[0].split()
    assert "PF" not in events and "CR" in events
    rc, out, err = ctl(tmp_path, "check", "command", "get_registers", sim_args=deny)
    assert (rc, out.strip()) == (1, "not allowed"), err
    rc, out, err = ctl(tmp_path, "check", "command", "29", sim_args=deny)
    assert (rc, out.strip()) == (0, "allowed"), err
    rc, out, err = ctl(tmp_path, "regs", "0", sim_args=deny)
    assert rc == 1 and "KVM_EPERM" in err
    rc, out, err = ctl(tmp_path, "check", "command", "NOPE")
    assert rc == 2 and "unknown command" in err and "Traceback" not in err


def test_read_raw(tmp_path):
    c = Ctl(tmp_path, "read", "0x1000", "8", "--raw")
    out = c.p.stdout.buffer.read() if hasattr(c.p.stdout, "buffer") else None
    rc, _, err = c.finish()
    assert rc == 0, err
    assert out == ((0x1000 ^ 0xA5A5A5A5A5A5A5A5).to_bytes(8, "little"))


def test_access(tmp_path):
    rc, out, err = ctl(tmp_path, "run", "access 0x300000 --set r-x; access 0x300000 0x301000")
    assert rc == 0, err
    assert out.splitlines() == ["0x300000 r-x", "0x300000 r-x", "0x301000 rwx"]


def test_pause_regs_resume(tmp_path):
    rc, out, err = ctl(tmp_path, "run", "pause; regs 0; setregs 0 r12=0x77; resume 0; "
                       "pause 0; regs 0; resume")
    assert rc == 0, err
    assert out.count("paused") == VCPUS + 1
    assert "vcpu0 registers set" in out
    assert re.search(r"r12 0000000000000077", out)


def test_watch_every_event_kind(tmp_path):
    rc, out, err = ctl(tmp_path, "watch",
                       "cr,msr,xsetbv,breakpoint,hypercall,descriptor,pf",
                       "--protect", "0x300000=r-x", "--count", "200")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[-1] == "200 events"
    kinds = {ln.split()[3] for ln in lines[:-1]}
    assert kinds == {"CR", "MSR", "XSETBV", "BREAKPOINT", "HYPERCALL", "DESCRIPTOR", "PF"}
    assert re.search(r"^seq \d+ vcpu\d CR cr3 0x10[0-3]000 -> 0x10[0-3]000 rip 0x1[01]00$",
                     out, re.M)
    assert re.search(r"^seq \d+ vcpu0 PF gpa 0x300000 gva 0xffff800000300000 access -w- view 0",
                     out, re.M)
    assert re.search(r"DESCRIPTOR IDTR read", out)


def test_watch_single_vcpu_with_seconds_bound(tmp_path):
    rc, out, err = ctl(tmp_path, "watch", "hypercall", "--vcpu", "1", "--count", "3",
                       "--seconds", str(T))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[-1] == "3 events"
    assert all(" vcpu1 HYPERCALL rax 0x22 rdi 0x18 rsi 0x0" in ln for ln in lines[:-1])


def test_unhook_wait(tmp_path):
    c = Ctl(tmp_path, "unhook-wait", "--timeout", str(T))
    wait_until(lambda: c.p.stdout.readline().startswith("waiting"), what="kvmictl to wait")
    c.sim.signal(signal.SIGUSR1)
    rc, out, err = c.finish()
    assert rc == 0, err
    assert re.search(r"^seq \d+ vcpu0 UNHOOK$", out, re.M)
    assert "unhooked: connection closed" in out


def test_cpuid_xsave_mtrr_maxgfn_version_check_inject(tmp_path):
    rc, out, err = ctl(tmp_path, "run", "cpuid 0 0; xsave 1; mtrr 0x1000; maxgfn; version; "
                       "check command 29; check event pf; inject 1 3; enable xsetbv; "
                       "disable xsetbv")
    assert rc == 0, err
    assert re.search(r"^eax [0-9a-f]{8} ebx", out, re.M)
    assert "0000000000000ff0" in out  # last xsave line
    assert re.search(r"^0x1000 type \d", out, re.M)
    assert f"{MEM_MIB * 256 - 1:#x}" in out
    assert out.count("allowed") == 2 and "not allowed" not in out
    assert "vcpu1 exception 3 queued" in out


def test_error_exit_status(tmp_path):
    rc, out, err = ctl(tmp_path, "read", "0x1ff0", "0x20")  # split: fine
    assert rc == 0, err
    rc, out, err = ctl(tmp_path, "cpuid", "0", "0x4fffffff")
    assert rc == 1 and "KVM_ENOENT" in err
    rc, out, err = ctl(tmp_path, "regs", "9")
    assert rc == 1 and "KVM_EINVAL" in err


def test_shell(tmp_path):
    rc, out, err = ctl(tmp_path, "shell", stdin="version\n# a comment\nmaxgfn\nquit\n")
    assert rc == 0, err
    assert out.splitlines() == ["1", f"{MEM_MIB * 256 - 1:#x}"]


def test_connect_mode(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    sim = Sim(tmp_path, listen_port=port)
    try:
        sim.wait_ready()
        p = subprocess.run([sys.executable, KVMICTL, "-c", f"127.0.0.1:{port}", "version"],
                           capture_output=True, text=True, timeout=T)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "1"
    finally:
        assert sim.stop() == 0
