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
#   hvtest.off=port|acpi  power off by "Shutdown" to Bochs's port 0x8900
#                    (default: the hypervisor prints its statistics there)
#                    or by poweroff -f (ACPI S5) only
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

# Workload: on every online CPU, pinned there with taskset, hash the same
# 256 KiB of generated data.  Each worker reports the CPU it ended on (field 39
# of /proc/self/stat) and its digest; all digests must equal the one the
# host computed when it built this initramfs (@EXPECT_SHA256@).
expect=@EXPECT_SHA256@
say "workload start, uptime $(up) s"
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
    say "workload cpu $c ran on $ran sha256 $sum"
    if [ "$sum" != "$expect" ] || [ "$ran" != "$c" ]; then bad=$((bad + 1)); fi
done
say "workload done on $n_info CPUs, $bad wrong, uptime $(up) s"
[ "$bad" = 0 ] || fail "workload wrong on $bad CPUs"

if [ -z "$fails" ]; then
    echo "HVTEST-RESULT: PASS"
else
    echo "HVTEST-RESULT: FAIL linux: $fails"
fi
# Let the UART drain before the machine stops.
sleep 1
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
