"""lk.deploy.simulate's event loop on small cases worked by hand: routers' load and state, autoscaling counters
(cancelled cold starts, replicas stopping after their batch, the look-back average), the order of events at the
same instant, and edge cases (no requests, every request dropped). Written for the survivors of issue 15's
mutation run of labkit/deploy/sim.py (bench/mutation_budget.toml); each case says what it pins. Fast: < 1 s each.

Every expected value below is worked out by hand from the documented rules (the module docstring of
labkit.deploy.sim, Ray's autoscaling rule in labkit.deploy.autoscale); the code is only run, never restated.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from procs import deadline

import labkit as lk
from labkit.deploy.service import PoolState, ServiceModel


def same(a, b):
    return np.allclose(a, b, rtol=0, atol=1e-9, equal_nan=True)


def run(pools, arrivals, router="round-robin", seed=0, **kw):
    fleet = lk.deploy.Fleet(pools, router=router, **kw) if isinstance(pools, list) else pools
    with deadline():
        return lk.deploy.simulate(fleet, lk.deploy.Workload(arrivals), seed=seed, _fast=False)


def auto(**kw):
    cfg = dict(min_replicas=1, max_replicas=3, target_ongoing_requests=1, upscale_delay_s=0, downscale_delay_s=0,
               look_back_period_s=1.0, control_interval_s=1.0)
    return lk.deploy.Autoscaling(**{**cfg, **kw})


# ---- routers ---------------------------------------------------------------------------------------------------

def test_least_loaded_compares_ongoing_per_running_replica():
    # a: 1 replica, b: 2 replicas, 10 s per request. #0: both idle -> a (first); #1: a 1/1, b 0 -> b;
    # #2: a 1/1, b 1/2 -> b; #3: a 1/1, b 2/2 -> tie -> a
    a = lk.deploy.Pool("a", device="l4", service_s=10.0)
    b = lk.deploy.Pool("b", device="l4", service_s=10.0, replicas=2)
    r = run([a, b], [0.0, 0.1, 0.2, 0.3], router="least-loaded")
    assert r.pool.tolist() == [0, 1, 1, 0]
    assert same(r.start_s, [0.0, 0.1, 0.2, 10.0])


def test_least_loaded_with_no_running_replica_prefers_an_empty_pool():
    # two pools scaled to zero (min 0): #0 finds both empty -> a (first); #1 finds a holding #0 (queued, no
    # replica: its load is infinite) and b empty -> b. Each scales from zero at the 1 s tick, ready at 1.5 s.
    pools = [lk.deploy.Pool(n, device="l4", service_s=1.0, cold_start_s=0.5,
                            autoscaling=auto(min_replicas=0, max_replicas=1)) for n in "ab"]
    r = run(pools, [0.0, 0.1], router="least-loaded")
    assert r.pool.tolist() == [0, 1]
    assert same(r.start_s, [1.5, 1.5]) and same(r.finish_s, [2.5, 2.5])


def test_edge_first_spills_to_the_least_loaded_cloud_pool_never_back_to_the_edge():
    # edge (2 replicas) and two clouds (1 each), 10 s per request, spill_queue 1. #0 #1 run at the edge, #2 waits
    # there; from #3 on the edge has one waiting, so each goes to the less loaded cloud (the first on a tie):
    # #3 A (0, 0), #4 B (1, 0), #5 A (1, 1), #6 B (2, 1), #7 A (2, 2) -- even though the edge's load (3/2) is
    # lower than either cloud's by then.
    edge = lk.deploy.Pool("edge", device="jetson-orin-nano", service_s=10.0, replicas=2)
    clouds = [lk.deploy.Pool(n, device="l4", service_s=10.0) for n in ("A", "B")]
    r = run([edge, *clouds], [0.1 * k for k in range(8)], router="edge-first", spill_queue=1)
    assert r.pool.tolist() == [0, 0, 0, 1, 2, 1, 2, 1]


def test_edge_first_with_only_edge_pools_spills_to_the_least_loaded_one():
    # spill_queue 1, 1 s per request: #0 #1 to e0 (#1 waits), #2 #3 to e1 (#3 waits); #4 finds both with one
    # waiting: least loaded over all pools, a tie (2 and 2) -> e0
    pools = [lk.deploy.Pool(n, device="jetson-orin-nano", service_s=1.0) for n in ("e0", "e1")]
    r = run(pools, [0.0, 0.1, 0.2, 0.3, 0.4], router="edge-first", spill_queue=1)
    assert r.pool.tolist() == [0, 0, 1, 1, 0]
    assert same(r.finish_s, [1.0, 2.0, 1.2, 2.2, 3.0])


def test_power_of_two_draws_two_different_pools_uniformly():
    # Pool c is busy for good after its first request (10^6 s); a and b are idle at every arrival (1 ms of work,
    # 10 ms apart). A request goes to c only if both draws are c (never: they differ), and otherwise to the
    # first draw unless that is c. Over the six ordered pairs of distinct pools, a and b get half each.
    fast = [lk.deploy.Pool(n, device="l4", service_s=0.001) for n in "ab"]
    slow = lk.deploy.Pool("c", device="l4", service_s=1e6)
    w = np.arange(4000) * 0.01
    r = run([*fast, slow], w, router="power-of-two", seed=3)
    counts = np.bincount(r.pool, minlength=3)
    assert counts[2] == 1, counts
    share = counts[0] / (len(w) - 1)
    assert abs(share - 0.5) < 0.04, share              # ~5 standard errors; a fixed offset gives 1/3 or 2/3
    again = run([*fast, slow], w, router="power-of-two", seed=3)
    assert (again.pool == r.pool).all()                # the seed fixes the draws


def test_a_router_function_sees_each_pools_state_at_the_arrival():
    seen = []

    def router(req, states):
        seen.append((req["index"], req["arrival_s"], req["size"], tuple(states)))
        return 0 if req["index"] == 0 else 1

    edge = lk.deploy.Pool("edge", device="jetson-orin-nano", service_s=1.0)
    cloud = lk.deploy.Pool("cloud", device="l4", service_s=1.0, replicas=2)
    w = lk.deploy.Workload([0.0, 0.1, 0.2, 0.3, 0.4]).with_column("size", [1.0, 1.0, 1.0, 1.0, 2.0])
    with deadline():
        r = lk.deploy.simulate(lk.deploy.Fleet([edge, cloud], router=router), w)
    S = PoolState
    # (name, ongoing = waiting + in service, waiting, running replicas, is_edge)
    want = [(0, 0.0, 1.0, (S("edge", 0, 0, 1, True), S("cloud", 0, 0, 2, False))),
            (1, 0.1, 1.0, (S("edge", 1, 0, 1, True), S("cloud", 0, 0, 2, False))),
            (2, 0.2, 1.0, (S("edge", 1, 0, 1, True), S("cloud", 1, 0, 2, False))),
            (3, 0.3, 1.0, (S("edge", 1, 0, 1, True), S("cloud", 2, 0, 2, False))),
            (4, 0.4, 2.0, (S("edge", 1, 0, 1, True), S("cloud", 3, 1, 2, False)))]
    assert seen == want
    assert r.pool.tolist() == [0, 1, 1, 1, 1]


@pytest.mark.parametrize("value", [True, 2, -1, 0.0, "0"])
def test_a_router_function_must_return_a_pool_index(value):
    pools = [lk.deploy.Pool(n, device="l4", service_s=0.01) for n in "ab"]
    fleet = lk.deploy.Fleet(pools, router=lambda req, states: value)
    with pytest.raises(ValueError, match=r"pool index in \[0, 1\], got "):
        lk.deploy.simulate(fleet, lk.deploy.Workload([0.0]))


def test_a_router_function_may_return_any_pool_including_the_first_and_last():
    pools = [lk.deploy.Pool(n, device="l4", service_s=0.01) for n in "abc"]
    fleet = lk.deploy.Fleet(pools, router=lambda req, states: np.int64([0, 2, 1][req["index"] % 3]))
    r = lk.deploy.simulate(fleet, lk.deploy.Workload([0.0, 1.0, 2.0, 3.0]))
    assert r.pool.tolist() == [0, 2, 1, 0]


# ---- autoscaling counters --------------------------------------------------------------------------------------

def test_cancelled_cold_starts_then_replicas_that_do_start_by_hand():
    # 1 s per request, one at a time, cold start 2.5 s, target 1 ongoing per replica, decisions every 1 s on the
    # last 1 s, 1 to 3 replicas.
    # Phase 1: #0-#2 at 0.5-0.7 run 0.5-3.5 on the one replica. Ticks: 1 s sees 3 ongoing -> 3 (two start, ready
    #   at 3.5); 2 s sees 2 -> 2 (one start cancelled); 3 s sees 1 -> 1 (the other cancelled): both 3.5 s readies
    #   are void.
    # Phase 2: #3-#6 at 5.1-5.4 run 5.1-9.1 on the one replica. 6 s: 4 ongoing -> 3 (max; two start, ready at
    #   8.5); 7 s: 3; 8 s: 2 -> one start cancelled; 8.5 s: the other serves (idle: #6 took the old one at 8.1);
    #   9 s: 1 ongoing -> 1, the idle new one stops.
    # Phase 3: #7 #8 at 11.5 find one replica: #8 waits until 12.5. 12 s: 2 -> 2 (ready at 14.5); 13 s: 1 -> 1
    #   (cancelled). 14 s: nothing ongoing, nothing to come: the ticks stop.
    pool = lk.deploy.Pool("p", device="l4", service_s=1.0, max_ongoing_requests=1, cold_start_s=2.5,
                          autoscaling=auto())
    arr = [0.5, 0.6, 0.7, 5.1, 5.2, 5.3, 5.4, 11.5, 11.5]
    r = run(pool, arr)
    st = [0.5, 1.5, 2.5, 5.1, 6.1, 7.1, 8.1, 11.5, 12.5]
    assert same(r.start_s, st) and same(r.finish_s, np.add(st, 1.0))
    assert same(r.replicas, [[0, 0, 1, 1], [1, 0, 3, 1], [2, 0, 2, 1], [3, 0, 1, 1],
                             [6, 0, 3, 1], [8, 0, 2, 1], [8.5, 0, 2, 2], [9, 0, 1, 1],
                             [12, 0, 2, 1], [13, 0, 1, 1], [13.5, 0, 1, 1]])
    # paid: 1 + 3 + 2 + 3 x 1 + 2 x 3 + 2 + 3 x 1 + 2 + 0.5
    assert r.pools[0].replica_s == pytest.approx(22.5)


def test_busy_replicas_asked_to_stop_twice_stop_after_their_requests_by_hand():
    # 3 replicas at start, #0-#2 at 0 run 10, 15 and 20 s (size 1, 1.5, 2). Target 3 ongoing per replica,
    # downscaling factor 0.5, no delays. 1 s: 3 ongoing -> desired 1, half-way from 3: 2 (one busy replica to
    # stop). 2 s: from 2 (running minus those stopping) half-way to 1 is 1.5 -> 2, which Ray steps down to 1
    # (a second replica to stop). Later ticks want 1 = what is left: no more changes. They stop at 10 and 15 s.
    pool = lk.deploy.Pool("p", device="l4", service_s=10.0, max_ongoing_requests=1,
                          autoscaling=auto(initial_replicas=3, target_ongoing_requests=3, downscaling_factor=0.5))
    w = lk.deploy.Workload([0.0, 0.0, 0.0]).with_column("size", [1.0, 1.5, 2.0])
    with deadline():
        r = lk.deploy.simulate(pool, w)
    assert same(r.start_s, [0, 0, 0]) and same(r.finish_s, [10, 15, 20])
    assert same(r.replicas, [[0, 0, 3, 3], [1, 0, 3, 3], [2, 0, 3, 3], [10, 0, 2, 2], [15, 0, 1, 1],
                             [20, 0, 1, 1]])
    assert r.pools[0].replica_s == pytest.approx(3 * 10 + 2 * 5 + 1 * 5)


def test_the_autoscaler_averages_ongoing_requests_over_the_look_back_period():
    # decisions every 0.5 s on the last 1 s: two samples. #0-#2 at 0.4-0.42, 0.3 s each, cold start 0.05 s.
    # 0.5 s: samples [3] -> 3 replicas (ready 0.55, #1 #2 run then); 1.0 s: [3, 0] -> 1.5 -> 2 replicas (an idle
    # one stops; one sample alone would say 1). Nothing is ongoing or to come after that tick: the ticks stop.
    pool = lk.deploy.Pool("p", device="l4", service_s=0.3, max_ongoing_requests=1, cold_start_s=0.05,
                          autoscaling=auto(max_replicas=4, control_interval_s=0.5, look_back_period_s=1.0))
    r = run(pool, [0.4, 0.41, 0.42])
    assert same(r.start_s, [0.4, 0.55, 0.55]) and same(r.finish_s, [0.7, 0.85, 0.85])
    assert same(r.replicas, [[0, 0, 1, 1], [0.5, 0, 3, 1], [0.55, 0, 3, 2], [0.55, 0, 3, 3], [1.0, 0, 2, 2],
                             [1.0, 0, 2, 2]])
    assert r.pools[0].replica_s == pytest.approx(0.5 + 3 * 0.5)


def test_autoscaling_behind_a_link_waits_for_requests_still_on_their_way():
    # The requests arrive at 0 but reach the pool 1.2 s later (LTE: 35 ms + 1.165 s upload); the autoscaler keeps
    # ticking while they are on the way: the 2 s tick sees 2 ongoing -> 2 replicas (ready at 2.5); then the
    # ticks stop once nothing is ongoing.
    pool = lk.deploy.Pool("p", device="l4", service_s=10.0, max_ongoing_requests=1, cold_start_s=0.5,
                          link="lte", input_bytes=851_906, output_bytes=0, autoscaling=auto(max_replicas=2))
    m = ServiceModel(pool)
    assert 1.0 < m.up_s < 2.0
    r = run(pool, [0.0, 0.0])
    assert same(r.start_s, [m.up_s, 2.5]) and same(r.finish_s, [m.up_s + 10 + m.down_s, 12.5 + m.down_s])
    assert r.replicas[:2].tolist() == [[0, 0, 1, 1], [2, 0, 2, 1]]


# ---- the order of events at the same instant: the one scheduled first runs first -------------------------------

def test_a_request_entering_when_a_request_finishes_takes_its_place():
    # no queue; #0 reaches the pool at u and finishes at u + 1 (scheduled at u); #1 arrives at 1.0 and reaches
    # the pool at 1 + u (scheduled at 1.0, later): the finish runs first, so #1 is taken, not dropped
    pool = lk.deploy.Pool("p", device="l4", service_s=1.0, max_ongoing_requests=1, max_queued_requests=0,
                          link="lte", input_bytes=0, output_bytes=0)
    m = ServiceModel(pool)
    r = run(pool, [0.0, 1.0])
    assert not r.dropped_mask.any()
    assert same(r.start_s, [m.up_s, 1 + m.up_s]) and same(r.finish_s, [1 + m.up_s + m.down_s, 2 + m.up_s + m.down_s])


def test_a_request_entering_at_a_batch_timeout_joins_the_batch():
    # batches of up to 3, 0.5 s timeout; upload u > 0.5 s. #0 reaches the pool at u and opens a batch whose
    # timeout (u + 0.5) is scheduled at u; #1 arrives at 0.5 and reaches the pool at 0.5 + u, scheduled at 0.5,
    # before the timeout was: #1 enters first and the batch closes with both
    pool = lk.deploy.Pool("p", device="l4", service_s={1: 1.0, 2: 1.5, 3: 2.0}, max_ongoing_requests=3,
                          batching=lk.deploy.Batching(max_batch_size=3, batch_wait_timeout_s=0.5),
                          link="lte", input_bytes=438_750, output_bytes=0)
    m = ServiceModel(pool)
    assert m.up_s > 0.5
    r = run(pool, [0.0, 0.5])
    assert r.batch.tolist() == [2, 2]
    assert same(r.start_s, [m.up_s + 0.5] * 2) and same(r.finish_s, [m.up_s + 2 + m.down_s] * 2)


def test_a_request_entering_when_a_replica_becomes_ready_is_judged_before_it():
    # room for 1 in service + 1 queued per running replica. #0 (reaches the pool at u ~ 0.7) runs; #1 (0.1 + u)
    # waits; the 1 s tick sees 2 ongoing -> a second replica, ready at 1 + cold = 0.5 + u, the instant #2 (sent
    # at 0.5) reaches the pool. #2's arrival was scheduled first: it finds the pool full (1 + 1) and is dropped;
    # then the new replica takes #1.
    kw = dict(device="l4", service_s=10.0, max_ongoing_requests=1, max_queued_requests=1, link="lte",
              input_bytes=486_000, output_bytes=0, autoscaling=auto(max_replicas=2))
    u = ServiceModel(lk.deploy.Pool("p", **kw)).up_s
    assert 0.5 < u < 0.9
    pool = lk.deploy.Pool("p", cold_start_s=(0.5 + u) - 1.0, **kw)
    m = ServiceModel(pool)
    r = run(pool, [0.0, 0.1, 0.5])
    assert r.dropped_mask.tolist() == [False, False, True]
    assert same(r.start_s, [u, 0.5 + u, np.nan]) and same(r.finish_s, [u + 10 + m.down_s, 10.5 + u + m.down_s,
                                                                       np.nan])


def test_a_batch_without_a_timeout_closes_at_once():
    # batch_wait_timeout_s 0: a free replica runs what is waiting at once. #0 and #1 are sent together and reach
    # the pool at the same instant, #0 first: #0 runs alone, #1 after it. Both engines (the fast path looped
    # forever on a zero timeout before this test).
    pool = lk.deploy.Pool("p", device="l4", service_s={1: 1.0, 2: 1.5}, max_ongoing_requests=2,
                          batching=lk.deploy.Batching(max_batch_size=2, batch_wait_timeout_s=0.0),
                          link="lte", input_bytes=0, output_bytes=0)
    m = ServiceModel(pool)
    for fast in (True, False):
        with deadline():
            r = lk.deploy.simulate(pool, lk.deploy.Workload([0.0, 0.0]), _fast=fast)
        assert r.batch.tolist() == [1, 1], fast
        assert same(r.start_s, [m.up_s, m.up_s + 1]), fast
    # without a link, 2 replicas, batches of up to 3: a replica freed at t takes what arrived before t
    pool = lk.deploy.Pool("p", device="l4", service_s={1: 1.0, 2: 1.5, 3: 1.75}, max_ongoing_requests=3,
                          replicas=2, batching=lk.deploy.Batching(max_batch_size=3, batch_wait_timeout_s=0.0))
    arr = [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 1.2]
    for fast in (True, False):
        with deadline():
            r = lk.deploy.simulate(pool, lk.deploy.Workload(arr), _fast=fast)
        # #0 and #1 alone at 0 (one replica each); both finish at 1.0, before #5-#7 arrive: the first takes
        # #2 #3 #4 (until 2.75), the second finds nothing waiting; #5 then finds it idle and runs alone (until
        # 2.0), when it takes #6 #7 #8
        assert r.batch.tolist() == [1, 1, 3, 3, 3, 1, 3, 3, 3], fast
        assert same(r.start_s, [0, 0, 1, 1, 1, 1, 2, 2, 2]), fast


def test_the_first_ticks_of_two_pools_run_before_a_finish_at_the_same_instant():
    # two autoscaled pools (0 to 3 replicas, 1 at start). #0 goes to a and finishes at 1.0, the instant of both
    # pools' first tick, which were scheduled at the start: a's tick runs first and sees 1 ongoing (keeps 1); b's
    # sees none -> 0. At 2 s a sees none -> 0 and the ticks stop.
    pools = [lk.deploy.Pool(n, device="l4", service_s=1.0, autoscaling=auto(min_replicas=0, initial_replicas=1))
             for n in "ab"]
    r = run(pools, [0.0])
    assert same(r.replicas, [[0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 0, 0], [2, 0, 0, 0], [2, 0, 0, 0], [2, 1, 0, 0]])


# ---- edge cases ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fast", [True, False])
def test_no_requests_costs_nothing(fast):
    pool = lk.deploy.Pool("p", device="l4", service_s=1.0, replicas=2)
    with deadline():
        r = lk.deploy.simulate(pool, lk.deploy.Workload([]), _fast=fast)
    assert r.pools[0].replica_s == 0.0 and r.pools[0].requests == 0
    assert r.replicas.tolist() == [[0, 0, 2, 2], [0, 0, 2, 2]]


def test_every_request_dropped_runs_without_warnings():
    # no replica (min 0) and no queue: every request is dropped; replicas are paid until the workload's end
    pool = lk.deploy.Pool("p", device="l4", service_s=1.0, max_queued_requests=0,
                          autoscaling=auto(min_replicas=0, initial_replicas=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = run(pool, [0.0, 0.5])
    assert r.dropped_mask.all() and r.pools[0].requests == 0 and r.pools[0].replica_s == 0.0


def test_both_engines_return_the_same_array_types():
    pool = lk.deploy.Pool("p", device="l4", service_s=0.01)
    w = lk.deploy.Workload([0.0, 0.005, 0.5])
    fast, loop = (lk.deploy.simulate(pool, w, _fast=f) for f in (True, False))
    for name in ("pool", "batch", "start_s", "finish_s", "replicas", "dropped_mask"):
        assert getattr(fast, name).dtype == getattr(loop, name).dtype, name
    assert loop.pool.dtype == np.int32 and loop.batch.dtype == np.int32    # 4 bytes a request at 10^6 requests


# ---- the fast path: the event loop's results, and never a loop without end ------------------------------------

@pytest.mark.parametrize("case", ["single", "sizes", "batches", "batches-sizes", "pairs", "no-wait", "fleet",
                                  "fleet-sizes"])
def test_the_fast_path_gives_the_event_loops_results(case):
    batching = lk.deploy.Batching(max_batch_size=2 if case == "pairs" else 3,
                                  batch_wait_timeout_s=0.0 if case == "no-wait" else 0.004)
    svc = {1: 0.004, 2: 0.005, 3: 0.006}
    kw = dict(device="l4", max_ongoing_requests=3)
    if case in ("single", "sizes"):
        fleet = lk.deploy.Pool("p", service_s=0.004, replicas=2, link="lte", input_bytes=1_000, **kw)
    elif case.startswith("fleet"):
        fleet = lk.deploy.Fleet([lk.deploy.Pool("a", service_s=0.002, **kw),
                                 lk.deploy.Pool("b", service_s=0.004, link="lte", input_bytes=1_000, **kw),
                                 lk.deploy.Pool("c", service_s=svc, replicas=2, batching=batching, **kw)],
                                router="round-robin")
    else:
        fleet = lk.deploy.Pool("p", service_s=svc, replicas=2, batching=batching, **kw)
    w = lk.deploy.poisson(600, 2, seed=9)
    if "sizes" in case:
        w = w.with_column("size", np.random.default_rng(1).uniform(0.5, 2.0, len(w)))
    with deadline(20):
        fast, loop = lk.deploy.simulate(fleet, w), lk.deploy.simulate(fleet, w, _fast=False)
    assert same(fast.start_s, loop.start_s) and same(fast.finish_s, loop.finish_s)
    assert (fast.batch == loop.batch).all() and (fast.pool == loop.pool).all()
    assert same(fast.replicas, loop.replicas)         # the replica timeline, rows in time order
    for name in ("pool", "batch", "start_s", "finish_s", "replicas", "dropped_mask"):
        assert getattr(fast, name).dtype == getattr(loop, name).dtype, name
    for a, b in zip(fast.pools, loop.pools):
        assert a.busy_s == pytest.approx(b.busy_s, rel=1e-9) and a.replica_s == pytest.approx(b.replica_s)
        assert a.energy_j == pytest.approx(b.energy_j, rel=1e-9) and a.requests == b.requests


def test_the_default_seed_is_zero():
    # simulate(..., seed=0) is the documented default: a lab's printed numbers come from the default
    pools = [lk.deploy.Pool(n, device="l4", service_s=0.02) for n in "abc"]
    fleet = lk.deploy.Fleet(pools, router="power-of-two")
    w = lk.deploy.poisson(100, 5, seed=1)
    assert (lk.deploy.simulate(fleet, w).pool == lk.deploy.simulate(fleet, w, seed=0).pool).all()
    assert (lk.deploy.simulate(fleet, w).pool != lk.deploy.simulate(fleet, w, seed=1).pool).any()


@pytest.mark.parametrize("fast", [True, False])
def test_the_result_names_its_pools_its_workload_and_its_slo(fast):
    pools = [lk.deploy.Pool("a", device="l4", service_s=0.01),
             lk.deploy.Pool("b", device="jetson-orin-nano", service_s=0.01, region="fr")]
    w = lk.deploy.poisson(20, 1, seed=0)
    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router="round-robin"), w, slo_s=0.05, _fast=fast)
    assert [(t.name, t.device, t.region) for t in r.pools] == [("a", "l4", lk.device("l4").region),
                                                               ("b", "jetson-orin-nano", "fr")]
    assert r.workload == w.name == "poisson(20 req/s)" and r.slo_s == 0.05


def test_simulate_says_what_it_was_given():
    pool = lk.deploy.Pool("p", device="l4", service_s=0.01)
    with pytest.raises(ValueError, match=r"takes a Fleet or a Pool, got int\.$"):
        lk.deploy.simulate(5, lk.deploy.Workload([0.0]))
    with pytest.raises(ValueError, match=r"takes a Workload \(lk.deploy.poisson/diurnal/bursty/trace\), got list\.$"):
        lk.deploy.simulate(pool, [0.0])
    with pytest.raises(ValueError, match=r"^slo_s must be a positive"):
        lk.deploy.simulate(pool, lk.deploy.Workload([0.0]), slo_s=-1)


def test_a_queue_bound_of_one_drops_on_the_default_engine():
    # 1 in service + 1 waiting: the third request, sent while both are there, is dropped
    pool = lk.deploy.Pool("p", device="l4", service_s=1.0, max_ongoing_requests=1, max_queued_requests=1)
    r = lk.deploy.simulate(pool, lk.deploy.Workload([0.0, 0.1, 0.2]))
    assert r.dropped_mask.tolist() == [False, False, True] and same(r.finish_s, [1.0, 2.0, np.nan])
