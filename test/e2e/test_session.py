"""Session-level flows against kvmi-sim: the pause-all batch, unhook (with
and without the event), reconnects, the shared key, listen mode, SIGTERM."""

import signal
import socket
import struct

import pytest
from conftest import VCPUS, T, Env, wait_until

from kvmi import ConnectionClosed, connect
from kvmi import wire as w

VCPU_MANY = 4


class CountingSock:
    def __init__(self, sock):
        self._sock = sock
        self.writes = []

    def sendall(self, data):
        self.writes.append(bytes(data))
        return self._sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_pause_all_batch(make_env):
    e = make_env(vcpus=VCPU_MANY)
    d = e.dom
    counting = CountingSock(d.sock)
    d.sock = counting
    assert d.pause_all(VCPU_MANY) == VCPU_MANY
    # One write: (0,1) + N x PAUSE_VCPU(wait=1) + (1,1); only the last is answered.
    assert len(counting.writes) == 1
    assert len(counting.writes[0]) == 16 + VCPU_MANY * 24 + 16
    evs = []
    while len(evs) < VCPU_MANY:
        ev = d.wait_event(T)
        assert ev.event == w.KVMI_EVENT_PAUSE_VCPU
        evs.append(ev)
    assert sorted(ev.vcpu for ev in evs) == list(range(VCPU_MANY))
    assert len(d.unmatched) == 0  # no reply came for the suppressed commands
    # Paused vCPUs do not run: their state is stable while we hold them.
    regs = [d.get_registers(v).sregs.cr3 for v in range(VCPU_MANY)]
    mem = d.read_physical(0x300000, 8)
    assert [d.get_registers(v).sregs.cr3 for v in range(VCPU_MANY)] == regs
    assert d.read_physical(0x300000, 8) == mem
    for ev in evs:
        d.reply(ev)
    wait_until(lambda: d.read_physical(0x300000, 8) != mem, what="vCPU 0 to run again")


def test_batch_with_event_reply_at_the_end(env):
    d = env.dom
    d.pause_vcpu(0)
    ev = d.wait_event(T)
    regs = d.get_registers(0).regs
    regs.r13 = 0xABCDEF
    with d.batch() as b:
        b.set_registers(0, regs)
        b.set_page_access([(0x700000, 5)])
        b.reply(ev)
    assert d.get_page_access([0x700000]) == [5]
    d.pause_vcpu(0)
    ev = d.wait_event(T)
    assert ev.arch.regs.r13 == 0xABCDEF
    d.reply(ev)


def test_unhook_with_event_enabled(env):
    d = env.dom
    d.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    d.set_page_access([(0x300000, 5)])
    env.sim.signal(signal.SIGUSR1)
    ev = d.wait_event(T, match=lambda e: e.event == w.KVMI_EVENT_UNHOOK)
    assert ev.vcpu == 0 and ev.size == 544 and ev.raw == b""
    assert ev.arch == w.EventArch()  # arch all zero
    # The VM keeps running and serving commands until we close.
    assert d.get_guest_info() == VCPUS
    d.set_page_access([(0x300000, 7)])
    d.close()  # the acknowledgement
    d2 = env.accept()  # the device manager reconnects afterwards
    assert d2.get_page_access([0x300000]) == [7]


def test_unhook_without_event_enabled(env):
    d = env.dom
    env.sim.signal(signal.SIGUSR1)
    # Nothing to wait for: the hypervisor goes on with its action, which
    # ends this session without any UNHOOK event.
    assert d.wait_closed(T), "kvmi-sim did not end the session"
    assert all(e.event != w.KVMI_EVENT_UNHOOK for e in d.queued_events())
    d2 = env.accept()
    assert d2.get_version() == 1


def test_unhook_timeout_when_the_tool_never_closes(make_env):
    e = make_env("--unhook-timeout-ms", "300")
    d = e.dom
    d.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    e.sim.signal(signal.SIGUSR1)
    d.wait_event(T, match=lambda ev: ev.event == w.KVMI_EVENT_UNHOOK)
    assert d.wait_closed(T), "kvmi-sim did not give up after its unhook timeout"
    assert e.accept().get_version() == 1


def test_reconnect_after_disconnect_in_the_middle_of_an_event(env):
    d = env.dom
    d.control_events(1, w.KVMI_EVENT_CR, True)
    d.control_cr(1, 3, True)
    d.set_page_access([(0x301000, 5)])
    ev = d.wait_event(T, match=lambda e: e.event == w.KVMI_EVENT_CR)
    assert ev.vcpu == 1
    d.close()  # vCPU 1 is blocked waiting for our reply
    d2 = env.accept()
    # Introspection state was reset: rights restored, no events enabled,
    # and the blocked vCPU went on as if CONTINUE had been answered.
    assert d2.get_page_access([0x301000]) == [7]
    before = d2.read_physical(0x301000, 8)
    wait_until(lambda: d2.read_physical(0x301000, 8) != before, what="vCPU 1 to run")
    d2.pause_all()
    got = [d2.wait_event(T) for _ in range(VCPUS)]
    assert {e.event for e in got} == {w.KVMI_EVENT_PAUSE_VCPU}
    for e in got:
        d2.reply(e)


def test_reconnect_after_disconnect_while_paused(env):
    d = env.dom
    d.pause_all()
    for _ in range(VCPUS):
        d.wait_event(T)
    d.close()
    d2 = env.accept()
    r0 = d2.get_registers(0).sregs.cr3
    wait_until(lambda: d2.get_registers(0).sregs.cr3 != r0, what="vCPU 0 to resume")


def test_bad_event_reply_closes_the_session(env):
    d = env.dom
    d.pause_vcpu(0)
    ev = d.wait_event(T)
    bad = bytearray(d.event_reply_bytes(ev))
    bad[8 + 2] = 1  # vhdr.padding1
    d._send(bytes(bad))
    assert d.wait_closed(T)
    assert env.accept().get_version() == 1


def test_event_reply_with_wrong_seq_closes_the_session(env):
    d = env.dom
    d.pause_vcpu(0)
    ev = d.wait_event(T)
    d._send(w.pack_event_reply(ev.seq + 100, ev.vcpu, ev.event, w.ACTION_CONTINUE))
    assert d.wait_closed(T)
    env.accept()


def test_key_accepted(make_env):
    e = make_env(key="correct horse", sim_key="correct horse")
    assert e.dom.get_guest_info() == VCPUS
    assert e.dom.hello.struct_size == 96


def test_key_rejected(make_env):
    e = make_env(key="wrong", sim_key="correct horse", accept=False)
    with pytest.raises(ConnectionClosed):
        e.accept()  # the sim closes before serving GET_VERSION


def test_key_missing(make_env):
    e = make_env(sim_key="correct horse", accept=False)
    with pytest.raises(ConnectionClosed):
        e.accept()


def test_keyless_sim_ignores_a_cookie(make_env):
    e = make_env(key="anything")
    assert e.dom.get_version() == 1


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_listen_mode(tmp_path):
    from conftest import Sim
    port = _free_port()
    sim = Sim(tmp_path, listen_port=port)
    try:
        sim.wait_ready()
        with connect("127.0.0.1", port) as d:
            assert d.get_guest_info() == VCPUS
        with connect("127.0.0.1", port) as d:  # re-accepts after a close
            assert d.get_max_gfn() == sim.mem * 256 - 1
    finally:
        assert sim.stop() == 0


def test_sigterm_with_unhook_enabled(tmp_path):
    e = Env(tmp_path)
    d = e.accept()
    d.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    e.sim.signal(signal.SIGTERM)
    ev = d.wait_event(T, match=lambda x: x.event == w.KVMI_EVENT_UNHOOK)
    assert ev is not None
    d.close()
    e.sim.proc.wait(T)
    assert e.sim.proc.returncode == 0
    # it did not dial again on its way out (a connection it made before
    # exiting would be waiting in the listener's backlog now)
    e.lst.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        e.lst.sock.accept()
    assert "connected to" not in e.sim.text().split("SIGTERM")[1]
    e.lst.close()


def test_handshake_reply_with_larger_struct(env):
    """A tool may announce a larger struct; the hypervisor consumes it."""
    lst = env.lst
    env.dom.close()
    lst.sock.settimeout(T)
    conn, _ = lst.sock.accept()
    conn.settimeout(T)
    hello = b""
    while len(hello) < 96:
        hello += conn.recv(96 - len(hello))
    conn.sendall(struct.pack("<I", 40) + bytes(36))
    conn.sendall(w.pack_msg(w.KVMI_GET_VERSION, 1))
    reply = b""
    while len(reply) < 24:
        chunk = conn.recv(24 - len(reply))
        assert chunk
        reply += chunk
    assert w.unpack_hdr(reply) == (w.KVMI_GET_VERSION, 16, 1)
    assert w.unpack_version(reply[16:]) == 1
    conn.close()
    env.dom = None


# ---- fatal paths and reply quirks (spec §3.6-§3.9) --------------------------
def _closes(env, data):
    env.dom._send(data)
    assert env.dom.wait_closed(T), "the session should have been closed"
    assert env.accept().get_version() == 1  # and the sim reconnects


def test_event_reply_too_long_is_fatal(env):
    d = env.dom
    d.pause_vcpu(0)
    ev = d.wait_event(T)
    msg = w.pack_event_reply(ev.seq, ev.vcpu, ev.event, w.ACTION_CONTINUE, bytes(8))
    _closes(env, msg)


def test_event_reply_for_a_bad_vcpu_closes(env):
    d = env.dom
    d.pause_vcpu(0)
    ev = d.wait_event(T)
    _closes(env, w.pack_event_reply(ev.seq, VCPUS + 3, ev.event, w.ACTION_CONTINUE))
    assert not any(u[0] == 0 for u in d.unmatched)  # no reply with id 0


def test_event_reply_when_none_is_outstanding_is_fatal(env):
    _closes(env, w.pack_event_reply(5, 0, w.KVMI_EVENT_PAUSE_VCPU, w.ACTION_CONTINUE))


def test_vcpu_hdr_padding_in_a_vcpu_command_is_fatal(env):
    body = bytearray(w.req_get_registers(0))
    body[4] = 1  # vhdr.padding2
    _closes(env, w.pack_msg(w.KVMI_GET_REGISTERS, 77, bytes(body)))


def test_write_physical_larger_than_its_message_is_fatal(env):
    body = struct.pack("<QQ", 0x1000, 64) + bytes(8)
    _closes(env, w.pack_msg(w.KVMI_WRITE_PHYSICAL, 78, body))


@pytest.mark.parametrize("msg_id, body", [
    (w.KVMI_GET_VERSION, b""),
    (w.KVMI_GET_GUEST_INFO, b""),
    (w.KVMI_GET_MAX_GFN, b""),
    (w.KVMI_GET_MAP_TOKEN, b""),  # fatal although its answer would be -95
    (w.KVMI_GET_VCPU_INFO, w.req_vcpu(1)),  # vCPU job: replies-off sampled at dispatch
    (w.KVMI_GET_CPUID, w.req_get_cpuid(0, 0x4FFFFFFF)),  # fatal even for -2
    (w.KVMI_READ_PHYSICAL, w.req_read_physical(0x1000, 8)),
], ids=lambda x: w.COMMAND_NAMES.get(x, "") if isinstance(x, int) else "")
def test_data_command_with_replies_off_is_fatal(env, msg_id, body):
    d = env.dom
    d.control_cmd_response(False, True)
    _closes(env, w.pack_msg(msg_id, 79, body))


def test_data_command_error_with_replies_off_is_dropped(env):
    """READ_PHYSICAL and GET_REGISTERS are fatal only once a reply buffer was
    built (spec §3.8): an error is dropped like any error-only reply."""
    d = env.dom
    d.control_cmd_response(False, True)
    d.request(w.KVMI_READ_PHYSICAL, w.req_read_physical(0x1000, 0), expect_reply=False)
    d.request(w.KVMI_GET_REGISTERS, w.req_get_registers(0, [0x12345]), expect_reply=False)
    d.control_cmd_response(True, True)
    assert d.get_version() == 1 and len(d.unmatched) == 0


def test_cr_reply_without_new_val_writes_zero(env):
    """A CR reply shorter than kvmi_event_cr_reply is zero-extended: KVM
    writes 0 (spec §3.9 'Beware')."""
    d = env.dom
    d.control_events(0, w.KVMI_EVENT_CR, True)
    d.control_cr(0, 4, True)
    ev = d.wait_event(T, match=lambda e: e.event == w.KVMI_EVENT_CR)
    d.control_cr(0, 4, False)
    d._send(w.pack_event_reply(ev.seq, 0, ev.event, w.ACTION_CONTINUE))  # no new_val
    d.pause_vcpu(0)
    p = d.wait_event(T, match=lambda e: e.event == w.KVMI_EVENT_PAUSE_VCPU)
    assert p.arch.sregs.cr4 in (0, 0x80)  # written 0, maybe toggled once since
    d.reply(p)


def test_replies_resume_after_enable_without_now(env):
    d = env.dom
    d.control_cmd_response(False, True)
    d.control_cmd_response(True, False)  # not answered: replies were off
    assert d.get_version() == 1
    assert len(d.unmatched) == 0
