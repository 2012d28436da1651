"""The synthetic micro-benchmarks that calibrate ``lk.device("local")``: one op per benchmark (lab 00).

Each benchmark is one op of one op class (DESIGN.md §3) at one shape, sized to span the small lab models at
batch 1 and 32: 3x3 and 1x1 convs of 1..640 channels on 2x2..32x32 maps, depthwise convs, linears from
10 to 1024 features on 1..197 rows per sample (GEMMs of 4-17 rows among them), SDPA attention, element-wise, norms, pooling and memory ops.
A benchmark is a tiny ``nn.Module`` plus its example input; labkit.calibration.benchrun times it as a one-layer model
(``as_model``) in torch, and exported to ONNX (``export_onnx``, as ``labkit validate`` exports the zoo) in
ONNX Runtime, whose optimised graph is what gets profiled. Both use ``time_call``'s timing rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Shapes per op class. Tuples are per-sample; the batch (1 or 32) is prepended by the builders.
# conv: (c_in, c_out, hw, kernel, stride)
CONV = [(1, 16, 32, 3, 1), (16, 16, 32, 3, 1), (16, 32, 16, 3, 2), (32, 32, 16, 3, 1), (64, 64, 8, 3, 1),
        (32, 64, 8, 3, 1), (16, 96, 16, 1, 1), (96, 16, 16, 1, 1), (32, 192, 8, 1, 1), (192, 32, 8, 1, 1),
        (80, 480, 2, 1, 1), (160, 640, 2, 1, 1), (16, 32, 32, 1, 2),
        # GEMMs of few rows at batch 1 (a 2x2 map is 4 rows, 3x3 is 9): BLAS kernels run far below their rate
        (256, 256, 2, 3, 1), (128, 128, 3, 3, 1), (192, 192, 4, 3, 1),
        # wide GEMMs (128-256 channels on 8x8-16x16 maps), as in ResNets: without them the fitted rate is set by
        # the narrow convs above, and ONNX Runtime ran these 2x faster than it predicted
        (128, 128, 16, 3, 1), (256, 256, 8, 1, 1)]
# depthwise conv: (channels, hw, stride[, kernel: 3]). 5x5 too (MnasNet, MobileNetV3, EfficientNet use it): with
# 3x3 alone the fit put ONNX Runtime's time for many channels on small maps into a per-channel cost that does not
# grow with the kernel, and predicted 5x5 layers of MobileNetV3 on 7x7 and 14x14 maps 2x too fast
DWCONV = [(16, 32, 1), (48, 32, 2), (72, 16, 1), (96, 16, 2), (192, 8, 1), (192, 8, 2), (384, 4, 1),
          (480, 2, 1), (32, 32, 1, 5), (128, 16, 2, 5), (256, 8, 1, 5), (512, 4, 1, 5)]
# linear: (rows per sample, in_features, out_features) -- rows > 1 is a (B, T, D) token input
# and batched matmul ("bmm", heads, tokens, head_dim): (B, H, T, d) @ (B, H, d, T), attention's Q K^T
LINEAR = [(1, 64, 256), (1, 256, 128), (1, 128, 10), (1, 1024, 10), (1, 640, 10), (1, 512, 512),
          (32, 64, 64), (32, 64, 256), (32, 256, 64), (1, 1024, 1024), ("bmm", 4, 32, 16), ("bmm", 8, 64, 32),
          (4, 512, 512), (8, 256, 256), (17, 192, 576),     # few rows: packing the weights is most of the time
          (64, 256, 1024), (64, 512, 512), (197, 192, 768)]  # transformer-sized GEMMs (a ViT-Tiny's MLP at 224 px)
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
        ("avgpool", 640, 2), ("avgpool", 16, 32), ("maxpool", 24, 16)]
# memory: (op, per-sample shape); views (flatten, transpose, reshape, identity) cost only their start-up
MEMORY = [("flatten", (64, 4, 4)), ("flatten", (640, 1, 1)), ("transpose", (32, 4, 16)),
          ("transpose", (64, 8, 32)), ("reshape", (32, 64)), ("reshape", (16, 256)), ("identity", (16, 32, 32)),
          ("identity", (64, 8, 8)), ("cat", (32, 16, 16)), ("cat", (64, 8, 8)), ("embedding", (32,)),
          ("embedding", (8,)), ("copy", (32, 64)), ("copy", (96, 16, 16))]

QUICK = {"conv": [0, 3, 6, 11, 13, 16], "dwconv": [0, 4, 7], "matmul": [0, 3, 6, 9, 10, 13, 17], "attention": [0, 2],
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
        c, hw, s, k = (*spec, 3)[:4]
        return (f" {k}x{k}" if k != 3 else "") + f" {c} @{hw}" + (f" s{s}" if s > 1 else "")
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
        c, hw, s, k = (*spec, 3)[:4]
        return nn.Conv2d(c, c, k, s, k // 2, groups=c, bias=False).eval(), (rand(b, c, hw, hw),)
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


# ---- timing and running --------------------------------------------------------------------------------

def as_model(module):
    """`module` as a one-layer model: a leaf layer (nn.Conv2d) inside an ``nn.Sequential``, so that calling
    it costs one model call plus one layer, as in any model; an fn_module is already that (its forward
    calls the function)."""
    from torch import nn

    return module if hasattr(module, "fn") else nn.Sequential(module)


def layer_work(layers, torch_threads: int = 0) -> list[tuple]:
    """(op_class, op, flops, bytes, *unit counts, weight bytes) of each profiled layer: what the cost fit sees
    (``Layer.unit_counts``: kernel calls, packed weights, small-GEMM weights per call and per image; the weight
    bytes are what the layer fetches again when its caches went cold, ``labkit.targets.cold_s``). The op is
    the name lk.estimate prices the layer under (``labkit.targets.fit_op``: in torch at `torch_threads`
    threads, a conv that runs as im2col + GEMM is ``"conv2d:im2col"``); the FLOPs count the channels oneDNN pads to
    whole blocks (``labkit.targets.blocked_flops``) and the bytes its blocked copies (``labkit.targets.
    reorder_bytes``), as lk.estimate's do."""
    from labkit.targets import blocked_flops, fit_op, reorder_bytes

    return [(lay.op_class, fit_op(lay, torch_threads), int(blocked_flops(lay, torch_threads)),
             int(lay.bytes) + reorder_bytes(lay, torch_threads), *lay.unit_counts, int(lay.weight_bytes))
            for lay in layers]
