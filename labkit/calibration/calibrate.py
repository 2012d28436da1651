"""``lk.calibrate``: measure this machine so that ``lk.device("local")`` predicts it like any device (lab 00).

What it measures, per runtime (torch eager, or ONNX Runtime), with the thread count as it is
(details in labkit.calibration.benchrun):
- matmul FLOP/s per dtype (a 512x512 GEMM; fp32, bf16 and fp16 are measured, never assumed),
- a STREAM-like triad (``a = b + s*c``) and copy bandwidth on arrays far larger than the caches,
- the memory tiers (a copy's rate as its working set leaves the caches) and, for torch, what faulting in a
  fresh output costs (glibc maps big outputs anew on every call),
- the cost of a tiny op and of an empty model call,
- ~100 single ops (labkit.calibration.microbench) and 24 random synthetic networks (labkit.calibration.synthnet), each timed as a
  whole model call at batch 1 and 32 — for ONNX Runtime exported and run as ``labkit validate`` runs models.
Then labkit.calibration.costfit fits, jointly over all of them, per op class and per op a start-up and two rates,
``t = startup_s + flops / flops_per_s + bytes / bytes_per_s`` per layer plus one "call" cost per model
call and a share of a "switch" cost per layer whose code and data went cold among mixed ops (the formula of
``labkit.estimate``), robust least squares on log(predicted / measured).

The result is cached as JSON in ``platformdirs.user_cache_dir("labkit")`` (``$LABKIT_CACHE_DIR`` overrides),
one file per machine key: CPU model, CPUs available, torch and onnxruntime versions, thread count.

    $ labkit calibrate                 # both runtimes, ~60 s on 2 cores
    $ labkit calibrate --quick --json  # fewer benchmarks (~25 s), machine-readable
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from statistics import median
from types import MappingProxyType

from labkit.calibration import cache
from labkit.calibration.cache import cache_path, machine_key, threads, use_threads
from labkit.calibration.contention import NOTE_ABOVE, OtherLoad
from labkit.targets import Device, OpFit, switch_s

RUNTIMES = ("torch", "onnxruntime")
# ONNX Runtime runs at graph level EXTENDED in calibration and validation (see labkit/validate.py).
ORT_LEVEL = "extended"
MIN_STARTUP_FRACTION = 0.5   # a fitted per-op start-up is at least half a bare tiny op's measured cost
POWER_W_PER_CPU = (1.5, 6.0)   # (idle, busy) W per logical CPU: documented estimate when RAPL is unreadable


# ---- the result -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Calibration:
    """This machine, measured for one runtime: peaks, bandwidth, overheads and a cost fit per op class.

    ``fits`` is keyed by op class ("pool"), by op where a class has several ("pool/maxpool"), and "call"
    (the fixed cost of one model call; only its ``startup_s`` is used). ``points`` holds every benchmark, one
    model call each: (name, label, keys, batch, flops, bytes, measured_s, predicted_s) with label the op
    class of a single-op benchmark or "net" for a random network, and keys the ";"-joined fit keys its
    layers use. ``fit_error[key]`` is the median |predicted - measured| / measured over the benchmarks
    that use that key.
    """

    key: str
    runtime: str
    threads: int
    cpu: str
    logical_cpus: int
    matmul_flops_per_s: Mapping[str, float]    # dtype -> FLOP/s of a 512x512 GEMM
    triad_bytes_per_s: float                   # STREAM-like a = b + s*c, 3 arrays counted
    copy_bytes_per_s: float
    op_overhead_s: float                       # one tiny op (1-element ReLU), framework dispatch included
    run_overhead_s: float                      # fixed cost of one call of the model (ORT: session.run)
    fits: Mapping[str, OpFit]
    fit_error: Mapping[str, float]
    duration_s: float
    created: str
    versions: Mapping[str, str]
    quick: bool = False
    points: tuple = field(default=(), repr=False)
    other_cpu_share: float = 0.0               # share of the CPUs other processes used while measuring
    mem_tiers: tuple = ()                      # ((working-set bytes, copy bytes/s), ...) from the caches' plateau on
    fresh_output: tuple | None = None          # (threshold bytes, s per byte) of faulting in a fresh output
    cpu_lagging: tuple = ()                    # (samples that lagged, samples): labkit.calibration.cpustate

    def __post_init__(self):
        for name in ("matmul_flops_per_s", "fits", "fit_error", "versions"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "points", tuple(tuple(p) for p in self.points))
        object.__setattr__(self, "mem_tiers", tuple(tuple(t) for t in self.mem_tiers))
        object.__setattr__(self, "cpu_lagging", tuple(self.cpu_lagging))
        if self.fresh_output is not None:
            object.__setattr__(self, "fresh_output", tuple(self.fresh_output))

    @property
    def median_fit_error(self) -> float:
        """Median relative error of the fitted model over all its benchmarks."""
        errs = sorted(abs(p[-1] - p[-2]) / p[-2] for p in self.points if p[-2] > 0)
        return median(errs) if errs else float("nan")

    def to_frame(self):
        """One row per op class: start-up, rates, fit error, number of benchmarks (pandas)."""
        import pandas as pd

        counts = self._counts()
        rows = [{"op_class": c, "startup_s": f.startup_s, "flops_per_s": f.flops_per_s,
                 "bytes_per_s": f.bytes_per_s, "fit_error": self.fit_error.get(c, float("nan")),
                 "benchmarks": counts[c]} for c, f in self.fits.items()]
        return pd.DataFrame(rows).set_index("op_class")

    def _counts(self) -> dict[str, int]:
        """Benchmarks behind each fit key: those with a layer of that class or op ("call": all of them;
        "switch": the networks, the benchmarks of several ops)."""
        return {c: sum(1 for p in self.points if c == "call" or c in p[2].split(";") or (c == "switch" and p[1] == "net"))
                for c in self.fits}

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["fits"] = {c: asdict(f) for c, f in self.fits.items()}
        for name in ("matmul_flops_per_s", "fit_error", "versions"):
            d[name] = dict(getattr(self, name))
        d["points"] = [list(p) for p in self.points]
        return d

    @classmethod
    def from_json(cls, d: dict) -> Calibration:
        d = dict(d)
        d.pop("load_avg", None)        # caches before the contention measure kept the load average, which counted us
        d["fits"] = {c: OpFit(**f) for c, f in d["fits"].items()}
        return cls(**d)

    def __repr__(self) -> str:
        return (f"Calibration({self.runtime}, {self.threads} threads on {self.cpu!r}: "
                f"matmul fp32 {self.matmul_flops_per_s.get('fp32', 0) / 1e9:.1f} GFLOP/s, "
                f"triad {self.triad_bytes_per_s / 1e9:.1f} GB/s, op overhead {self.op_overhead_s * 1e6:.1f} µs, "
                f"{len(self.fits)} op classes, median fit error {self.median_fit_error:.1%}, "
                f"took {self.duration_s:.1f} s)")


def is_calibrated(runtime: str = "torch") -> bool:
    """True when this machine (at the current thread count) has a cached calibration for `runtime`."""
    return _check_runtime(runtime) in cache.read()


def load(runtime: str = "torch") -> Calibration | None:
    """The cached Calibration for `runtime` on this machine, or None (nothing measured yet)."""
    d = cache.read().get(_check_runtime(runtime))
    return Calibration.from_json(d) if d else None


def _check_runtime(runtime: str, allow_all: bool = False) -> str:
    allowed = RUNTIMES + (("all",) if allow_all else ())
    aliases = {"ort": "onnxruntime", "onnx": "onnxruntime", "eager": "torch"}
    runtime = aliases.get(str(runtime).lower(), str(runtime).lower())
    if runtime not in allowed:
        from labkit.args import unknown_name

        raise unknown_name("runtime", runtime, allowed)
    return runtime


# ---- calibrate --------------------------------------------------------------------------------------------

def calibrate(runtime: str = "torch", force: bool = False, quick: bool = False, progress: bool = True):
    """Measure this machine for `runtime` ("torch", "onnxruntime" or "all") and cache it (lab 00).

    Returns the cached Calibration unless ``force=True``. ``runtime="all"`` returns ``{runtime: Calibration}``.
    ``quick=True`` measures fewer sizes (~10 s instead of ~40 s), good for tests, rougher fits.

    >>> import labkit as lk
    >>> cal = lk.calibrate()                 # doctest: +SKIP
    >>> cal.fits["conv"].flops_per_s > 1e9   # doctest: +SKIP
    True
    """
    runtime = _check_runtime(runtime, allow_all=True)
    if runtime == "all":
        return {r: calibrate(r, force=force, quick=quick, progress=progress) for r in RUNTIMES}
    if not force:
        cached = load(runtime)
        if cached is not None:
            return cached
    cal = _run(runtime, quick=quick, progress=progress)
    cache.save(cal.runtime, cal.threads, cal.to_json())
    return cal


def _run(runtime: str, quick: bool, progress: bool) -> Calibration:
    """Measure the benchmarks, fit every op class jointly, and package it all as a Calibration."""
    from labkit.calibration import benchrun, costfit
    from labkit.calibration.cpustate import CpuStates

    t0 = time.perf_counter()
    n_threads = threads()
    states = CpuStates("calibrating")      # torch only: ONNX Runtime's idle threads would spin beside the probe
    with OtherLoad() as other:
        peaks, points = benchrun.run(runtime, quick=quick, progress=progress, num_threads=n_threads,
                                     states=states if runtime == "torch" else None)
    # the networks (what models look like) and the single ops (what pins each class down) weigh the same
    is_net = [name.startswith("net") for name, _, _ in points]
    n_net = sum(is_net)
    net_w = (len(points) - n_net) / n_net if n_net else 1.0
    # rates up to 1.5x the GEMM peak, or the best any benchmark attained (should a burst of load have
    # spoiled every pass of the peak's GEMM, the bound still lets the fit be right)
    best_s = max([sum(w[2] for w in work) / t for _, work, t in points if t > 0] + [1e6])
    fits = costfit.fit(points, min_startup_s=MIN_STARTUP_FRACTION * peaks["tiny_op_s"],
                       max_flops_per_s=1.5 * max(*peaks["matmul_flops_per_s"].values(), best_s),
                       weights=[net_w if net else 1.0 for net in is_net], tiers=peaks["mem_tiers"])
    rows, errors = [], {}
    for name, work, measured_s in points:
        predicted_s = costfit.predict(work, fits, call=True, tiers=peaks["mem_tiers"])
        keys = sorted({k for c, op, *_ in work for k in (c, f"{c}/{op}") if k in fits})
        label = "net" if name.startswith("net") else (work[0][0] if work else "call")
        rows.append((name, label, ";".join(keys), int(name.rsplit(" b", 1)[1]), sum(w[2] for w in work),
                     sum(w[3] for w in work), measured_s, predicted_s))
        for key in keys + ["call"]:
            errors.setdefault(key, []).append(abs(predicted_s - measured_s) / measured_s)
    return Calibration(
        key=machine_key(n_threads), runtime=runtime, threads=n_threads, cpu=cache.cpu_model(),
        logical_cpus=cache.logical_cpus(), matmul_flops_per_s=peaks["matmul_flops_per_s"],
        triad_bytes_per_s=peaks["triad_bytes_per_s"], copy_bytes_per_s=peaks["copy_bytes_per_s"],
        op_overhead_s=peaks["op_overhead_s"], run_overhead_s=peaks["run_overhead_s"], fits=fits,
        fit_error={c: median(e) for c, e in errors.items() if c in fits}, duration_s=time.perf_counter() - t0,
        created=_created(), versions=cache.versions(), quick=quick, points=rows, other_cpu_share=other.share,
        mem_tiers=peaks["mem_tiers"], fresh_output=peaks["fresh_output"],
        cpu_lagging=(states.lagging, states.samples))


# ---- the device -----------------------------------------------------------------------------------------

def _rapl_note() -> str:
    paths = sorted(Path("/sys/class/powercap").glob("intel-rapl*/energy_uj")) if Path(
        "/sys/class/powercap").exists() else []
    readable = [p for p in paths if os.access(p, os.R_OK)]
    if readable:
        return f"RAPL counters readable at {readable[0].parent} (lk.measure does not read them yet)"
    return "no readable RAPL counter here"


def local_device(runtime: str = "torch", quick: bool = False, progress: bool = True) -> Device:
    """This machine as a Device: ``lk.device("local")`` (torch eager) or ``lk.device("local-ort")`` (lab 00).

    Calibrates on first use (a progress bar, about 30 s per runtime) when nothing is cached.

    >>> import labkit as lk
    >>> dev = lk.device("local")             # doctest: +SKIP
    >>> sorted(dev.fits)[:3]                 # doctest: +SKIP
    ['attention', 'conv', 'dwconv']
    """
    runtime = _check_runtime(runtime)
    cal = load(runtime)
    if cal is None:
        print(f"labkit: calibrating this machine for {runtime} (first use, about "
              f"{12 if quick else 30} s; cached in {cache_path()}; `labkit calibrate` redoes it)",
              file=sys.stderr)
        cal = calibrate(runtime, quick=quick, progress=progress)
    return device_from(cal)


def device_from(cal: Calibration) -> Device:
    """The Device a Calibration describes (peaks, bandwidth and the fitted op-class table)."""
    import psutil

    idle_w, busy_w = (w * cal.threads for w in POWER_W_PER_CPU)
    note = _rapl_note()
    name = "local" if cal.runtime == "torch" else "local-ort"
    return Device(
        name=name, kind="local", vendor=cal.cpu, peak_flops=dict(cal.matmul_flops_per_s),
        mem_bw_bytes_per_s=cal.triad_bytes_per_s, mem_bytes=float(psutil.virtual_memory().total),
        idle_w=idle_w, peak_w=busy_w, eff_compute=1.0, eff_mem=1.0, overhead_s=cal.op_overhead_s,
        fits=dict(cal.fits), mem_tiers=cal.mem_tiers, fresh_output=cal.fresh_output,
        torch_threads=cal.threads if cal.runtime == "torch" else 0,
        sources={
            "peak_flops": f"measured: {cal.runtime} 512x512 GEMM per dtype, {cal.created}",
            "mem_bw_bytes_per_s": f"measured: STREAM-like triad, {cal.created}",
            "mem_tiers": f"measured: in-place copy at 1-256 MiB working sets, {cal.created}",
            "fresh_output": f"measured: an op writing a fresh 16-64 MiB output vs in place, {cal.created}",
            "fits": f"fitted on {len(cal.points)} benchmarks (labkit.calibration.benchrun: single ops and random networks), {cal.created}",
            "idle_w": f"estimate: {POWER_W_PER_CPU[0]} W per logical CPU in use ({note})",
            "peak_w": f"estimate: {POWER_W_PER_CPU[1]} W per logical CPU in use ({note})",
        },
        notes=(f"this machine, {cal.runtime}, {cal.threads} threads; per-call overhead "
               f"{cal.run_overhead_s * 1e6:.1f} µs; calibration key {cal.key}"),
    )


# ---- CLI ------------------------------------------------------------------------------------------------

def _cold(cal: Calibration) -> str:
    """The "switch" fit as labkit.targets.cold_s prices it: a start-up, and the weights at a rate (when it has one)."""
    switch = cal.fits.get("switch")
    if switch is None:
        return "0 µs"
    rate = (f" + weights at {switch.bytes_per_s / 1e9:.3g} GB/s, or the call's memory tier where slower"
            if switch.bytes_per_s < 1e12 else " + weights at the call's memory tier, once it passes the caches")
    return f"{switch_s(cal.fits) * 1e6:.2f} µs{rate}"


def _table(cal: Calibration) -> str:
    lines = [f"{cal.runtime}: {cal.threads} threads, {cal.cpu}, took {cal.duration_s:.1f} s"
             + (" (quick)" if cal.quick else ""),
             "  matmul " + ", ".join(f"{d} {v / 1e9:.1f} GFLOP/s" for d, v in cal.matmul_flops_per_s.items()),
             f"  triad {cal.triad_bytes_per_s / 1e9:.2f} GB/s, copy {cal.copy_bytes_per_s / 1e9:.2f} GB/s, "
             f"op overhead {cal.op_overhead_s * 1e6:.2f} µs, call overhead {cal.run_overhead_s * 1e6:.2f} µs, "
             f"switch {_cold(cal)} (a layer among mixed ops, at most)",
             "  memory tiers (copy): " + (", ".join(f"{ws / 2**20:g} MiB {r / 1e9:.0f} GB/s" for ws, r in cal.mem_tiers)
                                          or "not measured"),
             "  fresh outputs: " + (f"from {cal.fresh_output[0] / 2**20:.0f} MiB, {1e-9 / cal.fresh_output[1]:.1f} GB/s "
                                    "of page faults" if cal.fresh_output else "no extra cost (the allocator reuses)"),
             f"  {'fit':<22} {'startup':>10} {'GFLOP/s':>9} {'GB/s':>8} {'fit err':>8} {'n':>4}"]
    counts = cal._counts()
    for c, f in cal.fits.items():
        if c in ("call", "switch"):
            continue
        lines.append(f"  {c:<22} {f.startup_s * 1e6:>8.2f}µs {f.flops_per_s / 1e9:>9.2f} "
                     f"{f.bytes_per_s / 1e9:>8.2f} {cal.fit_error.get(c, float('nan')):>8.1%} {counts[c]:>4}")
    lines.append(f"  median fit error over {len(cal.points)} benchmarks: {cal.median_fit_error:.1%}")
    if cal.other_cpu_share > NOTE_ABOVE:
        lines.append(f"  note: other processes used {cal.other_cpu_share:.0%} of the CPUs while measuring; on a "
                     "quiet machine run `labkit calibrate --force` again")
    if len(cal.cpu_lagging) == 2 and cal.cpu_lagging[0]:
        from labkit.calibration.cpustate import CpuStates

        lines.append(f"  note: the second CPU lagged in {CpuStates('calibrating', *cal.cpu_lagging)} "
                     "(labkit.calibration.cpustate: another tenant on its core); `labkit validate` says whether it "
                     "lags there too; `--threads 1` does not lag")
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    """``labkit calibrate [--force] [--quick] [--runtime torch|onnxruntime|all] [--threads N] [--json]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="labkit calibrate", description=__doc__.split("\n")[0])
    parser.add_argument("--runtime", default="all", help="torch, onnxruntime or all (default)")
    parser.add_argument("--force", action="store_true", help="measure again even if cached")
    parser.add_argument("--quick", action="store_true", help="fewer sizes: faster, rougher")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and ONNX Runtime threads (default: torch's); each count is its own calibration")
    args = parser.parse_args(argv)
    try:
        runtime = _check_runtime(args.runtime, allow_all=True)
        if args.threads is not None:
            use_threads(args.threads)
    except ValueError as err:
        print(f"labkit calibrate: {err}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = calibrate(runtime, force=args.force, quick=args.quick, progress=not args.json)
    cals = list(result.values()) if isinstance(result, dict) else [result]
    if args.json:
        print(json.dumps({c.runtime: {k: v for k, v in c.to_json().items() if k != "points"} for c in cals},
                         indent=1))
    else:
        for c in cals:
            print(_table(c))
        print(f"cache: {cache_path()} ({time.perf_counter() - t0:.1f} s)")
    return 0 if all(math.isfinite(c.median_fit_error) for c in cals) else 1


def _created() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

