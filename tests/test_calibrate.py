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
    real_time = microbench._time

    def counting_time(*args, **kwargs):
        calls["n"] += 1
        return real_time(*args, **kwargs)

    mp.setattr(microbench, "_time", counting_time)
    cal = calibrate_mod.calibrate("torch", quick=True, progress=False)
    yield path, cal, calls
    mp.undo()


def test_quick_calibration_fits_every_class(cache):
    _, cal, calls = cache
    assert calls["n"] > 20                                   # it really measured
    classes = {b.op_class for b in microbench.benches(quick=True)}
    assert set(cal.fits) == classes
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
    real = microbench._time

    def counting(*a, **k):
        n["k"] += 1
        return real(*a, **k)

    monkeypatch.setattr(microbench, "_time", counting)
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(cache[0] / "forced"))
    fresh = calibrate_mod.calibrate("torch", force=True, quick=True, progress=False)
    assert n["k"] > 0 and set(fresh.fits) == {"elementwise"}


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
    assert sorted(errors)[len(errors) // 2] < 0.5            # loose: a noisy, shared machine


def test_estimate_on_local_device_matches_calibration_formula(cache):
    # the fit's own predict() and labkit.estimate's layer_time must agree on the same layers
    _, cal, _ = cache
    dev = lk.device("local")
    assert dev.kind == "local" and dev.name == "local" and dict(dev.fits) == dict(cal.fits)
    for bench in microbench.benches(quick=True)[:6]:
        module, args = microbench.torch_case(bench)
        prof = lk.profile(module, args if len(args) > 1 else args[0])
        expected = calibrate_mod.predict(microbench.layer_work(prof.layers), cal.fits)
        assert lk.estimate(prof, dev).latency_s == pytest.approx(expected, rel=1e-9)


def test_fit_recovers_known_parameters():
    # synthetic points from a known OpFit: the least-squares fit must find it again
    from labkit.targets import OpFit

    truth = OpFit(startup_s=5e-6, flops_per_s=2e10, bytes_per_s=1e10)
    points = []
    for flops, nbytes in [(1e3, 1e5), (1e6, 1e4), (1e7, 1e5), (1e8, 1e6), (1e4, 1e7), (1e5, 1e3)]:
        work = [("conv", int(flops), int(nbytes))]
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
