"""``lk.placement``: where (region) and on what (device, batch) to serve, by carbon, cost and latency (lab 12).

Every combination of device x batch x region is priced with ``lk.estimate`` (roofline latency, energy with the
device's PUE, cost at the device's hourly list price, carbon at the region's yearly grid intensity). A
latency bound keeps the feasible ones; the Pareto front is the feasible set no other feasible option beats on
all three of latency, grams per 1M requests and USD per 1M requests.

What it does not model: regional price differences (every region pays the device's listed price), queueing
(latency is one batch's service time plus the round trip you pass in ``rtt_s``), and hour-by-hour intensity
(use ``lk.carbon.schedule`` for time, ``lk.deploy.carbon_router`` for routing live traffic by the hour's
intensity). This module does not use the fleet simulator.

"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from labkit.args import check_int, check_positive


@dataclass(frozen=True)
class Placement:
    """Every option priced, the feasible ones under the latency bound, the Pareto front and the cleanest pick."""

    latency_bound_s: float
    best: dict | None                  # the feasible row with the fewest grams per 1M requests (ties: cost)
    n_options: int
    n_feasible: int
    n_pareto: int
    table: object = field(repr=False, compare=False)  # DataFrame: one row per device x batch x region

    def to_frame(self):
        """One row per option: device, region, batch, latency_s, carbon_g_per_1m, cost_usd_per_1m, feasible, pareto."""
        return self.table.copy()

    @property
    def front(self):
        """The Pareto-optimal feasible rows, sorted by latency."""
        return self.table[self.table["pareto"]].sort_values("latency_s")

    def __repr__(self) -> str:
        pick = "none feasible" if self.best is None else (
            f"best: {self.best['device']} batch {self.best['batch']} in {self.best['region']} "
            f"({self.best['carbon_g_per_1m']:.3g} g and ${self.best['cost_usd_per_1m']:.3g} per 1M requests, "
            f"{self.best['latency_s'] * 1e3:.3g} ms)")
        return (f"Placement({self.n_options} options, {self.n_feasible} under {self.latency_bound_s * 1e3:g} ms, "
                f"{self.n_pareto} on the Pareto front; {pick})")


def pareto_mask(points) -> list[bool]:
    """True for each point (tuple of costs, lower is better) that no other point weakly beats on all and
    strictly on one.

    >>> pareto_mask([(1, 5), (2, 2), (3, 3), (5, 1)])
    [True, True, False, True]
    """
    pts = [tuple(float(x) for x in p) for p in points]
    order = sorted(range(len(pts)), key=lambda i: pts[i])
    keep = [False] * len(pts)
    front: list[tuple] = []
    for i in order:                               # lexicographic order: a dominator always comes first
        p = pts[i]
        if not any(all(a <= b for a, b in zip(q, p)) and q != p for q in front):
            keep[i] = True
            front.append(p)
    return keep


def placement(profile, devices, regions, *, latency_bound_s: float, batches=(1,), dtype: str = "fp32",
              rtt_s: dict | None = None) -> Placement:
    """Rank devices x batches x regions by carbon under a latency bound; mark the Pareto front (lab 12).

    >>> import labkit as lk, torch
    >>> p = lk.profile(torch.nn.Linear(512, 512), torch.zeros(1, 512))
    >>> plan = lk.placement(p, ["l4", "t4"], ["fr", "de", "pl"], latency_bound_s=0.01, batches=(1, 8))
    >>> plan.best["region"], plan.n_options
    ('fr', 12)
    """
    import pandas as pd

    from labkit.carbon.yearly import grid_of
    from labkit.estimate import estimate

    bound = check_positive("latency_bound_s", latency_bound_s)
    devices = [devices] if isinstance(devices, str) else list(devices)
    regions = [regions] if isinstance(regions, str) else list(regions)
    batches = [batches] if isinstance(batches, int) else list(batches)
    if not devices or not regions or not batches:
        raise ValueError("placement needs at least one device, one region and one batch size.")
    for b in batches:
        check_int("batch", b, 1)
    for r in regions:
        grid_of(r)                               # unknown region: ValueError with near matches
    rtt = dict(rtt_s or {})
    for r, v in rtt.items():
        if r not in regions or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"rtt_s maps each listed region to a round trip >= 0 s; got {r!r}: {v!r}.")
    rows = []
    for dev in devices:
        for b in batches:
            for r in regions:
                e = estimate(profile, dev, dtype, b, region=r)
                rows.append({"device": e.device, "region": r, "batch": b, "latency_s": e.latency_s + rtt.get(r, 0.0),
                             "carbon_g_per_1m": e.carbon_g / b * 1e6, "cost_usd_per_1m": e.cost_usd_per_1m,
                             "energy_j_per_request": e.energy_j / b})
    table = pd.DataFrame(rows)
    table["feasible"] = table["latency_s"] <= bound
    feasible = table[table["feasible"]]
    mask = pareto_mask(feasible[["latency_s", "carbon_g_per_1m", "cost_usd_per_1m"]].itertuples(index=False))
    table["pareto"] = False
    table.loc[feasible.index[[i for i, k in enumerate(mask) if k]], "pareto"] = True
    table = table.sort_values(["feasible", "carbon_g_per_1m", "cost_usd_per_1m"], ascending=[False, True, True])
    table = table.reset_index(drop=True)
    best = table.iloc[0].to_dict() if len(feasible) else None
    return Placement(bound, best, len(table), int(table["feasible"].sum()), int(table["pareto"].sum()), table)
