"""lk.profile on torch modules, checked against torch's own FLOP counter, parameter counts and papers."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from nets import DataDependent, EncoderBlock, MobileNetV2, ResNet18, TwoBranch, mlp_chain
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import labkit as lk


def counter_macs(model, *args) -> int:
    """torch's FlopCounterMode counts 2 FLOPs per MAC of conv/linear/matmul."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args)
    return counter.get_total_flops() // 2


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model, x = ResNet18(), torch.randn(1, 3, 224, 224)
    return model, x, lk.profile(model, x)


@pytest.fixture(scope="module")
def mobilenet():
    model, x = MobileNetV2(), torch.randn(1, 3, 224, 224)
    return model, x, lk.profile(model, x)


def test_resnet18_matches_counter_and_paper(resnet):
    model, x, p = resnet
    assert p.params == sum(q.numel() for q in model.parameters()) == 11_689_512
    assert p.macs == pytest.approx(counter_macs(model, x), rel=0.01)
    assert p.macs == pytest.approx(1.82e9, rel=0.03)
    assert sum(lay.params for lay in p.layers) == p.params       # each weight attributed to one layer
    assert p.batch == 1 and p.source == "torch"


def test_mobilenetv2_matches_counter_and_paper(mobilenet):
    model, x, p = mobilenet
    assert p.params == sum(q.numel() for q in model.parameters()) == 3_504_872
    assert p.macs == pytest.approx(counter_macs(model, x), rel=0.01)
    assert p.macs == pytest.approx(300e6, rel=0.03)
    dw = [lay for lay in p.layers if lay.op_class == "dwconv"]
    assert len(dw) == 17                                           # one 3x3 depthwise conv per block
    for lay in dw:                                                 # groups == channels, K = 1 * 3 * 3, N = 1
        assert lay.gemm[0] == lay.output_shape[1] and lay.gemm[2:] == (9, 1)


def test_flops_follow_the_table(resnet):
    _, _, p = resnet
    conv1, bn1, relu, pool = (p.layer(n) for n in ("conv1", "bn1", "relu", "maxpool"))
    assert conv1.flops == 2 * conv1.macs
    assert bn1.flops == 2 * bn1.output_elems and relu.flops == relu.output_elems
    assert pool.flops == 9 * pool.output_elems                     # 3x3 max pool
    assert p.layer("flatten").op_class == "memory" and p.layer("flatten").flops == 0
    c = p.layer("layer1.0.conv1")                                  # M = N*H*W, K = Cin*3*3, N = Cout
    assert c.gemm == (1, 56 * 56, 64 * 9, 64) and c.macs == 56 * 56 * 64 * 9 * 64


def test_dag_residual_and_first_layer(resnet):
    _, _, p = resnet
    assert p.layers[0].name == "conv1" and p.layers[0].inputs == ("input",)
    add = p.layer("add")                                           # first block: bn2 + identity (maxpool)
    assert set(add.inputs) == {"layer1.0.bn2", "maxpool"}
    assert p.layer("layer2.0.downsample.0").inputs == ("layer1.1.relu:1",)   # nn.ReLU reused: second call
    names = {lay.name for lay in p.layers}
    assert all(i in names or i == "input" for lay in p.layers for i in lay.inputs)
    assert len(names) == len(p.layers)


def test_dag_two_branches():
    p = lk.profile(TwoBranch(), torch.zeros(1, 3, 8, 8))
    assert p.layer("left").inputs == ("stem",) and p.layer("right").inputs == ("stem",)
    assert p.layer("cat").inputs == ("left", "right") and p.layer("cat").op_class == "memory"


def test_sdpa_block_attention_macs():
    b, length, e, heads, ffn = 2, 10, 64, 4, 128
    p = lk.profile(EncoderBlock(e, heads, ffn), torch.randn(b, length, e))
    attn = p.layer("scaled_dot_product_attention")
    hd = e // heads
    assert attn.op_class == "attention"
    assert attn.macs == b * heads * (length * length * hd + length * length * hd)   # QK^T and PV
    linears = b * length * (e * 3 * e + e * e + e * ffn + ffn * e)
    assert p.macs == linears + attn.macs
    assert p.layer("add").inputs == ("input", "proj")              # residual around attention


def test_multihead_attention_leaf_macs():
    b, length, e, heads = 3, 7, 32, 4
    mha = nn.MultiheadAttention(e, heads, batch_first=True)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, x):
            return self.attn(x, x, x)[0] + x

    p = lk.profile(Block(), torch.randn(b, length, e))
    lay = p.layer("attn")
    # Q, K, V and output projections (4 * L * E * E) + scores and weighted sum (2 * L * L * E), per batch
    assert lay.macs == b * (4 * length * e * e + 2 * length * length * e)
    assert lay.op_class == "attention" and lay.params == 4 * e * e + 4 * e
    assert p.layer("add").inputs == ("attn", "input")              # getitem of the tuple is bookkeeping


def test_transformer_encoder_layer_root():
    b, length, e, heads, ffn = 2, 6, 32, 4, 64
    layer = nn.TransformerEncoderLayer(e, heads, ffn, batch_first=True)
    p = lk.profile(layer, torch.randn(b, length, e))
    assert len(p.layers) == 1 and p.params == sum(q.numel() for q in layer.parameters())
    assert p.macs == b * (4 * length * e * e + 2 * length * length * e + 2 * length * e * ffn)
    assert layer.training                                          # the training flag is restored


def test_training_flags_restored():
    model = ResNet18(num_classes=10, width=8)
    model.train()
    model.layer1.eval()                                            # a mixed state stays mixed
    lk.profile(model, torch.randn(1, 3, 32, 32))
    assert model.training and not model.layer1.training and model.layer2.training


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 4), fin=st.integers(1, 64), fout=st.integers(1, 64))
def test_linear_macs_hypothesis(batch, fin, fout):
    layer = nn.Linear(fin, fout)
    x = torch.randn(batch, fin)
    p = lk.profile(layer, x)
    assert p.macs == batch * fin * fout == counter_macs(layer, x)
    assert p.params == fin * fout + fout


@settings(max_examples=20, deadline=None)
@given(c_in=st.integers(1, 8), c_mult=st.integers(1, 3), k=st.integers(1, 4), stride=st.integers(1, 3),
       pad=st.integers(0, 2), size=st.integers(5, 12), depthwise=st.booleans())
def test_conv2d_macs_hypothesis(c_in, c_mult, k, stride, pad, size, depthwise):
    groups = c_in if depthwise else 1
    c_out = c_in * c_mult
    conv = nn.Conv2d(c_in, c_out, k, stride, pad, groups=groups)
    x = torch.randn(2, c_in, size, size)
    p = lk.profile(conv, x)
    h_out = (size + 2 * pad - k) // stride + 1
    assert p.macs == 2 * h_out * h_out * c_out * (c_in // groups) * k * k == counter_macs(conv, x)
    assert p.layers[0].op_class == ("dwconv" if depthwise and c_in > 1 else "conv")


def test_functional_parameters_and_bookkeeping():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 4))

        def forward(self, x):
            y = F.linear(x, self.w)                                # get_attr weight, not a layer
            return y.view(x.size(0), -1).relu()                    # size() is not a data edge

    p = lk.profile(Functional(), torch.randn(5, 4))
    assert [lay.name for lay in p.layers] == ["linear", "view", "relu"]
    assert p.layer("linear").params == 24 and p.layer("linear").weight_elems == 24
    assert p.layer("view").inputs == ("linear",) and p.macs == 5 * 4 * 6


def test_fallback_to_chain_with_warning():
    model = DataDependent()
    with pytest.warns(UserWarning, match="chain"):
        p = lk.profile(model, torch.randn(3, 8))
    assert [lay.name for lay in p.layers] == ["a", "b"]
    assert p.layers[1].inputs == ("a",) and p.params == 8 * 8 + 8 + 8 * 4 + 4
    assert p.macs == 3 * 8 * 8 + 3 * 8 * 4


def test_long_chain():
    p = lk.profile(mlp_chain(500, 16), torch.randn(4, 16))        # 1,000 layers
    assert len(p.layers) == 1000 and p.macs == 500 * 4 * 16 * 16
    assert p.layers[-1].inputs == (p.layers[-2].name,)


def test_with_dtype_and_frame(mobilenet):
    _, _, p = mobilenet
    q = p.with_dtype("int8")
    assert q.weight_bytes * 4 == p.weight_bytes and q.input_bytes * 4 == p.input_bytes
    assert all(a.bytes == 4 * b.bytes for a, b in zip(p.layers, q.layers))
    frame = p.to_frame()
    assert len(frame) == len(p.layers) and frame["macs"].sum() == p.macs


def test_import_order_keeps_lk_profile_callable():
    import labkit.profile.core  # noqa: F401  (binds lk.profile to the package: it must still be callable)

    assert lk.profile(nn.Linear(8, 4), torch.zeros(1, 8)).macs == 32


def test_bad_inputs():
    with pytest.raises(ValueError, match="accepts"):
        lk.profile(42)
    with pytest.raises(ValueError, match="example"):
        lk.profile(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="dtype"):
        lk.profile(nn.Linear(2, 2), torch.zeros(1, 2), dtype="fp33")
    with pytest.raises(ValueError, match="batch"):
        lk.profile(nn.Linear(2, 2), torch.zeros(1, 2), batch=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                             # a known model raises no warning
        lk.profile(TwoBranch(), torch.zeros(1, 3, 8, 8))
