"""``lk.deploy``: serve a request stream on a fleet of model replicas, simulated fast and exactly (lab 07).

- Workloads (labkit.deploy.workload): :func:`poisson`, :func:`diurnal`, :func:`bursty`, :func:`trace` (the real
  Azure LLM trace, rate-scaled), or your own :class:`Workload` (arrival_s + columns).
- Specs (labkit.deploy.pool), with Ray Serve's names and defaults: :class:`Pool`, :class:`Batching`,
  :class:`Autoscaling`, :class:`Fleet` (pools + a router).
- :func:`simulate` (labkit.deploy.sim) -> :class:`Result` (labkit.deploy.result); :func:`decide` is Ray
  Serve's autoscaling rule (labkit.deploy.autoscale).
- Closed forms (labkit.deploy.queueing): :func:`erlang_c`, :func:`md1`, :func:`pollaczek_khinchine`,
  :func:`little`; :func:`size` (labkit.deploy.sizing) finds the cheapest replica counts meeting a p99 SLO.
- Carbon-aware routing (labkit.deploy.carbon_aware): :func:`carbon_router` prefers the pool on the cleanest grid
  (real 2020 series) while the latency bound allows; :func:`carbon_on_series` recounts a run's grams on that
  series; :func:`carbon_tradeoff` puts carbon saved beside p99 lost.
- :func:`pipeline` (labkit.deploy.tandem): a ``lk.partition`` Plan as an edge stage -> link -> cloud stage.
- The same fleet on Ray Serve: :func:`serve` (labkit.deploy.twin) -> a measured Result; :func:`compare`
  (labkit.deploy.agreement) puts simulated and served side by side with bootstrap intervals; :func:`as_served`
  simulates a pool as Serve runs it (per-replica queues, power of two choices, Serve's overhead measured by
  :func:`serve_overhead_s`); ``with lk.deploy.ray_cluster():`` keeps one local Ray for several of these calls.
- Token-level LLM serving (lab 09): :func:`serve_llm_sim` (labkit.deploy.llm_engine; static / continuous
  batching, chunked prefill, KV budget with preemption; step costs from :class:`StepCost`, labkit.deploy.llm_cost) -> :class:`LLMResult`;
  :func:`serve_llm_disagg` (labkit.deploy.llm_disagg): Splitwise prefill/decode pools, KV moved over a link;
  :func:`size_llm` (labkit.deploy.llm_sizing): the cheapest device and replica count meeting a TTFT/TPOT SLO.
- The small GPT served for real (lab 09): :func:`serve_llm` (labkit.deploy.llm_serve; a torch engine loop with
  continuous batching on a Ray Serve replica, tokens streamed) -> :class:`ServedLLM`; :func:`compare` puts it beside
  ``serve_llm_sim`` with the step costs the replica measured (:class:`GPTStepCost`, labkit.deploy.gpt_engine;
  :func:`measure_step_cost` measures them without Ray).


>>> import labkit as lk
>>> round(lk.deploy.erlang_c(rate_rps=50, service_s=0.01, servers=1).mean_wait_s, 4)
0.01
"""

from __future__ import annotations

from labkit.args import namespace
from labkit.cluster import ray_cluster
from labkit.deploy.agreement import compare
from labkit.deploy.autoscale import decide
from labkit.deploy.carbon_aware import CarbonRouter, carbon_on_series, carbon_router, carbon_tradeoff
from labkit.deploy.gpt_engine import GPTStepCost, measure_step_cost
from labkit.deploy.llm_cost import StepCost
from labkit.deploy.llm_disagg import serve_llm_disagg
from labkit.deploy.llm_engine import serve_llm_sim
from labkit.deploy.llm_result import LLMResult
from labkit.deploy.llm_serve import ServedLLM, serve_llm
from labkit.deploy.llm_sizing import LLMSizing, size_llm
from labkit.deploy.pool import Autoscaling, Batching, Fleet, Pool
from labkit.deploy.queueing import erlang_c, little, md1, pollaczek_khinchine
from labkit.deploy.result import Result
from labkit.deploy.service import PoolState, cold_start_s
from labkit.deploy.sim import simulate
from labkit.deploy.sizing import Sizing, size
from labkit.deploy.tandem import pipeline
from labkit.deploy.twin import as_served, serve, serve_overhead_s
from labkit.deploy.workload import Workload, bursty, diurnal, poisson, trace

__all__ = ["Autoscaling", "Batching", "CarbonRouter", "Fleet", "GPTStepCost", "LLMResult", "LLMSizing", "Pool",
           "PoolState", "Result", "ServedLLM", "Sizing", "StepCost", "Workload", "as_served", "bursty",
           "carbon_on_series", "carbon_router", "carbon_tradeoff", "cold_start_s", "compare", "decide", "diurnal",
           "erlang_c", "little", "md1", "measure_step_cost", "pipeline", "poisson", "pollaczek_khinchine",
           "ray_cluster", "serve", "serve_llm", "serve_llm_disagg", "serve_llm_sim", "serve_overhead_s", "simulate",
           "size", "size_llm", "trace"]

__getattr__, __dir__ = namespace("lk.deploy", __all__)
