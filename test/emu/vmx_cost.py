#!/usr/bin/env python3
"""CPUID round trip with and without the hypervisor, from one test run.

Boots Bochs tigerlake (2 CPUs) twice with the same agent: once without
hv.efi, once with it.  The agent measures CPUID(0) with RDTSC (256 times,
average and minimum; docs/benchmarks.md "VMX" says why these ticks are
comparable).  The hypervisor's statistics at shutdown give the average TSC
ticks its CPUID exits spent in root mode, i.e. the root-mode share.

    python3 test/emu/vmx_cost.py           # test: fails unless CPUID costs more under hv.efi
    python3 test/emu/vmx_cost.py --bench   # also prints the figures as a table
"""
from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

CPUID_RE = re.compile(r"AGENT: cpuid round trip: avg (\d+) min (\d+) ticks; "
                      r"rdtsc floor avg (\d+) min (\d+)")
ROOT_RE = re.compile(r"stats vCPU 0: reason 10 CPUID +count +(\d+) root TSC +(\d+) avg (\d+)")


def boot(name: str, hv: bool) -> tuple[bool, str, str]:
    sc = run.Scenario(name=name, doc="", model="tigerlake", cpus=2, hv=hv,
                      agent_args="cpus=2" + (" hv=1" if hv else ""), timeout=240,
                      expect=[r"AGENT: cpuid round trip", r"HVTEST-RESULT: PASS"],
                      forbid=[r"HVTEST-RESULT: FAIL"])
    ok, took, report = run.run_scenario(sc)
    with open(os.path.join(run.BUILD, "emu", name, "serial.log"), "rb") as f:
        log = run.normalise(f.read())
    return ok, report, log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", action="store_true", help="print the figures as a table")
    args = ap.parse_args()

    ok0, rep0, log0 = boot("vmx-cost-bare", hv=False)
    ok1, rep1, log1 = boot("vmx-cost-hv", hv=True)
    if not (ok0 and ok1):
        print(f"vmx-cost: a boot failed:\n  bare: {rep0}\n  hv:   {rep1}")
        return 1
    m0, m1, r = CPUID_RE.search(log0), CPUID_RE.search(log1), ROOT_RE.search(log1)
    if not (m0 and m1 and r):
        print("vmx-cost: figures missing from the serial logs")
        return 1
    bare_avg, bare_min, floor = int(m0.group(1)), int(m0.group(2)), int(m0.group(3))
    hv_avg, hv_min = int(m1.group(1)), int(m1.group(2))
    exits, root_avg = int(r.group(1)), int(r.group(3))
    share = 100.0 * root_avg / hv_avg if hv_avg else 0.0
    print(f"vmx-cost: CPUID(0) round trip, guest-measured TSC ticks (avg/min of 256): "
          f"without hv.efi {bare_avg}/{bare_min}, with hv.efi {hv_avg}/{hv_min} "
          f"(x{hv_avg / max(bare_avg, 1):.1f}); RDTSC floor {floor}")
    print(f"vmx-cost: root mode per CPUID exit {root_avg} ticks (avg over {exits} exits of "
          f"vCPU 0) = {share:.0f}% of the round trip; the rest is the VM exit/entry "
          f"transitions and the exit stub")
    if args.bench:
        print()
        print("| measure (Bochs tigerlake x2, TSC ticks) | without hv.efi | with hv.efi |")
        print("|---|---|---|")
        print(f"| CPUID(0) round trip, avg | {bare_avg} | {hv_avg} |")
        print(f"| CPUID(0) round trip, min | {bare_min} | {hv_min} |")
        print(f"| root-mode time per CPUID exit, avg | - | {root_avg} ({share:.0f}%) |")
    if hv_avg <= bare_avg:
        print("vmx-cost: FAIL: CPUID is not slower under the hypervisor: is it really exiting?")
        return 1
    print("vmx-cost: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
