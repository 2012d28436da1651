"""Pictures of token-level LLM serving (lab 09): the KV cache filling up over time, and TTFT against TPOT for a
set of serving configurations (chunked prefill, disaggregation) with the SLO corner shaded.

"""

from __future__ import annotations

import numpy as np


def _labels(results, labels):
    labels = list(labels) if labels is not None else [r.scheduler for r in results]
    if len(labels) != len(results):
        raise ValueError(f"labels has {len(labels)} names for {len(results)} results.")
    return labels


def kv_occupancy(*results, labels=None, replica: int = 0, ax=None):
    """The KV cache in use on one replica (fraction of its capacity) over time, one line per LLMResult, with its
    preemptions in the legend (lab 09): a line pinned at 1.0 is a batch capped by KV memory, not by max_batch.

    >>> import labkit as lk
    >>> w = lk.deploy.trace("azure-conv", duration_s=20)
    >>> rs = [lk.deploy.serve_llm_sim(w, "llama-3.1-8b", d) for d in ("h100-sxm", "l4")]
    >>> ax = lk.plot.kv_occupancy(*rs, labels=["H100", "L4"])
    >>> len(ax.lines)           # one line per result and the full-cache line
    3
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("kv_occupancy needs at least one LLMResult (from lk.deploy.serve_llm_sim).")
    labels = _labels(results, labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    for r, label in zip(results, labels):
        if not 0 <= replica < r.replicas:
            raise ValueError(f"replica {replica} is not in {label!r}, which has replicas 0..{r.replicas - 1}.")
        occ = r.kv_occupancy()
        occ = occ[occ[:, 1] == replica]
        ax.step(occ[:, 0], occ[:, 2], where="post", lw=1,
                label=f"{label}: {r.kv_capacity_tokens:,} tokens, {r.preemptions:,} preemptions")
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set(xlabel="time (s)", ylabel="KV cache in use (fraction)", ylim=(0, 1.05),
           title=f"KV cache of replica {replica} over time")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return ax


def ttft_tpot(results, labels=None, pct: int = 99, ttft_slo_s: float | None = None,
              tpot_slo_s: float | None = None, ax=None):
    """Each LLMResult as a point (p`pct` TTFT, p`pct` TPOT) on log axes, labelled without overlap, the corner that
    meets both SLOs shaded (lab 09): chunked prefill moves a pool along this trade-off. Returns (Axes, rows) where rows
    are (label, ttft_s, tpot_s).

    >>> import labkit as lk
    >>> w = lk.deploy.trace("azure-code", duration_s=20)
    >>> rs = [lk.deploy.serve_llm_sim(w, "llama-3.1-8b", "h100-sxm", chunk_tokens=c) for c in (None, 512)]
    >>> ax, rows = lk.plot.ttft_tpot(rs, labels=["whole prompts", "chunks of 512"], ttft_slo_s=1, tpot_slo_s=0.05)
    >>> [label for label, _, _ in rows]
    ['whole prompts', 'chunks of 512']
    """
    import matplotlib.pyplot as plt

    from labkit.deploy.llm_result import PCTS
    from labkit.plot.labels import place_labels

    results = list(results)
    if not results:
        raise ValueError("ttft_tpot needs at least one LLMResult (from lk.deploy.serve_llm_sim).")
    if pct not in PCTS:
        from labkit.args import unknown_name

        raise unknown_name("pct", pct, PCTS)
    labels = _labels(results, labels)
    rows = [(label, r.percentiles("ttft_s")[pct], r.percentiles("tpot_s")[pct]) for r, label in zip(results, labels)]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    xs = np.array([t for _, t, _ in rows]) * 1e3
    ys = np.array([t for _, _, t in rows]) * 1e3
    ax.scatter(xs, ys, s=40, zorder=3, color="tab:blue")
    ax.set(xscale="log", yscale="log", xlabel=f"TTFT p{pct} (ms)", ylabel=f"TPOT p{pct} (ms)",
           title=f"time to first token against time per output token (p{pct})")
    finite = np.isfinite(xs) & np.isfinite(ys)
    xlo, xhi = (xs[finite].min() / 2, xs[finite].max() * 2) if finite.any() else (1.0, 10.0)
    ylo, yhi = (ys[finite].min() / 2, ys[finite].max() * 2) if finite.any() else (1.0, 10.0)
    if ttft_slo_s is not None:
        xlo, xhi = min(xlo, ttft_slo_s * 1e3 / 2), max(xhi, ttft_slo_s * 1e3 * 2)
    if tpot_slo_s is not None:
        ylo, yhi = min(ylo, tpot_slo_s * 1e3 / 2), max(yhi, tpot_slo_s * 1e3 * 2)
    ax.set(xlim=(xlo, xhi), ylim=(ylo, yhi))
    if ttft_slo_s is not None or tpot_slo_s is not None:
        right = ttft_slo_s * 1e3 if ttft_slo_s is not None else xhi
        top = tpot_slo_s * 1e3 if tpot_slo_s is not None else yhi
        ax.fill_between([xlo, right], ylo, top, color="tab:green", alpha=0.12, lw=0, label="meets the SLO")
        ax.legend(fontsize="small", loc="upper right")
    ax.grid(True, alpha=0.3)
    place_labels(ax, xs[finite], ys[finite], [label for (label, _, _), ok in zip(rows, finite) if ok])
    return ax, rows
