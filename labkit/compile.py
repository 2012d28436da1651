"""``lk.compile``: what a compiler does to a model, made visible and measured (lab 04).

- ONNX: :func:`export_onnx`, then :func:`ort_levels` runs ONNX Runtime at each graph-optimisation level and
  counts the nodes of the graph that actually runs (fusions made visible), with a measured latency per level.
- torch.compile: :func:`torch_compile` times the first call (compilation) apart from the steady state and
  gives the break-even number of calls (:func:`break_even_calls`).
- JAX: :func:`to_jax` turns a zoo model into a pure JAX function with the same weights; :func:`jax_jit`
  times ``jax.jit`` and puts XLA's cost analysis beside ``lk.profile`` of the torch model.

Layering: a façade over labkit.compiling.*; each part imports torch, onnxruntime or jax only when called.

>>> import labkit as lk
>>> lk.compile.break_even_calls(compile_s=2.0, eager_s=3e-3, compiled_s=1e-3)
1000.0
"""

from __future__ import annotations

from labkit.lazy import namespace

_API = {
    "export_onnx": "labkit.compiling.ort:export_onnx",
    "ort_levels": "labkit.compiling.ort:ort_levels",
    "OrtLevels": "labkit.compiling.ort:OrtLevels",
    "LEVELS": "labkit.compiling.ort:LEVELS",
    "torch_compile": "labkit.compiling.torch_jit:torch_compile",
    "TorchCompile": "labkit.compiling.torch_jit:TorchCompile",
    "break_even_calls": "labkit.compiling.torch_jit:break_even_calls",
    "to_jax": "labkit.compiling.jax_port:to_jax",
    "JaxModel": "labkit.compiling.jax_port:JaxModel",
    "jax_jit": "labkit.compiling.jax_port:jax_jit",
    "JaxJit": "labkit.compiling.jax_port:JaxJit",
}

__all__ = sorted(_API)

__getattr__, __dir__ = namespace(globals(), _API, "lk.compile name")
