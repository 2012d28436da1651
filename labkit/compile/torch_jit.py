"""torch.compile measured honestly: compile time (the first call) apart from the steady state (lab 04).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass

from labkit.args import Number, check
from labkit.measure import Measurement, measure

BACKENDS = ("inductor", "aot_eager", "eager")
MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

def break_even_calls(compile_s: float, eager_s: float, compiled_s: float) -> float:
    """Calls after which compiling has paid for itself: ``compile_s / (eager_s - compiled_s)``;
    ``inf`` when the compiled model is not faster (lab 04).

    >>> break_even_calls(compile_s=10.0, eager_s=2e-3, compiled_s=1e-3)
    10000.0
    >>> break_even_calls(compile_s=10.0, eager_s=1e-3, compiled_s=1e-3)
    inf
    """
    compile_s = check("compile_s", compile_s, Number(low=0))
    eager_s = check("eager_s", eager_s, Number(low=0))
    compiled_s = check("compiled_s", compiled_s, Number(low=0))
    gain_s = eager_s - compiled_s                       # seconds saved per call
    return compile_s / gain_s if gain_s > 0 else math.inf


@dataclass(frozen=True, repr=False)
class TorchCompile:
    """torch.compile of one model on one input: compile time, steady state, eager baseline (lab 04).

    ``compile_s`` is the wall time of the first compiled call (tracing + code generation + one run);
    ``compiled`` and ``eager`` are :class:`labkit.Measurement` of later calls. ``backend`` is what ran;
    ``fallback`` says why it differs from ``requested_backend`` ("" when it does not).
    """

    requested_backend: str
    backend: str
    mode: str | None
    fallback: str
    compile_s: float
    compiled: Measurement
    eager: Measurement
    max_abs_diff: float            # max |compiled output - eager output|

    @property
    def speedup(self) -> float:
        """Eager p50 / compiled p50 (> 1: compiled is faster)."""
        return self.eager.p50_s / self.compiled.p50_s if self.compiled.p50_s > 0 else math.inf

    @property
    def break_even_calls(self) -> float:
        """Calls until the compile time is paid back (``inf`` when compiled is not faster)."""
        return break_even_calls(self.compile_s, self.eager.p50_s, self.compiled.p50_s)

    def to_frame(self):
        """One row per variant (eager, compiled) with p50_s, compile_s and the break-even call count."""
        import pandas as pd

        rows = {"eager": {"p50_s": self.eager.p50_s, "p95_s": self.eager.p95_s, "compile_s": 0.0},
                f"compiled ({self.backend})": {"p50_s": self.compiled.p50_s, "p95_s": self.compiled.p95_s,
                                               "compile_s": self.compile_s}}
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame["break_even_calls"] = [math.nan, self.break_even_calls]
        return frame

    def __repr__(self) -> str:
        note = f", fallback: {self.fallback}" if self.fallback else ""
        return (f"TorchCompile(backend={self.backend!r}, compile={self.compile_s:.3g} s, "
                f"eager p50={self.eager.p50_s * 1e6:.1f} µs, compiled p50={self.compiled.p50_s * 1e6:.1f} µs, "
                f"speedup={self.speedup:.2f}x, break-even={self.break_even_calls:.3g} calls{note})")


def _first_call(model, args, backend: str, mode):
    """(compiled callable, seconds of its first call, output) on a fresh dynamo state."""
    import torch

    torch._dynamo.reset()            # forget earlier compilations so the first call really compiles
    kwargs = {"backend": backend}
    if mode is not None:
        kwargs["mode"] = mode
    compiled = torch.compile(model, **kwargs)
    with torch.no_grad():
        t0 = time.perf_counter()
        out = compiled(*args)
        first_s = time.perf_counter() - t0
    return compiled, first_s, out


def torch_compile(model, example, mode=None, backend: str = "inductor", *, min_time_s: float = 0.2,
                  max_time_s: float = 3.0) -> TorchCompile:
    """Compile `model` with ``torch.compile`` and time the first call apart from the steady state (lab 04).

    `backend`: "inductor" (generated C++; needs a C++ compiler), "aot_eager" (traced, no code generation)
    or "eager" (dynamo only). When inductor cannot run (no compiler, or it raises), this falls back to
    "aot_eager" and says so in ``.fallback``. `mode` is passed to torch.compile (inductor only).
    It calls ``torch._dynamo.reset()`` first, so that the first call really compiles: other models you
    compiled earlier in the session compile again on their next call. Inductor's on-disk cache still makes
    a second run in a new process faster (measured here on the zoo mlp: ~27 s cold, ~9.5 s warm).

    >>> import labkit as lk
    >>> r = lk.compile.torch_compile(lk.zoo.build("mlp"), lk.zoo.example("mlp"), backend="aot_eager",
    ...                              min_time_s=0.01)
    >>> r.backend, r.max_abs_diff < 1e-5
    ('aot_eager', True)
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if backend not in BACKENDS:
        from labkit.args import unknown_name

        raise unknown_name("torch.compile backend", backend, BACKENDS)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}. Allowed: {', '.join(repr(m) for m in MODES)}.")
    if mode is not None and backend != "inductor":
        raise ValueError(f"mode={mode!r} applies to backend='inductor' only, got backend={backend!r}.")
    args = tuple(example) if isinstance(example, (tuple, list)) else (example,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise ValueError("example must be a tensor or a tuple of tensors (the model's inputs).")
    model = model.eval()

    used, fallback = backend, ""
    if backend == "inductor" and not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
        used, fallback = "aot_eager", "no C++ compiler found (inductor needs g++ or clang++)"
    try:
        compiled, first_s, out = _first_call(model, args, used, mode if used == "inductor" else None)
    except Exception as err:          # inductor failing to build is a fact to report, not a crash
        if used != "inductor":
            raise
        used, fallback = "aot_eager", f"inductor failed: {type(err).__name__}: {str(err)[:200]}"
        compiled, first_s, out = _first_call(model, args, used, None)

    with torch.no_grad():
        ref = model(*args)
        diff = max(float((a - b).abs().max()) for a, b in
                   zip(out if isinstance(out, (tuple, list)) else (out,),
                       ref if isinstance(ref, (tuple, list)) else (ref,)))
        timing = {"min_time_s": min_time_s, "max_time_s": max_time_s, "progress": False}
        eager = measure(model, *args, **timing)
        compiled_m = measure(compiled, *args, **timing)
    return TorchCompile(requested_backend=backend, backend=used, mode=mode, fallback=fallback,
                        compile_s=first_s, compiled=compiled_m, eager=eager, max_abs_diff=diff)
