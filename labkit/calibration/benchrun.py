"""Run the calibration's benchmarks on one runtime (torch eager or ONNX Runtime) and return what they cost.

What is measured, with the thread count as it is (introduced in lab 00):
- peaks: matmul FLOP/s per dtype (a 512x512 GEMM), a STREAM-like triad and copy (64 MiB arrays), the cost
  of one tiny op, and of one empty model call;
- the memory tiers: an in-place copy at working sets of 1-256 MiB (TIER_SIZES), whose rate falls as the data
  leaves the caches (``mem_tiers``); for torch, an op writing a fresh 16-64 MiB output against the same op
  writing in place (``fresh_output``: glibc maps big outputs anew on every call, and each page faults);
- benchmarks, each timed as a whole *model call*, exactly as ``labkit validate`` times a model:
  every single op of labkit.calibration.microbench wrapped as a one-layer model, and the random synthetic networks of
  labkit.calibration.synthnet (seeds NET_SEEDS), at batch 1 and 32. For ONNX Runtime each is exported to ONNX
  (labkit.calibration.microbench.export_onnx, the exporter validate uses), run by ``session.run`` on numpy arrays, and
  profiled as the graph ORT actually runs (after its graph optimisation).
A benchmark's point is (name, [(op_class, op, flops, bytes) per profiled layer], measured seconds).
All points are measured in ROUNDS interleaved passes, each keeping its lowest median: a burst of load from
another process spoils one pass of a few benchmarks, not a benchmark.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile

from labkit.calibration import microbench
from labkit.compile import onnx
from labkit.measure import ROUNDS, lowest_median_s
from labkit.targets import fresh_buffers, fresh_output_s

NET_SEEDS = tuple(range(100, 124))       # random synthetic networks timed by a full calibration
QUICK_NET_SEEDS = tuple(range(100, 106))
WIDE_NET_SEEDS = (200, 202, 204, 209)     # and "wide" ones (weights beyond the caches: synthnet's kind "wide")
QUICK_WIDE_NET_SEEDS = (202, 204)       # neither has a GEMM of few rows at batch 1: the cold rate
                                         # is not confused with small GEMMs' per-weight cost (one benchmark pins it)
BUDGET_S = {False: 0.045, True: 0.03}    # seconds of samples per benchmark (over all rounds), by quick
TIER_SIZES = tuple(2**k for k in (20, 22, 24, 25, 26, 27, 28))   # working sets of the tier copies, 1-256 MiB
FRESH_SIZES = tuple(m * 2**20 for m in (16, 24, 40, 64))   # outputs of the fresh-vs-in-place op, around glibc's
                                         # 32 MiB mmap threshold (never on it: a size on the edge flips)


def peak_cases(runtime: str, num_threads: int) -> list[tuple[str, object, tuple, float]]:
    """What the machine's peaks are measured on: (key, fn, args, work) with value = work / seconds
    (FLOP, bytes) or seconds itself (work 0). Timed in the same interleaved passes as the benchmarks, so
    a burst of load during one pass cannot make the GEMM peak (a bound of the fit) 100x too low."""
    import numpy as np
    import torch

    n = 512
    out = []
    if runtime == "torch":
        for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            try:
                a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
                # a slow dtype (no hardware support, ~1 GFLOP/s) is still measured, on a smaller problem:
                # 512 only if its GEMM would take under ~5 ms (64x the 128x128 one)
                t128 = lowest_median_s(torch.mm, a[:128, :128], b[:128, :128], budget_s=0.01, rounds=1)
                m = n if 64 * t128 < 5e-3 else 128
                out.append((f"matmul:{name}", torch.mm, (a[:m, :m], b[:m, :m]), 2.0 * m**3))
            except RuntimeError:   # dtype not supported by this build: not a peak of this machine
                pass
        one = torch.zeros(1)
        out.append(("op_overhead_s", torch.nn.ReLU(), (one,), 0))        # a one-element module layer
        out.append(("tiny_op_s", torch.neg, (one,), 0))                  # a one-element bare op
        # a model call is one module call more than its layers: the top-level module's own
        out.append(("run_overhead_s", microbench.fn_module(lambda x: x), (one,), 0))
    else:
        from onnx import TensorProto, helper

        def chain(op, k, shape, weight=None):   # k nodes of `op` in a row, as an ONNX graph
            nodes = [helper.make_node(op, [f"y{i - 1}" if i else "x"] + (["w"] if weight is not None else []),
                                      [f"y{i}"]) for i in range(k)]
            inits = [] if weight is None else [helper.make_tensor("w", TensorProto.FLOAT, weight.shape,
                                                                  weight.ravel())]
            g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info(f"y{k - 1}", TensorProto.FLOAT, None)],
                                  initializer=inits)
            model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
            model.ir_version = min(model.ir_version, 10)
            return onnx.session(model, num_threads)

        w = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        out.append(("matmul:fp32", chain("MatMul", 1, [n, n], w).run, (None, {"x": w}), 2.0 * n**3))
        # one session.run = a fixed cost + a cost per node: 1 vs 9 chained one-element Relus separate them
        x = np.zeros((1, 1), np.float32)
        out += [(f"relu{k}", chain("Relu", k, [1, 1]).run, (None, {"x": x}), 0) for k in (1, 9)]
    # every array below is a slice of one source and one destination buffer (2 x 128 MiB, for the largest tier):
    # the peaks read and write the same bytes as separate arrays would, and the calibration's memory stays
    # ~600 MiB smaller (a lab that calibrates at first use must fit in 1.5 GiB; labs 02 and 03 do)
    big = 16 * 2**20
    n_all = max(2 * big, max(TIER_SIZES) // 8, max(FRESH_SIZES) // 4)
    src_all, dst_all = torch.rand(n_all), torch.zeros(n_all)
    # STREAM-like: 3 arrays of 16 Mi floats (64 MiB each), far beyond the caches; torch threads as set
    dst, x, y = dst_all[:big], src_all[:big], src_all[big:2 * big]
    out.append(("triad_bytes_per_s", lambda: torch.add(x, y, alpha=3.0, out=dst), (), 3 * 4 * big))
    out.append(("copy_bytes_per_s", lambda: dst.copy_(x), (), 2 * 4 * big))
    # the memory tiers: an in-place copy whose working set (source + destination) grows through the caches
    for ws in TIER_SIZES:
        n = ws // 8
        out.append((f"tier:{ws}", dst_all[:n].copy_, (src_all[:n],), float(ws)))
    if runtime == "torch":   # a fresh output (glibc maps big ones anew per call) against one written in place
        for nb in FRESH_SIZES:
            n = nb // 4
            src_f, dst_f = src_all[:n], dst_all[:n]
            out.append((f"fresh:{nb}", torch.neg, (src_f,), 0))
            out.append((f"inplace:{nb}", lambda s=src_f, d=dst_f: torch.neg(s, out=d), (), 0))
    return out


def _peaks(measured: dict[str, tuple[float, float]]) -> dict:
    """The peaks dict from {key: (seconds, work)} of peak_cases."""
    out = {"matmul_flops_per_s": {}, "mem_tiers": mem_tiers(
        [(int(k.split(":")[1]), w / t) for k, (t, w) in measured.items() if k.startswith("tier:")])}
    out["fresh_output"] = fresh_output(
        [(int(k.split(":")[1]), t, measured[f"inplace:{k.split(':')[1]}"][0])
         for k, (t, _) in measured.items() if k.startswith("fresh:")])
    for key, (t, work) in measured.items():
        if key.startswith(("tier:", "fresh:", "inplace:")):
            continue
        if key.startswith("matmul:"):
            out["matmul_flops_per_s"][key.split(":")[1]] = work / t
        elif work:
            out[key] = work / t
        elif not key.startswith("relu"):
            out[key] = t
    if "relu1" in measured:   # ONNX Runtime: per node = (9 Relus - 1 Relu) / 8; the rest is the run's own
        per_node = max((measured["relu9"][0] - measured["relu1"][0]) / 8, 1e-8)
        out["op_overhead_s"] = out["tiny_op_s"] = per_node
        out["run_overhead_s"] = max(measured["relu1"][0] - per_node, 1e-8)
    return out


def mem_tiers(rates) -> tuple:
    """The tiers beyond the caches from (working-set bytes, copy bytes/s) measured at growing sizes: from the
    fastest size (the plateau of the caches) on, as ``labkit.targets.tier_bytes_per_s`` reads them.

    >>> mem_tiers([(2**20, 90e9), (2**22, 120e9), (2**25, 50e9), (2**28, 30e9)])
    ((4194304, 120000000000.0), (33554432, 50000000000.0), (268435456, 30000000000.0))
    """
    rates = sorted(rates)
    if not rates:
        return ()
    top = max(range(len(rates)), key=lambda i: rates[i][1])
    return tuple((int(ws), float(r)) for ws, r in rates[top:])


def fresh_output(times) -> tuple | None:
    """(threshold bytes, seconds per byte) of writing a fresh output, from (bytes, fresh_s, in_place_s) at
    growing sizes: the rate is the largest size's extra time per byte; the threshold lies between the first
    size that pays at least half that rate and the size before it (their geometric mean). None when a fresh
    output costs nothing extra (an allocator that reuses its memory, as ONNX Runtime's arena does).

    >>> MiB = 2**20
    >>> fresh_output([(16 * MiB, 1.0e-3, 0.9e-3), (24 * MiB, 1.5e-3, 1.4e-3), (40 * MiB, 14e-3, 2e-3),
    ...               (64 * MiB, 23e-3, 3e-3)])[0] // MiB               # between 24 and 40 MiB
    30
    >>> fresh_output([(16 * MiB, 1e-3, 1e-3)]) is None
    True
    """
    times = sorted(times)
    if not times:
        return None
    nb, fresh, in_place = times[-1]
    rate = (fresh - in_place) / nb
    if rate <= 0:
        return None
    first = next(i for i, (b, f, p) in enumerate(times) if (f - p) / b >= rate / 2)
    threshold = times[0][0] if first == 0 else math.sqrt(times[first - 1][0] * times[first][0])
    return (int(threshold), float(rate))


def _models(quick: bool, net_seeds=None):
    """(name, op_class label, builder(batch) -> (model, args)) for every benchmark: single ops, then nets."""
    from labkit.calibration import synthnet

    out = []
    specs = {}
    for bench in microbench.benches(quick=quick, batches=(1,)):
        specs[bench.name.rsplit(" b", 1)[0]] = bench             # the name without its " b1"
    for name, bench in specs.items():
        def build(b, bench=bench):
            module, args = microbench.torch_case(microbench.Bench(bench.op_class, bench.name, b, bench.spec))
            return microbench.as_model(module), args
        out.append((name, bench.op_class, build))
    if net_seeds is not None:
        seeds = [(s, None) for s in net_seeds]
    else:
        seeds = [(s, None) for s in (QUICK_NET_SEEDS if quick else NET_SEEDS)]
        seeds += [(s, "wide") for s in (QUICK_WIDE_NET_SEEDS if quick else WIDE_NET_SEEDS)]
    for seed, kind in seeds:
        def build(b, seed=seed, kind=kind):
            net, x = synthnet.random_net(seed, batch=b, kind=kind)
            return net, (x,)
        out.append((f"net{seed}", "net", build))
    return out


def run(runtime: str, quick: bool = False, progress: bool = True, num_threads: int | None = None,
        net_seeds=None, batches=microbench.BATCHES, states=None):
    """Measure every benchmark for `runtime`; returns (peaks dict, points) where each point is
    ``(name, [(op_class, op, flops, bytes) per profiled layer], measured_s)`` for one model call. `states`
    (a ``labkit.calibration.cpustate.CpuStates``) takes a sample every SAMPLE_EVERY benchmarks."""
    import torch

    num_threads = int(num_threads or torch.get_num_threads())
    budget_s = BUDGET_S[bool(quick)]
    models = _models(quick, net_seeds)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(models) * (1 + ROUNDS * len(batches)), desc=f"calibrate {runtime}",
                   unit="bench", file=sys.stderr)
    cases = []   # (name, work, fn, args)
    try:
        with torch.inference_mode(), tempfile.TemporaryDirectory() as tmp:
            peaks = [(key, work, fn, args, ()) for key, fn, args, work in peak_cases(runtime, num_threads)]
            for i, (name, _, build) in enumerate(models):
                cases += _cases(runtime, name, build, batches, num_threads, os.path.join(tmp, str(i)))
                if bar is not None:
                    bar.update(1)
            best = _best(peaks + cases, budget_s, bar, n_quiet=len(peaks), states=states)
    finally:
        if bar is not None:
            bar.close()
    measured = {key: (t, work) for (key, work, _, _, _), t in zip(peaks, best)}
    found = _peaks(measured)
    points = [(name, work, _explained_s(t, fresh_bytes, found["fresh_output"]))
              for (name, work, _, _, fresh_bytes), t in zip(cases, best[len(peaks):])]
    return found, points


def retime(runtime: str, quick: bool, fresh, n_models: int = 10, num_threads: int | None = None,
           batches=microbench.BATCHES) -> dict[str, float]:
    """About `n_models` of a calibration's own benchmarks (every k-th, single ops and networks, at each batch),
    timed again now exactly as ``run`` timed them: {point name: seconds}. `fresh` is the calibration's
    ``fresh_output``. ``labkit validate`` compares them with the calibration's measurements, to tell the machine's
    drift since it was calibrated from the model's error (lab 00)."""
    import torch

    num_threads = int(num_threads or torch.get_num_threads())
    models = _models(quick)
    models = models[::max(1, len(models) // n_models)]
    with torch.inference_mode(), tempfile.TemporaryDirectory() as tmp:
        cases = [case for i, (name, _, build) in enumerate(models)
                 for case in _cases(runtime, name, build, batches, num_threads, os.path.join(tmp, str(i)))]
        best = _best(cases, BUDGET_S[bool(quick)])
    return {name: _explained_s(t, fresh_bytes, fresh) for (name, _, _, _, fresh_bytes), t in zip(cases, best)}


SAMPLE_EVERY = 40   # benchmarks between two samples of the CPUs' state (about 20 samples in a calibration)


def _best(todo, budget_s: float, bar=None, n_quiet: int = 0, states=None) -> list[float]:
    """Each case's lowest median over ROUNDS interleaved passes (a burst of load spoils one pass of a few cases,
    not a case); the progress bar counts the cases after the first `n_quiet`; `states` samples the CPUs."""
    best, slow = [math.inf] * len(todo), [False] * len(todo)
    for r in range(ROUNDS):
        for k, (_, _, fn, args, _) in enumerate(todo):
            if states is not None and k % SAMPLE_EVERY == 0:
                states.take()
            best[k] = min(best[k], _time(fn, args, budget_s / ROUNDS, first=r == 0, slow=slow[k]))
            slow[k] = best[k] > budget_s / ROUNDS / 5
            if bar is not None and k >= n_quiet:
                bar.update(1)
    return best


def _explained_s(t: float, fresh_bytes, fresh) -> float:
    """What the cost fit explains of a benchmark's `t`: the time besides faulting in its fresh buffers (priced on
    their own, as lk.estimate does); at most half of it is taken off, should the fresh-output measure be off."""
    return max(t - sum(fresh_output_s(fresh, b) for b in fresh_bytes), t / 2)


def _time(fn, args, per_s: float, first: bool, slow: bool) -> float:
    """The median of one lk.measure run of ~per_s seconds; a slow call (known from an earlier pass) gets
    3 samples instead of measure's minimum of 5, so that big networks do not dominate the time."""
    from labkit.measure import measure

    return measure(fn, *args, warmup=3 if first else 1, min_time_s=per_s, max_time_s=(3 if slow else 20) * per_s,
                   progress=False).p50_s


def _cases(runtime, name, build, batches, num_threads, stem):
    """One (name, work, fn, args, bytes of each buffer its layers write fresh: ``fresh_buffers``) per batch for a
    benchmark model: profiled once, at the first batch; the others' work is that profile scaled (per-sample work
    times the batch ratio, weights unchanged)."""
    from labkit.profile import profile

    out, prof, sess, b0 = [], None, None, batches[0]
    for b in batches:
        model, args = build(b)
        if runtime == "torch":
            fn, fargs = model, args
            if b == b0:
                prof = profile(model, args if len(args) > 1 else args[0])
        else:
            if sess is None:   # one export and one session for every batch (the batch axis is dynamic)
                onnx.export_file(model, args, stem + ".onnx")
                sess = onnx.session(stem + ".onnx", num_threads, optimized_path=stem + ".opt.onnx")
            feeds = onnx.feeds(sess, args)
            fn, fargs = sess.run, (None, feeds)
            if b == b0:
                prof = _onnx_profile(profile, stem + ".opt.onnx", tuple(feeds.values()))
        layers = [] if prof is None else prof.at_batch(max(1, round(prof.batch * b / b0))).layers
        work = microbench.layer_work(layers, num_threads if runtime == "torch" else 0)
        fresh = [fresh_buffers(lay, num_threads if runtime == "torch" else 0) for lay in layers]
        out.append((f"{name} b{b}", work, fn, fargs, tuple(nb for bufs in fresh for nb in bufs)))
    return out


def _onnx_profile(profile, path, example):
    """The profile of an optimised ONNX graph; None when nothing is left to run (an Identity model)."""
    try:
        return profile(path, example if len(example) > 1 else example[0])
    except ValueError as err:
        if "no layers" in str(err) or "has no" in str(err):
            return None
        raise
