"""lk.calibrate: quick calibrations into a temporary cache, checked against direct measurement."""

import importlib
import json
import math

import pytest
import torch

import labkit as lk

calibrate_mod = importlib.import_module("labkit.calibration.calibrate")
microbench = importlib.import_module("labkit.calibration.microbench")
benchrun = importlib.import_module("labkit.calibration.benchrun")
costfit = importlib.import_module("labkit.calibration.costfit")
synthnet = importlib.import_module("labkit.calibration.synthnet")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache dir with a quick torch calibration in it (measured once for this module)."""
    path = tmp_path_factory.mktemp("labkit-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("LABKIT_CACHE_DIR", str(path))
    calls = {"n": 0}
    real_time = benchrun._time

    def counting_time(*args, **kwargs):
        calls["n"] += 1
        return real_time(*args, **kwargs)

    mp.setattr(benchrun, "_time", counting_time)
    cal = calibrate_mod.calibrate("torch", quick=True, progress=False)
    yield path, cal, calls
    mp.undo()


def test_quick_calibration_fits_every_class(cache):
    _, cal, calls = cache
    assert calls["n"] > 20                                   # it really measured
    classes = {b.op_class for b in microbench.benches(quick=True)}
    assert classes <= set(cal.fits)
    for key in cal.fits:   # op classes, "class/op" refinements, and the per-call cost
        assert key in classes or key in ("call", "switch") or key.split("/")[0] in classes, key
    for cls, fit in cal.fits.items():
        for value in (fit.startup_s, fit.flops_per_s, fit.bytes_per_s):
            assert math.isfinite(value) and value > 0, (cls, fit)
    assert cal.runtime == "torch" and cal.threads == torch.get_num_threads()
    assert cal.matmul_flops_per_s["fp32"] > 0 and cal.triad_bytes_per_s > 0
    assert 0 < cal.duration_s


def test_second_call_loads_from_cache_without_measuring(cache):
    path, cal, calls = cache
    before = calls["n"]
    again = calibrate_mod.calibrate("torch", quick=True, progress=False)
    assert calls["n"] == before                              # not one more measurement
    assert again == cal
    assert calibrate_mod.is_calibrated("torch")
    assert calibrate_mod.cache_path().parent == path
    stored = json.loads(calibrate_mod.cache_path().read_text())
    assert stored["torch"]["fits"]["conv"]["startup_s"] == cal.fits["conv"].startup_s


def test_force_measures_again(cache, monkeypatch):
    _, cal, _ = cache
    monkeypatch.setattr(microbench, "benches", lambda quick=False, batches=(1, 32): [
        microbench.Bench("elementwise", "relu b1", 1, ("relu", (64,)))])
    monkeypatch.setattr(benchrun, "QUICK_NET_SEEDS", ())             # single ops only
    monkeypatch.setattr(benchrun, "QUICK_WIDE_NET_SEEDS", ())
    n = {"k": 0}
    real = benchrun._time

    def counting(*a, **k):
        n["k"] += 1
        return real(*a, **k)

    monkeypatch.setattr(benchrun, "_time", counting)
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(cache[0] / "forced"))
    fresh = calibrate_mod.calibrate("torch", force=True, quick=True, progress=False)
    assert n["k"] > 0 and set(fresh.fits) == {"elementwise", "call"}
    assert [p[0] for p in fresh.points] == ["relu b1", "relu b32"]


def test_cache_key_changes_with_threads():
    n = torch.get_num_threads()
    other = 1 if n != 1 else 2
    assert calibrate_mod.machine_key(n) != calibrate_mod.machine_key(other)
    torch.set_num_threads(other)
    try:
        assert calibrate_mod.machine_key() == calibrate_mod.machine_key(other)
        assert calibrate_mod.cache_path() != calibrate_mod.cache_path(n)
    finally:
        torch.set_num_threads(n)


def test_fit_predicts_its_own_micro_benchmarks(cache):
    _, cal, _ = cache
    errors = [abs(pred - meas) / meas for *_, meas, pred in cal.points]
    n_nets = sum(1 for p in cal.points if p[1] == "net")
    assert n_nets == 2 * len(benchrun.QUICK_NET_SEEDS + benchrun.QUICK_WIDE_NET_SEEDS)
    assert len(errors) == len(microbench.benches(quick=True)) + n_nets
    # the stored predictions are the fitted formula's: an independent recomputation for each one-layer point
    # (torch: every single-op benchmark is one layer), call cost once, compute and memory added, the bytes rate
    # capped by the memory tier of the working set; a depthwise layer also pays per kernel call, and a GEMM per
    # packed weight (not stored in the point: its prediction can only be larger)
    call = cal.fits["call"].startup_s
    assert cal.mem_tiers and all(r > 1e9 for _, r in cal.mem_tiers)
    for name, label, keys, _, flops, nbytes, _, pred in cal.points:
        if label == "net":
            continue
        own = [k for k in keys.split(";") if "/" in k]        # the op's own fit if it has one, else its class's
        f = cal.fits[own[0] if own else keys]
        rate = min(f.bytes_per_s, lk.targets.tier_bytes_per_s(cal.mem_tiers, nbytes))
        want = call + f.startup_s + flops / f.flops_per_s + nbytes / rate
        if f.kernel_call_s or f.weight_s or f.small_gemm_weight_s or f.small_image_gemm_weight_s:
            assert pred >= want * (1 - 1e-9), name
        else:
            assert pred == pytest.approx(want), name
    assert sorted(errors)[len(errors) // 2] < 0.5            # loose: a noisy, shared machine


def test_estimate_on_local_device_matches_calibration_formula(cache):
    # the fit's own predict() and labkit.estimate's layer_time must agree on the same layers
    _, cal, _ = cache
    dev = lk.device("local")
    assert dev.kind == "local" and dev.name == "local" and dict(dev.fits) == dict(cal.fits)
    picked = microbench.benches(quick=True)[::5]           # every class, incl. ones with per-op fits
    assert any(f"{b.op_class}/" in k for b in picked for k in cal.fits)
    for bench in picked:
        module, args = microbench.torch_case(bench)
        prof = lk.profile(microbench.as_model(module), args if len(args) > 1 else args[0])
        expected = costfit.predict(microbench.layer_work(prof.layers, dev.torch_threads), cal.fits, call=True, tiers=cal.mem_tiers)
        assert lk.estimate(prof, dev).latency_s == pytest.approx(expected, rel=1e-9)
    net, x = synthnet.random_net(3, batch=4)    # and on a whole network at another batch (cold shares included)
    prof = lk.profile(net, x)
    expected = costfit.predict(microbench.layer_work(prof.at_batch(32).layers, dev.torch_threads), cal.fits, call=True,
                                tiers=cal.mem_tiers)
    assert lk.estimate(prof, dev, batch=32).latency_s == pytest.approx(expected, rel=1e-9)


def test_fit_recovers_known_parameters(monkeypatch):
    # synthetic model calls from known fits (two classes, one op with its own fit, a call cost): the joint
    # least-squares fit must find every parameter again (without the pull of ops towards their class)
    from labkit.targets import OpFit

    monkeypatch.setattr(costfit, "PRIOR_WEIGHT", 1e-6)
    truth = {"conv": OpFit(5e-6, 2e10, 1e10, overlap=False), "norm": OpFit(2e-6, 5e9, 3e10, overlap=False),
             "norm/layernorm": OpFit(4e-6, 2e9, 3e10, overlap=False), "call": OpFit(3e-6, 1, 1, overlap=False),
             "switch": OpFit(1.5e-6, 1, 6e9, overlap=False)}       # cold: 1.5 µs + the weights at 6 GB/s
    sizes = [(1e3, 1e5), (1e6, 1e4), (1e7, 1e5), (1e8, 1e6), (1e4, 1e7), (1e5, 1e3), (3e7, 3e6), (1e2, 1e2)]
    points = []
    for i, (flops, nbytes) in enumerate(sizes):
        for k in range(1, 4):   # k convs then k norms (batchnorm and layernorm): several layers per call
            weights = int(2e5 * ((7 * i + k) % 5))              # weight bytes, fetched again when cold
            work = [("conv", "conv2d", int(flops * k), int(nbytes), 0, 0, 0, 0, weights)] * k
            work += [("norm", "batchnorm", int(nbytes / 3), int(nbytes * k))] * (i % 3)
            work += [("norm", "layernorm", int(nbytes / 2), int(nbytes / k))] * (k % 2 + 1)
            points.append((f"p{i}.{k}", work, costfit.predict(work, truth, call=True)))
    got = costfit.fit(points)
    for key in ("call", "switch"):   # the cold-cache cost of mixed ops, beside the fixed cost of a call
        assert got[key].startup_s == pytest.approx(truth[key].startup_s, rel=1e-3), key
    assert got["switch"].bytes_per_s == pytest.approx(6e9, rel=1e-3)     # and its rate for the weights
    for cls, op in [("conv", "conv2d"), ("norm", "batchnorm"), ("norm", "layernorm")]:
        have, want = costfit.fit_for(got, cls, op), costfit.fit_for(truth, cls, op)   # what each op costs
        for field in ("startup_s", "flops_per_s", "bytes_per_s"):
            assert getattr(have, field) == pytest.approx(getattr(want, field), rel=1e-3), (op, field)
    assert not got["conv"].overlap


def test_fit_recovers_kernel_calls_and_rates_under_memory_tiers(monkeypatch):
    # synthetic calls where big working sets stream at the tiers' rate (not the fit's) and depthwise layers pay
    # per kernel call: the fit must recover every parameter, the per-call cost included, and ignore the capped
    # layers' bytes when it fits the bytes rate
    from labkit.targets import OpFit

    monkeypatch.setattr(costfit, "PRIOR_WEIGHT", 1e-6)
    tiers = ((2**22, 100e9), (2**26, 40e9), (2**28, 30e9))
    truth = {"dwconv": OpFit(8e-6, 1e10, 6e10, overlap=False, kernel_call_s=4e-7),
             "norm": OpFit(2e-6, 5e9, 2e11, overlap=False), "call": OpFit(3e-6, 1, 1, overlap=False),
             "switch": OpFit(1e-6, 1, 1, overlap=False)}
    points = []
    for i, (flops, nbytes, calls) in enumerate([(1e5, 1e5, 64), (1e6, 2e6, 512), (1e7, 1e6, 4096), (3e5, 3e8, 32),
                                                (1e8, 1e7, 256), (2e6, 5e7, 18432), (1e4, 1e4, 8)]):
        for k in range(1, 4):
            work = [("dwconv", "conv2d", int(flops * k), int(nbytes), calls * k)] * k
            work += [("norm", "batchnorm", int(3e4 * (i + 1) ** 2), int(nbytes * k), 0)] * ((i + k) % 3)
            points.append((f"p{i}.{k}", work, costfit.predict(work, truth, call=True, tiers=tiers)))
    assert any(costfit.predict(w, truth, tiers=tiers) > 1.5 * costfit.predict(w, truth) for _, w, _ in points)
    got = costfit.fit(points, tiers=tiers)
    for cls in ("dwconv", "norm"):
        for field in ("startup_s", "flops_per_s", "bytes_per_s", "kernel_call_s"):
            assert getattr(got[cls], field) == pytest.approx(getattr(truth[cls], field), rel=1e-3), (cls, field)
    assert got["call"].startup_s == pytest.approx(3e-6, rel=1e-3)
    assert got["switch"].startup_s == pytest.approx(1e-6, rel=1e-3)


def test_fit_recovers_packed_and_small_gemm_weight_costs(monkeypatch):
    # synthetic GEMM calls where every weight is packed per call (rows >= 2) and a GEMM of few rows pays more
    # per weight: the fit recovers both per-weight costs beside the rates; rows 1 (a matrix-vector product) pays
    # neither, so the three kinds of point separate the terms
    from labkit.targets import OpFit

    monkeypatch.setattr(costfit, "PRIOR_WEIGHT", 1e-6)
    truth = {"matmul": OpFit(2e-6, 5e10, 8e10, overlap=False, weight_s=3e-10, small_gemm_weight_s=5e-10),
             "call": OpFit(3e-6, 1, 1, overlap=False)}
    points = []
    for i, (k, n) in enumerate([(64, 64), (256, 128), (512, 512), (1024, 256), (192, 576), (128, 1024)]):
        for rows in (1, 4, 9, 16, 64, 256):
            w = k * n
            packed = w if rows >= 2 else 0
            work = [("matmul", "linear", 2 * rows * w, 4 * (w + rows * (k + n)), 0, packed,
                     packed if rows < 16 else 0)] * (1 + i % 2)
            points.append((f"mm{i}.{rows}", work, costfit.predict(work, truth, call=True)))
    # convs on small maps: the per-image small-GEMM cost (ONNX Runtime's) beside the per-call one (torch's)
    truth["conv"] = OpFit(5e-6, 1e11, 5e10, overlap=False, weight_s=1e-10, small_gemm_weight_s=4e-10,
                          small_image_gemm_weight_s=2e-10)
    for i, (c, hw) in enumerate([(64, 2), (128, 3), (256, 2), (96, 4), (192, 8), (32, 16)]):
        w = 9 * c * c
        for images in (1, 8, 32):
            rows = images * hw * hw
            work = [("conv", "conv2d", 2 * rows * w, 4 * (w + 2 * rows * c), 0, w, w if rows < 16 else 0,
                     w * images if hw * hw < 16 else 0)]
            points.append((f"conv{i}.{images}", work, costfit.predict(work, truth, call=True)))
    got = costfit.fit(points)
    for cls, fields in (("matmul", ("startup_s", "flops_per_s", "bytes_per_s", "weight_s", "small_gemm_weight_s")),
                        ("conv", ("startup_s", "flops_per_s", "bytes_per_s", "weight_s", "small_gemm_weight_s",
                                  "small_image_gemm_weight_s"))):
        for field in fields:
            assert getattr(got[cls], field) == pytest.approx(getattr(truth[cls], field), rel=1e-3), (cls, field)
    assert got["matmul"].kernel_call_s == 0.0           # no layer makes kernel calls: nothing to report
    assert got["matmul"].small_image_gemm_weight_s == 0.0


def test_layer_gemm_rows_and_packed_weights():
    # rows = MACs per weight: a conv's batch x output pixels, a linear's tokens; GEMV (1 row) packs nothing,
    # depthwise convs are not GEMMs; below 16 rows the weights also count as a small GEMM's
    conv = lk.profile(torch.nn.Conv2d(256, 256, 3, padding=1, bias=False), torch.zeros(1, 256, 2, 2)).layers[0]
    assert (conv.gemm_rows, conv.packed_weights, conv.small_gemm_weights) == (4, 256 * 256 * 9, 256 * 256 * 9)
    big = lk.profile(torch.nn.Conv2d(256, 256, 3, padding=1, bias=False), torch.zeros(1, 256, 2, 2)).at_batch(32)
    assert (big.layers[0].gemm_rows, big.layers[0].small_gemm_weights) == (128, 0)
    tokens = lk.profile(torch.nn.Linear(192, 576), torch.zeros(1, 17, 192)).layers[0]
    assert (tokens.gemm_rows, tokens.packed_weights, tokens.small_gemm_weights) == (17, 192 * 576 + 576, 0)
    gemv = lk.profile(torch.nn.Linear(192, 576), torch.zeros(1, 192)).layers[0]
    assert (gemv.gemm_rows, gemv.packed_weights) == (1, 0)
    dw = lk.profile(torch.nn.Conv2d(32, 32, 3, groups=32), torch.zeros(1, 32, 8, 8)).layers[0]
    assert dw.unit_counts == (32, 0, 0, 0)
    # per image: a conv on 2x2 maps is a small GEMM in every image, at any batch; a linear never is
    assert (conv.small_image_gemm_weights, big.layers[0].small_image_gemm_weights) == (256 * 256 * 9, 32 * 256 * 256 * 9)
    assert tokens.small_image_gemm_weights == 0


def test_maxpool_benchmarks_fit_both_sides_of_its_cache_step():
    # torch's max pool has a fit of its own past POOL_SPILL_BYTES per thread ("maxpool:spill"); each side needs
    # MIN_OP_LAYERS benchmarks at one and at two threads, or it falls back to the pool class's fit (avg pools)
    from labkit.targets import fit_op

    pools = [b for b in microbench.benches() if b.name.startswith("pool maxpool")]
    cases = [microbench.torch_case(b) for b in pools]
    layers = [lk.profile(module, args[0]).layers[0] for module, args in cases]
    for threads in (1, 2):
        names = [fit_op(layer, threads) for layer in layers]
        assert names.count("maxpool") >= costfit.MIN_OP_LAYERS, names
        assert names.count("maxpool:spill") >= costfit.MIN_OP_LAYERS, names
    assert {fit_op(layer) for layer in layers} == {"maxpool"}      # ONNX Runtime: one kernel, one fit


def test_estimate_prices_memory_tiers_and_fresh_outputs():
    # a layer whose working set is beyond the caches streams at the tier's rate, and an output above the fresh
    # threshold pays its page faults; lk.estimate and the calibration's own predict agree on both
    from labkit.targets import Device, OpFit

    prof = lk.profile(torch.nn.ReLU(), torch.zeros(4, 2**22))          # 64 MiB in, 64 MiB out
    lay = prof.layers[0]
    fit = OpFit(1e-6, 1e12, 2e11, overlap=False)
    tiers, fresh = ((2**22, 100e9), (2**28, 25e9)), (2**25, 3e-10)
    plain = Device("cpu", "local", "x", {"fp32": 1e11}, 1e10, 1e10, 1, 2, fits={"elementwise": fit})
    tiered = Device("cpu", "local", "x", {"fp32": 1e11}, 1e10, 1e10, 1, 2, fits={"elementwise": fit},
                    mem_tiers=tiers, fresh_output=fresh)
    base = lk.estimate(prof, plain).latency_s
    want = 1e-6 + lay.flops / 1e12 + lay.bytes / lk.targets.tier_bytes_per_s(tiers, lay.bytes) \
        + lay.output_bytes * 3e-10
    assert lk.estimate(prof, tiered).latency_s == pytest.approx(want, rel=1e-9) and want > 3 * base
    work = microbench.layer_work(prof.layers)
    assert costfit.predict(work, tiered.fits, tiers=tiers) + lay.output_bytes * 3e-10 == pytest.approx(want)


def test_estimate_adds_compute_and_memory_for_a_cpu_fit():
    # OpFit.overlap=False (what calibration fits): start-up + compute + memory; True: start-up + max(...)
    from labkit.targets import Device, OpFit

    prof = lk.profile(torch.nn.Linear(256, 128), torch.zeros(8, 256))
    lay = prof.layers[0]
    for overlap in (False, True):
        fit = OpFit(2e-6, 1e10, 4e9, overlap=overlap)
        dev = Device("cpu-fit", "local", "x", {"fp32": 1e11}, 1e10, 1e9, 1, 2, fits={"matmul": fit})
        compute, memory = lay.flops / 1e10, lay.bytes / 4e9
        want = 2e-6 + (max(compute, memory) if overlap else compute + memory)
        assert lk.estimate(prof, dev).latency_s == pytest.approx(want, rel=1e-9)


def test_random_nets_are_seeded_small_and_profilable():
    net, x = synthnet.random_net(7, batch=2)
    again, x2 = synthnet.random_net(7, batch=2)
    assert torch.equal(x, x2) and torch.equal(net(x), again(x2))            # same seed, same net and weights
    kinds = set()
    for seed in range(100, 112):
        net, x = synthnet.random_net(seed, batch=1)
        prof = lk.profile(net, x)
        kinds.add(x.dtype)
        assert len(prof.layers) >= 3 and prof.macs <= 1.5 * synthnet.MAX_MACS, seed
    assert kinds == {torch.float32, torch.int64}                              # image/vector and token nets
    for seed in benchrun.WIDE_NET_SEEDS:      # weights beyond a core's L2 (what pins the cold bytes rate)
        net, x = synthnet.random_net(seed, batch=1, kind="wide")
        prof = lk.profile(net, x)
        assert prof.weight_bytes > 2**21 and prof.macs <= synthnet.WIDE_MAX_MACS, seed
    assert {synthnet.random_net(s, kind="wide")[1].dim() for s in benchrun.WIDE_NET_SEEDS} == {3, 4}  # MLPs, convs
    with pytest.raises(ValueError, match="image"):
        synthnet.random_net(0, kind="imag")


def test_unknown_runtime_is_a_clear_error():
    with pytest.raises(ValueError, match="onnxruntime"):
        calibrate_mod.calibrate("onnxrutime")


def test_cli_prints_the_table_and_exits_0(cache, capsys):
    assert calibrate_mod.cli(["--runtime", "torch", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "conv" in out and "fit error" in out
    assert calibrate_mod.cli(["--runtime", "torch", "--quick", "--json"]) == 0
    assert "fits" in json.loads(capsys.readouterr().out)["torch"]
    assert calibrate_mod.cli(["--runtime", "tpu"]) == 2
