"""``lk.deploy.pipeline``: a ``lk.partition`` Plan deployed as a two-stage pipeline (lab 07): an edge pool runs the
plan's edge layers, the crossing tensor goes up the link, a cloud pool runs the rest, the result comes back.

The stages overlap: an edge replica takes the next request as soon as it has sent the last one's tensor, while the
cloud works on it. Each stage is a FIFO pool (labkit.deploy.sim), fed by the previous stage's finish times plus the
transfer (upload + half the RTT; download + the other half on the way back). Service times are the plan's
``edge_compute_s`` and ``cloud_compute_s``; an all-edge or all-cloud plan has one stage.

"""

from __future__ import annotations

import dataclasses

import numpy as np

from labkit.args import check_int
from labkit.deploy.result import Result
from labkit.deploy.workload import Workload


def pipeline(plan, workload: Workload, edge_replicas: int = 1, cloud_replicas: int = 1,
             slo_s: float | None = None) -> Result:
    """Serve `workload` with `plan` split over an edge pool and a cloud pool, in simulation (lab 07).

    >>> import labkit as lk
    >>> plan = lk.partition(lk.profile(lk.zoo.build("cnn"), lk.zoo.example("cnn")), edge="jetson-orin-nano",
    ...                     cloud="l4", link="wifi")
    >>> r = lk.deploy.pipeline(plan, lk.deploy.poisson(20, 30, seed=0))
    >>> bool(r.p50_s >= plan.latency_s - 1e-12)     # one request alone takes the plan's latency; queues add to it
    True
    """
    from labkit.deploy.pool import Pool
    from labkit.deploy.sim import simulate
    from labkit.targets import link as lookup

    if not hasattr(plan, "edge_compute_s") or not hasattr(plan, "cloud_compute_s"):
        raise ValueError(f"pipeline takes a Plan from lk.partition(...), got {type(plan).__name__}.")
    check_int("edge_replicas", edge_replicas, 1)
    check_int("cloud_replicas", cloud_replicas, 1)
    link = lookup(plan.link) if isinstance(plan.link, str) else plan.link
    n = len(workload)
    t = workload.arrival_s.copy()
    start = np.full(n, np.nan)
    totals = []
    timelines = []
    stages = []
    if plan.edge_compute_s > 0:
        stages.append(Pool("edge", device=plan.edge, service_s=plan.edge_compute_s, replicas=edge_replicas))
    if plan.cloud_compute_s > 0:
        stages.append(Pool("cloud", device=plan.cloud, service_s=plan.cloud_compute_s, replicas=cloud_replicas))
    up = plan.upload_s + plan.rtt_s / 2 if plan.cloud_compute_s > 0 else 0.0
    down = plan.download_s + plan.rtt_s / 2 if plan.cloud_compute_s > 0 else 0.0
    for k, pool in enumerate(stages):
        if pool.name == "cloud":
            t = t + up
        order = np.argsort(t, kind="stable")
        w = Workload(t[order], name=workload.name, duration_s=max(workload.duration_s, float(t.max()) if n else 0.0))
        r = simulate(pool, w)
        fin = np.empty(n)
        fin[order] = r.finish_s
        if k == 0:
            start[order] = r.start_s
        t = fin
        tot = r.pools[0]
        if pool.name == "cloud":
            egress = n * plan.download_bytes / 1e9 * link.egress_usd_per_gb
            tot = dataclasses.replace(tot, egress_usd=egress, cost_usd=tot.cost_usd + egress)
        totals.append(tot)
        tl = r.replicas.copy()
        tl[:, 1] = k
        timelines.append(tl)
    finish = t + down
    return Result(workload.arrival_s, start, finish, np.zeros(n, np.int32), np.ones(n, np.int32),
                  np.zeros(n, bool), tuple(totals), np.concatenate(timelines), workload.duration_s, slo_s,
                  workload.name, notes=(f"pipeline of {plan.model}: {' -> '.join(p.name for p in stages)} "
                                        f"over {link.name}",))
