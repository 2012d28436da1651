"""``lk.compile``: what a compiler does to a model, made visible and measured (lab 04).

- ONNX: :func:`export_onnx`, then :func:`ort_levels` runs ONNX Runtime at each graph-optimisation level and
  counts the nodes of the graph that actually runs (fusions made visible), with a measured latency per level.
- torch.compile: :func:`torch_compile` times the first call (compilation) apart from the steady state and
  gives the break-even number of calls (:func:`break_even_calls`).
- JAX: :func:`to_jax` turns a zoo model into a pure JAX function with the same weights; :func:`jax_jit`
  times ``jax.jit`` and puts XLA's cost analysis beside ``lk.profile`` of the torch model.

>>> import labkit as lk
>>> lk.compile.break_even_calls(compile_s=2.0, eager_s=3e-3, compiled_s=1e-3)
1000.0
"""

from __future__ import annotations

from labkit.args import namespace
from labkit.compile.jax_port import JaxJit, JaxModel, jax_jit, to_jax, xla_cost
from labkit.compile.ort import LEVELS, OrtLevels, export_onnx, ort_levels
from labkit.compile.torch_jit import TorchCompile, break_even_calls, torch_compile

__all__ = ["JaxJit", "JaxModel", "LEVELS", "OrtLevels", "TorchCompile", "break_even_calls", "export_onnx",
           "jax_jit", "ort_levels", "to_jax", "torch_compile", "xla_cost"]

__getattr__, __dir__ = namespace("lk.compile", __all__)
