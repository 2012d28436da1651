"""lk.zoo: every model builds offline, runs, is deterministic, fx-traces, exports to ONNX and fits the budget."""

import io
import warnings

import numpy as np
import pytest
import torch

import labkit as lk

NAMES = lk.zoo.names()


def test_names_and_info():
    assert NAMES == ["mlp", "cnn", "mobilenet", "resnet", "transformer"]
    for name in NAMES:
        spec = lk.zoo.info(name)
        assert spec.name == name and spec.task and spec.description and spec.lab
        assert spec.num_classes == 10


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 4])
def test_runs_on_its_example(name, batch):
    model = lk.zoo.build(name)
    assert not model.training
    x = lk.zoo.example(name, batch=batch)
    spec = lk.zoo.info(name)
    assert tuple(x.shape) == (batch, *spec.input_shape)
    assert str(x.dtype) == f"torch.{spec.input_dtype}"
    with torch.inference_mode():
        y = model(x)
    assert tuple(y.shape) == (batch, spec.num_classes)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed_and_leaves_global_rng_alone(name):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = lk.zoo.build(name, seed=0), lk.zoo.build(name, seed=0), lk.zoo.build(name, seed=1)
    assert torch.equal(torch.rand(1), before)  # building did not consume the caller's random numbers
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    assert torch.equal(lk.zoo.example(name, 2, seed=5), lk.zoo.example(name, 2, seed=5))


@pytest.mark.parametrize("name", NAMES)
def test_budget_under_2m_params_and_5mb_fp32(name):
    model = lk.zoo.build(name)
    params = sum(p.numel() for p in model.parameters())
    fp32_bytes = sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())
    assert 10_000 < params < 2_000_000
    assert fp32_bytes < 5_000_000


@pytest.mark.parametrize("name", NAMES)
def test_fx_traces_and_matches_eager(name):
    model = lk.zoo.build(name)
    traced = torch.fx.symbolic_trace(model)
    x = lk.zoo.example(name, batch=3)
    with torch.inference_mode():
        assert torch.equal(traced(x), model(x))


def _onnx_outputs(model, x, dynamo):
    import onnxruntime as ort

    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), f, dynamo=dynamo)
    sess = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize("name", NAMES)
def test_exports_to_onnx_and_onnxruntime_agrees(name):
    model, x = lk.zoo.build(name), lk.zoo.example(name, batch=2)
    with torch.inference_mode():
        expected = model(x).numpy()
    np.testing.assert_allclose(_onnx_outputs(model, x, dynamo=False), expected, rtol=1e-4, atol=1e-5)


def test_transformer_exports_with_the_default_dynamo_exporter():
    model, x = lk.zoo.build("transformer"), lk.zoo.example("transformer", batch=2)
    with torch.inference_mode():
        expected = model(x).numpy()
    np.testing.assert_allclose(_onnx_outputs(model, x, dynamo=True), expected, rtol=1e-4, atol=1e-5)


def test_architecture_features_are_really_there():
    mobilenet = lk.zoo.build("mobilenet")
    depthwise = [m for m in mobilenet.modules()
                 if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels]
    assert len(depthwise) >= 10
    ops = [n.target for n in torch.fx.symbolic_trace(mobilenet).graph.nodes if n.op == "call_function"]
    assert any("add" in getattr(t, "__name__", "") for t in ops)  # residual adds
    graph = torch.fx.symbolic_trace(lk.zoo.build("transformer")).graph
    targets = [n.target for n in graph.nodes if n.op == "call_function"]
    assert targets.count(torch.nn.functional.scaled_dot_product_attention) == 2  # one per layer
    resnet_adds = [n for n in torch.fx.symbolic_trace(lk.zoo.build("resnet")).graph.nodes
                   if n.op == "call_function" and "add" in getattr(n.target, "__name__", "")]
    assert len(resnet_adds) == 6  # 3 stages x 2 blocks


@pytest.mark.parametrize("call", [lambda: lk.zoo.build("mobilnet"), lambda: lk.zoo.info("resnett"),
                                  lambda: lk.zoo.example("cnnn")])
def test_unknown_name_lists_near_matches(call):
    with pytest.raises(ValueError, match="Did you mean"):
        call()


def test_bad_batch_and_seed():
    with pytest.raises(ValueError, match="batch"):
        lk.zoo.example("mlp", batch=0)
    with pytest.raises(ValueError, match="seed"):
        lk.zoo.build("mlp", seed=-1)
