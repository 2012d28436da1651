"""``lk.deploy.simulate``: a fast, exact discrete-event simulation of a fleet serving a workload (lab 07).

The model, per pool (a Ray Serve deployment):
* A request reaches its pool after its way in (half the link's RTT + its input's upload; 0 at the edge) and
  waits in the pool's queue, first come first served. A pool holds at most ``running replicas x
  max_ongoing_requests + max_queued_requests`` requests (Ray: a replica takes up to max_ongoing_requests, the
  handle queues up to max_queued_requests); a request arriving at a full pool is dropped and counted.
  max_queued_requests = -1 (Ray's default) never drops.
* A free replica takes the oldest waiting request. Without batching it serves it alone. With batching it
  gathers, as ``@serve.batch`` does: the batch closes when it holds max_batch_size requests or
  batch_wait_timeout_s after the replica took its first request, whichever comes first; one batch gathers
  at a time per pool. A batch of b takes ``service(b) x max(size)`` seconds (``size``: the workload column, 1
  by default), ``service(b)`` from ``lk.estimate(profile, device, batch=b)`` (memoised per b) or the pool's
  service_s. Its requests finish together, then take their way out (the other half RTT + output download).
* Autoscaling (labkit.deploy.autoscale.decide, Ray's rule) runs every control_interval_s on the pool's
  ongoing requests (queued + in service) averaged over look_back_period_s. New replicas cost money from the
  decision on and serve after their cold start; removed replicas stop at once if starting or idle, after
  their batch if busy.
* Money: replica-seconds (idle included) x the device's hourly price, plus output egress over the link; replicas
  are paid until the last finish or the workload's end (or the autoscaler's last change, if later).
  Energy: idle power over replica-seconds plus each batch's dynamic energy from lk.estimate.
  Carbon: energy x PUE x the pool's grid intensity (lk.carbon).

The loop is a single heapq of (time, seq, kind, pool, value) tuples plus per-pool counters and deques: no
per-request or per-event objects; events at the same instant run in the order they were scheduled (seq), and
before an arrival at that instant. Routers see each pool's state at the request's arrival.

"""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np

from labkit.deploy.autoscale import decide
from labkit.deploy.pool import Fleet, Pool
from labkit.deploy.result import PoolTotals, Result
from labkit.deploy.service import PoolState, ServiceModel
from labkit.deploy.workload import Workload

_FINISH, _TIMEOUT, _READY, _TICK, _ENTER = 0, 1, 2, 3, 4


def simulate(fleet, workload: Workload, seed: int = 0, slo_s: float | None = None, *, _fast: bool = True) -> Result:
    """Serve `workload` on `fleet` in simulation; per-request arrays and a summary in the Result (lab 07).

    `fleet`: a Fleet, or one Pool. `seed` drives the power-of-two router's draws. `slo_s` sets goodput's bound.
    Pools without autoscaling or a queue bound behind a state-blind router (one pool, or round-robin) take a
    fast path: one pass per pool over a heap of replica free times (same finish times as the event loop; the
    tests compare them).

    >>> import labkit as lk
    >>> pool = lk.deploy.Pool("gpu", device="l4", service_s=0.010)     # 10 ms per request, one replica
    >>> r = lk.deploy.simulate(pool, lk.deploy.poisson(50, 1200, seed=0))
    >>> bool(abs(r.wait_s.mean() / lk.deploy.md1(50, 0.010).mean_wait_s - 1) < 0.1)   # M/D/1 at rho = 0.5
    True
    """
    if isinstance(fleet, Pool):
        fleet = Fleet([fleet], router="round-robin")
    if not isinstance(fleet, Fleet):
        raise ValueError(f"simulate takes a Fleet or a Pool, got {type(fleet).__name__}.")
    if not isinstance(workload, Workload):
        raise ValueError(f"simulate takes a Workload (lk.deploy.poisson/diurnal/bursty/trace), got "
                         f"{type(workload).__name__}.")
    if slo_s is not None:
        from labkit.args import check_positive

        slo_s = check_positive("slo_s", slo_s)
    pools = fleet.pools
    comp = [ServiceModel(p) for p in pools]
    static = all(p.autoscaling is None and p.max_queued_requests == -1 for p in pools) and (
        len(pools) == 1 or fleet.router == "round-robin")
    if static and _fast:
        from labkit.deploy.fastpath import run_static

        out = run_static(fleet, comp, workload, seed)
    else:
        out = _run(fleet, comp, workload, seed)
    return _result(fleet, comp, workload, slo_s, *out)


def _run(fleet, comp, workload, seed):
    pools = fleet.pools
    P = len(pools)
    arr = workload.arrival_s
    n = arr.size
    arr_l = arr.tolist()
    size_col = workload.columns.get("size")
    sizes = size_col.tolist() if size_col is not None else None
    start = [math.nan] * n
    finish = [math.nan] * n
    bsz = [0] * n
    pool_of = [0] * n
    dropped = bytearray(n)

    heap: list = []
    seq = 0
    q = [deque() for _ in range(P)]
    inservice = [0] * P
    running = [0] * P          # replicas that serve (idle + gathering + busy)
    idle = [0] * P
    starting = [0] * P
    alive = [0] * P            # replicas paid for: starting + running
    to_stop = [0] * P
    cancel_ready = [0] * P
    gathering = [False] * P
    gen = [0] * P
    target = [0] * P
    last_t = [0.0] * P
    replica_s = [0.0] * P
    busy_s = [0.0] * P
    dyn_j = [0.0] * P
    transit = [0]              # requests on their way in over a link
    timeline = []
    svc = [c.svc for c in comp]
    dyn = [c.dyn_j for c in comp]
    Bs = [c.B for c in comp]
    Ts = [c.T for c in comp]
    cap_extra = [c.cap_extra for c in comp]
    mor = [p.max_ongoing_requests for p in pools]
    down = [c.down_s for c in comp]
    ups = [c.up_s for c in comp]

    def account(p, now):
        replica_s[p] += alive[p] * (now - last_t[p])
        last_t[p] = now

    def run_batch(p, now, b):
        nonlocal seq
        qq = q[p]
        s = svc[p][b]
        e = dyn[p][b]
        if b == 1:
            j = qq.popleft()
            if sizes is not None:
                s *= sizes[j]
                e *= sizes[j]
            fin = now + s
            start[j] = now
            finish[j] = fin + down[p]
            bsz[j] = 1
        else:
            members = [qq.popleft() for _ in range(b)]
            if sizes is not None:
                f = max(sizes[j] for j in members)
                s *= f
                e *= f
            fin = now + s
            fo = fin + down[p]
            for j in members:
                start[j] = now
                finish[j] = fo
                bsz[j] = b
        inservice[p] += b
        busy_s[p] += s
        dyn_j[p] += e
        seq += 1
        heapq.heappush(heap, (fin, seq, _FINISH, p, b))

    def dispatch(p, now):
        """Free replicas take work while there is any and no batch is gathering."""
        nonlocal seq
        qq = q[p]
        B = Bs[p]
        while idle[p] and qq and not gathering[p]:
            if len(qq) >= B or Ts[p] <= 0:
                idle[p] -= 1
                run_batch(p, now, min(B, len(qq)))
            else:
                idle[p] -= 1
                gathering[p] = True
                gen[p] += 1
                seq += 1
                heapq.heappush(heap, (now + Ts[p], seq, _TIMEOUT, p, gen[p]))

    def enter(p, j, now):
        """Request j reaches pool p."""
        qq = q[p]
        if cap_extra[p] >= 0 and len(qq) + inservice[p] >= running[p] * mor[p] + cap_extra[p]:
            dropped[j] = 1
            return
        qq.append(j)
        if gathering[p]:
            if len(qq) >= Bs[p]:
                gathering[p] = False
                run_batch(p, now, Bs[p])
                dispatch(p, now)
        elif idle[p]:
            dispatch(p, now)

    def set_replicas(p, now, want):
        """Move pool p toward `want` replicas (autoscaling)."""
        nonlocal seq
        have = running[p] - to_stop[p] + starting[p]
        if want == have:
            return
        account(p, now)
        if want > have:
            k = want - have
            back = min(k, to_stop[p])
            to_stop[p] -= back
            k -= back
            for _ in range(k):
                starting[p] += 1
                alive[p] += 1
                seq += 1
                heapq.heappush(heap, (now + comp[p].cold_s, seq, _READY, p, 0))
        else:
            k = have - want
            c = min(k, starting[p])
            starting[p] -= c
            alive[p] -= c
            cancel_ready[p] += c
            k -= c
            c = min(k, idle[p])
            idle[p] -= c
            running[p] -= c
            alive[p] -= c
            k -= c
            to_stop[p] += k
        timeline.append((now, p, alive[p], running[p]))

    # initial replicas, and the autoscalers' first ticks
    rings: dict = {}
    for p, pool in enumerate(pools):
        a = pool.autoscaling
        k = a.start_replicas if a is not None else pool.replicas
        running[p] = idle[p] = alive[p] = target[p] = k
        timeline.append((0.0, p, k, k))
        if a is not None:
            look = max(1, int(round(a.look_back_period_s / a.control_interval_s)))
            seq += 1
            heapq.heappush(heap, (a.control_interval_s, seq, _TICK, p, 0))
            rings[p] = (deque(maxlen=look), {})

    # routers
    router = fleet.router
    if P > 1 and router == "power-of-two":
        rng = np.random.default_rng(seed)
        first = rng.integers(0, P, n).tolist()
        second = ((np.asarray(first) + rng.integers(1, P, n)) % P).tolist()
    edge = [c.is_edge for c in comp]
    edges = [p for p in range(P) if edge[p]]
    clouds = [p for p in range(P) if not edge[p]] or list(range(P))
    spill = fleet.spill_queue
    cols = workload.columns

    def load(p):
        r = running[p]
        o = len(q[p]) + inservice[p]
        return o / r if r else (math.inf if o or starting[p] else 1e18)

    def route(i, t):
        if P == 1:
            return 0
        if router == "round-robin":
            return i % P
        if router == "power-of-two":
            a, b = first[i], second[i]
            return b if load(b) < load(a) else a
        if router == "least-loaded":
            return min(range(P), key=load)
        if router == "edge-first":
            for p in edges:
                if len(q[p]) < spill and running[p]:
                    return p
            return min(clouds, key=load)
        states = tuple(PoolState(pools[p].name, len(q[p]) + inservice[p], len(q[p]), running[p], edge[p])
                       for p in range(P))
        req = {"index": i, "arrival_s": t, **{k: v[i] for k, v in cols.items()}}
        p = router(req, states)
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 0 <= p < P:
            raise ValueError(f"the router function must return a pool index in [0, {P - 1}], got {p!r}.")
        return int(p)

    i = 0
    inf = math.inf
    heappop = heapq.heappop
    while True:
        t_arr = arr_l[i] if i < n else inf
        if heap and heap[0][0] <= t_arr:
            now, _, kind, p, x = heappop(heap)
            if kind == _FINISH:
                inservice[p] -= x
                if to_stop[p]:
                    account(p, now)
                    to_stop[p] -= 1
                    running[p] -= 1
                    alive[p] -= 1
                    timeline.append((now, p, alive[p], running[p]))
                else:
                    idle[p] += 1
                if q[p]:
                    dispatch(p, now)
            elif kind == _ENTER:
                transit[0] -= 1
                enter(p, x, now)
            elif kind == _TIMEOUT:
                if gathering[p] and gen[p] == x:
                    gathering[p] = False
                    run_batch(p, now, min(Bs[p], len(q[p])))
                    dispatch(p, now)
            elif kind == _READY:
                if cancel_ready[p]:
                    cancel_ready[p] -= 1
                else:
                    starting[p] -= 1
                    running[p] += 1
                    idle[p] += 1
                    timeline.append((now, p, alive[p], running[p]))
                    dispatch(p, now)
            else:                                            # _TICK
                a = pools[p].autoscaling
                ring, state = rings[p]
                if len(ring) == ring.maxlen:
                    state["_sum"] -= ring[0]
                o = len(q[p]) + inservice[p]
                ring.append(o)
                state["_sum"] = state.get("_sum", 0) + o
                want = decide(state["_sum"] / len(ring), running[p] - to_stop[p], target[p], a, state, now)
                target[p] = want
                set_replicas(p, now, want)
                busy = i < n or transit[0] or any(len(q[k]) + inservice[k] for k in range(P))
                if busy:
                    seq += 1
                    heapq.heappush(heap, (now + a.control_interval_s, seq, _TICK, p, 0))
            continue
        if i >= n:
            break
        p = route(i, t_arr)
        pool_of[i] = p
        if ups[p] > 0:
            transit[0] += 1
            seq += 1
            heapq.heappush(heap, (t_arr + ups[p], seq, _ENTER, p, i))
        else:
            enter(p, i, t_arr)
        i += 1

    fin_arr = np.array(finish)
    # replicas are paid until the last finish, the workload's end, or the autoscaler's last change if that came
    # later (a tick after the last finish may still scale down): never back in time (timeline rows are in order)
    end = max(workload.duration_s, float(np.nanmax(fin_arr)) if n and not np.isnan(fin_arr).all() else 0.0,
              timeline[-1][0])
    for p in range(P):
        account(p, end)
    timeline.extend((end, p, alive[p], running[p]) for p in range(P))
    drop = np.frombuffer(bytes(dropped), dtype=np.uint8).astype(bool)
    st = np.array(start)
    fin_arr[drop] = np.nan
    st[drop] = np.nan
    return (st, fin_arr, np.array(pool_of, dtype=np.int32), np.array(bsz, dtype=np.int32), drop,
            np.array(timeline, dtype=np.float64).reshape(-1, 4), replica_s, busy_s, dyn_j, end)



def _result(fleet, comp, workload, slo_s, st, fin, pool_of, bsz, drop, timeline, replica_s, busy_s, dyn_j, end):
    totals = []
    for p, (pool, c) in enumerate(zip(fleet.pools, comp)):
        served = int(((pool_of == p) & ~drop).sum())
        energy = c.idle_w * replica_s[p] + dyn_j[p]
        egress = c.egress_usd * served
        totals.append(PoolTotals(pool.name, pool.device, c.region, served, replica_s[p], busy_s[p], energy,
                                 replica_s[p] * c.usd_per_s + egress, energy * c.g_per_j, egress))
    return Result(workload.arrival_s, st, fin, pool_of, bsz, drop, tuple(totals), timeline, workload.duration_s,
                  slo_s, workload.name)
