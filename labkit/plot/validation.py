"""The simulator's honesty in one picture: predicted against measured time, on log axes (labs 00 and 01)."""

from __future__ import annotations


def validation(report, ax=None):
    """Scatter every prediction of a ``labkit validate`` report against its measurement (lab 00).

    Points on the diagonal are exact; the dashed lines are ±25%. Colour is the runtime, and held-out
    architectures (``validate(held_out=True)``) are drawn as open markers beside the zoo's filled ones.

    >>> from labkit.calibration.validate import ValidationReport, ValidationRow
    >>> rows = (ValidationRow("mlp", "torch", 1, 1e-4, 1.2e-4), ValidationRow("resnet18@64", "torch", 1, 9e-3, 1e-2,
    ...         "conv", held_out=True))
    >>> ax = validation(ValidationReport(rows, "fp32", 2, 1.0))
    >>> len(ax.collections)
    2
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    colours = {"torch": "tab:red", "onnxruntime": "tab:blue"}
    for (runtime, held_out), rows in _groups(report.rows).items():
        x = [r.measured_s * 1e3 for r in rows]
        y = [r.predicted_s * 1e3 for r in rows]
        colour = colours.setdefault(runtime, f"C{len(colours)}")   # other runtimes (e.g. "graph bf16"): in turn
        ax.scatter(x, y, s=28, label=f"{runtime}, {'held-out' if held_out else 'zoo'}",
                   facecolors="none" if held_out else colour, edgecolors=colour)
    times = [t * 1e3 for r in report.rows for t in (r.measured_s, r.predicted_s)]
    lo, hi = min(times) / 1.5, max(times) * 1.5
    ax.plot([lo, hi], [lo, hi], color="black", lw=1)
    for f in (0.75, 1.25):
        ax.plot([lo, hi], [lo * f, hi * f], color="gray", lw=0.8, ls="--")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="measured (ms)",
           ylabel="predicted (ms)",
           title=f"median |error| {report.median_abs_error:.0%}, median signed {report.median_signed_error:+.0%}")
    ax.legend(fontsize="small", loc="upper left")
    return ax


def _groups(rows) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.runtime, r.held_out), []).append(r)
    return groups
