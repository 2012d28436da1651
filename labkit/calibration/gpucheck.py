"""``labkit validate --gpu``: the simulator's GPU predictions against a real GPU's stored measurements (lab 01).

labkit never needs a GPU, so it cannot measure one when you run it. ``bench/gpu_measure.py`` was run by hand
on a real GPU and its record is stored in ``datasets/gpu-measured/`` (the date, the machine, the driver, every
timing). This module reads such a record and puts ``lk.estimate`` on the catalog device (``"h200"``) beside
each measurement, for the zoo, the held-out networks and the small GPT, at fp32, tf32 and bf16 and batches 1,
32 and 256, so that the GPU error is reported from a real run instead of assumed:

* ``graph``: the GPU's own time, the pass replayed from a CUDA graph (no Python, no per-kernel launch from
  the CPU). The catalog's roofline with its 5 µs per layer is a model of this.
* ``eager``: the pass as a plain torch call, waited for: on small models the CPU issuing kernels one by one
  is the whole cost, and the roofline has no term for it (lab 01 asks what that means for serving).

It also puts the catalog's peaks, times its assumed efficiencies (``[kinds.cloud-gpu]`` in
datasets/devices.toml), beside the measured ceilings: a large matmul at each dtype and a device-to-device copy.

>>> from labkit.calibration.gpucheck import gpu_check
>>> check = gpu_check()                                   # the newest stored record  # doctest: +SKIP
>>> check.report.by("runtime")                            # error per (mode, dtype)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from labkit.calibration.validate import ValidationReport, ValidationRow, top_class

MODES = ("graph", "eager")


@dataclass(frozen=True)
class Ceiling:
    """One measured ceiling beside the catalog's peak and what the simulator assumes of it (peak x efficiency)."""

    what: str                  # "matmul fp32", ..., "copy"
    unit: str                  # "TFLOP/s" or "GB/s"
    measured: float
    peak: float                # the datasheet figure in the catalog
    assumed: float             # peak x the kind's eff_compute or eff_mem: what lk.estimate uses

    @property
    def measured_share(self) -> float:
        """measured / peak: the efficiency this GPU reached."""
        return self.measured / self.peak


@dataclass(frozen=True)
class GpuCheck:
    """A stored GPU measurement against ``lk.estimate`` on its catalog device (lab 01).

    ``report.rows`` name their runtime ``"<mode> <dtype>"``, e.g. ``"graph bf16"``; ``report.by("runtime")``
    gives the error per mode and dtype, and ``lk.plot.validation(check.report)`` draws it.
    """

    device: str
    date: str
    machine: dict
    ceilings: tuple[Ceiling, ...]
    report: ValidationReport
    source: str                # the record's file name in datasets/gpu-measured/
    failed: tuple[str, ...] = ()   # rows the record holds no time for, and why
    eager_op_s: float | None = None       # one tiny op issued from Python (dispatch + launch), measured
    graph_kernel_s: float | None = None   # one tiny kernel replayed in a CUDA graph, measured
    overhead_s: float = 0.0               # what lk.estimate charges per layer on the device (the kind's default)

    def to_json(self) -> dict:
        return {"device": self.device, "date": self.date, "machine": self.machine, "source": self.source,
                "ceilings": [{**vars(c), "measured_share": c.measured_share} for c in self.ceilings],
                "median_abs_error_by_runtime": {rt: self.report.median_abs_error_by(rt)
                                                for rt in dict.fromkeys(r.runtime for r in self.report.rows)},
                "eager_op_s": self.eager_op_s, "graph_kernel_s": self.graph_kernel_s, "overhead_s": self.overhead_s,
                "failed": list(self.failed), "rows": self.report.to_json()["rows"]}

    def table(self) -> str:
        m = self.machine
        lines = [f"{m.get('gpu')} measured {self.date} (torch {m.get('torch')}, CUDA {m.get('cuda')}, driver "
                 f"{m.get('driver')}; {self.source}) against lk.estimate(..., {self.device!r})", "",
                 f"{'ceiling':<12} {'measured':>10} {'peak':>9} {'assumed':>9} {'measured/peak':>14}"]
        for c in self.ceilings:
            lines.append(f"{c.what:<12} {c.measured:>10.0f} {c.peak:>9.0f} {c.assumed:>9.0f} "
                         f"{c.measured_share:>13.0%}  {c.unit}")
        if self.eager_op_s and self.graph_kernel_s:
            lines.append(f"one tiny op: {self.eager_op_s * 1e6:.1f} µs issued from Python, "
                         f"{self.graph_kernel_s * 1e6:.1f} µs as a kernel of a CUDA graph; lk.estimate charges "
                         f"{self.overhead_s * 1e6:.1f} µs per layer")
        frame = self.report.by("runtime")
        pct = {c: (lambda v: f"{v:+.1%}") for c in frame.columns if c != "n"}
        lines += ["", "error by mode and dtype (graph: the GPU's own time; eager: a plain torch call):",
                  frame.to_string(formatters=pct)]
        for mode in MODES:
            rows = [r for r in self.report.rows if r.runtime.startswith(mode)]
            for batch in sorted({r.batch for r in rows}):
                errs = sorted(r.rel_error for r in rows if r.batch == batch)
                lines.append(f"{mode} batch {batch:>3}: median signed {statistics.median(errs):+.0%}, "
                             f"from {errs[0]:+.0%} to {errs[-1]:+.0%} over {len(errs)} rows")
        lines += [f"no time recorded: {f}" for f in self.failed]
        return "\n".join(lines)


def records() -> list[Path]:
    """The stored GPU records, oldest first (datasets/gpu-measured/*.json).

    >>> records()[0].name
    'h200-2026-12-04.json'
    """
    from labkit.targets.catalog import datasets_dir

    return sorted((datasets_dir() / "gpu-measured").glob("*.json"))


def _profiles(names):
    """name -> a function of (batch, dtype) giving the Profile lk.estimate prices for that row."""
    from labkit.calibration import gptcases
    from labkit.calibration.validate import _source
    from labkit.llm.model import GPTConfig
    from labkit.profile import profile

    out = {}
    for name in names:
        if name.startswith(gptcases.NAME + " "):         # the small GPT's steps: analytic profiles
            out[name] = lambda batch, dtype, name=name: gptcases.step_profile(GPTConfig(), name, batch, dtype)
        else:                                            # profiled once at batch 1, rescaled per row
            build, example = _source(name)
            at_1 = profile(build(name), example(name, batch=1), name=name)
            out[name] = lambda batch, dtype, at_1=at_1: at_1.at_batch(batch)
    return out


def _ceilings(record: dict, device) -> tuple[Ceiling, ...]:
    from labkit.estimate import peak_flops

    got = record["ceilings"]
    out = []
    for dtype in ("fp32", "tf32", "bf16"):
        key = f"matmul_{dtype}_tflops"
        if key in got:
            peak = peak_flops(device, dtype) / 1e12
            out.append(Ceiling(f"matmul {dtype}", "TFLOP/s", got[key], peak, peak * device.eff_compute))
    if "copy_gb_s" in got:
        peak = device.mem_bw_bytes_per_s / 1e9
        out.append(Ceiling("copy", "GB/s", got["copy_gb_s"], peak, peak * device.eff_mem))
    return tuple(out)


def gpu_check(path: str | Path | None = None, progress: bool = False) -> GpuCheck:
    """Compare a stored GPU record (default: the newest in datasets/gpu-measured/) with ``lk.estimate`` (lab 01).

    >>> check = gpu_check()                                   # doctest: +SKIP
    >>> check.report.median_abs_error_by("graph bf16") < 1    # doctest: +SKIP
    True
    """
    from labkit.estimate import estimate
    from labkit.targets import device as lookup

    if path is None:
        found = records()
        if not found:
            raise FileNotFoundError("no GPU record in datasets/gpu-measured/: run bench/gpu_measure.py on a GPU")
        path = found[-1]
    path = Path(path)
    if not path.exists():
        names = ", ".join(p.name for p in records()) or "none"
        raise FileNotFoundError(f"no GPU record at {path}; stored records: {names}")
    record = json.loads(path.read_text())
    device = lookup(record["catalog_device"])
    timed = [r for r in record["rows"] if "error" not in r]
    failed = tuple(f"{r['model']} b{r['batch']} {r['dtype']}: {r['error']}" for r in record["rows"] if "error" in r)
    names = list(dict.fromkeys(r["model"] for r in timed))
    if progress:
        from tqdm.auto import tqdm

        names = tqdm(names, desc="profile", unit="model")
    profiles = _profiles(names)
    rows = []
    for r in timed:
        est = estimate(profiles[r["model"]](r["batch"], r["dtype"]), device, dtype=r["dtype"])
        top = top_class(est)
        for mode in MODES:
            measured = r.get(f"{mode}_s")
            if isinstance(measured, (int, float)) and measured > 0:
                rows.append(ValidationRow(r["model"], f"{mode} {r['dtype']}", r["batch"], est.latency_s,
                                          float(measured), top, held_out="@" in r["model"]))
            elif mode == "graph":
                why = "not measured (a run on a CPU)" if measured is None else measured
                failed += (f"{r['model']} b{r['batch']} {r['dtype']} graph: {why}",)
    report = ValidationReport(tuple(rows), dtype="fp32/tf32/bf16", threads=0,
                              duration_s=float(record.get("duration_s", 0.0)))
    floors = {k: v for k, v in record["ceilings"].items() if k in ("eager_op_s", "graph_kernel_s")
              and isinstance(v, float)}
    return GpuCheck(device.name, record["date"], record["machine"], _ceilings(record, device), report,
                    path.name, failed, overhead_s=device.overhead_s, **floors)
