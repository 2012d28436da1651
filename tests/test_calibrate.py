"""lk.calibrate: quick calibrations into a temporary cache, checked against direct measurement."""

import importlib
import json
import math

import pytest
import torch

import labkit as lk

calibrate_mod = importlib.import_module("labkit.calibrate")
microbench = importlib.import_module("labkit.microbench")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache dir with a quick torch calibration in it (measured once for this module)."""
    path = tmp_path_factory.mktemp("labkit-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("LABKIT_CACHE_DIR", str(path))
    calls = {"n": 0}
    real_time = microbench.time_call

    def counting_time(*args, **kwargs):
        calls["n"] += 1
        return real_time(*args, **kwargs)

    mp.setattr(microbench, "time_call", counting_time)
    cal = calibrate_mod.calibrate("torch", quick=True, progress=False)
    yield path, cal, calls
    mp.undo()


def test_quick_calibration_fits_every_class(cache):
    _, cal, calls = cache
    assert calls["n"] > 20                                   # it really measured
    classes = {b.op_class for b in microbench.benches(quick=True)}
    assert classes <= set(cal.fits)
    for key in cal.fits:   # op classes, "class/op" refinements, and the per-call cost
        assert key in classes or key == "call" or key.split("/")[0] in classes, key
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
        microbench.Bench("elementwise", "relu", 1, ("relu", (64,))),
        microbench.Bench("elementwise", "relu", 32, ("relu", (64,)))])
    n = {"k": 0}
    real = microbench.time_call

    def counting(*a, **k):
        n["k"] += 1
        return real(*a, **k)

    monkeypatch.setattr(microbench, "time_call", counting)
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(cache[0] / "forced"))
    fresh = calibrate_mod.calibrate("torch", force=True, quick=True, progress=False)
    assert n["k"] > 0 and set(fresh.fits) == {"elementwise", "call"}


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
    assert len(errors) == len(microbench.benches(quick=True))
    # and the stored predictions are the fitted formula's (an independent recomputation per point)
    for name, cls, op, _, flops, nbytes, _, pred in cal.points:
        f = cal.fits.get(f"{cls}/{op}") or cal.fits[cls]
        assert pred == pytest.approx(f.startup_s + max(flops / f.flops_per_s, nbytes / f.bytes_per_s)), name
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
        prof = lk.profile(module, args if len(args) > 1 else args[0])
        expected = calibrate_mod.predict(microbench.layer_work(prof.layers), cal.fits)
        expected += cal.fits["call"].startup_s                 # once per model call
        assert lk.estimate(prof, dev).latency_s == pytest.approx(expected, rel=1e-9)


def test_fit_recovers_known_parameters():
    # synthetic points from a known OpFit: the least-squares fit must find it again
    from labkit.targets import OpFit

    truth = OpFit(startup_s=5e-6, flops_per_s=2e10, bytes_per_s=1e10)
    points = []
    for flops, nbytes in [(1e3, 1e5), (1e6, 1e4), (1e7, 1e5), (1e8, 1e6), (1e4, 1e7), (1e5, 1e3)]:
        work = [("conv", "conv2d", int(flops), int(nbytes))]
        points.append((None, work, calibrate_mod.predict(work, {"conv": truth})))
    got = calibrate_mod.fit(points)["conv"]
    assert got.startup_s == pytest.approx(truth.startup_s, rel=1e-3)
    assert got.flops_per_s == pytest.approx(truth.flops_per_s, rel=1e-3)
    assert got.bytes_per_s == pytest.approx(truth.bytes_per_s, rel=1e-3)


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
