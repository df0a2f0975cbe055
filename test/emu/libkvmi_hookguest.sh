#!/usr/bin/env bash
# libkvmi (bitdefender/libkvmi, branch kvmi-v6, unchanged) against the real
# hypervisor in Bochs: hookguest-libkvmi listens on a UNIX socket, socat
# bridges the TCP connection the hypervisor dials through its e1000
# (connect = 10.0.2.2:PORT), the guest agent restarts the AP through MP
# services (INIT-SIPI-SIPI) so that hookguest's CR4 monitoring has events.
# Asserted from hookguest's own output: the handshake, the pause batch with
# both PAUSE events, GET_MAX_GFN, the 20 page restrictions, CR events
# answered, no "Unknown event"; and the agent's PASS.
#
#   test/emu/libkvmi_hookguest.sh /path/to/libkvmi      (built: docs/client.md)
#
# Not part of `make test`: libkvmi is an outside build.  One Bochs.
set -uo pipefail
lib=${1:?usage: $0 LIBKVMI_DIR}
hook=$lib/examples/hookguest-libkvmi
[ -x "$hook" ] || { echo "no $hook (build libkvmi first, docs/client.md)"; exit 2; }
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
W=$(mktemp -d /tmp/libkvmi-run.XXXXXX)
port=$((20000 + RANDOM % 12000))
pids=()
# hookguest reads its answers from a FIFO this script holds open on fd 3:
# closing fd 3 and killing the listed PIDs leaves no child behind for the
# final wait (a feeder such as `sleep 600 |` would keep it for 600 s).
cleanup() {
    exec 3>&-
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

mkfifo "$W/hookguest.in"
stdbuf -oL "$hook" "$W/kvmi.sock" <"$W/hookguest.in" >"$W/hookguest.log" 2>&1 &
pids+=($!)
exec 3>"$W/hookguest.in"
# 777 makes hookguest skip its interactive SPP test (docs/client.md).
printf '777\n' >&3
for _ in $(seq 50); do [ -S "$W/kvmi.sock" ] && break; sleep 0.1; done
socat TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$W/kvmi.sock" 2>"$W/socat.log" &
pids+=($!)
bash scripts/mkesp.sh --out "$W/esp" \
    --conf-text "connect = 10.0.2.2:$port\nreconnect_ms = 500\nname = libkvmi-run\n" \
    --agent-args "cpus=2 mprounds=20" >/dev/null
bash scripts/emu.sh --emu bochs --model tigerlake --cpus 2 --nic --timeout 500 \
    --serial "$W/serial.log" --workdir "$W/bochs" "$W/esp" >"$W/emu.out" 2>&1
emu=$?
sleep 1
cleanup
pids=()

log=$W/hookguest.log
fail=0
need() { # pattern, minimum count, what
    local n
    n=$(grep -cE "$1" "$log" || true)
    if [ "$n" -lt "$2" ]; then
        echo "FAIL: $3 ($n, expected >= $2)"
        fail=1
    else
        echo "ok: $3 ($n)"
    fi
}
need '^New handshake' 1 "handshake"
need '^We should receive 2 pause events' 1 "pause batch for 2 vCPUs"
need '^PAUSE \(vcpu[01]\)' 2 "PAUSE events"
need '^Max gfn: 0x' 1 "GET_MAX_GFN"
need '^Set page access gpa 0x[0-9a-f]+ access r-x' 20 "page restrictions"
need '^CR[034] 0x' 1 "CR events"
if grep -qE 'Unknown event|No event' "$log"; then echo "FAIL: hookguest saw an unknown or no event"; fail=1; fi
if [ "$emu" != 0 ] || ! grep -q 'HVTEST-RESULT: PASS' "$W/serial.log"; then
    echo "FAIL: the guest did not pass (launcher $emu)"
    fail=1
fi
echo "$([ $fail = 0 ] && echo PASS || echo FAIL) libkvmi hookguest against the hypervisor (logs in $W)"
exit $fail
