"""Pictures of lab 07 (deploy a fleet): latency CDFs, a fleet's timeline, the batching knee.

"""

from __future__ import annotations

import numpy as np


def latency_cdf(*results, labels=None, slo_s: float | None = None, ax=None):
    """Empirical CDF of latency for one or more Results, log time axis, p99 marked (lab 07).

    >>> import labkit as lk
    >>> w = lk.deploy.poisson(50, 30, seed=0)
    >>> rs = [lk.deploy.simulate(lk.deploy.Pool("a", device="l4", service_s=s), w) for s in (0.005, 0.015)]
    >>> ax = lk.plot.latency_cdf(*rs, labels=["5 ms", "15 ms"], slo_s=0.05)
    >>> len(ax.lines)          # a curve per result, the SLO line and the p99 line
    4
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("latency_cdf needs at least one Result (from lk.deploy.simulate or serve).")
    labels = list(labels) if labels is not None else [r.workload or f"run {k}" for k, r in enumerate(results)]
    if len(labels) != len(results):
        raise ValueError(f"labels has {len(labels)} names for {len(results)} results.")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    for r, label in zip(results, labels):
        lat = np.sort(r.latency_s) * 1e3
        if lat.size:
            y = np.arange(1, lat.size + 1) / lat.size
            ax.step(lat, y, where="post", label=f"{label} (p99 {r.p99_s * 1e3:.3g} ms)")
    if slo_s is not None:
        ax.axvline(slo_s * 1e3, color="black", linestyle="--", label=f"SLO {slo_s * 1e3:.3g} ms")
    ax.axhline(0.99, color="gray", linewidth=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def fleet_timeline(result, window_s: float | None = None, slo_s: float | None = None, axes=None):
    """Three stacked panels over time: offered load (req/s), replicas per pool (alive and running), rolling p99
    with the SLO line (lab 07). Returns the array of Axes.

    >>> import labkit as lk
    >>> w = lk.deploy.diurnal(200, 20, period_s=300, duration_s=300, seed=0)
    >>> auto = lk.deploy.Autoscaling(min_replicas=1, max_replicas=8, upscale_delay_s=2, downscale_delay_s=20)
    >>> r = lk.deploy.simulate(lk.deploy.Pool("gpu", device="l4", service_s=0.02, autoscaling=auto), w)
    >>> axes = lk.plot.fleet_timeline(r, slo_s=0.1)
    >>> len(axes)
    3
    """
    import matplotlib.pyplot as plt

    span = result.span_s
    window = window_s or max(span / 100, 1e-3)
    edges = np.arange(0, span + window, window)
    if axes is None:
        _, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True, layout="constrained")
    counts, _ = np.histogram(result.arrival_s, edges)
    axes[0].step(edges[:-1], counts / window, where="post", color="tab:gray")
    axes[0].set_ylabel("offered (req/s)")
    tl = result.replicas
    for k, p in enumerate(result.pools):
        rows = tl[tl[:, 1] == k]
        line = axes[1].step(rows[:, 0], rows[:, 2], where="post", label=f"{p.name} alive (paid)")
        axes[1].step(rows[:, 0], rows[:, 3], where="post", linestyle=":", color=line[0].get_color(),
                     label=f"{p.name} running")
    axes[1].set_ylabel("replicas")
    axes[1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ok = ~result.dropped_mask
    fin, lat = result.finish_s[ok], (result.finish_s - result.arrival_s)[ok]
    which = np.digitize(fin, edges) - 1
    p99 = np.full(edges.size - 1, np.nan)
    for b in np.unique(which):
        if 0 <= b < p99.size:
            p99[b] = np.percentile(lat[which == b], 99)
    axes[2].step(edges[:-1], p99 * 1e3, where="post", color="tab:red", label="p99 per window")
    if slo_s is not None:
        axes[2].axhline(slo_s * 1e3, color="black", linestyle="--", label=f"SLO {slo_s * 1e3:.3g} ms")
    axes[2].set_yscale("log")
    axes[2].set_ylabel("p99 (ms)")
    axes[2].set_xlabel("time (s)")
    axes[2].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for ax in axes:
        ax.grid(True, alpha=0.3)
    axes[0].set_title(f"{result.workload}: {result.requests:,} requests, {result.dropped:,} dropped")
    return axes


def batching_knee(pool, workload, sizes=(1, 2, 4, 8, 16, 32), ax=None, slo_s: float | None = None):
    """Throughput vs p99 as max_batch_size grows, for one pool on one workload; returns (Axes, rows) where
    rows are (max_batch_size, throughput_rps, p99_s) (lab 07).

    >>> import labkit as lk
    >>> pool = lk.deploy.Pool("gpu", device="l4", service_s={b: 0.004 + 0.001 * b for b in range(1, 9)},
    ...                       max_ongoing_requests=8, batching=lk.deploy.Batching(1, 0.005))
    >>> ax, rows = lk.plot.batching_knee(pool, lk.deploy.poisson(300, 20, seed=0), sizes=(1, 2, 4, 8))
    >>> [b for b, _, _ in rows]
    [1, 2, 4, 8]
    """
    import dataclasses

    import matplotlib.pyplot as plt

    from labkit.deploy import Batching, simulate

    batching = pool.batching or Batching()
    rows = []
    for b in sizes:
        p = dataclasses.replace(pool, batching=Batching(b, batching.batch_wait_timeout_s),
                                max_ongoing_requests=max(pool.max_ongoing_requests, b))
        r = simulate(p, workload)
        rows.append((b, r.throughput_rps, r.p99_s))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    ax.plot([t for _, t, _ in rows], [q * 1e3 for _, _, q in rows], marker="o")
    for b, t, q in rows:
        ax.annotate(f"B={b}", (t, q * 1e3), textcoords="offset points", xytext=(4, 4), fontsize="small")
    if slo_s is not None:
        ax.axhline(slo_s * 1e3, color="black", linestyle="--", label=f"SLO {slo_s * 1e3:.3g} ms")
        ax.legend(fontsize="small")
    ax.set_yscale("log")
    ax.set_xlabel("throughput (req/s)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title(f"batching knee: {pool.name} on {pool.device}, {workload.name}")
    ax.grid(True, alpha=0.3)
    return ax, rows
