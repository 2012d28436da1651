"""``lk.deploy.compare``: a simulated Result beside a served (measured) one, with bootstrap intervals (lab 07).

"""

from __future__ import annotations

import numpy as np

STATS = ("p50_s", "p90_s", "p99_s", "throughput_rps")


def _stat(lat: np.ndarray, span: float, which: str) -> np.ndarray:
    """The statistic over bootstrap resamples (rows of `lat`)."""
    if which == "throughput_rps":
        return np.full(lat.shape[0], lat.shape[1] / span)
    return np.percentile(lat, float(which[1:3]), axis=1)


def compare(simulated, served, n_boot: int = 500, seed: int = 0, level: float = 0.95):
    """p50/p90/p99 latency and throughput of two Results side by side, each with a bootstrap interval (resampling
    requests), and the served/simulated ratio (lab 07). Returns a pandas DataFrame indexed by statistic. Two
    token-level results (``serve_llm_sim`` / ``serve_llm``, lab 09) compare TTFT and TPOT instead (``compare_llm``).

    >>> import labkit as lk
    >>> w = lk.deploy.poisson(50, 60, seed=0)
    >>> a = lk.deploy.simulate(lk.deploy.Pool("a", device="l4", service_s=0.010), w)
    >>> b = lk.deploy.simulate(lk.deploy.Pool("a", device="l4", service_s=0.011), w)
    >>> t = lk.deploy.compare(a, b)
    >>> list(t.columns)
    ['simulated', 'simulated_lo', 'simulated_hi', 'served', 'served_lo', 'served_hi', 'ratio']
    >>> bool(t.loc["p50_s", "ratio"] > 1)
    True
    """
    if hasattr(simulated, "ttft_s") and hasattr(served, "ttft_s"):     # token-level (lab 09): TTFT and TPOT
        return compare_llm(simulated, served)
    import pandas as pd

    rng = np.random.default_rng(seed)
    lo_q, hi_q = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    rows = {}
    for stat in STATS:
        row = {}
        for label, r in (("simulated", simulated), ("served", served)):
            lat = r.latency_s
            if lat.size == 0:
                row.update({label: np.nan, f"{label}_lo": np.nan, f"{label}_hi": np.nan})
                continue
            boot = lat[rng.integers(0, lat.size, (n_boot, lat.size))]
            vals = _stat(boot, r.span_s, stat)
            row[label] = r.throughput_rps if stat == "throughput_rps" else r.percentile_s(float(stat[1:3]))
            row[f"{label}_lo"], row[f"{label}_hi"] = np.percentile(vals, [lo_q, hi_q])
        row["ratio"] = row["served"] / row["simulated"]
        rows[stat] = row
    return pd.DataFrame(rows).T[["simulated", "simulated_lo", "simulated_hi", "served", "served_lo", "served_hi",
                                 "ratio"]]


def compare_llm(simulated, served):
    """TTFT and TPOT p50/p99 (and output tokens/s) of a simulation beside a served run, with the relative error
    (served / simulated - 1) (lab 09). Returns a pandas DataFrame indexed by statistic.

    >>> import labkit as lk
    >>> w = lk.deploy.Workload([0.0, 0.0], {"prompt_tokens": [100, 100], "output_tokens": [5, 5]})
    >>> a = lk.deploy.serve_llm_sim(w, "llama-3.1-8b", "h100-sxm")
    >>> t = lk.deploy.compare(a, a)
    >>> list(t.columns), float(t.loc["ttft_p50_s", "error"])
    (['simulated', 'served', 'error'], 0.0)
    """
    import pandas as pd

    rows = {}
    for metric in ("ttft_s", "tpot_s"):
        ps, pv = simulated.percentiles(metric), served.percentiles(metric)
        for p in (50, 99):
            rows[f"{metric[:-2]}_p{p}_s"] = (ps[p], pv[p])
    rows["tokens_out_per_s"] = (simulated.tokens_out_per_s, served.tokens_out_per_s)
    df = pd.DataFrame(rows, index=["simulated", "served"]).T
    df["error"] = df["served"] / df["simulated"] - 1
    extra = getattr(served, "serve_overhead_s", None)
    if extra is not None:              # the simulation plus Serve's own part of a lone request's TTFT
        df["sim_plus_serve"] = df["simulated"] + [extra, extra, 0.0, 0.0, 0.0]
        df["error_plus_serve"] = df["served"] / df["sim_plus_serve"] - 1
    return df
