"""The flat learner API: every advertised name resolves, and functions stay functions whatever the import order."""

import subprocess
import sys
import types

import labkit as lk


def test_every_public_name_resolves():
    for name in lk.__all__:
        assert getattr(lk, name) is not None, name


def test_every_sub_namespace_name_resolves():
    for namespace in (lk.compile, lk.compress, lk.deploy, lk.federated, lk.llm, lk.carbon):
        for name in namespace.__all__:
            assert getattr(namespace, name) is not None, (namespace.__name__, name)
    for name in ("simulate", "SimResult", "plot_frames", "plot_busy", "slider", "utilization"):
        assert getattr(lk.systolic, name) is not None, name
    for name in ("roofline", "timeline", "pareto", "sensitivity", "break_even", "fusions", "latency_cdf",
                 "fleet_timeline", "batching_knee", "accuracy_rounds", "label_mix", "round_timeline"):
        assert callable(getattr(lk.plot, name)), name


def test_unknown_name_suggests_near_matches():
    try:
        lk.estimat  # noqa: B018
    except AttributeError as err:
        assert "estimate" in str(err)
    else:  # pragma: no cover
        raise AssertionError("lk.estimat should not exist")


def test_functions_named_like_their_modules_stay_functions_in_a_fresh_process():
    # Importing submodules first (as other modules and learners do) must not shadow lk.measure & co.
    code = (
        "import labkit.measure, labkit.profile.core, labkit.estimate, labkit.calibration.calibrate, labkit.calibration.validate, "
        "labkit.grade.check, labkit.plot\n"
        "import labkit.compress.report, labkit.compress.distillation\n"
        "import labkit as lk, types\n"
        "for n in ('measure', 'profile', 'estimate', 'calibrate', 'validate', 'check'):\n"
        "    assert isinstance(getattr(lk, n), types.FunctionType), (n, getattr(lk, n))\n"
        "for n in ('report', 'distill'):\n"
        "    assert isinstance(getattr(lk.compress, n), types.FunctionType), (n, getattr(lk.compress, n))\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_import_is_light():
    code = "import sys, labkit\nprint(sorted(m for m in ('torch', 'jax', 'onnx', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_version_and_cli_help():
    assert isinstance(lk.__version__, str)
    out = subprocess.run([sys.executable, "-m", "labkit", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "grade" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "labkit", "gradee"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "grade" in bad.stderr
    assert isinstance(lk.device, types.FunctionType)
