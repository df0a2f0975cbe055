"""Client logic against the in-test fake hypervisor (fakevm.FakeVM)."""

import struct
import threading

import pytest

from fakevm import FakeVM, mem_pattern
from kvmi import ConnectionClosed, KvmiError, Listener
from kvmi import wire as w

T = 10.0  # generous bound for every wait


@pytest.fixture
def pair():
    lst = Listener()
    vm = FakeVM(lst.port, vcpus=2)
    dom = lst.accept(timeout=T)
    yield vm, dom
    dom.close()
    vm.close()
    lst.close()


def test_handshake_and_version(pair):
    vm, dom = pair
    assert dom.uuid == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert dom.name == "fake" and dom.start_time == 1234
    assert vm.tool_hello == struct.pack("<I", 24) + bytes(20)
    # libkvmi's first command after the handshake is GET_VERSION.
    assert vm.received[0][:2] == (w.KVMI_GET_VERSION, 1)
    assert dom.version == 1


def test_handshake_consumes_a_bigger_struct():
    with Listener() as lst:
        vm = FakeVM(lst.port, hello_size=200)
        with lst.accept(timeout=T) as dom:
            assert dom.name == "fake"
            assert dom.get_guest_info() == 2  # stream still in sync
        vm.close()


def test_vm_commands(pair):
    vm, dom = pair
    assert dom.get_version() == 1
    assert dom.check_command(w.KVMI_GET_REGISTERS) is True
    assert dom.check_command(200) is False
    assert dom.check_event(w.KVMI_EVENT_PF) is True
    assert dom.get_guest_info() == 2
    assert dom.get_max_gfn() == 16 * 256 - 1
    dom.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    with pytest.raises(KvmiError) as e:
        dom.control_vm_events(w.KVMI_EVENT_CR, True)
    assert e.value.code == w.KVM_EINVAL and e.value.err == -22


def test_vcpu_commands(pair):
    vm, dom = pair
    r = dom.get_registers(1, [0x174, 0xC0000080])
    assert r.regs.rip == 0x1100 and r.regs.rax == 1 and r.sregs.cr3 == 0x100000
    assert r.sregs.cs.l == 1 and r.mode == 8
    assert r.msrs == {0x174: 0x2E8, 0xC0000080: 0x180000100}
    assert dom.get_vcpu_info(0) == 0
    assert dom.get_cpuid(0, 0) == (0xD, 1, 2, 3)
    with pytest.raises(KvmiError) as e:
        dom.get_cpuid(0, 5)
    assert e.value.code == w.KVM_ENOENT
    assert len(dom.get_xsave(0)) == 4096
    assert dom.get_mtrr_type(0x1000) == 6
    dom.control_events(0, w.KVMI_EVENT_CR, True)
    dom.control_cr(0, 3, True)
    dom.control_msr(0, 0xC0000081, True)
    dom.set_registers(0, w.Regs(rax=5))
    dom.inject_exception(0, 14, error_code=2, address=0x1000)
    with pytest.raises(KvmiError) as e:
        dom.get_registers(7)
    assert e.value.code == w.KVM_EINVAL


def test_unsupported_commands(pair):
    vm, dom = pair
    for call in (dom.control_ve, dom.get_map_token, lambda: dom.control_spp(True),
                 lambda: dom.get_page_write_bitmap([0x1000]),
                 lambda: dom.set_page_write_bitmap([(0x1000, 0xFFFFFFFF)])):
        with pytest.raises(KvmiError) as e:
            call()
        assert e.value.code == w.KVM_EOPNOTSUPP


def test_memory(pair):
    vm, dom = pair
    assert dom.read_physical(0x2000, 16) == mem_pattern(0x2000, 16)
    dom.write_physical(0x3004, b"\x11\x22")
    assert dom.read_physical(0x3000, 8) == mem_pattern(0x3000, 4) + b"\x11\x22" + \
        mem_pattern(0x3006, 2)
    # Ranges crossing pages are split at the boundary.
    assert dom.read_memory(0x4FF0, 0x20) == mem_pattern(0x4FF0, 0x20)
    reads = [struct.unpack_from("<QQ", b) for i, s, b in vm.received
             if i == w.KVMI_READ_PHYSICAL]
    assert reads[-2:] == [(0x4FF0, 0x10), (0x5000, 0x10)]
    dom.write_memory(0x6FFE, b"abcd")
    assert dom.read_memory(0x6FFE, 4) == b"abcd"
    with pytest.raises(KvmiError):
        dom.read_physical(0x1FFF, 2)


def test_page_access(pair):
    vm, dom = pair
    assert dom.get_page_access([0x1000, 0x2000]) == [7, 7]
    dom.set_page_access([(0x2000, w.PAGE_ACCESS_R | w.PAGE_ACCESS_X)])
    assert dom.get_page_access([0x1000, 0x2000]) == [7, 5]
    with pytest.raises(KvmiError):
        dom.set_page_access([(0x2000, 8)])


def test_event_arriving_before_a_reply_is_queued(pair):
    vm, dom = pair
    vm.before_reply = lambda msg_id: (
        w.pack_event(77, 1, w.KVMI_EVENT_CR, cr=3, old_value=1, new_value=2)
        if msg_id == w.KVMI_GET_GUEST_INFO else b"")
    assert dom.get_guest_info() == 2
    ev = dom.wait_event(timeout=T)
    assert (ev.seq, ev.vcpu, ev.event, ev.cr, ev.new_value) == (77, 1, w.KVMI_EVENT_CR, 3, 2)


def test_event_replies_carry_their_payload(pair):
    vm, dom = pair
    vm.send_event(0, w.KVMI_EVENT_CR, cr=0, old_value=0x10, new_value=0x20)
    vm.send_event(1, w.KVMI_EVENT_MSR, msr=0xC0000082, old_value=1, new_value=9)
    vm.send_event(1, w.KVMI_EVENT_PF, gva=5, gpa=0x200000, access=2)
    vm.send_event(0, w.KVMI_EVENT_BREAKPOINT, gpa=0x1000, insn_len=1)
    cr = dom.wait_event(T)
    dom.reply(cr)  # default: allow, echo new_value
    msr = dom.wait_event(T)
    dom.reply(msr, new_val=1)  # keep the old value
    pf = dom.wait_event(T)
    dom.reply(pf, w.ACTION_RETRY, pf={"singlestep": True})
    bp = dom.wait_event(T)
    dom.reply(bp, w.ACTION_RETRY)
    assert vm.wait_for(lambda v: len(v.event_replies) == 4, T)
    (s1, r1), (s2, r2), (s3, r3), (s4, r4) = vm.event_replies
    assert (s1, r1["vcpu"], r1["action"], r1["event"]) == (cr.seq, 0, 0, w.KVMI_EVENT_CR)
    assert r1["specific"] == struct.pack("<Q", 0x20)
    assert (s2, r2["vcpu"], r2["specific"]) == (msr.seq, 1, struct.pack("<Q", 1))
    assert (s3, r3["action"], len(r3["specific"])) == (pf.seq, w.ACTION_RETRY, 272)
    assert r3["specific"][12] == 1  # singlestep
    assert (s4, r4["action"], r4["specific"]) == (bp.seq, w.ACTION_RETRY, b"")
    for _, r in vm.event_replies:
        assert r["padding"] == (0, 0, 0, 0)


def test_unhook_event_has_no_reply(pair):
    vm, dom = pair
    vm.send_event(0, w.KVMI_EVENT_UNHOOK)
    ev = dom.wait_event(T)
    with pytest.raises(ValueError):
        dom.reply(ev)


def test_wait_event_with_match_leaves_other_events(pair):
    vm, dom = pair
    vm.send_event(0, w.KVMI_EVENT_XSETBV)
    vm.send_event(1, w.KVMI_EVENT_HYPERCALL)
    ev = dom.wait_event(T, match=lambda e: e.event == w.KVMI_EVENT_HYPERCALL)
    assert ev.vcpu == 1
    assert dom.wait_event(T).event == w.KVMI_EVENT_XSETBV
    assert dom.wait_event(0.05) is None


class CountingSock:
    """Wraps the client's socket to count sendall() calls."""

    def __init__(self, sock):
        self._sock = sock
        self.writes = []

    def sendall(self, data):
        self.writes.append(bytes(data))
        return self._sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_pause_all_is_one_write_and_waits_for_the_last_reply(pair):
    vm, dom = pair
    counting = CountingSock(dom.sock)
    dom.sock = counting
    assert dom.pause_all() == 2
    assert len(counting.writes) == 2  # GET_GUEST_INFO, then the whole batch
    batch = counting.writes[1]
    ids, off = [], 0
    while off < len(batch):
        msg_id, size, seq = w.unpack_hdr(batch, off)
        ids.append((msg_id, batch[off + 8:off + 8 + size]))
        off += 8 + size
    assert [i for i, _ in ids] == [27, 7, 7, 27]
    assert ids[0][1] == w.req_control_cmd_response(False, True)
    assert ids[1][1] == w.req_pause_vcpu(0, 1) and ids[2][1] == w.req_pause_vcpu(1, 1)
    assert ids[3][1] == w.req_control_cmd_response(True, True)
    seqs = [w.unpack_hdr(batch, o)[2] for o in (0, 16, 40, 64)]
    assert seqs == sorted(seqs)
    paused = {dom.wait_event(T).vcpu for _ in range(2)}
    assert paused == {0, 1}
    assert len(dom.unmatched) == 0


def test_batch_reports_errors_sent_with_replies_off():
    with Listener() as lst:
        vm = FakeVM(lst.port, allow_pause_event=False)
        with lst.accept(timeout=T) as dom:
            with pytest.raises(KvmiError) as e:
                dom.pause_all()
            assert e.value.code == w.KVM_EPERM
            assert [err for _, err in e.value.batch_errors] == [-1, -1]
            assert dom.get_version() == 1  # still in sync
        vm.close()


def test_batch_ending_with_event_reply_waits_for_nothing(pair):
    vm, dom = pair
    vm.send_event(0, w.KVMI_EVENT_CR, cr=4, old_value=0, new_value=0x80)
    ev = dom.wait_event(T)
    with dom.batch() as b:
        b.set_registers(0, w.Regs(rip=0x2000))
        b.reply(ev)
    assert vm.wait_for(lambda v: len(v.event_replies) == 1, T)
    ids = [(i, body) for i, s, body in vm.received[-4:]]
    assert [i for i, _ in ids] == [27, 14, 0, 27]
    assert ids[3][1] == w.req_control_cmd_response(True, False)
    assert dom.get_guest_info() == 2  # replies are on again


def test_control_cmd_response_waits_only_when_a_reply_comes(pair):
    vm, dom = pair
    dom.control_cmd_response(False, True)  # no reply: must not block
    dom.set_page_access([(0x1000, 7)])  # replies off: would block if it waited
    with pytest.raises(ValueError):
        dom.get_guest_info()  # data while replies are off: refused locally
    dom.control_cmd_response(True, True)
    assert dom.get_guest_info() == 2


def test_unmatched_reply_is_recorded(pair):
    vm, dom = pair
    vm.send(w.pack_msg(w.KVMI_GET_VERSION, 999, w.pack_error_code(0) + bytes(8)))
    assert dom.get_guest_info() == 2
    assert (w.KVMI_GET_VERSION, 999, 0) in dom.unmatched


def test_concurrent_commands_match_by_id_and_seq(pair):
    vm, dom = pair
    results, errors = [], []

    def worker(vcpu):
        try:
            for _ in range(20):
                results.append((vcpu, dom.get_registers(vcpu).regs.rip))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T)
    assert not errors
    assert sorted(set(results)) == [(0, 0x1000), (1, 0x1100)]
    assert len(results) == 40


def test_connection_closed_wakes_waiters(pair):
    vm, dom = pair
    vm.before_reply = lambda msg_id: vm.sock.shutdown(2) if msg_id == 5 else None
    with pytest.raises(ConnectionClosed):
        dom.get_guest_info()
    with pytest.raises(ConnectionClosed):
        dom.wait_event(T)
    assert dom.wait_closed(T)


def test_accept_times_out():
    with Listener() as lst:
        with pytest.raises(TimeoutError):
            lst.accept(timeout=0.05)


def test_oversized_request_is_refused_locally(pair):
    vm, dom = pair
    with pytest.raises(ValueError):
        dom.request(w.KVMI_WRITE_PHYSICAL, bytes(w.KVMI_MSG_SIZE + 1))


def test_key_accepted_and_rejected():
    with Listener(key="s3cret") as lst:
        vm = FakeVM(lst.port, key=b"s3cret")
        with lst.accept(timeout=T) as dom:
            assert dom.get_guest_info() == 2
        assert not vm.key_rejected
        vm.close()
    with Listener(key="wrong") as lst:
        vm = FakeVM(lst.port, key=b"s3cret")
        with pytest.raises(ConnectionClosed):
            lst.accept(timeout=T)  # the GET_VERSION after the handshake sees the close
        assert vm.wait_for(lambda v: v.closed, T) and vm.key_rejected
        vm.close()
