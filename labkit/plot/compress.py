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


def pareto(results, ax=None):
    """Accuracy against size on disk, marker area by measured latency; the Pareto-optimal models ringed (lab 02).

    A model is on the front when no other is smaller, more accurate and faster all at once.

    >>> import labkit as lk
    >>> data = lk.data.for_model("mlp")
    >>> model, _ = lk.zoo.load("mlp")
    >>> ax = lk.plot.pareto([lk.compress.report(model, data, name="fp32")])
    """
    import matplotlib.pyplot as plt

    reports = _reports(results)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.2))
    sizes_kib = [r.size_bytes / 1024 for r in reports]
    accs = [100 * r.accuracy for r in reports]
    lat_us = [1e6 * r.latency_s for r in reports]
    front = set(pareto_front([(r.size_bytes, -r.accuracy, r.latency_s) for r in reports]))
    biggest = max(lat_us) or 1.0
    # labels of points that (nearly) coincide are stacked, not drawn over each other: ties are common
    # (e.g. two int8 files of one model, same accuracy, a few KiB apart)
    span = (max(accs) - min(accs)) or 1.0
    stack = [sum(1 for j in range(i) if abs(math.log10(sizes_kib[i] / sizes_kib[j])) < 0.12
                 and abs(accs[i] - accs[j]) < 0.05 * span) for i in range(len(reports))]
    for i, r in enumerate(reports):
        area = 40 + 400 * lat_us[i] / biggest
        ax.scatter(sizes_kib[i], accs[i], s=area, alpha=0.75, zorder=3, label=f"{r.name} ({lat_us[i]:.0f} µs)")
        if i in front:
            ax.scatter(sizes_kib[i], accs[i], s=area + 120, facecolors="none", edgecolors="black",
                       linewidths=1.2, zorder=4)
        ax.annotate(r.name, (sizes_kib[i], accs[i]), textcoords="offset points", xytext=(6, 6 + 11 * stack[i]),
                    fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("size on disk (KiB, log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs size (marker area: measured latency; ringed: Pareto-optimal)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
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
