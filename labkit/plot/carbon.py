"""Pictures of lab 12 (energy and carbon): a week of grid intensity, hour x month heat maps, savings against
the flexibility window, and the carbon / latency / cost Pareto front of a placement.

Reached as ``lk.plot.carbon_week``, ``lk.plot.carbon_heatmap``, ``lk.plot.carbon_savings`` and
``lk.plot.carbon_pareto``. Layering: imports labkit.carbon (and matplotlib inside each function).
"""

from __future__ import annotations


def _axes(ax, figsize=(9, 3.2)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def carbon_week(regions=("de", "gb", "fr"), start: str = "2020-06-01", days: int = 7, ax=None):
    """Grid intensity of each region over `days` days from `start` (2020, UTC); returns the Axes (lab 12).

    >>> import labkit as lk
    >>> ax = lk.plot.carbon_week(["de", "fr"], start="2020-03-02", days=2)
    >>> len(ax.lines)
    2
    """
    import pandas as pd

    from labkit.carbon.timeseries import SERIES_NAMES, series, series_code

    regions = [regions] if isinstance(regions, str) else list(regions)
    end = min(pd.Timestamp(start) + pd.Timedelta(days=days), pd.Timestamp("2021-01-01"))
    ax = _axes(ax)
    for r in regions:
        s = series(r, start=start, end=end)
        ax.plot(s.index, s.to_numpy(), label=SERIES_NAMES[series_code(r)], lw=1.2)
    ax.set_ylabel("gCO2e / kWh")
    ax.set_title(f"Grid carbon intensity, {pd.Timestamp(start):%d %b %Y} + {days} days (UTC)")
    ax.legend(fontsize="small", loc="upper right")
    ax.figure.autofmt_xdate()
    return ax


def carbon_heatmap(region, ax=None):
    """Mean 2020 intensity of `region` by hour of day (UTC, rows) and month (columns); returns the Axes (lab 12).

    >>> import labkit as lk
    >>> ax = lk.plot.carbon_heatmap("gb")
    >>> ax.images[0].get_array().shape
    (24, 12)
    """
    from labkit.carbon.timeseries import profile

    p = profile(region)
    ax = _axes(ax, figsize=(5, 4.5))
    im = ax.imshow(p.hour_month.to_numpy(), aspect="auto", origin="lower", cmap="RdYlGn_r")
    ax.set_xticks(range(12), [str(m) for m in range(1, 13)])
    ax.set_yticks(range(0, 24, 3))
    ax.set_xlabel("month (2020)")
    ax.set_ylabel("hour of day (UTC)")
    ax.set_title(f"{p.name}: mean gCO2e/kWh")
    ax.figure.colorbar(im, ax=ax, shrink=0.85)
    return ax


def carbon_savings(table, ax=None, *, ylabel: str = "emissions saved vs run-now (%)"):
    """Lines of savings against window size: `table` indexed by window (hours), one column per region (lab 12).

    >>> import labkit as lk, pandas as pd
    >>> ax = lk.plot.carbon_savings(pd.DataFrame({"de": [0, 5, 9], "fr": [0, 3, 4]}, index=[0, 2, 4]))
    >>> len(ax.lines)
    2
    """
    ax = _axes(ax, figsize=(6, 3.6))
    for col in table.columns:
        ax.plot(table.index, table[col].to_numpy(), marker="o", ms=3, label=str(col))
    ax.set_xlabel("flexibility window (hours)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def carbon_pareto(plan, ax=None):
    """Carbon per 1M requests against latency for every option of ``lk.placement``; the front in black (lab 12).

    >>> import labkit as lk, torch
    >>> p = lk.profile(torch.nn.Linear(64, 64), torch.zeros(1, 64))
    >>> ax = lk.plot.carbon_pareto(lk.placement(p, ["l4", "t4"], ["fr", "pl"], latency_bound_s=1.0))
    >>> len(ax.collections) >= 2
    True
    """
    t = plan.to_frame()
    ax = _axes(ax, figsize=(6.5, 4))
    for region, rows in t.groupby("region"):
        ax.scatter(rows["latency_s"] * 1e3, rows["carbon_g_per_1m"], s=18, alpha=0.6, label=region)
    front = plan.front
    ax.scatter(front["latency_s"] * 1e3, front["carbon_g_per_1m"], s=60, facecolors="none", edgecolors="black",
               label="Pareto front")
    ax.axvline(plan.latency_bound_s * 1e3, color="gray", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("gCO2e per 1M requests")
    ax.legend(fontsize="x-small", ncol=2)
    return ax
