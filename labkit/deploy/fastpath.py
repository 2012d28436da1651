"""The fast path of ``lk.deploy.simulate`` (lab 07): pools with no autoscaling and no queue bound behind a
state-blind router (one pool, or round-robin) are independent FIFO queues, so each is one pass over its arrivals
with a heap of replica free times — with batching, one step per batch, its members found by bisection. It gives the
event loop's finish times exactly (tests/test_deploy_oracles.py compares them) at ~0.4 us per request.

"""

from __future__ import annotations

import heapq

import numpy as np


def run_static(fleet, comp, workload, seed):
    """Independent pools, no drops, no scaling: per pool, one pass over its arrivals with a heap of replica free
    times; with batching, one step per batch (its members found by bisection on the arrival times)."""
    from bisect import bisect_left

    pools = fleet.pools
    P = len(pools)
    arr = workload.arrival_s
    n = arr.size
    pool_of = (np.arange(n) % P).astype(np.int32) if P > 1 else np.zeros(n, np.int32)
    st = np.empty(n)
    fin = np.empty(n)
    bsz = np.ones(n, np.int32)
    size_col = workload.columns.get("size")
    replica_s, busy_s, dyn_j = [0.0] * P, [0.0] * P, [0.0] * P
    heapreplace = heapq.heapreplace
    for p, (pool, c) in enumerate(zip(pools, comp)):
        idx = np.flatnonzero(pool_of == p) if P > 1 else None
        a_np = arr[idx] + c.up_s if idx is not None else arr + c.up_s
        A = a_np.tolist()
        m = len(A)
        B, T = c.B, c.T
        free = [0.0] * pool.replicas
        starts = [0.0] * m
        ends = [0.0] * m
        sizes = (size_col[idx] if idx is not None else size_col).tolist() if size_col is not None else None
        if B == 1:
            s1 = c.svc[1]
            if sizes is None:
                for j in range(m):
                    a = A[j]
                    f = free[0]
                    s0 = a if a > f else f
                    e = s0 + s1
                    heapreplace(free, e)
                    starts[j] = s0
                    ends[j] = e
                busy = s1 * m
                dyn = c.dyn_j[1] * m
            else:
                for j in range(m):
                    a = A[j]
                    f = free[0]
                    s0 = a if a > f else f
                    e = s0 + s1 * sizes[j]
                    heapreplace(free, e)
                    starts[j] = s0
                    ends[j] = e
                tot = float(np.sum(size_col[idx] if idx is not None else size_col))
                busy, dyn = s1 * tot, c.dyn_j[1] * tot
            bs = None
        else:
            svc, dj = c.svc, c.dyn_j
            bs = [1] * m
            busy = dyn = 0.0
            j = 0
            while j < m:
                a = A[j]
                f = free[0]
                s0 = a if a > f else f
                last = j + B - 1
                if T <= 0:      # no wait: the batch is what arrived before s0 (at least request j), as in the loop
                    close = s0
                    b = max(1, bisect_left(A, s0, j, min(m, j + B)) - j)
                elif last < m and A[last] <= s0 + T:
                    close = A[last] if A[last] > s0 else s0
                    b = B
                else:
                    close = s0 + T
                    b = bisect_left(A, close, j, min(m, j + B)) - j
                s = svc[b]
                e = dj[b]
                if sizes is not None:
                    k = max(sizes[j:j + b])
                    s *= k
                    e *= k
                end = close + s
                heapreplace(free, end)
                busy += s
                dyn += e
                for k in range(j, j + b):
                    starts[k] = close
                    ends[k] = end
                    bs[k] = b
                j += b
        e_arr = np.asarray(ends) + c.down_s
        s_arr = np.asarray(starts)
        if idx is None:
            st[:], fin[:] = s_arr, e_arr
            if bs is not None:
                bsz[:] = bs
        else:
            st[idx], fin[idx] = s_arr, e_arr
            if bs is not None:
                bsz[idx] = bs
        busy_s[p], dyn_j[p] = busy, dyn
    end = max(workload.duration_s, float(fin.max()) if n else 0.0)
    for p, pool in enumerate(pools):
        replica_s[p] = pool.replicas * end
    # in time order, as the event loop writes it: every pool's start, then every pool's end
    timeline = [(t, p, pool.replicas, pool.replicas) for t in (0.0, end) for p, pool in enumerate(pools)]
    return (st, fin, pool_of, bsz, np.zeros(n, bool), np.array(timeline, dtype=np.float64).reshape(-1, 4),
            replica_s, busy_s, dyn_j, end)
