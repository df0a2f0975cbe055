"""A tiny in-test fake of the hypervisor side of KVMI v6.

It dials a Listener, does the VM side of the handshake and answers
commands from a small model that follows the kvmi-sim contract
(docs in /work/helpers/simvm.md): memory pattern g ^ 0xA5A5A5A5A5A5A5A5,
vCPU i with RIP 0x1000 + 0x100*i, etc.  It is only meant to exercise the
client's logic (matching, queueing, batching, errors); the real engine is
tested end to end against kvmi-sim.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import struct
import threading

from kvmi import wire as w

PATTERN = 0xA5A5A5A5A5A5A5A5


def mem_pattern(gpa: int, size: int) -> bytes:
    base = gpa & ~7
    out = bytearray()
    for q in range(base, gpa + size + 8, 8):
        out += struct.pack("<Q", q ^ PATTERN)
    return bytes(out[gpa - base:gpa - base + size])


class FakeVM:
    def __init__(self, port: int, vcpus: int = 2, mem_mib: int = 16, name: str = "fake",
                 uuid: bytes = bytes(range(16)), hello_size: int = 96,
                 allow_pause_event: bool = True, key: bytes | None = None):
        self.vcpus = vcpus
        self.mem_mib = mem_mib
        self.name = name
        self.uuid = uuid
        self.hello_size = hello_size
        self.allow_pause_event = allow_pause_event
        self.key = key
        self.key_rejected = False
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.received: list[tuple[int, int, bytes]] = []  # (id, seq, body)
        self.event_replies: list[tuple[int, dict]] = []  # (seq, decoded)
        self.tool_hello = b""
        self.replies_enabled = True
        self.memory: dict[int, int] = {}  # written bytes
        self.access: dict[int, int] = {}  # gfn -> rwx
        self.event_seq = 0
        self.before_reply = None  # hook(dom_msg_id) -> bytes to send before a reply
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # ------------------------------------------------------------ I/O
    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            c = self.sock.recv(n - len(buf))
            if not c:
                raise EOFError
            buf += c
        return buf

    def send(self, data: bytes):
        with self.lock:
            self.sock.sendall(data)

    def _run(self):
        try:
            hello = w.pack_vm_hello(self.uuid, 1234, self.name)
            if self.hello_size > 96:  # a bigger struct: the tool must consume it
                hello = struct.pack("<I", self.hello_size) + hello[4:] + bytes(
                    self.hello_size - 96)
            if self.key is not None:  # the nonce of docs/protocol.md's key scheme
                hello = hello[:20] + struct.pack("<I", 0xC0FFEE) + hello[24:]
            self.send(hello)
            self.tool_hello = self._recv(24)
            if self.key is not None:
                want = hmac.new(self.key, hello, hashlib.sha1).digest()
                if self.tool_hello[4:] != want:
                    self.key_rejected = True
                    self.sock.shutdown(socket.SHUT_RDWR)  # before any command
                    raise EOFError
            while True:
                msg_id, size, seq = w.unpack_hdr(self._recv(8))
                body = self._recv(size) if size else b""
                with self.cond:
                    self.received.append((msg_id, seq, body))
                    self.cond.notify_all()
                self._dispatch(msg_id, seq, body)
        except (EOFError, OSError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()

    def wait_for(self, pred, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self), timeout)

    # ------------------------------------------------------------ events
    def send_event(self, vcpu: int, event_id: int, **payload) -> int:
        with self.cond:
            self.event_seq += 1
            seq = self.event_seq
        arch = w.EventArch(mode=8)
        arch.regs.rip = 0x1000 + 0x100 * vcpu
        arch.sregs.cr3 = 0x100000
        self.send(w.pack_event(seq, vcpu, event_id, arch, **payload))
        return seq

    # ---------------------------------------------------------- commands
    def _reply(self, msg_id: int, seq: int, err: int = 0, data: bytes = b""):
        if self.before_reply:
            extra = self.before_reply(msg_id)
            if extra:
                self.send(extra)
        forced = err in (-w.KVM_EOPNOTSUPP, -w.KVM_EPERM)
        if not self.replies_enabled and not forced:
            return
        self.send(w.pack_msg(msg_id, seq, w.pack_error_code(err) + (data if err == 0 else b"")))

    def _dispatch(self, msg_id: int, seq: int, body: bytes):
        orig = body
        body = body.ljust(64, b"\0")  # short fixed-size commands read as zero-filled
        vcpu = struct.unpack_from("<H", body)[0]
        if msg_id == w.KVMI_EVENT_REPLY:
            with self.cond:
                self.event_replies.append((seq, w.unpack_event_reply(orig)))
                self.cond.notify_all()
            return
        if msg_id == w.KVMI_GET_VERSION:
            return self._reply(msg_id, seq, 0, struct.pack("<II", 1, 0))
        if msg_id in (w.KVMI_CHECK_COMMAND, w.KVMI_CHECK_EVENT):
            ident = vcpu
            known = w.COMMAND_NAMES if msg_id == w.KVMI_CHECK_COMMAND else w.EVENT_NAMES
            return self._reply(msg_id, seq, 0 if ident in known else -w.KVM_EPERM)
        if msg_id == w.KVMI_GET_GUEST_INFO:
            return self._reply(msg_id, seq, 0, struct.pack("<I12x", self.vcpus))
        if msg_id in (w.KVMI_GET_VCPU_INFO, w.KVMI_GET_REGISTERS, w.KVMI_PAUSE_VCPU,
                      w.KVMI_CONTROL_EVENTS, w.KVMI_CONTROL_CR, w.KVMI_CONTROL_MSR,
                      w.KVMI_SET_REGISTERS, w.KVMI_GET_CPUID, w.KVMI_GET_XSAVE,
                      w.KVMI_INJECT_EXCEPTION, w.KVMI_GET_MTRR_TYPE):
            if vcpu >= self.vcpus:
                return self._reply(msg_id, seq, -w.KVM_EINVAL)
        if msg_id == w.KVMI_GET_VCPU_INFO:
            return self._reply(msg_id, seq, 0, struct.pack("<Q", 0))
        if msg_id == w.KVMI_PAUSE_VCPU:
            if not self.allow_pause_event:
                return self._reply(msg_id, seq, -w.KVM_EPERM)
            self._reply(msg_id, seq, 0)
            self.send_event(vcpu, w.KVMI_EVENT_PAUSE_VCPU)
            return
        if msg_id == w.KVMI_CONTROL_VM_EVENTS:
            ev = struct.unpack_from("<H", body)[0]
            return self._reply(msg_id, seq, 0 if ev in w.VM_EVENTS else -w.KVM_EINVAL)
        if msg_id == w.KVMI_CONTROL_EVENTS:
            ev = struct.unpack_from("<H", body, 8)[0]
            ok = ev in w.EVENT_NAMES and ev not in w.VM_EVENTS
            return self._reply(msg_id, seq, 0 if ok else -w.KVM_EINVAL)
        if msg_id == w.KVMI_CONTROL_CR:
            cr = struct.unpack_from("<I", body, 12)[0]
            return self._reply(msg_id, seq, 0 if cr in (0, 3, 4) else -w.KVM_EINVAL)
        if msg_id == w.KVMI_CONTROL_MSR:
            return self._reply(msg_id, seq, 0)
        if msg_id == w.KVMI_GET_REGISTERS:
            nmsrs = struct.unpack_from("<H", body, 8)[0]
            idx = struct.unpack_from(f"<{nmsrs}I", body, 16)
            regs = w.Regs(rax=vcpu, rip=0x1000 + 0x100 * vcpu, rsp=0x80000 + 0x1000 * vcpu)
            sregs = w.SRegs(cr0=0x80050033, cr3=0x100000, cr4=0x20, efer=0xD01)
            sregs.cs.l = 1
            data = w.pack_registers_reply(8, regs, sregs, [(i, i * 2) for i in idx])
            return self._reply(msg_id, seq, 0, data)
        if msg_id == w.KVMI_GET_CPUID:
            fn = struct.unpack_from("<I", body, 8)[0]
            if fn != 0:
                return self._reply(msg_id, seq, -w.KVM_ENOENT)
            return self._reply(msg_id, seq, 0, struct.pack("<4I", 0xD, 1, 2, 3))
        if msg_id == w.KVMI_GET_XSAVE:
            return self._reply(msg_id, seq, 0, bytes(range(256)) * 16)
        if msg_id == w.KVMI_READ_PHYSICAL:
            gpa, size = struct.unpack_from("<QQ", body)
            if size == 0 or size > 4096 or (gpa & 0xFFF) + size > 4096:
                return self._reply(msg_id, seq, -w.KVM_EINVAL)
            data = bytearray(mem_pattern(gpa, size))
            for i in range(size):
                if gpa + i in self.memory:
                    data[i] = self.memory[gpa + i]
            return self._reply(msg_id, seq, 0, bytes(data))
        if msg_id == w.KVMI_WRITE_PHYSICAL:
            gpa, size = struct.unpack_from("<QQ", body)
            for i in range(size):
                self.memory[gpa + i] = body[16 + i]
            return self._reply(msg_id, seq, 0)
        if msg_id == w.KVMI_GET_PAGE_ACCESS:
            count = struct.unpack_from("<H", body, 2)[0]
            gpas = struct.unpack_from(f"<{count}Q", body, 8)
            return self._reply(msg_id, seq, 0, bytes(self.access.get(g >> 12, 7) for g in gpas))
        if msg_id == w.KVMI_SET_PAGE_ACCESS:
            count = struct.unpack_from("<H", body, 2)[0]
            for i in range(count):
                gpa, acc = struct.unpack_from("<QB", body, 8 + 16 * i)
                if acc & ~7:
                    return self._reply(msg_id, seq, -w.KVM_EINVAL)
                self.access[gpa >> 12] = acc
            return self._reply(msg_id, seq, 0)
        if msg_id == w.KVMI_GET_MTRR_TYPE:
            return self._reply(msg_id, seq, 0, struct.pack("<B7x", 6))
        if msg_id == w.KVMI_CONTROL_CMD_RESPONSE:
            enable, now = body[0], body[1]
            if now:
                self.replies_enabled = bool(enable)
                self._reply(msg_id, seq, 0)
            else:
                self._reply(msg_id, seq, 0)
                self.replies_enabled = bool(enable)
            return
        if msg_id == w.KVMI_GET_MAX_GFN:
            return self._reply(msg_id, seq, 0, struct.pack("<Q", self.mem_mib * 256 - 1))
        if msg_id in (w.KVMI_SET_REGISTERS, w.KVMI_INJECT_EXCEPTION):
            return self._reply(msg_id, seq, 0)
        # 12, 22, 24-26 and anything unknown: like KVM without the feature.
        return self._reply(msg_id, seq, -w.KVM_EOPNOTSUPP)
