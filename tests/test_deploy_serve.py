"""The Ray Serve twin: the same pool, served for real, agrees with its simulation; Serve leaves nothing behind.

Uses the session's one Ray cluster (ray_session). Slow on 2 cores: Serve's controller and two replicas start here."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from procs import serve_processes

import labkit as lk


# Opt-in: it starts Serve's controller and two replicas and compares latencies, too heavy and too load-sensitive for
# every CI run on 2 cores. Where it was written, every Ray start crashed the raylet at load 12-18; on 2026-12-02 it
# passed here at load 2-3 (35 s, Serve's actors gone after serve()). Run it with LABKIT_TEST_SERVE=1.
@pytest.mark.skipif(os.environ.get("LABKIT_TEST_SERVE") != "1",
                    reason="Ray Serve twin not yet validated (set LABKIT_TEST_SERVE=1 to run it)")
def test_served_pool_agrees_with_its_simulation_and_serve_shuts_down(ray_session):
    pool = lk.deploy.Pool("gpu", device="l4", service_s=0.020, replicas=2)     # 20 ms per request, slept out
    w = lk.deploy.poisson(40, 15, seed=0)                                      # rho = 0.4 per replica
    sim = lk.deploy.simulate(pool, w)
    served = lk.deploy.serve(pool, w, time_scale=1.0, run_model=False)
    assert served.source == "served on Ray Serve" and served.requests == len(w)
    assert served.dropped == 0 and np.isfinite(served.finish_s).all()
    table = lk.deploy.compare(sim, served)
    # Ray's own per-request work (handle, router, actor call) adds a few ms on top of the slept service time:
    # the served median is never below the simulated one and stays within 50% of it on a loaded 2-core machine
    assert 0.95 < table.loc["p50_s", "ratio"] < 1.5, table
    assert table.loc["throughput_rps", "ratio"] == pytest.approx(1, rel=0.1)
    # modelled as Serve runs it (per-replica queues, power of two choices, its overhead measured beforehand at low
    # load), the simulation meets the served percentiles: within 10% in bench/deploy.py's quiet runs, 20% here
    overhead = lk.deploy.serve_overhead_s(requests=100)
    assert 0 < overhead < 0.05
    twin = lk.deploy.compare(lk.deploy.simulate(lk.deploy.as_served(pool, overhead), w, seed=0), served)
    for stat in ("p50_s", "p90_s", "p99_s"):
        assert twin.loc[stat, "ratio"] == pytest.approx(1, rel=0.2), twin
    deadline = time.monotonic() + 30
    while serve_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert serve_processes() == [], "Serve actors outlived serve()"


def test_serve_refuses_what_it_cannot_run():
    pools = [lk.deploy.Pool("a", device="l4", service_s=0.01), lk.deploy.Pool("b", device="t4", service_s=0.01)]
    with pytest.raises(ValueError, match="round-robin only"):
        lk.deploy.serve(lk.deploy.Fleet(pools, router="power-of-two"), lk.deploy.poisson(1, 1))
    bad = lk.deploy.Pool("a", device="l4", service_s=0.01, max_ongoing_requests=2, batching=lk.deploy.Batching(8))
    with pytest.raises(ValueError, match="max_ongoing_requests"):
        lk.deploy.serve(bad, lk.deploy.poisson(1, 1))


def test_a_replica_sleeps_out_the_simulated_service_time_one_batch_at_a_time():
    import asyncio

    from labkit.deploy.twin import _replica_class

    class FakeServe:                      # stands in for ray.serve: batch() passes each call through as a batch of 1
        @staticmethod
        def batch(max_batch_size, batch_wait_timeout_s):
            def deco(fn):
                async def one(self, x):
                    return (await fn(self, [x]))[0]
                return one
            return deco

    svc = [0.0, 0.05, 0.06]
    single = _replica_class(FakeServe, 1, 0.0, svc, 2.0)(None, (1,))
    batched = _replica_class(FakeServe, 2, 0.01, svc, 1.0)(None, (1,))

    async def two_at_once(rep):
        t0 = time.perf_counter()
        out = await asyncio.gather(rep(0), rep(1))
        return out, time.perf_counter() - t0

    out, took = asyncio.run(two_at_once(single))
    assert out == [1, 1] and took >= 2 * 2 * 0.05       # serialised by the lock, each 0.05 s x time scale 2
    out, took = asyncio.run(two_at_once(batched))
    assert out == [1, 1] and took >= 2 * 0.05
