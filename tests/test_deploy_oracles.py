"""lk.deploy.simulate against independent oracles: queueing theory (M/M/1, M/M/c, M/D/1 at 10^6 requests),
Little's law on every run, and a simpy model written here that must give the same per-request finish times."""

from __future__ import annotations

import numpy as np
import pytest

import labkit as lk

N = 1_000_000


def little_holds(r, rel=0.02):
    """Little's law, measured independently of r.mean_s: the time-average number in the system, sampled on a
    grid from the arrival and finish arrays, equals throughput x mean latency."""
    ok = ~r.dropped_mask
    a, f = np.sort(r.arrival_s[ok]), np.sort(r.finish_s[ok])
    grid = np.linspace(0, r.span_s, 200_001)
    in_system = np.searchsorted(a, grid, side="right") - np.searchsorted(f, grid, side="right")
    L = in_system.mean()
    lam_w = ok.sum() / r.span_s * r.mean_s
    assert L == pytest.approx(lam_w, rel=rel), (L, lam_w)
    assert (in_system >= 0).all()


def batch_means_se(x, k=50):
    """Standard error of the mean of a correlated series by k batch means (the CLT applied to batches)."""
    m = x[: x.size // k * k].reshape(k, -1).mean(axis=1)
    return m.std(ddof=1) / np.sqrt(k)


@pytest.mark.parametrize("kind, servers", [("M/M/1", 1), ("M/M/c", 4), ("M/D/1", 1)])
@pytest.mark.parametrize("rho", [0.5, 0.8, 0.95])
def test_mean_wait_matches_theory_at_a_million_requests(kind, servers, rho):
    service = 0.01
    rate = rho * servers / service
    w = lk.deploy.poisson(rate, N / rate, seed=7)
    if kind != "M/D/1":
        w = w.with_column("size", np.random.default_rng(11).exponential(1.0, len(w)))
    pool = lk.deploy.Pool("p", device="l4", service_s=service, replicas=servers)
    r = lk.deploy.simulate(pool, w)
    wait = r.wait_s
    theory = (lk.deploy.md1(rate, service) if kind == "M/D/1" else lk.deploy.erlang_c(rate, service, servers))
    # Tolerance: 1 %, or 3 standard errors of the simulated mean (batch means) where the CLT allows no better.
    # Measured here at 10^6 requests, the standard error is 0.3-0.5 % at rho = 0.5, 0.6-1.4 % at 0.8 and 2-5 %
    # at 0.95 (the wait is correlated over ~1/(1-rho)^2 services), so "1 %" alone would be a coin toss.
    se = batch_means_se(wait) / theory.mean_wait_s
    tol = max(0.01, 3 * se)
    assert se < {0.5: 0.01, 0.8: 0.02, 0.95: 0.06}[rho], f"{kind} rho={rho}: standard error {se:.2%} too wide"
    assert wait.mean() / theory.mean_wait_s == pytest.approx(1, abs=tol), (kind, rho, wait.mean(), theory)
    if servers > 1:     # P(wait) is Erlang C too
        assert (wait > 0).mean() == pytest.approx(theory.p_wait, abs=max(0.01, 4 * batch_means_se(wait > 0)))
    little_holds(r)


# ------------------------------------------------------------------------------------- an independent simpy model

def simpy_finish(arrivals, service_of_batch, servers, max_batch=1, timeout_s=0.0, sizes=None):
    """FIFO pool in simpy: `servers` replicas; with max_batch > 1 a free replica takes the first waiting request and
    gathers until max_batch or timeout_s after it took it (one batch gathers at a time); a batch of b takes
    service_of_batch(b) x max(size)."""
    import simpy

    env = simpy.Environment()
    store = simpy.Store(env)
    gate = simpy.Resource(env, capacity=1)
    finish = np.full(len(arrivals), np.nan)
    sizes = np.ones(len(arrivals)) if sizes is None else sizes

    def source():
        for j, a in enumerate(arrivals):
            yield env.timeout(a - env.now)
            store.put(j)

    def replica():
        while True:
            with gate.request() as turn:
                yield turn
                batch = [(yield store.get())]
                deadline = env.now + timeout_s
                while len(batch) < max_batch:
                    get = store.get()
                    got = yield get | env.timeout(deadline - env.now)
                    if get in got:
                        batch.append(got[get])
                    else:
                        get.cancel()
                        break
            yield env.timeout(service_of_batch(len(batch)) * max(sizes[j] for j in batch))
            for j in batch:
                finish[j] = env.now

    env.process(source())
    for _ in range(servers):
        env.process(replica())
    env.run()
    return finish


@pytest.mark.parametrize("fast", [True, False])
def test_fifo_multiserver_finish_times_equal_simpy(fast):
    w = lk.deploy.poisson(350, 40, seed=3)
    w = w.with_column("size", np.random.default_rng(4).exponential(1.0, len(w)))
    pool = lk.deploy.Pool("p", device="l4", service_s=0.01, replicas=4)
    r = lk.deploy.simulate(pool, w, _fast=fast)
    ref = simpy_finish(w.arrival_s, lambda b: 0.01, servers=4, sizes=w.columns["size"])
    assert np.allclose(r.finish_s, ref, rtol=0, atol=1e-9)
    little_holds(r)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("replicas, rate", [(1, 400), (3, 1500)])
def test_batching_with_timeout_finish_times_equal_simpy(fast, replicas, rate):
    service = {b: 0.004 + 0.0015 * b for b in range(1, 9)}
    w = lk.deploy.poisson(rate, 15, seed=5)
    pool = lk.deploy.Pool("p", device="l4", service_s=service, replicas=replicas, max_ongoing_requests=8,
                          batching=lk.deploy.Batching(max_batch_size=8, batch_wait_timeout_s=0.003))
    r = lk.deploy.simulate(pool, w, _fast=fast)
    ref = simpy_finish(w.arrival_s, service.__getitem__, servers=replicas, max_batch=8, timeout_s=0.003)
    assert np.allclose(r.finish_s, ref, rtol=0, atol=1e-9)
    assert 1 < r.batch.mean() < 8                     # the case exercises both full batches and timeouts
    assert (r.batch == 8).any() and (r.batch < 8).any()
    little_holds(r)


def test_fast_path_and_event_loop_agree_on_a_round_robin_fleet_with_links():
    pools = [lk.deploy.Pool("edge", device="jetson-orin-nano", model="mobilenet", replicas=1),
             lk.deploy.Pool("cloud", device="l4", model="mobilenet", link="lte", replicas=2,
                            batching=lk.deploy.Batching(4, 0.005))]
    fleet = lk.deploy.Fleet(pools, router="round-robin")
    w = lk.deploy.poisson(60, 60, seed=1)
    a, b = lk.deploy.simulate(fleet, w), lk.deploy.simulate(fleet, w, _fast=False)
    assert np.allclose(a.finish_s, b.finish_s, rtol=0, atol=1e-9)
    assert a.cost_usd == pytest.approx(b.cost_usd) and a.energy_j == pytest.approx(b.energy_j)
    little_holds(a)


# ------------------------------------------------------------------------------------- money, energy, routing

def test_service_cost_energy_and_carbon_come_from_estimate_and_the_catalog():
    pool = lk.deploy.Pool("gpu", device="l4", model="mobilenet", replicas=2, link="ethernet",
                          batching=lk.deploy.Batching(4, 0.01))
    w = lk.deploy.poisson(200, 30, seed=2)
    r = lk.deploy.simulate(pool, w)
    p = lk.profile(lk.zoo.build("mobilenet"), lk.zoo.example("mobilenet"))
    est = {b: lk.estimate(p, "l4", batch=b) for b in range(1, 5)}
    link, dev = lk.link("ethernet"), lk.device("l4")
    in_b, out_b = p.input_elems / p.batch * 4, p.output_elems / p.batch * 4
    way = link.rtt_s + link.upload_s(in_b) + link.download_s(out_b)
    run = r.finish_s - r.start_s - (link.rtt_s / 2 + link.download_s(out_b))
    expected = np.array([est[b].latency_s for b in r.batch])
    assert np.allclose(run, expected, rtol=1e-9)
    assert (r.latency_s >= way + expected - 1e-12).all()
    tot = r.pools[0]
    assert tot.replica_s == pytest.approx(2 * r.span_s)
    first = np.unique(r.start_s, return_index=True)[1]          # one request per batch
    busy = sum(est[r.batch[k]].latency_s for k in first)
    assert tot.busy_s == pytest.approx(busy, rel=1e-9)
    dyn = sum(est[r.batch[k]].energy_j - dev.idle_w * est[r.batch[k]].latency_s
              for k in first)
    assert tot.energy_j == pytest.approx(dev.idle_w * tot.replica_s + dyn, rel=1e-9)
    egress = len(w) * out_b / 1e9 * link.egress_usd_per_gb
    assert r.cost_usd == pytest.approx(tot.replica_s * dev.price_usd_per_hour / 3600 + egress, rel=1e-9)
    assert r.carbon_g == pytest.approx(lk.carbon.carbon_g(tot.energy_j, dev.region, pue=lk.carbon.pue(dev)))
    assert r.usd_per_1m_requests == pytest.approx(r.cost_usd / len(w) * 1e6)


def test_cost_is_linear_in_requests_for_a_fixed_fleet():
    pool = lk.deploy.Pool("gpu", device="l4", service_s=0.002, replicas=1)
    costs = [lk.deploy.simulate(pool, lk.deploy.poisson(100, n / 100, seed=1)).cost_usd for n in (1e4, 1e5, 1e6)]
    assert costs[1] / costs[0] == pytest.approx(10, rel=0.02) and costs[2] / costs[1] == pytest.approx(10, rel=0.01)


def test_state_aware_routers_balance_and_edge_first_spills():
    pools = [lk.deploy.Pool("edge", device="jetson-orin-nano", service_s=0.02, replicas=1),
             lk.deploy.Pool("cloud", device="l4", service_s=0.005, replicas=1, link="lte")]
    w = lk.deploy.poisson(80, 60, seed=9)
    ef = lk.deploy.simulate(lk.deploy.Fleet(pools, router="edge-first", spill_queue=2), w)
    share_edge = (ef.pool == 0).mean()
    assert 0.3 < share_edge < 0.95                    # the edge takes most, the cloud takes the spill
    # edge-first keeps the edge queue under its bound: no edge request ever saw more than spill_queue ahead of it
    assert ef.wait_s[ef.pool[~ef.dropped_mask] == 0].max() <= 3 * 0.02 + 1e-9
    for router in ("least-loaded", "power-of-two"):
        r = lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), w, seed=1)
        rr = lk.deploy.simulate(lk.deploy.Fleet(pools, router="round-robin"), w)
        assert r.p99_s < rr.p99_s                     # seeing the load beats ignoring it on unequal pools
        little_holds(r)

    def cloud_only(request, states):
        assert set(request) >= {"index", "arrival_s"} and states[1].name == "cloud"
        return 1

    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router=cloud_only), w)
    assert (r.pool == 1).all()
    with pytest.raises(ValueError, match="pool index"):
        lk.deploy.simulate(lk.deploy.Fleet(pools, router=lambda req, st: 5), w)


def test_max_queued_requests_drops_and_counts():
    pool = lk.deploy.Pool("p", device="l4", service_s=0.02, replicas=1, max_ongoing_requests=1,
                          max_queued_requests=2)
    w = lk.deploy.poisson(100, 30, seed=0)                   # rho = 2: most must be dropped
    r = lk.deploy.simulate(pool, w)
    assert r.dropped > len(w) / 3 and np.isnan(r.finish_s[r.dropped_mask]).all()
    assert r.requests == len(w) and r.throughput_rps == pytest.approx(1 / 0.02, rel=0.05)
    # never more than 1 (in service) + 2 (queued) requests in the pool: the third waiter is dropped
    assert r.wait_s.max() <= 3 * 0.02 + 1e-9
    little_holds(r)


# ------------------------------------------------------------------------------------- a partition Plan as a pipeline

def simpy_tandem(arrivals, s1, c1, gap, s2, c2, tail):
    """Two FIFO stations in simpy (c1 servers of s1 seconds, then c2 of s2), `gap` seconds between them."""
    import simpy

    env = simpy.Environment()
    one, two = simpy.Resource(env, capacity=c1), simpy.Resource(env, capacity=c2)
    finish = np.full(len(arrivals), np.nan)

    def request(j):
        with one.request() as turn:
            yield turn
            yield env.timeout(s1)
        yield env.timeout(gap)
        with two.request() as turn:
            yield turn
            yield env.timeout(s2)
        finish[j] = env.now + tail

    def source():
        for j, a in enumerate(arrivals):
            yield env.timeout(a - env.now)
            env.process(request(j))

    env.process(source())
    env.run()
    return finish


def sensor_plan():
    """Lab 06's chain on a microcontroller over LTE: the plan splits in the middle (after the pool)."""
    from collections import OrderedDict

    import torch
    from torch import nn

    layers = [("stem", nn.Conv2d(3, 16, 3, stride=2, padding=1)), ("stem_relu", nn.ReLU()), ("pool", nn.MaxPool2d(2))]
    for i, c_in in enumerate([16, 64, 64, 64], start=1):
        layers += [(f"conv{i}", nn.Conv2d(c_in, 64, 3, padding=1)), (f"relu{i}", nn.ReLU())]
    layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(64, 10))]
    prof = lk.profile(nn.Sequential(OrderedDict(layers)).eval(), torch.zeros(1, 3, 64, 64))
    return lk.partition(prof, edge="stm32h7", cloud="l4", link="lte")


@pytest.mark.parametrize("edge_replicas, cloud_replicas", [(1, 1), (3, 1)])
def test_partition_plan_pipeline_equals_a_simpy_tandem_queue(edge_replicas, cloud_replicas):
    plan = sensor_plan()
    assert plan.edge_compute_s > 0 and plan.cloud_compute_s > 0, plan     # a real two-stage split
    rate = 0.8 * edge_replicas / plan.edge_compute_s
    w = lk.deploy.poisson(rate, 3000 / rate, seed=4)
    r = lk.deploy.pipeline(plan, w, edge_replicas=edge_replicas, cloud_replicas=cloud_replicas)
    up, down = plan.upload_s + plan.rtt_s / 2, plan.download_s + plan.rtt_s / 2
    ref = simpy_tandem(w.arrival_s, plan.edge_compute_s, edge_replicas, up, plan.cloud_compute_s, cloud_replicas,
                       down)
    assert np.allclose(r.finish_s, ref, rtol=0, atol=1e-9)
    assert r.latency_s.min() == pytest.approx(plan.latency_s, rel=1e-9)   # an unqueued request takes the plan's time
    assert r.pools[1].egress_usd == pytest.approx(len(w) * plan.download_bytes / 1e9 * lk.link("lte").egress_usd_per_gb)
    little_holds(r)
