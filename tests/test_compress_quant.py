"""lk.compress quantisation (lab 02): fake_quant against torch's own fake-quant ops and hypothesis properties;
quantize_weights against fake_quant layer by layer; the ONNX Runtime fp32/int8/fp16 models against the torch
model's outputs and the ops and dtypes actually written into their files."""

import math
import os
import tempfile
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import labkit as lk

fq = lk.compress.fake_quant


def qrange(bits, scheme):
    return (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1) if scheme == "symmetric" else (0, 2 ** bits - 1)


# --- fake_quant: the docstring's numbers, torch as the oracle --------------------------------------------------

def test_symmetric_example_by_hand():
    q = fq([0.5, -1.0, 0.25], bits=8)
    assert q.scale == pytest.approx(1 / 127, rel=1e-6)
    assert q.zero_point == 0 and q.codes.tolist() == [64, -127, 32]       # 63.5 rounds half to even: 64
    assert torch.allclose(q.values, torch.tensor([64, -127, 32]) / 127)
    assert q.max_abs_error == pytest.approx(abs(0.5 - 64 / 127), rel=1e-5)
    errs = np.array([0.5 - 64 / 127, 0.0, 0.25 - 32 / 127])
    assert q.mse == pytest.approx(float((errs ** 2).mean()), rel=1e-4)
    assert q.sqnr_db == pytest.approx(10 * math.log10((0.25 + 1 + 0.0625) / (errs ** 2).sum()), rel=1e-4)


def test_asymmetric_example_by_hand():
    q = fq([-0.2, 0.0, 1.0], bits=4, scheme="asymmetric")
    assert q.scale == pytest.approx(1.2 / 15, rel=1e-6)
    assert q.zero_point == round(0.2 / (1.2 / 15))                       # 2.5 -> 2 (half to even)
    assert q.codes.min() >= 0 and q.codes.max() <= 15


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("bits", [2, 3, 4, 8, 12, 16])
def test_per_tensor_matches_torch(bits, scheme):
    torch.manual_seed(bits)
    x = torch.randn(64, 33) * 3 + (1.5 if scheme == "asymmetric" else 0.0)
    q = fq(x, bits=bits, scheme=scheme)
    lo, hi = qrange(bits, scheme)
    expected = torch.fake_quantize_per_tensor_affine(x, q.scale, q.zero_point, lo, hi)
    assert torch.equal(q.values, expected)
    assert torch.equal(q.values, (q.codes.float() - q.zero_point) * q.scale)


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_matches_torch(scheme, axis):
    torch.manual_seed(1)
    x = torch.randn(8, 4, 3, 3) * torch.linspace(0.1, 5, 8).reshape(8, 1, 1, 1)
    q = fq(x, bits=8, scheme=scheme, axis=axis)
    lo, hi = qrange(8, scheme)
    dim = axis % x.dim()
    assert q.axis == dim and q.scale.shape == (x.shape[dim],) and q.zero_point.dtype == torch.int32
    expected = torch.fake_quantize_per_channel_affine(x, q.scale, q.zero_point, dim, lo, hi)
    assert torch.equal(q.values, expected)
    # each channel's scale from its own range, computed directly
    moved = x.movedim(dim, 0).reshape(x.shape[dim], -1)
    if scheme == "symmetric":
        direct = moved.abs().max(dim=1).values / 127
    else:
        direct = (moved.max(dim=1).values.clamp(min=0) - moved.min(dim=1).values.clamp(max=0)) / 255
    assert torch.allclose(q.scale, direct, rtol=1e-6)


def test_per_channel_beats_per_tensor_when_channel_ranges_differ():
    torch.manual_seed(0)
    w = torch.randn(16, 8, 3, 3) * torch.logspace(-2, 0, 16).reshape(16, 1, 1, 1)
    per_channel, per_tensor = fq(w, bits=8, axis=0), fq(w, bits=8)
    # per channel = each channel quantised on its own, per tensor
    assert torch.equal(per_channel.values, torch.stack([fq(c, bits=8).values for c in w]))
    assert per_channel.mse < per_tensor.mse / 5                            # measured: ~7.5x here
    assert per_channel.max_abs_error <= per_tensor.max_abs_error


def test_asymmetric_beats_symmetric_on_one_sided_tensor():
    x = torch.relu(torch.randn(10_000, generator=torch.Generator().manual_seed(0)))
    sym, asym = fq(x, bits=8), fq(x, bits=8, scheme="asymmetric")
    assert asym.zero_point == 0 and asym.mse < sym.mse / 3                 # twice the codes on [0, max]: ~4x


def test_inputs_numpy_list_and_zero_tensor():
    a = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert torch.equal(fq(a).values, fq(torch.tensor(a, dtype=torch.float32)).values)
    for scheme in ("symmetric", "asymmetric"):
        z = fq(torch.zeros(3, 4), scheme=scheme)
        assert z.scale == 1.0 and z.mse == 0.0 and z.sqnr_db == math.inf
        assert not torch.isnan(z.values).any() and torch.equal(z.values, torch.zeros(3, 4))
    mixed = fq(torch.stack([torch.zeros(5), torch.linspace(-1, 1, 5)]), axis=0)
    assert mixed.scale.tolist() == [1.0, pytest.approx(1 / 127)] and not torch.isnan(mixed.values).any()


def test_levels_and_repr():
    q = fq(torch.tensor([-1.0, 0.3, 1.0]), bits=3)
    assert torch.allclose(q.levels(), torch.arange(-3, 4) / 3)
    assert set(q.values.tolist()) <= set(q.levels().tolist())
    pc = fq(torch.randn(4, 5), bits=4, scheme="asymmetric", axis=0)
    assert len(pc.levels(channel=2)) == 16
    with pytest.raises(ValueError, match="channel"):
        pc.levels()
    assert "3-bit symmetric per-tensor" in repr(q) and "SQNR" in repr(q)


@pytest.mark.parametrize("kwargs, match", [
    ({"bits": 1}, r"bits must be an int in \[2, 16\]"), ({"bits": 17}, "bits"), ({"bits": 8.0}, "bits"),
    ({"scheme": "symetric"}, "Did you mean 'symmetric'"), ({"axis": 2}, "axis"), ({"axis": True}, "axis"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fq(torch.ones(2, 3), **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        fq([])
    with pytest.raises(ValueError, match="finite"):
        fq([1.0, float("nan")])
    with pytest.raises(ValueError, match="torch tensor"):
        fq("1, 2")


# --- fake_quant: properties ----------------------------------------------------------------------------------

floats = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(max_examples=150, deadline=None)
@given(st.lists(floats, min_size=1, max_size=40), st.integers(2, 16), st.sampled_from(["symmetric", "asymmetric"]))
def test_error_within_half_a_step_and_codes_in_range(values, bits, scheme):
    x = torch.tensor(values, dtype=torch.float32)
    q = fq(x, bits=bits, scheme=scheme)
    lo, hi = qrange(bits, scheme)
    assert int(q.codes.min()) >= lo and int(q.codes.max()) <= hi
    assert lo <= q.zero_point <= hi
    span = float(x.abs().max())
    assert q.max_abs_error <= q.scale / 2 * (1 + 1e-4) + 1e-6 * span   # every x is inside the range
    assert q.mse <= q.max_abs_error ** 2 + 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.integers(2, 12), st.sampled_from(["symmetric", "asymmetric"]),
       st.sampled_from([None, 0]))
def test_more_bits_lower_error(seed, bits, scheme, axis):
    # a 512-value tensor: mse ~ scale^2 / 12 falls about 4x per bit (a tiny tensor can sit on a coarse grid)
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(seed))
    coarse, fine = fq(x, bits, scheme, axis), fq(x, bits + 1, scheme, axis)
    assert fine.mse < coarse.mse and fine.sqnr_db > coarse.sqnr_db


# --- quantize_weights --------------------------------------------------------------------------------------------

def test_quantize_weights_copies_and_quantises_each_layer():
    model, _ = lk.zoo.load("cnn")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = lk.compress.quantize_weights(model, bits=4, per_channel=True)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())      # original untouched
    quantised = 0
    for (name, m), (_, mq) in zip(model.named_modules(), q.named_modules()):
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            assert torch.equal(mq.weight, fq(m.weight, 4, axis=0).values), name
            if m.bias is not None:
                assert torch.equal(mq.bias, m.bias)
            quantised += 1
        elif isinstance(m, torch.nn.BatchNorm2d):
            assert torch.equal(mq.running_var, m.running_var) and torch.equal(mq.weight, m.weight)
    assert quantised == 4
    per_tensor = lk.compress.quantize_weights(model, bits=4, per_channel=False)
    assert torch.equal(per_tensor.fc.weight, fq(model.fc.weight, 4).values)
    assert torch.equal(per_tensor.features[0][0].weight, fq(model.features[0][0].weight, 4).values)


def test_quantize_weights_accuracy_8_bits_keeps_2_bits_loses():
    model, acc = lk.zoo.load("cnn")
    x, y = lk.data.for_model("cnn")
    assert lk.data.accuracy(lk.compress.quantize_weights(model, 8), x, y) >= acc - 0.01
    assert lk.data.accuracy(lk.compress.quantize_weights(model, 2, per_channel=False), x, y) < acc - 0.05


def test_quantize_weights_validates():
    with pytest.raises(ValueError, match="torch.nn.Module"):
        lk.compress.quantize_weights("cnn")
    with pytest.raises(ValueError, match="no Conv or Linear"):
        lk.compress.quantize_weights(torch.nn.ReLU())
    with pytest.raises(ValueError, match="per_channel"):
        lk.compress.quantize_weights(torch.nn.Linear(2, 2), per_channel="yes")


# --- ONNX Runtime ------------------------------------------------------------------------------------------------

def ops(compressed):
    import onnx

    return Counter(n.op_type for n in onnx.load_from_string(compressed.model.model_bytes).graph.node)


def initializer_bytes(compressed):
    import onnx
    from onnx import numpy_helper

    out = Counter()
    for init in onnx.load_from_string(compressed.model.model_bytes).graph.initializer:
        a = numpy_helper.to_array(init)
        out[str(a.dtype)] += a.nbytes
    return out


@pytest.fixture(scope="module")
def cnn():
    model, _ = lk.zoo.load("cnn")
    data = lk.data.for_model("cnn")
    calibration = lk.data.for_model("cnn", "train")[0][:96]
    with torch.no_grad():
        logits = model(data[0])
    return model, data, calibration, logits


@pytest.fixture(scope="module")
def cnn_fp32(cnn):
    model, data, _, _ = cnn
    return lk.compress.ort_fp32(model, data)


def test_ort_fp32_matches_torch(cnn, cnn_fp32):
    model, data, _, logits = cnn
    out = cnn_fp32.model(data[0])
    assert torch.allclose(out, logits, atol=1e-4, rtol=1e-4)
    assert cnn_fp32.report.accuracy == lk.data.accuracy(model, *data)
    assert cnn_fp32.report.name == "fp32 (ONNX)" and "BatchNormalization" not in ops(cnn_fp32)
    assert cnn_fp32.report.size_bytes >= 4 * 33_000        # 33.7k float32 parameters (BN folded away)


@pytest.mark.parametrize("format, op", [("qdq", "QuantizeLinear"), ("qoperator", "QLinearConv")])
def test_ort_static_int8(cnn, cnn_fp32, format, op, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))     # every file it writes lands here...
    model, data, calibration, logits = cnn
    q = lk.compress.ort_static(model, data, calibration, format=format, name=f"int8 {format}")
    assert os.listdir(tmp_path) == []                             # ...and is gone afterwards
    assert ops(q)[op] >= 1
    stored = initializer_bytes(q)
    assert stored["int8"] >= 33_000 and stored["float32"] < 4_000   # the weights really are int8
    import onnx
    from onnx import numpy_helper

    sizes = {numpy_helper.to_array(i).size for i in onnx.load_from_string(q.model.model_bytes).graph.initializer
             if i.name.endswith("_scale")}
    assert {16, 32, 64} <= sizes                                      # per-channel: one scale per output channel
    assert q.report.size_bytes < cnn_fp32.report.size_bytes / 2.5
    assert q.report.accuracy >= cnn_fp32.report.accuracy - 0.01
    agree = (q.model(data[0]).argmax(1) == logits.argmax(1)).float().mean()
    assert agree >= 0.98


def test_ort_static_calibration_matters(cnn):
    # calibrated on blank images, every activation range is ~0: the int8 model saturates and gets worse
    model, data, calibration, _ = cnn
    blank = lk.compress.ort_static(model, data, torch.zeros_like(calibration[:32]), name="blank")
    real = lk.compress.ort_static(model, data, calibration, method="percentile", name="real")
    assert blank.report.accuracy < real.report.accuracy - 0.2


def test_ort_dynamic_and_fp16(cnn, cnn_fp32):
    model, data, _, logits = cnn
    dyn = lk.compress.ort_dynamic(model, data)
    assert ops(dyn)["ConvInteger"] == 3 and ops(dyn)["MatMulInteger"] == 1
    assert dyn.report.size_bytes < cnn_fp32.report.size_bytes / 2.5
    assert dyn.report.accuracy >= cnn_fp32.report.accuracy - 0.01
    half = lk.compress.fp16(model, data)
    stored = initializer_bytes(half)
    assert stored["float16"] > 60_000 and stored["float32"] == 0
    assert 1.9 < cnn_fp32.report.size_bytes / half.report.size_bytes < 2.1
    assert torch.allclose(half.model(data[0]), logits, atol=0.05, rtol=0.01)
    table = lk.compress.compare([cnn_fp32, dyn, half])
    assert list(table.index) == ["fp32 (ONNX)", "int8 dynamic", "fp16"]


def test_mlp_dynamic_quantises_linears():
    model, _ = lk.zoo.load("mlp")
    data = lk.data.for_model("mlp")
    dyn = lk.compress.ort_dynamic(model, data, per_channel=True)
    assert ops(dyn)["MatMulInteger"] == 3 and dyn.report.accuracy >= 0.96


def test_ort_validation(cnn):
    model, data, calibration, _ = cnn
    with pytest.raises(ValueError, match=r"calibration must have shape \(N, 1, 32, 32\)"):
        lk.compress.ort_static(model, data, calibration[:, :, :16])
    with pytest.raises(ValueError, match="calibration must be a tensor"):
        lk.compress.ort_static(model, data, [1, 2])
    with pytest.raises(ValueError, match="Did you mean 'entropy'"):
        lk.compress.ort_static(model, data, calibration, method="entropi")
    with pytest.raises(ValueError, match="format"):
        lk.compress.ort_static(model, data, calibration, format="qd")
    with pytest.raises(ValueError, match="torch.nn.Module"):
        lk.compress.ort_fp32("cnn", data)
    with pytest.raises(ValueError, match="pair"):
        lk.compress.fp16(model, data[0])
    with pytest.raises(ValueError, match="name"):
        lk.compress.ort_dynamic(model, data, name="")


@pytest.mark.parametrize("method", ["minmax", "entropy"])
def test_mlp_static_per_tensor_methods(method):
    import onnx
    from onnx import numpy_helper

    model, _ = lk.zoo.load("mlp")
    data = lk.data.for_model("mlp")
    calibration = lk.data.for_model("mlp", "train")[0][:128]
    q = lk.compress.ort_static(model, data, calibration, per_channel=False, method=method)
    proto = onnx.load_from_string(q.model.model_bytes)
    weight_scales = [numpy_helper.to_array(i) for i in proto.graph.initializer if i.name.endswith("weight_scale")]
    assert len(weight_scales) == 3 and all(s.size == 1 for s in weight_scales)     # one scale per tensor
    assert q.report.accuracy >= 0.96
