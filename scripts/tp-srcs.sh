#!/usr/bin/env bash
# Prints the makefile fragment that lists the third-party sources the core
# links (lwIP: core, IPv4 and Ethernet only; no IPv6, sockets or apps).
# Called by make once scripts/deps.sh has unpacked them; fails loudly when a
# source tree is missing instead of handing make an empty list.
set -euo pipefail
lwip=${1:?usage: tp-srcs.sh LWIP_DIR}
src=$lwip/src
[ -f "$src/core/tcp.c" ] || { echo "tp-srcs: no lwIP source in $src (run make deps)" >&2; exit 1; }
{
    find "$src/core" -maxdepth 1 -name '*.c'
    find "$src/core/ipv4" -maxdepth 1 -name '*.c'
    echo "$src/netif/ethernet.c"
} | LC_ALL=C sort | {
    printf 'LWIP_SRCS :='
    while read -r f; do printf ' \\\n\t%s' "$f"; done
    printf '\n'
}
