"""``lk.deploy.serve``: the same fleet, for real, on Ray Serve (lab 07) — the measurement the simulator is checked
against.

Each pool becomes a Serve deployment with the pool's ``max_ongoing_requests``, ``max_queued_requests``,
``num_replicas`` or ``autoscaling_config`` (delays and look-back stretched by the time scale) and, with Batching, a
``@serve.batch`` method (its timeout stretched too). A replica runs the real model (ONNX Runtime on this CPU, one
thread) on the batch, then sleeps out the rest of the simulated device's service time x ``time_scale``; batches run
one at a time per replica (an asyncio lock), as in the simulator. No HTTP proxy (``proxy_location="Disabled"``): an
open-loop client in this process replays the arrivals (x time_scale) through DeploymentHandles and records each
latency, which is divided by time_scale and given the pool's link delays (the network is not emulated).

Two settings and why: replicas ask for ``num_cpus=0`` (they mostly sleep: a 2-core machine fits several), and
``RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S`` is raised from Ray's 0.1 s to 1 s, because on 2 loaded cores the
router's queue-length probe of a replica misses 0.1 s and the router backs off, leaving replicas idle.

"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from labkit.deploy.pool import Fleet, Pool
from labkit.deploy.result import PoolTotals, Result
from labkit.deploy.workload import Workload

PROBE_DEADLINE_S = "1.0"


def _replica_class(serve, B: int, T: float, svc: list, scale: float):
    """A deployment class for one pool; B, T and the service table are baked in (serve.batch needs constants)."""
    import asyncio

    class Replica:
        def __init__(self, onnx_bytes, input_shape):
            self.sess = None
            if onnx_bytes is not None:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = opts.inter_op_num_threads = 1
                self.sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
                self.name = self.sess.get_inputs()[0].name
            self.shape = tuple(input_shape)
            self.lock = asyncio.Lock()

        async def run(self, b: int):
            async with self.lock:
                t0 = time.perf_counter()
                if self.sess is not None:
                    self.sess.run(None, {self.name: np.zeros((b, *self.shape), np.float32)})
                rest = svc[b] * scale - (time.perf_counter() - t0)
                if rest > 0:
                    await asyncio.sleep(rest)
            return b

        if B > 1:
            @serve.batch(max_batch_size=B, batch_wait_timeout_s=T * scale)
            async def handle_batch(self, xs):
                b = await self.run(len(xs))
                return [b] * len(xs)

            async def __call__(self, x):
                return await self.handle_batch(x)
        else:
            async def __call__(self, x):
                return await self.run(1)

    return Replica


def _calibrate_scale(sessions_bytes, comp) -> float:
    """Smallest time scale at which this CPU runs every pool's batches within the simulated service times,
    with a 2x margin for Ray's own per-request work on a small machine."""
    need = 1.0
    for blob, c in zip(sessions_bytes, comp):
        if blob is None:
            continue
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(blob[0], opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        for b in sorted({1, c.B}):
            x = np.zeros((b, *blob[1]), np.float32)
            sess.run(None, {name: x})
            t0 = time.perf_counter()
            for _ in range(5):
                sess.run(None, {name: x})
            need = max(need, (time.perf_counter() - t0) / 5 / c.svc[b])
    return float(2 * need)


def serve(fleet, workload: Workload, time_scale: float | None = None, address: str | None = None,
          slo_s: float | None = None, run_model: bool = True, num_cpus: int = 2) -> Result:
    """Run `fleet` on Ray Serve against `workload` (open loop) and return the measured Result (lab 07).

    `time_scale` stretches every simulated time (arrivals, service, timeouts, autoscaling delays) when this CPU is
    slower than the simulated device; None picks the smallest scale at which the real model keeps up (x2 margin).
    Latencies are divided back by it. Routes across pools round-robin (one pool: all to it). Always shuts Serve
    down, and Ray too when it started it (``address=None``).

    >>> import labkit as lk
    >>> pool = lk.deploy.Pool("cpu", device="l4", service_s=0.02)
    >>> r = lk.deploy.serve(pool, lk.deploy.poisson(10, 5, seed=0), time_scale=1.0)   # doctest: +SKIP
    """
    from labkit.cluster import ray_cluster
    from labkit.deploy.service import ServiceModel, profile_of

    if isinstance(fleet, Pool):
        fleet = Fleet([fleet], router="round-robin")
    if not isinstance(fleet, Fleet) or not isinstance(workload, Workload):
        raise ValueError("serve takes a Fleet (or a Pool) and a Workload.")
    pools = fleet.pools
    if len(pools) > 1 and fleet.router != "round-robin":
        raise ValueError(f"serve() routes across pools round-robin only; this fleet's router is {fleet.router!r} "
                         "(Ray Serve's own power-of-two routing works inside each pool).")
    for p in pools:
        if p.batching is not None and p.max_ongoing_requests < p.batching.max_batch_size:
            raise ValueError(f"pool {p.name!r}: keep max_ongoing_requests ({p.max_ongoing_requests}) >= "
                             f"max_batch_size ({p.batching.max_batch_size}), or Ray Serve never fills a batch.")
    comp = [ServiceModel(p) for p in pools]
    blobs = []
    for p in pools:
        prof = profile_of(p) if run_model else None
        if prof is None or not isinstance(p.model, str):
            blobs.append(None)
            continue
        from labkit import zoo
        from labkit.compile.ort import export_onnx

        proto = export_onnx(zoo.build(p.model), zoo.example(p.model))
        blobs.append((proto.SerializeToString(), tuple(zoo.info(p.model).input_shape)))
    scale = float(time_scale) if time_scale is not None else _calibrate_scale(blobs, comp)
    if not scale > 0:
        raise ValueError(f"time_scale must be > 0, got {time_scale!r}.")

    os.environ.setdefault("RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S", PROBE_DEADLINE_S)
    n = len(workload)
    arr = workload.arrival_s
    pool_of = (np.arange(n) % len(pools)).astype(np.int32)
    sent = np.full(n, np.nan)
    done = np.full(n, np.nan)
    with ray_cluster(num_cpus=num_cpus, address=address):
        from ray import serve as rserve

        logging.disable(logging.INFO)                  # Serve's INFO lines (started, ready, ...) would bury the results
        try:
            rserve.start(proxy_location="Disabled")
        finally:
            logging.disable(logging.NOTSET)
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
        try:
            handles = []
            for p, c, blob in zip(pools, comp, blobs):
                cls = _replica_class(rserve, c.B, c.T, c.svc, scale)
                opts = dict(name=p.name, max_ongoing_requests=p.max_ongoing_requests,
                            max_queued_requests=p.max_queued_requests, ray_actor_options={"num_cpus": 0})
                if p.autoscaling is not None:
                    a = p.autoscaling
                    opts["autoscaling_config"] = dict(
                        min_replicas=a.min_replicas, max_replicas=a.max_replicas,
                        initial_replicas=a.initial_replicas, target_ongoing_requests=a.target_ongoing_requests,
                        upscale_delay_s=a.upscale_delay_s * scale, downscale_delay_s=a.downscale_delay_s * scale,
                        look_back_period_s=a.look_back_period_s * scale, upscaling_factor=a.upscaling_factor,
                        downscaling_factor=a.downscaling_factor)
                else:
                    opts["num_replicas"] = p.replicas
                app = rserve.deployment(cls).options(**opts).bind(blob[0] if blob else None,
                                                                   blob[1] if blob else (1,))
                handles.append(rserve.run(app, name=p.name, route_prefix=None))
            _off_loop(_warm_and_replay, handles, arr, pool_of, scale, sent, done)
        finally:
            rserve.shutdown()

    lat = (done - sent) / scale + np.array([c.up_s + c.down_s for c in comp])[pool_of]
    finish = arr + lat
    dropped = ~np.isfinite(finish)
    end = max(workload.duration_s, float(np.nanmax(finish)) if (~dropped).any() else 0.0)
    totals, timeline = [], []
    for k, (p, c) in enumerate(zip(pools, comp)):
        reps = p.replicas if p.autoscaling is None else float("nan")
        replica_s = reps * end
        served = int(((pool_of == k) & ~dropped).sum())
        egress = c.egress_usd * served
        energy = float("nan")
        totals.append(PoolTotals(p.name, p.device, c.region, served, replica_s, float("nan"), energy,
                                 replica_s * c.usd_per_s + egress, float("nan"), egress))
        timeline += [(0.0, k, reps, reps), (end, k, reps, reps)]
    notes = (f"served on Ray Serve at time scale {scale:.3g} (this CPU runs the model; the simulated device's "
             "service time is slept out), latencies divided by it; link delays added, not emulated",)
    return Result(arr, np.full(n, np.nan), finish, pool_of, np.zeros(n, np.int32), dropped, tuple(totals),
                  np.array(timeline, dtype=np.float64).reshape(-1, 4), workload.duration_s, slo_s, workload.name,
                  source="served on Ray Serve", notes=notes)


def _off_loop(fn, *args):
    """fn(*args) here, or in a worker thread when this thread runs an asyncio loop (a Jupyter kernel's): Serve's
    blocking calls and asyncio.run refuse to run inside a running loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def _warm_and_replay(handles, arr, pool_of, scale, sent, done):
    for h in handles:                                     # warm up: every replica answers once
        for _ in range(4):
            h.remote(0).result(timeout_s=120)
    _replay(handles, arr, pool_of, scale, sent, done)


def _replay(handles, arr, pool_of, scale, sent, done):
    """Open loop: send request i at arrival_s[i] x scale on this process's clock, whatever came back before."""
    import asyncio

    async def one(i, h):
        sent[i] = time.perf_counter()
        try:
            await h.remote(int(i))
            done[i] = time.perf_counter()
        except Exception:          # BackPressureError (max_queued_requests) or a failed replica: dropped, counted
            done[i] = np.nan

    async def main():
        t0 = time.perf_counter()
        tasks = []
        for i, a in enumerate(arr.tolist()):
            delay = t0 + a * scale - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, handles[pool_of[i]])))
        await asyncio.gather(*tasks)
        sent[:] = sent - t0
        done[:] = done - t0

    asyncio.run(main())


def serve_overhead_s(requests: int = 300, rate_rps: float = 20.0, address: str | None = None, num_cpus: int = 2,
                     seed: int = 0) -> float:
    """Ray Serve's own latency per request on this machine (lab 07): the median served latency of one replica whose
    service takes 1 ms, at a rate too low to queue, less that 1 ms. The handle, the router's queue-length probe and
    the actor call cost it; ``as_served`` adds it to a simulation.

    >>> import labkit as lk
    >>> 0 < lk.deploy.serve_overhead_s(requests=100) < 0.05          # doctest: +SKIP
    True
    """
    from labkit.args import Int, Number, check
    from labkit.deploy.workload import poisson

    requests = check("requests", requests, Int(low=10))
    rate_rps = check("rate_rps", rate_rps, Number(low=0, low_open=True))
    served = serve(Pool("overhead", device="l4", service_s=0.001), poisson(rate_rps, requests / rate_rps, seed=seed),
                   time_scale=1.0, address=address, run_model=False, num_cpus=num_cpus)
    return max(float(np.nanmedian(served.finish_s - served.arrival_s)) - 0.001, 0.0)


def as_served(pool: Pool, overhead_s: float) -> Fleet:
    """`pool` as Ray Serve runs it, to simulate (lab 07): each replica its own pool with its own queue, requests
    routed by power of two choices (Serve's router: two replicas at random, the one with fewer ongoing requests),
    and Serve's per-request overhead (``serve_overhead_s``) paid as a fixed delay that occupies no replica. The
    simulator's Pool queues centrally (any free replica takes the next request), which a real Serve pool does not.

    >>> import labkit as lk
    >>> fleet = lk.deploy.as_served(lk.deploy.Pool("gpu", device="l4", service_s=0.02, replicas=2), 0.003)
    >>> [p.name for p in fleet.pools], fleet.router
    (['gpu/0', 'gpu/1'], 'power-of-two')
    """
    from dataclasses import replace

    from labkit.args import Number, check
    from labkit.targets.links import Link

    if not isinstance(pool, Pool):
        raise ValueError(f"as_served takes a Pool, got {type(pool).__name__}.")
    if pool.autoscaling is not None:
        raise ValueError(f"pool {pool.name!r} autoscales: as_served models a fixed number of replicas "
                         "(set replicas= instead of autoscaling=).")
    if pool.link is not None:
        raise ValueError(f"pool {pool.name!r} sits behind link {pool.link!r}: as_served models Serve's overhead as "
                         "the pool's link; simulate a pool without one.")
    overhead_s = check("overhead_s", overhead_s, Number(low=0))
    serve_link = Link("ray-serve", 1e15, 1e15, overhead_s, 0.0, 0.0,   # half the RTT each way: the overhead in all
                      notes="Ray Serve's measured per-request overhead (lk.deploy.serve_overhead_s), not a network")
    return Fleet([replace(pool, name=f"{pool.name}/{i}", replicas=1, link=serve_link) for i in range(pool.replicas)],
                 router="power-of-two")
