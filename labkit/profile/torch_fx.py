"""The torch front end of ``lk.profile``: torch.fx graph + shape propagation -> a Profile DAG.

How it works: a custom fx Tracer keeps standard torch.nn modules as leaves (MultiheadAttention and the
Transformer encoder layers included, with analytic MACs), ShapeProp runs the example through the graph in
eval mode under no_grad, and each leaf module or tensor function becomes one Layer. Bookkeeping nodes
(get_attr, size, getitem of a tuple) are not layers: their consumers are routed to the real producer.
MACs come from shapes with labkit's own formulas (labkit/profile/opcount.py), never from torch's counter.
If fx cannot trace the model (data-dependent control flow), forward hooks on leaf modules record the
execution order instead and the graph is approximated as a chain (with a warning).
"""

from __future__ import annotations

import math
import operator
import warnings

import torch
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from labkit.profile import opcount
from labkit.profile.core import Layer, Profile

# Modules profiled as one layer with analytic MACs (their forward has control flow fx cannot trace).
_ATTENTION_LEAVES = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerEncoder)

# torch.nn module type -> canonical op name (see opcount's table); conv/linear/attention handled apart.
_MODULE_OPS = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Hardtanh: "hardtanh", nn.LeakyReLU: "leaky_relu", nn.GELU: "gelu",
    nn.SiLU: "silu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardswish: "hardswish", nn.ELU: "elu",
    nn.Hardsigmoid: "hardsigmoid", nn.Mish: "mish", nn.Softplus: "softplus", nn.Softmax: "softmax",
    nn.LogSoftmax: "log_softmax", nn.LayerNorm: "layernorm", nn.GroupNorm: "groupnorm",
    nn.modules.batchnorm._BatchNorm: "batchnorm", nn.modules.instancenorm._InstanceNorm: "instancenorm",
    nn.Flatten: "flatten", nn.Unflatten: "reshape", nn.Identity: "identity",
    nn.modules.dropout._DropoutNd: "dropout", nn.Embedding: "embedding",
    nn.AdaptiveAvgPool1d: "adaptive_avgpool", nn.AdaptiveAvgPool2d: "adaptive_avgpool",
    nn.AdaptiveAvgPool3d: "adaptive_avgpool", nn.AdaptiveMaxPool2d: "adaptive_maxpool",
}
if hasattr(nn, "RMSNorm"):
    _MODULE_OPS[nn.RMSNorm] = "rmsnorm"

# function / method name -> canonical op name (names not listed keep their own name)
_FUNC_ALIASES = {
    "iadd": "add", "isub": "sub", "imul": "mul", "truediv": "div", "itruediv": "div", "floordiv": "div",
    "mm": "matmul", "bmm": "matmul", "addmm": "matmul", "baddbmm": "matmul", "scaled_dot_product_attention":
    "attention", "layer_norm": "layernorm", "batch_norm": "batchnorm", "group_norm": "groupnorm",
    "rms_norm": "rmsnorm", "max_pool1d": "maxpool", "max_pool2d": "maxpool", "max_pool3d": "maxpool",
    "avg_pool1d": "avgpool", "avg_pool2d": "avgpool", "avg_pool3d": "avgpool",
    "adaptive_avg_pool1d": "adaptive_avgpool", "adaptive_avg_pool2d": "adaptive_avgpool",
    "t": "transpose", "swapaxes": "transpose", "to": "cast", "float": "cast", "half": "cast", "type_as": "cast",
    "clone": "copy", "masked_fill": "where", "hardtanh": "hardtanh", "maximum": "max", "minimum": "min",
    "sum": "sum", "amax": "reduce_max", "narrow": "slice", "concatenate": "cat", "flatten": "flatten",
    "sigmoid": "sigmoid", "logistic": "sigmoid", "dropout": "dropout", "pad": "pad",
}


def _tensor_metas(meta) -> list[TensorMetadata]:
    """Every TensorMetadata in a node's (possibly nested) tensor_meta."""
    if isinstance(meta, TensorMetadata):
        return [meta]
    if isinstance(meta, (list, tuple)):
        return [t for m in meta for t in _tensor_metas(m)]
    if isinstance(meta, dict):
        return [t for m in meta.values() for t in _tensor_metas(m)]
    return []


def _numel(shape) -> int:
    return math.prod(int(d) for d in shape)


class _Tracer(torch.fx.Tracer):
    """Standard torch.nn modules (and the attention blocks) are leaves; user modules are traced through."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _ATTENTION_LEAVES) or super().is_leaf_module(m, qualname)


def _is_leaf(m: nn.Module) -> bool:
    return _Tracer().is_leaf_module(m, "") or not any(True for _ in m.children())


def _encoder_layer_work(layer: nn.TransformerEncoderLayer, b: int, length: int) -> tuple[int, int]:
    """(MACs, non-MAC FLOPs) of one encoder layer on (b, length, E): attention + FFN + 2 norms + 2 adds."""
    attn, e = layer.self_attn, layer.self_attn.embed_dim
    f = layer.linear1.out_features
    macs, _, scores = opcount.mha_macs(b, length, length, e, e, e)
    macs += 2 * b * length * e * f                               # linear1 (E->F) and linear2 (F->E)
    act = "gelu" if getattr(layer, "activation_relu_or_gelu", 1) == 2 else "relu"
    extra = (5 * scores * attn.num_heads                          # scale + softmax per score
             + 2 * opcount.FLOPS_PER_ELEMENT["layernorm"] * b * length * e
             + 2 * b * length * e                                 # two residual adds
             + opcount.FLOPS_PER_ELEMENT[act] * b * length * f)
    return macs, extra


def _module_work(mod: nn.Module, in_shapes: list[tuple], out_shape: tuple, out_elems: int, in_elems: int):
    """(op, macs, gemm, extra_flops or None, depthwise, kernel_elems, known) for one leaf module call."""
    x = in_shapes[0] if in_shapes else out_shape
    if isinstance(mod, nn.modules.conv._ConvNd):
        nd = len(mod.kernel_size)
        dw = mod.groups == mod.in_channels > 1
        if mod.transposed:
            macs, gemm = opcount.conv_transpose_macs(x, mod.weight.shape, mod.groups)
            return f"conv_transpose{nd}d", macs, gemm, None, dw, 1, True
        macs, gemm = opcount.conv_macs(out_shape, mod.weight.shape, mod.groups)
        return f"conv{nd}d", macs, gemm, None, dw, 1, True
    if isinstance(mod, nn.Linear):
        macs, gemm = opcount.linear_macs(x, mod.in_features, mod.out_features)
        return "linear", macs, gemm, None, False, 1, True
    if isinstance(mod, nn.MultiheadAttention):
        q, k = in_shapes[0], in_shapes[1] if len(in_shapes) > 1 else in_shapes[0]
        seq_dim = 1 if (mod.batch_first or len(q) == 2) else 0   # (B, L, E), (L, B, E) or unbatched (L, E)
        b = 1 if len(q) == 2 else q[1 - seq_dim]
        macs, gemm, scores = opcount.mha_macs(b, q[seq_dim], k[seq_dim], mod.embed_dim, mod.kdim, mod.vdim)
        return "mha", macs, gemm, 5 * scores * mod.num_heads, False, 1, True
    if isinstance(mod, (nn.TransformerEncoderLayer, nn.TransformerEncoder)):
        layers = [mod] if isinstance(mod, nn.TransformerEncoderLayer) else list(mod.layers)
        first = layers[0]
        seq_dim = 1 if (first.self_attn.batch_first or len(x) == 2) else 0
        b, length = (1 if len(x) == 2 else x[1 - seq_dim]), x[seq_dim]
        work = [_encoder_layer_work(lay, b, length) for lay in layers]
        macs = sum(w[0] for w in work)
        extra = sum(w[1] for w in work)
        if isinstance(mod, nn.TransformerEncoder) and mod.norm is not None:
            extra += opcount.FLOPS_PER_ELEMENT["layernorm"] * out_elems
        e = first.self_attn.embed_dim
        gemm = (1, b * length, e, max(round(macs / max(b * length * e, 1)), 1))
        return "transformer_layer", macs, gemm, extra, False, 1, True
    if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        ks = mod.kernel_size
        k = _numel(ks) if isinstance(ks, (tuple, list)) else int(ks) ** (len(out_shape) - 2)
        return ("maxpool" if "Max" in type(mod).__name__ else "avgpool"), 0, None, None, False, k, True
    for cls, op in _MODULE_OPS.items():
        if isinstance(mod, cls):
            return op, 0, None, None, False, 1, True
    has_weights = any(True for _ in mod.parameters())
    return type(mod).__name__.lower(), 0, None, None, False, 1, not has_weights


def _window(kernel, stride, dilation) -> tuple[int, ...]:
    """Layer.window of a 1-D or 2-D convolution: (kernel h, kernel w, largest stride, largest dilation)."""
    kernel, stride, dilation = (tuple(v) if isinstance(v, (tuple, list)) else (v,) for v in (kernel, stride, dilation))
    if len(kernel) not in (1, 2):
        return ()
    return tuple(int(k) for k in (1,) * (2 - len(kernel)) + kernel) + (int(max(stride)), int(max(dilation)))


def _conv_window(mod: nn.Module) -> tuple[int, ...]:
    """Layer.window of a conv module (not transposed), () for any other module."""
    if not isinstance(mod, nn.modules.conv._ConvNd) or mod.transposed:
        return ()
    return _window(mod.kernel_size, mod.stride, mod.dilation)


def _func_window(op: str, node: torch.fx.Node, shape_of) -> tuple[int, ...]:
    """Layer.window of F.conv1d/conv2d(input, weight, bias, stride, padding, dilation, groups), () otherwise."""
    if op not in ("conv1d", "conv2d"):
        return ()
    args, kw = list(node.args) + [None] * 6, node.kwargs
    weight, stride, dilation = args[1] or kw["weight"], args[3] or kw.get("stride", 1), args[5] or kw.get("dilation", 1)
    return _window(shape_of(weight)[2:], stride, dilation)


def _module_weights(mod: nn.Module, op: str, out_elems: int) -> int:
    """Weight elements a module call reads: parameters + floating buffers (BN running stats)."""
    n = sum(p.numel() for p in mod.parameters()) + sum(b.numel() for b in mod.buffers() if b.is_floating_point())
    return min(n, out_elems) if op == "embedding" else n      # an embedding reads only the rows it gathers


def _raw_name(node: torch.fx.Node) -> str:
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    return name.strip("_")                                    # relu_ (in place) -> relu, __add__ -> add


def _func_op(node: torch.fx.Node) -> str:
    name = _raw_name(node)
    return _FUNC_ALIASES.get(name, name)


def _func_work(op: str, node: torch.fx.Node, shape_of, out_shape: tuple):
    """(macs, gemm, extra_flops or None, depthwise, kernel_elems) for a function or method node."""
    args, kw = list(node.args), node.kwargs
    if op == "linear":
        w = shape_of(args[1] if len(args) > 1 else kw["weight"])
        macs, gemm = opcount.linear_macs(shape_of(args[0]), w[1], w[0])
        return macs, gemm, None, False, 1
    if op in ("conv1d", "conv2d", "conv3d"):
        x, w = shape_of(args[0]), shape_of(args[1] if len(args) > 1 else kw["weight"])
        groups = int(kw.get("groups", args[6] if len(args) > 6 else 1))
        macs, gemm = opcount.conv_macs(out_shape, w, groups)
        return macs, gemm, None, groups == x[1] > 1, 1
    if op == "matmul":
        a, b = (args[1], args[2]) if _raw_name(node) in ("addmm", "baddbmm") else (args[0], args[1])
        macs, gemm = opcount.matmul_macs(shape_of(a), shape_of(b), out_shape)
        return macs, gemm, None, False, 1
    if op == "attention":
        q, k, v = [args[i] if i < len(args) else kw[n] for i, n in enumerate(("query", "key", "value"))]
        macs, gemm, scores = opcount.attention_macs(shape_of(q), shape_of(k), shape_of(v))
        return macs, gemm, 5 * scores, False, 1
    if op == "einsum":
        operands = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
        macs = opcount.einsum_macs(args[0], [shape_of(o) for o in operands])
        return (macs or 0), None, (None if macs is not None else _numel(out_shape)), False, 1
    if op in ("maxpool", "avgpool"):
        ks = args[1] if len(args) > 1 else kw["kernel_size"]
        k = _numel(ks) if isinstance(ks, (tuple, list)) else int(ks) ** (len(out_shape) - 2)
        return 0, None, None, False, k
    return 0, None, None, False, 1


def _fx_layers(model: nn.Module, args: tuple, dtype: str):
    """Trace with fx, propagate shapes and build (layers, output_elems, unknown op names)."""
    tracer = _Tracer()
    graph = tracer.trace(model)
    gm = torch.fx.GraphModule(tracer.root, graph)
    ShapeProp(gm).propagate(*args)
    modules = dict(model.named_modules())
    param_names = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    route: dict[torch.fx.Node, tuple[str, ...]] = {}   # node -> producing layer names (or "input")
    dynamic: set[torch.fx.Node] = set()                 # nodes whose value depends on a model input
    weight_elems: dict[torch.fx.Node, int] = {}         # constant tensors (params, buffers, derived)
    counted: set[str] = set()                           # parameters already attributed to a layer
    calls: dict[str, int] = {}
    layers: list[Layer] = []
    unknown: list[str] = []
    out_elems = 0

    def metas(n):
        return _tensor_metas(n.meta.get("tensor_meta")) if isinstance(n, torch.fx.Node) else []

    def shape_of(n):
        m = metas(n)
        return tuple(m[0].shape) if m else ()

    for node in graph.nodes:
        ins = node.all_input_nodes
        if node.op == "placeholder":
            route[node], _ = ("input",), dynamic.add(node)
            continue
        if node.op == "output":
            out_elems = sum(_numel(m.shape) for a in ins for m in metas(a))
            continue
        if node.op == "get_attr":
            route[node] = ()
            weight_elems[node] = sum(_numel(m.shape) for m in metas(node))
            continue
        dyn_ins = [a for a in ins if a in dynamic]
        routed = tuple(dict.fromkeys(r for a in dyn_ins for r in route[a]))
        if not dyn_ins:                                  # computed from weights/constants only
            route[node] = ()
            weight_elems[node] = sum(_numel(m.shape) for m in metas(node))
            continue
        out_metas = metas(node)
        if not out_metas:                                # x.size(), x.shape[0]: shapes, not data edges
            route[node] = ()
            continue
        dynamic.add(node)
        if node.target is operator.getitem and isinstance(node.args[0], torch.fx.Node) and \
                not isinstance(node.args[0].meta.get("tensor_meta"), TensorMetadata):
            route[node] = routed                         # getitem of a tuple of tensors: bookkeeping
            continue
        out_shape = tuple(out_metas[0].shape)
        o_elems = sum(_numel(m.shape) for m in out_metas)
        i_elems = sum(_numel(m.shape) for a in dyn_ins for m in metas(a))
        params = w_elems = 0
        if node.op == "call_module":
            mod = modules[node.target]
            k = calls[node.target] = calls.get(node.target, -1) + 1
            name = node.target if k == 0 else f"{node.target}:{k}"     # a module called again (shared)
            in_shapes = [shape_of(a) for a in list(node.args) + list(node.kwargs.values())
                         if isinstance(a, torch.fx.Node) and metas(a)]
            op, macs, gemm, extra, dw, kern, known = _module_work(mod, in_shapes, out_shape, o_elems, i_elems)
            w_elems = _module_weights(mod, op, o_elems)
            window = _conv_window(mod)
            fresh = [p for n, p in mod.named_parameters(prefix=node.target) if n not in counted]
            counted.update(n for n, _ in mod.named_parameters(prefix=node.target))
            params = sum(p.numel() for p in fresh)
        else:
            name = node.name
            op = _func_op(node)
            macs, gemm, extra, dw, kern = _func_work(op, node, shape_of, out_shape)
            window = _func_window(op, node, shape_of)
            known = opcount.is_known(op)
            for a in ins:
                if a in weight_elems:
                    w_elems += weight_elems[a]
                    if a.op == "get_attr" and a.target in param_names and a.target not in counted:
                        counted.add(a.target)
                        params += weight_elems[a]
        if not known:
            unknown.append(f"{name} ({op})")
        layers.append(opcount.make_layer(
            name, op, routed, macs=macs, extra_flops=extra, params=params, weight_elems=w_elems,
            input_elems=i_elems, output_elems=o_elems, output_shape=out_shape, gemm=gemm, depthwise=dw,
            kernel_elems=kern, dtype=dtype, window=window))
        route[node] = (name,)
    return layers, out_elems, unknown


def _hook_layers(model: nn.Module, args: tuple, dtype: str, root_leaf: bool = False):
    """Run the model once with forward hooks on leaf modules; the DAG becomes a chain.
    The fallback when fx fails, and the way to profile a root that is itself one leaf (nn.Linear)."""
    leaves: list[tuple[str, nn.Module]] = [(type(model).__name__.lower(), model)] if root_leaf else []

    def walk(mod: nn.Module, prefix: str):
        for child_name, child in mod.named_children():
            full = f"{prefix}{child_name}"
            leaves.append((full, child)) if _is_leaf(child) else walk(child, full + ".")

    if not root_leaf:
        walk(model, "")
    if not leaves:
        leaves = [(type(model).__name__.lower(), model)]
    records: list[tuple[str, nn.Module, list, list]] = []

    def hook_for(name):
        def hook(mod, inp, kwargs, out):
            tensors_in = [t for t in list(inp) + list(kwargs.values()) if isinstance(t, torch.Tensor)]
            outs = [out] if isinstance(out, torch.Tensor) else [t for t in _flatten(out) if isinstance(t, torch.Tensor)]
            records.append((name, mod, [tuple(t.shape) for t in tensors_in], [tuple(t.shape) for t in outs]))
        return hook

    handles = [m.register_forward_hook(hook_for(n), with_kwargs=True) for n, m in leaves]
    try:
        out = model(*args)
    finally:
        for h in handles:
            h.remove()
    layers, calls, counted, unknown = [], {}, set(), []
    prev: tuple[str, ...] = ("input",)
    for base, mod, in_shapes, out_shapes in records:
        k = calls[base] = calls.get(base, -1) + 1
        name = base if k == 0 else f"{base}:{k}"
        o_elems = sum(_numel(s) for s in out_shapes)
        i_elems = sum(_numel(s) for s in in_shapes)
        out_shape = out_shapes[0] if out_shapes else ()
        op, macs, gemm, extra, dw, kern, known = _module_work(mod, in_shapes, out_shape, o_elems, i_elems)
        if not known:
            unknown.append(f"{name} ({op})")
        params = 0 if base in counted else sum(p.numel() for p in mod.parameters())
        counted.add(base)
        layers.append(opcount.make_layer(
            name, op, prev, macs=macs, extra_flops=extra, params=params,
            weight_elems=_module_weights(mod, op, o_elems), input_elems=i_elems, output_elems=o_elems,
            output_shape=out_shape, gemm=gemm, depthwise=dw, kernel_elems=kern, dtype=dtype,
            window=_conv_window(mod)))
        prev = (name,)
    out_elems = sum(t.numel() for t in _flatten(out) if isinstance(t, torch.Tensor))
    return layers, out_elems, unknown


def _flatten(obj):
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _flatten(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _flatten(o)]
    return [obj]


def profile_torch(model: nn.Module, example, *, dtype: str = "fp32", name: str | None = None) -> Profile:
    """Profile a torch.nn.Module on an example input (a tensor or a tuple of tensors). See lk.profile."""
    if example is None:
        raise ValueError("a torch module needs an example input, e.g. lk.profile(model, torch.zeros(1, 3, 224, 224)).")
    args = (example,) if isinstance(example, torch.Tensor) else tuple(example) if isinstance(example, (tuple, list)) \
        else None
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise ValueError(f"example must be a torch.Tensor or a tuple of tensors, got {type(example).__name__}.")
    modes = {m: m.training for m in model.modules()}      # restore each module's own flag afterwards
    model.eval()
    try:
        with torch.no_grad():
            try:
                if _Tracer().is_leaf_module(model, ""):     # one standard module: one layer
                    layers, out_elems, unknown = _hook_layers(model, args, dtype, root_leaf=True)
                else:
                    layers, out_elems, unknown = _fx_layers(model, args, dtype)
            except Exception as err:  # noqa: BLE001 - any fx failure falls back to hooks
                warnings.warn(
                    f"torch.fx could not trace {type(model).__name__} ({type(err).__name__}: {str(err)[:200]}); "
                    "the graph is approximated as a chain of leaf modules in execution order "
                    "(functional ops such as residual adds are not counted).", stacklevel=3)
                layers, out_elems, unknown = _hook_layers(model, args, dtype)
    finally:
        for m, mode in modes.items():
            m.training = mode
    if unknown:
        warnings.warn(f"labkit has no MAC rule for {len(unknown)} layer(s), counted as element-wise with 0 MACs: "
                      f"{', '.join(unknown[:8])}{' …' if len(unknown) > 8 else ''}", stacklevel=3)
    first = args[0]
    return Profile(
        name=name or type(model).__name__, source="torch", batch=int(first.shape[0]) if first.dim() else 1,
        dtype=dtype, layers=tuple(layers), params=sum(p.numel() for p in model.parameters()),
        input_elems=sum(a.numel() for a in args), output_elems=int(out_elems),
    )
