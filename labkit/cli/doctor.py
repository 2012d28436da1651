"""``labkit doctor``: versions, CPUs, memory limits, torch threads, calibration state, and problems with fixes.

Containers and Binder limit a machine in ways ``os.cpu_count()`` and ``psutil`` do not see, so the
effective limits are the smallest of:
- CPUs: the CPUs this process may run on (``os.sched_getaffinity``), the cgroup quota (v2 ``cpu.max``,
  v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``) and Binder's ``CPU_LIMIT`` environment variable;
- memory: physical memory (psutil), the cgroup limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) and
  Binder's ``MEM_LIMIT`` (bytes).

    $ labkit doctor          # a readable report
    $ labkit doctor --json   # the same, for machines
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

GIB = 1024**3
PACKAGES = ("labkit", "torch", "onnxruntime", "onnx", "onnxscript", "jax", "jaxlib", "numpy", "ray",
            "jupyterlab", "nbval")
REQUIRED = ("torch", "onnxruntime", "onnx", "numpy")   # without these most labs cannot start
MIN_MEMORY_BYTES = 2 * GIB     # Binder's 2 GB: every lab must fit; below it Ray labs will struggle
MIN_SHM_BYTES = 512 * 1024**2  # Ray's object store lives in /dev/shm
# system programs a lab runs (Debian packages: `make lab` cannot install them; Binder's apt.txt and the Dockerfile do)
TOOLS = {"prometheus": "lab 11 (a real Prometheus scrapes Ray Serve)", "promtool": "lab 11 (checks the alert rules)"}
UNLIMITED_BYTES = 2**60        # cgroup v1 writes "no limit" as a huge number (9223372036854771712)


# --- parsers: text in, number out (None = no limit), so tests can feed sample file contents ---------------

def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 ``cpu.max`` ("150000 100000" -> 1.5 CPUs; "max 100000" -> None)."""
    parts = text.split()
    if len(parts) < 1 or parts[0] == "max":
        return None
    period = float(parts[1]) if len(parts) > 1 else 100_000.0
    return float(parts[0]) / period if period > 0 else None


def parse_cfs_quota(quota_text: str, period_text: str) -> float | None:
    """cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` ("50000", "100000" -> 0.5; "-1" -> None)."""
    quota, period = int(quota_text.strip()), int(period_text.strip())
    return quota / period if quota > 0 and period > 0 else None


def parse_memory_limit(text: str) -> int | None:
    """cgroup v2 ``memory.max`` or v1 ``memory.limit_in_bytes`` in bytes ("max" or a huge v1 value -> None)."""
    text = text.strip()
    if text in ("", "max"):
        return None
    value = int(text)
    return value if 0 < value < UNLIMITED_BYTES else None


def parse_env_number(value: str | None) -> float | None:
    """Binder's ``CPU_LIMIT`` ("1", "0.5") or ``MEM_LIMIT`` (bytes); unset, empty, zero or junk -> None."""
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and number > 0 and math.isfinite(number) else None


def _parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` lines "id:controllers:/path" -> {controller: path}; v2's line is keyed ""."""
    paths = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    return paths


# --- reading the machine --------------------------------------------------------------------------------

def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _dirs_up(base: Path, rel: str) -> list[Path]:
    """The cgroup directory of this process and every ancestor up to the mount: limits nest, the smallest wins."""
    dirs = [base]
    for part in (p for p in rel.strip("/").split("/") if p):
        dirs.append(dirs[-1] / part)
    return [d for d in dirs if d.is_dir()]


def cgroup_limits(root: str | os.PathLike = "/sys/fs/cgroup",
                  proc_cgroup: str | os.PathLike = "/proc/self/cgroup") -> dict:
    """CPU quota (CPUs, float) and memory limit (bytes) from cgroups v2 or v1; None where there is none."""
    root = Path(root)
    paths = _parse_proc_cgroup(_read(Path(proc_cgroup)) or "")
    cpus, memory = [], []
    # v2: one hierarchy, at the root (pure v2) or at root/unified (hybrid systems)
    v2 = root if (root / "cgroup.controllers").exists() else root / "unified"
    for d in _dirs_up(v2, paths.get("", "/")) if v2.is_dir() else []:
        if (text := _read(d / "cpu.max")) is not None:
            cpus.append(parse_cpu_max(text))
        if (text := _read(d / "memory.max")) is not None:
            memory.append(parse_memory_limit(text))
    # v1: one hierarchy per controller (cpu is often co-mounted as "cpu,cpuacct")
    for name in ("cpu", "cpu,cpuacct"):
        for d in _dirs_up(root / name, paths.get("cpu", "/")) if (root / name).is_dir() else []:
            quota, period = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
            if quota is not None and period is not None:
                cpus.append(parse_cfs_quota(quota, period))
    for d in _dirs_up(root / "memory", paths.get("memory", "/")) if (root / "memory").is_dir() else []:
        if (text := _read(d / "memory.limit_in_bytes")) is not None:
            memory.append(parse_memory_limit(text))
    cpus, memory = [c for c in cpus if c is not None], [m for m in memory if m is not None]
    return {"cpu_quota": min(cpus) if cpus else None, "memory_limit_bytes": min(memory) if memory else None}


def cpu_info(environ=None, limits: dict | None = None) -> dict:
    """Logical CPUs, the ones we may use, the limits on them, and the effective count (the smallest)."""
    environ = os.environ if environ is None else environ
    limits = cgroup_limits() if limits is None else limits
    logical = os.cpu_count() or 1
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    env_limit = parse_env_number(environ.get("CPU_LIMIT"))
    effective = min(x for x in (affinity, limits["cpu_quota"], env_limit) if x is not None)
    return {"logical": logical, "affinity": affinity, "cgroup_quota": limits["cpu_quota"],
            "env_cpu_limit": env_limit, "effective": effective,
            "threads_advised": max(1, math.floor(effective))}  # more threads than this only compete


def memory_info(environ=None, limits: dict | None = None) -> dict:
    """Physical memory, the cgroup and Binder limits, and the effective limit (the smallest), in bytes."""
    import psutil

    environ = os.environ if environ is None else environ
    limits = cgroup_limits() if limits is None else limits
    vm = psutil.virtual_memory()
    env_limit = parse_env_number(environ.get("MEM_LIMIT"))
    env_limit = int(env_limit) if env_limit is not None else None
    effective = min(x for x in (vm.total, limits["memory_limit_bytes"], env_limit) if x is not None)
    return {"total_bytes": int(vm.total), "available_bytes": int(vm.available),
            "cgroup_limit_bytes": limits["memory_limit_bytes"], "env_mem_limit_bytes": env_limit,
            "effective_bytes": int(effective)}


def versions() -> dict[str, str | None]:
    """Installed versions from package metadata (nothing heavy is imported); None = not installed."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


def _calibration() -> dict:
    """Ask labkit.calibration.calibrate (written by another part of labkit) whether this machine is calibrated."""
    try:
        # import the module by path: `from labkit import calibrate` would return lk.calibrate, the function
        calibrate = importlib.import_module("labkit.calibration.calibrate")
        return {"calibrated": bool(calibrate.is_calibrated()), "cache_path": str(calibrate.cache_path())}
    except Exception as exc:  # ImportError/AttributeError: not written yet; anything else: a broken cache
        return {"calibrated": None, "cache_path": None, "why_unknown": f"{type(exc).__name__}: {exc}"}


def _shm_bytes() -> int | None:
    try:
        return shutil.disk_usage("/dev/shm").total
    except OSError:
        return None


def find_problems(info: dict) -> list[dict]:
    """Each problem as {"problem": what is wrong, "fix": what to do}, from a report's facts."""
    problems = []
    py = tuple(int(x) for x in info["versions"]["python"].split(".")[:2])
    if not (3, 10) <= py <= (3, 12):
        problems.append({"problem": f"Python {info['versions']['python']} is not supported (3.10-3.12)",
                         "fix": "create the environment with Python 3.11: run `make setup`"})
    missing = [name for name in REQUIRED if info["versions"].get(name) is None]
    if missing:
        problems.append({"problem": f"missing packages: {', '.join(missing)}",
                         "fix": "run `make setup` (installs the pinned versions from constraints.txt)"})
    memory = info["memory"]["effective_bytes"]
    if memory < MIN_MEMORY_BYTES:
        problems.append({"problem": f"memory limit {memory / GIB:.2f} GiB is under 2 GiB",
                         "fix": "labs that start Ray need ~0.8 GB: close other notebooks and kernels, "
                                "or run on a machine with more memory"})
    threads, advised = info["torch_threads"], info["cpu"]["threads_advised"]
    if threads is not None and threads > advised:
        problems.append({"problem": f"torch uses {threads} threads but only {info['cpu']['effective']:g} "
                                    "CPU(s) are available: threads compete and timings get noisy",
                         "fix": f"set OMP_NUM_THREADS={advised} before starting Python "
                                f"(or call torch.set_num_threads({advised}))"})
    shm = info["shm_bytes"]
    if shm is not None and shm < MIN_SHM_BYTES:
        problems.append({"problem": f"/dev/shm is only {shm / 1024**2:.0f} MiB: Ray's object store falls "
                                    "back to /tmp (slow)",
                         "fix": "in Docker, start the container with --shm-size=1g"})
    missing_tools = [name for name, path in info.get("tools", {}).items() if path is None]
    if missing_tools:
        problems.append({"problem": "missing programs: " + ", ".join(f"{t} ({TOOLS[t]})" for t in missing_tools),
                         "fix": "install Debian's prometheus package: `sudo apt-get install prometheus` "
                                "(Binder and the Docker image already have it)"})
    if info["calibration"]["calibrated"] is False:
        problems.append({"problem": "this machine is not calibrated: lk.device('local') cannot predict it yet",
                         "fix": "run `labkit calibrate` (~40 s) or it happens on first use"})
    return problems


def report(environ=None, cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
           proc_cgroup: str | os.PathLike = "/proc/self/cgroup") -> dict:
    """Everything ``labkit doctor`` prints, as a JSON-ready dict (lab 00).

    >>> import labkit.cli.doctor
    >>> sorted(labkit.cli.doctor.report())
    ['calibration', 'cpu', 'malloc', 'memory', 'problems', 'shm_bytes', 'tools', 'torch_threads', 'versions']
    """
    environ = os.environ if environ is None else environ
    limits = cgroup_limits(cgroup_root, proc_cgroup)
    info = {
        "versions": versions(),
        "cpu": cpu_info(environ, limits),
        "memory": memory_info(environ, limits),
        "torch_threads": _torch_threads(),
        "shm_bytes": _shm_bytes(),
        "calibration": _calibration(),
        "malloc": _malloc(),
        "tools": {name: shutil.which(name) for name in TOOLS},
    }
    info["problems"] = find_problems(info)
    return info


def _malloc() -> str:
    from labkit.allocator import huge_pages, steady

    heap = {"kept": "glibc, freed memory kept in the process (labkit/allocator.py; LABKIT_MALLOC=system: glibc's "
                    "defaults)",
            "system": "glibc's defaults (LABKIT_MALLOC=system, or mallopt refused): torch calls may page-fault their "
                      "activations in",
            "not glibc": "not glibc: left as it is"}[steady()]
    huge = {"on": "torch's buffers of 2 MiB or more in huge pages (THP_MEM_ALLOC_ENABLE=1)",
            "late": "torch allocated before labkit was imported: no huge pages for its buffers (import labkit first)",
            "off": "no huge pages for torch's buffers (THP_MEM_ALLOC_ENABLE=0 or LABKIT_MALLOC=system)",
            "kernel never": "the kernel's transparent huge pages are off: torch's big buffers fault in per 4 KiB",
            "not linux": "no transparent huge pages (not Linux)"}[huge_pages()]
    return f"{heap}; {huge}"


def _gib(n: int | None) -> str:
    return "none" if n is None else f"{n / GIB:.2f} GiB"


def format_report(info: dict) -> str:
    """The report as the readable text ``labkit doctor`` prints."""
    lines = ["labkit doctor", "", "versions:"]
    lines += [f"  {name:<12} {ver or 'NOT INSTALLED'}" for name, ver in info["versions"].items()]
    cpu, mem, cal = info["cpu"], info["memory"], info["calibration"]
    lines += [
        "",
        f"cpus:          effective {cpu['effective']:g} (logical {cpu['logical']}, usable {cpu['affinity']}, "
        f"cgroup quota {cpu['cgroup_quota'] if cpu['cgroup_quota'] is not None else 'none'}, "
        f"CPU_LIMIT {cpu['env_cpu_limit'] if cpu['env_cpu_limit'] is not None else 'unset'})",
        f"memory:        effective {_gib(mem['effective_bytes'])} (total {_gib(mem['total_bytes'])}, "
        f"available {_gib(mem['available_bytes'])}, cgroup limit {_gib(mem['cgroup_limit_bytes'])}, "
        f"MEM_LIMIT {_gib(mem['env_mem_limit_bytes']) if mem['env_mem_limit_bytes'] else 'unset'})",
        f"torch threads: {info['torch_threads'] if info['torch_threads'] is not None else 'torch not installed'}",
        f"/dev/shm:      {_gib(info['shm_bytes']) if info['shm_bytes'] is not None else 'unknown'}",
        f"malloc:        {info.get('malloc', 'unknown')}",
        "programs:      " + ", ".join(f"{t} {p or 'NOT FOUND'}" for t, p in info.get("tools", {}).items()),
    ]
    if cal["calibrated"] is None:
        lines.append(f"calibrated:    unknown ({cal.get('why_unknown', '')})")
    else:
        lines.append(f"calibrated:    {'yes' if cal['calibrated'] else 'no'} (cache: {cal['cache_path']})")
    lines.append("")
    if info["problems"]:
        lines.append(f"problems ({len(info['problems'])}):")
        for p in info["problems"]:
            lines += [f"  ✘ {p['problem']}", f"    fix: {p['fix']}"]
    else:
        lines.append("no problems found ✔")
    return "\n".join(lines)


def cli(argv: list[str]) -> int:
    """``labkit doctor [--json]``: print the report; exit 0 (problems are reported, not fatal)."""
    parser = argparse.ArgumentParser(prog="labkit doctor", description="Check this machine and the install.")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    info = report()
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
