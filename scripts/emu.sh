#!/usr/bin/env bash
# `test && test || die` is the intended idiom here (die exits), and cleanup()
# runs from a trap: silence shellcheck's notes on both.
# shellcheck disable=SC2015,SC2317
# emu.sh: boot an EFI system partition (a host directory) in Bochs, QEMU/TCG
# or QEMU/KVM, bounded by a timeout, and exit with the guest's result.
# Run `scripts/emu.sh --help` for usage; docs/emulators.md has the details.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
prog=emu.sh

# Exit codes (the result protocol, docs/emulators.md).
EXIT_PASS=0
EXIT_FAIL=1
EXIT_TIMEOUT=2
EXIT_ERROR=3
EXIT_STOPPED=4

# Firmware: Bochs boots only the 2 MiB OVMF build; QEMU uses the split 4 MiB
# one with a private copy of the variable store.
BOCHS_OVMF=/usr/share/ovmf/OVMF.fd
BOCHS_VGABIOS=/usr/share/vgabios/vgabios.bin
QEMU_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
QEMU_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd

usage() {
    cat <<'EOF'
Usage: scripts/emu.sh [options] ESP_DIR

Boots the directory ESP_DIR as the machine's EFI system partition (a FAT disk
made on the fly from the directory) under UEFI firmware (OVMF), and waits for
the guest to report a result on COM1 and power off.  scripts/mkesp.sh makes
such a directory (hv.efi, hv.conf, the test agent and a startup.nsh).

Emulator:
  -e, --emu NAME        bochs (default): Bochs 2.7, emulates VMX with EPT;
                        qemu: QEMU with TCG (no VMX: the hypervisor must refuse);
                        kvm:  QEMU with KVM and -cpu host,+vmx, for a host with
                              (nested) VMX; cannot run in CI, where KVM has no VMX.
  -m, --model MODEL     CPU model. Bochs: `cpu: model=` (default tigerlake; e.g.
                        corei7_haswell_4770, core2_penryn_t9600, corei7_skylake_x).
                        QEMU: -cpu (default qemu64; kvm: host,+vmx).
  -c, --cpus N          CPU count (default 2).
  -M, --mem MIB         guest memory in MiB (default 256).
      --iommu[=PROPS]   QEMU: a q35 machine with Intel's IOMMU (intel-iommu,
                        so the firmware publishes an ACPI DMAR), PROPS its
                        device properties, e.g. aw-bits=48; Bochs has none.
      --ips N           Bochs: emulated instructions per emulated second
                        (default 100000000); the guest's TSC and timers follow it.

Serial (COM1):
  -s, --serial FILE     write the serial log to FILE (default: WORKDIR/serial.log).
      --serial-mode M   socket (default): the emulator's COM1 goes to a local
                        listener of this script, so FILE grows as the guest
                        writes and survives a killed emulator; file: Bochs's or
                        QEMU's own file backend (Bochs then writes FILE only
                        when it exits).
  -l, --live            also copy the serial output to stdout as it arrives
                        (implies --serial-mode socket).
      --no-key          do not press a key at the UEFI shell's 5-second
                        startup.nsh countdown (socket mode presses one to skip it).
      --serial-input FILE  send bytes appended to FILE (while the run goes on)
                        to the guest's COM1, each once (socket mode): how a
                        test answers a guest that waits for the host.

Network:
  -n, --nic             add an e1000 NIC on user-mode networking (Bochs: slirp;
                        QEMU: -netdev user).  Guest view: 10.0.2.15 by DHCP,
                        host reachable as 10.0.2.2.
  -f, --fwd HOST:GUEST  forward TCP 127.0.0.1:HOST to the guest's port GUEST
                        (repeatable; implies --nic).
      --mac MAC         the NIC's MAC (default 52:54:00:12:34:56).

Run control:
  -t, --timeout SECS    kill the emulator after SECS seconds and report a
                        timeout (default 300; 0 = never).
      --grace SECS      after the result line, wait this long for the guest to
                        power off before killing the emulator (default 120;
                        with --timeout 0 the default is never: a machine
                        started by hand runs until it powers off or is
                        stopped).
      --stop-on REGEX   stop the emulator as soon as the serial log matches
                        REGEX (grep -E; socket mode) and no result line came:
                        for runs that end on purpose without one, e.g. a
                        vCPU the hypervisor halted after a fatal error.
  -w, --workdir DIR     put generated files (bochsrc, OVMF variables, logs) in
                        DIR (default: a new /tmp/hvemu.* directory, kept when it
                        holds the serial log).
      --stamps FILE     write "<seconds> <line>" per serial line (socket mode).
      --bochs-line LINE append LINE to the generated bochsrc (repeatable).
      --qemu-arg ARG    append ARG to the QEMU command line (repeatable).
      --dry-run         print the configuration and command, do not run.
  -q, --quiet           print only the final summary line.
  -h, --help            this text.

Result protocol: the guest prints `HVTEST-RESULT: PASS` or
`HVTEST-RESULT: FAIL <reason>` on COM1, then powers off (Bochs: "Shutdown"
written to port 0x8900; QEMU: isa-debug-exit at port 0xf4, or the UEFI
ResetSystem(EfiResetShutdown)).  Exit status:
  0  PASS      1  FAIL      2  timeout (emulator killed)
  3  no result line, emulator or launcher error (including bad usage)
  4  stopped: --stop-on matched before any result line
A FAIL line anywhere in the log wins over a PASS line.

Examples:
  scripts/mkesp.sh -o build/esp && scripts/emu.sh -l build/esp
  scripts/emu.sh -e qemu -c 4 -t 60 build/esp
  scripts/emu.sh -m core2_penryn_t9600 -s /tmp/penryn.log build/esp
  scripts/emu.sh -f 4444:4444 -t 0 -l build/esp        # a KVMI port for a client
EOF
}

die() {
    echo "$prog: error: $*" >&2
    exit $EXIT_ERROR
}
say() { [ "$quiet" = 1 ] || echo "$prog: $*" >&2; }

# ---- options --------------------------------------------------------------
emu=bochs model="" cpus=2 mem=256 serial="" serial_mode=socket live=0 key=1 serial_input=""
ips=100000000 nic=0 fwds=() mac=52:54:00:12:34:56 timeout=300 grace="" workdir="" stamps=""
bochs_lines=() qemu_args=() dry=0 quiet=0 esp="" stop_on="" iommu=0 iommu_props=""

need() { [ $# -ge 2 ] || die "option $1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
    case "$1" in
    -e | --emu) need "$@"; emu=$2; shift ;;
    -m | --model) need "$@"; model=$2; shift ;;
    -c | --cpus) need "$@"; cpus=$2; shift ;;
    -M | --mem) need "$@"; mem=$2; shift ;;
    --ips) need "$@"; ips=$2; shift ;;
    --iommu) iommu=1 ;;
    --iommu=*) iommu=1 iommu_props=${1#--iommu=} ;;
    -s | --serial) need "$@"; serial=$2; shift ;;
    --serial-mode) need "$@"; serial_mode=$2; shift ;;
    -l | --live) live=1 ;;
    --no-key) key=0 ;;
    --serial-input) need "$@"; serial_input=$2; shift ;;
    -n | --nic) nic=1 ;;
    -f | --fwd) need "$@"; fwds+=("$2"); nic=1; shift ;;
    --mac) need "$@"; mac=$2; shift ;;
    -t | --timeout) need "$@"; timeout=$2; shift ;;
    --grace) need "$@"; grace=$2; shift ;;
    --stop-on) need "$@"; stop_on=$2; shift ;;
    -w | --workdir) need "$@"; workdir=$2; shift ;;
    --stamps) need "$@"; stamps=$2; shift ;;
    --bochs-line) need "$@"; bochs_lines+=("$2"); shift ;;
    --qemu-arg) need "$@"; qemu_args+=("$2"); shift ;;
    --dry-run) dry=1 ;;
    -q | --quiet) quiet=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$esp" ] || die "more than one ESP directory given"; esp=$1 ;;
    esac
    shift
done
[ $# -eq 0 ] || { [ -z "$esp" ] && [ $# -eq 1 ] && esp=$1; } || die "unexpected arguments: $*"
[ -n "$esp" ] || die "no ESP directory given (see --help)"
[ -d "$esp" ] || die "ESP directory '$esp' does not exist"
esp=$(cd "$esp" && pwd)

isnum() { [[ "$1" =~ ^[0-9]+$ ]]; }
isnum "$cpus" && [ "$cpus" -ge 1 ] || die "--cpus wants a positive number, not '$cpus'"
isnum "$mem" && [ "$mem" -ge 64 ] || die "--mem wants MiB >= 64, not '$mem'"
isnum "$ips" && [ "$ips" -ge 1000000 ] || die "--ips wants a number >= 1000000, not '$ips'"
isnum "$timeout" || die "--timeout wants seconds, not '$timeout'"
if [ -z "$grace" ]; then
    if [ "$timeout" = 0 ]; then grace=never; else grace=120; fi
fi
[ "$grace" = never ] || isnum "$grace" || die "--grace wants seconds, not '$grace'"
case "$serial_mode" in socket | file) ;; *) die "--serial-mode is socket or file" ;; esac
[ "$live" = 0 ] || serial_mode=socket
[ -z "$stop_on" ] || [ "$serial_mode" = socket ] ||
    die "--stop-on needs --serial-mode socket (file mode writes the log only at the end)"
if [ -n "$stop_on" ]; then
    # grep's status 2 is a bad pattern: say so now, not as a silent non-match.
    echo | grep -E -q -- "$stop_on" 2>/dev/null
    [ $? -ne 2 ] || die "--stop-on: '$stop_on' is not an extended regular expression"
fi
[[ "$mac" =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || die "bad --mac '$mac'"
for f in "${fwds[@]}"; do
    [[ "$f" =~ ^([0-9]+):([0-9]+)$ ]] || die "--fwd wants HOSTPORT:GUESTPORT, not '$f'"
done
[ -z "$stamps" ] || [ "$serial_mode" = socket ] || die "--stamps needs --serial-mode socket"
[ -z "$serial_input" ] || [ "$serial_mode" = socket ] ||
    die "--serial-input needs --serial-mode socket"

case "$emu" in
bochs)
    model=${model:-tigerlake}
    command -v bochs >/dev/null || die "bochs not installed (run: make deps)"
    [ -f "$BOCHS_OVMF" ] || die "$BOCHS_OVMF missing (package ovmf; run: make deps)"
    ;;
qemu | kvm)
    if [ "$emu" = kvm ]; then model=${model:-host,+vmx}; else model=${model:-qemu64}; fi
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not installed (run: make deps)"
    [ -f "$QEMU_CODE" ] && [ -f "$QEMU_VARS" ] || die "$QEMU_CODE or VARS missing (package ovmf)"
    if [ "$emu" = kvm ] && [ "$dry" = 0 ]; then
        [ -w /dev/kvm ] || die "kvm: /dev/kvm missing or not writable"
        grep -qw vmx /proc/cpuinfo ||
            echo "$prog: warning: this host's CPUs show no vmx flag: the guest will not see VMX" >&2
    fi
    ;;
*) die "--emu is bochs, qemu or kvm, not '$emu'" ;;
esac
[ "$iommu" = 0 ] || [ "$emu" != bochs ] || die "--iommu needs QEMU (Bochs emulates no IOMMU)"

# ---- work directory ---------------------------------------------------------
own_workdir=0 made_workdir=0
if [ -z "$workdir" ]; then
    workdir=$(mktemp -d /tmp/hvemu.XXXXXX) || die "mktemp failed"
    own_workdir=1 made_workdir=1
fi
mkdir -p "$workdir" || die "cannot create $workdir"
workdir=$(cd "$workdir" && pwd)
if [ -z "$serial" ]; then
    serial=$workdir/serial.log
    own_workdir=0 # the log lives there: keep it
fi
mkdir -p "$(dirname "$serial")" && : >"$serial" || die "cannot write serial log $serial"
serial=$(cd "$(dirname "$serial")" && pwd)/$(basename "$serial")

emu_pid="" sink_pid="" limit_pid=""
cleanup() {
    [ -z "$emu_pid" ] || kill -KILL "$emu_pid" 2>/dev/null
    [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null
    [ -z "$limit_pid" ] || kill "$limit_pid" 2>/dev/null
    [ "$own_workdir" = 0 ] || rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit $EXIT_ERROR' INT TERM

# ---- serial sink (socket mode) -------------------------------------------
port=0
start_sink() {
    local args=(--port-file "$workdir/sink.port" --log "$serial")
    [ "$live" = 0 ] || args+=(--echo)
    [ "$key" = 0 ] || args+=(--skip-shell-delay)
    [ -z "$stamps" ] || args+=(--stamps "$stamps")
    [ -z "$serial_input" ] || args+=(--input "$serial_input")
    rm -f "$workdir/sink.port"
    python3 "$top/scripts/serial_sink.py" "${args[@]}" &
    sink_pid=$!
    for _ in $(seq 100); do
        [ -s "$workdir/sink.port" ] && break
        kill -0 "$sink_pid" 2>/dev/null || die "serial sink did not start"
        sleep 0.05
    done
    port=$(cat "$workdir/sink.port" 2>/dev/null) || die "serial sink gave no port"
}
[ "$serial_mode" = file ] || [ "$dry" = 1 ] || start_sink

# ---- emulator configuration -------------------------------------------------
cmd=()
if [ "$emu" = bochs ]; then
    rc=$workdir/bochsrc
    {
        echo "# generated by scripts/emu.sh"
        echo "memory: guest=$mem, host=$mem"
        echo "romimage: file=$BOCHS_OVMF"
        echo "vgaromimage: file=$BOCHS_VGABIOS"
        # A triple fault in VMX root (or anywhere outside a guest) stops
        # Bochs with a panic instead of rebooting into the same run again.
        echo "cpu: model=$model, count=$cpus, ips=$ips, reset_on_triple_fault=0"
        # Emulated time follows emulated instructions: repeatable, and idle
        # guest time is skipped (so never bound a run with a guest timer).
        echo "clock: sync=none, time0=local"
        echo 'display_library: rfb, options="timeout=0"'
        echo "ata0-master: type=disk, path=$esp, mode=vvfat"
        echo "boot: disk"
        if [ "$serial_mode" = socket ]; then
            echo "com1: enabled=1, mode=socket-client, dev=127.0.0.1:$port"
        else
            echo "com1: enabled=1, mode=file, dev=$serial"
        fi
        echo "port_e9_hack: enabled=1"
        # No host sound: on a machine without an ALSA configuration (a fresh
        # Debian with no recommends) Bochs's ALSA plugin aborts at start.
        echo "sound: driver=dummy"
        if [ "$nic" = 1 ]; then
            echo "pci: enabled=1, chipset=i440fx, slot1=e1000"
            echo "e1000: enabled=1, mac=$mac, ethmod=slirp, script=$workdir/slirp.conf"
        fi
        # Through a FIFO to log_limit.py: a guest looping on an unhandled
        # port would otherwise fill the disk (1.3 GB in 70 s seen here).
        echo "log: $workdir/bochs.log.fifo"
        echo "panic: action=fatal"
        echo "error: action=report"
        echo "info: action=report"
        for l in "${bochs_lines[@]}"; do echo "$l"; done
    } >"$rc"
    if [ "$nic" = 1 ]; then
        {
            echo "# slirp config"
            for f in "${fwds[@]}"; do echo "hostfwd = tcp:127.0.0.1:${f%%:*}-:${f##*:}"; done
        } >"$workdir/slirp.conf"
    fi
    # `c` starts the simulation at once; the built-in debugger would
    # otherwise wait at its prompt.
    echo c >"$workdir/bochs.cmds"
    cmd=(bochs -q -f "$rc" -rc "$workdir/bochs.cmds")
else
    cp "$QEMU_VARS" "$workdir/OVMF_VARS_4M.fd" || die "cannot copy $QEMU_VARS"
    machine=pc
    # The IOMMU must exist before the PCI devices it translates for; KVM
    # also needs the split irqchip for it (QEMU's intel-iommu documentation).
    if [ "$iommu" = 1 ]; then
        machine=q35
        [ "$emu" != kvm ] || machine=q35,kernel-irqchip=split
    fi
    # shellcheck disable=SC2054  # the commas belong to QEMU's option syntax
    cmd=(qemu-system-x86_64 -machine "$machine" -m "$mem" -smp "$cpus" -cpu "$model"
        -accel "$([ "$emu" = kvm ] && echo kvm || echo tcg)"
        -drive "if=pflash,format=raw,readonly=on,file=$QEMU_CODE"
        -drive "if=pflash,format=raw,file=$workdir/OVMF_VARS_4M.fd"
        -drive "format=raw,file=fat:rw:$esp"
        -device isa-debug-exit,iobase=0xf4,iosize=0x04
        -display none -monitor none -no-reboot)
    [ "$iommu" = 0 ] || cmd+=(-device "intel-iommu${iommu_props:+,$iommu_props}")
    if [ "$serial_mode" = socket ]; then
        cmd+=(-chardev "socket,id=com1,host=127.0.0.1,port=$port" -serial chardev:com1)
    else
        cmd+=(-serial "file:$serial")
    fi
    if [ "$nic" = 1 ]; then
        nd="user,id=n0"
        for f in "${fwds[@]}"; do nd+=",hostfwd=tcp:127.0.0.1:${f%%:*}-:${f##*:}"; done
        # romfile= keeps iPXE off the NIC, so OVMF leaves it unclaimed.
        cmd+=(-netdev "$nd" -device "e1000,romfile=,netdev=n0,mac=$mac")
    else
        cmd+=(-nic none)
    fi
    cmd+=("${qemu_args[@]}")
fi

if [ "$dry" = 1 ]; then
    [ "$emu" != bochs ] || { echo "# $rc"; cat "$rc"; }
    [ ! -f "$workdir/slirp.conf" ] || { echo "# $workdir/slirp.conf"; cat "$workdir/slirp.conf"; }
    printf '%q ' "${cmd[@]}"
    echo
    [ "$made_workdir" = 0 ] || rm -rf "$workdir"
    exit 0
fi

# ---- run ------------------------------------------------------------------
desc="$emu $model x$cpus"
say "booting $esp in $desc, ${mem} MiB, timeout ${timeout}s"
say "serial log: $serial"
if [ "$emu" = bochs ]; then
    rm -f "$workdir/bochs.log.fifo"
    mkfifo "$workdir/bochs.log.fifo" || die "mkfifo failed in $workdir"
    python3 "$top/scripts/log_limit.py" --in "$workdir/bochs.log.fifo" --out "$workdir/bochs.log" &
    limit_pid=$!
fi
t0=$EPOCHREALTIME
"${cmd[@]}" </dev/null >"$workdir/emu.out" 2>&1 &
emu_pid=$!

elapsed() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
secs() { local e; e=$(elapsed); echo "${e%.*}"; }
result_line() { tr -d '\r' <"$serial" 2>/dev/null | grep -a -o 'HVTEST-RESULT: .*' | head -50; }

timed_out=0 killed_after_result=0 seen_at="" wedged="" stopped=0 exited_at=""
# OVMF starts its shell (which runs startup.nsh) once per boot; a second one means the
# machine reset (Bochs has no -no-reboot), and the run would only repeat.
boot_banner="UEFI Interactive Shell"
stop_emu() {
    kill -TERM "$emu_pid" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$emu_pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$emu_pid" 2>/dev/null
}
while kill -0 "$emu_pid" 2>/dev/null; do
    now=$(secs)
    if [ "$serial_mode" = socket ] && [ -z "$seen_at" ] && [ -n "$(result_line)" ]; then
        seen_at=$now
    fi
    if [ -n "$stop_on" ] && [ -z "$seen_at" ] && tr -d '\r' <"$serial" 2>/dev/null |
        grep -a -E -q -- "$stop_on"; then
        stopped=1
        stop_emu
        break
    fi
    if [ -n "$seen_at" ] && [ "$grace" != never ] && [ $((now - seen_at)) -ge "$grace" ]; then
        killed_after_result=1
        stop_emu
        break
    fi
    if [ "$serial_mode" = socket ] && [ -z "$seen_at" ] &&
        [ "$(grep -a -c "$boot_banner" "$serial" 2>/dev/null)" -gt 1 ]; then
        wedged="the machine reset and booted again before any result"
        stop_emu
        break
    fi
    # Bochs that powered off but found its vvfat disk written (hv.efi rewrites hv.conf) asks
    # whether to write the changes back to the directory and waits for an answer nobody
    # gives: the machine is off, and the changes stay in the volatile redolog.
    if [ "$emu" = bochs ] && grep -q "Bochs is exiting" "$workdir/emu.out" 2>/dev/null; then
        exited_at=${exited_at:-$now}
        if [ $((now - exited_at)) -ge 2 ]; then
            stop_emu
            break
        fi
    fi
    # KVM stops a vCPU it cannot emulate but keeps QEMU alive: don't wait
    # for the timeout (seen with KVM hosts that lack VMX, in OVMF's SEC).
    if [ "$emu" = kvm ] && grep -q "KVM internal error" "$workdir/emu.out" 2>/dev/null; then
        wedged="KVM internal error (see $workdir/emu.out)"
        stop_emu
        break
    fi
    if [ "$timeout" -gt 0 ] && [ "$now" -ge "$timeout" ]; then
        timed_out=1
        stop_emu
        break
    fi
    sleep 0.2
done
wait "$emu_pid" 2>/dev/null
emu_rc=$?
emu_pid=""
took=$(elapsed)
if [ -n "$sink_pid" ]; then
    # The emulator is gone, so the sink sees EOF; give it a moment to flush.
    for _ in $(seq 50); do kill -0 "$sink_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$sink_pid" 2>/dev/null
    wait "$sink_pid" 2>/dev/null
    sink_pid=""
fi
if [ -n "$limit_pid" ]; then
    for _ in $(seq 100); do kill -0 "$limit_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$limit_pid" 2>/dev/null
    wait "$limit_pid" 2>/dev/null
    limit_pid=""
fi

# ---- verdict --------------------------------------------------------------
lines=$(result_line)
fail_line=$(grep -m1 '^HVTEST-RESULT: FAIL' <<<"$lines")
pass_line=$(grep -m1 '^HVTEST-RESULT: PASS' <<<"$lines")
how="powered off"
[ "$killed_after_result" = 0 ] || how="did not power off within ${grace}s of its result (killed)"
[ "$timed_out" = 0 ] || how="did not power off before the ${timeout}s timeout (killed)"
if [ -n "$fail_line" ]; then
    verdict=FAIL code=$EXIT_FAIL detail="${fail_line#HVTEST-RESULT: FAIL }; $how"
elif [ -n "$pass_line" ]; then
    verdict=PASS code=$EXIT_PASS detail="$how"
elif [ "$stopped" = 1 ]; then
    verdict=STOPPED code=$EXIT_STOPPED detail="the serial log matched --stop-on /$stop_on/ (stopped)"
elif [ -n "$wedged" ]; then
    verdict=ERROR code=$EXIT_ERROR detail=$wedged
elif [ "$timed_out" = 1 ]; then
    verdict=TIMEOUT code=$EXIT_TIMEOUT detail="no result within ${timeout}s (killed)"
else
    verdict=ERROR code=$EXIT_ERROR
    detail="emulator exited (status $emu_rc) without a result line; see $workdir/emu.out"
    if grep -q "exception with no resolution" "$workdir/emu.out" 2>/dev/null; then
        detail="triple fault (Bochs stopped, reset_on_triple_fault=0); see $workdir/emu.out"
    fi
fi
if [ "$code" != 0 ] && [ "$quiet" = 0 ] && [ "$live" = 0 ]; then
    echo "---- last lines of $serial" >&2
    tr -d '\r' <"$serial" | tail -n 15 >&2
    echo "----" >&2
fi
echo "$prog: $verdict ($desc, ${took}s):${detail:+ }$detail" >&2
if [ "$verdict" = ERROR ] || [ "$verdict" = TIMEOUT ]; then
    [ "$quiet" = 1 ] || tail -n 5 "$workdir/emu.out" >&2
fi
exit "$code"
