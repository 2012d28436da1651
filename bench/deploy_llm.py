"""Benchmark token-level LLM serving, lk.deploy.serve_llm_sim (issue 18's budget): the full 1-hour Azure
conversation trace (19,366 requests) through a 4-replica continuous-batching llama-3.1-8b pool on h100-sxm
(<= 10 s), static batching and chunked prefill on the same trace, and the ratio to the independent simpy model
of tests/test_deploy_llm.py (same fitted step costs) on the trace's first 2 minutes, one replica; then the small GPT
served for real (lk.deploy.serve_llm, Ray Serve, ~40 s here, most of it Ray's start-up) against serve_llm_sim with
the step costs the replica measured, alone and stretched by its in-service dilation, plus Serve's measured overhead
(goal: TTFT and TPOT within 25% at moderate load), and where Ray's start-up time goes.

Not a test (no timing is asserted anywhere). Called by ``bench/run.py`` (section "deploy-llm"); alone:
``.venv/bin/python bench/deploy_llm.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACE_BUDGET_S = 10.0
MODEL, DEVICE = "llama-3.1-8b", "h100-sxm"


def _row(what, value, unit, budget=None, note=""):
    over = None if value is None or budget is None else value > budget
    return {"what": what, "value": value, "unit": unit, "budget": budget, "over_budget": over, "note": note}


def bench_deploy_llm() -> list[dict]:
    import numpy as np

    import labkit as lk
    from labkit.deploy.llm_cost import StepCost

    rows = []
    w = lk.deploy.trace("azure-conv")
    for label, kw, budget in (("continuous", {}, TRACE_BUDGET_S), ("continuous + chunked 512",
                                                                   {"chunk_tokens": 512}, None),
                              ("static", {"scheduler": "static"}, None)):
        t0 = time.perf_counter()
        r = lk.deploy.serve_llm_sim(w, MODEL, DEVICE, replicas=4, **kw)
        s = time.perf_counter() - t0
        rows.append(_row(f"serve_llm_sim {label}: 1-h azure-conv ({len(w):,} req), 4 x {DEVICE}", s, "s", budget,
                         f"{r.steps:,} steps; TTFT p50/p99 {r.percentiles('ttft_s')[50] * 1e3:.1f}/"
                         f"{r.percentiles('ttft_s')[99] * 1e3:.1f} ms; TPOT p50/p99 "
                         f"{r.percentiles('tpot_s')[50] * 1e3:.2f}/{r.percentiles('tpot_s')[99] * 1e3:.2f} ms; "
                         f"${r.cost_usd_per_1m_output:.2f}/1M out"))

    sys.path.insert(0, str(ROOT / "tests"))
    from test_deploy_llm import simpy_continuous

    head = w.head(120.0)
    p, o = head.columns["prompt_tokens"], head.columns["output_tokens"]
    cost = StepCost(MODEL, DEVICE)
    t0 = time.perf_counter()
    ours = lk.deploy.serve_llm_sim(head, MODEL, DEVICE, block_tokens=1, cost=cost)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    first, finish = simpy_continuous(head.arrival_s, p, o, ours.kv_capacity_tokens, 256,
                                     step_s=lambda d, pf: cost.step(d, pf)[0])
    simpy_s = time.perf_counter() - t0
    worst = float(np.max(np.abs(finish - ours.finish_s) / (finish - head.arrival_s)))
    rows.append(_row(f"simpy model, same engine, first 120 s ({len(head):,} req), 1 replica", simpy_s, "s", None,
                     f"worst |finish difference| / latency {worst:.1e}"))
    rows.append(_row("speed-up over simpy (same step costs)", simpy_s / ours_s, "x", None, f"ours {ours_s:.2f} s"))
    return rows + bench_served_llm()


def bench_served_llm(rate_rps: float = 10.0, duration_s: float = 4.0) -> list[dict]:
    """The small GPT on Ray Serve vs the simulator (lab 09's Q8 workload): served / simulated - 1 per statistic."""
    import numpy as np

    import labkit as lk

    rng = np.random.default_rng(0)
    arr = lk.deploy.poisson(rate_rps, duration_s, seed=0)
    w = arr.with_column("prompt_tokens", rng.integers(16, 80, len(arr))).with_column(
        "output_tokens", rng.integers(16, 40, len(arr)))
    t0 = time.perf_counter()
    served = lk.deploy.serve_llm(w)
    wall = time.perf_counter() - t0
    up = ", ".join(f"{k} {v:.1f} s" for k, v in served.startup_s.items())
    rows = [_row(f"serve_llm: small GPT on Ray Serve, {len(w)} req at {rate_rps:g} req/s", wall, "s", None, up)]
    for label, in_service in (("step costs alone", False), ("in-service costs", True)):
        t = lk.deploy.compare(served.simulate(w, in_service=in_service), served)
        for stat in ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s"):
            rows.append(_row(f"served vs simulated ({label} + Serve overhead): {stat[:-2]}",
                             float(t.loc[stat, "error_plus_serve"]) * 100, "%", None,
                             f"served {t.loc[stat, 'served'] * 1e3:.2f} ms, simulated "
                             f"{t.loc[stat, 'sim_plus_serve'] * 1e3:.2f} ms"))
    rows.append(_row("served engine: in-service dilation of its forward passes", served.dilation, "x", None,
                     f"Serve overhead per request {served.serve_overhead_s * 1e3:.2f} ms; delivery median "
                     f"{np.median(served.delivery_s) * 1e3:.2f} ms per token"))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for row in bench_deploy_llm():
        print(f"{row['what']:<75} {row['value']:>9.3g} {row['unit']:<4} "
              f"{'' if row['budget'] is None else 'budget ' + format(row['budget'], 'g')}  {row['note']}")
