#!/usr/bin/env python3
"""Runs `make test`'s layers, several at once where the machine has the cores.

Most layers boot an emulator that keeps one core busy for minutes; on a
machine with N cores N of them can run side by side without slowing each
other, so `make test` takes about the longest layer chain instead of the sum.
Every file a layer needs is built first, by one make (two makes building the
same file at once would race): the prerequisites come from make's own
database (`make -pq`).  Each layer's output goes to build/test-logs/LAYER.log
and is printed whole when the layer ends, with its time; the summary names
every layer that failed.

    scripts/run_layers.py unit test-emu ...     # jobs: $TEST_JOBS, else the core count
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGS = os.path.join(TOP, "build", "test-logs")


def prerequisites(layers: list[str]) -> list[str]:
    """What the layers' rules name as prerequisites (normal and order-only),
    from make's database: files, and phony build steps such as `linux-guest`;
    phony `test-*` targets are tests of their own layer and are left out."""
    db = subprocess.run(["make", "-pq", "--no-print-directory"], cwd=TOP, capture_output=True,
                        text=True).stdout
    phony = set()
    rules: dict[str, list[str]] = {}
    for line in db.splitlines():
        m = re.match(r"^\.PHONY: (.*)$", line)
        if m:
            phony.update(m.group(1).split())
            continue
        m = re.match(r"^([^\s:#=]+):(?!=)\s*(.*)$", line)
        if m and m.group(1) in layers:
            rules.setdefault(m.group(1), []).extend(m.group(2).replace("|", " ").split())
    files = []
    for layer in layers:
        for p in rules.get(layer, []):
            if (p not in phony or not p.startswith("test-")) and p not in files:
                files.append(p)
    return files


def run_layer(layer: str) -> tuple[str, int, float]:
    t0 = time.monotonic()
    with open(os.path.join(LOGS, layer + ".log"), "w") as log:
        rc = subprocess.run(["make", "--no-print-directory", layer], cwd=TOP, stdout=log,
                            stderr=subprocess.STDOUT).returncode
    return layer, rc, time.monotonic() - t0


def main() -> int:
    layers = sys.argv[1:]
    jobs = int(os.environ.get("TEST_JOBS") or os.cpu_count() or 1)
    jobs = max(1, min(jobs, len(layers)))
    os.makedirs(LOGS, exist_ok=True)
    files = prerequisites(layers)
    if files:
        print(f"==== building what the layers need ({len(files)} files)", flush=True)
        if subprocess.run(["make", "--no-print-directory", *files], cwd=TOP).returncode:
            print("make test: FAILED: the layers' prerequisites did not build")
            return 1
    print(f"==== {len(layers)} layers, {jobs} at a time (TEST_JOBS overrides)", flush=True)
    failed = []
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for layer, rc, took in pool.map(run_layer, layers):
            print(f"==== {layer}", flush=True)
            with open(os.path.join(LOGS, layer + ".log"), errors="replace") as f:
                sys.stdout.write(f.read())
            print(f"==== {layer} {'passed' if rc == 0 else 'FAILED'} in {took:.0f} s", flush=True)
            if rc:
                failed.append(layer)
    print(f"\nall layers in {time.monotonic() - t0:.0f} s")
    if failed:
        print("make test: FAILED: " + " ".join(failed))
        return 1
    print("make test: every layer passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
