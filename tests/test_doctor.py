"""labkit doctor: cgroup and Binder limits parsed from sample contents, env vars honoured, CLI output."""

import json
import sys
import types
from importlib import metadata

import pytest

import labkit.cli.doctor as doctor
from labkit.cli import main

GIB = 1024**3


@pytest.mark.parametrize("text, cpus", [("max 100000\n", None), ("150000 100000\n", 1.5),
                                         ("100000 100000", 1.0), ("50000 100000", 0.5), ("max", None)])
def test_parse_cgroup_v2_cpu_max(text, cpus):
    assert doctor.parse_cpu_max(text) == cpus


@pytest.mark.parametrize("quota, period, cpus", [("-1\n", "100000\n", None), ("50000\n", "100000\n", 0.5),
                                                 ("200000", "100000", 2.0)])
def test_parse_cgroup_v1_cfs_quota(quota, period, cpus):
    assert doctor.parse_cfs_quota(quota, period) == cpus


@pytest.mark.parametrize("text, limit", [("max\n", None), ("2147483648\n", 2 * GIB),
                                         ("9223372036854771712\n", None), ("1073741824", GIB)])
def test_parse_memory_limit_v2_and_v1(text, limit):
    assert doctor.parse_memory_limit(text) == limit


@pytest.mark.parametrize("value, number", [(None, None), ("", None), ("1", 1.0), ("0.5", 0.5),
                                           ("2147483648", 2147483648.0), ("lots", None), ("0", None)])
def test_parse_env_number(value, number):
    assert doctor.parse_env_number(value) == number


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_tree_smallest_limit_along_the_path_wins(tmp_path):
    root = tmp_path / "cgroup"
    _write(root / "cgroup.controllers", "cpu memory\n")
    _write(root / "cpu.max", "max 100000\n")
    _write(root / "user.slice" / "cpu.max", "200000 100000\n")        # 2 CPUs for the slice
    _write(root / "user.slice" / "app" / "cpu.max", "max 100000\n")
    _write(root / "user.slice" / "memory.max", "max\n")
    _write(root / "user.slice" / "app" / "memory.max", "1073741824\n")  # 1 GiB for the app
    _write(tmp_path / "proc_cgroup", "0::/user.slice/app\n")
    limits = doctor.cgroup_limits(root, tmp_path / "proc_cgroup")
    assert limits == {"cpu_quota": 2.0, "memory_limit_bytes": GIB}


def test_cgroup_v1_tree(tmp_path):
    root = tmp_path / "cgroup"
    _write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    _write(root / "cpu,cpuacct" / "docker" / "x" / "cpu.cfs_quota_us", "150000\n")
    _write(root / "cpu,cpuacct" / "docker" / "x" / "cpu.cfs_period_us", "100000\n")
    _write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")
    _write(root / "memory" / "docker" / "x" / "memory.limit_in_bytes", "3221225472\n")
    _write(tmp_path / "proc_cgroup", "4:memory:/docker/x\n2:cpu,cpuacct:/docker/x\n0::/\n")
    limits = doctor.cgroup_limits(root, tmp_path / "proc_cgroup")
    assert limits == {"cpu_quota": 1.5, "memory_limit_bytes": 3 * GIB}


def test_no_cgroups_means_no_limits(tmp_path):
    assert doctor.cgroup_limits(tmp_path / "none", tmp_path / "missing") == {
        "cpu_quota": None, "memory_limit_bytes": None}


def test_binder_env_limits_are_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("CPU_LIMIT", "1")
    monkeypatch.setenv("MEM_LIMIT", "2147483648")
    info = doctor.report(cgroup_root=tmp_path / "none", proc_cgroup=tmp_path / "missing")
    assert info["cpu"]["env_cpu_limit"] == 1.0
    assert info["cpu"]["effective"] == 1 and info["cpu"]["threads_advised"] == 1
    assert info["memory"]["env_mem_limit_bytes"] == 2147483648
    assert info["memory"]["effective_bytes"] == min(2147483648, info["memory"]["total_bytes"])


def test_effective_limits_are_the_smallest(monkeypatch):
    monkeypatch.setenv("CPU_LIMIT", "64")
    monkeypatch.setenv("MEM_LIMIT", str(8 * GIB))
    cpu = doctor.cpu_info(limits={"cpu_quota": 0.5, "memory_limit_bytes": None})
    assert cpu["effective"] == 0.5 and cpu["threads_advised"] == 1
    mem = doctor.memory_info(limits={"cpu_quota": None, "memory_limit_bytes": GIB})
    assert mem["effective_bytes"] == min(GIB, mem["total_bytes"])


def _facts(**overrides):
    info = {
        "versions": {"python": "3.11.7", "torch": "2.13.0", "onnxruntime": "1.20", "onnx": "1.17",
                     "numpy": "2.1"},
        "cpu": {"effective": 2, "threads_advised": 2},
        "memory": {"effective_bytes": 8 * GIB},
        "torch_threads": 2,
        "shm_bytes": 4 * GIB,
        "calibration": {"calibrated": True, "cache_path": "/tmp/x.json"},
        "tools": {"prometheus": "/usr/bin/prometheus", "promtool": "/usr/bin/promtool"},
    }
    info.update(overrides)
    return info


def test_problems_each_come_with_a_fix():
    assert doctor.find_problems(_facts()) == []
    found = doctor.find_problems(_facts(
        versions={"python": "3.11.7", "torch": None, "onnxruntime": "1", "onnx": "1", "numpy": "2"},
        memory={"effective_bytes": GIB},
        cpu={"effective": 1.0, "threads_advised": 1},
        torch_threads=4,
        shm_bytes=64 * 1024**2,
        calibration={"calibrated": False, "cache_path": "/tmp/x.json"},
        tools={"prometheus": None, "promtool": "/usr/bin/promtool"},
    ))
    text = json.dumps(found)
    assert len(found) == 6 and all(p["problem"] and p["fix"] for p in found)
    assert "make setup" in text and "0.8 GB" in text and "OMP_NUM_THREADS=1" in text
    assert "--shm-size" in text and "labkit calibrate" in text
    assert "prometheus (lab 11" in text and "promtool" not in text.split("missing programs")[1].split('"fix"')[0]
    assert "apt-get install prometheus" in text


def test_calibration_state_from_labkit_calibrate(monkeypatch, tmp_path):
    fake = types.ModuleType("labkit.calibration.calibrate")
    fake.is_calibrated = lambda: False
    fake.cache_path = lambda: tmp_path / "calibration-abc.json"
    monkeypatch.setitem(sys.modules, "labkit.calibration.calibrate", fake)
    info = doctor.report(cgroup_root=tmp_path / "none", proc_cgroup=tmp_path / "missing")
    assert info["calibration"] == {"calibrated": False, "cache_path": str(tmp_path / "calibration-abc.json")}
    assert any("labkit calibrate" in p["fix"] for p in info["problems"])
    # a module without the helpers: "unknown", and no crash
    monkeypatch.setitem(sys.modules, "labkit.calibration.calibrate", types.ModuleType("labkit.calibration.calibrate"))
    info = doctor.report(cgroup_root=tmp_path / "none", proc_cgroup=tmp_path / "missing")
    assert info["calibration"]["calibrated"] is None and "AttributeError" in info["calibration"]["why_unknown"]


def test_versions_match_the_packages():
    import numpy
    import torch

    found = doctor.versions()
    assert found["torch"] == torch.__version__ and found["numpy"] == numpy.__version__
    assert found["python"] == ".".join(map(str, sys.version_info[:3]))
    assert found["labkit"] == metadata.version("labkit")


def test_cli_prints_the_key_names(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for key in ("python", "labkit", "torch", "onnxruntime", "onnx", "jax", "numpy", "ray", "jupyterlab",
                "nbval", "cpus:", "memory:", "torch threads:", "calibrated:"):
        assert key in out


def test_cli_json(capsys):
    assert main(["doctor", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) >= {"versions", "cpu", "memory", "torch_threads", "calibration", "problems"}
    assert 0 < info["cpu"]["effective"] <= info["cpu"]["affinity"] <= info["cpu"]["logical"]
