"""Replicate the two scenarios of Wiesner et al., "Let's Wait Awhile", Middleware 2021, with lk.carbon.schedule.

Not a test: prints the savings tables (and writes them to bench/results/carbon-replication.json) and the time
each took. ``bench/run.py`` calls ``rows()``.

Scenario I (periodic nightly jobs): one 30-minute job a night at 01:00 UTC through 2020, movable by +-w hours,
w = 0 .. 8 in 30-minute steps (the paper's simulator: windows 0 to 16 steps of 30 minutes either side). Savings
are against w = 0. Forecast error: Gaussian noise with std = e x mean intensity, mean over `seeds` draws.
Scenario II (ad-hoc ML training): 3,387 jobs submitted 09:00-17:00 on workdays, 4 to 89.5 h long, due by 09:00
the next workday (``lk.carbon.ml_jobs``), whole or interruptible, with forecast error e = 0, 5 %, 10 %.

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
    with pd.option_context("display.float_format", "{:.1f}".format, "display.width", 120):
        for e, t in nightly.items():
            print(f"\nScenario I — nightly 30-min job at 01:00 UTC, window +-w h, forecast error {e:.0%}: "
                  f"% saved vs w = 0")
            print(t.loc[[0.5, 1.0, 2.0, 4.0, 6.0, 8.0]].T)
        print("\nScenario II — 3,387 ML jobs, due next workday 09:00")
        print(ml)
    print(f"\nscenario I {t1 - t0:.1f} s, scenario II {t2 - t1:.1f} s ({args.seeds} seeds)")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "carbon-replication.json").write_text(json.dumps(
        {"nightly": {str(e): t.round(3).to_dict() for e, t in nightly.items()},
         "ml": ml.round(3).reset_index().to_dict("records"), "seeds": args.seeds}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
