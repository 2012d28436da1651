"""lk.compile (lab 04): ONNX Runtime levels, torch.compile timing, the JAX port — checked against torch itself,
onnx's own node list and brute-force FLOP counts."""

import math
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

import labkit as lk

FAST = {"min_time_s": 0.01, "max_time_s": 0.2}


def conv_bn_relu():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 8 * 8, 5))
    with torch.no_grad():                 # non-trivial running statistics, so folding BN changes weights
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval(), torch.randn(2, 3, 8, 8)


@pytest.fixture(scope="module")
def levels():
    model, x = conv_bn_relu()
    return lk.compile.ort_levels(model, x, **FAST)


def test_disabled_level_counts_the_exported_graph(levels):
    model, x = conv_bn_relu()
    proto = lk.compile.export_onnx(model, x)
    assert levels.counts["disabled"] == dict(Counter(n.op_type for n in proto.graph.node))
    assert levels.counts["disabled"]["BatchNormalization"] == 2


def test_higher_levels_fold_bn_and_fuse_conv_relu(levels):
    assert levels.levels == ("disabled", "basic", "extended", "all")
    assert "BatchNormalization" not in levels.counts["basic"]          # folded into Conv
    assert levels.counts["basic"]["Conv"] == 2
    ext = levels.counts["extended"]
    assert ext.get("FusedConv (microsoft)") == 2 and "Relu" not in ext  # Conv+Relu fused
    assert levels.nodes("extended") < levels.nodes("basic") < levels.nodes("disabled")
    fused = levels.fusions("disabled", "extended")
    assert fused["BatchNormalization"] == -2 and fused["FusedConv (microsoft)"] == 2
    frame = levels.to_frame()
    assert list(frame.columns) == list(levels.levels)
    assert frame.loc["total nodes", "disabled"] == levels.nodes("disabled")


def test_every_level_computes_what_torch_computes(levels):
    assert levels.reference == "torch"
    for lv in levels.levels:
        assert levels.max_abs_diff[lv] < 1e-4, lv
        assert levels.latency[lv].p50_s > 0


def test_ort_levels_from_a_file_compares_with_the_unoptimised_graph(tmp_path):
    model, x = conv_bn_relu()
    path = lk.compile.export_onnx(model, x, tmp_path / "m.onnx")
    r = lk.compile.ort_levels(path, x, levels=["all"], **FAST)
    assert r.levels == ("disabled", "all") and r.reference == "disabled"
    assert r.max_abs_diff["disabled"] == 0.0 and r.max_abs_diff["all"] < 1e-4


def test_fold_true_lets_the_exporter_fold_bn():
    model, x = conv_bn_relu()
    ops = {n.op_type for n in lk.compile.export_onnx(model, x, fold=True).graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops


def test_ort_bad_input():
    model, x = conv_bn_relu()
    with pytest.raises(ValueError, match="extended"):
        lk.compile.ort_levels(model, x, levels=["extendd"])
    with pytest.raises(ValueError, match="threads"):
        lk.compile.ort_levels(model, x, threads=0)
    with pytest.raises(ValueError, match="onnx_model"):
        lk.compile.ort_levels(42, x)
    with pytest.raises(ValueError, match="no ONNX file"):
        lk.compile.ort_levels("/nonexistent/m.onnx", x)
    with pytest.raises(ValueError, match="torch.nn.Module"):
        lk.compile.export_onnx("model", x)
    with pytest.raises(ValueError, match="example"):
        lk.compile.export_onnx(model, "x")


def test_break_even_arithmetic_on_fake_timings():
    assert lk.compile.break_even_calls(compile_s=3.0, eager_s=0.004, compiled_s=0.001) == pytest.approx(1000)
    # n calls cost eager n*e, compiled c + n*k: equal at the break-even count
    n = lk.compile.break_even_calls(compile_s=2.5, eager_s=0.01, compiled_s=0.0075)
    assert n * 0.01 == pytest.approx(2.5 + n * 0.0075)
    assert lk.compile.break_even_calls(1.0, 0.001, 0.002) == math.inf
    assert lk.compile.break_even_calls(1.0, 0.001, 0.001) == math.inf
    for bad in (-1.0, math.nan, "1", True):
        with pytest.raises(ValueError, match="compile_s"):
            lk.compile.break_even_calls(bad, 0.1, 0.05)


def test_torch_compile_aot_eager_times_first_call_apart():
    model, x = lk.zoo.build("mlp"), lk.zoo.example("mlp", batch=4)
    r = lk.compile.torch_compile(model, x, backend="aot_eager", **FAST)
    assert (r.backend, r.requested_backend, r.fallback) == ("aot_eager", "aot_eager", "")
    assert r.max_abs_diff < 1e-5
    assert r.compile_s > 0 and r.compiled.n >= 1 and r.eager.n >= 1
    assert r.break_even_calls == lk.compile.break_even_calls(r.compile_s, r.eager.p50_s, r.compiled.p50_s)
    assert r.to_frame().loc["eager", "compile_s"] == 0.0


def test_torch_compile_falls_back_without_a_compiler(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    r = lk.compile.torch_compile(lk.zoo.build("mlp"), lk.zoo.example("mlp"), **FAST)
    assert r.requested_backend == "inductor" and r.backend == "aot_eager"
    assert "C++ compiler" in r.fallback and "fallback" in repr(r)


def test_torch_compile_bad_input():
    model, x = lk.zoo.build("mlp"), lk.zoo.example("mlp")
    with pytest.raises(ValueError, match="inductor"):
        lk.compile.torch_compile(model, x, backend="inductr")
    with pytest.raises(ValueError, match="mode"):
        lk.compile.torch_compile(model, x, mode="fastest")
    with pytest.raises(ValueError, match="inductor"):
        lk.compile.torch_compile(model, x, mode="max-autotune", backend="aot_eager")
    with pytest.raises(ValueError, match="torch.nn.Module"):
        lk.compile.torch_compile(lambda t: t, x)
    with pytest.raises(ValueError, match="example"):
        lk.compile.torch_compile(model, [1, 2])


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
def test_to_jax_equals_torch(name):
    model, x = lk.zoo.build(name), lk.zoo.example(name, batch=3, seed=1)
    jm = lk.compile.to_jax(model)
    with torch.no_grad():
        want = model(x).numpy()
    got = np.asarray(jm(x.numpy()))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(jm.params) == set(state)
    # the params are a copy: changing the torch weights afterwards does not change the JAX model
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    np.testing.assert_array_equal(np.asarray(jm(x.numpy())), got)


def test_to_jax_bad_input():
    with pytest.raises(ValueError, match="torch.nn.Module"):
        lk.compile.to_jax("mlp")
    with pytest.raises(ValueError, match="GELU is not supported"):
        lk.compile.to_jax(nn.Sequential(nn.Linear(4, 4), nn.GELU()))


def test_jax_jit_xla_cost_beside_profile():
    batch = 4
    model, x = lk.zoo.build("mlp"), lk.zoo.example("mlp", batch=batch)
    r = lk.compile.jax_jit(model, x, **FAST)
    assert r.max_abs_diff < 1e-5
    macs = batch * sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    # XLA counts 2 flops per MAC plus bias adds and ReLUs: a few % above 2 x MACs
    assert 2 * macs <= r.xla_flops <= 1.05 * 2 * macs
    assert r.profile_flops == lk.profile(model, x).flops
    assert r.compile_s > 0 and r.jitted.p50_s > 0
    assert list(r.to_frame().columns) == ["flops", "bytes", "p50_s"]


def test_namespace():
    assert "compile" in dir(lk)
    assert "ort_levels" in dir(lk.compile)
    with pytest.raises(AttributeError, match="ort_levels"):
        lk.compile.ort_level  # noqa: B018


# ---- independent oracles: onnxruntime run here by hand, compared with torch's own output by numpy ----------
_ORT_LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
               "all": "ORT_ENABLE_ALL"}


def _ort_outputs_by_hand(path, x, level):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _ORT_LEVELS[level])
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize("name", ["conv-bn-relu", "cnn", "transformer"])
def test_ort_outputs_equal_torch_outputs_by_numpy_allclose(tmp_path, name):
    if name == "conv-bn-relu":
        model, x = conv_bn_relu()
    else:
        model, x = lk.zoo.build(name), lk.zoo.example(name, batch=2, seed=3)
    with torch.no_grad():
        want = model(x).numpy()
    path = lk.compile.export_onnx(model, x, tmp_path / "m.onnx")
    r = lk.compile.ort_levels(model, x, **FAST)
    for level in r.levels:
        got = _ort_outputs_by_hand(path, x, level)
        assert got.shape == want.shape
        assert np.allclose(got, want, rtol=1e-4, atol=1e-5), (name, level)
        # labkit's reported error is the same numpy quantity, not a self-comparison
        assert r.max_abs_diff[level] == pytest.approx(float(np.max(np.abs(got - want))), abs=2e-6), level
    # optimised levels really do change the arithmetic (BN folded into Conv), so a zero diff would be a lie
    assert max(r.max_abs_diff.values()) > 0
    assert not np.allclose(want, 0) and not np.allclose(want + 1e-2 * np.abs(want).max(), want, rtol=1e-4,
                                                        atol=1e-5)
