"""``labkit validate``: predict and measure every zoo model on this machine, and print the error (lab 00).

Per runtime, model and batch:
- torch: ``lk.profile(model, x)`` and ``lk.estimate(..., lk.device("local"))`` against ``model(x)``
  measured eagerly under ``torch.inference_mode()``.
- ONNX Runtime: the model is exported to ONNX (a temporary directory, batch axis dynamic), the session is
  created as calibration creates them (labkit.compile.onnx.session: graph level EXTENDED, same threads),
  and we profile **the graph ORT actually runs** (saved with ``SessionOptions.optimized_model_filepath``):
  Conv+BN folded, Conv+ReLU fused into one FusedConv, MatMul+Add into Gemm. Profiling the exported graph
  instead would charge for layers that never run. We stop at EXTENDED because level ALL rewrites convs
  into hardware-specific NCHWc contrib ops whose shapes no ONNX tool can infer, so ALL cannot be profiled.
- the small GPT of lab 08 (``"gpt"``, torch only): TTFT over prompt lengths, TPOT over contexts and batches,
  against the analytic prefill/decode Profiles (labkit.calibration.gptcases), and the KV cache's speed-up at
  a long context, measured beside predicted.
- ``rel_error = (predicted - measured) / measured``; the headline is the median of |rel_error|.
- the machine's drift since it was calibrated (labkit.calibration.recheck): some of the calibration's own
  benchmarks timed again, per runtime, so that a machine now slower or faster than when calibrated is reported
  as such rather than read as the model's error.

    $ labkit validate                  # 5 models x 2 runtimes x batch 1, 32, and the GPT: a table, the median error
    $ labkit validate --models gpt     # the small GPT's prefill and decode steps only (a few seconds)
    $ labkit validate --json --quick   # machines; --quick measures less (noisier), --models picks models
    $ labkit validate --threads 1      # one thread, its own calibration: steady where a shared VM's 2nd CPU lags
    $ labkit validate --gpu            # no measuring: a stored H200 run against the catalog (gpucheck.py)
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass

from labkit.calibration import cpustate, gptcases
from labkit.calibration.cache import use_threads
from labkit.calibration.contention import NOTE_ABOVE, OtherLoad
from labkit.calibration.recheck import Drift

SAMPLE_EVERY = 10   # torch cases between two samples of the CPUs' state (cpustate.py): about 15 in a full run

RUNTIMES = ("torch", "onnxruntime")


@dataclass(frozen=True)
class ValidationRow:
    """One prediction checked against one measurement."""

    model: str
    runtime: str
    batch: int
    predicted_s: float
    measured_s: float            # lowest median of 3 lk.measure runs, in passes (labkit.measure.ROUNDS)
    op_class: str = ""           # the op class with the largest share of the predicted time
    held_out: bool = False       # a published architecture the calibration never saw (labkit.calibration.heldout)

    @property
    def rel_error(self) -> float:
        """(predicted - measured) / measured: +0.2 means predicted 20% too slow."""
        return (self.predicted_s - self.measured_s) / self.measured_s


@dataclass(frozen=True)
class ValidationReport:
    """Every prediction vs measurement on this machine; ``median_abs_error`` is the headline (lab 00).

    >>> import labkit as lk
    >>> report = lk.validate(models=["mlp"], runtimes=("torch",), batches=(1,))   # doctest: +SKIP
    >>> report.median_abs_error < 1                                               # doctest: +SKIP
    True
    """

    rows: tuple[ValidationRow, ...]
    dtype: str
    threads: int
    duration_s: float
    other_cpu_share: float = 0.0     # share of the CPUs other processes used while measuring
    kv_speedup: gptcases.KVSpeedup | None = None   # the small GPT's KV cache at a long context, when measured
    drift: tuple[Drift, ...] = ()    # per runtime: the calibration's own benchmarks timed again, now / then
    cpu_states: tuple = ()           # torch: CpuStates while calibrating and while validating (cpustate.py)

    @property
    def median_abs_error(self) -> float:
        return _median([abs(r.rel_error) for r in self.rows])

    @property
    def median_signed_error(self) -> float:
        """The median relative error with its sign: near 0 means no systematic bias (negative: too fast)."""
        return _median([r.rel_error for r in self.rows])

    def by(self, key: str):
        """Median |error|, median signed error, worst |error| and count per group of rows (pandas).

        `key`: "model", "runtime", "batch", "op_class" (the class that dominates the prediction), "size" (the
        input size of a held-out case, e.g. 64 for "resnet18@64") or "set" (zoo, held-out or gpt).
        """
        frame = self.to_frame()
        if key not in frame.columns:
            from labkit.args import unknown_name

            raise unknown_name("grouping", key, [c for c in frame.columns if c not in ("predicted_s", "measured_s", "rel_error")])
        frame["abs_error"] = frame["rel_error"].abs()
        grouped = frame.groupby(key)
        return grouped.agg(median_abs_error=("abs_error", "median"), median_signed_error=("rel_error", "median"),
                           worst_abs_error=("abs_error", "max"), n=("rel_error", "size"))

    def median_abs_error_by(self, runtime: str) -> float:
        """The median |relative error| of one runtime's rows."""
        return _median([abs(r.rel_error) for r in self.rows if r.runtime == runtime])

    def to_frame(self):
        """One row per (model, runtime, batch): predicted_s, measured_s, rel_error (pandas)."""
        import pandas as pd

        return pd.DataFrame([{"model": r.model, "runtime": r.runtime, "batch": r.batch,
                              "predicted_s": r.predicted_s, "measured_s": r.measured_s,
                              "rel_error": r.rel_error, "op_class": r.op_class,
                              "size": int(r.model.partition("@")[2] or 0) or None,
                              "set": _set(r)} for r in self.rows])

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "threads": self.threads, "duration_s": self.duration_s,
                "other_cpu_share": self.other_cpu_share,
                "median_abs_error": self.median_abs_error, "median_signed_error": self.median_signed_error,
                "median_abs_error_by_runtime": {rt: self.median_abs_error_by(rt)
                                                for rt in dict.fromkeys(r.runtime for r in self.rows)},
                "kv_speedup": None if self.kv_speedup is None else vars(self.kv_speedup),
                "drift": {d.runtime: {"ratio": d.ratio, "n": d.n} for d in self.drift},
                "cpu_lagging": {s.phase: {"lagging": s.lagging, "samples": s.samples} for s in self.cpu_states},
                "rows": [{"model": r.model, "runtime": r.runtime, "batch": r.batch,
                          "predicted_s": r.predicted_s, "measured_s": r.measured_s,
                          "rel_error": r.rel_error, "op_class": r.op_class, "held_out": r.held_out}
                         for r in self.rows]}

    def table(self) -> str:
        w = max([12, *(len(r.model) for r in self.rows)])
        lines = [f"{'model':<{w}} {'runtime':<12} {'batch':>5} {'predicted':>11} {'measured':>11} {'error':>8}"]
        for r in self.rows:
            lines.append(f"{r.model:<{w}} {r.runtime:<12} {r.batch:>5} {_ms(r.predicted_s):>11} "
                         f"{_ms(r.measured_s):>11} {r.rel_error:>+8.1%}")
        by = ", ".join(f"{rt} {self.median_abs_error_by(rt):.1%}" for rt in dict.fromkeys(r.runtime for r in self.rows))
        lines.append(f"median |relative error|: {self.median_abs_error:.1%} ({by}); median signed error "
                     f"{self.median_signed_error:+.1%}; {self.threads} threads, {self.dtype}, {self.duration_s:.0f} s")
        if self.kv_speedup is not None:
            lines.append(str(self.kv_speedup))
        if self.drift:
            lines.append("machine against its calibration (some of its benchmarks timed again, now / then): "
                         + ", ".join(f"{d.runtime} {d.ratio:.2f}x" for d in self.drift))
        for d in self.drift:
            if d.notable:
                lines.append(f"note: {d.note()}: that much of each {d.runtime} error is the machine drifting, not "
                             "the model (`labkit calibrate --force` measures it again)")
        lagged = cpustate.note(self.cpu_states)
        if lagged:
            lines.append(lagged)
        if self.other_cpu_share > NOTE_ABOVE:
            lines.append(f"note: other processes used {self.other_cpu_share:.0%} of the CPUs while measuring: "
                         "measured times are noisy (rerun on a quiet machine for the real error)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"ValidationReport({len(self.rows)} predictions, median |error| {self.median_abs_error:.1%}, "
                f"{self.threads} threads)")


def top_class(est) -> str:
    """The op class with the largest share of an Estimate's predicted time (a ValidationRow's ``op_class``)."""
    by_class: dict[str, float] = {}
    for lay in est.layers:
        by_class[lay.op_class] = by_class.get(lay.op_class, 0.0) + lay.latency_s
    return max(by_class, key=by_class.get)


def _set(row: ValidationRow) -> str:
    """The set a row belongs to: held-out, gpt (the small GPT's prefill/decode steps) or zoo."""
    return "held-out" if row.held_out else ("gpt" if row.model.startswith(gptcases.NAME + " ") else "zoo")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def _median(xs) -> float:
    """statistics.median of the finite values, nan when there are none."""
    xs = [x for x in xs if math.isfinite(x)]
    return float(statistics.median(xs)) if xs else float("nan")


def _source(name: str):
    """(build, example) for a zoo model, or for a held-out case "<model>@<size>" (labkit.calibration.heldout)."""
    if "@" in name:
        from labkit.calibration import heldout

        heldout.parse(name)
        return heldout.build, heldout.example
    from labkit import zoo

    zoo.info(name)                                   # unknown names list the near matches
    return zoo.build, zoo.example


def _check(models, runtimes, batches, dtype, held_out=False):
    from labkit import zoo
    from labkit.args import Int, OneOf, check
    from labkit.dtypes import normalize_dtype

    models = list([*zoo.names(), gptcases.NAME] if models is None
                  else ([models] if isinstance(models, str) else models))
    if held_out:
        from labkit.calibration.heldout import CASES

        models += [c for c in CASES if c not in models]
    for m in models:
        if m != gptcases.NAME:
            _source(m)
    runtimes = [runtimes] if isinstance(runtimes, str) else list(runtimes)
    for rt in runtimes:
        check("runtime", rt, OneOf(RUNTIMES))
    if models == [gptcases.NAME] and "torch" not in runtimes:
        raise ValueError("the small GPT is measured in torch only: add runtimes=('torch',)")
    batches = list(batches) if isinstance(batches, (list, tuple)) else [batches]
    if not batches:
        raise ValueError("batches must hold at least one int >= 1, such as (1, 32).")
    batches = [check(f"batches[{i}]", b, Int(low=1)) for i, b in enumerate(batches)]
    if normalize_dtype(dtype) != "fp32":
        raise ValueError(f"validate measures fp32 only (the calibration's dtype), got dtype={dtype!r}.")
    return models, runtimes, batches


def validate(models=None, runtimes=RUNTIMES, batches=(1, 32), dtype: str = "fp32", progress: bool = True,
             min_time_s: float = 0.3, held_out: bool = False, recheck: bool = True) -> ValidationReport:
    """Predict and measure zoo models here, for torch eager and ONNX Runtime (lab 00).

    ``"gpt"`` (in the default models; torch only) adds the small GPT of lab 08: prefill and decode steps
    (labkit.calibration.gptcases) and the KV cache's measured speed-up beside the predicted one.

    ``held_out=True`` adds published architectures at several input sizes that the calibration never saw
    (labkit.calibration.heldout.CASES: ResNet-18/34, MobileNetV2/V3, EfficientNet-B0, ViT-Tiny, BERT-mini);
    `models` may also name such cases directly, e.g. ``"resnet18@64"``.

    Calibrates this machine first if nothing is cached (see ``lk.calibrate``). ``min_time_s`` is the
    measuring time per (model, runtime, batch); less is faster and noisier. ``recheck`` (default) also times
    some of the calibration's own benchmarks again, per runtime (a second or two each), and reports the machine's
    drift since it was calibrated (``ValidationReport.drift``).

    >>> import labkit as lk
    >>> lk.validate(models=["mlp"], runtimes=("torch",), batches=(1,)).rows[0].measured_s > 0  # doctest: +SKIP
    True
    """
    import time

    import torch

    from labkit.calibration.cache import threads
    from labkit.calibration.calibrate import load as load_calibration
    from labkit.calibration.calibrate import local_device
    from labkit.calibration.recheck import drift
    from labkit.compile.onnx import export_file, feeds, session
    from labkit.estimate import estimate
    from labkit.measure import ROUNDS, lowest_median_s
    from labkit.profile import profile

    models, runtimes, batches = _check(models, runtimes, batches, dtype, held_out)
    t0 = time.perf_counter()
    n_threads = threads()
    devices = {rt: local_device(rt, progress=progress) for rt in runtimes}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        n_gpt = len(gptcases.cases(None, names_only=True)) if gptcases.NAME in models and "torch" in runtimes else 0
        n_other = len(runtimes) * len([m for m in models if m != gptcases.NAME]) * len(batches)
        bar = tqdm(total=(n_other + n_gpt) * ROUNDS + n_other, desc="validate", unit="step", file=sys.stderr)
    rows, drifts, cpu_states = [], [], ()
    states = cpustate.CpuStates("validating")
    # one runtime at a time, never an ORT session alive while torch runs: idle ORT threads spin for a
    # while after each run and would steal the cores torch is being timed on. Each (model, batch) keeps
    # its lowest median over ROUNDS passes over all of them, as the calibration does (microbench.run).
    with tempfile.TemporaryDirectory() as tmp, OtherLoad() as other:
        for rt in runtimes:
            cases = []   # (model name, batch, profile, fn, args)
            for m in models:
                if m == gptcases.NAME:
                    if rt == "torch":
                        from labkit.zoo import load

                        cases += gptcases.cases(load(m).model)
                    continue
                build, example = _source(m)
                model = build(m)
                for b in batches:
                    x = example(m, batch=b)
                    if rt == "torch":
                        cases.append((m, b, profile(model, x, name=m), model, (x,)))
                    else:
                        exported = os.path.join(tmp, f"{m}.onnx")
                        if not os.path.exists(exported):
                            export_file(model, (example(m, batch=1),), exported)
                        optimized = os.path.join(tmp, f"{m}.b{b}.optimized.onnx")
                        sess = session(exported, n_threads, optimized_path=optimized)
                        inputs = feeds(sess, (x,))
                        cases.append((m, b, profile(optimized, x.numpy(), name=m), sess.run, (None, inputs)))
                    if bar is not None:
                        bar.update(1)
            best = [math.inf] * len(cases)
            with torch.inference_mode():
                for _ in range(ROUNDS):
                    for i, (_, _, _, fn, args) in enumerate(cases):
                        if rt == "torch" and i % SAMPLE_EVERY == 0:      # no ORT session alive beside the probe
                            states.take()
                        best[i] = min(best[i], lowest_median_s(fn, *args, budget_s=min_time_s / ROUNDS, rounds=1))
                        if bar is not None:
                            bar.update(1)
            for (m, b, prof, _, _), measured in zip(cases, best):
                est = estimate(prof, devices[rt], dtype=dtype)
                rows.append(ValidationRow(m, rt, b, est.latency_s, measured, top_class(est),
                                          held_out="@" in m))
            del cases
            if recheck:     # right after this runtime's rows, while no session of the other runtime is alive
                drifts.append(drift(load_calibration(rt), n_threads))
            if rt == "torch" and states.samples:
                lagged = load_calibration(rt).cpu_lagging
                states_then = (cpustate.CpuStates("calibrating", *lagged),) if len(lagged) == 2 else ()
                cpu_states = (*states_then, states)
    if bar is not None:
        bar.close()
    return ValidationReport(tuple(rows), dtype="fp32", threads=n_threads, duration_s=time.perf_counter() - t0,
                            other_cpu_share=other.share, kv_speedup=gptcases.speedup(rows), drift=tuple(drifts),
                            cpu_states=cpu_states)


def _gpu_cli(record, as_json: bool) -> int:
    from labkit.calibration.gpucheck import gpu_check

    try:
        check = gpu_check(record, progress=not as_json)
    except (FileNotFoundError, ValueError) as err:
        print(f"labkit validate --gpu: {err}", file=sys.stderr)
        return 2
    print(json.dumps(check.to_json(), indent=1) if as_json else check.table())
    return 0


def cli(argv: list[str] | None = None) -> int:
    """``labkit validate [--json] [--models mlp cnn ...] [--runtimes torch onnxruntime] [--quick] [--threads N]
    [--gpu]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="labkit validate", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help="zoo models and/or gpt (default: all)")
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), help="torch and/or onnxruntime")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--quick", action="store_true", help="measure less: faster, noisier")
    parser.add_argument("--held-out", action="store_true",
                        help="add published architectures the calibration never saw, at several input sizes")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--no-recheck", action="store_true",
                        help="skip timing some calibration benchmarks again (the machine's drift since calibrating)")
    parser.add_argument("--gpu", nargs="?", const="", default=None, metavar="RECORD",
                        help="measure nothing here: compare a stored GPU record (default: the newest in "
                             "datasets/gpu-measured/) with the catalog GPU's predictions")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and ONNX Runtime threads (default: torch's), checked against the calibration "
                             "of that count (`labkit calibrate --threads N`, or made here at first use)")
    args = parser.parse_args(argv)
    if args.gpu is not None:
        return _gpu_cli(args.gpu or None, args.json)
    try:
        if args.threads is not None:
            use_threads(args.threads)
        report = validate(args.models, args.runtimes, args.batches, progress=not args.json,
                          min_time_s=0.1 if args.quick else 0.3, held_out=args.held_out, recheck=not args.no_recheck)
    except ValueError as err:
        print(f"labkit validate: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(report.table())
        several_sets = len({_set(r) for r in report.rows}) > 1
        for key in ("op_class", "set") if several_sets else ("op_class",):
            frame = report.by(key)
            pct = {c: (lambda v: f"{v:+.1%}") for c in frame.columns if c != "n"}
            print(f"\nby {key}:\n{frame.to_string(formatters=pct)}")
    return 0

