"""The real kernel the tests may read: Debian's linux-image of test/linux
(build/linux/vmlinuz.efi, which `make test-client` downloads first), or
$KVMI_LINUX_KERNEL.  Decoded once per test session."""

from __future__ import annotations

import functools
import io
import os

import pytest

from kvmi import kimage

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def kernel_path() -> str:
    return os.environ.get("KVMI_LINUX_KERNEL") or os.path.join(TOP, "build", "linux",
                                                               "vmlinuz.efi")


@functools.lru_cache(maxsize=1)
def _load():
    path = kernel_path()
    with open(path, "rb") as f:
        elf = kimage.vmlinux_of(f.read())
    syms = kimage.kallsyms(elf)
    text = io.StringIO()
    kimage.write_system_map(syms, text)
    return path, elf, kimage.elf_section(elf, ".BTF"), syms, text.getvalue()


def real_kernel():
    """(path, vmlinux ELF, BTF blob, kallsyms list, System.map text), or the
    test is skipped saying why."""
    path = kernel_path()
    if not os.path.exists(path):
        pytest.skip(f"no Debian kernel at {path}: `make test-client` downloads it "
                    "(test/linux/mkguest.sh), or set KVMI_LINUX_KERNEL")
    return _load()
