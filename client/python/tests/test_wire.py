"""Wire layer: sizes and offsets of spec section 4.4, byte examples, round trips."""

import struct

import pytest

from kvmi import wire as w


def test_header_sizes():
    assert len(w.pack_hdr(2, 0, 1)) == w.HDR_SIZE == 8
    assert len(w.pack_error_code(0)) == w.ERROR_CODE_SIZE == 8
    assert len(w.pack_vcpu_hdr(3)) == w.VCPU_HDR_SIZE == 8


def test_register_struct_sizes():
    assert len(w.Regs().pack()) == w.KVM_REGS_SIZE == 144
    assert len(w.Segment().pack()) == w.KVM_SEGMENT_SIZE == 24
    assert len(w.DTable().pack()) == w.KVM_DTABLE_SIZE == 16
    assert len(w.SRegs().pack()) == w.KVM_SREGS_SIZE == 312
    assert len(w.EventMsrs().pack()) == w.EVENT_MSRS_SIZE == 72
    assert len(w.EventArch().pack()) == w.EVENT_ARCH_SIZE == 536


def test_kvm_regs_offsets():
    regs = w.Regs(**{n: i + 1 for i, n in enumerate(w.REG_NAMES)})
    b = regs.pack()
    expect = {"rax": 0, "rbx": 8, "rcx": 16, "rdx": 24, "rsi": 32, "rdi": 40, "rsp": 48,
              "rbp": 56, "r8": 64, "r15": 120, "rip": 128, "rflags": 136}
    for name, off in expect.items():
        assert struct.unpack_from("<Q", b, off)[0] == getattr(regs, name), name
    assert w.Regs.unpack(b) == regs


def test_kvm_sregs_offsets():
    s = w.SRegs(cr0=0x10, cr2=0x20, cr3=0x30, cr4=0x40, cr8=0x50, efer=0x60,
                apic_base=0x70, interrupt_bitmap=(1, 2, 3, 4))
    for i, n in enumerate(w.SEG_NAMES):
        seg = getattr(s, n)
        seg.base = 0x1000 * (i + 1)
        seg.selector = i + 8
        seg.l = 1
    s.gdt = w.DTable(0xAAAA, 0x1FF)
    s.idt = w.DTable(0xBBBB, 0xFFF)
    b = s.pack()
    for i, n in enumerate(w.SEG_NAMES):  # cs0 ds24 es48 fs72 gs96 ss120 tr144 ldt168
        assert struct.unpack_from("<Q", b, 24 * i)[0] == 0x1000 * (i + 1)
        assert struct.unpack_from("<H", b, 24 * i + 12)[0] == i + 8  # selector@12
        assert b[24 * i + 19] == 1  # l@19
    assert struct.unpack_from("<QH", b, 192) == (0xAAAA, 0x1FF)
    assert struct.unpack_from("<QH", b, 208) == (0xBBBB, 0xFFF)
    for off, v in ((224, 0x10), (232, 0x20), (240, 0x30), (248, 0x40), (256, 0x50),
                   (264, 0x60), (272, 0x70)):
        assert struct.unpack_from("<Q", b, off)[0] == v
    assert struct.unpack_from("<4Q", b, 280) == (1, 2, 3, 4)
    assert w.SRegs.unpack(b) == s


def test_segment_field_offsets():
    seg = w.Segment(base=1, limit=2, selector=3, type=4, present=5, dpl=6, db=7, s=8, l=9,
                    g=10, avl=11, unusable=12)
    b = seg.pack()
    assert struct.unpack_from("<QIH", b) == (1, 2, 3)
    assert list(b[14:23]) == [4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert b[23] == 0


def test_event_common_layout():
    arch = w.EventArch(mode=8)
    arch.regs.rip = 0x1234
    arch.sregs.cr3 = 0x100000
    arch.msrs.lstar = 0xFFFF
    arch.msrs.shadow_gs = 0x77
    msg = w.pack_event(5, 1, w.KVMI_EVENT_PAUSE_VCPU, arch)
    assert len(msg) == 8 + 544
    assert msg[:8] == bytes.fromhex("0100 2002 05000000".replace(" ", ""))
    body = msg[8:]
    assert struct.unpack_from("<HHB", body) == (544, 1, 10)
    assert body[5:8] == b"\0\0\0"
    assert body[8] == 8  # arch.mode
    assert struct.unpack_from("<Q", body, 8 + 8 + 128)[0] == 0x1234  # regs@8, rip@128
    assert struct.unpack_from("<Q", body, 8 + 152 + 240)[0] == 0x100000  # sregs@152, cr3
    assert struct.unpack_from("<Q", body, 8 + 464 + 40)[0] == 0xFFFF  # msrs@464, lstar
    assert struct.unpack_from("<Q", body, 8 + 464 + 64)[0] == 0x77  # shadow_gs
    ev = w.unpack_event(5, body)
    assert (ev.seq, ev.vcpu, ev.event, ev.size) == (5, 1, 10, 544)
    assert ev.arch == arch and ev.payload == {}


@pytest.mark.parametrize("event_id,size,payload", [
    (w.KVMI_EVENT_CR, 24, {"cr": 3, "old_value": 0x1000, "new_value": 0x2000}),
    (w.KVMI_EVENT_MSR, 24, {"msr": 0xC0000082, "old_value": 1, "new_value": 2}),
    (w.KVMI_EVENT_BREAKPOINT, 16, {"gpa": 0x1000, "insn_len": 1}),
    (w.KVMI_EVENT_PF, 24, {"gva": 0xFFFF800000200000, "gpa": 0x200000, "access": 2, "view": 0}),
    (w.KVMI_EVENT_TRAP, 24, {"vector": 14, "type": 0x300, "error_code": 2, "cr2": 0xDEAD}),
    (w.KVMI_EVENT_DESCRIPTOR, 8, {"descriptor": 1, "write": 1}),
])
def test_event_payloads(event_id, size, payload):
    msg = w.pack_event(9, 0, event_id, **payload)
    hdr = w.unpack_hdr(msg)
    assert hdr == (w.KVMI_EVENT, 544 + size, 9)
    ev = w.unpack_event(9, msg[8:])
    assert ev.payload == payload
    for k, v in payload.items():
        assert getattr(ev, k) == v


def test_event_payload_byte_offsets():
    pf = w.pack_event(1, 0, w.KVMI_EVENT_PF, gva=0x11, gpa=0x22, access=4, view=0)[8 + 544:]
    assert struct.unpack_from("<QQB", pf) == (0x11, 0x22, 4)  # gva@0 gpa@8 access@16
    tr = w.pack_event(1, 0, w.KVMI_EVENT_TRAP, vector=3, type=0x600, error_code=9,
                      cr2=0x55)[8 + 544:]
    assert struct.unpack_from("<IIIIQ", tr) == (3, 0x600, 9, 0, 0x55)
    cr = w.pack_event(1, 0, w.KVMI_EVENT_CR, cr=4, old_value=1, new_value=2)[8 + 544:]
    assert struct.unpack_from("<H6xQQ", cr) == (4, 1, 2)


def test_event_size_examples_from_spec():
    # 0x220 for payload-less events, 0x238 for CR/MSR/PF/TRAP.
    for ev in (w.KVMI_EVENT_XSETBV, w.KVMI_EVENT_HYPERCALL, w.KVMI_EVENT_PAUSE_VCPU,
               w.KVMI_EVENT_SINGLESTEP, w.KVMI_EVENT_CREATE_VCPU, w.KVMI_EVENT_UNHOOK):
        assert w.pack_event(1, 0, ev)[2:4] == b"\x20\x02"
    for ev in (w.KVMI_EVENT_CR, w.KVMI_EVENT_MSR, w.KVMI_EVENT_PF, w.KVMI_EVENT_TRAP):
        assert w.pack_event(1, 0, ev)[2:4] == b"\x38\x02"


def test_unpack_event_rejects_bad_common_size():
    body = bytearray(w.pack_event(1, 0, w.KVMI_EVENT_CR)[8:])
    struct.pack_into("<H", body, 0, 4)
    with pytest.raises(ValueError):
        w.unpack_event(1, bytes(body))
    struct.pack_into("<H", body, 0, len(body) + 1)
    with pytest.raises(ValueError):
        w.unpack_event(1, bytes(body))
    body = bytearray(w.pack_event(1, 0, w.KVMI_EVENT_CR)[8:])
    body[4] = 99  # unknown event id
    with pytest.raises(ValueError):
        w.unpack_event(1, bytes(body))


def test_unpack_event_honours_a_larger_common_part():
    # libkvmi reads the payload at common.size: a host with a bigger
    # kvmi_event must still decode.
    msg = w.pack_event(1, 0, w.KVMI_EVENT_CR, cr=0, old_value=1, new_value=2)
    body = bytearray(msg[8:8 + 544]) + bytes(16) + msg[8 + 544:]
    struct.pack_into("<H", body, 0, 560)
    ev = w.unpack_event(1, bytes(body))
    assert ev.new_value == 2


def test_event_reply_byte_examples():
    r = w.pack_event_reply(7, 1, w.KVMI_EVENT_PAUSE_VCPU, w.ACTION_CONTINUE)
    assert r == bytes.fromhex("00001000" "07000000" "0100000000000000" "000a000000000000")
    cr = w.pack_event_reply(7, 0, w.KVMI_EVENT_CR, w.ACTION_CONTINUE, w.pack_cr_reply(0x33))
    assert cr[:4] == bytes.fromhex("00001800") and len(cr) == 8 + 24
    assert struct.unpack_from("<Q", cr, 24)[0] == 0x33
    pf = w.pack_event_reply(7, 0, w.KVMI_EVENT_PF, w.ACTION_RETRY, w.pack_pf_reply())
    assert pf[:4] == bytes.fromhex("00002001") and len(pf) == 8 + 288
    assert pf[16] == w.ACTION_RETRY and pf[17] == w.KVMI_EVENT_PF


def test_pf_reply_layout():
    b = w.pack_pf_reply(ctx_addr=0x1000, ctx_data=b"\xAA" * 5, singlestep=True,
                        rep_complete=True)
    assert len(b) == 272
    assert struct.unpack_from("<QIBBH", b) == (0x1000, 5, 1, 1, 0)
    assert b[16:21] == b"\xAA" * 5 and b[21:] == bytes(251)
    with pytest.raises(ValueError):
        w.pack_pf_reply(ctx_data=bytes(257))


def test_command_byte_examples():
    assert w.pack_msg(w.KVMI_GET_VERSION, 1) == bytes.fromhex("0200000001000000")
    pause = w.pack_msg(w.KVMI_PAUSE_VCPU, 4, w.req_pause_vcpu(0, 1))
    assert pause == bytes.fromhex("07001000" "04000000" "0000000000000000" "0100000000000000")
    reply = bytes.fromhex("02001000010000000000000000000000" "0100000000000000")
    assert w.unpack_hdr(reply) == (2, 16, 1)
    assert w.unpack_error_code(reply, 8) == 0
    assert w.unpack_version(reply[16:]) == 1


REQUEST_SIZES = [
    (w.req_check_id(5), 8),
    (w.req_vcpu(1), 8),
    (w.req_pause_vcpu(1), 16),
    (w.req_control_vm_events(0, True), 8),
    (w.req_control_events(0, 1, True), 16),
    (w.req_control_cr(0, 3, True), 16),
    (w.req_control_msr(0, 0xC0000081, True), 16),
    (w.req_get_registers(0), 16),
    (w.req_get_registers(0, [0xC0000080, 0x174]), 16 + 8),
    (w.req_set_registers(0, w.Regs()), 8 + 144),
    (w.req_get_cpuid(0, 1), 16),
    (w.req_read_physical(0x1000, 8), 16),
    (w.req_write_physical(0x1000, b"abc"), 19),
    (w.req_inject_exception(0, 14, 2, 0x1234), 24),
    (w.req_get_page_access([0x1000, 0x2000]), 8 + 16),
    (w.req_set_page_access([(0x1000, 5), (0x2000, 7)]), 8 + 32),
    (w.req_get_mtrr_type(0, 0x1000), 16),
    (w.req_control_spp(True), 8),
    (w.req_get_page_write_bitmap([0x1000]), 16),
    (w.req_set_page_write_bitmap([(0x1000, 0xFFFFFFFF)]), 24),
    (w.req_control_cmd_response(False, True), 8),
]


@pytest.mark.parametrize("body,size", REQUEST_SIZES)
def test_request_sizes(body, size):
    assert len(body) == size


def test_request_field_offsets():
    b = w.req_control_cr(2, 4, True)
    assert struct.unpack("<HHIBBHI", b) == (2, 0, 0, 1, 0, 0, 4)
    b = w.req_control_msr(1, 0xC0000082, False)
    assert struct.unpack_from("<BBHI", b, 8) == (0, 0, 0, 0xC0000082)
    b = w.req_control_events(3, w.KVMI_EVENT_PF, True)
    assert struct.unpack_from("<HBBI", b, 8) == (6, 1, 0, 0)
    b = w.req_inject_exception(0, 14, 2, 0x1234)  # nr@0 has_error@1 error_code@4 address@8
    assert struct.unpack_from("<BBHIQ", b, 8) == (14, 1, 0, 2, 0x1234)
    b = w.req_inject_exception(0, 3)
    assert struct.unpack_from("<BBHIQ", b, 8) == (3, 0, 0, 0, 0)
    b = w.req_set_page_access([(0x5000, 3)])
    assert struct.unpack("<HHIQBBHI", b) == (0, 1, 0, 0x5000, 3, 0, 0, 0)
    b = w.req_set_page_write_bitmap([(0x5000, 0xF0)])
    assert struct.unpack("<HHIQII", b) == (0, 1, 0, 0x5000, 0xF0, 0)
    b = w.req_get_registers(0, [0x174, 0xC0000080])
    assert struct.unpack("<HHIHHI2I", b) == (0, 0, 0, 2, 0, 0, 0x174, 0xC0000080)
    b = w.req_write_physical(0x2000, b"\x01\x02")
    assert struct.unpack("<QQ2s", b) == (0x2000, 2, b"\x01\x02")


def test_registers_reply_round_trip():
    regs = w.Regs(rax=1, rip=0x1000)
    sregs = w.SRegs(cr0=0x80050033, cr3=0x100000)
    data = w.pack_registers_reply(8, regs, sregs, [(0x174, 5), (0xC0000080, 0xD01)])
    assert len(data) == w.GET_REGISTERS_REPLY_SIZE + 2 * 16
    assert struct.unpack_from("<II", data, 464) == (2, 0)  # kvm_msrs @464
    r = w.unpack_registers(data, 2)
    assert r.mode == 8 and r.regs == regs and r.sregs == sregs
    assert r.msrs == {0x174: 5, 0xC0000080: 0xD01}
    with pytest.raises(ValueError):
        w.unpack_registers(data[:-1], 2)  # libkvmi insists on the exact size


def test_reply_decoders():
    assert w.unpack_guest_info(struct.pack("<I12x", 4)) == 4
    assert w.unpack_u64(struct.pack("<Q", 4095)) == 4095
    assert w.unpack_cpuid(struct.pack("<4I", 1, 2, 3, 4)) == (1, 2, 3, 4)
    assert w.unpack_mtrr_type(struct.pack("<B7x", 6)) == 6
    assert w.unpack_u32_array(struct.pack("<2I", 7, 8), 2) == [7, 8]


def test_handshake_layouts():
    uuid = bytes(range(16))
    hello = w.pack_vm_hello(uuid, 1700000000, "vm-name")
    assert len(hello) == w.HANDSHAKE_VM_SIZE == 96
    assert struct.unpack_from("<I", hello)[0] == 96
    assert hello[4:20] == uuid
    assert struct.unpack_from("<I", hello, 20)[0] == 0
    assert struct.unpack_from("<q", hello, 24)[0] == 1700000000
    assert hello[32:39] == b"vm-name" and hello[39] == 0
    h = w.unpack_vm_hello(hello)
    assert (h.struct_size, h.uuid, h.start_time, h.name) == (96, uuid, 1700000000, "vm-name")
    assert h.uuid_str == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    # A name filling all 64 bytes is cut at [63] as libkvmi does.
    full = bytearray(hello)
    full[32:96] = b"x" * 64
    assert w.unpack_vm_hello(bytes(full)).name == "x" * 63
    tool = w.pack_tool_hello()
    assert len(tool) == w.HANDSHAKE_TOOL_SIZE == 24
    assert tool == struct.pack("<I", 24) + bytes(20)


def test_msg_size_limit_constant():
    assert w.KVMI_MSG_SIZE == 8184


def test_ids_match_spec_tables():
    assert [k for k in sorted(w.COMMAND_NAMES)] == list(range(2, 28)) + [29]
    assert sorted(w.EVENT_NAMES) == list(range(12))
    assert (w.ACTION_CONTINUE, w.ACTION_RETRY, w.ACTION_CRASH) == (0, 1, 2)
    assert (w.KVM_EPERM, w.KVM_ENOENT, w.KVM_EAGAIN, w.KVM_EBUSY, w.KVM_EINVAL,
            w.KVM_EOPNOTSUPP) == (1, 2, 11, 16, 22, 95)


def test_key_proof_is_hmac_sha1_of_the_received_struct():
    from kvmi.keyproof import key_proof
    hello = bytearray(w.pack_vm_hello(bytes(16), 0, "vm"))
    struct.pack_into("<I", hello, 20, 0x12345678)  # the nonce
    # RFC 2202 test case 2 checks our use of hmac: key "Jefe".
    import hmac
    import hashlib
    assert hmac.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha1).hexdigest() == \
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    proof = key_proof("secret", w.unpack_vm_hello(bytes(hello)), bytes(hello))
    assert len(proof) == 20
    assert proof == hmac.new(b"secret", bytes(hello), hashlib.sha1).digest()
    other = bytearray(hello)
    struct.pack_into("<I", other, 20, 0x12345679)  # another nonce, another proof
    assert key_proof("secret", None, bytes(other)) != proof
