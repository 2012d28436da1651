"""``lk.profile``: pick the front end (torch, ONNX or JAX) from what the learner passes in.
"""

from __future__ import annotations

import os
import sys

from labkit.args import Int, Optional, check
from labkit.dtypes import normalize_dtype
from labkit.profile.core import Profile

_ACCEPTED = ("a torch.nn.Module with an example input (tensor or tuple of tensors); an ONNX model "
             "(a path to a .onnx file or an onnx.ModelProto; example optional); or a JAX function with a tuple "
             "of example arguments, e.g. lk.profile(fn, (params, x))")

def profile(model, example=None, *, dtype: str = "fp32", name: str | None = None,
            batch: int | None = None) -> Profile:
    """Profile a model once: params, MACs, FLOPs and a per-layer DAG (lab 01).

    `model` is a torch.nn.Module (with `example`, a tensor or tuple of tensors), an ONNX model (path or
    ModelProto; `example` or `batch=` fix a symbolic batch dimension, default 1) or a JAX function (with
    `example` = the tuple of its arguments; the first argument is taken as the parameters).

    >>> import torch, labkit as lk
    >>> p = lk.profile(torch.nn.Conv2d(3, 8, 3), torch.zeros(1, 3, 32, 32))
    >>> (p.params, p.macs, p.layers[0].op_class)
    (224, 194400, 'conv')
    """
    dtype = normalize_dtype(dtype)
    batch = check("batch", batch, Optional(Int(low=1)))
    kind = _kind(model)
    if kind == "torch":
        from labkit.profile.torch_fx import profile_torch

        prof = profile_torch(model, example, dtype=dtype, name=name)
    elif kind == "onnx":
        from labkit.profile.onnx_graph import profile_onnx

        return profile_onnx(model, example, dtype=dtype, name=name, batch=batch)
    elif kind == "jax":
        from labkit.profile.jax_fn import profile_jax

        prof = profile_jax(model, example, dtype=dtype, name=name)
    else:
        raise ValueError(f"lk.profile cannot profile a {type(model).__name__}; it accepts {_ACCEPTED}.")
    if batch is not None and batch != prof.batch:
        raise ValueError(f"batch={batch} disagrees with the example's leading dimension {prof.batch}; "
                         f"build the example with batch {batch} (batch= only fixes an ONNX model's symbolic batch).")
    return prof


def _kind(model) -> str | None:
    """'torch', 'onnx', 'jax' or None, without importing a framework the learner has not imported."""
    if isinstance(model, (str, os.PathLike)):
        return "onnx"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    onnx = sys.modules.get("onnx")
    if onnx is not None and isinstance(model, onnx.ModelProto):
        return "onnx"
    if callable(model) and not isinstance(model, type):
        return "jax"
    return None
