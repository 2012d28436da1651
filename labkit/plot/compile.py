"""Pictures of what compiling buys: the break-even of a compile and the nodes ORT fuses per level (lab 04).
"""

from __future__ import annotations

import math

from labkit.args import Number, check
from labkit.compile.torch_jit import TorchCompile, break_even_calls

_EAGER, _COMPILED = "tab:blue", "tab:orange"

def _timings(result) -> tuple[float, float, float, str]:
    """(compile_s, eager_s, compiled_s, what) from a TorchCompile or a (compile_s, eager_s, compiled_s) triple."""
    if isinstance(result, TorchCompile):
        return result.compile_s, result.eager.p50_s, result.compiled.p50_s, f"torch.compile ({result.backend})"
    if isinstance(result, (tuple, list)) and len(result) == 3:
        compile_s, eager_s, compiled_s = result
        break_even_calls(compile_s, eager_s, compiled_s)        # validates the three numbers
        return float(compile_s), float(eager_s), float(compiled_s), "compiled"
    raise ValueError("result must be an lk.compile.TorchCompile or a (compile_s, eager_s, compiled_s) triple of "
                     f"seconds, got {type(result).__name__}"
                     + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "") + ".")


def break_even(result, calls=None, ax=None):
    """Cumulative time against the number of calls, eager vs compiled, with the break-even marked (lab 04).

    The eager line is ``n × eager_s``; the compiled line starts at ``compile_s`` and rises by ``compiled_s``
    per call. They cross after ``lk.compile.break_even_calls`` calls, marked and labelled; when the compiled
    model is not faster they never cross, and the title says so. `result`: an ``lk.compile.TorchCompile`` or
    a ``(compile_s, eager_s, compiled_s)`` triple of seconds; `calls`: the last call count on the x axis
    (default: twice the break-even). Returns the matplotlib Axes.

    >>> import labkit as lk
    >>> ax = lk.plot.break_even((2.0, 3e-3, 1e-3))
    >>> ax.get_title()
    'compiled: pays off after 1,000 calls'
    """
    import matplotlib.pyplot as plt

    compile_s, eager_s, compiled_s, what = _timings(result)
    n_even = break_even_calls(compile_s, eager_s, compiled_s)
    if calls is None:
        if math.isfinite(n_even):
            calls = max(2 * n_even, 10)
        else:       # never crosses: show long enough for eager to spend twice the compile time
            calls = max(2 * compile_s / eager_s, 10) if eager_s > 0 else 100
    else:
        calls = check("calls (the end of the x axis)", calls, Number(low=0, low_open=True))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4), layout="constrained")

    scale, unit = (1.0, "s") if max(compile_s + compiled_s * calls, eager_s * calls) >= 1 else (1e3, "ms")
    xs = [0.0, float(calls)]
    ax.plot(xs, [0.0, eager_s * calls * scale], color=_EAGER, lw=2,
            label=f"eager: {eager_s * 1e6:.1f} µs per call")
    ax.plot(xs, [compile_s * scale, (compile_s + compiled_s * calls) * scale], color=_COMPILED, lw=2,
            label=f"{what}: {compile_s:.3g} s to compile, then {compiled_s * 1e6:.1f} µs per call")
    if math.isfinite(n_even):
        y = eager_s * n_even * scale
        ax.plot([n_even], [y], marker="o", ms=9, color="black", linestyle="none", gid="break-even",
                label=f"break-even: {n_even:,.0f} calls")
        ax.axvline(n_even, color="gray", linestyle=":", lw=1)
        ax.annotate(f"{n_even:,.0f} calls", (n_even, y), textcoords="offset points", xytext=(8, -14))
        beyond = " (beyond this axis)" if n_even > calls else ""
        ax.set_title(f"{what}: pays off after {n_even:,.0f} calls{beyond}")
    else:
        ax.set_title(f"{what} is not faster ({compiled_s * 1e6:.1f} vs {eager_s * 1e6:.1f} µs per call): "
                     "it never pays off")
    ax.set_xlim(0, calls)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("number of calls")
    ax.set_ylabel(f"cumulative time ({unit})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    return ax


def fusions(levels, ax=None):
    """Nodes by op type at each ONNX Runtime optimisation level, stacked, with the total on top (lab 04).

    `levels`: an ``lk.compile.OrtLevels`` (from ``lk.compile.ort_levels``). An op type keeps its colour
    across levels, so a fusion shows as colours disappearing and a new one appearing. Returns the Axes.

    >>> import labkit as lk
    >>> r = lk.compile.ort_levels(lk.zoo.build("mlp"), lk.zoo.example("mlp"), min_time_s=0.01)
    >>> ax = lk.plot.fusions(r)
    >>> [t.get_text() for t in ax.texts]       # total nodes per level
    ['6', '6', '4', '4']
    """
    import matplotlib
    import matplotlib.pyplot as plt

    from labkit.compile.ort import OrtLevels

    if not isinstance(levels, OrtLevels):
        raise ValueError(f"levels must be an lk.compile.OrtLevels (from lk.compile.ort_levels), "
                         f"got {type(levels).__name__}.")
    ops = sorted({op for c in levels.counts.values() for op in c})
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
    cmap = matplotlib.colormaps["tab20"]
    pos = range(len(levels.levels))
    bottom = [0] * len(levels.levels)
    for i, op in enumerate(ops):
        heights = [levels.counts[lv].get(op, 0) for lv in levels.levels]
        ax.bar(pos, heights, bottom=bottom, color=cmap(i % 20), edgecolor="black", linewidth=0.4, label=op)
        bottom = [b + h for b, h in zip(bottom, heights)]
    for p, lv in zip(pos, levels.levels):
        ax.text(p, levels.nodes(lv), str(levels.nodes(lv)), ha="center", va="bottom")
    ax.set_xticks(list(pos), list(levels.levels))
    ax.set_xlabel("ONNX Runtime graph optimisation level")
    ax.set_ylabel("nodes in the graph that runs")
    ax.set_ylim(0, max(bottom) * 1.12 + 0.5)
    ax.set_title("What each level did to the graph")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return ax
