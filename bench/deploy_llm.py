"""Benchmark token-level LLM serving, lk.deploy.serve_llm_sim (issue 18's budget): the full 1-hour Azure
conversation trace (19,366 requests) through a 4-replica continuous-batching llama-3.1-8b pool on h100-sxm
(<= 10 s), static batching and chunked prefill on the same trace, and the ratio to the independent simpy model
of tests/test_deploy_llm.py (same fitted step costs) on the trace's first 2 minutes, one replica.

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
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for row in bench_deploy_llm():
        print(f"{row['what']:<75} {row['value']:>9.3g} {row['unit']:<4} "
              f"{'' if row['budget'] is None else 'budget ' + format(row['budget'], 'g')}  {row['note']}")
