"""Keep freed memory in the process, as a tuned CPU inference server does: steady timings (labs 00 and 01).

glibc's malloc, by default, hands freed memory back to the kernel as soon as the free space at the top of its
heap passes a threshold, and maps buffers above a (moving) size anew on every allocation. A torch model whose
activations are a few MiB to a few tens of MiB then pays a page fault per 4 KiB on every call: measured here,
MobileNetV2 at 96 px and batch 32 faulted in 116 MB per call and ran 1.6x slower than with the memory kept, and
on a VM the price of a fault moves tenfold with the host's memory state, so the same call's time drifted between
runs. PyTorch's CPU performance guide recommends an allocator that keeps memory (jemalloc, tcmalloc) for this.

``import labkit`` therefore sets two of glibc's documented knobs with ``mallopt`` (man mallopt): freed memory
is never trimmed (``M_TRIM_THRESHOLD``), and only buffers of 32 MiB and more are mapped anew
(``M_MMAP_THRESHOLD``, glibc's own ceiling for it), which the simulator prices (``labkit.targets.fresh_output_s``).
Peak memory is unchanged; memory freed after a peak stays with the process for reuse.

Whether a buffer of 32 MiB or more comes from a free chunk of the heap or is mapped anew depends on everything the
process ran before, so its faults came and went from one process to the next: MobileNetV2 at 224 px and batch 32,
one thread, took 1.0 to 1.6 s a call in fresh processes (949 to 2162 MiB faulted in per call) and 0.95 s after other
models had grown the heap. ``import labkit`` therefore also sets ``THP_MEM_ALLOC_ENABLE=1`` (unless it is set
already), PyTorch's own switch (c10/core/alloc_cpu.cpp), which PyTorch's CPU inference tuning tutorials recommend
(off by default, they say, as it can raise memory use a little: lab 00 peaked at 801-818 MiB with it, 814 MiB
without): torch page-aligns every buffer of 2 MiB or more and asks the kernel for transparent huge pages there
(``MADV_HUGEPAGE``), so a fresh buffer faults in once per 2 MiB instead of once per 4 KiB. The same call then took
0.65 s in every process, fresh or not. torch reads the variable once, at its first allocation of 2 MiB or more:
import labkit before torch (``huge_pages()`` says whether it held in this process).

Set ``LABKIT_MALLOC=system`` before importing labkit to keep glibc's and torch's defaults. Elsewhere than glibc
(macOS, musl) nothing is changed.

>>> from labkit.allocator import steady
>>> steady() in ("kept", "system", "not glibc")
True
"""

from __future__ import annotations

import os

M_TRIM_THRESHOLD = -1          # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20   # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: the largest it accepts
TRIM_THRESHOLD_BYTES = 2**31 - 1    # mallopt takes an int: trim only past 2 GiB of free heap top, i.e. never here

THP_ENV = "THP_MEM_ALLOC_ENABLE"    # read by torch's CPU allocator at its first allocation
THP_SYSFS = "/sys/kernel/mm/transparent_hugepage/enabled"

_state: str | None = None


def steady() -> str:
    """Set glibc's malloc to keep freed memory, once per process; say what holds (lab 00).

    ``"kept"``: set here; ``"system"``: glibc's defaults (LABKIT_MALLOC=system asked for them, or mallopt refused);
    ``"not glibc"``: another C library, left alone.
    """
    global _state
    if _state is not None:
        return _state
    if os.environ.get("LABKIT_MALLOC", "").strip().lower() == "system":
        _state = "system"
        return _state
    import ctypes
    import platform

    os.environ.setdefault(THP_ENV, "1")        # torch's huge pages, here and in the processes labkit starts
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        _state = "not glibc"
        return _state
    libc = ctypes.CDLL(None)
    ok = libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(TRIM_THRESHOLD_BYTES)) == 1
    ok = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(MMAP_THRESHOLD_BYTES)) == 1 and ok
    _state = "kept" if ok else "system"
    return _state


def huge_pages() -> str:
    """Whether torch puts its buffers of 2 MiB or more in transparent huge pages in this process (lab 00).

    Looked up, not assumed: a new 4 MiB torch buffer's mapping carries the kernel's huge-page advice (``hg`` in
    its VmFlags, /proc/self/smaps). ``"on"``; ``"late"``: labkit asked, but torch had made a buffer that big before
    ``import labkit`` and read the setting then (import labkit first); ``"off"``: THP_MEM_ALLOC_ENABLE=0 or
    LABKIT_MALLOC=system; ``"kernel never"``: the kernel's THP is off (/sys/kernel/mm/transparent_hugepage);
    ``"not linux"``.

    >>> from labkit.allocator import huge_pages
    >>> huge_pages() in ("on", "late", "off", "kernel never", "not linux")
    True
    """
    import sys

    steady()
    if not sys.platform.startswith("linux"):
        return "not linux"
    try:
        with open(THP_SYSFS) as f:
            if "[never]" in f.read():
                return "kernel never"
    except OSError:
        pass
    import torch

    buf = torch.empty(2**20)                      # 4 MiB of fp32
    if _advised(buf.data_ptr()):
        return "on"
    return "late" if os.environ.get(THP_ENV, "").strip() not in ("", "0") else "off"


def _advised(address: int) -> bool:
    """True when the mapping that holds `address` is advised MADV_HUGEPAGE (/proc/self/smaps, ``hg``)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(maxsplit=1)[0] if line.strip() else ""
            if "-" in head and not head.endswith(":"):          # a mapping: "start-end perms offset ..."
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low <= address < high
            elif inside and line.startswith("VmFlags:"):
                return "hg" in line.split()[1:]
    return False
