"""lk.profile on JAX functions: jaxpr layers, XLA's cost analysis, and agreement with torch and ONNX."""

import warnings

import jax
import jax.numpy as jnp
import pytest
import torch
from jax import lax
from nets import SmallCNN

import labkit as lk
from labkit.profile.jax_fn import normalize_cost, xla_cost

DN = ("NCHW", "OIHW", "NCHW")


def small_cnn(params, x):
    """The same shapes as tests/nets.py SmallCNN: x (B, 3, 16, 16) -> (B, 10)."""
    (w1, b1), (w2, b2), (w3, b3) = params
    x = jax.nn.relu(lax.conv_general_dilated(x, w1, (1, 1), ((1, 1), (1, 1)), dimension_numbers=DN)
                    + b1[None, :, None, None])
    x = jax.nn.relu(lax.conv_general_dilated(x, w2, (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN)
                    + b2[None, :, None, None])
    return x.reshape(x.shape[0], -1) @ w3.T + b3


def cnn_params(key=0):
    k = jax.random.split(jax.random.PRNGKey(key), 3)
    return ((jax.random.normal(k[0], (8, 3, 3, 3)), jnp.zeros(8)),
            (jax.random.normal(k[1], (16, 8, 3, 3)), jnp.zeros(16)),
            (jax.random.normal(k[2], (10, 16 * 8 * 8)), jnp.zeros(10)))


def test_torch_onnx_and_jax_agree(tmp_path):
    x = torch.zeros(2, 3, 16, 16)
    model = SmallCNN().eval()
    pt = lk.profile(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "s.onnx"), dynamo=False)
    po = lk.profile(tmp_path / "s.onnx")
    pj = lk.profile(small_cnn, (cnn_params(), jnp.zeros((2, 3, 16, 16))))
    assert pj.source == "jax" and pj.batch == 2 and pj.name == "small_cnn"
    for p in (po, pj):
        assert p.macs == pytest.approx(pt.macs, rel=0.02)
        assert p.params == pt.params == 11_642
    convs = [lay for lay in pj.layers if lay.op_class == "conv"]
    assert [c.gemm for c in convs] == [lay.gemm for lay in pt.layers if lay.op_class == "conv"]


def test_jaxpr_layers_and_dag():
    p = lk.profile(small_cnn, (cnn_params(), jnp.zeros((1, 3, 16, 16))))
    first = p.layers[0]
    assert first.op == "conv2d" and first.inputs == ("input",) and first.params == 8 * 3 * 3 * 3
    relu = p.layer("relu")                                      # jax.nn.relu is one layer, not its max
    assert relu.inputs == ("add",) and relu.flops == relu.output_elems
    dense = p.layer("dot_general")
    assert dense.gemm == (1, 1, 1024, 10) and dense.macs == 1024 * 10
    assert dense.weight_elems == 10 * 1024                      # w3.T is weight preprocessing, not a layer
    assert "transpose" not in {lay.op for lay in p.layers}


def test_residual_branch_in_jax():
    def block(w, x):
        return x @ w + x                                        # matmul and skip both read x
    p = lk.profile(block, (jnp.ones((4, 4)), jnp.ones((3, 4))))
    assert p.layer("add").inputs == ("dot_general", "input")
    assert p.params == 16 and p.input_elems == 12


def test_normalize_cost_accepts_dict_and_list():
    assert normalize_cost({"flops": 4.0})["flops"] == 4.0
    assert normalize_cost([{"flops": 4.0, "bytes accessed": 8.0}]) == {"flops": 4.0, "bytes accessed": 8.0}
    assert normalize_cost(None) == {} and normalize_cost([]) == {}


def test_xla_cost_and_profile_flops():
    a, b = jnp.ones((16, 32)), jnp.ones((32, 8))
    p = lk.profile(lambda w, x: x @ w, (b, a))
    assert xla_cost(lambda w, x: x @ w, (b, a))["flops"] == p.flops == 2 * 16 * 32 * 8
    args = (cnn_params(), jnp.zeros((2, 3, 16, 16)))
    xla = xla_cost(small_cnn, args)["flops"]
    ours = lk.profile(small_cnn, args).flops
    assert 0.8 < xla / ours < 1.0                               # XLA skips the padded conv taps


def test_one_argument_function_has_no_params():
    p = lk.profile(jnp.tanh, jnp.ones((5, 3)))
    assert p.params == 0 and p.batch == 5 and p.flops == 4 * 15


def test_bad_inputs():
    with pytest.raises(ValueError, match="example"):
        lk.profile(small_cnn)
    with pytest.raises(ValueError, match="could not trace"):
        lk.profile(lambda x: float(x) + 1, (jnp.ones(3),))
