#!/usr/bin/env bash
# mkguest.sh: the Linux test guest, from Debian packages only (nothing of it
# is committed): the kernel of Debian's linux-image-amd64, which is itself an
# EFI application (its EFI stub loads the initrd named by initrd=), and an
# initramfs holding busybox-static and test/linux/init.sh as /init.
#
#   test/linux/mkguest.sh OUTDIR   ->  OUTDIR/vmlinuz.efi, OUTDIR/initrd.img
#
# The kernel package is fetched once with `apt-get download` into
# OUTDIR/deb/ and only its vmlinuz is extracted (dpkg-deb -x); it is never
# installed on the host.  Set LINUX_DEB=FILE to use a given .deb instead.
set -euo pipefail
prog=mkguest.sh
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: test/linux/mkguest.sh OUTDIR}
die() {
    echo "$prog: error: $*" >&2
    exit 1
}
mkdir -p "$out/deb"
out=$(cd "$out" && pwd)

# The kernel.
if [ ! -s "$out/vmlinuz.efi" ]; then
    deb=${LINUX_DEB:-}
    if [ -z "$deb" ]; then
        # linux-image-amd64 is a meta package: the kernel is its dependency.
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
        [ -n "$pkg" ] || die "apt-cache knows no linux-image-amd64 (run apt-get update)"
        debs=("$out/deb/${pkg}"_*.deb)
        if [ ! -f "${debs[0]}" ]; then
            echo "$prog: apt-get download $pkg"
            (cd "$out/deb" && apt-get download -q "$pkg" >download.log 2>&1) ||
                die "apt-get download $pkg failed: $(tail -3 "$out/deb/download.log")"
            debs=("$out/deb/${pkg}"_*.deb)
        fi
        deb=${debs[0]}
    fi
    [ -f "$deb" ] || die "$deb not found"
    x=$(mktemp -d "$out/x.XXXXXX")
    dpkg-deb -x "$deb" "$x"
    set -- "$x"/boot/vmlinuz-*
    [ -f "$1" ] || { rm -rf "$x"; die "no boot/vmlinuz-* in $deb"; }
    cp "$1" "$out/vmlinuz.efi.tmp"
    basename "$deb" >"$out/kernel.txt"
    rm -rf "$x"
    mv "$out/vmlinuz.efi.tmp" "$out/vmlinuz.efi"
    echo "$prog: kernel $(cat "$out/kernel.txt")"
fi

# The initramfs: /bin/busybox (static: there is no libc in it), /init, and
# the mount points /init uses.
bb=/bin/busybox
# (A dynamic executable names its program interpreter; readelf is binutils.)
if ! [ -x "$bb" ] || readelf -l "$bb" | grep -q 'program interpreter'; then
    die "$bb is not a static busybox (install busybox-static)"
fi
command -v cpio >/dev/null || die "cpio not found (install cpio)"
root=$(mktemp -d "$out/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$bb" "$root/bin/busybox"
# The Linux peer of make bench-net (init.sh, hvtest.net=serve): diagd, the
# hypervisor's diag protocol as a static program, and the kernel's own
# e1000 driver from the same .deb as the kernel (kernel.txt names it), so
# that the same host measurement runs against Linux's driver and stack.
# Without the .deb (LINUX_DEB unset and deb/ emptied) the initramfs is still
# made, and hvtest.net=serve reports that the module is missing.
${CC:-gcc} -std=c11 -Wall -Wextra -Werror -O2 -static -s -o "$root/bin/diagd" \
    "$here/diagd.c" || die "cannot build diagd.c (gcc and libc6-dev wanted)"
kdeb=${LINUX_DEB:-$out/deb/$(cat "$out/kernel.txt" 2>/dev/null)}
# (kept across runs, remade when the kernel's .deb changes)
if [ ! -s "$out/e1000.ko" ] || [ "$(cat "$out/e1000.txt" 2>/dev/null)" != "${kdeb##*/}" ]; then
    rm -f "$out/e1000.ko" "$out/e1000.txt"
    if [ -f "$kdeb" ]; then
        dpkg-deb --fsys-tarfile "$kdeb" |
            tar -x -O --wildcards './lib/modules/*/drivers/net/ethernet/intel/e1000/e1000.ko' \
                >"$out/e1000.ko.tmp"
        [ -s "$out/e1000.ko.tmp" ] || die "no uncompressed e1000.ko in $kdeb"
        mv "$out/e1000.ko.tmp" "$out/e1000.ko"
        echo "${kdeb##*/}" >"$out/e1000.txt"
    else
        echo "$prog: warning: no kernel .deb ($kdeb): initramfs without e1000.ko" >&2
    fi
fi
[ ! -s "$out/e1000.ko" ] || cp "$out/e1000.ko" "$root/lib/modules/e1000.ko"
# The digest every CPU's worker must reproduce, computed here by the same
# busybox over the same generated data.
# (seq dies of SIGPIPE when head has enough: not an error here.)
sum=$({ "$bb" seq 1 60000 || true; } | "$bb" head -c 262144 | "$bb" sha256sum | cut -d' ' -f1)
sed "s/@EXPECT_SHA256@/$sum/" "$here/init.sh" >"$root/init"
chmod 755 "$root/init"
# The kernel opens /dev/console for init before anything is mounted; without
# the node init starts with no stdout (init.sh reopens it after mounting
# devtmpfs, so only root can make the node but either way works).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$root.cpio"
gzip -9n <"$root.cpio" >"$out/initrd.img.tmp"
rm -f "$root.cpio"
mv "$out/initrd.img.tmp" "$out/initrd.img"
# Both outputs now count as made from the current scripts (make's view).
touch "$out/vmlinuz.efi"
echo "$prog: $out/vmlinuz.efi ($(stat -c %s "$out/vmlinuz.efi") bytes)," \
    "$out/initrd.img ($(stat -c %s "$out/initrd.img") bytes)"
