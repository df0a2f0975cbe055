#!/usr/bin/env python3
"""Serial sink for scripts/emu.sh: receives an emulator's COM1 over TCP.

Bochs writes `com1: mode=file` only when it exits; to follow a run live (and to
keep the log when an emulator has to be killed) the launcher points the
emulator's COM1 at this sink instead.  It listens on 127.0.0.1 on a free port,
writes that port number to --port-file, accepts one connection and appends
every byte to --log as it arrives (flushed at once).  Optionally it copies the
bytes to stdout (--echo) and writes "<seconds since start> <line>" for every
complete line to --stamps, which is how the timings in docs/emulators.md were
measured.  It exits when the emulator closes the connection.

With --skip-shell-delay it answers the UEFI shell's "Press ESC in 5 seconds
to skip startup.nsh or any other key to continue" with a space, once: the
shell then runs startup.nsh at once instead of counting down (about 10 s of
Bochs time).  The key is consumed by the countdown, never seen by a command.

With --input FILE it is also the guest's keyboard on COM1: bytes appended
to FILE (by a test, while the run goes on) are sent to the emulator as they
appear, in order, each once.  This is how a test host tells a waiting guest
to go on (test/emu/linux_run.py writes "hvtest-go" for init.sh's
hvtest.hold=1) instead of the guest sleeping a guessed time.
"""
import argparse
import os
import socket
import sys
import threading
import time


def forward_input(path: str, conn: socket.socket, lock: threading.Lock,
                  done: threading.Event) -> None:
    """Sends what is appended to path to conn until done (or the peer goes)."""
    at = 0
    while not done.is_set():
        try:
            with open(path, "rb") as f:
                f.seek(at)
                data = f.read()
        except FileNotFoundError:
            data = b""
        if data:
            try:
                with lock:
                    conn.sendall(data)
            except OSError:
                return
            at += len(data)
        else:
            done.wait(0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--echo", action="store_true")
    ap.add_argument("--stamps")
    ap.add_argument("--skip-shell-delay", action="store_true")
    ap.add_argument("--input", help="send bytes appended to this file to COM1")
    args = ap.parse_args()

    start = time.monotonic()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{srv.getsockname()[1]}\n")
    os.replace(tmp, args.port_file)  # the launcher polls for this file

    conn, _ = srv.accept()
    srv.close()
    stamps = open(args.stamps, "w", buffering=1) if args.stamps else None
    # Both the key press below and the input forwarder write to conn.
    send_lock, done = threading.Lock(), threading.Event()
    fwd = None
    if args.input:
        fwd = threading.Thread(target=forward_input, args=(args.input, conn, send_lock, done),
                               daemon=True)
        fwd.start()
    partial = b""
    # The prompt arrives wrapped in terminal escapes; match a plain piece of
    # it across recv() boundaries by keeping a short tail of the stream.
    prompt, seen, pressed = b"seconds to skip", b"", not args.skip_shell_delay
    with open(args.log, "ab", buffering=0) as log:
        while True:
            try:
                data = conn.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                break
            log.write(data)
            if not pressed:
                seen = (seen + data)[-4096:]
                if prompt in seen:
                    with send_lock:
                        conn.sendall(b" ")
                    pressed = True
            if args.echo:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            if stamps:
                partial += data
                *lines, partial = partial.split(b"\n")
                now = time.monotonic() - start
                for line in lines:
                    text = line.decode("utf-8", "replace").rstrip("\r")
                    stamps.write(f"{now:8.2f} {text}\n")
    done.set()
    if fwd:
        fwd.join(1)
    if stamps:
        if partial:  # an unterminated last line still counts
            text = partial.decode("utf-8", "replace").rstrip("\r")
            stamps.write(f"{time.monotonic() - start:8.2f} {text}\n")
        stamps.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
