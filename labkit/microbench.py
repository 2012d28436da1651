"""The synthetic micro-benchmarks that calibrate ``lk.device("local")``: one op per benchmark (lab 00).

Layering: imports labkit.profile.core; torch and onnx are imported inside the builders. Never imports the
zoo: the calibration is fitted on these synthetic ops only, never on the models ``labkit validate`` checks.

Each benchmark is one op of one op class (DESIGN.md §3) at one shape, sized to span the small lab models at
batch 1 and 32: 3x3 and 1x1 convs of 1..160 channels on 2x2..32x32 maps, depthwise convs, linears from
10 to 1024 features on 1..1024 rows, SDPA attention, element-wise, norms, pooling and memory ops.
For torch a benchmark is a tiny ``nn.Module`` plus its example input; for ONNX Runtime the same op
written as a one-node ONNX graph with ``onnx.helper``, run with I/O binding (inside a model, tensors stay
in ORT; a model's one conversion from and to numpy is the "call" overhead). Each benchmark is profiled
with lk.profile (the ONNX one after ORT's graph optimisation), so FLOPs and bytes are defined exactly as
for the models we predict, and timed with ``time_call``.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from dataclasses import dataclass, field

# Shapes per op class. Tuples are per-sample; the batch (1 or 32) is prepended by the builders.
# conv: (c_in, c_out, hw, kernel, stride)
CONV = [(1, 16, 32, 3, 1), (16, 16, 32, 3, 1), (16, 32, 16, 3, 2), (32, 32, 16, 3, 1), (64, 64, 8, 3, 1),
        (32, 64, 8, 3, 1), (16, 96, 16, 1, 1), (96, 16, 16, 1, 1), (32, 192, 8, 1, 1), (192, 32, 8, 1, 1),
        (80, 480, 2, 1, 1), (160, 640, 2, 1, 1), (16, 32, 32, 1, 2)]
# depthwise conv 3x3: (channels, hw, stride)
DWCONV = [(16, 32, 1), (48, 32, 2), (72, 16, 1), (96, 16, 2), (192, 8, 1), (192, 8, 2), (384, 4, 1),
          (480, 2, 1)]
# linear: (rows per sample, in_features, out_features) -- rows > 1 is a (B, T, D) token input
# and batched matmul ("bmm", heads, tokens, head_dim): (B, H, T, d) @ (B, H, d, T), attention's Q K^T
LINEAR = [(1, 64, 256), (1, 256, 128), (1, 128, 10), (1, 1024, 10), (1, 640, 10), (1, 512, 512),
          (32, 64, 64), (32, 64, 256), (32, 256, 64), (1, 1024, 1024), ("bmm", 4, 32, 16), ("bmm", 8, 64, 32)]
# attention (SDPA): (heads, tokens, head_dim)
ATTENTION = [(4, 32, 16), (4, 64, 16), (8, 32, 32), (2, 128, 32), (1, 16, 64)]
# element-wise: (op, per-sample shape); at least two sizes per op, so each op gets its own fit too
ELEMENTWISE = [("relu", (16, 32, 32)), ("relu", (64, 8, 8)), ("relu", (256,)), ("relu6", (96, 16, 16)),
               ("relu6", (192, 4, 4)), ("add", (16, 32, 32)), ("add", (32, 64)), ("add", (64, 4, 4)),
               ("mul", (4, 32, 32)), ("mul", (96, 8, 8)), ("gelu", (32, 256)), ("gelu", (16, 128)),
               ("mean", (32, 64)), ("mean", (16, 128)), ("softmax", (4, 32, 32)), ("softmax", (8, 64, 64)),
               ("unflatten", (32, 64)), ("unflatten", (16, 256))]
# norms: (op, per-sample shape)
NORM = [("batchnorm", (16, 32, 32)), ("batchnorm", (96, 16, 16)), ("batchnorm", (64, 8, 8)),
        ("batchnorm", (480, 2, 2)), ("layernorm", (32, 64)), ("layernorm", (128, 256)), ("layernorm", (16, 128))]
# pooling: (op, channels, hw)
POOL = [("maxpool", 16, 32), ("maxpool", 32, 16), ("maxpool", 64, 8), ("avgpool", 64, 8),
        ("avgpool", 640, 2), ("avgpool", 16, 32)]
# memory: (op, per-sample shape); views (flatten, transpose, reshape, identity) cost only their start-up
MEMORY = [("flatten", (64, 4, 4)), ("flatten", (640, 1, 1)), ("transpose", (32, 4, 16)),
          ("transpose", (64, 8, 32)), ("reshape", (32, 64)), ("reshape", (16, 256)), ("identity", (16, 32, 32)),
          ("identity", (64, 8, 8)), ("cat", (32, 16, 16)), ("cat", (64, 8, 8)), ("embedding", (32,)),
          ("embedding", (8,)), ("copy", (32, 64)), ("copy", (96, 16, 16))]

QUICK = {"conv": [0, 3, 6, 11], "dwconv": [0, 4, 7], "matmul": [0, 3, 6, 9, 10], "attention": [0, 2],
         "elementwise": [0, 5, 10, 14], "norm": [0, 4, 3], "pool": [0, 3], "memory": [0, 2, 8, 10]}
BATCHES = (1, 32)


@dataclass(frozen=True)
class Bench:
    """One micro-benchmark: an op class, a readable name, a batch and the per-sample shape spec."""

    op_class: str
    name: str
    batch: int
    spec: tuple = field(repr=False)


def benches(quick: bool = False, batches=BATCHES) -> list[Bench]:
    """Every micro-benchmark (or the quick subset), at each batch.

    >>> len(benches(quick=True)) < len(benches())
    True
    """
    table = {"conv": CONV, "dwconv": DWCONV, "matmul": LINEAR, "attention": ATTENTION,
             "elementwise": ELEMENTWISE, "norm": NORM, "pool": POOL, "memory": MEMORY}
    out = []
    for cls, specs in table.items():
        chosen = [specs[i] for i in QUICK[cls]] if quick else specs
        for spec in chosen:
            for b in batches:
                out.append(Bench(cls, f"{cls}{_label(cls, spec)} b{b}", b, tuple(spec)))
    return out


def _label(cls: str, spec: tuple) -> str:
    if cls == "conv":
        ci, co, hw, k, s = spec
        return f" {k}x{k} {ci}->{co} @{hw}" + (f" s{s}" if s > 1 else "")
    if cls == "dwconv":
        c, hw, s = spec
        return f" {c} @{hw}" + (f" s{s}" if s > 1 else "")
    if cls == "matmul" and spec[0] == "bmm":
        return " bmm h{} t{} d{}".format(*spec[1:])
    if cls == "matmul":
        t, i, o = spec
        return f" {i}->{o}" + (f" x{t} tokens" if t > 1 else "")
    if cls == "attention":
        return " h{} t{} d{}".format(*spec)
    if cls == "pool":
        return " {} {} @{}".format(*spec)
    return f" {spec[0]} {'x'.join(str(d) for d in spec[1])}"


# ---- torch --------------------------------------------------------------------------------------------

def fn_module(fn, arity: int = 1):
    """A function of `arity` tensors as an nn.Module, so that lk.profile sees one function node (as in the
    zoo's forwards). Calling it costs one module call more than calling `fn` inside a forward; run()
    subtracts that."""
    from torch import nn

    class Fn(nn.Module):
        def __init__(self):
            super().__init__()
            self.fn = fn

    # fx cannot trace forward(*xs): give forward exactly `arity` named arguments
    forwards = {1: lambda self, x: self.fn(x), 2: lambda self, x, y: self.fn(x, y),
                3: lambda self, q, k, v: self.fn(q, k, v)}
    Fn.forward = forwards[arity]
    return Fn()


def torch_case(bench: Bench):
    """(module, example args tuple) for `bench`: a single-op torch.nn.Module in eval mode."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    gen = torch.Generator().manual_seed(0)
    b, spec = bench.batch, bench.spec

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    Fn = fn_module

    cls = bench.op_class
    if cls == "conv":
        ci, co, hw, k, s = spec
        return nn.Conv2d(ci, co, k, s, k // 2, bias=False).eval(), (rand(b, ci, hw, hw),)
    if cls == "dwconv":
        c, hw, s = spec
        return nn.Conv2d(c, c, 3, s, 1, groups=c, bias=False).eval(), (rand(b, c, hw, hw),)
    if cls == "matmul" and spec[0] == "bmm":
        _, h, t, d = spec
        return Fn(torch.matmul, 2), (rand(b, h, t, d), rand(b, h, d, t))
    if cls == "matmul":
        t, i, o = spec
        x = rand(b, i) if t == 1 else rand(b, t, i)
        return nn.Linear(i, o).eval(), (x,)
    if cls == "attention":
        h, t, d = spec
        return Fn(F.scaled_dot_product_attention, 3), tuple(rand(b, h, t, d) for _ in range(3))
    op, shape = spec[0], spec[1:] if cls == "pool" else spec[1]
    if cls == "elementwise":
        x = rand(b, *shape)
        mods = {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "gelu": nn.GELU(), "add": Fn(torch.add, 2),
                "mean": Fn(lambda x: x.mean(dim=1)), "softmax": nn.Softmax(dim=-1), "mul": Fn(torch.mul, 2),
                "unflatten": Fn(lambda x: x.unflatten(-1, (4, -1)))}
        return mods[op], ((x, rand(b, *shape)) if op in ("add", "mul") else (x,))
    if cls == "norm":
        if op == "batchnorm":
            bn = nn.BatchNorm2d(shape[0]).eval()
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            return bn, (rand(b, *shape),)
        return nn.LayerNorm(shape[-1]).eval(), (rand(b, *shape),)
    if cls == "pool":
        c, hw = shape
        mod = nn.MaxPool2d(2) if op == "maxpool" else nn.AdaptiveAvgPool2d(1)
        return mod, (rand(b, c, hw, hw),)
    if cls == "memory":
        if op == "flatten":
            return nn.Flatten(), (rand(b, *shape),)
        if op == "transpose":
            return Fn(lambda x: x.transpose(1, 2)), (rand(b, *shape),)
        if op == "reshape":
            return Fn(lambda x: x.reshape(x.shape[0], -1, 4)), (rand(b, *shape),)
        if op == "identity":
            return nn.Identity(), (rand(b, *shape),)
        if op == "cat":
            return Fn(lambda x, y: torch.cat([x, y], dim=1), 2), (rand(b, *shape), rand(b, *shape))
        if op == "embedding":
            return nn.Embedding(32, 64).eval(), (torch.randint(0, 32, (b, *shape), generator=gen),)
        if op == "copy":
            return Fn(torch.clone), (rand(b, *shape),)
    raise ValueError(f"no torch builder for micro-benchmark {bench.name!r}")


# ---- ONNX Runtime ---------------------------------------------------------------------------------------

OPSET = 20          # what torch.onnx.export writes today


def onnx_case(bench: Bench):
    """(onnx.ModelProto, feeds dict) for `bench`: the same op as torch_case, as a one-node ONNX graph.
    Not for attention: ONNX exports write it as MatMul + Softmax, which have benchmarks of their own."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    b, spec, cls = bench.batch, bench.spec, bench.op_class
    inits, attrs = [], {}
    opset = OPSET

    def rand(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def init(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    feeds = {}

    def feed(name, array):
        feeds[name] = array
        return name

    if cls == "attention":
        raise ValueError("attention has no one-node ONNX benchmark (exports write MatMul + Softmax)")
    if cls in ("conv", "dwconv"):
        if cls == "conv":
            ci, co, hw, k, s = spec
            groups = 1
        else:
            ci, hw, s = spec
            co, k, groups = ci, 3, ci
        op, ins = "Conv", [feed("x", rand(b, ci, hw, hw)), init("w", rand(co, ci // groups, k, k) * 0.1)]
        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4, group=groups)
    elif cls == "matmul" and spec[0] == "bmm":
        _, h, t, d = spec
        op, ins = "MatMul", [feed("x", rand(b, h, t, d)), feed("y", rand(b, h, d, t))]
    elif cls == "matmul":
        t, i, o = spec
        if t == 1:  # torch.onnx.export writes nn.Linear on 2-D input as Gemm(transB=1)
            op, ins = "Gemm", [feed("x", rand(b, i)), init("w", rand(o, i) * 0.1), init("bias", rand(o))]
            attrs = dict(transB=1)
        else:       # and on (B, T, D) input as MatMul + Add; ORT fuses them (MatMulAddFusion)
            op, ins = "MatMul", [feed("x", rand(b, t, i)), init("w", rand(i, o) * 0.1)]
    else:
        op_name = spec[0]
        shape = spec[1:] if cls == "pool" else spec[1]
        if cls == "pool":
            c, hw = shape
            x = feed("x", rand(b, c, hw, hw))
            if op_name == "maxpool":
                op, ins, attrs = "MaxPool", [x], dict(kernel_shape=[2, 2], strides=[2, 2])
            else:
                op, ins = "GlobalAveragePool", [x]
        elif op_name in ("relu", "relu6", "gelu", "add", "mul", "mean", "softmax"):
            x = feed("x", rand(b, *shape))
            op, ins = {"relu": ("Relu", [x]), "gelu": ("Gelu", [x]),
                       "relu6": ("Clip", [x, init("lo", np.float32(0)), init("hi", np.float32(6))]),
                       "add": ("Add", [x, feed("y", rand(b, *shape))]),
                       "mul": ("Mul", [x, feed("y", rand(b, *shape))]),
                       "mean": ("ReduceMean", [x, init("axes", np.array([1], np.int64))]),
                       "softmax": ("Softmax", [x])}[op_name]
            if op_name == "mean":
                attrs = dict(keepdims=0)
        elif op_name == "batchnorm":
            c = shape[0]
            op = "BatchNormalization"
            ins = [feed("x", rand(b, *shape)), init("g", rand(c)), init("beta", rand(c)), init("mu", rand(c)),
                   init("var", rng.uniform(0.5, 2, c).astype(np.float32))]
        elif op_name == "layernorm":
            d = shape[-1]
            op, ins, attrs = "LayerNormalization", [feed("x", rand(b, *shape)), init("g", rand(d)),
                                                    init("beta", rand(d))], dict(axis=-1)
        elif op_name == "flatten":
            op, ins, attrs = "Flatten", [feed("x", rand(b, *shape))], dict(axis=1)
        elif op_name in ("unflatten", "reshape"):   # both are an ONNX Reshape
            split = [b, shape[0], 4, -1] if op_name == "unflatten" else [b, -1, 4]
            op, ins = "Reshape", [feed("x", rand(b, *shape)), init("shape", np.array(split, np.int64))]
        elif op_name == "identity":   # the optimiser removes Identity; a Reshape to the same shape stays
            op, ins = "Reshape", [feed("x", rand(b, *shape)), init("shape", np.array([b, *shape], np.int64))]
        elif op_name == "transpose":
            op, ins, attrs = "Transpose", [feed("x", rand(b, *shape))], dict(perm=[0, 2, 1] + [3] * (len(shape) > 2))
        elif op_name == "cat":
            op, ins, attrs = "Concat", [feed("x", rand(b, *shape)), feed("y", rand(b, *shape))], dict(axis=1)
        elif op_name == "embedding":
            op = "Gather"
            ins = [init("table", rand(32, 64)), feed("x", rng.integers(0, 32, (b, *shape)).astype(np.int64))]
        elif op_name == "copy":   # Identity would be removed by the optimiser; Mul by 1 costs a copy
            op, ins = "Mul", [feed("x", rand(b, *shape)), init("one", np.float32(1))]
        else:
            raise ValueError(f"no ONNX builder for micro-benchmark {bench.name!r}")
    node = helper.make_node(op, ins, ["out"], **attrs)
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                    for n, a in feeds.items()]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], bench.name.replace(" ", "_"), graph_inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)   # what this onnxruntime reads
    model = onnx.shape_inference.infer_shapes(model)
    return model, feeds


# ---- running them ---------------------------------------------------------------------------------------

ROUNDS = 3   # a measurement is the lowest of ROUNDS medians


def time_call(fn, *args, budget_s: float, rounds: int = ROUNDS) -> float:
    """Seconds per call of ``fn(*args)``: the lowest of `rounds` medians of lk.measure runs of
    ~budget_s/rounds each.

    Calibration and validation both time this way. Other processes only ever add time, and on a shared
    machine they come in bursts; the median of a run ignores a minority of disturbed samples, and the
    lowest of three medians ignores a run that was disturbed throughout. On a quiet machine it is the median.
    """
    from labkit.measure import measure

    per = budget_s / rounds
    return min(measure(fn, *args, warmup=3 if r == 0 else 1, min_time_s=per, max_time_s=20 * per,
                       progress=False).p50_s for r in range(rounds))


def _time(fn, *args, budget_s: float) -> float:
    return time_call(fn, *args, budget_s=budget_s)


def ort_session(model, num_threads: int, optimized_path: str | None = None):
    """An InferenceSession as calibration and validation both run it: `num_threads` intra-op threads,
    sequential, graph level ``ORT_ENABLE_EXTENDED`` (see labkit/validate.py: the highest level whose graph
    lk.profile can read); `model` is a path, bytes or a ModelProto.
    With `optimized_path`, the graph that actually runs is saved there (for lk.profile)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.intra_op_num_threads = int(num_threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if optimized_path:
        so.optimized_model_filepath = str(optimized_path)
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def bound(sess, feeds):
    """An I/O binding of `feeds` and of preallocated outputs: run_with_iobinding then neither converts
    nor allocates, so a one-node model costs what the node costs inside a bigger model (+ a fixed cost)."""
    import numpy as np
    import onnxruntime as ort

    io = sess.io_binding()
    for name, array in feeds.items():
        io.bind_cpu_input(name, np.ascontiguousarray(array))
    for meta, value in zip(sess.get_outputs(), sess.run(None, feeds)):
        io.bind_ortvalue_output(meta.name, ort.OrtValue.ortvalue_from_numpy(np.empty_like(value)))
    return io


def layer_work(layers) -> list[tuple[str, str, int, int]]:
    """(op_class, op, flops, bytes) of each profiled layer: what the cost fit sees."""
    return [(lay.op_class, lay.op, int(lay.flops), int(lay.bytes)) for lay in layers]


def machine_peaks(runtime: str, num_threads: int, budget_s: float) -> dict:
    """Matmul FLOP/s per dtype, STREAM-like triad/copy bytes/s, tiny-op and per-call overheads (seconds)."""
    import torch

    out = {"matmul_flops_per_s": {}}
    n = 512
    if runtime == "torch":
        for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            try:
                a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
                # a slow dtype (no hardware support) is still measured, on a smaller problem
                m = n if _time(torch.mm, a[:64, :64], b[:64, :64], budget_s=0.01) < 2e-3 else 128
                s = _time(torch.mm, a[:m, :m], b[:m, :m], budget_s=budget_s)
                out["matmul_flops_per_s"][name] = 2.0 * m**3 / s
            except RuntimeError:   # dtype not supported by this build: not a peak of this machine
                pass
        relu = torch.nn.ReLU()
        out["op_overhead_s"] = _time(relu, torch.zeros(1), budget_s=budget_s)
        # a model call is one module call more than its layers: the top-level module's own
        out["run_overhead_s"] = _time(fn_module(lambda x: x), torch.zeros(1), budget_s=budget_s)
    else:
        import numpy as np
        from onnx import TensorProto, helper

        def chain(op, k, shapes, inits=()):
            nodes, prev = [], "x"
            for i in range(k):
                nodes.append(helper.make_node(op, [prev, *[n for n, _ in inits]], [f"y{i}"]))
                prev = f"y{i}"
            g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shapes)],
                                  [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)],
                                  initializer=[helper.make_tensor("w", TensorProto.FLOAT, a.shape, a.ravel())
                                               for _, a in inits])
            model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
            model.ir_version = min(model.ir_version, 10)
            return model

        w = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        sess = ort_session(chain("MatMul", 1, [n, n], [("w", w)]), num_threads)
        s = _time(sess.run, None, {"x": w}, budget_s=budget_s)
        out["matmul_flops_per_s"]["fp32"] = 2.0 * n**3 / s
        # one run = fixed cost + per node; 1 vs 9 chained one-element ReLUs separate the two. Benchmarks run
        # with I/O binding (no numpy conversion: inside a model, tensors stay in ORT), a model call with
        # session.run and numpy arrays, as learners call it: "run_overhead_s" is that call's fixed cost.
        x = np.zeros((1, 1), np.float32)
        t, t_np = {}, 0.0
        for k in (1, 9):
            sess = ort_session(chain("Relu", k, [1, 1]), num_threads)
            t[k] = _time(sess.run_with_iobinding, bound(sess, {"x": x}), budget_s=budget_s)
            if k == 1:
                t_np = _time(sess.run, None, {"x": x}, budget_s=budget_s)
        per_node = max((t[9] - t[1]) / 8, 0.0)
        out["op_overhead_s"] = per_node
        out["bound_overhead_s"] = max(t[1] - per_node, 0.0)
        out["run_overhead_s"] = max(t_np - per_node, 0.0)
        del sess
    # STREAM-like: 3 arrays of 16 Mi floats (64 MiB each), far beyond the caches; torch threads as set
    big = 16 * 2**20
    dst, x, y = torch.zeros(big), torch.rand(big), torch.rand(big)
    out["triad_bytes_per_s"] = 3 * 4 * big / _time(lambda: torch.add(x, y, alpha=3.0, out=dst),
                                                   budget_s=budget_s)
    out["copy_bytes_per_s"] = 2 * 4 * big / _time(lambda: dst.copy_(x), budget_s=budget_s)
    return out


def run(runtime: str, quick: bool = False, progress: bool = True, num_threads: int | None = None):
    """Measure every micro-benchmark for `runtime`; returns (peaks dict, points) where each point is
    ``(bench, [(op_class, op, flops, bytes) per profiled layer], measured_s)``.

    Benchmarks are measured in ROUNDS passes over the whole list and each keeps its lowest median, so a
    burst of load from other processes spoils one pass of a few benchmarks, not a benchmark."""
    import torch

    from labkit.profile import profile

    num_threads = int(num_threads or torch.get_num_threads())
    budget_s = 0.03 if quick else 0.045   # seconds of samples per benchmark, over all rounds
    # ONNX exports write attention as MatMul + Softmax (covered by the matmul and elementwise fits), so
    # ONNX Runtime gets no attention benchmarks
    todo = [b for b in benches(quick=quick) if runtime == "torch" or b.op_class != "attention"]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=ROUNDS * len(todo) + 1, desc=f"calibrate {runtime}", unit="bench", file=sys.stderr)
    try:
        with torch.inference_mode():
            peaks = machine_peaks(runtime, num_threads, budget_s)
            if bar is not None:
                bar.update(1)
            # torch: a function wrapped in a module pays one module call that a model's forward does not
            fn_call_s = peaks["run_overhead_s"] if runtime == "torch" else 0.0   # one empty module call
            cases = []   # (bench, work, fn, args, fixed seconds to subtract)
            for bench in todo:
                module, args = torch_case(bench)
                work = layer_work(profile(module, args if len(args) > 1 else args[0]).layers)
                if runtime == "torch":
                    cases.append((bench, work, module, args, fn_call_s if hasattr(module, "fn") else 0.0))
                    continue
                model, feeds = onnx_case(bench)
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "optimized.onnx")   # the graph ORT actually runs
                    sess = ort_session(model, num_threads, optimized_path=path)
                    try:
                        work = layer_work(profile(path).layers)
                    except ImportError:   # lk.profile cannot read ONNX yet: the torch twin's work
                        pass
                cases.append((bench, work, sess.run_with_iobinding, (bound(sess, feeds),),
                              peaks["bound_overhead_s"]))
            best = [math.inf] * len(cases)
            for _ in range(ROUNDS):
                for i, (_, _, fn, args, _) in enumerate(cases):
                    best[i] = min(best[i], time_call(fn, *args, budget_s=budget_s / ROUNDS, rounds=1))
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    points = [(bench, work, max(t - fixed, 0.1 * t)) for (bench, work, _, _, fixed), t in zip(cases, best)]
    return peaks, points
