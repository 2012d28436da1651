"""Pictures of compression trade-offs: accuracy vs size vs latency (Pareto) and pruning sensitivity (labs 02, 03).
"""

from __future__ import annotations

import math


def _reports(results):
    from labkit.compress.report import Compressed, Report

    reports = [r.report if isinstance(r, Compressed) else r for r in results]
    if not reports or not all(isinstance(r, Report) for r in reports):
        raise ValueError("results must be a non-empty list of lk.compress Report or Compressed objects.")
    return reports


def pareto_front(points) -> list[int]:
    """Indices of the points (size, error, latency) that no other point beats on all three at once."""
    front = []
    for i, p in enumerate(points):
        dominated = any(all(q[k] <= p[k] for k in range(len(p))) and any(q[k] < p[k] for k in range(len(p)))
                        for j, q in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


def accuracy_limits(accs_pct, n_test: int | None = None) -> tuple[float, float]:
    """The accuracy axis (in %) for `accs_pct`: the data with a margin, never above 100 nor below 0.

    The margin is a tenth of the spread, at least half a point and at least two test images (when ``n_test``
    is known), so that equal accuracies do not fill the axis with noise.

    >>> accuracy_limits([99.44, 99.44, 99.17])
    (98.67, 99.94)
    >>> accuracy_limits([100.0, 97.5], n_test=200)     # two images of 200 = 1 point; never past 100%
    (96.5, 100.0)
    """
    lo, hi = float(min(accs_pct)), float(max(accs_pct))
    pad = max(0.1 * (hi - lo), 0.5, 2 * 100 / n_test if n_test else 0.0)
    return round(max(0.0, lo - pad), 6), round(min(100.0, hi + pad), 6)


def pareto(results, ax=None, *, n_test: int | None = None):
    """Accuracy against size on disk, marker area by measured latency; the Pareto-optimal models ringed (lab 02).

    A model is on the front when no other is smaller, more accurate and faster all at once. Each point is
    labelled with its name, moved aside with a leader line when points crowd; the legend gives each latency.
    The accuracy axis stops at 100%; with ``n_test`` (the number of test images) the y label states the
    resolution, one image in percentage points.

    >>> import labkit as lk
    >>> data = lk.data.for_model("mlp")
    >>> model, _ = lk.zoo.load("mlp")
    >>> ax = lk.plot.pareto([lk.compress.report(model, data, name="fp32")], n_test=len(data[1]))
    >>> bool(ax.get_ylim()[1] <= 100)
    True
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from labkit.plot.labels import place_labels

    reports = _reports(results)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
    sizes_kib = [r.size_bytes / 1024 for r in reports]
    accs = [100 * r.accuracy for r in reports]
    lat_us = [1e6 * r.latency_s for r in reports]
    front = set(pareto_front([(r.size_bytes, -r.accuracy, r.latency_s) for r in reports]))
    # marker area grows with log latency: a 50x slower variant must not hide the others under one disc
    fast, slow = min(lat_us), max(lat_us)
    span = math.log(slow / fast) if fast > 0 and slow > fast else 0.0
    areas = [50 + 250 * (math.log(t / fast) / span if span else 0.0) for t in lat_us]
    for i, r in enumerate(reports):
        # the biggest discs underneath, so a small one on top of a big one stays visible
        ax.scatter(sizes_kib[i], accs[i], s=areas[i], alpha=0.7, zorder=3 + (1 - areas[i] / 300),
                   edgecolors="white", linewidths=0.6, label=f"{r.name} ({lat_us[i]:,.0f} µs)")
        if i in front:
            ax.scatter(sizes_kib[i], accs[i], s=areas[i] + 110, facecolors="none", edgecolors="black",
                       linewidths=1.2, zorder=4)
    ax.set_xscale("log")
    lo_kib, hi_kib = min(sizes_kib), max(sizes_kib)
    ax.set_xlim(lo_kib / 1.35, hi_kib * 1.35)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.set_ylim(*accuracy_limits(accs, n_test))
    ax.set_xlabel("size on disk (KiB, log scale)")
    resolution = f"; one test image = {100 / n_test:.2g} points" if n_test else ""
    ax.set_ylabel(f"accuracy (%{resolution})")
    ax.set_title("Accuracy vs size (marker area: measured latency, log; ringed: Pareto-optimal)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="latency at batch 1",
              title_fontsize=7, markerscale=0.6)
    radii = [math.sqrt(a + 110 * (i in front)) / 2 for i, a in enumerate(areas)]
    place_labels(ax, sizes_kib, accs, [r.name for r in reports], fontsize=8, radii_pt=radii)
    return ax


def sensitivity(scan, ax=None):
    """Accuracy against sparsity, one line per layer pruned alone, the unpruned accuracy dashed (lab 03).

    A line that falls early is a sensitive layer (prune it less); a flat one can lose most of its weights.

    >>> from labkit.compress.prune import Sensitivity
    >>> scan = Sensitivity("toy", 0.9, ("a", "b"), (0.5, 0.9), (("a", 0.5, 0.9), ("a", 0.9, 0.8),
    ...                                                          ("b", 0.5, 0.7), ("b", 0.9, 0.2)))
    >>> ax = sensitivity(scan)
    >>> len(ax.lines)                  # one line per layer, and the unpruned accuracy
    3
    """
    import matplotlib.pyplot as plt

    from labkit.compress.prune import Sensitivity

    if not isinstance(scan, Sensitivity):
        raise ValueError(f"scan must be the Sensitivity that lk.compress.sensitivity returns, got "
                         f"{type(scan).__name__}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.2))
    xs = [100 * s for s in scan.sparsities]
    for layer in scan.layers:
        ax.plot(xs, [100 * scan.accuracy(layer, s) for s in scan.sparsities], marker="o", label=layer)
    ax.axhline(100 * scan.baseline_accuracy, color="black", linestyle="--", linewidth=1,
               label=f"unpruned ({100 * scan.baseline_accuracy:.1f}%)")
    ax.set_xlabel("sparsity of that layer alone (% of its weights zeroed)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Pruning sensitivity, one layer at a time ({scan.model})")
    ax.set_ylim(0, 102)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return ax
