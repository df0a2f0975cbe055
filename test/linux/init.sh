#!/bin/busybox sh
# /init of the Linux test guest's initramfs (test/linux/mkguest.sh packs it
# with busybox-static).  It reports on the serial console, checks what the
# kernel command line asks for, runs a workload pinned to every CPU, prints
# the result line of docs/emulators.md ("HVTEST-RESULT: PASS" or
# "HVTEST-RESULT: FAIL <reason>") and powers the machine off.
#
# Checks, from the kernel command line (absent = report only):
#   hvtest.cpus=N    CPUs online (/proc/cpuinfo, nproc, /sys/.../cpu/online)
#   hvtest.vmx=0|1   every CPU shows / no CPU shows the vmx flag
#   hvtest.hv=0|1    every CPU shows / no CPU shows the hypervisor flag
#   hvtest.e1000=0|1 an 8086:100e is absent / present in /sys/bus/pci
#   hvtest.dmar=0|1  the ACPI DMAR is absent / present in the kernel's view
#                    (/sys/firmware/acpi/tables/DMAR; hidden under DMA protection)
#   hvtest.off=port|acpi|reboot  power off by "Shutdown" to Bochs's port
#                    0x8900 (default: the hypervisor prints its statistics
#                    there), or by poweroff -f (ACPI S5) only, or restart by
#                    reboot -f (the path is the kernel's reboot= option)
#   hvtest.sleep=mem after the hold: echo mem > /sys/power/state (ACPI S3),
#                    report that the system is awake and how the write ended,
#                    then hold for the host once more (the same go word)
#   hvtest.hold=1    after the workload, keep every CPU busy (one pinned shell
#                    loop each) and wait until the host writes the line
#                    "hvtest-go" to the console (COM1); then run the workload
#                    once more: the host talks to the hypervisor meanwhile
#                    (test/emu/linux_run.py)
#   hvtest.hold=spawn  the same wait, with every CPU starting short-lived
#                    processes in a pinned loop (each fork is a new address
#                    space: context switches the host can count as CR3
#                    loads) and a `sleep` to find in the task list; no
#                    second workload (make run, scripts/demo_linux.py)
#   hvtest.workload=0  skip the workload (the checks and markers stay)
#   hvtest.net=serve load the kernel's e1000.ko, configure eth0 as
#                    10.0.2.15/24 via 10.0.2.2 (slirp) and serve the diag
#                    protocol with /bin/diagd on port 7777 until a client
#                    sends quit (make bench-net's Linux peer)
# Markers (one line each, "LINUX: " prefix) are documented in
# docs/emulators.md, "Linux guest".
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

say() { echo "LINUX: $*"; }
fails=""
fail() {
    say "check failed: $*"
    fails="${fails:+$fails; }$*"
}
# The value of hvtest.KEY= on the kernel command line, or nothing.
arg() {
    for w in $(cat /proc/cmdline); do
        case "$w" in hvtest.$1=*) echo "${w#*=}" ;; esac
    done
}
up() { cut -d' ' -f1 /proc/uptime; }

say "init start, uptime $(up) s, kernel $(uname -r)"
say "cmdline $(cat /proc/cmdline)"

# CPUs: three views that must agree (the kernel's online mask, the scheduler's
# affinity view through nproc, and the per-CPU records of /proc/cpuinfo).
n_info=$(grep -c '^processor' /proc/cpuinfo)
n_proc=$(nproc)
online=$(cat /sys/devices/system/cpu/online)
say "cpus cpuinfo $n_info nproc $n_proc online $online"
[ "$n_info" = "$n_proc" ] || fail "cpuinfo says $n_info CPUs, nproc $n_proc"
want=$(arg cpus)
[ -z "$want" ] || [ "$n_info" = "$want" ] || fail "$n_info CPUs online, expected $want"

# CPUID as Linux saw it.  Only the flags lines: 6.1 also prints "vmx flags".
n_vmx=$(grep '^flags' /proc/cpuinfo | grep -c -w vmx)
n_hv=$(grep '^flags' /proc/cpuinfo | grep -c -w hypervisor)
say "cpuid vmx on $n_vmx of $n_info CPUs, hypervisor on $n_hv of $n_info"
say "cpu model $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
for k in vmx hv; do
    w=$(arg $k)
    [ "$k" = vmx ] && got=$n_vmx || got=$n_hv
    case "$w" in
    "") ;;
    0) [ "$got" = 0 ] || fail "$k flag on $got CPUs, expected none" ;;
    1) [ "$got" = "$n_info" ] || fail "$k flag on $got of $n_info CPUs, expected all" ;;
    *) fail "bad hvtest.$k=$w" ;;
    esac
done

# PCI, from sysfs: every function the kernel enumerated.
n_e1000=0
for d in /sys/bus/pci/devices/*; do
    [ -e "$d/vendor" ] || continue
    v=$(cat "$d/vendor") dev=$(cat "$d/device") cls=$(cat "$d/class")
    say "pci ${d##*/} ${v#0x}:${dev#0x} class ${cls#0x}"
    [ "$v:$dev" = "0x8086:0x100e" ] && n_e1000=$((n_e1000 + 1))
done
say "pci e1000 (8086:100e) count $n_e1000"
case "$(arg e1000)" in
"") ;;
0) [ "$n_e1000" = 0 ] || fail "an e1000 is visible in /sys/bus/pci" ;;
1) [ "$n_e1000" -gt 0 ] || fail "no e1000 in /sys/bus/pci" ;;
*) fail "bad hvtest.e1000=$(arg e1000)" ;;
esac

# ACPI: the DMA-remapping table, which the hypervisor hides once it owns VT-d.
[ -e /sys/firmware/acpi/tables/DMAR ] && dmar=1 || dmar=0
say "acpi dmar $dmar"
case "$(arg dmar)" in
"" | "$dmar") ;;
0 | 1) fail "ACPI DMAR present: $dmar, expected $(arg dmar)" ;;
*) fail "bad hvtest.dmar=$(arg dmar)" ;;
esac

# Workload: on every online CPU, pinned there with taskset, hash the same
# 256 KiB of generated data.  Each worker reports the CPU it ended on (field 39
# of /proc/self/stat) and its digest; all digests must equal the one the
# host computed when it built this initramfs (@EXPECT_SHA256@).
# $1: "" the first time, "again " after the host's hold.
expect=@EXPECT_SHA256@
workload() {
    say "workload ${1}start, uptime $(up) s"
    mkdir -p /tmp
    for c in $(seq 0 $((n_info - 1))); do
        taskset -c "$c" sh -c '
            s=$(seq 1 60000 | head -c 262144 | sha256sum | cut -d" " -f1)
            echo "$s $(cut -d" " -f39 /proc/self/stat)"' >"/tmp/w$c" 2>&1 &
    done
    wait
    bad=0
    for c in $(seq 0 $((n_info - 1))); do
        read -r sum ran <"/tmp/w$c"
        say "workload ${1}cpu $c ran on $ran sha256 $sum"
        if [ "$sum" != "$expect" ] || [ "$ran" != "$c" ]; then bad=$((bad + 1)); fi
    done
    say "workload ${1}done on $n_info CPUs, $bad wrong, uptime $(up) s"
    [ "$bad" = 0 ] || fail "workload ${1}wrong on $bad CPUs"
}
if [ "$(arg workload)" != 0 ]; then workload ""; fi

# hvtest.hold=1: every CPU busy in a pinned loop while the host works with
# the hypervisor; the host (not a timer) says when to go on, by writing
# "hvtest-go" to COM1, which reaches us as a line on the console.
# $1: the loop each CPU runs.
hold() {
    pids=""
    for c in $(seq 0 $((n_info - 1))); do
        taskset -c "$c" sh -c "$1" &
        pids="$pids $!"
    done
    if [ "$(arg hold)" = spawn ]; then
        sleep 86400 &
        pids="$pids $!"
        say "holding for the host, spawning on $n_info CPUs"
    else
        say "holding for the host, busy on $n_info CPUs"
    fi
    got=""
    while read -r line; do
        case "$line" in *hvtest-go*) got=1 && break ;; esac
    done </dev/console
    # shellcheck disable=SC2086  # one word per pid
    kill $pids
    wait
    if [ -n "$got" ]; then
        say "released by the host, uptime $(up) s"
    else
        fail "console closed before the host's go word"
    fi
}
case "$(arg hold)" in
"") ;;
1)
    hold 'while :; do :; done'
    workload "again "
    ;;
spawn) hold 'while :; do (/bin/busybox true); done' ;;
*) fail "bad hvtest.hold=$(arg hold)" ;;
esac

# hvtest.sleep=mem: suspend to RAM, which the hypervisor refuses by default
# (on_sleep = refuse): the kernel reads the wake status at once and resumes;
# the host then checks it still introspects the awake system.
case "$(arg sleep)" in
"") ;;
mem)
    say "sleep: /sys/power/state offers: $(cat /sys/power/state), mem_sleep $(cat /sys/power/mem_sleep)"
    grep -qw mem /sys/power/state || fail "no mem in /sys/power/state (no \\_S3?)"
    # S3 itself ("deep"), never suspend-to-idle, which would wait for a wake event.
    echo deep >/sys/power/mem_sleep || fail "cannot choose deep in /sys/power/mem_sleep"
    say "sleep: echo mem > /sys/power/state, uptime $(up) s"
    echo mem >/sys/power/state
    rc=$?
    say "sleep: awake after echo mem (status $rc), uptime $(up) s, cpus online $(cat /sys/devices/system/cpu/online)"
    hold 'while :; do (/bin/busybox true); done'
    ;;
*) fail "bad hvtest.sleep=$(arg sleep)" ;;
esac

# hvtest.net=serve: the Linux kernel's e1000 driver and TCP stack serve the
# host's diag measurement (make bench-net), on the address the hypervisor's
# DHCP gets from slirp.  Static: slirp answers ARP for 10.0.2.2 either way.
net_serve() {
    [ -s /lib/modules/e1000.ko ] || { fail "no /lib/modules/e1000.ko in the initramfs"; return; }
    insmod /lib/modules/e1000.ko || { fail "insmod e1000.ko failed"; return; }
    i=0
    while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e /sys/class/net/eth0 ] || { fail "no eth0 after insmod e1000.ko"; return; }
    if ! { ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
        ip route add default via 10.0.2.2; }; then
        fail "cannot configure eth0"
        return
    fi
    i=0
    while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    drv=$(readlink /sys/class/net/eth0/device/driver)
    say "net eth0 $(cat /sys/class/net/eth0/address) driver ${drv##*/}" \
        "carrier $(cat /sys/class/net/eth0/carrier 2>/dev/null) 10.0.2.15/24 via 10.0.2.2"
    # slirp learns our MAC from our frames (it never asks by ARP): the ping's
    # ARP request for the gateway teaches it before the host's first SYN.
    if ping -c 1 -W 5 10.0.2.2 >/dev/null 2>&1; then say "net gateway 10.0.2.2 answers"; fi
    say "net serving diag on TCP port 7777"
    diagd 7777 eth0 || fail "diagd exited with status $?"
    say "net diagd ended, uptime $(up) s"
}
case "$(arg net)" in
"") ;;
serve) net_serve ;;
*) fail "bad hvtest.net=$(arg net)" ;;
esac

if [ -z "$fails" ]; then
    echo "HVTEST-RESULT: PASS"
else
    echo "HVTEST-RESULT: FAIL linux: $fails"
fi
# Let the UART drain before the machine stops.
sleep 1
if [ "$(arg off)" = reboot ]; then
    say "reboot -f ($(tr ' ' '\n' </proc/cmdline | grep '^reboot=' || echo 'reboot= not given'))"
    reboot -f
    sleep 5
    say "still running after reboot -f"
fi
if [ "$(arg off)" != acpi ]; then
    say "power off through port 0x8900"
    # One byte per write, each at the port's offset in /dev/port; all from
    # CPU 0, since the hypervisor matches the word per vCPU.
    taskset -c 0 sh -c 'for c in S h u t d o w n; do
        printf %s "$c" | dd of=/dev/port bs=1 seek=35072 conv=notrunc 2>/dev/null
    done'
fi
say "poweroff -f"
poweroff -f
sleep 5
say "still running after poweroff -f"
