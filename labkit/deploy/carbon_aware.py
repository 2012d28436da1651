"""Carbon-aware routing (labs 07, 12): send each request to the pool whose grid is cleanest at that moment, by the
real 2020 series, unless that pool's queue would break the latency bound; then spill to the next cleanest.

* :func:`carbon_router` builds the router function a :class:`~labkit.deploy.Fleet` takes. Each pool must have a
  ``region`` with a 2020 series (``de``, ``gb``, ``fr`` or a cloud region on those grids). Simulated time ``t``
  maps to grid time ``start + t x time_scale`` (``time_scale`` > 1 sweeps a day of grid through a short run: a
  modelling shortcut; the request-by-request arithmetic is unchanged).
* Its rule, per request: grams of a request in pool p = marginal energy per request (the batch's dynamic energy
  per request; idle power burns whatever the router does) x intensity(p, t) x PUE. Pools whose predicted
  latency is within ``latency_bound_s`` are feasible; the cleanest feasible pool wins (ties: the fallback's
  pick if tied, else the shortest predicted latency). When every pool is equally clean, or none is feasible, it
  routes as ``fallback`` does (``"least-loaded"``, ``"round-robin"`` or a router function).
* The prediction: the router keeps, per pool, the free times of its running replicas and the work it sent
  there, FIFO. It is exact for pools without batching, autoscaling, queue bound or a ``size`` column (each
  request then starts when the earliest replica frees); with batching a request is counted as 1/B of a batch of
  B and as waiting the batch timeout, an estimate.
* :func:`carbon_on_series` recounts a run's grams on the real series (the simulator's ``carbon_g`` uses the
  yearly average); :func:`carbon_tradeoff` runs fallback and carbon-aware routing on the same workload and
  reports carbon saved against p99 lost.
"""

from __future__ import annotations

import heapq
import math
import numbers

import numpy as np

FALLBACKS = ("least-loaded", "round-robin")


def _pools_of(fleet_or_pools) -> tuple:
    from labkit.deploy.pool import Fleet, Pool

    if isinstance(fleet_or_pools, Fleet):
        return fleet_or_pools.pools
    if isinstance(fleet_or_pools, Pool):
        return (fleet_or_pools,)
    pools = tuple(fleet_or_pools) if isinstance(fleet_or_pools, (list, tuple)) else ()
    if not pools or not all(isinstance(p, Pool) for p in pools):
        raise ValueError(f"carbon-aware routing takes a Fleet or a list of lk.deploy.Pool, got {fleet_or_pools!r}.")
    return pools


def _start(start):
    from labkit.carbon.timeseries import YEAR, utc_time

    t = utc_time("start", start)
    if not utc_time("", YEAR[0]) <= t < utc_time("", YEAR[1]):
        raise ValueError(f"start must lie in 2020 (the grid series cover 2020 only), got {t}.")
    return t


class _Grids:
    """Per pool: grams per joule (incl. the device's PUE) on the 30-minute 2020 grid, as one numpy row each."""

    def __init__(self, pools, start, time_scale):
        from labkit.carbon import pue
        from labkit.carbon.timeseries import grid, series_code
        from labkit.targets import device

        ts = time_scale
        if isinstance(ts, bool) or not isinstance(ts, numbers.Real) or not math.isfinite(ts) or ts <= 0:
            raise ValueError(f"time_scale must be a number > 0 (grid seconds per simulated second), got {ts!r}.")
        self.time_scale = float(ts)
        self.start = _start(start)
        rows, self.codes, firsts = [], [], set()
        for p in pools:
            if p.region is None:
                raise ValueError(f"pool {p.name!r} has no region: carbon-aware routing needs each pool's grid "
                                 "(region='de', 'gb', 'fr' or a cloud region on those grids).")
            code = series_code(p.region)              # unknown region: near matches listed
            g = grid(code)
            rows.append(g.to_numpy(dtype=float) / 3.6e6 * pue(device(p.device)))
            self.codes.append(code)
            firsts.add(g.index[0])
        if len(firsts) != 1:                          # the shipped files all start 2019-12-20 00:00 UTC
            raise ValueError(f"the grid series start at different times ({sorted(firsts)}); cannot align them.")
        self.t0 = firsts.pop()
        n = min(r.size for r in rows)                 # the files end a few half hours apart in January 2021
        self.g = np.vstack([r[:n] for r in rows])     # (pools, slots) on one 30-min index
        self.offset_s = (self.start - self.t0).total_seconds()

    def slot(self, t_sim: float) -> int:
        k = int((self.offset_s + t_sim * self.time_scale) // 1800.0)
        if k >= self.g.shape[1]:
            raise ValueError(f"simulated time {t_sim:g} s maps past the end of the grid data (early January "
                             "2021): pick an earlier start or a smaller time_scale.")
        return k


class CarbonRouter:
    """The router function :func:`carbon_router` returns: ``router(request, pool_states) -> pool index``.

    It counts how many requests it sent to each pool (``sent``) and how many spilled past the cleanest pool
    because of the bound (``spilled``); a new run (request index 0) resets its state.
    """

    def __init__(self, pools, latency_bound_s, start, fallback, time_scale):
        from labkit.args import check_positive, unknown_name
        from labkit.deploy.service import ServiceModel

        self.pools = _pools_of(pools)
        self.latency_bound_s = check_positive("latency_bound_s", latency_bound_s)
        if isinstance(fallback, str):
            if fallback not in FALLBACKS:
                raise unknown_name("fallback router", fallback, FALLBACKS)
        elif not callable(fallback):
            raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)} or a router function, got {fallback!r}.")
        self.fallback = fallback
        self.grids = _Grids(self.pools, start, time_scale)
        comp = [ServiceModel(p) for p in self.pools]
        self._up = [c.up_s for c in comp]
        self._down = [c.down_s for c in comp]
        self._occ = [c.svc[1] if c.B == 1 else c.svc[c.B] / c.B for c in comp]     # replica time per request
        self._lat = [c.svc[1] if c.B == 1 else c.svc[c.B] + c.T for c in comp]     # service part of latency
        self._e = np.array([c.dyn_j[1] if c.B == 1 else c.dyn_j[c.B] / c.B for c in comp])   # J per request
        self._reset()

    def _reset(self):
        P = len(self.pools)
        self._free = [[] for _ in range(P)]
        self._last_t = -math.inf
        self.sent = [0] * P
        self.spilled = 0

    def grams_per_request(self, t_sim: float) -> np.ndarray:
        """Marginal grams CO2e of one request in each pool at simulated time `t_sim`."""
        return self._e * self.grids.g[:, self.grids.slot(t_sim)]

    def _fallback(self, req, states) -> int:
        if self.fallback == "round-robin":
            return req["index"] % len(states)
        if self.fallback == "least-loaded":
            def load(s):
                return s.ongoing / s.running if s.running else (math.inf if s.ongoing else 1e18)
            return min(range(len(states)), key=lambda p: load(states[p]))
        return int(self.fallback(req, states))

    def __call__(self, req, states) -> int:
        t = float(req["arrival_s"])
        if req["index"] == 0 or t < self._last_t:
            self._reset()
        self._last_t = t
        size = float(req.get("size", 1.0))
        P = len(states)
        pred = [math.inf] * P
        starts = [0.0] * P
        for p, s in enumerate(states):
            free = self._free[p]
            while len(free) < s.running:              # replicas added (autoscaling): free now
                heapq.heappush(free, t)
            if len(free) > s.running:                 # replicas removed: forget the latest-free ones
                free[:] = sorted(free)[:s.running]
            if not free:
                continue
            starts[p] = max(t + self._up[p], free[0])
            pred[p] = starts[p] - t + self._lat[p] * size + self._down[p]
        g = self.grams_per_request(t)
        feasible = [p for p in range(P) if pred[p] <= self.latency_bound_s]
        if np.all(g == g[0]) or not feasible:
            choice = self._fallback(req, states)
        else:
            best = min(g[p] for p in feasible)
            tied = [p for p in feasible if g[p] <= best * (1 + 1e-12)]
            fb = self._fallback(req, states)
            choice = fb if fb in tied else min(tied, key=lambda p: pred[p])
            if g[choice] > g.min() * (1 + 1e-12):
                self.spilled += 1
        if isinstance(choice, bool) or not isinstance(choice, (int, np.integer)) or not 0 <= choice < P:
            raise ValueError(f"the fallback router must return a pool index in [0, {P - 1}], got {choice!r}.")
        free = self._free[choice]
        if free:
            s0 = max(t + self._up[choice], free[0])
            heapq.heapreplace(free, s0 + self._occ[choice] * size)
        self.sent[choice] += 1
        return int(choice)

    def __repr__(self) -> str:
        names = ", ".join(f"{p.name}@{c}" for p, c in zip(self.pools, self.grids.codes))
        return (f"CarbonRouter({names}; p<= {self.latency_bound_s * 1e3:g} ms, fallback {self.fallback!r}, "
                f"grid from {self.grids.start} x{self.grids.time_scale:g})")


def carbon_router(pools, *, latency_bound_s: float, start="2020-06-01 00:00", fallback="least-loaded",
                  time_scale: float = 1.0) -> CarbonRouter:
    """A router that prefers the pool on the cleanest grid while the latency bound allows (labs 07, 12).

    >>> import labkit as lk
    >>> pools = [lk.deploy.Pool("paris", device="l4", service_s=0.01, region="fr"),
    ...          lk.deploy.Pool("frankfurt", device="l4", service_s=0.01, region="de")]
    >>> router = lk.deploy.carbon_router(pools, latency_bound_s=0.05, start="2020-03-02 12:00")
    >>> r = lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), lk.deploy.poisson(50, 60, seed=0))
    >>> router.sent[0] > router.sent[1], r.p99_s <= 0.05
    (True, True)
    """
    return CarbonRouter(pools, latency_bound_s, start, fallback, time_scale)


def carbon_on_series(result, fleet, *, start="2020-06-01 00:00", time_scale: float = 1.0) -> dict:
    """Grams CO2e of a simulated run counted on the real 2020 series, per pool name and ``"total"`` (lab 12).

    Dynamic energy: each served request's share of its batch (``dyn_j[b] / b``) at its start time (a ``size``
    column is not kept in a Result, so sized requests count as size 1 here). Idle energy: the device's idle
    power over the replicas alive (the run's replica timeline), slot by slot.

    >>> import labkit as lk
    >>> pool = lk.deploy.Pool("a", device="l4", service_s=0.01, region="fr")
    >>> r = lk.deploy.simulate(pool, lk.deploy.poisson(20, 60, seed=0))
    >>> g = lk.deploy.carbon_on_series(r, pool, start="2020-06-01 12:00")
    >>> bool(g["total"] > 0), list(g)
    (True, ['a', 'total'])
    """
    from labkit.deploy.service import ServiceModel

    pools = _pools_of(fleet)
    if len(pools) != len(result.pools):
        raise ValueError(f"the result has {len(result.pools)} pools, the fleet {len(pools)}: pass the fleet it ran.")
    grids = _Grids(pools, start, time_scale)
    grids.slot(result.span_s)                         # the whole run must map inside the data
    out = {}
    served = ~result.dropped_mask
    for p, pool in enumerate(pools):
        c = ServiceModel(pool)
        mine = served & (result.pool == p)
        b = result.batch[mine]
        e = np.asarray(c.dyn_j)[b] / b
        t = result.start_s[mine]
        k = ((grids.offset_s + t * grids.time_scale) // 1800.0).astype(np.int64)
        grams = float((e * grids.g[p, k]).sum())
        rows = result.replicas[result.replicas[:, 1] == p]
        for (t_a, _, alive, _), (t_b, *_rest) in zip(rows[:-1], rows[1:]):
            grams += _idle_grams(grids, p, t_a, t_b, alive * c.idle_w)
        out[pool.name] = grams
    out["total"] = float(sum(out.values()))
    return out


def _idle_grams(grids, p, t_a, t_b, watts) -> float:
    """Grams of `watts` drawn from simulated t_a to t_b, integrated slot by slot."""
    if watts <= 0 or t_b <= t_a:
        return 0.0
    ts = grids.time_scale
    a, b = grids.offset_s + t_a * ts, grids.offset_s + t_b * ts     # grid seconds
    edges = np.arange(math.floor(a / 1800.0) * 1800.0, b + 1800.0, 1800.0)
    lo, hi = np.maximum(edges[:-1], a), np.minimum(edges[1:], b)
    keep = hi > lo
    k = (edges[:-1][keep] // 1800.0).astype(np.int64)
    return float((watts * (hi - lo)[keep] / ts * grids.g[p, k]).sum())


def carbon_tradeoff(pools, workload, *, latency_bound_s: float, start="2020-06-01 00:00", fallback="least-loaded",
                    time_scale: float = 1.0, seed: int = 0):
    """Carbon saved against p99 lost: the same workload behind `fallback` and behind the carbon-aware router,
    grams on the real series (lab 12). A DataFrame with one row per router: p99_s, grams_g (real series),
    saved_pct and p99_lost_ms against the fallback, and each pool's share of requests.

    >>> import labkit as lk
    >>> pools = [lk.deploy.Pool("paris", device="l4", service_s=0.01, region="fr"),
    ...          lk.deploy.Pool("frankfurt", device="l4", service_s=0.01, region="de")]
    >>> t = lk.deploy.carbon_tradeoff(pools, lk.deploy.poisson(60, 60, seed=0), latency_bound_s=0.05)
    >>> list(t.index), bool(t.loc["carbon-aware", "saved_pct"] > 0)
    (['least-loaded', 'carbon-aware'], True)
    """
    import pandas as pd

    from labkit.deploy.pool import Fleet
    from labkit.deploy.sim import simulate

    pools = _pools_of(pools)
    router = carbon_router(pools, latency_bound_s=latency_bound_s, start=start, fallback=fallback,
                           time_scale=time_scale)
    name = fallback if isinstance(fallback, str) else getattr(fallback, "__name__", "fallback")
    rows = []
    for label, r_ in ((name, fallback), ("carbon-aware", router)):
        res = simulate(Fleet(pools, router=r_), workload, seed=seed, slo_s=latency_bound_s)
        grams = carbon_on_series(res, pools, start=start, time_scale=time_scale)
        row = {"router": label, "p99_s": res.p99_s, "grams_g": grams["total"], "slo_met_pct":
               100.0 * float((res.latency_s <= latency_bound_s).mean()) if res.latency_s.size else float("nan")}
        for k, p in enumerate(pools):
            row[f"share_{p.name}"] = float((res.pool == k).mean()) if res.requests else 0.0
        rows.append(row)
    t = pd.DataFrame(rows).set_index("router")
    base = t["grams_g"].iloc[0]
    t["saved_pct"] = 100.0 * (base - t["grams_g"]) / base if base else 0.0
    t["p99_lost_ms"] = 1e3 * (t["p99_s"] - t["p99_s"].iloc[0])
    return t
