"""Measure the zoo, the held-out networks and the small GPT on a CUDA GPU, for ``labkit validate --gpu``.

This is the one script labkit runs on a GPU, and only by hand: the project never needs one. It writes a JSON
record (``datasets/gpu-measured/<machine>-<date>.json``) that ``labkit validate --gpu FILE`` compares with
``lk.estimate`` on the catalog device, on any machine, so the simulator's GPU error is reported from a real
run, not assumed.

    python3 bench/gpu_measure.py --out record.json            # on the GPU machine (about a minute)
    python3 bench/gpu_measure.py --device cpu --quick --out /tmp/r.json   # a dry run of the script here

What it times, per (model, batch, dtype), under ``torch.inference_mode()``:

* ``eager_s``: one forward pass as a user calls it, wall clock from the call to ``torch.cuda.synchronize()``
  (Python, dispatch and kernel launches included); the median of the timed calls after warm-up.
* ``graph_s``: the same pass replayed from a CUDA graph (no Python, no launch cost per kernel): the GPU's own
  time; the mean over the replays between two CUDA events. A message where capture fails, None on a CPU.

Every row is timed in ``--rounds`` passes over all rows (2 by default) and keeps its fastest; each round's
time is kept too (``eager_s_rounds``, ``graph_s_rounds``), so the record shows its own noise.

dtypes: ``fp32`` with TF32 off in matmuls and cuDNN (true fp32), ``tf32`` (TF32 on), ``bf16`` (weights and
inputs cast). It also measures the ceilings the catalog quotes: a large matmul at each dtype, and a
device-to-device copy (bytes read + written per second); and the floors of a tiny op, issued eagerly from
Python (``eager_op_s``: dispatch and launch) and as one kernel of a CUDA graph (``graph_kernel_s``).

It imports labkit's model definitions without ``labkit/__init__`` (the GPU image lacks labkit's non-torch
dependencies, and they are not needed to build a model).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOO = ("mlp", "cnn", "mobilenet", "resnet", "transformer")
BATCHES = (1, 32, 256)
DTYPES = ("fp32", "tf32", "bf16")


def _labkit():
    """labkit as a bare namespace package: its submodules import, its __init__ (and its dependencies) do not."""
    if "labkit" not in sys.modules:
        pkg = types.ModuleType("labkit")
        pkg.__path__ = [str(ROOT / "labkit")]
        sys.modules["labkit"] = pkg
    from labkit.calibration import gptcases, heldout
    from labkit.llm import model as gpt
    from labkit.zoo import models as zoo

    return zoo, heldout, gpt, gptcases


def _set_dtype(torch, dtype):
    tf32 = dtype == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return torch.bfloat16 if dtype == "bf16" else torch.float32


def _sync(torch, dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _eager_s(torch, dev, fn, warmup, reps):
    for _ in range(warmup):
        fn()
    _sync(torch, dev)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(torch, dev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def _graph_s(torch, dev, fn, reps):
    """Mean time of one replay of `fn` captured in a CUDA graph, or None (CPU, or capture failed)."""
    if dev.type != "cuda":
        return None
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        graph.replay()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            graph.replay()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3 / reps
    except Exception as e:                       # noqa: BLE001 - recorded, never fatal
        return f"capture failed: {type(e).__name__}: {e}"[:200]


def _reps(torch, dev, fn, budget_s):
    """How many calls fit in `budget_s`, from one timed call (between 5 and 200)."""
    t0 = time.perf_counter()
    fn()
    _sync(torch, dev)
    one = max(time.perf_counter() - t0, 1e-6)
    return max(5, min(200, int(budget_s / one)))


def _time(torch, dev, fn, budget_s, row):
    """Time `fn` eagerly and as a CUDA graph into `row`; an exception is recorded in row["error"], never raised."""
    try:
        reps = _reps(torch, dev, fn, budget_s)
        row["eager_s"], row["eager_min_s"] = _eager_s(torch, dev, fn, 5, reps)
        row["graph_s"] = _graph_s(torch, dev, fn, reps)
        row["reps"] = reps
    except Exception as e:                       # noqa: BLE001 - recorded, never fatal
        row["error"] = f"{type(e).__name__}: {e}"[:300]


def _ceilings(torch, dev, quick):
    out = {}
    n = 1024 if quick or dev.type != "cuda" else 8192
    for dtype in DTYPES:
        dt = _set_dtype(torch, dtype)
        a = torch.randn(n, n, device=dev, dtype=dt)
        b = torch.randn(n, n, device=dev, dtype=dt)
        med, _ = _eager_s(torch, dev, lambda a=a, b=b: a @ b, 3, 10)
        out[f"matmul_{dtype}_tflops"] = 2 * n**3 / med / 1e12
    _set_dtype(torch, "fp32")
    nbytes = (64 if quick else 2048) * 2**20
    src = torch.empty(nbytes // 4, device=dev)
    dst = torch.empty_like(src)
    med, _ = _eager_s(torch, dev, lambda: dst.copy_(src), 3, 20)
    out["copy_gb_s"] = 2 * nbytes / med / 1e9           # read + written
    out["matmul_n"], out["copy_bytes"] = n, nbytes
    return out


def _floors(torch, dev):
    """The cost of one tiny op: issued eagerly from Python (host dispatch + launch), and as one kernel of a graph."""
    x = torch.zeros(1, device=dev)

    def ops(n=100):
        for _ in range(n):
            x.add_(1)
    med, _ = _eager_s(torch, dev, ops, 3, 30)
    graph = _graph_s(torch, dev, ops, 30)
    return {"eager_op_s": med / 100, "graph_kernel_s": graph / 100 if isinstance(graph, float) else graph}


def _cases(zoo, heldout, quick, only=None):
    names = list(only) if only else list(ZOO) + ([] if quick else list(heldout.CASES))
    for name in names:
        if "@" in name:
            yield name, heldout.build, heldout.example
        else:
            yield name, zoo.build, zoo.example


def _model_rows(torch, dev, zoo, heldout, quick, budget_s, log, only=None):
    batches = (1, 32) if quick else BATCHES
    for name, build, example in _cases(zoo, heldout, quick, only):
        for dtype in DTYPES:
            dt = _set_dtype(torch, dtype)
            model = build(name).to(dev)
            if dtype == "bf16":
                model = model.to(dt)
            for batch in batches:
                x = example(name, batch=batch).to(dev)
                if x.is_floating_point():
                    x = x.to(dt)
                row = {"model": name, "batch": batch, "dtype": dtype}
                with torch.inference_mode():
                    _time(torch, dev, lambda model=model, x=x: model(x), budget_s, row)
                log(row)
                yield row
            del model
            if dev.type == "cuda":
                torch.cuda.empty_cache()


def _gpt_rows(torch, dev, gpt, gptcases, quick, budget_s, log):
    """The small GPT's prefill and decode steps (labkit.calibration.gptcases), built on `dev`."""
    for dtype in ("fp32", "bf16"):
        dt = _set_dtype(torch, dtype)
        torch.set_default_device(dev)
        torch.set_default_dtype(dt)
        try:
            model = gpt.build().to(dev).to(dt)
            with torch.inference_mode():
                for name, batch, _, fn, _ in gptcases.cases(model):
                    row = {"model": name, "batch": batch, "dtype": dtype}
                    _time(torch, dev, fn, budget_s, row)
                    log(row)
                    yield row
                    if quick:
                        break
        finally:
            torch.set_default_device("cpu")
            torch.set_default_dtype(torch.float32)


def _machine(torch, dev):
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        info.update(gpu=p.name, sm_count=p.multi_processor_count, gpu_mem_gib=round(p.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    capability=f"{p.major}.{p.minor}")
        try:
            import subprocess

            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception:                        # noqa: BLE001
            pass
    else:
        info["gpu"] = None
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="the JSON record to write (rewritten after every row)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--catalog", default="h200", help="the catalog device this GPU is (datasets/devices.toml)")
    ap.add_argument("--quick", action="store_true", help="zoo only, batches 1 and 32: a dry run")
    ap.add_argument("--models", nargs="+", default=None, help="only these zoo models or held-out cases")
    ap.add_argument("--budget-s", type=float, default=0.25, help="timing time per row and round, seconds")
    ap.add_argument("--rounds", type=int, default=2, help="passes over every row; each row keeps its fastest")
    args = ap.parse_args(argv)
    import torch

    dev = torch.device(args.device)
    zoo, heldout, gpt, gptcases = _labkit()
    t0 = time.perf_counter()
    record = {"what": "labkit bench/gpu_measure.py: zoo, held-out and small-GPT latency on a GPU",
              "date": datetime.date.today().isoformat(), "catalog_device": args.catalog,
              "machine": _machine(torch, dev), "ceilings": {}, "rows": []}
    out = Path(args.out)

    def save():
        record["duration_s"] = round(time.perf_counter() - t0, 1)
        out.write_text(json.dumps(record, indent=1))

    rows = {}

    def log(row):
        key = (row["model"], row["batch"], row["dtype"])
        if key not in rows:
            rows[key] = row
            record["rows"].append(row)
        else:                                    # a later round: keep each time's fastest, and every round's
            kept = rows[key]
            for k in ("eager_s", "graph_s"):
                kept.setdefault(f"{k}_rounds", [kept.get(k)]).append(row.get(k))
                times = [t for t in kept[f"{k}_rounds"] if isinstance(t, float)]
                if times:
                    kept[k] = min(times)
            if isinstance(kept.get("eager_s"), float):
                kept.pop("error", None)          # one round timed it
        e, g = row.get("eager_s"), row.get("graph_s")
        print(f"{row['model']:>24} b{row['batch']:<4} {row['dtype']:5} eager "
              f"{'-' if e is None else f'{e * 1e3:8.3f} ms'} graph "
              f"{g if not isinstance(g, float) else f'{g * 1e3:8.3f} ms'} {row.get('error', '')}", flush=True)
        save()

    print(json.dumps(record["machine"]), flush=True)
    record["ceilings"] = {**_ceilings(torch, dev, args.quick), **_floors(torch, dev)}
    print(json.dumps(record["ceilings"]), flush=True)
    save()
    record["rounds"] = args.rounds
    for _ in range(args.rounds):
        for _ in _model_rows(torch, dev, zoo, heldout, args.quick, args.budget_s, log, args.models):
            pass
        for _ in _gpt_rows(torch, dev, gpt, gptcases, args.quick, args.budget_s, log):
            pass
    save()
    print(f"done in {record['duration_s']} s: {len(record['rows'])} rows -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
