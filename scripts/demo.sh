#!/usr/bin/env bash
# The main job (`make run`): boot the hypervisor in Bochs with a guest and
# attach an introspector to it through the hypervisor's own NIC.
#
#  1. Bochs (tigerlake, 2 CPUs, an e1000 on slirp) boots OVMF, which starts
#     hv.efi (hv.conf: `connect = 10.0.2.2:PORT`) and then the guest test
#     agent in its KVMI demo mode (`kvmi=2`): it announces a marker page and
#     waits for the introspector.  The hypervisor dials 10.0.2.2:PORT, which
#     slirp maps to this host's 127.0.0.1:PORT, where kvmictl listens.
#  2. kvmictl, one session per step (the hypervisor redials after each):
#     guest info, pause-all + registers, READ_PHYSICAL of the agent's marker,
#     then the agent is released (WRITE_PHYSICAL) and its CR4 writes and
#     writes to a page kvmictl made read-only arrive as CR and PF events;
#     finally the agent is told to stop and reports PASS.
#     If the hypervisor never attaches, the script says so and runs the same
#     kvmictl steps against kvmi-sim (the same kvmi/ engine on a host socket)
#     so the introspector side can still be seen.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
B=build
work=$(mktemp -d /tmp/hv-demo.XXXXXX)
emu_pid=
tail_pid=
cleanup() {
    [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null || true
    [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true # the launcher stops Bochs
    wait 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
serial=$work/serial.log

# Waits (bounded) for a pattern on the serial log; prints the matching line.
wait_serial() {
    local pat=$1 secs=$2 t=0
    while [ "$t" -lt "$secs" ]; do
        if grep -aE -m1 "$pat" "$serial" 2>/dev/null; then return 0; fi
        if ! kill -0 "$emu_pid" 2>/dev/null; then return 1; fi
        sleep 1
        t=$((t + 1))
    done
    return 1
}

port=$((20000 + RANDOM % 12000))
ctl() { python3 client/kvmictl -l "127.0.0.1:$port" --accept-timeout 90 "$@"; }

say "1. Boot: OVMF -> hv.efi (hypervisor, dials 10.0.2.2:$port) -> guest agent, in Bochs (tigerlake, 2 CPUs, e1000)"
bash scripts/mkesp.sh --out "$work/esp" --hv "$B/hv.efi" --agent "$B/agent.efi" \
    --conf-text "connect = 10.0.2.2:$port\nreconnect_ms = 500\nname = demo-guest\n" \
    --agent-args "cpus=2 kvmi=2" --no-poweroff >/dev/null
bash scripts/emu.sh --emu bochs --model tigerlake --cpus 2 --nic --timeout 900 --grace 900 \
    --serial "$serial" --workdir "$work/bochs" "$work/esp" >"$work/emu.out" 2>&1 &
emu_pid=$!
touch "$serial"
tail -F "$serial" 2>/dev/null | grep --line-buffered -aE '^(hv|AGENT|HVTEST)' &
tail_pid=$!

marker=$(wait_serial 'AGENT: kvmi: marker at 0x[0-9a-f]+' 400 || true)
attached=no
if [ -n "$marker" ]; then
    page=$(sed -E 's/.*marker at (0x[0-9a-f]+).*/\1/' <<<"$marker")
    mailbox=$(printf '0x%x' $((page + 16)))
    stop=$(printf '0x%x' $((page + 24)))
    watched=$(printf '0x%x' $((page + 4096)))
    say "2. Introspection: kvmictl on 127.0.0.1:$port, the hypervisor attached through its NIC"
    echo "-- guest info"
    if ctl info; then
        attached=yes
        echo "-- pause every vCPU, read vCPU 0's registers, resume"
        ctl run 'pause; regs 0; resume'
        echo "-- read the agent's marker page ($page) with READ_PHYSICAL"
        ctl read "$page" 16
        echo "-- release the agent (WRITE_PHYSICAL $mailbox), write-protect $watched, watch CR4 and PF events"
        ctl run "write $mailbox --u64 0x4b564d4957524954; watch cr,pf --vcpu 0 --cr 4 --protect $watched=r-x --count 6; write $stop --u64 1"
        wait_serial 'AGENT: kvmi: demo: .* told to stop' 120 >/dev/null || true
        if wait_serial 'HVTEST-RESULT: PASS' 120 >/dev/null; then
            say "demo finished: the guest agent passed under introspection (logs in $work)"
        else
            say "demo: the guest agent did not report PASS (logs in $work)"
            exit 1
        fi
    fi
fi

if [ "$attached" = no ]; then
    say "2. FALLBACK: the hypervisor in Bochs did not attach (see $serial)."
    echo "   Showing the introspector against kvmi-sim instead: the same kvmi/ engine over a"
    echo "   host socket, with a scripted guest - NOT the hypervisor."
    cleanup
    emu_pid= tail_pid=
    sim() { "$B/kvmi-sim" --connect "127.0.0.1:$port" --vcpus 2 --mem 64 --quiet --name demo-guest & }
    run_step() {
        local title=$1
        shift
        echo "-- $title (kvmi-sim)"
        sim
        local simpid=$!
        ctl "$@"
        kill "$simpid" 2>/dev/null || true
        wait "$simpid" 2>/dev/null || true
    }
    run_step "guest info" info
    run_step "pause every vCPU, read vCPU 0's registers, resume" run 'pause; regs 0; resume'
    run_step "read guest memory at 0x200000" read 0x200000 32
    run_step "write-protect 0x300000 and watch the PF events it raises" \
        watch pf --vcpu 0 --protect 0x300000=r-x --count 3
    say "demo finished on the FALLBACK (kvmi-sim); logs in $work"
    exit 1
fi
