"""``lk.deploy.size``: the cheapest replica counts of a fleet that meet a p99 latency SLO on a workload (lab 07).

Search (simulation-based, greedy, stated in the result): start every pool at 1 replica; while p99 misses the
SLO (or requests are dropped), add one replica to the pool whose extra replica buys the largest drop in p99
per dollar (one trial simulation per pool per step); then, cheapest pool first, take replicas away while the
SLO still holds. The answer is verified by a final simulation, returned with it. Pools with autoscaling are
sized by their replica count as if static (their autoscaling is set aside for the search).

"""

from __future__ import annotations

from dataclasses import dataclass, replace

from labkit.args import check_int, check_positive
from labkit.deploy.pool import Fleet, Pool
from labkit.deploy.result import Result


@dataclass(frozen=True)
class Sizing:
    """The cheapest fleet found, its verifying Result, and how it was found."""

    fleet: Fleet
    result: Result
    replicas: dict
    slo_p99_s: float
    meets_slo: bool
    simulations: int
    method: str

    @property
    def cost_usd(self) -> float:
        return self.result.cost_usd

    def __repr__(self) -> str:
        ok = "meets" if self.meets_slo else "MISSES"
        return (f"Sizing({self.replicas}: p99 {self.result.p99_s * 1e3:.4g} ms {ok} the "
                f"{self.slo_p99_s * 1e3:.4g} ms SLO; ${self.result.usd_per_1m_requests:.4g} per 1M requests; "
                f"{self.simulations} simulations, {self.method})")


def _with_counts(fleet: Fleet, counts) -> Fleet:
    return replace(fleet, pools=tuple(replace(p, replicas=k, autoscaling=None) for p, k in zip(fleet.pools, counts)))


def size(fleet, workload, slo_p99_s: float, max_replicas: int = 64, seed: int = 0) -> Sizing:
    """Cheapest replica counts meeting ``p99 <= slo_p99_s`` with nothing dropped, by a greedy search over
    simulations, verified by a final one (lab 07).

    >>> import labkit as lk
    >>> pool = lk.deploy.Pool("gpu", device="l4", service_s=0.01)
    >>> s = lk.deploy.size(pool, lk.deploy.poisson(300, 60, seed=0), slo_p99_s=0.05)
    >>> s.replicas["gpu"] >= 4 and s.meets_slo      # 3 replicas would run at 100 %
    True
    """
    from labkit.deploy.sim import simulate

    if isinstance(fleet, Pool):
        fleet = Fleet([fleet], router="round-robin")
    slo = check_positive("slo_p99_s", slo_p99_s)
    check_int("max_replicas", max_replicas, 1)
    runs = [0]

    def run(counts):
        runs[0] += 1
        r = simulate(_with_counts(fleet, counts), workload, seed=seed, slo_s=slo)
        return r

    def ok(r):
        return r.dropped == 0 and r.p99_s <= slo

    counts = [1] * len(fleet.pools)
    best = run(counts)
    while not ok(best):
        trials = []
        for k in range(len(counts)):
            if counts[k] >= max_replicas:
                continue
            c = counts.copy()
            c[k] += 1
            r = run(c)
            gain = (best.p99_s - r.p99_s) + (best.dropped - r.dropped) * slo
            trials.append((ok(r), gain / max(r.cost_usd - best.cost_usd, 1e-12), c, r))
        if not trials:
            break
        winners = [t for t in trials if t[0]]
        pick = min(winners, key=lambda t: t[3].cost_usd) if winners else max(trials, key=lambda t: t[1])
        counts, best = pick[2], pick[3]
    if ok(best):                                   # take away what is not needed, cheapest pool first
        order = sorted(range(len(counts)), key=lambda k: -best.pools[k].cost_usd)
        for k in order:
            while counts[k] > 1:
                c = counts.copy()
                c[k] -= 1
                r = run(c)
                if not ok(r):
                    break
                counts, best = c, r
    final = _with_counts(fleet, counts)
    result = run(counts)                           # the verifying simulation
    names = [p.name for p in fleet.pools]
    return Sizing(final, result, dict(zip(names, counts)), slo, ok(result), runs[0],
                  "greedy: +1 replica where p99 falls most per dollar until the SLO holds, then -1 while it "
                  "still holds; verified by a final simulation")
