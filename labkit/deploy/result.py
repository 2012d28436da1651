"""The outcome of serving a workload on a fleet (lab 07): per-request arrays, per-pool totals and a summary with
units in the names. ``lk.deploy.simulate`` and ``lk.deploy.serve`` both return a Result.

"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PoolTotals:
    """One pool's totals over a run: replica-seconds (idle included), busy-seconds, energy, cost, carbon."""

    name: str
    device: str
    region: str
    requests: int
    replica_s: float
    busy_s: float
    energy_j: float
    cost_usd: float
    carbon_g: float
    egress_usd: float

    @property
    def utilization(self) -> float:
        """Busy-seconds over replica-seconds."""
        return self.busy_s / self.replica_s if self.replica_s > 0 else 0.0


@dataclass(frozen=True, eq=False)
class Result:
    """Per-request arrays (arrival, start, finish, pool, batch, dropped) and per-pool totals (lab 07).

    Latency = finish - arrival of the requests served (dropped ones have NaN start/finish and count in
    ``dropped``, never silently). ``replicas`` is the replica timeline: rows (time_s, pool, alive, running).

    >>> import labkit as lk
    >>> fleet = lk.deploy.Fleet([lk.deploy.Pool("a", device="l4", service_s=0.01)])
    >>> r = lk.deploy.simulate(fleet, lk.deploy.poisson(50, 60, seed=0), slo_s=0.05)
    >>> r.p50_s >= 0.01 and r.dropped == 0 and r.goodput_rps <= r.throughput_rps
    True
    """

    arrival_s: np.ndarray
    start_s: np.ndarray
    finish_s: np.ndarray
    pool: np.ndarray
    batch: np.ndarray
    dropped_mask: np.ndarray
    pools: tuple
    replicas: np.ndarray                  # (k, 4): time_s, pool index, alive, running
    duration_s: float
    slo_s: float | None = None
    workload: str = ""
    source: str = "simulated"             # or "served on Ray Serve"
    notes: tuple = field(default=())

    # ------------------------------------------------------------------ per request
    @property
    def latency_s(self) -> np.ndarray:
        """finish - arrival of every served request (dropped ones left out)."""
        ok = ~self.dropped_mask
        return self.finish_s[ok] - self.arrival_s[ok]

    @property
    def wait_s(self) -> np.ndarray:
        """start - arrival of every served request (includes the way in over a link, if any)."""
        ok = ~self.dropped_mask
        return self.start_s[ok] - self.arrival_s[ok]

    def percentile_s(self, q: float) -> float:
        """The q-th percentile of latency (q in [0, 100])."""
        lat = self.latency_s
        return float(np.percentile(lat, q)) if lat.size else float("nan")

    @property
    def p50_s(self) -> float:
        return self.percentile_s(50)

    @property
    def p90_s(self) -> float:
        return self.percentile_s(90)

    @property
    def p95_s(self) -> float:
        return self.percentile_s(95)

    @property
    def p99_s(self) -> float:
        return self.percentile_s(99)

    @property
    def mean_s(self) -> float:
        lat = self.latency_s
        return float(lat.mean()) if lat.size else float("nan")

    @property
    def requests(self) -> int:
        return int(self.arrival_s.size)

    @property
    def dropped(self) -> int:
        return int(self.dropped_mask.sum())

    @property
    def span_s(self) -> float:
        """From time 0 to the last finish (or the workload's end, if later)."""
        fin = self.finish_s[~self.dropped_mask]
        return max(self.duration_s, float(fin.max()) if fin.size else 0.0)

    @property
    def throughput_rps(self) -> float:
        """Served requests per second over span_s."""
        return (self.requests - self.dropped) / self.span_s if self.span_s > 0 else float("nan")

    @property
    def goodput_rps(self) -> float:
        """Requests served within slo_s, per second (= throughput without an SLO)."""
        if self.slo_s is None:
            return self.throughput_rps
        return float((self.latency_s <= self.slo_s).sum()) / self.span_s if self.span_s > 0 else float("nan")

    # ------------------------------------------------------------------ money, energy, carbon
    @property
    def cost_usd(self) -> float:
        return float(sum(p.cost_usd for p in self.pools))

    @property
    def usd_per_1m_requests(self) -> float:
        served = self.requests - self.dropped
        return self.cost_usd / served * 1e6 if served else float("nan")

    @property
    def energy_j(self) -> float:
        return float(sum(p.energy_j for p in self.pools))

    @property
    def carbon_g(self) -> float:
        return float(sum(p.carbon_g for p in self.pools))

    def utilization(self) -> dict:
        """Busy share of replica-seconds, per pool name."""
        return {p.name: p.utilization for p in self.pools}

    def summary(self) -> dict:
        """The headline numbers, units in the names."""
        return {"requests": self.requests, "dropped": self.dropped, "p50_s": self.p50_s, "p95_s": self.p95_s,
                "p99_s": self.p99_s, "mean_s": self.mean_s, "throughput_rps": self.throughput_rps,
                "goodput_rps": self.goodput_rps, "slo_s": self.slo_s, "cost_usd": self.cost_usd,
                "usd_per_1m_requests": self.usd_per_1m_requests, "energy_j": self.energy_j,
                "carbon_g": self.carbon_g, "utilization": self.utilization()}

    def to_frame(self):
        """One row per pool: requests, p50/p99, replica-seconds, utilisation, energy, cost, carbon (pandas)."""
        import pandas as pd

        rows = []
        for k, p in enumerate(self.pools):
            mine = (self.pool == k) & ~self.dropped_mask
            lat = self.finish_s[mine] - self.arrival_s[mine]
            rows.append({"pool": p.name, "device": p.device, "region": p.region, "requests": int(mine.sum()),
                         "dropped": int(((self.pool == k) & self.dropped_mask).sum()),
                         "p50_s": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                         "p99_s": float(np.percentile(lat, 99)) if lat.size else float("nan"),
                         "replica_s": p.replica_s, "utilization": p.utilization, "energy_j": p.energy_j,
                         "cost_usd": p.cost_usd, "carbon_g": p.carbon_g})
        return pd.DataFrame(rows).set_index("pool")

    def __repr__(self) -> str:
        slo = (f", goodput {self.goodput_rps:.4g} req/s at p<= {self.slo_s * 1e3:.4g} ms"
               if self.slo_s is not None else "")
        return (f"Result({self.source} {self.workload}: {self.requests:,} requests, {self.dropped:,} dropped; "
                f"p50 {self.p50_s * 1e3:.4g} ms, p99 {self.p99_s * 1e3:.4g} ms; "
                f"{self.throughput_rps:.4g} req/s{slo}; ${self.usd_per_1m_requests:.4g} per 1M requests, "
                f"{self.energy_j:.4g} J, {self.carbon_g:.4g} gCO2e; pools "
                f"{', '.join(f'{p.name}={p.utilization:.0%} busy' for p in self.pools)})")
