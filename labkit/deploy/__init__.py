"""``lk.deploy``: serve a request stream on a fleet of model replicas, simulated fast and exactly (lab 07).

- Workloads (labkit.deploy.workload): :func:`poisson`, :func:`diurnal`, :func:`bursty`, :func:`trace` (the real
  Azure LLM trace, rate-scaled), or your own :class:`Workload` (arrival_s + columns).
- Specs (labkit.deploy.pool), with Ray Serve's names and defaults: :class:`Pool`, :class:`Batching`,
  :class:`Autoscaling`, :class:`Fleet` (pools + a router).
- :func:`simulate` (labkit.deploy.sim) -> :class:`Result` (labkit.deploy.result); :func:`decide` is Ray
  Serve's autoscaling rule (labkit.deploy.autoscale).
- Closed forms (labkit.deploy.queueing): :func:`erlang_c`, :func:`md1`, :func:`pollaczek_khinchine`,
  :func:`little`; :func:`size` (labkit.deploy.sizing) finds the cheapest replica counts meeting a p99 SLO.
- :func:`pipeline` (labkit.deploy.tandem): a ``lk.partition`` Plan as an edge stage -> link -> cloud stage.
- The same fleet on Ray Serve: :func:`serve` (labkit.deploy.twin) -> a measured Result; :func:`compare`
  (labkit.deploy.agreement) puts simulated and served side by side with bootstrap intervals.

Layering: numpy at import; labkit.estimate/targets/carbon when a fleet is compiled; torch only for a pool given by
zoo name. Plots: lk.plot.latency_cdf, fleet_timeline, batching_knee (labkit.plot_deploy).

>>> import labkit as lk
>>> round(lk.deploy.erlang_c(rate_rps=50, service_s=0.01, servers=1).mean_wait_s, 4)
0.01
"""

from __future__ import annotations

from labkit.lazy import namespace

_API = {
    "Workload": "labkit.deploy.workload:Workload",
    "poisson": "labkit.deploy.workload:poisson",
    "diurnal": "labkit.deploy.workload:diurnal",
    "bursty": "labkit.deploy.workload:bursty",
    "trace": "labkit.deploy.workload:trace",
    "Pool": "labkit.deploy.pool:Pool",
    "Batching": "labkit.deploy.pool:Batching",
    "Autoscaling": "labkit.deploy.pool:Autoscaling",
    "Fleet": "labkit.deploy.pool:Fleet",
    "simulate": "labkit.deploy.sim:simulate",
    "cold_start_s": "labkit.deploy.sim:cold_start_s",
    "PoolState": "labkit.deploy.sim:PoolState",
    "Result": "labkit.deploy.result:Result",
    "decide": "labkit.deploy.autoscale:decide",
    "erlang_c": "labkit.deploy.queueing:erlang_c",
    "md1": "labkit.deploy.queueing:md1",
    "pollaczek_khinchine": "labkit.deploy.queueing:pollaczek_khinchine",
    "little": "labkit.deploy.queueing:little",
    "size": "labkit.deploy.sizing:size",
    "pipeline": "labkit.deploy.tandem:pipeline",
    "serve": "labkit.deploy.twin:serve",
    "compare": "labkit.deploy.agreement:compare",
    "Sizing": "labkit.deploy.sizing:Sizing",
}

__getattr__, __dir__ = namespace(globals(), _API, "lk.deploy name")
__all__ = sorted(_API)
