"""A torch model as a pure JAX function with the same weights; jax.jit timing and XLA's cost analysis (lab 04).
"""

from __future__ import annotations

import math
import operator
import time
from dataclasses import dataclass

from labkit.measure import Measurement, measure


@dataclass(frozen=True, repr=False)
class JaxModel:
    """A pure JAX function and its params: ``fn(params, x)`` equals ``model(x)`` of the torch model.

    ``params`` maps state_dict names ('fc1.weight', 'features.0.1.running_mean', …) to jax arrays (fp32).
    Calling the object runs ``fn(params, x)``.
    """

    name: str
    fn: object                     # fn(params: dict[str, jax.Array], x: jax.Array) -> jax.Array
    params: dict

    def __call__(self, x):
        return self.fn(self.params, x)

    def __repr__(self) -> str:
        n = sum(math.prod(v.shape) for v in self.params.values())
        return f"JaxModel({self.name!r}, {len(self.params)} arrays, {n} values)"


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _module_fn(mod, prefix: str):
    """A function (params, x) -> y replaying one torch module in JAX; ValueError when unsupported."""
    import jax
    import jax.numpy as jnp
    from torch import nn

    def p(params, key):
        return params[f"{prefix}.{key}" if prefix else key]

    if isinstance(mod, nn.Linear):                      # x: (..., in) @ W.T (in, out) + b
        return lambda P, x: x @ p(P, "weight").T + (p(P, "bias") if mod.bias is not None else 0.0)
    if isinstance(mod, nn.Conv2d):
        if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
            raise ValueError(f"{prefix}: Conv2d with padding {mod.padding!r}/{mod.padding_mode!r} is not "
                             "supported (zero padding given as ints only).")
        ph, pw = _pair(mod.padding)

        def conv(P, x):                                 # x: (N, C, H, W), weight: (O, C/groups, kh, kw)
            y = jax.lax.conv_general_dilated(
                x, p(P, "weight"), window_strides=_pair(mod.stride), padding=[(ph, ph), (pw, pw)],
                rhs_dilation=_pair(mod.dilation), feature_group_count=mod.groups,
                dimension_numbers=("NCHW", "OIHW", "NCHW"))
            return y + p(P, "bias")[None, :, None, None] if mod.bias is not None else y
        return conv
    if isinstance(mod, nn.BatchNorm2d):                 # eval: running statistics, per channel
        def bn(P, x):
            scale = p(P, "weight") / jnp.sqrt(p(P, "running_var") + mod.eps)
            shift = p(P, "bias") - p(P, "running_mean") * scale
            return x * scale[None, :, None, None] + shift[None, :, None, None]
        return bn
    if isinstance(mod, nn.ReLU):
        return lambda P, x: jax.nn.relu(x)
    if isinstance(mod, nn.ReLU6):
        return lambda P, x: jnp.clip(x, 0.0, 6.0)
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        if getattr(mod, "ceil_mode", False) or _pair(getattr(mod, "dilation", 1)) != (1, 1):
            raise ValueError(f"{prefix}: pooling with ceil_mode or dilation is not supported.")
        kh, kw = _pair(mod.kernel_size)
        sh, sw = _pair(mod.stride if mod.stride is not None else mod.kernel_size)
        ph, pw = _pair(mod.padding)
        pad = ((0, 0), (0, 0), (ph, ph), (pw, pw))
        if isinstance(mod, nn.MaxPool2d):
            return lambda P, x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, kh, kw), (1, 1, sh, sw), pad)
        if (ph, pw) != (0, 0):
            raise ValueError(f"{prefix}: AvgPool2d with padding is not supported.")
        return lambda P, x: jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 1, kh, kw), (1, 1, sh, sw),
                                                  pad) / (kh * kw)
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        if _pair(mod.output_size) != (1, 1):
            raise ValueError(f"{prefix}: AdaptiveAvgPool2d supports output size 1 only, got {mod.output_size}.")
        return lambda P, x: jnp.mean(x, axis=(2, 3), keepdims=True)
    if isinstance(mod, nn.Flatten):
        return lambda P, x: _flatten(x, mod.start_dim, mod.end_dim)
    if isinstance(mod, (nn.Identity, nn.Dropout)):
        return lambda P, x: x
    raise ValueError(f"{prefix or 'model'}: {type(mod).__name__} is not supported by to_jax. Supported: Linear, "
                     "Conv2d, BatchNorm2d, ReLU, ReLU6, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, "
                     "Identity, Dropout.")


def _flatten(x, start: int = 0, end: int = -1):
    start, end = start % x.ndim, end % x.ndim
    return x.reshape(*x.shape[:start], -1, *x.shape[end + 1:])


def _function_fn(target, node):
    """A jnp function for an fx call_function / call_method node; ValueError when unsupported."""
    import jax
    import jax.numpy as jnp
    import torch
    import torch.nn.functional as F

    if target in (F.relu, torch.relu, "relu"):
        return lambda x, *a, **k: jax.nn.relu(x)
    if target in (operator.add, torch.add, "add"):
        return lambda a, b: a + b
    if target in (operator.mul, torch.mul, "mul"):
        return lambda a, b: a * b
    if target in (torch.flatten, "flatten"):
        return lambda x, start_dim=0, end_dim=-1: _flatten(x, start_dim, end_dim)
    if target in ("view", "reshape", torch.reshape):
        return lambda x, *shape: jnp.reshape(x, shape[0] if len(shape) == 1 and isinstance(shape[0], tuple)
                                             else shape)
    name = getattr(target, "__name__", target)
    raise ValueError(f"{node.name}: {name} is not supported by to_jax (supported functions: relu, add, mul, "
                     "flatten, view/reshape).")


def to_jax(model) -> JaxModel:
    """A torch model as a pure JAX function with the same weights (lab 04).

    The model is traced with torch.fx (so its forward must be traceable) and each node replayed in JAX.

    >>> import numpy as np, torch, labkit as lk
    >>> model, x = lk.zoo.build("mlp"), lk.zoo.example("mlp", batch=2)
    >>> jm = lk.compile.to_jax(model)
    >>> bool(np.allclose(np.asarray(jm(x.numpy())), model(x).detach().numpy(), atol=1e-5))
    True
    """
    import jax.numpy as jnp
    import torch
    import torch.fx

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    model = model.eval()
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as err:
        raise ValueError(f"to_jax needs a model torch.fx can trace; tracing failed: {err}") from err
    modules = dict(model.named_modules())
    steps = []                                      # (node name, fn, args, kwargs) in graph order
    output = None
    for node in graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "call_module":
            steps.append((node.name, _module_fn(modules[node.target], node.target), node.args, node.kwargs, True))
        elif node.op in ("call_function", "call_method"):
            steps.append((node.name, _function_fn(node.target, node), node.args, node.kwargs, False))
        elif node.op == "output":
            output = node.args[0]
        else:
            raise ValueError(f"{node.name}: fx op {node.op!r} ({node.target}) is not supported by to_jax.")
    placeholders = [n.name for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"to_jax supports models with one input, this one has {len(placeholders)}.")

    def fn(params, x):
        env = {placeholders[0]: x}

        def val(a):
            if isinstance(a, torch.fx.Node):
                return env[a.name]
            if isinstance(a, (tuple, list)):
                return type(a)(val(v) for v in a)
            return a
        for name, f, args, kwargs, is_module in steps:
            args = [val(a) for a in args]
            kwargs = {k: val(v) for k, v in kwargs.items()}
            env[name] = f(params, *args) if is_module else f(*args, **kwargs)
        return val(output)

    params = {k: jnp.asarray(v.detach().cpu().numpy()) for k, v in model.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    return JaxModel(name=type(model).__name__, fn=fn, params=params)


@dataclass(frozen=True, repr=False)
class JaxJit:
    """jax.jit of a ported model beside the torch model: timing, XLA's cost analysis, lk.profile (lab 04).

    ``compile_s``: first jitted call (trace + XLA compile + one run); ``jitted`` / ``torch_eager``: steady
    state. ``xla_flops`` / ``xla_bytes_accessed`` come from XLA's cost analysis of the compiled program;
    ``profile_flops`` / ``profile_bytes`` from ``lk.profile`` of the torch model (weights + activations read
    and written per layer), counted by labkit's rules — they need not agree, and lab 04 asks why.
    """

    compile_s: float
    jitted: Measurement
    torch_eager: Measurement
    xla_flops: float
    xla_transcendentals: float
    xla_bytes_accessed: float
    profile_flops: int
    profile_bytes: int
    max_abs_diff: float            # max |jax output - torch output|

    def to_frame(self):
        """Two rows (XLA, lk.profile) side by side: flops and bytes; plus the timings."""
        import pandas as pd

        return pd.DataFrame({"flops": [self.xla_flops, self.profile_flops],
                             "bytes": [self.xla_bytes_accessed, self.profile_bytes],
                             "p50_s": [self.jitted.p50_s, self.torch_eager.p50_s]},
                            index=["jax.jit (XLA cost analysis)", "torch (lk.profile)"])

    def __repr__(self) -> str:
        return (f"JaxJit(compile={self.compile_s:.3g} s, jit p50={self.jitted.p50_s * 1e6:.1f} µs, "
                f"torch p50={self.torch_eager.p50_s * 1e6:.1f} µs, XLA flops={self.xla_flops:.4g}, "
                f"lk.profile flops={self.profile_flops:.4g}, max |diff|={self.max_abs_diff:.2g})")


def jax_jit(model, example, *, min_time_s: float = 0.2, max_time_s: float = 3.0) -> JaxJit:
    """Port `model` with :func:`to_jax`, jit it, time it against torch, and put XLA's cost analysis beside
    ``lk.profile`` of the torch model (lab 04).

    >>> import labkit as lk
    >>> r = lk.compile.jax_jit(lk.zoo.build("mlp"), lk.zoo.example("mlp"), min_time_s=0.01)
    >>> r.max_abs_diff < 1e-5
    True
    """
    import jax
    import numpy as np
    import torch

    from labkit.profile import profile
    from labkit.profile.jax_fn import xla_cost

    if not isinstance(example, torch.Tensor):
        raise ValueError(f"example must be one torch tensor (the model's input), got {type(example).__name__}.")
    jm = to_jax(model)
    x = jax.numpy.asarray(example.numpy())
    jitted = jax.jit(jm.fn)
    t0 = time.perf_counter()
    y = jitted(jm.params, x).block_until_ready()
    compile_s = time.perf_counter() - t0
    with torch.no_grad():
        ref = model(example).numpy()
        timing = {"min_time_s": min_time_s, "max_time_s": max_time_s, "progress": False}
        torch_m = measure(model, example, **timing)
    jit_m = measure(lambda: jitted(jm.params, x).block_until_ready(), **timing)
    cost = xla_cost(jm.fn, (jm.params, x))
    prof = profile(model, example)
    layer_bytes = sum(layer.weight_bytes + layer.input_bytes + layer.output_bytes for layer in prof.layers)
    return JaxJit(compile_s=compile_s, jitted=jit_m, torch_eager=torch_m,
                  xla_flops=float(cost.get("flops", math.nan)),
                  xla_transcendentals=float(cost.get("transcendentals", 0.0)),
                  xla_bytes_accessed=float(cost.get("bytes accessed", math.nan)),
                  profile_flops=int(prof.flops), profile_bytes=int(layer_bytes),
                  max_abs_diff=float(np.max(np.abs(np.asarray(y) - ref))))


def xla_cost(fn, args) -> dict:
    """XLA's own cost analysis of ``jax.jit(fn)`` on `args` ('flops', 'bytes accessed', …): lab 04 puts it beside
    ``lk.profile``. The analysis itself lives with the JAX profiler (labkit.profile.jax_fn.xla_cost).

    >>> import jax.numpy as jnp
    >>> xla_cost(lambda a, b: a @ b, (jnp.ones((4, 8)), jnp.ones((8, 2))))["flops"]
    128.0
    """
    from labkit.profile.jax_fn import xla_cost as analyse

    return analyse(fn, args)
