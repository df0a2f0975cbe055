#!/usr/bin/env bash
# mkesp.sh: assemble an EFI system partition directory for scripts/emu.sh or
# a USB stick: hv.efi (+ hv.conf), the guest test agent, and a startup.nsh
# that the UEFI shell runs: hv.efi first, then the agent.
# Run `scripts/mkesp.sh --help` for usage.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
prog=mkesp.sh

usage() {
    cat <<'EOF'
Usage: scripts/mkesp.sh -o DIR [options]

Makes DIR an EFI system partition's contents (DIR is emptied first):
  DIR/hv.efi       the hypervisor loader (unless --no-hv)
  DIR/hv.conf      its configuration (only with --conf or --conf-text)
  DIR/agent.efi    the guest test agent (unless --no-agent)
  DIR/startup.nsh  the script OVMF's UEFI shell runs at boot: it changes to the
                   file system that holds these files, runs hv.efi, then the
                   agent (or the --run lines), then powers off as a fallback.

Options:
  -o, --out DIR         the directory to fill (required).
      --hv FILE         the loader to use (default build/hv.efi).
      --no-hv           no hv.efi: the same boot without the hypervisor, for
                        comparison runs.
      --conf FILE       copy FILE as hv.conf.
      --conf-text TEXT  write TEXT (with \n escapes) as hv.conf.
      --agent FILE      the agent to use (default build/agent.efi).
      --agent-args ARGS the agent's options, e.g. "cpus=2 vmx=1" (see
                        test/guest/agent.h).
      --no-agent        no agent.
      --run LINE        a shell line to run after hv.efi, instead of the agent
                        (repeatable; files it needs come with --file).
      --pre LINE        a shell line to run before hv.efi (repeatable), e.g.
                        acpitab.efi, which gives Bochs's firmware the ACPI
                        tables hv.efi reads.
      --file SRC[:DEST] copy SRC into DIR (as DEST, a path inside DIR).
      --no-poweroff     leave the shell running at the end (no `reset -s`);
                        also passes shutdown=0 to the agent.
  -h, --help            this text.
EOF
}
die() {
    echo "$prog: error: $*" >&2
    exit 1
}

out="" hv="$top/build/hv.efi" use_hv=1 conf="" conf_text="" have_conf_text=0
agent="$top/build/agent.efi" use_agent=1 agent_args="" runs=() pres=() files=() poweroff=1
need() { [ $# -ge 2 ] || die "option $1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
    -o | --out) need "$@"; out=$2; shift ;;
    --hv) need "$@"; hv=$2; shift ;;
    --no-hv) use_hv=0 ;;
    --conf) need "$@"; conf=$2; shift ;;
    --conf-text) need "$@"; conf_text=$2; have_conf_text=1; shift ;;
    --agent) need "$@"; agent=$2; shift ;;
    --agent-args) need "$@"; agent_args=$2; shift ;;
    --no-agent) use_agent=0 ;;
    --run) need "$@"; runs+=("$2"); shift ;;
    --pre) need "$@"; pres+=("$2"); shift ;;
    --file) need "$@"; files+=("$2"); shift ;;
    --no-poweroff) poweroff=0 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
[ -n "$out" ] || die "no output directory (-o DIR)"
[ "$use_hv" = 0 ] || [ -f "$hv" ] || die "$hv not found (build it with: make build/hv.efi, or use --no-hv)"
[ "$use_agent" = 0 ] || [ -f "$agent" ] || die "$agent not found (build it with: make build/agent.efi)"
[ -z "$conf" ] || [ -f "$conf" ] || die "config $conf not found"
[ -z "$conf" ] || [ "$have_conf_text" = 0 ] || die "--conf and --conf-text exclude each other"
[ "$use_hv" = 1 ] || [ -z "$conf$conf_text" ] || die "a config without hv.efi makes no sense"
[ "$poweroff" = 1 ] || agent_args="$agent_args shutdown=0"

case "$out" in / | "$top" | "$HOME") die "refusing to empty '$out'" ;; esac
rm -rf "$out"
mkdir -p "$out"

[ "$use_hv" = 0 ] || cp "$hv" "$out/hv.efi"
[ -z "$conf" ] || cp "$conf" "$out/hv.conf"
[ "$have_conf_text" = 0 ] || printf '%b' "$conf_text" >"$out/hv.conf"
[ "$use_agent" = 0 ] || cp "$agent" "$out/agent.efi"
for f in "${files[@]}"; do
    src=${f%%:*}
    dest=$(basename "$src")
    [ "$src" = "$f" ] || dest=${f#*:}
    [ -f "$src" ] || die "--file $src not found"
    mkdir -p "$(dirname "$out/$dest")"
    cp "$src" "$out/$dest"
done

# The shell searches every file system for startup.nsh but starts it with
# whatever current directory it had, and the numbering of fsN: depends on the
# machine's disks (QEMU, Bochs and real boards differ).  So the script finds
# its own file system by a marker file; scanning fs9..fs0 leaves it on the
# lowest-numbered match.  A CRLF file: the shell accepts both, editors too.
marker=hvesp.tag
echo "ESP made by scripts/mkesp.sh; startup.nsh looks for this file" >"$out/$marker"
{
    echo "@echo -off"
    echo "# written by scripts/mkesp.sh"
    for n in 9 8 7 6 5 4 3 2 1 0; do
        echo "if exist fs$n:\\$marker then"
        echo "  fs$n:"
        echo "endif"
    done
    for r in "${pres[@]}"; do echo "$r"; done
    if [ "$use_hv" = 1 ]; then
        echo "echo \"startup.nsh: starting hv.efi\""
        echo "hv.efi"
        echo "echo \"startup.nsh: hv.efi returned %lasterror%\""
    fi
    if [ ${#runs[@]} -gt 0 ]; then
        for r in "${runs[@]}"; do echo "$r"; done
    elif [ "$use_agent" = 1 ]; then
        echo "agent.efi${agent_args:+ }${agent_args# }"
    fi
    if [ "$poweroff" = 1 ]; then
        # Reached only when nothing before powered the machine off: the
        # launcher then sees no result line instead of waiting for its timeout.
        echo "echo \"startup.nsh: nothing powered off; reset -s\""
        echo "reset -s"
    fi
} | sed 's/$/\r/' >"$out/startup.nsh"
echo "$prog: $out: $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
