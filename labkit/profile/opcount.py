"""How much work one op does: the single table of MAC and FLOP rules that every front end shares.

FLOPs of a layer = 2 per multiply-accumulate (MAC) + element-wise work from this table:

===============================  ==========================================================
op (canonical name)              FLOPs
===============================  ==========================================================
conv / linear / matmul / einsum  2 per MAC; the bias is folded into the accumulator (0 extra)
attention (SDPA)                 2 per MAC + 5 per score element (scale + softmax)
relu, add, sub, mul, div, max …  1 per output element (see FLOPS_PER_ELEMENT)
relu6 / hardtanh / clamp         2 per output element (two comparisons)
batchnorm (eval)                 2 per element (folded scale and shift)
layernorm / groupnorm            5 per element (mean, variance, normalise, scale, shift)
softmax                          5 per element (max, subtract, exp, sum, divide)
gelu                             8 per element (tanh approximation); silu 5, sigmoid 4, tanh 4
max/avg pooling                  kh*kw per output element
global/adaptive avg pool, mean   1 per input element (each input is read and summed once)
memory ops (reshape, flatten,    0 FLOPs; they still read and write their tensors (bytes)
  cat, view, transpose, …)
embedding                        0 FLOPs, op_class memory; weight_elems = the rows it gathers
===============================  ==========================================================

Ops not in the table count 1 FLOP per output element (class elementwise); front ends report them.
"""

from __future__ import annotations

import math

from labkit.profile.core import Layer

# FLOPs per output element of element-wise, normalisation and activation ops.
FLOPS_PER_ELEMENT: dict[str, int] = {
    "relu": 1, "add": 1, "sub": 1, "mul": 1, "div": 1, "neg": 1, "abs": 1, "max": 1, "min": 1,
    "pow": 1, "sqrt": 1, "rsqrt": 1, "exp": 1, "log": 1, "where": 1, "scale": 1, "square": 1,
    "relu6": 2, "hardtanh": 2, "clamp": 2, "leaky_relu": 2, "elu": 3, "softplus": 3,
    "sigmoid": 4, "tanh": 4, "erf": 4, "hardsigmoid": 3, "hardswish": 4, "silu": 5, "mish": 8,
    "gelu": 8,
    "batchnorm": 2, "layernorm": 5, "groupnorm": 5, "instancenorm": 5, "rmsnorm": 4,
    "softmax": 5, "log_softmax": 5,
}
# FLOPs per *input* element: reductions and adaptive/global average pooling.
FLOPS_PER_INPUT_ELEMENT: dict[str, int] = {
    "mean": 1, "sum": 1, "reduce_max": 1, "reduce_min": 1, "adaptive_avgpool": 1, "adaptive_maxpool": 1,
}
# Zero-FLOP ops that only move (or re-describe) data.
MEMORY_OPS = frozenset({
    "reshape", "view", "flatten", "unflatten", "cat", "stack", "transpose", "permute", "contiguous", "squeeze",
    "unsqueeze", "expand", "slice", "getitem", "split", "chunk", "pad", "cast", "identity", "dropout",
    "embedding", "gather", "broadcast", "copy", "concat", "tile", "repeat", "shape",
})
NORM_OPS = frozenset({"batchnorm", "layernorm", "groupnorm", "instancenorm", "rmsnorm"})
POOL_OPS = frozenset({"maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"})
MAC_OPS = frozenset({"conv", "conv_transpose", "linear", "matmul", "einsum", "attention", "mha",
                     "transformer_layer"})


def is_mac_op(op: str) -> bool:
    """True for ops whose work is multiply-accumulates (conv1d/2d/3d, conv_transpose*, linear, matmul, …)."""
    return op.startswith("conv") or op in MAC_OPS


def op_class(op: str, *, depthwise: bool = False) -> str:
    """The OP_CLASSES entry for a canonical op name ('conv2d' with depthwise=True -> 'dwconv')."""
    if op.startswith("conv"):
        return "dwconv" if depthwise else "conv"
    if op in ("attention", "mha", "transformer_layer"):
        return "attention"
    if op in MAC_OPS:
        return "matmul"
    if op in NORM_OPS:
        return "norm"
    if op in POOL_OPS:
        return "pool"
    if op in MEMORY_OPS:
        return "memory"
    return "elementwise"


def is_known(op: str) -> bool:
    """True when the table above has a rule for `op` (unknown ops fall back to 1 FLOP per element)."""
    return (op in FLOPS_PER_ELEMENT or op in FLOPS_PER_INPUT_ELEMENT or op in MEMORY_OPS
            or op in POOL_OPS or is_mac_op(op))


def elementwise_flops(op: str, input_elems: int, output_elems: int, kernel_elems: int = 1) -> int:
    """Non-MAC FLOPs of `op` by the table above (kernel_elems = kh*kw for pooling)."""
    if op in MEMORY_OPS or is_mac_op(op):
        return 0
    if op in ("maxpool", "avgpool"):
        return int(kernel_elems) * int(output_elems)
    if op in FLOPS_PER_INPUT_ELEMENT:
        return FLOPS_PER_INPUT_ELEMENT[op] * int(input_elems)
    return FLOPS_PER_ELEMENT.get(op, 1) * int(output_elems)


# ---- MAC rules: each returns (macs, gemm=(groups, M, K, N)) ----------------------------------------

def conv_macs(out_shape, weight_shape, groups: int) -> tuple[int, tuple[int, int, int, int]]:
    """Convolution, any number of spatial dims. out (N, C_out, *S_out), weight (C_out, C_in/groups, *k).

    M = N * prod(S_out), K = C_in/groups * prod(k), N = C_out/groups;  MACs = groups * M * K * N.
    """
    c_out = int(weight_shape[0])
    k = math.prod(int(d) for d in weight_shape[1:])
    m = math.prod(int(d) for d in out_shape) // max(c_out, 1)
    return m * k * c_out, (int(groups), m, k, c_out // int(groups))


def conv_transpose_macs(in_shape, weight_shape, groups: int) -> tuple[int, tuple[int, int, int, int]]:
    """Transposed convolution: every input element meets C_out/groups * prod(k) weights.
    in (N, C_in, *S_in), weight (C_in, C_out/groups, *k).  M = N*prod(S_in), K = C_in/groups, N = C_out/groups*prod(k).
    """
    c_in = int(in_shape[1])
    per_in = math.prod(int(d) for d in weight_shape[1:])
    m = math.prod(int(d) for d in in_shape) // max(c_in, 1)
    k = c_in // int(groups)
    return m * c_in * per_in, (int(groups), m, k, per_in)


def matmul_macs(a_shape, b_shape, out_shape) -> tuple[int, tuple[int, int, int, int]]:
    """Batched, broadcasting matmul (torch.matmul / ONNX MatMul semantics, 1-D operands included).

    MACs = numel(out) * K with K = a.shape[-1]; gemm groups = the broadcast batch.
    """
    k = int(a_shape[-1])
    n_rows = int(a_shape[-2]) if len(a_shape) >= 2 else 1
    n_cols = int(b_shape[-1]) if len(b_shape) >= 2 else 1
    out = math.prod(int(d) for d in out_shape)
    groups = out // max(n_rows * n_cols, 1)
    return out * k, (groups, n_rows, k, n_cols)


def linear_macs(in_shape, in_features: int, out_features: int) -> tuple[int, tuple[int, int, int, int]]:
    """y = x W^T + b with x (..., in): M = rows = prod(leading dims), K = in, N = out."""
    m = math.prod(int(d) for d in in_shape) // max(int(in_features), 1)
    return m * in_features * out_features, (1, m, int(in_features), int(out_features))


def attention_macs(q_shape, k_shape, v_shape) -> tuple[int, tuple[int, int, int, int], int]:
    """Scaled dot-product attention. q (..., L, E), k (..., S, E), v (..., S, Ev); '...' = batch, heads.

    MACs = B*L*S*E (Q K^T) + B*L*S*Ev (P V). Convention: gemm = (2*B, L, E, S) describes the two GEMMs
    per (batch, head) by the Q K^T shape; P V has K and N swapped and, when Ev == E, the same MACs, so
    groups*M*K*N == MACs. Returns (macs, gemm, score_elems) where score_elems = B*L*S (softmax work).
    """
    length, e = int(q_shape[-2]), int(q_shape[-1])
    s, ev = int(k_shape[-2]), int(v_shape[-1])
    b = math.prod(int(d) for d in q_shape[:-2])
    return b * length * s * (e + ev), (2 * b, length, e, s), b * length * s


def mha_macs(batch: int, q_len: int, kv_len: int, embed: int, kdim: int, vdim: int,
             ) -> tuple[int, tuple[int, int, int, int], int]:
    """nn.MultiheadAttention: Q, K, V projections + attention (all heads) + output projection.

    MACs = B*(L*E*E + S*kdim*E + S*vdim*E + 2*L*S*E + L*E*E). Convention: gemm = (1, B*L, E, N) with
    N = MACs / (B*L*E), one equivalent GEMM whose rows are the query tokens (exact for self-attention,
    where N = 4E + 2S; rounded for cross-attention with other kdim/vdim).
    Returns (macs, gemm, score_elems) with score_elems = B*L*S per head (the caller multiplies by heads).
    """
    macs = batch * (2 * q_len * embed * embed + kv_len * (kdim + vdim) * embed + 2 * q_len * kv_len * embed)
    rows = batch * q_len
    return macs, (1, rows, embed, max(round(macs / max(rows * embed, 1)), 1)), batch * q_len * kv_len


def einsum_macs(equation: str, shapes) -> int | None:
    """MACs of a two-operand einsum evaluated naively: the product of every index size. None if unknown."""
    eq = equation.replace(" ", "")
    if "..." in eq or "->" not in eq or len(shapes) != 2:
        return None
    ins = eq.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for letters, shape in zip(ins, shapes):
        if len(letters) != len(shape):
            return None
        sizes.update({c: int(d) for c, d in zip(letters, shape)})
    return math.prod(sizes.values())


def make_layer(name: str, op: str, inputs, *, macs: int = 0, extra_flops: int | None = None,
               params: int = 0, weight_elems: int = 0, input_elems: int = 0, output_elems: int = 0,
               output_shape=(), gemm=None, depthwise: bool = False, kernel_elems: int = 1,
               dtype: str = "fp32", cls: str | None = None, window=()) -> Layer:
    """Build a Layer with FLOPs = 2*macs + the table's element-wise work (or `extra_flops` if given)."""
    if extra_flops is None:
        extra_flops = elementwise_flops(op, input_elems, output_elems, kernel_elems)
    return Layer(
        name=name, op=op, op_class=cls or op_class(op, depthwise=depthwise), inputs=tuple(inputs),
        macs=int(macs), flops=int(2 * macs + extra_flops), params=int(params), weight_elems=int(weight_elems),
        input_elems=int(input_elems), output_elems=int(output_elems),
        output_shape=tuple(int(d) for d in output_shape), gemm=None if gemm is None else tuple(int(g) for g in gemm),
        dtype=dtype, window=tuple(int(w) for w in window),
    )
