"""Per-layer work of a profile: FLOPs and bytes moved, layer by layer, labelled by block (lab 01).
"""

from __future__ import annotations


def blocks(names) -> list[tuple[str, int, int]]:
    """Consecutive layers grouped by their block, as ``(label, first index, last index + 1)``.

    A layer's block is the first two parts of its dotted name (``features.3.conv1.0`` -> ``features.3``). A
    top-level layer (``add_2``) joins the block it sits inside when the layers on both sides share one.

    >>> blocks(["features.0.0", "features.1.conv1.0", "add", "features.1.relu", "pool", "fc"])
    [('features.0', 0, 1), ('features.1', 1, 4), ('pool', 4, 5), ('fc', 5, 6)]
    """
    names = list(names)
    keys = [".".join(n.split(".")[:2]) if "." in n else None for n in names]
    for i, k in enumerate(keys):
        if k is None:
            before = keys[i - 1] if i > 0 else None
            after = next((a for a in keys[i + 1:] if a is not None), None)
            keys[i] = before if before is not None and before == after else names[i]
    out: list[tuple[str, int, int]] = []
    for i, k in enumerate(keys):
        if out and out[-1][0] == k:
            out[-1] = (k, out[-1][1], i + 1)
        else:
            out.append((k, i, i + 1))
    return out


def layer_work(profile, ax=None, *, max_blocks: int = 24):
    """FLOPs per layer as bars coloured by op class, bytes moved as a black tick on each; returns the Axes (lab 01).

    Layers stay in graph order; the x axis names the blocks (``features.3``), not each of the layers, and thin
    lines separate them. A tick above its bar is a layer that moves more bytes than it does FLOPs (intensity
    below 1 FLOP/byte). Layers without FLOPs are left out. With more than ``max_blocks`` blocks, every k-th
    layer is numbered instead.

    >>> import labkit as lk
    >>> p = lk.profile(lk.zoo.build("resnet"), lk.zoo.example("resnet"))
    >>> ax = lk.plot.layer_work(p)
    >>> [t.get_text() for t in ax.get_xticklabels()][:3]
    ['features.0', 'features.1', 'features.2']
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from labkit.plot.roofline import _class_colour

    work = [lay for lay in profile.layers if lay.flops > 0]
    if not work:
        raise ValueError("layer_work needs a profile with at least one layer that does FLOPs.")
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 4), layout="constrained")
    pos = range(len(work))
    moved = [lay.bytes for lay in work]           # weights + inputs + outputs
    ax.bar(pos, [lay.flops for lay in work], width=0.75, color=[_class_colour(lay.op_class) for lay in work],
           edgecolor="black", linewidth=0.3, zorder=2)
    ax.plot(pos, moved, linestyle="none", marker="_", markersize=9, markeredgewidth=2.2, color="black", zorder=3)
    ax.set_yscale("log")
    groups = blocks(lay.name for lay in work)
    if len(groups) <= max_blocks:
        for _, start, _ in groups[1:]:
            ax.axvline(start - 0.5, color="0.75", linewidth=0.8, zorder=1)
        ax.set_xticks([(start + end - 1) / 2 for _, start, end in groups], [g for g, _, _ in groups],
                      rotation=30, ha="right", fontsize=9)
        ax.set_xlabel("layers in graph order, by block")
    else:
        step = max(1, len(work) // 20)
        ax.set_xticks(range(0, len(work), step))
        ax.set_xlabel(f"layer number (graph order; every {step}th labelled)")
    ax.set_xlim(-0.7, len(work) - 0.3)
    ax.set_ylabel(f"per layer, batch {profile.batch}")
    ax.set_title(f"{profile.name}: FLOPs (bars) and bytes moved (ticks) per layer, {profile.dtype}")
    classes = list(dict.fromkeys(lay.op_class for lay in work))
    handles = [Patch(facecolor=_class_colour(c), edgecolor="black", linewidth=0.3, label=f"{c} FLOPs")
               for c in classes]
    handles.append(Line2D([], [], linestyle="none", marker="_", markersize=9, markeredgewidth=2.2, color="black",
                          label="bytes moved"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="y", which="major", alpha=0.3)
    return ax
