"""lk.deploy.simulate's two engines (the fast path and the event loop), request by request, against a simpy model
that records every request's start, finish and batch, and against small cases worked by hand: drops at the
queue bound, the edge-first spill, least-loaded ties (issue 15's mutation run; fast: seconds in all).

The simpy model is written here from the documented rules (FIFO, one batch gathering at a time, a batch closes at
max_batch_size or batch_wait_timeout_s after its first request was taken, service(b) x max(size)); the money and
energy oracles are the formulas of the simulator's docstring applied to what simpy recorded.
"""

from __future__ import annotations

import numpy as np
import pytest

import labkit as lk

L4 = lk.device("l4")


def simpy_pool(arrivals, service_of_batch, servers, max_batch=1, timeout_s=0.0, sizes=None, up=0.0, down=0.0):
    """(start, finish, batch, busy_s) of a FIFO pool of `servers` replicas in simpy; a request reaches the pool
    `up` seconds after it arrives and finishes `down` seconds after its batch ends."""
    import simpy

    env = simpy.Environment()
    store = simpy.Store(env)
    gate = simpy.Resource(env, capacity=1)
    n = len(arrivals)
    start, finish, batch = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, int)
    sizes = np.ones(n) if sizes is None else np.asarray(sizes)
    busy = [0.0]

    def source():
        for j, a in enumerate(arrivals):
            yield env.timeout(a + up - env.now)
            store.put(j)

    def replica():
        while True:
            with gate.request() as turn:
                yield turn
                members = [(yield store.get())]
                deadline = env.now + timeout_s
                while len(members) < max_batch:
                    get = store.get()
                    got = yield get | env.timeout(deadline - env.now)
                    if get in got:
                        members.append(got[get])
                    else:
                        get.cancel()
                        break
            s = service_of_batch(len(members)) * max(sizes[j] for j in members)
            for j in members:
                start[j], batch[j] = env.now, len(members)
            busy[0] += s
            yield env.timeout(s)
            for j in members:
                finish[j] = env.now + down

    env.process(source())
    for _ in range(servers):
        env.process(replica())
    env.run()
    return start, finish, batch, busy[0]


def same(a, b):
    return np.allclose(a, b, rtol=0, atol=1e-9, equal_nan=True)


def check_totals(r, busy, replicas, egress_per_request=0.0):
    """Replica-seconds = replicas x span; energy = idle x replica-seconds + (peak - idle) x busy (a service_s pool
    draws peak power while busy); cost = replica-seconds x price + egress; carbon = energy x the grid's g/J."""
    tot = r.pools[0]
    span = max(r.duration_s, float(np.nanmax(r.finish_s)))
    assert tot.requests == r.requests - r.dropped
    assert tot.replica_s == pytest.approx(replicas * span, rel=1e-12)
    assert tot.busy_s == pytest.approx(busy, rel=1e-9)
    assert tot.energy_j == pytest.approx(L4.idle_w * replicas * span + (L4.peak_w - L4.idle_w) * busy, rel=1e-9)
    egress = egress_per_request * tot.requests
    assert tot.egress_usd == pytest.approx(egress, rel=1e-12, abs=1e-15)
    assert tot.cost_usd == pytest.approx(replicas * span * L4.price_usd_per_hour / 3600 + egress, rel=1e-9)
    g_per_kwh = lk.carbon.intensity(L4.region) * lk.carbon.pue(L4)
    assert tot.carbon_g == pytest.approx(tot.energy_j / 3.6e6 * g_per_kwh, rel=1e-9)
    # the replica timeline of a fixed pool: all replicas from 0 to the end
    assert r.replicas.tolist() == [[0.0, 0.0, replicas, replicas], [pytest.approx(span), 0.0, replicas, replicas]]


@pytest.mark.parametrize("fast", [True, False])
def test_unbatched_replicas_with_sizes_and_a_link_equal_simpy(fast):
    lte = lk.link("lte")
    pool = lk.deploy.Pool("p", device="l4", service_s=0.01, replicas=3, link="lte", input_bytes=20_000,
                          output_bytes=1_000)
    w = lk.deploy.poisson(250, 20, seed=6)
    w = w.with_column("size", np.random.default_rng(8).exponential(1.0, len(w)))
    r = lk.deploy.simulate(pool, w, _fast=fast)
    up = lte.rtt_s / 2 + 8 * 20_000 / lte.uplink_bps
    down = lte.rtt_s / 2 + 8 * 1_000 / lte.downlink_bps
    st, fin, b, busy = simpy_pool(w.arrival_s, lambda k: 0.01, 3, sizes=w.columns["size"], up=up, down=down)
    assert same(r.start_s, st) and same(r.finish_s, fin) and (r.batch == 1).all() and (b == 1).all()
    assert not r.dropped_mask.any() and (r.pool == 0).all()
    check_totals(r, busy, 3, egress_per_request=1_000 / 1e9 * lte.egress_usd_per_gb)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("replicas, rate", [(1, 350), (2, 500)])
def test_batches_with_sizes_equal_simpy(fast, replicas, rate):
    service = {b: 0.003 + 0.001 * b for b in range(1, 5)}
    pool = lk.deploy.Pool("p", device="l4", service_s=service, replicas=replicas, max_ongoing_requests=4,
                          batching=lk.deploy.Batching(max_batch_size=4, batch_wait_timeout_s=0.004))
    w = lk.deploy.poisson(rate, 12, seed=2)
    w = w.with_column("size", np.random.default_rng(3).uniform(0.5, 1.5, len(w)))
    r = lk.deploy.simulate(pool, w, _fast=fast)
    st, fin, b, busy = simpy_pool(w.arrival_s, service.__getitem__, replicas, max_batch=4, timeout_s=0.004,
                                  sizes=w.columns["size"])
    assert same(r.start_s, st) and same(r.finish_s, fin) and (r.batch == b).all()
    assert (b == 4).any() and (b == 1).any() and ((b > 1) & (b < 4)).any()    # full, partial and single batches
    check_totals(r, busy, replicas)


@pytest.mark.parametrize("fast", [True, False])
def test_round_robin_fleet_equals_simpy_per_pool(fast):
    pools = [lk.deploy.Pool("a", device="l4", service_s=0.012), lk.deploy.Pool("b", device="l4", service_s=0.004)]
    w = lk.deploy.poisson(120, 20, seed=4)
    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router="round-robin"), w, _fast=fast)
    assert (r.pool == np.arange(len(w)) % 2).all()
    for p, s in enumerate((0.012, 0.004)):
        mine = r.pool == p
        st, fin, _, busy = simpy_pool(w.arrival_s[mine], lambda k, s=s: s, 1)
        assert same(r.start_s[mine], st) and same(r.finish_s[mine], fin)
        assert r.pools[p].busy_s == pytest.approx(busy) and r.pools[p].requests == mine.sum()


# ---- worked by hand (the event loop) ---------------------------------------------------------------------------

def hand(arrivals, pools, router="round-robin", **kw):
    fleet = lk.deploy.Fleet(pools, router=router, **kw) if len(pools) > 1 else pools[0]
    return lk.deploy.simulate(fleet, lk.deploy.Workload(arrivals), _fast=False)


def test_drops_at_the_queue_bound_by_hand():
    one = dict(device="l4", service_s=1.0, replicas=1, max_ongoing_requests=1)
    # 1 in service + 2 queued: the 4th and 5th arrivals find the pool full
    r = hand([0.0, 0.1, 0.2, 0.3, 0.4], [lk.deploy.Pool("p", max_queued_requests=2, **one)])
    assert r.dropped_mask.tolist() == [False, False, False, True, True]
    assert same(r.start_s, [0, 1, 2, np.nan, np.nan]) and same(r.finish_s, [1, 2, 3, np.nan, np.nan])
    assert r.pools[0].requests == 3 and r.pools[0].busy_s == 3.0
    assert r.batch.tolist() == [1, 1, 1, 0, 0] and r.pool.tolist() == [0] * 5    # a dropped request ran no batch
    # max_ongoing_requests 2 without batching: room for one more (the replica still serves one at a time)
    r = hand([0.0, 0.1, 0.2, 0.3, 0.4], [lk.deploy.Pool("p", max_queued_requests=2, **{**one,
                                                                                      "max_ongoing_requests": 2})])
    assert r.dropped_mask.tolist() == [False, False, False, False, True]
    # no queue: a request arriving exactly when the one in service finishes is taken (the finish comes first)
    r = hand([0.0, 0.5, 1.0, 1.5], [lk.deploy.Pool("p", max_queued_requests=0, **one)])
    assert r.dropped_mask.tolist() == [False, True, False, True]
    assert same(r.finish_s, [1, np.nan, 2, np.nan])


def test_edge_first_spills_at_the_queue_bound_by_hand():
    edge = lk.deploy.Pool("edge", device="jetson-orin-nano", service_s=1.0)
    cloud = lk.deploy.Pool("cloud", device="l4", service_s=1.0)
    # spill_queue 1: the edge serves #0, queues #1; #2 and #3 find one waiting there and go to the cloud
    r = hand([0.0, 0.1, 0.2, 0.3], [edge, cloud], router="edge-first", spill_queue=1)
    assert r.pool.tolist() == [0, 0, 1, 1]
    assert same(r.finish_s, [1.0, 2.0, 1.2, 2.2])
    r = hand([0.0, 0.1, 0.2, 0.3], [edge, cloud], router="edge-first", spill_queue=2)
    assert r.pool.tolist() == [0, 0, 0, 1]


def test_least_loaded_breaks_ties_to_the_first_pool_by_hand():
    a, b = lk.deploy.Pool("a", device="l4", service_s=1.0), lk.deploy.Pool("b", device="l4", service_s=1.0)
    # #0: both idle -> a; #1: a busy -> b; #2: one each -> a (queued); at 1.5 a serves #2, b is idle -> b
    r = hand([0.0, 0.1, 0.2, 1.5], [a, b], router="least-loaded")
    assert r.pool.tolist() == [0, 1, 0, 1]
    assert same(r.start_s, [0.0, 0.1, 1.0, 1.5]) and same(r.finish_s, [1.0, 1.1, 2.0, 2.5])


def test_a_batch_closes_when_full_or_at_its_timeout_by_hand():
    pool = lk.deploy.Pool("p", device="l4", service_s={1: 1.0, 2: 1.5, 3: 2.0}, max_ongoing_requests=3,
                          batching=lk.deploy.Batching(max_batch_size=3, batch_wait_timeout_s=0.5))
    # #0 opens a batch at 0, #1 and #2 fill it at 0.2 -> 3 requests, 2 s; #3 at 0.3 waits for the replica (free
    # at 2.2), opens a batch then, which times out at 2.7 with #3 and #4 (arrived 2.5) -> 1.5 s
    for fast in (True, False):
        r = lk.deploy.simulate(pool, lk.deploy.Workload([0.0, 0.1, 0.2, 0.3, 2.5]), _fast=fast)
        assert r.batch.tolist() == [3, 3, 3, 2, 2]
        assert same(r.start_s, [0.2, 0.2, 0.2, 2.7, 2.7]) and same(r.finish_s, [2.2, 2.2, 2.2, 4.2, 4.2])
        assert r.pools[0].busy_s == pytest.approx(3.5)


def test_autoscaling_by_hand():
    # target 1 ongoing request per replica, decisions every 1 s on the last 1 s, no delays, 0.5 s cold start,
    # 10 s per request, one at a time. #0 runs at 0; the tick at 1 s sees 4 ongoing -> 4 replicas (paid from 1 s),
    # serving at 1.5 s: #1-#3 run 1.5-11.5. At 10 s #0 is done: 3 ongoing -> 3 replicas (an idle one stops);
    # the tick at 12 s (after the last finish at 11.5) sees none -> 1. Replica-seconds: 1 + 4 x 9 + 3 x 2 = 43.
    auto = lk.deploy.Autoscaling(min_replicas=1, max_replicas=4, target_ongoing_requests=1, upscale_delay_s=0,
                                 downscale_delay_s=0, look_back_period_s=1.0, control_interval_s=1.0)
    pool = lk.deploy.Pool("p", device="l4", service_s=10.0, autoscaling=auto, cold_start_s=0.5,
                          max_ongoing_requests=1)
    r = lk.deploy.simulate(pool, lk.deploy.Workload([0.0, 0.1, 0.2, 0.3]))
    assert same(r.start_s, [0, 1.5, 1.5, 1.5]) and same(r.finish_s, [10, 11.5, 11.5, 11.5])
    assert r.replicas.tolist() == [[0, 0, 1, 1], [1, 0, 4, 1], [1.5, 0, 4, 2], [1.5, 0, 4, 3], [1.5, 0, 4, 4],
                                   [10, 0, 3, 3], [12, 0, 1, 1], [12, 0, 1, 1]]
    assert r.pools[0].replica_s == pytest.approx(43.0) and r.pools[0].busy_s == pytest.approx(40.0)
    assert r.span_s == 11.5


def _auto(**kw):
    cfg = dict(min_replicas=1, max_replicas=2, upscale_delay_s=0, downscale_delay_s=0, look_back_period_s=1.0,
               control_interval_s=1.0)
    return lk.deploy.Autoscaling(**{**cfg, **kw})


def test_scaling_down_busy_replicas_and_back_up_by_hand():
    # 2 ongoing per replica wanted, 2 replicas at start. The tick at 1 s sees 2 ongoing -> 1 replica: both are
    # busy, so one stops after its request (at 10 s). The burst at 5 s makes 4 ongoing at the 6 s tick -> 2
    # again: the replica due to stop is kept (no new one, no cold start). At 11 s: 2 ongoing -> 1, and the
    # replica that finishes at 20 s stops. Paid: 2 x 20 + 1 x 0.1 = 40.1 replica-seconds.
    pool = lk.deploy.Pool("p", device="l4", service_s=10.0, autoscaling=_auto(target_ongoing_requests=2,
                          initial_replicas=2), cold_start_s=3.0, max_ongoing_requests=1)
    r = lk.deploy.simulate(pool, lk.deploy.Workload([0.0, 0.1, 5.0, 5.1]))
    assert same(r.start_s, [0, 0.1, 10, 10.1]) and same(r.finish_s, [10, 10.1, 20, 20.1])
    assert r.replicas.tolist() == [[0, 0, 2, 2], [1, 0, 2, 2], [6, 0, 2, 2], [11, 0, 2, 2], [20, 0, 1, 1],
                                   [pytest.approx(20.1), 0, 1, 1]]
    assert r.pools[0].replica_s == pytest.approx(40.1)


def test_a_starting_replica_cancelled_by_hand():
    # 5 s cold start. The tick at 1 s sees 2 ongoing -> 2 replicas (one starting, paid from 1 s); at 2 s only 1
    # ongoing -> back to 1: the starting replica is cancelled (never serves, paid 1-2 s). Paid: 1 + 2 + 1 = 4.
    pool = lk.deploy.Pool("p", device="l4", service_s=1.5, autoscaling=_auto(target_ongoing_requests=1),
                          cold_start_s=5.0, max_ongoing_requests=1)
    r = lk.deploy.simulate(pool, lk.deploy.Workload([0.0, 0.1]))
    assert same(r.start_s, [0, 1.5]) and same(r.finish_s, [1.5, 3.0])
    assert r.replicas.tolist() == [[0, 0, 1, 1], [1, 0, 2, 1], [2, 0, 1, 1], [3, 0, 1, 1]]
    assert r.pools[0].replica_s == pytest.approx(4.0)


def test_events_at_the_same_instant_run_in_the_order_they_were_scheduled():
    # The 2 s tick was scheduled at 1 s, #0's finish at 2 s only when it started (1.5 s): the tick runs first
    # and sees 2 ongoing (#0 finishing, #1 waiting) -> 2 replicas; #1 then runs 2.0-2.5 on the first replica,
    # the new one is ready at 2.5 and stops at the 3 s tick (nothing ongoing). Paid: 1 x 2 + 2 x 1 = 4.
    pool = lk.deploy.Pool("p", device="l4", service_s=0.5, autoscaling=_auto(target_ongoing_requests=1),
                          cold_start_s=0.5, max_ongoing_requests=1)
    r = lk.deploy.simulate(pool, lk.deploy.Workload([1.5, 1.6]))
    assert same(r.start_s, [1.5, 2.0]) and same(r.finish_s, [2.0, 2.5])
    assert r.replicas.tolist() == [[0, 0, 1, 1], [2, 0, 2, 1], [2.5, 0, 2, 2], [3, 0, 1, 1], [3, 0, 1, 1]]
    assert r.pools[0].replica_s == pytest.approx(4.0)


def test_power_of_two_draws_come_from_the_seed_and_cover_every_pool():
    # requests far apart find every pool idle: each goes to its first draw, uniform over the pools
    pools = [lk.deploy.Pool(n, device="l4", service_s=0.001) for n in "abc"]
    fleet = lk.deploy.Fleet(pools, router="power-of-two")
    w = lk.deploy.Workload(np.arange(3000) * 0.01)
    r1, r2 = lk.deploy.simulate(fleet, w, seed=5), lk.deploy.simulate(fleet, w, seed=5)
    assert (r1.pool == r2.pool).all()                                   # the same seed, the same run
    assert (r1.pool != lk.deploy.simulate(fleet, w, seed=6).pool).any()  # another seed, other draws
    share = np.bincount(r1.pool, minlength=3) / 3000
    assert np.all(np.abs(share - 1 / 3) < 0.04), share                   # ~5 standard errors


def test_power_of_two_on_two_pools_never_picks_the_busier_one():
    # with two pools both are always drawn: a request goes to the pool with fewer ongoing requests (either on a
    # tie); ongoing at an arrival is counted here from the result (routed earlier, not finished before it)
    pools = [lk.deploy.Pool("fast", device="l4", service_s=0.004), lk.deploy.Pool("slow", device="l4", service_s=0.02)]
    w = lk.deploy.poisson(150, 8, seed=3)
    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router="power-of-two"), w, seed=2)
    for i in range(len(w)):
        before = slice(0, i)
        ongoing = [int(((r.pool[before] == p) & (r.finish_s[before] > r.arrival_s[i])).sum()) for p in (0, 1)]
        assert ongoing[r.pool[i]] <= ongoing[1 - r.pool[i]], (i, ongoing)
