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


def test_lk_validate_is_the_function():
    assert callable(lk.validate) and callable(lk.calibrate)
