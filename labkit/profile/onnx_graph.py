"""The ONNX front end of ``lk.profile``: shape inference over the graph -> a Profile DAG.

Shapes come from ``onnx.shape_inference.infer_shapes(data_prop=True)`` after the graph inputs are fixed:
a symbolic batch dimension becomes `batch` (default 1) or the example's leading dimension. Shapes that
static inference cannot tell (a Slice whose bounds are computed from Shape) are measured by one
onnxruntime run on zeros.
Rules:
- params = elements of the floating-point initializers, except BatchNormalization's running mean and
  variance (buffers in torch, not parameters). A BN folded into a Conv by the exporter therefore has
  C fewer params than the torch module (the conv bias replaces BN's scale and shift).
- Tensors that do not depend on a graph input (initializers, Constant, Shape and what is computed from
  them) are weights or bookkeeping, not layers; each other node is a layer named node.name or
  ``<op_type>_<i>``. Its inputs are the layers producing its input tensors, or "input" for a graph input.
- MACs: Conv (groups), ConvTranspose, Gemm, MatMul (batched), Einsum (two operands), and the ORT fused
  forms FusedConv / FusedGemm / FusedMatMul; attention appears as MatMul + Softmax.
"""

from __future__ import annotations

import math
import os
import warnings

import onnx
from onnx import shape_inference

from labkit.profile import opcount
from labkit.profile.core import Profile

# ONNX op_type -> canonical op name of opcount's table (MAC ops handled in _work)
_OPS = {
    "Relu": "relu", "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Neg": "neg", "Abs": "abs",
    "Max": "max", "Min": "min", "Pow": "pow", "Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Where": "where",
    "Clip": "clamp", "LeakyRelu": "leaky_relu", "Elu": "elu", "Softplus": "softplus", "Sigmoid": "sigmoid",
    "Tanh": "tanh", "Erf": "erf", "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish", "Mish": "mish",
    "Gelu": "gelu", "FastGelu": "gelu", "BiasGelu": "gelu", "QuickGelu": "gelu",
    "BatchNormalization": "batchnorm", "LayerNormalization": "layernorm", "SkipLayerNormalization": "layernorm",
    "GroupNormalization": "groupnorm", "InstanceNormalization": "instancenorm",
    "SimplifiedLayerNormalization": "rmsnorm", "RMSNormalization": "rmsnorm",
    "Softmax": "softmax", "LogSoftmax": "log_softmax",
    "MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "adaptive_avgpool",
    "GlobalMaxPool": "adaptive_maxpool", "ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "reduce_max",
    "Reshape": "reshape", "Flatten": "flatten", "Concat": "cat", "Transpose": "transpose", "Squeeze": "squeeze",
    "Unsqueeze": "unsqueeze", "Expand": "expand", "Slice": "slice", "Split": "split", "Pad": "pad",
    "Cast": "cast", "Identity": "identity", "Dropout": "dropout", "Gather": "gather", "Tile": "tile",
    "Conv": "conv2d", "FusedConv": "conv2d", "ConvTranspose": "conv_transpose2d",
    "Gemm": "linear", "FusedGemm": "linear", "MatMul": "matmul", "FusedMatMul": "matmul", "Einsum": "einsum",
}
_BOOKKEEPING = {"Constant", "Shape", "Size", "ConstantOfShape"}
_FLOAT = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}


def _load(model) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    path = os.fspath(model)
    if not os.path.exists(path):
        raise ValueError(f"no ONNX file at {path!r}; pass a path to an existing .onnx file or an onnx.ModelProto.")
    return onnx.load(path)


def _example_shapes(example) -> list[tuple[int, ...]] | None:
    """Shapes of the example tensors (numpy arrays, torch tensors, …), or None without an example."""
    if example is None:
        return None
    items = list(example.values()) if isinstance(example, dict) else \
        list(example) if isinstance(example, (tuple, list)) else [example]
    shapes = []
    for item in items:
        if not hasattr(item, "shape"):
            raise ValueError(f"an ONNX example must be arrays or tensors (or a tuple/dict of them), "
                             f"got {type(item).__name__}.")
        shapes.append(tuple(int(d) for d in item.shape))
    return shapes


def _fix_inputs(model: onnx.ModelProto, shapes, batch: int | None) -> tuple[onnx.ModelProto, int]:
    """A copy of `model` whose graph inputs have concrete shapes; returns it and the batch size."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    inits = {i.name for i in fixed.graph.initializer}
    inputs = [i for i in fixed.graph.input if i.name not in inits]
    if shapes is not None and len(shapes) != len(inputs):
        raise ValueError(f"the model has {len(inputs)} input(s) {[i.name for i in inputs]}, "
                         f"the example gives {len(shapes)}.")
    lead = None
    for k, inp in enumerate(inputs):
        dims = inp.type.tensor_type.shape.dim
        for j, dim in enumerate(dims):
            if shapes is not None:
                size = shapes[k][j]
            elif dim.HasField("dim_value"):
                size = dim.dim_value
            elif j == 0:
                size = batch or 1
            else:
                raise ValueError(f"input {inp.name!r} has a symbolic dimension {j} ({dim.dim_param!r}) besides the "
                                 "batch; pass an example so labkit knows its size.")
            dim.Clear()
            dim.dim_value = int(size)
        if lead is None and len(dims):
            lead = int(dims[0].dim_value)
    if shapes is not None and batch is not None and lead != batch:
        raise ValueError(f"batch={batch} disagrees with the example's leading dimension {lead}.")
    return fixed, int(lead or 1)


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...] | None]:
    """Tensor name -> shape (None where shape inference could not tell)."""
    out: dict[str, tuple[int, ...] | None] = {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        known = vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims)
        out[vi.name] = tuple(int(d.dim_value) for d in dims) if known else out.get(vi.name)
    for init in g.initializer:
        out[init.name] = tuple(int(d) for d in init.dims)
    return out


def _run_shapes(model: onnx.ModelProto, missing: list[str]) -> dict[str, tuple[int, ...]]:
    """Shapes that static inference could not tell, measured by running the fixed model once on zeros in
    onnxruntime with those tensors exposed as outputs (e.g. a Slice whose bounds come from Shape + Div)."""
    import numpy as np
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.value_info[:]
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in missing)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        elem = next(v.type.tensor_type.elem_type for v in model.graph.input if v.name == i.name)
        feeds[i.name] = np.zeros(i.shape, dtype=onnx.helper.tensor_dtype_to_np_dtype(elem))
    outs = sess.run(missing, feeds)
    return {t: tuple(int(d) for d in np.shape(v)) for t, v in zip(missing, outs)}


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _work(node, op, shape, in_names):
    """(macs, gemm, extra_flops or None, depthwise, kernel_elems) of one node from its tensor shapes."""
    x = shape(in_names[0]) if in_names else None
    out = shape(node.output[0])
    if node.op_type in ("Conv", "FusedConv"):
        w, groups = shape(in_names[1]), int(_attr(node, "group", 1))
        macs, gemm = opcount.conv_macs(out, w, groups)
        return macs, gemm, None, groups == x[1] > 1, 1
    if node.op_type == "ConvTranspose":
        w, groups = shape(in_names[1]), int(_attr(node, "group", 1))
        macs, gemm = opcount.conv_transpose_macs(x, w, groups)
        return macs, gemm, None, groups == x[1] > 1, 1
    if node.op_type in ("Gemm", "FusedGemm"):
        a, b = shape(in_names[0]), shape(in_names[1])
        m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
        n = b[0] if _attr(node, "transB", 0) else b[1]
        return m * k * n, (1, m, k, n), None, False, 1
    if node.op_type in ("MatMul", "FusedMatMul"):
        macs, gemm = opcount.matmul_macs(shape(in_names[0]), shape(in_names[1]), out)
        return macs, gemm, None, False, 1
    if node.op_type == "Einsum":
        macs = opcount.einsum_macs(_attr(node, "equation").decode(), [shape(n) for n in in_names])
        return (macs or 0), None, (None if macs is not None else math.prod(out)), False, 1
    if op in ("maxpool", "avgpool"):
        return 0, None, None, False, math.prod(_attr(node, "kernel_shape", [1]))
    return 0, None, None, False, 1


def _weight_names(g) -> set[str]:
    """Initializers that are weights: floating point, minus BatchNormalization running mean/var."""
    stats = {n.input[i] for n in g.node if n.op_type == "BatchNormalization" for i in (3, 4) if i < len(n.input)}
    return {i.name for i in g.initializer if i.data_type in _FLOAT and i.name not in stats}


def profile_onnx(model, example=None, *, dtype: str = "fp32", name: str | None = None,
                 batch: int | None = None) -> Profile:
    """Profile an ONNX model (path or ModelProto). See lk.profile."""
    proto = _load(model)
    default_name = os.path.splitext(os.path.basename(os.fspath(model)))[0] if not isinstance(
        model, onnx.ModelProto) else (proto.graph.name or "onnx-model")
    fixed, batch = _fix_inputs(proto, _example_shapes(example), batch)
    inferred = shape_inference.infer_shapes(fixed, data_prop=True)
    shapes = _shapes(inferred)
    g = inferred.graph
    missing = [t for n in g.node if n.op_type not in _BOOKKEEPING for t in n.output if t and shapes.get(t) is None]
    if missing:
        try:
            shapes.update(_run_shapes(fixed, missing))
        except Exception as err:  # noqa: BLE001 - keep the static shapes; the warning below names the gaps
            warnings.warn(f"could not measure {len(missing)} shape(s) with onnxruntime: {err}", stacklevel=2)
    inits = {i.name: i for i in g.initializer}
    weights = _weight_names(g)
    graph_inputs = [i.name for i in g.input if i.name not in inits]
    producer: dict[str, tuple[str, ...]] = {n: ("input",) for n in graph_inputs}   # dynamic tensor -> layer
    def shape(t):
        s = shapes.get(t)
        if s is None and t in inits:
            s = tuple(inits[t].dims)
        return s

    def size(t):
        s = shape(t)
        return math.prod(s) if s is not None else 0

    layers, unknown, unshaped, used, counted = [], [], [], set(), set()
    for i, node in enumerate(g.node):
        ins = [t for t in node.input if t]
        dyn = [t for t in ins if t in producer]
        if node.op_type in _BOOKKEEPING or not dyn:      # constants, shapes and weight preprocessing
            continue
        lname = node.name or f"{node.op_type}_{i}"
        while lname in used:
            lname += "_"
        used.add(lname)
        op = _OPS.get(node.op_type, node.op_type.lower())
        outs = [t for t in node.output if t]
        if any(shape(t) is None for t in dyn + outs[:1]):
            unshaped.append(lname)
            macs, gemm, extra, dw, kern = 0, None, None, False, 1
        else:
            try:
                macs, gemm, extra, dw, kern = _work(node, op, shape, ins)
            except (TypeError, IndexError, ValueError):   # a weight whose shape inference left unknown
                unshaped.append(lname)
                macs, gemm, extra, dw, kern = 0, None, None, False, 1
        if node.op_type in ("FusedConv", "FusedGemm") and _attr(node, "activation"):
            act = _OPS.get(_attr(node, "activation").decode(), "relu")
            extra = opcount.FLOPS_PER_ELEMENT.get(act, 1) * size(outs[0])
        if not (node.op_type in _OPS or opcount.is_known(op)):
            unknown.append(f"{lname} ({node.op_type})")
        const_in = [t for t in ins if t not in producer]
        w_elems = sum(size(t) for t in const_in if t in weights or (t not in inits and t not in graph_inputs))
        params = sum(size(t) for t in const_in if t in weights and t not in counted)
        counted.update(const_in)
        o_elems = sum(size(t) for t in outs)
        if op == "gather" and ins and ins[0] not in producer:   # embedding lookup: rows gathered only
            op, w_elems = "embedding", min(w_elems, o_elems)
        layers.append(opcount.make_layer(
            lname, op, dict.fromkeys(p for t in dyn for p in producer[t]), macs=macs, extra_flops=extra,
            params=params, weight_elems=w_elems, input_elems=sum(size(t) for t in dyn), output_elems=o_elems,
            output_shape=shape(outs[0]) or (), gemm=gemm, depthwise=dw, kernel_elems=kern, dtype=dtype))
        for t in outs:
            producer[t] = (lname,)
    if unknown:
        warnings.warn(f"labkit has no rule for {len(unknown)} ONNX node(s), counted as element-wise with 0 MACs: "
                      f"{', '.join(unknown[:8])}{' …' if len(unknown) > 8 else ''}", stacklevel=3)
    if unshaped:
        warnings.warn(f"shape inference left {len(unshaped)} node(s) without shapes, counted with 0 work: "
                      f"{', '.join(unshaped[:8])}{' …' if len(unshaped) > 8 else ''}", stacklevel=3)
    return Profile(
        name=name or default_name, source="onnx", batch=batch, dtype=dtype, layers=tuple(layers),
        params=sum(math.prod(inits[n].dims) for n in weights), input_elems=sum(size(t) for t in graph_inputs),
        output_elems=sum(size(o.name) for o in g.output),
    )
