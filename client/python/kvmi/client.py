"""KVMI v6 introspector side: handshake, connection, typed commands, events.

Offers Listener (the introspector is the server: the hypervisor dials in),
connect() (for a hypervisor that listens, e.g. `kvmi-sim --listen`),
Domain (one introspected VM: one typed method per v6 command, an event
queue, event replies, libkvmi-style batches) and KvmiError (a command
reply with a negative error code).

Threading model: each Domain owns one reader thread that splits the byte
stream into messages.  Command replies are matched to their waiter by
(id, seq) exactly like libkvmi; KVMI_EVENT messages that arrive meanwhile
(vCPU events may interleave with any reply) go to the event queue.  Any
thread may issue commands; writes are serialized so that a message (or a
whole batch) goes out in one sendall().
"""

from __future__ import annotations

import collections
import itertools
import socket
import struct
import threading
import time
from contextlib import contextmanager

from . import wire as w
from .keyproof import key_proof

DEFAULT_TIMEOUT = 30.0  # seconds for a command reply; generous on purpose

# Commands whose reply carries data: fatal for the host while replies are off.
DATA_COMMANDS = frozenset((
    w.KVMI_GET_VERSION, w.KVMI_GET_GUEST_INFO, w.KVMI_GET_VCPU_INFO, w.KVMI_GET_REGISTERS,
    w.KVMI_GET_CPUID, w.KVMI_GET_XSAVE, w.KVMI_READ_PHYSICAL, w.KVMI_GET_PAGE_ACCESS,
    w.KVMI_GET_MAP_TOKEN, w.KVMI_GET_MTRR_TYPE, w.KVMI_GET_PAGE_WRITE_BITMAP,
    w.KVMI_GET_MAX_GFN))


class KvmiError(Exception):
    """A command answered with a non-zero error code.

    `code` is the positive KVM error number (KVM_EINVAL = 22, ...) and
    `err` the value as sent on the wire (negative)."""

    def __init__(self, msg_id: int, err: int, batch_errors=None):
        self.msg_id = msg_id
        self.err = err
        self.code = -err
        self.batch_errors = batch_errors or []
        name = w.COMMAND_NAMES.get(msg_id, f"id {msg_id}")
        super().__init__(f"{name}: error {err} ({w.ERROR_NAMES.get(-err, 'unknown')})")


class ConnectionClosed(Exception):
    """The hypervisor closed the connection (or it broke)."""


class ProtocolError(Exception):
    """The peer sent something that does not follow the protocol."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionClosed(f"connection closed ({len(buf)} of {n} bytes read)")
        buf += chunk
    return bytes(buf)


class _Pending:
    __slots__ = ("done", "err", "data", "optional")

    def __init__(self, optional: bool = False):
        self.done = threading.Event()
        self.err = None
        self.data = b""
        self.optional = optional  # a reply may or may not come (batch items)


class Domain:
    """One introspected VM over one connection (after the handshake)."""

    MAX_UNMATCHED = 64

    def __init__(self, sock: socket.socket, hello: w.VmHello, peer=None):
        self.sock = sock
        self.hello = hello
        self.peer = peer
        self.uuid = hello.uuid_str
        self.name = hello.name
        self.start_time = hello.start_time
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()  # pending, events, state
        self._cond = threading.Condition(self._lock)
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._events: collections.deque[w.Event] = collections.deque()
        self._closed = False
        self._close_reason = ""
        self._replies_enabled = True
        # Replies that matched no waiter: (id, seq, err) for diagnostics.
        self.unmatched: collections.deque = collections.deque(maxlen=self.MAX_UNMATCHED)
        self.events_received = 0
        self._reader = threading.Thread(target=self._read_loop, name="kvmi-reader",
                                        daemon=True)
        self._reader.start()

    # ---------------------------------------------------------- plumbing
    def next_seq(self) -> int:
        with self._seq_lock:
            return next(self._seq)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str:
        return self._close_reason

    def _read_loop(self):
        reason = "closed by the hypervisor"
        try:
            while True:
                msg_id, size, seq = w.unpack_hdr(_recv_exact(self.sock, w.HDR_SIZE))
                body = _recv_exact(self.sock, size) if size else b""
                if msg_id == w.KVMI_EVENT and size != w.ERROR_CODE_SIZE:
                    # An 8-byte id-1 message cannot be an event (kvmi_event
                    # alone is 544 bytes): it is the -EOPNOTSUPP answer to a
                    # KVMI_EVENT we sent, which the host sends even with
                    # replies off, i.e. possibly with nobody waiting for it.
                    ev = w.unpack_event(seq, body)
                    with self._cond:
                        self._events.append(ev)
                        self.events_received += 1
                        self._cond.notify_all()
                    continue
                if size < w.ERROR_CODE_SIZE:
                    raise ProtocolError(f"reply id {msg_id} seq {seq} has only {size} bytes")
                err = w.unpack_error_code(body)
                with self._cond:
                    p = self._pending.get((msg_id, seq))
                    if p is None:
                        self.unmatched.append((msg_id, seq, err))
                        continue
                    p.err = err
                    p.data = body[w.ERROR_CODE_SIZE:]
                    p.done.set()
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        except (OSError, ValueError, ProtocolError) as e:
            reason = f"{type(e).__name__}: {e}"
        with self._cond:
            self._closed = True
            self._close_reason = reason
            for p in self._pending.values():
                p.done.set()
            self._cond.notify_all()

    def _send(self, data: bytes):
        if self._closed:
            raise ConnectionClosed(self._close_reason)
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError as e:
                raise ConnectionClosed(f"send failed: {e}") from e

    def _wait(self, key, p: _Pending, timeout: float | None) -> bytes:
        ok = p.done.wait(DEFAULT_TIMEOUT if timeout is None else timeout)
        with self._cond:
            self._pending.pop(key, None)
        if p.err is None:
            if not ok:
                raise TimeoutError(f"no reply to {w.COMMAND_NAMES.get(key[0], key[0])} "
                                   f"seq {key[1]}")
            raise ConnectionClosed(self._close_reason)
        if p.err != 0:
            raise KvmiError(key[0], p.err)
        return p.data

    def request(self, msg_id: int, body: bytes = b"", timeout: float | None = None,
                expect_reply: bool | None = None) -> bytes:
        """Sends one command and returns the reply data after kvmi_error_code.

        Raises KvmiError for a non-zero error code, ConnectionClosed if the
        connection ends first, TimeoutError after `timeout` seconds.  While
        replies are off (control_cmd_response) it only sends, and refuses
        commands that return data (the host would close the connection)."""
        if len(body) > w.KVMI_MSG_SIZE:
            raise ValueError(f"message body {len(body)} > KVMI_MSG_SIZE {w.KVMI_MSG_SIZE}")
        if expect_reply is None:
            expect_reply = self._replies_enabled
            if not expect_reply and msg_id in DATA_COMMANDS:
                raise ValueError(f"{w.COMMAND_NAMES.get(msg_id)} returns data: the host "
                                 "closes the connection if replies are off")
        seq = self.next_seq()
        if not expect_reply:
            self._send(w.pack_msg(msg_id, seq, body))
            return b""
        key = (msg_id, seq)
        p = _Pending()
        with self._cond:
            self._pending[key] = p
        try:
            self._send(w.pack_msg(msg_id, seq, body))
        except ConnectionClosed:
            with self._cond:
                self._pending.pop(key, None)
            raise
        return self._wait(key, p, timeout)

    def close(self):
        """Closes the connection: for the hypervisor this ends introspection
        (and acknowledges an UNHOOK event)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(timeout=5)
        self.sock.close()

    def wait_closed(self, timeout: float) -> bool:
        """Waits until the hypervisor closes the connection."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ events
    def events_until_closed(self, timeout: float) -> list[w.Event] | None:
        """Takes every event until the peer ends the session; None if it has
        not ended within `timeout` seconds."""
        seen = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                ev = self.wait_event(timeout=min(2.0, max(0.0, end - time.monotonic())))
            except ConnectionClosed:
                return seen
            if ev is not None:
                seen.append(ev)
        return None

    def wait_event(self, timeout: float | None = None, match=None) -> w.Event | None:
        """Takes the oldest queued event (for which match(ev) is true, if
        given), waiting up to `timeout` seconds (None: forever).  Returns
        None on timeout; raises ConnectionClosed once the connection has
        ended and no matching event is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                for i, ev in enumerate(self._events):
                    if match is None or match(ev):
                        del self._events[i]
                        return ev
                if self._closed:
                    raise ConnectionClosed(self._close_reason)
                if deadline is None:
                    self._cond.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)

    def pending_events(self) -> int:
        with self._cond:
            return len(self._events)

    def queued_events(self) -> list[w.Event]:
        """A copy of the events received and not yet taken."""
        with self._cond:
            return list(self._events)

    def event_reply_bytes(self, ev: w.Event, action: int = w.ACTION_CONTINUE,
                          new_val: int | None = None, pf: dict | None = None) -> bytes:
        """The KVMI_EVENT_REPLY message for `ev` with its specific part:
        CR/MSR carry new_val (default: the event's new_value, i.e. allow the
        write); PF carries kvmi_event_pf_reply built from `pf` (keys of
        wire.pack_pf_reply; default all zero)."""
        if ev.event == w.KVMI_EVENT_UNHOOK:
            raise ValueError("KVMI_EVENT_UNHOOK takes no reply: close the connection instead")
        if ev.event in (w.KVMI_EVENT_CR, w.KVMI_EVENT_MSR):
            specific = w.pack_cr_reply(ev.new_value if new_val is None else new_val)
        elif ev.event == w.KVMI_EVENT_PF:
            specific = w.pack_pf_reply(**(pf or {}))
        else:
            specific = b""
        return w.pack_event_reply(ev.seq, ev.vcpu, ev.event, action, specific)

    def reply(self, ev: w.Event, action: int = w.ACTION_CONTINUE,
              new_val: int | None = None, pf: dict | None = None):
        """Answers a vCPU event (no reply comes back: the kernel never answers
        an event reply)."""
        self._send(self.event_reply_bytes(ev, action, new_val, pf))

    # ----------------------------------------------------------- batches
    @contextmanager
    def batch(self):
        """libkvmi-style batch: commands queued in the block go out in one
        write as CONTROL_CMD_RESPONSE(0,1) + commands + CONTROL_CMD_RESPONSE(1,1)
        when the block ends, and only the last reply is awaited.  Errors the
        engine sends even with replies off (-EPERM, -EOPNOTSUPP) are raised as
        KvmiError after that reply.  If the last item is an event reply the
        suffix is (1,0) and nothing is awaited, as libkvmi does."""
        b = Batch(self)
        yield b
        b.commit()

    def _commit_batch(self, items: list[tuple[int, bytes, bool]], timeout=None,
                      first_seq: int | None = None):
        if not items:
            return
        if len(items) == 1 and items[0][0] == w.KVMI_EVENT_REPLY:
            self._send(items[0][1])
            return
        ends_with_reply = items[-1][0] == w.KVMI_EVENT_REPLY
        out = [w.pack_msg(w.KVMI_CONTROL_CMD_RESPONSE,
                          first_seq if first_seq is not None else self.next_seq(),
                          w.req_control_cmd_response(False, True))]
        optional = []
        with self._cond:
            for msg_id, data, _ in items:
                out.append(data)
                if msg_id != w.KVMI_EVENT_REPLY:
                    key = (msg_id, w.unpack_hdr(data)[2])
                    p = _Pending(optional=True)
                    self._pending[key] = p
                    optional.append((key, p))
            last_seq = self.next_seq()
            last_key = (w.KVMI_CONTROL_CMD_RESPONSE, last_seq)
            last = _Pending()
            if not ends_with_reply:
                self._pending[last_key] = last
        out.append(w.pack_msg(w.KVMI_CONTROL_CMD_RESPONSE, last_seq,
                              w.req_control_cmd_response(True, not ends_with_reply)))
        try:
            self._send(b"".join(out))
            if not ends_with_reply:
                self._wait(last_key, last, timeout)
        finally:
            with self._cond:
                for key, _ in optional:
                    self._pending.pop(key, None)
        errors = [(k[0], p.err) for k, p in optional if p.err not in (None, 0)]
        if errors:
            raise KvmiError(errors[0][0], errors[0][1], batch_errors=errors)

    # -------------------------------------------------- typed commands
    def get_version(self) -> int:
        return w.unpack_version(self.request(w.KVMI_GET_VERSION))

    def check_command(self, msg_id: int) -> bool:
        """True if the host allows command `msg_id` (KVMI_CHECK_COMMAND)."""
        try:
            self.request(w.KVMI_CHECK_COMMAND, w.req_check_id(msg_id))
            return True
        except KvmiError as e:
            if e.code == w.KVM_EPERM:
                return False
            raise

    def check_event(self, event_id: int) -> bool:
        try:
            self.request(w.KVMI_CHECK_EVENT, w.req_check_id(event_id))
            return True
        except KvmiError as e:
            if e.code == w.KVM_EPERM:
                return False
            raise

    def get_guest_info(self) -> int:
        """Number of online vCPUs."""
        return w.unpack_guest_info(self.request(w.KVMI_GET_GUEST_INFO))

    def get_vcpu_info(self, vcpu: int) -> int:
        """TSC frequency in Hz (0 if unknown)."""
        return w.unpack_u64(self.request(w.KVMI_GET_VCPU_INFO, w.req_vcpu(vcpu)))

    def pause_vcpu(self, vcpu: int, wait: bool = True):
        """One KVMI_PAUSE_VCPU; the vCPU then sends a PAUSE_VCPU event and
        stays paused until that event is answered."""
        self.request(w.KVMI_PAUSE_VCPU, w.req_pause_vcpu(vcpu, int(wait)))

    def pause_all(self, count: int | None = None, timeout: float | None = None) -> int:
        """libkvmi's kvmi_pause_all_vcpus: one write with replies off, a
        PAUSE_VCPU(wait=1) per vCPU, replies on; waits for the last reply
        only.  Returns the number of vCPUs asked to pause."""
        if count is None:
            count = self.get_guest_info()
        with self.batch() as b:
            for i in range(count):
                b.pause_vcpu(i, wait=True)
        return count

    def control_vm_events(self, event_id: int, enable: bool = True):
        self.request(w.KVMI_CONTROL_VM_EVENTS, w.req_control_vm_events(event_id, enable))

    def control_events(self, vcpu: int, event_id: int, enable: bool = True):
        self.request(w.KVMI_CONTROL_EVENTS, w.req_control_events(vcpu, event_id, enable))

    def control_cr(self, vcpu: int, cr: int, enable: bool = True):
        self.request(w.KVMI_CONTROL_CR, w.req_control_cr(vcpu, cr, enable))

    def control_msr(self, vcpu: int, msr: int, enable: bool = True):
        self.request(w.KVMI_CONTROL_MSR, w.req_control_msr(vcpu, msr, enable))

    def control_ve(self, vcpu: int = 0):
        """KVMI_CONTROL_VE (12) is reserved in v6: every host answers -95."""
        self.request(w.KVMI_CONTROL_VE, w.pack_vcpu_hdr(vcpu) + bytes(8))

    def get_registers(self, vcpu: int, msrs=()) -> w.Registers:
        msrs = list(msrs)
        data = self.request(w.KVMI_GET_REGISTERS, w.req_get_registers(vcpu, msrs))
        return w.unpack_registers(data, len(msrs))

    def set_registers(self, vcpu: int, regs: w.Regs):
        """Takes effect only while `vcpu` waits for an event reply (applied
        when the reply arrives); otherwise the host drops it but answers 0."""
        self.request(w.KVMI_SET_REGISTERS, w.req_set_registers(vcpu, regs))

    def get_cpuid(self, vcpu: int, function: int, index: int = 0) -> tuple:
        """(eax, ebx, ecx, edx); KvmiError KVM_ENOENT if the leaf is absent."""
        return w.unpack_cpuid(self.request(w.KVMI_GET_CPUID,
                                           w.req_get_cpuid(vcpu, function, index)))

    def get_xsave(self, vcpu: int) -> bytes:
        return bytes(self.request(w.KVMI_GET_XSAVE, w.req_vcpu(vcpu)))

    def read_physical(self, gpa: int, size: int) -> bytes:
        """One READ_PHYSICAL: 1..4096 bytes within one page."""
        data = self.request(w.KVMI_READ_PHYSICAL, w.req_read_physical(gpa, size))
        if len(data) != size:
            raise ProtocolError(f"READ_PHYSICAL returned {len(data)} bytes, asked {size}")
        return bytes(data)

    def write_physical(self, gpa: int, data: bytes):
        """One WRITE_PHYSICAL: 1..4096 bytes within one page."""
        self.request(w.KVMI_WRITE_PHYSICAL, w.req_write_physical(gpa, data))

    def read_memory(self, gpa: int, size: int) -> bytes:
        """Reads any range, split at page boundaries."""
        out = bytearray()
        while size > 0:
            n = min(size, w.PAGE_SIZE - (gpa & 0xFFF))
            out += self.read_physical(gpa, n)
            gpa += n
            size -= n
        return bytes(out)

    def write_memory(self, gpa: int, data: bytes):
        """Writes any range, split at page boundaries."""
        off = 0
        while off < len(data):
            n = min(len(data) - off, w.PAGE_SIZE - (gpa & 0xFFF))
            self.write_physical(gpa, data[off:off + n])
            gpa += n
            off += n

    def inject_exception(self, vcpu: int, nr: int, error_code: int | None = None,
                         address: int = 0):
        self.request(w.KVMI_INJECT_EXCEPTION,
                     w.req_inject_exception(vcpu, nr, error_code, address))

    def get_page_access(self, gpas, view: int = 0) -> list[int]:
        gpas = list(gpas) if not isinstance(gpas, int) else [gpas]
        data = self.request(w.KVMI_GET_PAGE_ACCESS, w.req_get_page_access(gpas, view))
        return w.unpack_u8_array(data, len(gpas))

    def set_page_access(self, entries, view: int = 0):
        """entries: [(gpa, access bits R=1 W=2 X=4), ...]"""
        self.request(w.KVMI_SET_PAGE_ACCESS, w.req_set_page_access(list(entries), view))

    def get_map_token(self) -> bytes:
        return w.unpack_map_token(self.request(w.KVMI_GET_MAP_TOKEN))

    def get_mtrr_type(self, gpa: int, vcpu: int = 0) -> int:
        return w.unpack_mtrr_type(self.request(w.KVMI_GET_MTRR_TYPE,
                                               w.req_get_mtrr_type(vcpu, gpa)))

    def control_spp(self, enable: bool = True):
        self.request(w.KVMI_CONTROL_SPP, w.req_control_spp(enable))

    def get_page_write_bitmap(self, gpas, view: int = 0) -> list[int]:
        gpas = list(gpas)
        data = self.request(w.KVMI_GET_PAGE_WRITE_BITMAP,
                            w.req_get_page_write_bitmap(gpas, view))
        return w.unpack_u32_array(data, len(gpas))

    def set_page_write_bitmap(self, entries, view: int = 0):
        self.request(w.KVMI_SET_PAGE_WRITE_BITMAP,
                     w.req_set_page_write_bitmap(list(entries), view))

    def control_cmd_response(self, enable: bool, now: bool = True):
        """KVMI_CONTROL_CMD_RESPONSE.  Waits for a reply only when the host
        sends one: (enable, now=1) replies iff enable; now=0 replies iff
        replies were on before this command.  Never issue data-returning
        commands while replies are off: the host closes the connection."""
        if now:
            expect = enable
        else:
            expect = self._replies_enabled
        self.request(w.KVMI_CONTROL_CMD_RESPONSE, w.req_control_cmd_response(enable, now),
                     expect_reply=expect)
        self._replies_enabled = bool(enable)

    def get_max_gfn(self) -> int:
        return w.unpack_u64(self.request(w.KVMI_GET_MAX_GFN))


class Batch:
    """Commands collected for Domain.batch(); each method mirrors Domain's."""

    def __init__(self, dom: Domain):
        self.dom = dom
        self.items: list[tuple[int, bytes, bool]] = []
        self.committed = False
        # The replies-off prefix takes the first seq so seqs go out in order.
        self.first_seq = dom.next_seq()

    def _add(self, msg_id: int, body: bytes):
        self.items.append((msg_id, w.pack_msg(msg_id, self.dom.next_seq(), body), True))

    def pause_vcpu(self, vcpu: int, wait: bool = True):
        self._add(w.KVMI_PAUSE_VCPU, w.req_pause_vcpu(vcpu, int(wait)))

    def set_registers(self, vcpu: int, regs: w.Regs):
        self._add(w.KVMI_SET_REGISTERS, w.req_set_registers(vcpu, regs))

    def set_page_access(self, entries, view: int = 0):
        self._add(w.KVMI_SET_PAGE_ACCESS, w.req_set_page_access(list(entries), view))

    def control_events(self, vcpu: int, event_id: int, enable: bool = True):
        self._add(w.KVMI_CONTROL_EVENTS, w.req_control_events(vcpu, event_id, enable))

    def write_physical(self, gpa: int, data: bytes):
        self._add(w.KVMI_WRITE_PHYSICAL, w.req_write_physical(gpa, data))

    def reply(self, ev: w.Event, action: int = w.ACTION_CONTINUE, new_val=None, pf=None):
        self.items.append((w.KVMI_EVENT_REPLY,
                           self.dom.event_reply_bytes(ev, action, new_val, pf), False))

    def commit(self, timeout: float | None = None):
        if self.committed:
            return
        self.committed = True
        self.dom._commit_batch(self.items, timeout, self.first_seq)


# ------------------------------------------------------------- handshake
MAX_HELLO = 64 * 1024


def handshake(sock: socket.socket, key: bytes | str | None = None,
              timeout: float = 15.0) -> w.VmHello:
    """Introspector side: read the hypervisor's struct (96 bytes or whatever
    struct_size it announces), then send the 24-byte answer.  With a key
    the cookie_hash carries the proof described in docs/protocol.md."""
    sock.settimeout(timeout)
    try:
        head = _recv_exact(sock, 4)
        (size,) = struct.unpack("<I", head)
        if size < w.HANDSHAKE_NAME_OFFSET or size > MAX_HELLO:
            raise ProtocolError(f"handshake struct_size {size} outside [32, 65536]")
        rest = _recv_exact(sock, size - 4)
        hello = w.unpack_vm_hello(head + rest)
        cookie = key_proof(key, hello, head + rest) if key is not None else bytes(20)
        sock.sendall(w.pack_tool_hello(cookie))
    except socket.timeout as e:
        raise ProtocolError("handshake timed out") from e
    sock.settimeout(None)
    return hello


def _open_domain(sock, peer, key, check_version: bool) -> Domain:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    hello = handshake(sock, key)
    dom = Domain(sock, hello, peer)
    if check_version:
        # libkvmi does this right after the handshake and drops hosts < 1.
        try:
            version = dom.get_version()
        except Exception:
            dom.close()
            raise
        if version < w.KVMI_VERSION:
            dom.close()
            raise ProtocolError(f"KVMI version {version} < {w.KVMI_VERSION}")
        dom.version = version
    return dom


class Listener:
    """TCP listener the hypervisor (or kvmi-sim --connect) dials into."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, key=None):
        self.key = key
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.host, self.port = self.sock.getsockname()[:2]

    def accept(self, timeout: float | None = None, check_version: bool = True) -> Domain:
        """Waits for one hypervisor connection and does the handshake."""
        self.sock.settimeout(timeout)
        try:
            conn, peer = self.sock.accept()
        except socket.timeout as e:
            raise TimeoutError("no hypervisor connected") from e
        conn.settimeout(None)
        try:
            return _open_domain(conn, peer, self.key, check_version)
        except BaseException:
            conn.close()
            raise

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(host: str, port: int, key=None, timeout: float = 15.0,
            check_version: bool = True) -> Domain:
    """Dials a hypervisor that listens (kvmi-sim --listen), then handshakes
    exactly as if it had dialed us."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(None)
    try:
        return _open_domain(sock, (host, port), key, check_version)
    except BaseException:
        sock.close()
        raise
