"""Federated learning pictures (lab 10): accuracy vs rounds and vs bytes, label mix per client, round timeline.

"""

from __future__ import annotations


def _results(results):
    if hasattr(results, "rounds") and hasattr(results, "weights"):
        return {results.algorithm: results}
    if isinstance(results, dict) and results and all(hasattr(r, "rounds") for r in results.values()):
        return results
    raise ValueError("pass a Result from lk.federated.fedavg/fedsgd/fedprox, or a dict {label: Result}.")


def accuracy_rounds(results, target: float | None = None, axes=None):
    """Test accuracy vs rounds (left) and vs megabytes sent up (right), one line per run; returns the two Axes.

    ``results``: a Result or ``{label: Result}``; ``target`` draws a dashed line at that accuracy (lab 10).

    >>> import labkit as lk
    >>> s = lk.federated.split("digits", clients=4)
    >>> r = lk.federated.fedavg(s, rounds=2, fraction=0.5, progress=False)
    >>> left, right = lk.plot.accuracy_rounds({"FedAvg": r}, target=0.9)
    >>> left.get_xlabel(), right.get_xlabel()
    ('round', 'MB sent up (all clients)')
    """
    import matplotlib.pyplot as plt

    runs = _results(results)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained", sharey=True)
    left, right = axes
    for label, r in runs.items():
        frame = r.to_frame()
        left.plot(frame.index, frame["accuracy"], label=label)
        right.plot(frame["cum_bytes_up"] / 1e6, frame["accuracy"], label=label)
    for ax in (left, right):
        if target is not None:
            ax.axhline(target, color="grey", linestyle="--", linewidth=1)
        ax.grid(True, alpha=0.3)
    right.set_xscale("log")
    left.set_xlabel("round")
    right.set_xlabel("MB sent up (all clients)")
    left.set_ylabel("test accuracy")
    left.legend(fontsize="small")
    left.set_title("accuracy vs rounds")
    right.set_title("accuracy vs bytes")
    return left, right


def label_mix(split, ax=None, max_clients: int = 30):
    """Stacked bars: each client's label counts (the first ``max_clients``), titled with the mean EMD (lab 10).

    >>> import labkit as lk
    >>> ax = lk.plot.label_mix(lk.federated.split("digits", clients=10, scheme="shards"))
    >>> len(ax.patches)          # 10 clients x 10 labels
    100
    """
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np

    if not hasattr(split, "label_counts"):
        raise ValueError("label_mix takes a Split from lk.federated.split(...).")
    counts = split.label_counts[:max_clients]
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.5), layout="constrained")
    cmap = matplotlib.colormaps["tab10"]
    bottom = np.zeros(len(counts))
    for c in range(counts.shape[1]):
        ax.bar(range(len(counts)), counts[:, c], bottom=bottom, color=cmap(c % 10), label=str(c), width=0.85)
        bottom += counts[:, c]
    ax.set_xlabel("client")
    ax.set_ylabel("samples")
    ax.set_title(f"label mix per client — {split.scheme}, mean EMD {split.heterogeneity:.2f}")
    ax.legend(title="label", fontsize="x-small", ncols=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


_PHASES = (("download_s", "tab:purple", "download"), ("compute_s", "tab:green", "local training"),
           ("upload_s", "tab:orange", "upload"))


def round_timeline(result, round: int = 1, ax=None):
    """Gantt chart of one round: each selected client's download, training and upload; dropped in red (lab 10).

    The dashed line is the round's end (the slowest client used, or the deadline).

    >>> import labkit as lk
    >>> s = lk.federated.split("digits", clients=4)
    >>> f = lk.federated.fleet(s, devices=["rpi5", "a17"], links=["wifi"], slowdown=0.5)
    >>> r = lk.federated.fedavg(s, rounds=1, fraction=1.0, fleet=f, progress=False)
    >>> len(lk.plot.round_timeline(r).get_yticklabels())
    4
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not hasattr(result, "clients") or not hasattr(result, "weights"):
        raise ValueError("round_timeline takes a Result from lk.federated.fedavg/fedsgd/fedprox.")
    rows = [c for c in result.clients if c.round == round]
    if not rows:
        raise ValueError(f"round must be one of 1..{len(result.rounds)}, got {round!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.5), layout="constrained")
    for y, c in enumerate(rows):
        start = 0.0
        for attr, colour, _ in _PHASES:
            width = getattr(c, attr)
            ax.broken_barh([(start, width)], (y - 0.35, 0.7), facecolors=colour,
                           edgecolor="red" if c.dropped else "black", linewidth=2 if c.dropped else 0.4)
            start += width
    end = result.rounds[round - 1].round_s
    ax.axvline(end, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), [f"{c.client}: {c.device} / {c.link}" + (" (dropped)" if c.dropped else "")
                                     for c in rows])
    ax.invert_yaxis()
    ax.set_xlabel("simulated time in the round (s)")
    ax.set_title(f"round {round}: {result.algorithm}, ends at {end:.3g} s")
    handles = [Patch(facecolor=col, edgecolor="black", label=lab) for _, col, lab in _PHASES]
    handles.append(Patch(facecolor="white", edgecolor="red", linewidth=2, label="dropped (late)"))
    ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="x", alpha=0.3)
    return ax
