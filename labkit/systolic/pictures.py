"""Pictures of the cycle-level systolic simulator: the PE grid cycle by cycle, and utilisation over time (lab 05).
"""

from __future__ import annotations

import numpy as np

# idle / useful MAC / MAC on padding: light grey, green, orange (colour-blind safe enough next to the labels)
_COLOURS = ("#eeeeee", "#2ca02c", "#ff7f0e")
_LABELS = ("idle", "useful MAC", "MAC on padding")

def _recorded(result):
    if getattr(result, "frames", None) is None:
        raise ValueError("this SimResult has no frames: run lk.systolic.simulate(A, B, rows, cols, record=True).")


def _draw(ax, result, t: int, annotate: bool):
    from matplotlib.colors import ListedColormap

    ax.imshow(result.frames[t], cmap=ListedColormap(_COLOURS), vmin=0, vmax=2)
    R, C = result.frames.shape[1:]
    if annotate:   # the row of A each PE holds: watch it move right and down the diagonal
        for i in range(R):
            for j in range(C):
                m = result.frames_m[t, i, j]
                if m >= 0:
                    ax.text(j, i, f"a{m}", ha="center", va="center", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"cycle {t} (fold {result.fold_of_cycle[t]})", fontsize=8)


def plot_frames(result, cycles=None, *, ncols: int = 6, annotate: bool = True):
    """Small multiples of the PE grid at the given cycles (default: every cycle of the first fold) (lab 05).

    Each panel is the R×C array in one cycle: green PEs do a useful MAC, orange ones multiply a padded zero
    weight, grey ones are idle; ``a3`` marks the row of A a PE holds. Returns the matplotlib Figure.

    >>> import numpy as np, labkit as lk
    >>> r = lk.systolic.simulate(np.ones((3, 3)), np.ones((3, 3)), rows=4, cols=4, record=True)
    >>> len(lk.systolic.plot_frames(r).axes) >= r.fold_cycles[0]
    True
    """
    import matplotlib.pyplot as plt

    _recorded(result)
    if cycles is None:
        cycles = range(result.fold_cycles[0])
    cycles = [int(t) for t in cycles]
    bad = [t for t in cycles if not 0 <= t < result.cycles]
    if bad or not cycles:
        raise ValueError(f"cycles must be a non-empty list of cycle numbers in 0..{result.cycles - 1}, got {bad}.")
    ncols = max(1, min(ncols, len(cycles)))
    nrows = -(-len(cycles) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows + 0.6), squeeze=False)
    for ax in axes.flat[len(cycles):]:
        ax.axis("off")
    for ax, t in zip(axes.flat, cycles):
        _draw(ax, result, t, annotate)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=c, label=lab) for c, lab in zip(_COLOURS, _LABELS)], loc="lower center",
               ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{result.M}x{result.K} @ {result.K}x{result.N} on a {result.rows}x{result.cols} array", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    fig.subplots_adjust(hspace=0.35)          # room for each panel's title above it
    return fig


def plot_busy(result, ax=None):
    """Fraction of PEs doing a useful MAC in every cycle, with fold boundaries and the mean (lab 05).

    Returns the matplotlib Axes. The dashed line is the mean, the simulated utilisation.

    >>> import numpy as np, labkit as lk
    >>> ax = lk.systolic.plot_busy(lk.systolic.simulate(np.ones((8, 6)), np.ones((6, 5)), rows=4, cols=4))
    >>> len(ax.lines)          # the busy fraction, its mean, and 3 boundaries between the 4 folds
    5
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.6))
    t = np.arange(result.cycles)
    ax.step(t, result.busy_per_cycle, where="mid", label="useful PEs / all PEs")
    ax.axhline(result.utilization, ls="--", color="black", label=f"mean = {result.utilization:.3f}")
    for edge in np.cumsum(result.fold_cycles)[:-1]:
        ax.axvline(edge - 0.5, color="grey", lw=0.6)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("cycle (grey lines: a new fold starts)")
    ax.set_ylabel("busy fraction")
    ax.legend(fontsize=8, loc="upper right")
    return ax


def slider(result, annotate: bool = True):
    """An ipywidgets slider over the cycles of a recorded SimResult, redrawing the PE grid (lab 05).

    Needs a live Jupyter kernel to move; returns the widget (``ipywidgets.interactive``).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    _recorded(result)

    def show(cycle: int = 0):
        fig, ax = plt.subplots(figsize=(2.2 + 0.35 * result.cols, 2.2 + 0.35 * result.rows))
        _draw(ax, result, cycle, annotate)
        ax.set_xlabel(f"busy {result.busy_per_cycle[cycle]:.2f}")
        plt.show()

    return widgets.interactive(show, cycle=widgets.IntSlider(0, 0, result.cycles - 1, 1, description="cycle"))
