"""lk.validate: predicted vs measured on this machine (the accuracy goal itself is in the report, not here)."""

import importlib
import json
import math
import statistics

import pytest

import labkit as lk

calibrate_mod = importlib.import_module("labkit.calibration.calibrate")
validate_mod = importlib.import_module("labkit.calibration.validate")


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """Quick calibrations (torch and ONNX Runtime) in a private cache dir, so validate does not calibrate."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LABKIT_CACHE_DIR", str(tmp_path_factory.mktemp("labkit-cache")))
    calibrate_mod.calibrate("all", quick=True, progress=False)
    yield
    mp.undo()


def test_validate_mlp_torch_batch1(cached):
    report = validate_mod.validate(models=["mlp"], runtimes=("torch",), batches=(1,), progress=False,
                                   min_time_s=0.05)
    (row,) = report.rows
    assert (row.model, row.runtime, row.batch) == ("mlp", "torch", 1)
    assert row.predicted_s > 0 and row.measured_s > 0
    assert math.isfinite(row.rel_error)
    # the row's error is (predicted - measured) / measured of its own numbers (one row: the median is itself)
    assert row.rel_error == pytest.approx((row.predicted_s - row.measured_s) / row.measured_s, rel=1e-12)


def test_validate_onnxruntime_path(cached):
    report = validate_mod.validate(models=["mlp"], runtimes=("onnxruntime",), batches=(1,), progress=False,
                                   min_time_s=0.05)
    (row,) = report.rows
    assert row.runtime == "onnxruntime" and row.predicted_s > 0 and math.isfinite(row.rel_error)


def test_report_statistics_match_an_independent_median():
    rows = tuple(validate_mod.ValidationRow("m", rt, b, p, t) for rt, b, p, t in [
        ("torch", 1, 1.0, 2.0), ("torch", 32, 3.0, 2.0), ("onnxruntime", 1, 1.1, 1.0),
        ("onnxruntime", 32, 0.8, 1.0), ("onnxruntime", 8, 1.9, 1.0)])
    report = validate_mod.ValidationReport(rows, dtype="fp32", threads=1, duration_s=0.0)
    errors = [(p - t) / t for p, t in [(1.0, 2.0), (3.0, 2.0), (1.1, 1.0), (0.8, 1.0), (1.9, 1.0)]]
    assert report.median_abs_error == pytest.approx(statistics.median(abs(e) for e in errors))
    assert report.median_abs_error == pytest.approx(0.5)             # |errors| .5 .5 .1 .2 .9
    assert report.median_abs_error_by("torch") == pytest.approx(0.5)
    # |errors| .1 .2 .9: the median .2, not the mean (.4), the max or the first
    assert report.median_abs_error_by("onnxruntime") == pytest.approx(0.2)
    frame = report.to_frame()
    assert list(frame["rel_error"]) == pytest.approx(errors)
    assert json.loads(json.dumps(report.to_json()))["median_abs_error"] == pytest.approx(report.median_abs_error)
    assert "median |relative error|" in report.table()


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="resnet"):
        validate_mod.validate(models=["resnett"])
    with pytest.raises(ValueError, match="runtime"):
        validate_mod.validate(runtimes=("tensorrt",))
    with pytest.raises(ValueError, match="fp32"):
        validate_mod.validate(dtype="int8")
    with pytest.raises(ValueError, match="batches"):
        validate_mod.validate(batches=(0,))


def test_cli_json_exits_0(cached, capsys):
    code = validate_mod.cli(["--models", "mlp", "--runtimes", "torch", "--batches", "1", "--quick", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["model"] == "mlp" and math.isfinite(out["median_abs_error"])


def test_threads_option_calibrates_and_validates_at_that_count(cached, capsys):
    """`--threads 1` (the reading a shared VM's lagging second CPU does not move): calibrate makes a calibration
    of its own (a second cache file), validate uses it, reports one thread, and samples no CPU state."""
    import torch

    from labkit.calibration import cache

    before = torch.get_num_threads()
    try:
        assert calibrate_mod.cli(["--threads", "1", "--runtime", "torch", "--quick", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["torch"]["threads"] == 1
        assert cache.cache_path(1).exists() and cache.threads() == 1
        torch.set_num_threads(before)
        code = validate_mod.cli(["--threads", "1", "--models", "mlp", "--runtimes", "torch", "--batches", "1",
                                 "--quick", "--json", "--no-recheck"])
        assert code == 0
        out = json.loads(capsys.readouterr().out)
        assert out["threads"] == 1 and out["rows"][0]["measured_s"] > 0 and out["cpu_lagging"] == {}
        assert validate_mod.cli(["--threads", "0", "--models", "mlp"]) == 2
        assert "threads must be an int in [1, " in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_lk_validate_is_the_function():
    assert callable(lk.validate) and callable(lk.calibrate)


# ------------------------------------------------------------------ the small GPT of lab 08 (issue 17)

def test_gpt_cases_time_the_step_their_profile_describes():
    """Each timed call does what its Profile counts (torch's FLOP counter as the oracle), gives the logits of a
    full causal forward over the same tokens, and leaves the cache as it found it (so it can be timed again)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    gptcases = importlib.import_module("labkit.calibration.gptcases")
    model = lk.zoo.load("gpt").model
    cases = gptcases.cases(model)
    assert [(n, b) for n, b, *_ in cases] == [(n, b) for n, b, *_ in gptcases.cases(None, names_only=True)]
    with torch.inference_mode():
        for name, batch, prof, fn, args in cases:
            with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
                logits = fn(*args)
            assert 2 * prof.macs == counter.get_total_flops(), name
            assert prof.batch == batch == logits.shape[0], name
            if " decode ctx " in name:
                context = int(name.rsplit(" ", 1)[1])
                full = model(torch.zeros(batch, context + 1, dtype=torch.long))[:, -1:]
                assert torch.allclose(logits, full, atol=1e-4), name
                with sdpa_kernel(SDPBackend.MATH):
                    again = fn(*args)
                assert torch.equal(logits, again), name           # the cache was back at `context`
    kinds = {n.split()[1] for n, *_ in cases}
    assert kinds == {"prefill", "decode", "recompute"}
    assert len({b for n, b, *_ in cases if " decode " in n}) >= 3      # decode at several batch sizes


def test_kv_speedup_is_recompute_over_decode_of_the_rows():
    gptcases = importlib.import_module("labkit.calibration.gptcases")
    long = gptcases.LONG
    rows = (validate_mod.ValidationRow(f"gpt recompute ctx {long}", "torch", 1, 6.0, 9.0),
            validate_mod.ValidationRow(f"gpt decode ctx {long}", "torch", 1, 1.5, 3.0),
            validate_mod.ValidationRow(f"gpt decode ctx {long}", "torch", 8, 99.0, 99.0))
    s = gptcases.speedup(rows)
    assert (s.context, s.measured, s.predicted) == (long, 3.0, 4.0)
    assert gptcases.speedup(rows[1:]) is None
    report = validate_mod.ValidationReport(rows, dtype="fp32", threads=1, duration_s=0.0, kv_speedup=s)
    assert "3.0x faster" in report.table() and json.loads(json.dumps(report.to_json()))["kv_speedup"]["predicted"] == 4.0


def test_validate_gpt_rows(cached):
    report = validate_mod.validate(models=["gpt"], runtimes=("torch",), progress=False, min_time_s=0.05)
    gptcases = importlib.import_module("labkit.calibration.gptcases")
    assert [(r.model, r.batch) for r in report.rows] == [(n, b) for n, b, *_ in gptcases.cases(None, names_only=True)]
    assert all(r.runtime == "torch" and r.predicted_s > 0 and r.measured_s > 0 and not r.held_out for r in report.rows)
    assert set(report.to_frame()["set"]) == {"gpt"}
    by = {(r.model, r.batch): r for r in report.rows}
    full, step = by[f"gpt recompute ctx {gptcases.LONG}", 1], by[f"gpt decode ctx {gptcases.LONG}", 1]
    assert report.kv_speedup.measured == full.measured_s / step.measured_s
    assert report.kv_speedup.predicted == full.predicted_s / step.predicted_s > 1
    # prediction structure within the run: more tokens in a prefill, more predicted time; batching decode is cheap
    prefill = [by[f"gpt prefill {n}", 1].predicted_s for n in gptcases.PREFILL]
    assert prefill == sorted(prefill)
    assert by["gpt decode ctx 64", 8].predicted_s < 8 * by["gpt decode ctx 64", 1].predicted_s
    with pytest.raises(ValueError, match="torch"):
        validate_mod.validate(models=["gpt"], runtimes=("onnxruntime",))


def test_validate_rechecks_the_machine_against_its_calibration(cached):
    # some of the calibration's own benchmarks timed again: a ratio per runtime, in the table and the JSON
    report = validate_mod.validate(models=["mlp"], runtimes=("torch",), batches=(1,), progress=False,
                                   min_time_s=0.05)
    (d,) = report.drift
    assert d.runtime == "torch" and d.n >= 6 and 0.1 < d.ratio < 10
    assert "machine against its calibration" in report.table()
    assert json.loads(json.dumps(report.to_json()))["drift"]["torch"]["n"] == d.n
    assert validate_mod.validate(models=["mlp"], runtimes=("torch",), batches=(1,), progress=False,
                                 min_time_s=0.05, recheck=False).drift == ()


def test_drift_is_the_median_of_now_over_then(monkeypatch):
    from types import SimpleNamespace

    from labkit.calibration import benchrun, recheck

    then = {"a b1": 1e-4, "a b32": 2e-3, "b b1": 5e-5, "net100 b1": 1e-3, "gone b1": 1e-3}
    now = {"a b1": 1.5e-4, "a b32": 2e-3, "b b1": 1e-4, "net100 b1": 1.2e-3, "new b1": 1e-3}
    cal = SimpleNamespace(runtime="torch", quick=True, fresh_output=None,
                          points=[(k, "x", "", 1, 0, 0, t, t) for k, t in then.items()])
    monkeypatch.setattr(benchrun, "retime", lambda *a, **k: now)
    d = recheck.drift(cal)
    # only the names timed both times count: ratios 1.5, 1.0, 2.0, 1.2 -> median 1.35
    assert (d.runtime, d.n) == ("torch", 4) and d.ratio == pytest.approx(1.35)
    assert d.notable and "1.35x" in d.note()
    assert not recheck.Drift("torch", 1.1, 4).notable and recheck.Drift("torch", 0.8, 4).notable
    report = validate_mod.ValidationReport((validate_mod.ValidationRow("m", "torch", 1, 1.0, 1.0),), dtype="fp32",
                                           threads=2, duration_s=0.0, drift=(d,))
    assert "note: torch ran its calibration benchmarks 1.35x as long" in report.table()


def test_cpu_states_are_sampled_while_calibrating_and_validating(cached):
    """The probe runs in both phases (torch, 2 threads): the calibration keeps its count, the report both, in the
    table only when a sample lagged and in the JSON always."""
    import torch

    cal = calibrate_mod.load("torch")
    lagged, samples = cal.cpu_lagging
    assert torch.get_num_threads() < 2 or (samples >= 3 and 0 <= lagged <= samples)
    assert calibrate_mod.load("onnxruntime").cpu_lagging == (0, 0)     # no probe beside ORT's threads
    report = validate_mod.validate(models=["mlp", "cnn"], runtimes=("torch",), batches=(1,), progress=False,
                                   min_time_s=0.05, recheck=False)
    if torch.get_num_threads() >= 2:
        then, now = report.cpu_states
        assert (then.phase, then.lagging, then.samples) == ("calibrating", lagged, samples)
        assert now.phase == "validating" and now.samples == 3       # 2 cases, one sample per pass of ROUNDS
        got = json.loads(json.dumps(report.to_json()))["cpu_lagging"]
        assert got["validating"] == {"lagging": now.lagging, "samples": 3}
        assert ("second CPU lagged" in report.table()) == bool(then.lagging or now.lagging)


def test_cpu_state_sample_restores_threads_and_reads_a_lag(monkeypatch):
    import torch

    from labkit.calibration import cpustate

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert cpustate.sample() is None                       # nothing to compare with one thread
        torch.set_num_threads(2)
        assert cpustate.sample() in (True, False) and torch.get_num_threads() == 2
        # the decision: the parallel run against LAG x the one-thread run (oracle: the VM's two states)
        assert cpustate.lags(87e-6, 240e-6) and not cpustate.lags(87e-6, 86e-6)
        assert not cpustate.lags(1.0, cpustate.LAG) and cpustate.lags(1.0, cpustate.LAG * 1.001)
        calls = iter([False, True, None, True])
        monkeypatch.setattr(cpustate, "sample", lambda: next(calls))
        states = cpustate.CpuStates("validating")
        for _ in range(4):
            states.take()
        assert (states.lagging, states.samples, states.share) == (2, 3, pytest.approx(2 / 3))
    finally:
        torch.set_num_threads(before)
    note = cpustate.note([cpustate.CpuStates("calibrating", 0, 19), states])
    assert "0 of 19 samples while calibrating and 2 of 3 samples while validating" in note
