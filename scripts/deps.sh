#!/usr/bin/env bash
# Dependency bootstrap: Debian packages, lwIP 2.1.3 from Debian's source
# package, newlib built for bare-metal x86-64 from Debian's newlib-source.
# Idempotent and quiet when there is nothing to do.  Everything lands under
# build/third_party/ (never committed).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
tp="$top/build/third_party"
mkdir -p "$tp"

say() { echo "deps: $*"; }
die() { echo "deps: ERROR: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: run as root for the package step"
    SUDO="sudo"
fi

PKGS=(
    build-essential gcc binutils make git python3 python3-pytest
    gnu-efi ovmf qemu-system-x86 bochs bochsbios vgabios bochs-sdl
    mtools dosfstools socat libcmocka-dev clang libclang-rt-14-dev
    newlib-source valgrind clang-format xz-utils dpkg-dev
    autoconf automake libtool pkg-config linux-libc-dev
    busybox-static cpio
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q >/dev/null || die "apt-get update failed"
    # One transaction is much faster; only when it fails, find the culprit.
    if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >"$tp/apt.log" 2>&1; then
        for p in "${missing[@]}"; do
            $SUDO apt-get install -y -q --no-install-recommends "$p" >"$tp/apt-$p.log" 2>&1 ||
                die "could not install Debian package '$p' (see $tp/apt-$p.log)"
        done
    fi
fi

# ---- lwIP 2.1.3 from Debian's source package ------------------------------
if [ ! -f "$tp/lwip/src/core/tcp.c" ]; then
    if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        say "adding a deb-src entry (needed by apt-get source lwip)"
        src=/etc/apt/sources.list.d/debian.sources
        if [ -f "$src" ]; then
            sed -n '/^Types:/,/^$/p' "$src" | sed 's/^Types: deb$/Types: deb-src/' |
                $SUDO tee /etc/apt/sources.list.d/hv-deb-src.sources >/dev/null
        else
            grep -h '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
                $SUDO tee /etc/apt/sources.list.d/hv-deb-src.list >/dev/null
        fi
        $SUDO apt-get update -q >/dev/null || die "apt-get update (deb-src) failed"
    fi
    say "fetching lwIP with apt-get source lwip"
    rm -rf "$tp/lwip-src" && mkdir -p "$tp/lwip-src"
    (cd "$tp/lwip-src" && apt-get source --download-only -q lwip >/dev/null 2>"$tp/lwip-src.err") ||
        die "apt-get source lwip failed (is a deb-src line configured?)"
    orig=$(ls "$tp"/lwip-src/lwip_2.1.3*.orig.tar.* 2>/dev/null | head -1)
    [ -n "$orig" ] || die "lwIP 2.1.3 orig tarball not found in $tp/lwip-src"
    rm -rf "$tp/lwip" && mkdir -p "$tp/lwip"
    tar xf "$orig" -C "$tp/lwip" --strip-components=1
    [ -f "$tp/lwip/src/core/tcp.c" ] || die "unexpected lwIP source layout"
    say "lwIP unpacked in $tp/lwip"
fi

# ---- newlib libc.a for VMX root ------------------------------------------
NL="$tp/newlib"
if [ ! -f "$NL/install/x86_64-elf/lib/libc.a" ]; then
    say "building newlib libc.a (general registers only, about 30 s)"
    tarball=$(ls /usr/src/newlib/newlib-*.tar.* 2>/dev/null | head -1)
    [ -n "$tarball" ] || die "newlib-source tarball missing (package newlib-source)"
    rm -rf "$NL" && mkdir -p "$NL/src" "$NL/build"
    tar xf "$tarball" -C "$NL/src" --strip-components=1
    gccinc=$(gcc -print-file-name=include)
    tflags="-O2 -ffreestanding -mno-red-zone -mgeneral-regs-only -fno-stack-protector -fpie \
 -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -Wa,--noexecstack \
 -nostdinc -idirafter $gccinc"
    (
        cd "$NL/build"
        "$NL/src/configure" --target=x86_64-elf --prefix="$NL/install" \
            CC_FOR_TARGET=gcc AR_FOR_TARGET=ar AS_FOR_TARGET=as LD_FOR_TARGET=ld \
            NM_FOR_TARGET=nm RANLIB_FOR_TARGET=ranlib OBJDUMP_FOR_TARGET=objdump \
            READELF_FOR_TARGET=readelf STRIP_FOR_TARGET=strip OBJCOPY_FOR_TARGET=objcopy \
            CFLAGS_FOR_TARGET="$tflags" \
            --disable-multilib --disable-newlib-supplied-syscalls --disable-newlib-io-float \
            --enable-newlib-io-long-long --enable-newlib-io-c99-formats \
            --disable-newlib-multithread --enable-newlib-reent-small --enable-newlib-nano-malloc \
            --disable-newlib-wide-orient --disable-newlib-fvwrite-in-streamio \
            --disable-newlib-unbuf-stream-opt --enable-lite-exit --enable-newlib-global-atexit
        make configure-target-newlib
        # Objects that need FP registers cannot build with -mgeneral-regs-only:
        # drop them (and libm) from the generated Makefiles so that any use of
        # them is a link error rather than silent SSE in VMX root.
        m=x86_64-elf/newlib
        for o in __adjust __exp10 __ten_mu atof atoff drand48 erand48 dtoa ecvtbuf efgcvt \
            mprec strtod wcstod; do
            sed -i "s/lib_a-$o\.\$(OBJEXT)//g" $m/libc/stdlib/Makefile
        done
        sed -i 's/lib_a-difftime\.\$(OBJEXT)//g' $m/libc/time/Makefile
        sed -i -e 's/^SUBDIRS = libc libm \\/SUBDIRS = libc \\/' \
            -e 's/^toollib_LIBRARIES = libm.a \\/toollib_LIBRARIES = \\/' \
            -e 's|^libc.a: libc/libc.a libm.a|libc.a: libc/libc.a|' \
            -e 's|\$(AR) x ../libm.a \$(MATHOBJS_IN_LIBC) ;|true ;|' $m/Makefile
        make -j"$(nproc)" all-target-newlib
        make install-target-newlib
    ) >"$NL/build.log" 2>&1 || die "newlib build failed, see $NL/build.log"
    say "newlib installed in $NL/install"
fi
exit 0
