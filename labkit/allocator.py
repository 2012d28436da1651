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
Peak memory is unchanged; memory freed after a peak stays with the process for reuse. Set ``LABKIT_MALLOC=system``
before importing labkit to keep glibc's defaults. Elsewhere than glibc (macOS, musl) nothing is changed.

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

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        _state = "not glibc"
        return _state
    libc = ctypes.CDLL(None)
    ok = libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(TRIM_THRESHOLD_BYTES)) == 1
    ok = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(MMAP_THRESHOLD_BYTES)) == 1 and ok
    _state = "kept" if ok else "system"
    return _state
