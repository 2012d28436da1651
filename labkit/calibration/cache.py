"""Where a calibration is kept: one JSON file per machine key (CPU, CPUs available, torch and onnxruntime
versions, thread count, FORMAT) in ``$LABKIT_CACHE_DIR`` or ``platformdirs.user_cache_dir("labkit")`` (lab 00).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

FORMAT = 16  # bump when the benchmarks or the fit change: older caches are then ignored, not misread


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def logical_cpus() -> int:
    """Logical CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # macOS, Windows
        return os.cpu_count() or 1


def versions() -> dict[str, str]:
    """Versions of python, torch, onnxruntime, onnx and labkit (\"absent\" for a missing one)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "onnxruntime", "onnx", "labkit"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def threads() -> int:
    """The thread count both runtimes use here: ``torch.get_num_threads()`` as it is."""
    import torch

    return int(torch.get_num_threads())


def use_threads(n: int) -> int:
    """Make torch (and so every calibration, estimate and measurement here) run `n` threads, 1 to
    ``logical_cpus()``; a calibration is kept per thread count (lab 00). ``labkit calibrate --threads 1`` and
    ``labkit validate --threads 1`` use it: on a small VM whose second CPU is shared with another tenant
    (labkit.calibration.cpustate), one thread is the reading that does not move with the other tenant.

    >>> before = threads()
    >>> use_threads(1), threads()
    (1, 1)
    >>> _ = use_threads(before)
    """
    import torch

    from labkit.args import Int, check

    n = check("threads", n, Int(low=1, high=logical_cpus()))
    torch.set_num_threads(n)
    return n


def machine_key(num_threads: int | None = None) -> str:
    """A short hash of what makes a calibration valid: CPU, CPUs available, versions, threads, FORMAT.

    >>> machine_key(1) != machine_key(2)
    True
    """
    v = versions()
    parts = (cpu_model(), logical_cpus(), v["torch"], v["onnxruntime"],
             threads() if num_threads is None else int(num_threads), FORMAT)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def cache_dir() -> Path:
    """Where calibrations live: ``$LABKIT_CACHE_DIR`` or ``platformdirs.user_cache_dir("labkit")``."""
    env = os.environ.get("LABKIT_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("labkit"))


def cache_path(num_threads: int | None = None) -> Path:
    """The cache file for this machine (both runtimes live in it).

    >>> cache_path().name.startswith("calibration-")
    True
    """
    return cache_dir() / f"calibration-{machine_key(num_threads)}.json"


# ---- read and write -----------------------------------------------------------------------------------

def read(num_threads: int | None = None) -> dict:
    """This machine's cached calibrations, {runtime: JSON dict}; {} when there is none (or it is broken)."""
    path = cache_path(num_threads)
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}                                   # a broken cache is the same as none: recalibrate


def save(runtime: str, num_threads: int, calibration: dict) -> Path:
    """Store one runtime's calibration (a Calibration's JSON) in this machine's cache file, beside the others."""
    path = cache_path(num_threads)
    data = read(num_threads)
    data[runtime] = calibration
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)                              # atomic: a reader never sees half a file
    return path
