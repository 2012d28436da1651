"""Replicate the two scenarios of Wiesner et al., "Let's Wait Awhile", Middleware 2021, with lk.carbon.schedule.

Not a test: prints the savings tables (and writes them to bench/results/carbon-replication.json) and the time
each took. ``bench/run.py`` calls ``rows()``.

Scenario I (periodic nightly jobs): one 30-minute job a night at 01:00 UTC through 2020, movable by +-w hours,
w = 0 .. 8 in 30-minute steps (the paper's simulator: windows 0 to 16 steps of 30 minutes either side). Savings
are against w = 0. Forecast error: Gaussian noise with std = e x mean intensity, mean over `seeds` draws.
Scenario II (ad-hoc ML training): 3,387 jobs submitted 09:00-17:00 on workdays, 4 to 89.5 h long, due by 09:00
the next workday (``lk.carbon.ml_jobs``), whole or interruptible, with forecast error e = 0, 5 %, 10 %.
Routing (lk.deploy.carbon_router, not in the paper): a clean and a dirty pool of 2 L4 replicas (10 ms per
request) at 250 req/s, so the clean pool alone cannot keep up; least-loaded vs carbon-aware under p99 bounds,
one simulated minute = one day of grid (time_scale 1440), on the 15th of every other month of 2020; grams on
the real series (idle power of both pools included: both stay up).

    .venv/bin/python bench/carbon.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REGIONS = ("de", "gb", "fr")


def scenario_nightly(windows_h=None, errors=(0.0, 0.05), seeds: int = 10):
    """{error: DataFrame index window_h, columns regions, savings % against w = 0}."""
    import numpy as np
    import pandas as pd

    import labkit as lk

    windows_h = windows_h if windows_h is not None else [w / 2 for w in range(17)]
    base = {r: lk.carbon.schedule(lk.carbon.nightly_jobs(0), r).carbon_g for r in REGIONS}
    out = {}
    for e in errors:
        table = {}
        for r in REGIONS:
            col = []
            for w in windows_h:
                jobs = lk.carbon.nightly_jobs(w)
                runs = [lk.carbon.schedule(jobs, r, forecast=e if e else "perfect", seed=s).carbon_g
                        for s in (range(seeds) if e else [0])]
                col.append(100 * (1 - float(np.mean(runs)) / base[r]))
            table[r] = col
        out[e] = pd.DataFrame(table, index=pd.Index(windows_h, name="window_h"))
    return out


def scenario_ml(errors=(0.0, 0.05, 0.10), seeds: int = 3, n: int = 3387):
    """DataFrame: one row per (region, interruptible, error): saved %, mean delay h, share of jobs worse than now."""
    import numpy as np
    import pandas as pd

    import labkit as lk

    jobs = lk.carbon.ml_jobs(n, seed=0)
    rows = []
    for r in REGIONS:
        for interruptible in (False, True):
            for e in errors:
                runs = [lk.carbon.schedule(jobs, r, interruptible=interruptible, forecast=e if e else "perfect",
                                           seed=s) for s in (range(seeds) if e else [0])]
                rows.append({"region": r, "interruptible": interruptible, "error_pct": round(100 * e),
                             "saved_pct": float(np.mean([s.saved_pct for s in runs])),
                             "mean_delay_h": float(np.mean([s.mean_delay_h for s in runs])),
                             "jobs_worse_pct": float(np.mean([100 * s.jobs_worse_than_now / len(jobs) for s in runs]))})
    return pd.DataFrame(rows).set_index(["region", "interruptible", "error_pct"])


def scenario_routing(pairs=(("fr", "de"), ("gb", "de")), bounds_ms=(20, 30, 50, 100), rate_rps=250.0,
                     duration_s=60.0, months=(1, 3, 5, 7, 9, 11)):
    """DataFrame: one row per (pair, bound): carbon saved %, p99 of each router (mean over days), share on the
    first pool. Grams are summed over the days before the percentage is taken."""
    import numpy as np
    import pandas as pd

    import labkit as lk

    rows = []
    for a, b in pairs:
        pools = [lk.deploy.Pool(a, device="l4", service_s=0.010, replicas=2, region=a),
                 lk.deploy.Pool(b, device="l4", service_s=0.010, replicas=2, region=b)]
        for bound in bounds_ms:
            tabs = [lk.deploy.carbon_tradeoff(pools, lk.deploy.poisson(rate_rps, duration_s, seed=m),
                                              latency_bound_s=bound / 1e3, start=f"2020-{m:02d}-15 00:00",
                                              time_scale=86400 / duration_s) for m in months]
            g = {k: sum(t.loc[k, "grams_g"] for t in tabs) for k in ("least-loaded", "carbon-aware")}
            p99 = {k: 1e3 * float(np.mean([t.loc[k, "p99_s"] for t in tabs])) for k in g}
            rows.append({"pair": f"{a} vs {b}", "bound_ms": bound, "saved_pct": 100 * (1 - g["carbon-aware"] /
                         g["least-loaded"]), "p99_least_loaded_ms": p99["least-loaded"],
                         "p99_carbon_aware_ms": p99["carbon-aware"],
                         "p99_lost_ms": p99["carbon-aware"] - p99["least-loaded"],
                         "share_first_pct": 100 * float(np.mean([t.loc["carbon-aware", f"share_{a}"] for t in tabs]))})
    return pd.DataFrame(rows).set_index(["pair", "bound_ms"])


def rows() -> list[dict]:
    """Figures for bench/run.py: the time of each scenario and the headline savings."""
    t0 = time.perf_counter()
    nightly = scenario_nightly(seeds=3)
    t1 = time.perf_counter()
    ml = scenario_ml(seeds=1)
    t2 = time.perf_counter()
    out = [{"what": "carbon: scenario I (nightly, 3 regions x 17 windows x {0, 5%} error, 3 seeds)",
            "value": t1 - t0, "unit": "s", "budget": None, "over_budget": None, "note": ""},
           {"what": "carbon: scenario II (3,387 ML jobs x 3 regions x 2 x 3 errors)", "value": t2 - t1, "unit": "s",
            "budget": None, "over_budget": None, "note": ""}]
    for r in REGIONS:
        out.append({"what": f"carbon: nightly +-8 h saving, {r}", "value": float(nightly[0.0].loc[8.0, r]), "unit": "%",
                    "budget": None, "over_budget": None, "note": "perfect forecast"})
    for r in REGIONS:
        out.append({"what": f"carbon: ML jobs saving (perfect, interruptible), {r}",
                    "value": float(ml.loc[(r, True, 0), "saved_pct"]), "unit": "%", "budget": None,
                    "over_budget": None, "note": "due next workday 09:00"})
    t3 = time.perf_counter()
    routing = scenario_routing(bounds_ms=(30,))
    out.append({"what": "carbon: carbon-aware routing (2 pairs x 6 days x 2 routers)", "value":
                time.perf_counter() - t3, "unit": "s", "budget": None, "over_budget": None, "note": ""})
    for (pair, bound), row in routing.iterrows():
        out.append({"what": f"carbon: routing {pair} at p99 <= {bound} ms, carbon saved", "value":
                    float(row["saved_pct"]), "unit": "%", "budget": None, "over_budget": None,
                    "note": f"p99 lost {row['p99_lost_ms']:+.1f} ms vs least-loaded"})
    return out


def main(argv=None) -> int:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="forecast-error draws per setting (paper: 10)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    nightly = scenario_nightly(seeds=args.seeds)
    t1 = time.perf_counter()
    ml = scenario_ml(seeds=args.seeds)
    t2 = time.perf_counter()
    routing = scenario_routing()
    t3 = time.perf_counter()
    with pd.option_context("display.float_format", "{:.1f}".format, "display.width", 120):
        for e, t in nightly.items():
            print(f"\nScenario I — nightly 30-min job at 01:00 UTC, window +-w h, forecast error {e:.0%}: "
                  f"% saved vs w = 0")
            print(t.loc[[0.5, 1.0, 2.0, 4.0, 6.0, 8.0]].T)
        print("\nScenario II — 3,387 ML jobs, due next workday 09:00")
        print(ml)
        print("\nRouting — clean vs dirty pool (2 L4 each, 10 ms), 250 req/s, least-loaded vs carbon-aware, "
              "6 days of 2020")
        print(routing)
    print(f"\nscenario I {t1 - t0:.1f} s, scenario II {t2 - t1:.1f} s ({args.seeds} seeds), routing {t3 - t2:.1f} s")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "carbon-replication.json").write_text(json.dumps(
        {"nightly": {str(e): t.round(3).to_dict() for e, t in nightly.items()},
         "ml": ml.round(3).reset_index().to_dict("records"), "seeds": args.seeds,
         "routing": routing.round(3).reset_index().to_dict("records")}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
