"""kvmictl against the in-test fake hypervisor."""

import os
import re
import subprocess
import sys

from fakevm import FakeVM, mem_pattern
from kvmi import wire as w

KVMICTL = os.path.join(os.path.dirname(__file__), "..", "..", "kvmictl")
T = 20.0


def start(*args, stdin=None):
    p = subprocess.Popen([sys.executable, KVMICTL, "-l", "127.0.0.1:0", *args],
                         stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    assert m, line
    return p, int(m.group(1))


def run_against_fake(*args, stdin=None, setup=None, **fake_kw):
    p, port = start(*args, stdin=stdin)
    vm = FakeVM(port, **fake_kw)
    if setup:
        setup(vm)
    out, err = p.communicate(stdin, timeout=T)
    vm.close()
    return p.returncode, out, err, vm


def test_help_is_usable():
    p = subprocess.run([sys.executable, KVMICTL, "--help"], capture_output=True, text=True,
                       timeout=T)
    assert p.returncode == 0
    for word in ("--listen", "--connect", "watch", "unhook-wait", "pause", "dump"):
        assert word in p.stdout
    p = subprocess.run([sys.executable, KVMICTL, "help", "read"], capture_output=True,
                       text=True, timeout=T)
    assert p.returncode == 0 and "usage: kvmictl read" in p.stdout


def test_usage_errors_exit_2():
    p = subprocess.run([sys.executable, KVMICTL, "-l", "0", "frobnicate"],
                       capture_output=True, text=True, timeout=T)
    assert p.returncode == 2 and "invalid choice" in p.stderr
    p = subprocess.run([sys.executable, KVMICTL, "info"], capture_output=True, text=True,
                       timeout=T)
    assert p.returncode == 2 and "--listen" in p.stderr


def test_no_hypervisor_exits_3():
    p = subprocess.run([sys.executable, KVMICTL, "-l", "127.0.0.1:0", "--accept-timeout",
                        "0.1", "info"], capture_output=True, text=True, timeout=T)
    assert p.returncode == 3 and "no session" in p.stderr


def test_info():
    rc, out, err, vm = run_against_fake("info")
    assert rc == 0, err
    assert "uuid 00010203-0405-0607-0809-0a0b0c0d0e0f" in out
    assert "name fake" in out and "vcpus 2" in out
    assert "max_gfn 0xfff (16 MiB)" in out
    assert "GET_MAX_GFN" in out.split("commands_allowed")[1]


def test_read_and_write():
    rc, out, err, vm = run_against_fake("run", "write 0x2000 aabb; read 0x2000 16")
    assert rc == 0, err
    line = [ln for ln in out.splitlines() if ln.startswith("0000000000002000")][0]
    expect = b"\xaa\xbb" + mem_pattern(0x2002, 14)
    assert line.split("  ")[1].split() == [f"{b:02x}" for b in expect]


def test_dump(tmp_path):
    f = tmp_path / "mem.bin"
    rc, out, err, vm = run_against_fake("dump", "0x1ff0", "0x30", "-o", str(f))
    assert rc == 0, err
    assert f.read_bytes() == mem_pattern(0x1FF0, 0x30)


def test_regs():
    rc, out, err, vm = run_against_fake("regs", "1", "--msr", "0x174")
    assert rc == 0, err
    assert re.search(r"rip 0000000000001100", out)
    assert re.search(r"cr3 0000000000100000", out)
    assert "msr 0x00000174 00000000000002e8" in out


def test_access_set_and_get():
    rc, out, err, vm = run_against_fake("access", "0x300000", "0x301000", "--set", "r-x")
    assert rc == 0, err
    assert out.splitlines() == ["0x300000 r-x", "0x301000 r-x"]


def test_command_error_exit_1():
    rc, out, err, vm = run_against_fake("cpuid", "0", "7")
    assert rc == 1 and "KVM_ENOENT" in err


def test_pause_resume_in_one_session():
    rc, out, err, vm = run_against_fake("run", "pause; resume")
    assert rc == 0, err
    assert "vcpu0 paused" in out and "vcpu1 paused" in out
    assert "vcpu0 resumed" in out and "vcpu1 resumed" in out
    acts = [(r["vcpu"], r["event"], r["action"]) for _, r in vm.event_replies]
    assert sorted(acts) == [(0, 10, 0), (1, 10, 0)]


def test_shell_reads_commands_from_stdin():
    rc, out, err, vm = run_against_fake("shell", stdin="version\ncpuid 0 9\nmaxgfn\n")
    assert rc == 0, err  # the last command decides; maxgfn succeeds
    assert out.splitlines()[0] == "1" and "0xfff" in out
    assert "KVM_ENOENT" in err


def test_watch_prints_one_line_per_event_and_continues():
    def setup(vm):
        assert vm.wait_for(lambda v: any(i == w.KVMI_CONTROL_MSR for i, _, _ in v.received), T)
        vm.send_event(0, w.KVMI_EVENT_CR, cr=3, old_value=0x100000, new_value=0x101000)
        vm.send_event(1, w.KVMI_EVENT_MSR, msr=0xC0000082, old_value=0, new_value=7)
        vm.send_event(1, w.KVMI_EVENT_DESCRIPTOR, descriptor=1, write=1)

    rc, out, err, vm = run_against_fake("watch", "cr,msr,descriptor", "--count", "3",
                                        setup=setup)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "seq 1 vcpu0 CR cr3 0x100000 -> 0x101000 rip 0x1000"
    assert lines[1] == "seq 2 vcpu1 MSR msr 0xc0000082 0x0 -> 0x7 rip 0x1100"
    assert lines[2] == "seq 3 vcpu1 DESCRIPTOR IDTR write rip 0x1100"
    assert lines[3] == "3 events"
    specific = [r["specific"] for _, r in vm.event_replies]
    assert specific[:2] == [(0x101000).to_bytes(8, "little"), (7).to_bytes(8, "little")]
    # The events are disabled again on the way out.
    ctl = [b for i, _, b in vm.received if i == w.KVMI_CONTROL_EVENTS]
    assert any(b[10] == 0 for b in ctl)


def test_ps_and_linux_version_walk_the_guest(tmp_path):
    """kvmictl ps over KVMI: the fake VM's memory holds fakeguest's page
    tables at its CR3 (0x100000) and its task list."""
    import btfgen
    import fakeguest
    mem, _, symbols, _ = fakeguest.guest(root=0x100000)
    (tmp_path / "btf").write_bytes(btfgen.task_btf())
    (tmp_path / "map").write_text(symbols)

    def setup(vm):
        for base, page in mem.pages.items():
            for i, b in enumerate(page):
                vm.memory[base + i] = b

    files = ["--btf", str(tmp_path / "btf"), "--map", str(tmp_path / "map")]
    rc, out, err, vm = run_against_fake("run", "ps " + " ".join(files) + "; linux-version "
                                        + " ".join(files), setup=setup)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["PID", "PPID", "TASK_STRUCT", "COMMAND"]
    assert [ln.split()[0] for ln in lines[1:6]] == ["0", "1", "2", "57", "58"]
    assert lines[3].split()[-1] == "[kthreadd]" and lines[4].split()[-1] == "sh"
    assert lines[6] == "Linux version 6.1.0-test (fake) #1 SMP"


def test_ps_without_kernel_data_is_a_usage_error():
    rc, out, err, _ = run_against_fake("ps")
    assert rc == 2 and "give the kernel image, or both its BTF and its System.map" in err
