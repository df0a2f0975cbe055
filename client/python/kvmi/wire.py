"""KVMI v6 wire layer: constants and byte-exact packing of every message.

Offers pack_*/unpack_* helpers and small dataclasses for the structures
of the KVM introspection protocol as spoken by KVM+QEMU (RFC v6, plus the
KVM-VMI additions libkvmi kvmi-v6 relies on: GET_MAX_GFN = 29 and an
8184-byte message limit).  Everything is little-endian with the x86-64 C
layout (explicit padding, sizes in spec section 4.4).  No I/O here: the
connection layer (kvmi.client) moves these bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields

# ---------------------------------------------------------------- constants
KVMI_VERSION = 1
KVMI_MSG_SIZE = 8192 - 8  # KVM-VMI kvmi-v6 limit on hdr.size (LKML v6: 4088)

# Message ids (v6 patch 01, plus 29 from the KVM-VMI branch).
KVMI_EVENT_REPLY = 0
KVMI_EVENT = 1
KVMI_GET_VERSION = 2
KVMI_CHECK_COMMAND = 3
KVMI_CHECK_EVENT = 4
KVMI_GET_GUEST_INFO = 5
KVMI_GET_VCPU_INFO = 6
KVMI_PAUSE_VCPU = 7
KVMI_CONTROL_VM_EVENTS = 8
KVMI_CONTROL_EVENTS = 9
KVMI_CONTROL_CR = 10
KVMI_CONTROL_MSR = 11
KVMI_CONTROL_VE = 12
KVMI_GET_REGISTERS = 13
KVMI_SET_REGISTERS = 14
KVMI_GET_CPUID = 15
KVMI_GET_XSAVE = 16
KVMI_READ_PHYSICAL = 17
KVMI_WRITE_PHYSICAL = 18
KVMI_INJECT_EXCEPTION = 19
KVMI_GET_PAGE_ACCESS = 20
KVMI_SET_PAGE_ACCESS = 21
KVMI_GET_MAP_TOKEN = 22
KVMI_GET_MTRR_TYPE = 23
KVMI_CONTROL_SPP = 24
KVMI_GET_PAGE_WRITE_BITMAP = 25
KVMI_SET_PAGE_WRITE_BITMAP = 26
KVMI_CONTROL_CMD_RESPONSE = 27
KVMI_GET_MAX_GFN = 29

COMMAND_NAMES = {
    KVMI_GET_VERSION: "GET_VERSION",
    KVMI_CHECK_COMMAND: "CHECK_COMMAND",
    KVMI_CHECK_EVENT: "CHECK_EVENT",
    KVMI_GET_GUEST_INFO: "GET_GUEST_INFO",
    KVMI_GET_VCPU_INFO: "GET_VCPU_INFO",
    KVMI_PAUSE_VCPU: "PAUSE_VCPU",
    KVMI_CONTROL_VM_EVENTS: "CONTROL_VM_EVENTS",
    KVMI_CONTROL_EVENTS: "CONTROL_EVENTS",
    KVMI_CONTROL_CR: "CONTROL_CR",
    KVMI_CONTROL_MSR: "CONTROL_MSR",
    KVMI_CONTROL_VE: "CONTROL_VE",
    KVMI_GET_REGISTERS: "GET_REGISTERS",
    KVMI_SET_REGISTERS: "SET_REGISTERS",
    KVMI_GET_CPUID: "GET_CPUID",
    KVMI_GET_XSAVE: "GET_XSAVE",
    KVMI_READ_PHYSICAL: "READ_PHYSICAL",
    KVMI_WRITE_PHYSICAL: "WRITE_PHYSICAL",
    KVMI_INJECT_EXCEPTION: "INJECT_EXCEPTION",
    KVMI_GET_PAGE_ACCESS: "GET_PAGE_ACCESS",
    KVMI_SET_PAGE_ACCESS: "SET_PAGE_ACCESS",
    KVMI_GET_MAP_TOKEN: "GET_MAP_TOKEN",
    KVMI_GET_MTRR_TYPE: "GET_MTRR_TYPE",
    KVMI_CONTROL_SPP: "CONTROL_SPP",
    KVMI_GET_PAGE_WRITE_BITMAP: "GET_PAGE_WRITE_BITMAP",
    KVMI_SET_PAGE_WRITE_BITMAP: "SET_PAGE_WRITE_BITMAP",
    KVMI_CONTROL_CMD_RESPONSE: "CONTROL_CMD_RESPONSE",
    KVMI_GET_MAX_GFN: "GET_MAX_GFN",
}

# Event ids.
KVMI_EVENT_UNHOOK = 0
KVMI_EVENT_CR = 1
KVMI_EVENT_MSR = 2
KVMI_EVENT_XSETBV = 3
KVMI_EVENT_BREAKPOINT = 4
KVMI_EVENT_HYPERCALL = 5
KVMI_EVENT_PF = 6
KVMI_EVENT_TRAP = 7
KVMI_EVENT_DESCRIPTOR = 8
KVMI_EVENT_CREATE_VCPU = 9
KVMI_EVENT_PAUSE_VCPU = 10
KVMI_EVENT_SINGLESTEP = 11

EVENT_NAMES = {
    KVMI_EVENT_UNHOOK: "UNHOOK",
    KVMI_EVENT_CR: "CR",
    KVMI_EVENT_MSR: "MSR",
    KVMI_EVENT_XSETBV: "XSETBV",
    KVMI_EVENT_BREAKPOINT: "BREAKPOINT",
    KVMI_EVENT_HYPERCALL: "HYPERCALL",
    KVMI_EVENT_PF: "PF",
    KVMI_EVENT_TRAP: "TRAP",
    KVMI_EVENT_DESCRIPTOR: "DESCRIPTOR",
    KVMI_EVENT_CREATE_VCPU: "CREATE_VCPU",
    KVMI_EVENT_PAUSE_VCPU: "PAUSE_VCPU",
    KVMI_EVENT_SINGLESTEP: "SINGLESTEP",
}
EVENT_IDS = {v.lower(): k for k, v in EVENT_NAMES.items()}
# Events enabled per VM (CONTROL_VM_EVENTS) rather than per vCPU.
VM_EVENTS = (KVMI_EVENT_UNHOOK, KVMI_EVENT_CREATE_VCPU)

# Event reply actions.
ACTION_CONTINUE = 0
ACTION_RETRY = 1
ACTION_CRASH = 2
ACTION_NAMES = {ACTION_CONTINUE: "CONTINUE", ACTION_RETRY: "RETRY", ACTION_CRASH: "CRASH"}

# Page access bits.
PAGE_ACCESS_R = 1
PAGE_ACCESS_W = 2
PAGE_ACCESS_X = 4

# Descriptor ids of KVMI_EVENT_DESCRIPTOR.
DESC_IDTR = 1
DESC_GDTR = 2
DESC_LDTR = 3
DESC_TR = 4
DESC_NAMES = {DESC_IDTR: "IDTR", DESC_GDTR: "GDTR", DESC_LDTR: "LDTR", DESC_TR: "TR"}

# KVM error codes as positive numbers; the wire carries their negation.
KVM_EPERM = 1
KVM_ENOENT = 2
KVM_E2BIG = 7
KVM_EAGAIN = 11
KVM_ENOMEM = 12
KVM_EFAULT = 14
KVM_EBUSY = 16
KVM_EINVAL = 22
KVM_EOPNOTSUPP = 95
KVM_ENOSYS = 1000
ERROR_NAMES = {
    KVM_EPERM: "KVM_EPERM",
    KVM_ENOENT: "KVM_ENOENT",
    KVM_E2BIG: "KVM_E2BIG",
    KVM_EAGAIN: "KVM_EAGAIN",
    KVM_ENOMEM: "KVM_ENOMEM",
    KVM_EFAULT: "KVM_EFAULT",
    KVM_EBUSY: "KVM_EBUSY",
    KVM_EINVAL: "KVM_EINVAL",
    KVM_EOPNOTSUPP: "KVM_EOPNOTSUPP",
    KVM_ENOSYS: "KVM_ENOSYS",
}

# Sizes of spec section 4.4 (asserted by the unit tests).
HDR_SIZE = 8
ERROR_CODE_SIZE = 8
VCPU_HDR_SIZE = 8
EVENT_COMMON_SIZE = 544
EVENT_ARCH_SIZE = 536
EVENT_REPLY_SIZE = 8
KVM_REGS_SIZE = 144
KVM_SREGS_SIZE = 312
KVM_SEGMENT_SIZE = 24
KVM_DTABLE_SIZE = 16
EVENT_MSRS_SIZE = 72
GET_REGISTERS_REPLY_SIZE = 472
KVM_MSR_ENTRY_SIZE = 16
KVM_XSAVE_SIZE = 4096
PAGE_SIZE = 4096
HANDSHAKE_VM_SIZE = 96  # qemu2introspector
HANDSHAKE_TOOL_SIZE = 24  # introspector2qemu
HANDSHAKE_NAME_OFFSET = 32

# ------------------------------------------------------------- header layer
_HDR = struct.Struct("<HHI")
_EC = struct.Struct("<iI")
_VHDR = struct.Struct("<HHI")


def pack_hdr(msg_id: int, size: int, seq: int) -> bytes:
    return _HDR.pack(msg_id, size, seq)


def unpack_hdr(buf: bytes, off: int = 0) -> tuple[int, int, int]:
    """Returns (id, size, seq)."""
    return _HDR.unpack_from(buf, off)


def pack_msg(msg_id: int, seq: int, body: bytes = b"") -> bytes:
    if len(body) > 0xFFFF:
        raise ValueError("message body does not fit the 16-bit size field")
    return _HDR.pack(msg_id, len(body), seq) + body


def pack_vcpu_hdr(vcpu: int) -> bytes:
    return _VHDR.pack(vcpu, 0, 0)


def pack_error_code(err: int) -> bytes:
    return _EC.pack(err, 0)


def unpack_error_code(buf: bytes, off: int = 0) -> int:
    return _EC.unpack_from(buf, off)[0]


# ------------------------------------------------------- register structures
REG_NAMES = (
    "rax rbx rcx rdx rsi rdi rsp rbp r8 r9 r10 r11 r12 r13 r14 r15 rip rflags"
).split()
_REGS = struct.Struct("<18Q")


@dataclass
class Regs:
    """struct kvm_regs (144 bytes)."""

    rax: int = 0
    rbx: int = 0
    rcx: int = 0
    rdx: int = 0
    rsi: int = 0
    rdi: int = 0
    rsp: int = 0
    rbp: int = 0
    r8: int = 0
    r9: int = 0
    r10: int = 0
    r11: int = 0
    r12: int = 0
    r13: int = 0
    r14: int = 0
    r15: int = 0
    rip: int = 0
    rflags: int = 0

    def pack(self) -> bytes:
        return _REGS.pack(*(getattr(self, n) for n in REG_NAMES))

    @classmethod
    def unpack(cls, buf: bytes, off: int = 0) -> "Regs":
        return cls(*_REGS.unpack_from(buf, off))


_SEG = struct.Struct("<QIH10B")


@dataclass
class Segment:
    """struct kvm_segment (24 bytes)."""

    base: int = 0
    limit: int = 0
    selector: int = 0
    type: int = 0
    present: int = 0
    dpl: int = 0
    db: int = 0
    s: int = 0
    l: int = 0  # noqa: E741 (the kernel's field name)
    g: int = 0
    avl: int = 0
    unusable: int = 0
    padding: int = 0

    def pack(self) -> bytes:
        return _SEG.pack(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def unpack(cls, buf: bytes, off: int = 0) -> "Segment":
        return cls(*_SEG.unpack_from(buf, off))


_DTABLE = struct.Struct("<QH3H")


@dataclass
class DTable:
    """struct kvm_dtable (16 bytes)."""

    base: int = 0
    limit: int = 0

    def pack(self) -> bytes:
        return _DTABLE.pack(self.base, self.limit, 0, 0, 0)

    @classmethod
    def unpack(cls, buf: bytes, off: int = 0) -> "DTable":
        v = _DTABLE.unpack_from(buf, off)
        return cls(v[0], v[1])


SEG_NAMES = ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")
_SREGS_TAIL = struct.Struct("<7Q4Q")  # cr0 cr2 cr3 cr4 cr8 efer apic_base + bitmap[4]


@dataclass
class SRegs:
    """struct kvm_sregs (312 bytes)."""

    cs: Segment = field(default_factory=Segment)
    ds: Segment = field(default_factory=Segment)
    es: Segment = field(default_factory=Segment)
    fs: Segment = field(default_factory=Segment)
    gs: Segment = field(default_factory=Segment)
    ss: Segment = field(default_factory=Segment)
    tr: Segment = field(default_factory=Segment)
    ldt: Segment = field(default_factory=Segment)
    gdt: DTable = field(default_factory=DTable)
    idt: DTable = field(default_factory=DTable)
    cr0: int = 0
    cr2: int = 0
    cr3: int = 0
    cr4: int = 0
    cr8: int = 0
    efer: int = 0
    apic_base: int = 0
    interrupt_bitmap: tuple = (0, 0, 0, 0)

    def pack(self) -> bytes:
        out = b"".join(getattr(self, n).pack() for n in SEG_NAMES)
        out += self.gdt.pack() + self.idt.pack()
        out += _SREGS_TAIL.pack(
            self.cr0, self.cr2, self.cr3, self.cr4, self.cr8, self.efer,
            self.apic_base, *self.interrupt_bitmap,
        )
        return out

    @classmethod
    def unpack(cls, buf: bytes, off: int = 0) -> "SRegs":
        segs = [Segment.unpack(buf, off + 24 * i) for i in range(8)]
        gdt = DTable.unpack(buf, off + 192)
        idt = DTable.unpack(buf, off + 208)
        t = _SREGS_TAIL.unpack_from(buf, off + 224)
        return cls(*segs, gdt, idt, *t[:7], tuple(t[7:]))


EVENT_MSR_NAMES = (
    "sysenter_cs sysenter_esp sysenter_eip efer star lstar cstar pat shadow_gs"
).split()
_EVMSRS = struct.Struct("<9Q")


@dataclass
class EventMsrs:
    """The msrs block of struct kvmi_event_arch (72 bytes)."""

    sysenter_cs: int = 0
    sysenter_esp: int = 0
    sysenter_eip: int = 0
    efer: int = 0
    star: int = 0
    lstar: int = 0
    cstar: int = 0
    pat: int = 0
    shadow_gs: int = 0

    def pack(self) -> bytes:
        return _EVMSRS.pack(*(getattr(self, n) for n in EVENT_MSR_NAMES))

    @classmethod
    def unpack(cls, buf: bytes, off: int = 0) -> "EventMsrs":
        return cls(*_EVMSRS.unpack_from(buf, off))


@dataclass
class EventArch:
    """struct kvmi_event_arch (536 bytes)."""

    mode: int = 0
    regs: Regs = field(default_factory=Regs)
    sregs: SRegs = field(default_factory=SRegs)
    msrs: EventMsrs = field(default_factory=EventMsrs)

    def pack(self) -> bytes:
        return (
            struct.pack("<B7x", self.mode)
            + self.regs.pack()
            + self.sregs.pack()
            + self.msrs.pack()
        )

    @classmethod
    def unpack(cls, buf: bytes, off: int = 0) -> "EventArch":
        return cls(
            buf[off],
            Regs.unpack(buf, off + 8),
            SRegs.unpack(buf, off + 152),
            EventMsrs.unpack(buf, off + 464),
        )


# ------------------------------------------------------------------- events
_EV_COMMON = struct.Struct("<HHB3x")

# Event-specific payloads after the 544-byte common part.
_EV_CR = struct.Struct("<H6xQQ")  # cr, padding[3], old_value, new_value
_EV_MSR = struct.Struct("<I4xQQ")  # msr, padding, old_value, new_value
_EV_BP = struct.Struct("<QB7x")  # gpa, insn_len
_EV_PF = struct.Struct("<QQBxHI")  # gva, gpa, access, padding1, view, padding2
_EV_TRAP = struct.Struct("<IIIIQ")  # vector, type, error_code, padding, cr2
_EV_DESC = struct.Struct("<BB6x")  # descriptor, write

EVENT_PAYLOAD_SIZES = {
    KVMI_EVENT_CR: _EV_CR.size,
    KVMI_EVENT_MSR: _EV_MSR.size,
    KVMI_EVENT_BREAKPOINT: _EV_BP.size,
    KVMI_EVENT_PF: _EV_PF.size,
    KVMI_EVENT_TRAP: _EV_TRAP.size,
    KVMI_EVENT_DESCRIPTOR: _EV_DESC.size,
}

# Event-specific reply payloads.
_REPLY_CR = struct.Struct("<Q")  # kvmi_event_cr_reply.new_val
_REPLY_MSR = struct.Struct("<Q")  # kvmi_event_msr_reply.new_val
_REPLY_PF = struct.Struct("<QIBBH256s")  # ctx_addr ctx_size singlestep rep_complete padding ctx_data
EVENT_REPLY_PAYLOAD_SIZES = {
    KVMI_EVENT_CR: _REPLY_CR.size,
    KVMI_EVENT_MSR: _REPLY_MSR.size,
    KVMI_EVENT_PF: _REPLY_PF.size,
}
PF_CTX_DATA_MAX = 256


@dataclass
class Event:
    """One KVMI_EVENT message, decoded.

    `payload` holds the event-specific fields as a dict (empty for
    payload-less events); `raw` keeps the bytes after the common part.
    """

    seq: int
    vcpu: int
    event: int
    arch: EventArch
    size: int = EVENT_COMMON_SIZE
    payload: dict = field(default_factory=dict)
    raw: bytes = b""

    @property
    def name(self) -> str:
        return EVENT_NAMES.get(self.event, f"EVENT_{self.event}")

    def __getattr__(self, item):
        # Event-specific fields read as attributes: ev.cr, ev.new_value, ...
        payload = self.__dict__.get("payload")
        if payload is not None and item in payload:
            return payload[item]
        raise AttributeError(item)


def _decode_payload(event_id: int, data: bytes) -> dict:
    need = EVENT_PAYLOAD_SIZES.get(event_id, 0)
    if len(data) < need:
        raise ValueError(
            f"{EVENT_NAMES.get(event_id, event_id)} event payload is {len(data)} bytes, "
            f"expected {need}"
        )
    if event_id == KVMI_EVENT_CR:
        cr, old, new = _EV_CR.unpack_from(data)
        return {"cr": cr, "old_value": old, "new_value": new}
    if event_id == KVMI_EVENT_MSR:
        msr, old, new = _EV_MSR.unpack_from(data)
        return {"msr": msr, "old_value": old, "new_value": new}
    if event_id == KVMI_EVENT_BREAKPOINT:
        gpa, insn_len = _EV_BP.unpack_from(data)
        return {"gpa": gpa, "insn_len": insn_len}
    if event_id == KVMI_EVENT_PF:
        gva, gpa, access, view, _ = _EV_PF.unpack_from(data)
        return {"gva": gva, "gpa": gpa, "access": access, "view": view}
    if event_id == KVMI_EVENT_TRAP:
        vector, typ, error_code, _, cr2 = _EV_TRAP.unpack_from(data)
        return {"vector": vector, "type": typ, "error_code": error_code, "cr2": cr2}
    if event_id == KVMI_EVENT_DESCRIPTOR:
        desc, write = _EV_DESC.unpack_from(data)
        return {"descriptor": desc, "write": write}
    return {}


def unpack_event(seq: int, body: bytes) -> Event:
    """Decodes the body (after the 8-byte header) of a KVMI_EVENT message.

    Follows libkvmi's checks: the common part's `size` must be at least 8
    and within the message; the payload starts at that offset.
    """
    if len(body) < _EV_COMMON.size:
        raise ValueError(f"event body of {len(body)} bytes is shorter than 8")
    size, vcpu, event_id = _EV_COMMON.unpack_from(body)
    if size < 8 or size > len(body):
        raise ValueError(f"event common size {size} is outside [8, {len(body)}]")
    if event_id not in EVENT_NAMES:
        raise ValueError(f"unknown event id {event_id}")
    arch = EventArch.unpack(body, 8) if size >= EVENT_COMMON_SIZE else EventArch()
    raw = bytes(body[size:])
    return Event(seq, vcpu, event_id, arch, size, _decode_payload(event_id, raw), raw)


def pack_event(seq: int, vcpu: int, event_id: int, arch: EventArch | None = None,
               **payload) -> bytes:
    """Builds a whole KVMI_EVENT message (used by fakes and tests)."""
    arch = arch or EventArch()
    common = _EV_COMMON.pack(EVENT_COMMON_SIZE, vcpu, event_id) + arch.pack()
    p = payload
    if event_id == KVMI_EVENT_CR:
        spec = _EV_CR.pack(p.get("cr", 0), p.get("old_value", 0), p.get("new_value", 0))
    elif event_id == KVMI_EVENT_MSR:
        spec = _EV_MSR.pack(p.get("msr", 0), p.get("old_value", 0), p.get("new_value", 0))
    elif event_id == KVMI_EVENT_BREAKPOINT:
        spec = _EV_BP.pack(p.get("gpa", 0), p.get("insn_len", 1))
    elif event_id == KVMI_EVENT_PF:
        spec = _EV_PF.pack(p.get("gva", 0), p.get("gpa", 0), p.get("access", 0),
                           p.get("view", 0), 0)
    elif event_id == KVMI_EVENT_TRAP:
        spec = _EV_TRAP.pack(p.get("vector", 0), p.get("type", 0), p.get("error_code", 0),
                             0, p.get("cr2", 0))
    elif event_id == KVMI_EVENT_DESCRIPTOR:
        spec = _EV_DESC.pack(p.get("descriptor", 0), p.get("write", 0))
    else:
        spec = b""
    return pack_msg(KVMI_EVENT, seq, common + spec)


def pack_event_reply(seq: int, vcpu: int, event_id: int, action: int,
                     specific: bytes = b"") -> bytes:
    """KVMI_EVENT_REPLY: hdr + vcpu hdr + kvmi_event_reply + specific part."""
    common = pack_vcpu_hdr(vcpu) + struct.pack("<BBHI", action, event_id, 0, 0)
    return pack_msg(KVMI_EVENT_REPLY, seq, common + specific)


def pack_cr_reply(new_val: int) -> bytes:
    return _REPLY_CR.pack(new_val)


def pack_msr_reply(new_val: int) -> bytes:
    return _REPLY_MSR.pack(new_val)


def pack_pf_reply(ctx_addr: int = 0, ctx_data: bytes = b"", singlestep: bool = False,
                  rep_complete: bool = False, ctx_size: int | None = None) -> bytes:
    if len(ctx_data) > PF_CTX_DATA_MAX:
        raise ValueError("ctx_data holds at most 256 bytes")
    if ctx_size is None:
        ctx_size = len(ctx_data)
    return _REPLY_PF.pack(ctx_addr, ctx_size, int(singlestep), int(rep_complete), 0,
                          ctx_data.ljust(PF_CTX_DATA_MAX, b"\0"))


def unpack_event_reply(body: bytes) -> dict:
    """Decodes the body of a KVMI_EVENT_REPLY (used by fakes and tests)."""
    vcpu, p1, p2 = _VHDR.unpack_from(body)
    action, event_id, rp1, rp2 = struct.unpack_from("<BBHI", body, 8)
    return {"vcpu": vcpu, "action": action, "event": event_id,
            "padding": (p1, p2, rp1, rp2), "specific": bytes(body[16:])}


# -------------------------------------------------------- command requests
# Each returns the body (after the header); replies are decoded by the
# unpack_* helpers that follow.

def req_check_id(msg_or_event_id: int) -> bytes:  # CHECK_COMMAND / CHECK_EVENT
    return struct.pack("<HHI", msg_or_event_id, 0, 0)


def req_vcpu(vcpu: int) -> bytes:  # GET_VCPU_INFO, GET_XSAVE
    return pack_vcpu_hdr(vcpu)


def req_pause_vcpu(vcpu: int, wait: int = 1) -> bytes:
    return pack_vcpu_hdr(vcpu) + struct.pack("<BBHI", wait, 0, 0, 0)


def req_control_vm_events(event_id: int, enable: bool) -> bytes:
    return struct.pack("<HBBI", event_id, int(enable), 0, 0)


def req_control_events(vcpu: int, event_id: int, enable: bool) -> bytes:
    return pack_vcpu_hdr(vcpu) + struct.pack("<HBBI", event_id, int(enable), 0, 0)


def req_control_cr(vcpu: int, cr: int, enable: bool) -> bytes:
    return pack_vcpu_hdr(vcpu) + struct.pack("<BBHI", int(enable), 0, 0, cr)


def req_control_msr(vcpu: int, msr: int, enable: bool) -> bytes:
    return pack_vcpu_hdr(vcpu) + struct.pack("<BBHI", int(enable), 0, 0, msr)


def req_get_registers(vcpu: int, msrs: list[int] | tuple = ()) -> bytes:
    return (pack_vcpu_hdr(vcpu) + struct.pack("<HHI", len(msrs), 0, 0)
            + struct.pack(f"<{len(msrs)}I", *msrs))


def req_set_registers(vcpu: int, regs: Regs) -> bytes:
    return pack_vcpu_hdr(vcpu) + regs.pack()


def req_get_cpuid(vcpu: int, function: int, index: int = 0) -> bytes:
    return pack_vcpu_hdr(vcpu) + struct.pack("<II", function, index)


def req_read_physical(gpa: int, size: int) -> bytes:
    return struct.pack("<QQ", gpa, size)


def req_write_physical(gpa: int, data: bytes) -> bytes:
    return struct.pack("<QQ", gpa, len(data)) + bytes(data)


def req_inject_exception(vcpu: int, nr: int, error_code: int | None = None,
                         address: int = 0) -> bytes:
    has_error = error_code is not None
    return pack_vcpu_hdr(vcpu) + struct.pack(
        "<BBHIQ", nr, int(has_error), 0, error_code or 0, address)


def req_get_page_access(gpas: list[int] | tuple, view: int = 0) -> bytes:
    return struct.pack("<HHI", view, len(gpas), 0) + struct.pack(f"<{len(gpas)}Q", *gpas)


def req_set_page_access(entries: list[tuple[int, int]], view: int = 0) -> bytes:
    body = struct.pack("<HHI", view, len(entries), 0)
    for gpa, access in entries:
        body += struct.pack("<QBBHI", gpa, access, 0, 0, 0)
    return body


def req_get_mtrr_type(vcpu: int, gpa: int) -> bytes:
    return pack_vcpu_hdr(vcpu) + struct.pack("<Q", gpa)


def req_control_spp(enable: bool) -> bytes:
    return struct.pack("<BBHI", int(enable), 0, 0, 0)


def req_get_page_write_bitmap(gpas: list[int] | tuple, view: int = 0) -> bytes:
    return req_get_page_access(gpas, view)


def req_set_page_write_bitmap(entries: list[tuple[int, int]], view: int = 0) -> bytes:
    body = struct.pack("<HHI", view, len(entries), 0)
    for gpa, bitmap in entries:
        body += struct.pack("<QII", gpa, bitmap, 0)
    return body


def req_control_cmd_response(enable: bool, now: bool) -> bytes:
    return struct.pack("<BBHI", int(enable), int(now), 0, 0)


# ------------------------------------------------------------ reply bodies
# `data` is what follows the 8-byte kvmi_error_code of a successful reply.

def unpack_version(data: bytes) -> int:
    return struct.unpack_from("<II", data)[0]


def unpack_guest_info(data: bytes) -> int:
    return struct.unpack_from("<I12x", data)[0]


def unpack_u64(data: bytes) -> int:  # GET_VCPU_INFO tsc_speed, GET_MAX_GFN gfn
    return struct.unpack_from("<Q", data)[0]


@dataclass
class Registers:
    """The decoded reply of GET_REGISTERS."""

    mode: int
    regs: Regs
    sregs: SRegs
    msrs: dict  # index -> value, in request order


def unpack_registers(data: bytes, nmsrs: int) -> Registers:
    want = GET_REGISTERS_REPLY_SIZE + KVM_MSR_ENTRY_SIZE * nmsrs
    if len(data) != want:
        # libkvmi insists on the exact size as well.
        raise ValueError(f"GET_REGISTERS reply is {len(data)} bytes, expected {want}")
    mode = struct.unpack_from("<I", data)[0]
    regs = Regs.unpack(data, 8)
    sregs = SRegs.unpack(data, 152)
    n = struct.unpack_from("<I", data, 464)[0]
    if n != nmsrs:
        raise ValueError(f"GET_REGISTERS reply has {n} MSRs, asked for {nmsrs}")
    msrs = {}
    for i in range(n):
        index, _, value = struct.unpack_from("<IIQ", data, 472 + 16 * i)
        msrs[index] = value
    return Registers(mode, regs, sregs, msrs)


def pack_registers_reply(mode: int, regs: Regs, sregs: SRegs,
                         msrs: list[tuple[int, int]] = ()) -> bytes:
    """Builds the GET_REGISTERS reply data (used by fakes and tests)."""
    out = struct.pack("<II", mode, 0) + regs.pack() + sregs.pack()
    out += struct.pack("<II", len(msrs), 0)
    for index, value in msrs:
        out += struct.pack("<IIQ", index, 0, value)
    return out


def unpack_cpuid(data: bytes) -> tuple[int, int, int, int]:
    return struct.unpack_from("<4I", data)


def unpack_mtrr_type(data: bytes) -> int:
    return struct.unpack_from("<B7x", data)[0]


def unpack_map_token(data: bytes) -> bytes:
    return bytes(data[:32])


def unpack_u8_array(data: bytes, count: int) -> list[int]:
    return list(data[:count])


def unpack_u32_array(data: bytes, count: int) -> list[int]:
    return list(struct.unpack_from(f"<{count}I", data))


# ---------------------------------------------------------------- handshake
_HS_VM = struct.Struct("<I16sIq64s")
_HS_TOOL = struct.Struct("<I20s")


@dataclass
class VmHello:
    """qemu2introspector: what the hypervisor announces (96 bytes)."""

    struct_size: int
    uuid: bytes
    start_time: int
    name: str

    @property
    def uuid_str(self) -> str:
        u = self.uuid.hex()
        return f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"


def pack_vm_hello(uuid: bytes = bytes(16), start_time: int = 0, name: str = "") -> bytes:
    return _HS_VM.pack(HANDSHAKE_VM_SIZE, uuid, 0, start_time,
                       name.encode()[:63].ljust(64, b"\0"))


def unpack_vm_hello(buf: bytes) -> VmHello:
    """Decodes the first min(struct_size, 96) bytes; missing tail bytes read as 0."""
    buf = bytes(buf[:HANDSHAKE_VM_SIZE]).ljust(HANDSHAKE_VM_SIZE, b"\0")
    size, uuid, _, start, name = _HS_VM.unpack(buf)
    name = name[:63].split(b"\0", 1)[0].decode(errors="replace")
    return VmHello(size, uuid, start, name)


def pack_tool_hello(cookie_hash: bytes = bytes(20)) -> bytes:
    if len(cookie_hash) != 20:
        raise ValueError("cookie_hash is 20 bytes")
    return _HS_TOOL.pack(HANDSHAKE_TOOL_SIZE, cookie_hash)
