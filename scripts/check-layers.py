#!/usr/bin/env python3
"""Checks the dependency rule of docs/architecture.md ("Layers").

Every folder of the core image belongs to one layer and may use only the
folders listed for it in ALLOWED.  Two kinds of use are checked:

  - includes: every `#include "..."` of a source or header, resolved the way
    the compiler resolves it (the including file's folder, then the -I
    folders), names the folder of the header it reaches;
  - symbols: every global symbol an object of build/core needs (nm -u), and
    every weak definition a strong one of another folder overrides, names
    the folder whose object defines it.

lwIP (build/third_party/lwip) counts as a folder of its own that may call
back only into its port (net/port).  A use outside the rule prints one line
"FROM -> TO: WHAT (WHERE)" and the script exits 1.

Usage: check-layers.py OBJ...   (the objects linked into build/core.elf)
"""
import os
import re
import subprocess
import sys

# Folder -> the folders it may use (besides itself).  Keep in step with the
# picture in docs/architecture.md.
# net/port is part of net/ except for lwIP, which may call back only into
# the port.
ALLOWED = {
    "core": set(),
    "vmx": {"core"},
    "lwip": {"net/port"},
    "net/port": {"core", "lwip", "net"},
    "net": {"core", "lwip", "net/port", "vtd"},
    "vtd": {"core"},
    "kvmi": {"core"},
    "kvmi_hv": {"kvmi", "vmx", "net", "net/port", "core"},
    "init": {"kvmi_hv", "kvmi", "vmx", "net", "net/port", "vtd", "core"},
}

# Ports: functions a lower folder declares in its own header and an upper
# folder implements (link-time inversion, like lwIP's sys_arch).  A call
# through a port is the only use of an upper folder's symbol the rule allows:
# (user folder, symbol prefix) -> the folders that may implement it.
PORTS = {
    ("kvmi", "kvmi_arch_"): {"kvmi_hv"},
}

# include/ holds the core's headers (the bottom layer, named bare: "log.h");
# every other folder keeps its headers beside its code, named with the
# folder ("vmx/vmx.h").  A header of include/ missing here is reported.
INCLUDE_OWNER = {
    name: "core" for name in (
        "acpi_power.h", "boot_info.h", "core.h", "core_status.h", "cpu_census.h", "fmt.h",
        "hv_config.h", "log.h", "log_ring.h", "log_txq.h", "page_alloc.h", "panic.h", "serial.h",
        "spinlock.h", "test_hooks.h", "wake.h", "x86.h", "x86_arch.h")
}

LWIP_PREFIX = "build/third_party/lwip/"
LWIP_INC = LWIP_PREFIX + "src/include"
INC_DIRS = ["include", "net", "net/port", LWIP_INC, "."]


def folder_of(path):
    """The layer a repository path belongs to, or None outside the core."""
    path = os.path.normpath(path)
    if path.startswith(LWIP_PREFIX):
        return "lwip"
    if path.startswith("net/port/"):
        return "net/port"
    if path.startswith("include/"):
        return INCLUDE_OWNER.get(path[len("include/"):], "include?")
    top = path.split("/", 1)[0]
    return None if top in ("build", "test", "scripts") else top


def obj_source(obj):
    """build/core/vmx/exit.o -> vmx/exit.o (its repository-relative path)."""
    rel = os.path.relpath(obj, "build/core")
    return rel


def nm(obj, *flags):
    out = subprocess.run(["nm", *flags, obj], capture_output=True, text=True,
                         check=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def symbol_uses(objs):
    strong = {}   # symbol -> folder defining it strongly
    weak = {}     # symbol -> [folders defining it weakly]
    undef = []    # (folder, symbol, object)
    for obj in objs:
        f = folder_of(obj_source(obj))
        if f is None:
            continue
        for fields in nm(obj, "--defined-only", "-g"):
            kind, sym = fields[-2], fields[-1]
            if kind in "WV":
                weak.setdefault(sym, []).append((f, obj))
            else:
                strong[sym] = f
        for fields in nm(obj, "-u"):
            undef.append((f, fields[-1], obj))
    uses = []
    for f, sym, obj in undef:
        to = strong.get(sym) or next((w for w, _ in weak.get(sym, [])), None)
        if to and to != f:
            uses.append((f, to, "symbol " + sym, obj_source(obj)))
    for sym, defs in weak.items():
        if sym in strong:
            for f, obj in defs:
                if strong[sym] != f:
                    uses.append((f, strong[sym], "weak " + sym + " overridden",
                                 obj_source(obj)))
    return uses


INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def resolve(inc, src):
    for d in [os.path.dirname(src)] + INC_DIRS:
        cand = os.path.normpath(os.path.join(d, inc))
        if os.path.isfile(cand):
            return cand
    return None


def include_uses(sources):
    uses = []
    for src in sorted(sources):
        f = folder_of(src)
        if f is None or f == "boot":
            continue
        try:
            text = open(src, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for inc in INCLUDE_RE.findall(text):
            hdr = resolve(inc, src)
            if hdr is None:
                continue
            to = folder_of(hdr)
            if to and to != f:
                uses.append((f, to, "include " + inc, src))
    return uses


def sources_of(objs):
    """The sources of the objects plus every header of the same folders."""
    srcs = set()
    for obj in objs:
        base = obj_source(obj)[:-2]
        for ext in (".c", ".S"):
            if os.path.isfile(base + ext):
                srcs.add(base + ext)
    for top in [d for d in ALLOWED if d != "lwip"]:
        if os.path.isdir(top):
            for name in os.listdir(top):
                if name.endswith(".h"):
                    srcs.add(os.path.join(top, name))
    for name in os.listdir("include"):
        if name.endswith(".h"):
            srcs.add(os.path.join("include", name))
    return srcs


def allowed(frm, to, what, where):
    if to in ALLOWED.get(frm, set()):
        return True
    if what.startswith("symbol "):
        sym = what.split()[1]
        return any(frm == f and sym.startswith(prefix) and to in impl
                   for (f, prefix), impl in PORTS.items())
    return False


def main(objs):
    if not objs:
        print("check-layers: no objects given", file=sys.stderr)
        return 2
    unknown = sorted({folder_of(obj_source(o)) for o in objs} - set(ALLOWED) - {None})
    for f in unknown:
        print(f"layers: folder {f}/ links into the core but has no place in ALLOWED "
              "(scripts/check-layers.py) and docs/architecture.md")
    uses = symbol_uses(objs) + include_uses(sources_of(objs))
    bad = sorted({u for u in uses if not allowed(*u)})
    edges = sorted({(a, b) for a, b, _, _ in uses})
    print("layers: folders used (from -> to): " +
          ", ".join(f"{a}->{b}" for a, b in edges))
    for a, b, what, where in bad:
        print(f"{a} -> {b}: {what} ({where})")
    if bad or unknown:
        print(f"layers: {len(bad)} use(s) outside the rule of docs/architecture.md")
        return 1
    print("layers: every use follows the rule of docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
