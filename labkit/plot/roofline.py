"""``lk.plot``: the pictures the labs draw (roofline first; lab 00 and lab 01).
"""

from __future__ import annotations

from labkit.estimate import estimate

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# roofs in dark neutral colours and their own dash, so they never look like an op class's colour
_ROOF_STYLES = (("black", "-"), ("dimgray", "--"), ("darkgoldenrod", ":"), ("navy", "-."))
# fixed order, so an op class keeps its colour from one plot to the next (labkit.profile.core.OP_CLASSES)
_CLASS_ORDER = ("conv", "dwconv", "matmul", "attention", "elementwise", "norm", "pool", "memory")

def _class_colour(op_class: str):
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    idx = _CLASS_ORDER.index(op_class) if op_class in _CLASS_ORDER else len(_CLASS_ORDER)
    return cmap(idx % 10)


def roof(device, dtype: str = "fp32") -> tuple[float, float, float]:
    """The attainable roof of `device` at `dtype`: ``(peak_flops_per_s, bytes_per_s, ridge_flop_per_byte)``.

    Both roofs are derated by the device's efficiencies (``eff_compute``, ``eff_mem``); the ridge is the
    arithmetic intensity where they meet. Introduced in lab 00.

    >>> from labkit.targets import Device
    >>> roof(Device("toy", "edge-gpu", "x", {"fp32": 1e12}, 1e11, 1e9, 1, 10, eff_compute=0.5, eff_mem=0.8))
    (500000000000.0, 80000000000.0, 6.25)
    """
    from labkit.dtypes import normalize_dtype
    from labkit.estimate import peak_flops

    dtype = normalize_dtype(dtype)
    compute = peak_flops(device, dtype) * device.eff_compute
    memory = device.mem_bw_bytes_per_s * device.eff_mem
    return compute, memory, compute / memory


def roofline(profile, device, dtype: str = "fp32", ax=None, *, batch: int | None = None):
    """Log-log roofline of `profile` on one device or a list of devices; returns the matplotlib Axes (lab 00).

    Each device draws its roof ``min(peak * eff_compute, intensity * bandwidth * eff_mem)`` with its ridge
    point marked; each layer is a point at (arithmetic intensity FLOP/byte, attained FLOP/s from
    ``lk.estimate``), coloured by op class, in the marker of its device. Layers without FLOPs (reshapes,
    copies) have no place on a log axis and are left out.

    >>> import labkit as lk, torch
    >>> p = lk.profile(torch.nn.Linear(256, 256), torch.zeros(4, 256))
    >>> ax = lk.plot.roofline(p, ["raspberry-pi-5", "jetson-orin-nano", "h100-sxm"], dtype="fp32")
    >>> len(ax.lines)        # a roof and a ridge marker per device; lab 00 adds "local", this machine
    6
    """
    import matplotlib.pyplot as plt

    devices = list(device) if isinstance(device, (list, tuple)) else [device]
    if not devices:
        raise ValueError("roofline needs at least one device (a Device or a catalog name).")
    if any(isinstance(d, str) for d in devices):
        from labkit.targets import device as lookup

        devices = [lookup(d) if isinstance(d, str) else d for d in devices]
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")

    ests = [estimate(profile, d, dtype, batch) for d in devices]
    points = [[lay for lay in e.layers if lay.flops > 0 and lay.bytes > 0] for e in ests]
    xs = [lay.intensity for pts in points for lay in pts]
    lo, hi = None, None
    for d in devices:
        _, _, ridge = roof(d, dtype)
        lo = min(lo or ridge / 10, ridge / 10, *(x / 3 for x in xs))
        hi = max(hi or ridge * 10, ridge * 10, *(x * 3 for x in xs))

    n_points = 64
    grid = [lo * (hi / lo) ** (i / (n_points - 1)) for i in range(n_points)]   # FLOP/byte, log-spaced
    seen_classes: set[str] = set()
    for i, (d, pts) in enumerate(zip(devices, points)):
        compute, memory, ridge = roof(d, dtype)
        marker = _MARKERS[i % len(_MARKERS)]
        colour, dash = _ROOF_STYLES[i % len(_ROOF_STYLES)]
        ax.plot(grid, [min(compute, x * memory) for x in grid], lw=2, color=colour, linestyle=dash,
                label=f"{d.name} roof (ridge {ridge:.3g} FLOP/B, marker {marker})")
        ax.plot([ridge], [compute], marker=marker, ms=9, color=colour, linestyle="none",
                markerfacecolor="white", markeredgewidth=2, label="_nolegend_")
        by_class: dict[str, list] = {}
        for lay in pts:
            by_class.setdefault(lay.op_class, []).append(lay)
        for op_class, lays in by_class.items():
            label = op_class if op_class not in seen_classes else "_nolegend_"
            seen_classes.add(op_class)
            ax.scatter([lay.intensity for lay in lays], [lay.flops_per_s for lay in lays], marker=marker,
                       color=_class_colour(op_class), edgecolors="black", linewidths=0.4, s=30,
                       label=label, zorder=3)

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("attained FLOP/s")
    names = " vs ".join(d.name for d in devices)
    ax.set_title(f"Roofline: {names} — {ests[0].dtype}, batch {ests[0].batch}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))   # outside: never on a point
    return ax


# ------------------------------------------------------------------------------------- timeline (lab 06)

# lane -> (colour, hatch, legend text): the legend says exactly what each bar is
_LANES = {"edge": ("tab:green", "", "edge compute"),
          "uplink": ("tab:orange", "", "upload (bytes / uplink rate)"),
          "rtt": ("lightgrey", "//", "half the round-trip time (each way)"),
          "cloud": ("tab:blue", "", "cloud compute"),
          "downlink": ("tab:purple", "", "download (bytes / downlink rate)")}


def timeline(plan, ax=None, *, baselines: bool = False):
    """Gantt chart of one Plan or a list of Plans from ``lk.partition``: one row each; returns the Axes (lab 06).

    Bars, in sequence: edge compute, upload, half the RTT (grey, hatched), cloud compute, the other half of
    the RTT, download, coloured by phase and named in the legend; the RTT is never folded into another bar.
    ``baselines=True`` adds the plan's all-edge and all-cloud rows under it.

    >>> import labkit as lk
    >>> p = lk.profile(lk.zoo.build("mlp"), lk.zoo.example("mlp"))
    >>> plans = [lk.partition(p, edge="raspberry-pi-5", cloud="l4", link=k) for k in ("3g", "ethernet")]
    >>> ax = lk.plot.timeline(plans)
    >>> [t.get_text().split(":")[0] for t in ax.get_yticklabels()]
    ['3g', 'ethernet']
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from labkit.partition.plan import Plan, timeline_of

    plans = list(plan) if isinstance(plan, (list, tuple)) else [plan]
    if not plans or not all(isinstance(p, Plan) for p in plans):
        raise ValueError("timeline takes a Plan from lk.partition(...), or a non-empty list of them.")
    rows = []                                   # (label, segments)
    for p in plans:
        split = p.split_after
        where = ("all-edge" if not p.cloud_layers else "all-cloud" if not p.edge_layers
                 else f"after {split}" if split is not None else f"{len(p.edge_layers)} edge / {len(p.cloud_layers)} cloud")
        rows.append((f"{p.link}: {p.objective}-optimal, {where}", p.timeline))
        if baselines:
            rows.append((f"{p.link}: all-edge", timeline_of(p.all_edge)))
            rows.append((f"{p.link}: all-cloud", timeline_of(p.all_cloud)))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.6 * len(rows) + 1.4), layout="constrained")
    scale, unit = (1e3, "ms") if max(s.end_s for _, segs in rows for s in segs) < 2 else (1.0, "s")
    for y, (_, segs) in enumerate(rows):
        for seg in segs:
            colour, hatch, _ = _LANES[seg.lane]
            ax.broken_barh([(seg.start_s * scale, (seg.end_s - seg.start_s) * scale)], (y - 0.35, 0.7),
                           facecolors=colour, hatch=hatch, edgecolor="black", linewidth=0.4)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()                           # first plan on top
    ax.set_xlabel(f"time ({unit})")
    first = plans[0]
    ax.set_title(f"{first.model}: {first.edge} → {first.cloud}")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(handles=[Patch(facecolor=c, hatch=h, edgecolor="black", label=text) for c, h, text in _LANES.values()],
              fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return ax
