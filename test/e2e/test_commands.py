"""Every KVMI v6 command (2-27, 29) through the client against kvmi-sim."""

import struct

import pytest
from conftest import MEM_MIB, VCPUS, T

from kvmi import KvmiError
from kvmi import wire as w

PATTERN = 0xA5A5A5A5A5A5A5A5


def pattern(gpa, size):
    base = gpa & ~7
    raw = b"".join(struct.pack("<Q", q ^ PATTERN) for q in range(base, gpa + size + 8, 8))
    return raw[gpa - base:gpa - base + size]


def err_of(call):
    with pytest.raises(KvmiError) as e:
        call()
    return e.value.code


def test_handshake_fields(env):
    d = env.dom
    assert d.hello.struct_size == 96
    assert d.version == 1


def test_get_version(env):
    assert env.dom.get_version() == 1


def test_check_command(env):
    d = env.dom
    for c in list(range(2, 28)) + [29]:
        assert d.check_command(c), c  # allow-all; 12 is allowed although unsupported
    assert d.check_command(200) is False
    # padding must be zero: -22 as a reply
    raw = struct.pack("<HHI", 2, 1, 0)
    assert err_of(lambda: d.request(w.KVMI_CHECK_COMMAND, raw)) == w.KVM_EINVAL


def test_check_event(env):
    d = env.dom
    for e in range(12):
        assert d.check_event(e), e
    assert d.check_event(12) is False
    raw = struct.pack("<HHI", 1, 0, 5)
    assert err_of(lambda: d.request(w.KVMI_CHECK_EVENT, raw)) == w.KVM_EINVAL


def test_get_guest_info(env):
    assert env.dom.get_guest_info() == VCPUS


def test_get_vcpu_info(env):
    for v in range(VCPUS):
        assert env.dom.get_vcpu_info(v) == 2_000_000_000  # the sim's nominal TSC
    assert err_of(lambda: env.dom.get_vcpu_info(VCPUS)) == w.KVM_EINVAL


def test_pause_vcpu_and_its_event(env):
    d = env.dom
    d.pause_vcpu(1, wait=True)
    ev = d.wait_event(T)
    assert (ev.event, ev.vcpu) == (w.KVMI_EVENT_PAUSE_VCPU, 1)
    assert ev.size == 544 and ev.raw == b""
    assert ev.arch.regs.rip == 0x1100 and ev.arch.mode == 8
    d.reply(ev)
    assert err_of(lambda: d.pause_vcpu(VCPUS)) == w.KVM_EINVAL
    bad = w.req_pause_vcpu(0, 1)[:9] + b"\x01" + bytes(6)  # kvmi_pause_vcpu.padding1
    assert err_of(lambda: d.request(w.KVMI_PAUSE_VCPU, bad)) == w.KVM_EINVAL
    bad = w.pack_vcpu_hdr(0)[:2] + b"\x01\x00" + bytes(4) + w.req_pause_vcpu(0, 1)[8:]
    assert err_of(lambda: d.request(w.KVMI_PAUSE_VCPU, bad)) == w.KVM_EINVAL  # vhdr padding
    assert d.get_version() == 1  # still connected: a reply, not fatal


def test_pause_vcpu_ebusy_after_1002_queued(env):
    """More than 1001 queued pause requests: the next one gets -KVM_EBUSY."""
    d = env.dom
    d.pause_vcpu(0)
    held = d.wait_event(T)  # vCPU 0 now waits for our reply: nothing drains its counter
    assert held.event == w.KVMI_EVENT_PAUSE_VCPU
    for _ in range(1002):
        d.pause_vcpu(0, wait=False)
    assert err_of(lambda: d.pause_vcpu(0, wait=False)) == w.KVM_EBUSY
    # One PAUSE event per successful command, each after the previous reply.
    d.reply(held)
    for i in range(1002):
        ev = d.wait_event(T)
        assert (ev.event, ev.vcpu) == (w.KVMI_EVENT_PAUSE_VCPU, 0), i
        d.reply(ev)
    assert d.get_version() == 1


def test_control_vm_events(env):
    d = env.dom
    d.control_vm_events(w.KVMI_EVENT_UNHOOK, True)
    d.control_vm_events(w.KVMI_EVENT_CREATE_VCPU, True)
    d.control_vm_events(w.KVMI_EVENT_CREATE_VCPU, False)
    d.control_vm_events(w.KVMI_EVENT_UNHOOK, False)
    assert err_of(lambda: d.control_vm_events(w.KVMI_EVENT_CR, True)) == w.KVM_EINVAL
    raw = struct.pack("<HBBI", 0, 1, 1, 0)
    assert err_of(lambda: d.request(w.KVMI_CONTROL_VM_EVENTS, raw)) == w.KVM_EINVAL


def test_control_events_ids(env):
    d = env.dom
    for e in (1, 2, 3, 4, 5, 6, 7, 8, 10, 11):
        d.control_events(0, e, True)
        d.control_events(0, e, False)
    for e in (0, 9, 12):
        assert err_of(lambda: d.control_events(0, e, True)) == w.KVM_EINVAL, e
    assert err_of(lambda: d.control_events(VCPUS, 1, True)) == w.KVM_EINVAL


def test_control_cr_and_msr_validation(env):
    d = env.dom
    for cr in (0, 3, 4):
        d.control_cr(0, cr, True)
        d.control_cr(0, cr, False)
    assert err_of(lambda: d.control_cr(0, 2, True)) == w.KVM_EINVAL
    d.control_msr(0, 0x174, True)
    d.control_msr(0, 0xC0000082, True)
    assert err_of(lambda: d.control_msr(0, 0x2000, True)) == w.KVM_EINVAL
    assert err_of(lambda: d.control_msr(0, 0xC0002000, True)) == w.KVM_EINVAL


def test_control_ve_is_unsupported(env):
    assert err_of(env.dom.control_ve) == w.KVM_EOPNOTSUPP


def test_unsupported_ids(env):
    for msg_id in (1, 28, 30, 100):
        assert err_of(lambda: env.dom.request(msg_id, b"")) == w.KVM_EOPNOTSUPP, msg_id
    assert env.dom.get_version() == 1


def test_unsupported_id_1_answer_is_never_taken_for_an_event(env):
    """The -95 answer to an id-1 (KVMI_EVENT) message carries id 1, like an
    event.  It is sent even with replies off, so nobody may be waiting for
    it; the client must still not decode it as an event (a client that did
    failed with 'event common size 65441' and dropped the connection: the
    test_unsupported_ids failure seen once, before commit 953a713)."""
    d = env.dom
    d.control_cmd_response(False, True)
    seqs = [d.next_seq() for _ in range(3)]
    d._send(b"".join(w.pack_msg(1, s, b"") for s in seqs))  # nobody waits for these
    d.control_cmd_response(True, True)
    assert d.get_version() == 1 and not d.closed
    assert [(m, s, e) for m, s, e in d.unmatched] == [(1, s, -w.KVM_EOPNOTSUPP) for s in seqs]
    assert d.pending_events() == 0


def test_get_registers_initial_state(env):
    d = env.dom
    for v in range(VCPUS):
        r = d.get_registers(v, [0xC0000080, 0x174])
        assert r.mode == 8
        assert r.regs.rip == 0x1000 + 0x100 * v
        assert r.regs.rsp == 0x80000 + 0x1000 * v
        # CR0.WP and CR4.PGE toggle and CR3 cycles as the scripted guest runs.
        assert r.sregs.cr0 & ~0x10000 == 0x80050033 & ~0x10000
        assert r.sregs.cr3 in (0x100000, 0x101000, 0x102000, 0x103000)
        assert r.sregs.cr4 & ~0x80 == 0x20
        assert r.sregs.efer == 0xD01
        assert r.sregs.cs.l == 1
        assert r.msrs[0xC0000080] == 0xD01
        assert 0x174 in r.msrs
    assert err_of(lambda: d.get_registers(VCPUS)) == w.KVM_EINVAL


def test_get_registers_msr_count_limit(env):
    """The reply must fit one buffer of 8192 bytes after kvmi_error_code:
    472 + 16 * 482 = 8184 fits, 483 MSRs give -KVM_ENOMEM (KVM: kzalloc)."""
    d = env.dom
    r = d.get_registers(0, [0x174] * 482)  # the client checks 472 + 16 * 482 bytes
    assert r.msrs[0x174] >> 32 == 0x174
    assert err_of(lambda: d.get_registers(0, [0x174] * 483)) == w.KVM_ENOMEM
    assert err_of(lambda: d.get_registers(0, [0x174, 0x12345])) == w.KVM_EINVAL  # unreadable


def test_get_registers_rejects_padding_and_short_messages(env):
    d = env.dom
    raw = w.pack_vcpu_hdr(0) + struct.pack("<HHI", 0, 1, 0)
    assert err_of(lambda: d.request(w.KVMI_GET_REGISTERS, raw)) == w.KVM_EINVAL
    short = w.pack_vcpu_hdr(0) + struct.pack("<HHI", 3, 0, 0) + struct.pack("<I", 0x174)
    assert err_of(lambda: d.request(w.KVMI_GET_REGISTERS, short)) == w.KVM_EINVAL


def test_set_registers_applies_at_event_reply(env):
    d = env.dom
    d.pause_vcpu(1)
    ev = d.wait_event(T)
    regs = d.get_registers(1).regs
    regs.r15 = 0xFEEDFACE
    d.set_registers(1, regs)
    d.reply(ev)
    d.pause_vcpu(1)
    ev = d.wait_event(T)
    assert ev.arch.regs.r15 == 0xFEEDFACE
    assert d.get_registers(1).regs.r15 == 0xFEEDFACE
    d.reply(ev)


def test_set_registers_without_event_is_dropped_but_answered(env):
    d = env.dom
    regs = d.get_registers(0).regs
    before = regs.r14
    regs.r14 = before ^ 0x5A5A
    d.set_registers(0, regs)  # answered 0
    assert d.get_registers(0).regs.r14 == before


def test_get_cpuid(env):
    eax, ebx, ecx, edx = env.dom.get_cpuid(0, 0)
    assert eax >= 1  # max basic leaf
    assert err_of(lambda: env.dom.get_cpuid(0, 0x4FFFFFFF)) == w.KVM_ENOENT


def test_get_xsave(env):
    assert len(env.dom.get_xsave(1)) == 4096


def test_read_physical(env):
    d = env.dom
    assert d.read_physical(0x1000, 64) == pattern(0x1000, 64)
    assert d.read_physical(0x5003, 13) == pattern(0x5003, 13)
    last = MEM_MIB * 256 * 4096 - 4096
    assert d.read_physical(last, 4096) == pattern(last, 4096)
    for gpa, size in ((0x1000, 0), (0x1000, 4097), (0x1FFF, 2)):
        assert err_of(lambda: d.read_physical(gpa, size)) == w.KVM_EINVAL, (gpa, size)
    assert err_of(lambda: d.read_physical(last + 4096, 8)) == w.KVM_ENOENT
    assert d.get_version() == 1


def test_write_physical(env):
    d = env.dom
    d.write_physical(0x7010, b"hello, guest")
    assert d.read_physical(0x7000, 0x20) == pattern(0x7000, 0x10) + b"hello, guest" + \
        pattern(0x701C, 4)
    d.write_memory(0x8FFC, bytes(range(8)))  # split across two pages
    assert d.read_memory(0x8FFC, 8) == bytes(range(8))
    assert err_of(lambda: d.write_physical(0x9FFF, b"ab")) == w.KVM_EINVAL
    end = MEM_MIB * 256 * 4096
    assert err_of(lambda: d.write_physical(end, b"ab")) == w.KVM_ENOENT


def test_inject_exception(env):
    env.dom.inject_exception(0, 3)
    env.dom.inject_exception(1, 14, error_code=2, address=0x1234)
    bad = w.req_inject_exception(0, 3)[:10] + b"\x01" + w.req_inject_exception(0, 3)[11:]
    assert err_of(lambda: env.dom.request(w.KVMI_INJECT_EXCEPTION, bad)) == w.KVM_EINVAL


def test_page_access(env):
    d = env.dom
    gpas = [0x200000, 0x201000, 0x500000]
    assert d.get_page_access(gpas) == [7, 7, 7]
    d.set_page_access([(0x500000, w.PAGE_ACCESS_R), (0x501000, 5)])
    assert d.get_page_access([0x500000, 0x501000, 0x502000]) == [1, 5, 7]
    d.set_page_access([(0x500000, 7), (0x501000, 7)])
    assert d.get_page_access([0x500000, 0x501000]) == [7, 7]
    assert err_of(lambda: d.set_page_access([(0x500000, 8)])) == w.KVM_EINVAL
    assert err_of(lambda: d.get_page_access([0x500000], view=1)) == w.KVM_EOPNOTSUPP
    short = struct.pack("<HHI", 0, 4, 0) + struct.pack("<Q", 0x500000)
    assert err_of(lambda: d.request(w.KVMI_GET_PAGE_ACCESS, short)) == w.KVM_EINVAL
    # beyond max gfn: -22; every entry is tried and the last error returned
    end = MEM_MIB << 20
    assert err_of(lambda: d.set_page_access([(end, 5), (0x502000, 5)])) == w.KVM_EINVAL
    assert d.get_page_access([0x502000]) == [5]
    bad = w.req_set_page_access([(0x503000, 5)])
    bad = bad[:8 + 9] + b"\x01" + bad[8 + 10:]  # kvmi_page_access_entry.padding1
    assert err_of(lambda: d.request(w.KVMI_SET_PAGE_ACCESS, bad)) == w.KVM_EINVAL
    assert d.get_page_access([0x503000]) == [7]
    d.set_page_access([(0x502000, 7)])


def test_get_map_token_unsupported(env):
    assert err_of(env.dom.get_map_token) == w.KVM_EOPNOTSUPP


def test_get_mtrr_type(env):
    assert env.dom.get_mtrr_type(0x1000) == 6  # WB inside guest memory
    assert env.dom.get_mtrr_type(MEM_MIB << 20, vcpu=1) == 0  # UC beyond it


def test_spp_commands_unsupported(env):
    d = env.dom
    assert err_of(lambda: d.control_spp(True)) == w.KVM_EOPNOTSUPP
    assert err_of(lambda: d.control_spp(False)) == w.KVM_EOPNOTSUPP
    assert err_of(lambda: d.get_page_write_bitmap([0x1000])) == w.KVM_EOPNOTSUPP
    assert err_of(lambda: d.set_page_write_bitmap([(0x1000, 0xFFFFFFFF)])) == \
        w.KVM_EOPNOTSUPP
    # padding is still checked first
    assert err_of(lambda: d.request(w.KVMI_CONTROL_SPP, struct.pack("<BBHI", 1, 1, 0, 0))) \
        == w.KVM_EINVAL
    assert err_of(lambda: d.request(w.KVMI_GET_PAGE_WRITE_BITMAP,
                                    struct.pack("<HHIQ", 0, 1, 1, 0x1000))) == w.KVM_EINVAL


def test_control_cmd_response(env):
    d = env.dom
    d.control_cmd_response(False, True)
    d.set_page_access([(0x600000, 5)])  # no reply comes
    d.request(w.KVMI_SET_PAGE_ACCESS, w.req_set_page_access([(0x600000, 9)]))  # error dropped
    d.control_cmd_response(True, True)  # replied
    assert d.get_page_access([0x600000]) == [5]
    # (1, 0) while replies are on: replied, stays on
    d.control_cmd_response(True, False)
    # unsupported ids are answered even with replies off
    d.control_cmd_response(False, True)
    with pytest.raises(KvmiError) as e:
        d.request(w.KVMI_CONTROL_VE, bytes(16), expect_reply=True)
    assert e.value.code == w.KVM_EOPNOTSUPP
    d.control_cmd_response(True, True)
    assert d.get_version() == 1
    assert len(d.unmatched) == 0


def test_control_cmd_response_padding_is_fatal(env):
    d = env.dom
    d.request(w.KVMI_CONTROL_CMD_RESPONSE, struct.pack("<BBHI", 1, 1, 1, 0),
              expect_reply=False)
    assert d.wait_closed(T)
    env.accept()  # the sim reconnects
    assert env.dom.get_version() == 1


def test_get_max_gfn(env):
    assert env.dom.get_max_gfn() == MEM_MIB * 256 - 1


def test_oversized_message_closes(env):
    d = env.dom
    d._send(w.pack_hdr(w.KVMI_WRITE_PHYSICAL, w.KVMI_MSG_SIZE + 1, 1))
    assert d.wait_closed(T)
    env.accept()
    assert env.dom.get_guest_info() == VCPUS


def test_largest_message_is_accepted(env):
    # 8184 bytes of body: the KVM-VMI limit (LKML v6 would close at 4089).
    d = env.dom
    body = w.req_write_physical(0xA000, bytes(w.KVMI_MSG_SIZE - 16))
    with pytest.raises(KvmiError) as e:  # size > 4096: a range error, not a close
        d.request(w.KVMI_WRITE_PHYSICAL, body)
    assert e.value.code == w.KVM_EINVAL
    assert d.get_version() == 1
