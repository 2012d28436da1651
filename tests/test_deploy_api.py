"""lk.deploy's learner surface: bad input says what is allowed, specs round-trip to dicts, workloads and the
Azure trace, sizing, plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

import labkit as lk
from labkit.targets.catalog import dataset_path


@pytest.mark.parametrize("make, match", [
    (lambda: lk.deploy.poisson(-1, 10), "rate_rps must be a positive finite number"),
    (lambda: lk.deploy.poisson(10, 0), "duration_s must be a positive finite number"),
    (lambda: lk.deploy.diurnal(10, 20, 60, 60), r"trough_rps must be in \[0, peak_rps"),
    (lambda: lk.deploy.Workload([0.0, 2.0, 1.0]), "must be sorted"),
    (lambda: lk.deploy.Workload([0.0, 1.0], {"size": [1.0]}), "one value per request"),
    (lambda: lk.deploy.Pool("p", device="l4", service_s=0.01, replicas=0), "replicas must be an int >= 1"),
    (lambda: lk.deploy.Pool("p", device="h100-sx", service_s=0.01), "Did you mean 'h100-sxm'"),
    (lambda: lk.deploy.Pool("p", device="l4", model="mobilenett"), "Did you mean 'mobilenet'"),
    (lambda: lk.deploy.Pool("p", device="l4", service_s=0.01, link="lt"), "unknown link"),
    (lambda: lk.deploy.Pool("p", device="l4"), "needs model= .* or service_s="),
    (lambda: lk.deploy.Pool("p", device="l4", service_s=0.01, max_queued_requests=-2), "-1 .* or an int >= 0"),
    (lambda: lk.deploy.Autoscaling(min_replicas=3, max_replicas=2), r"max_replicas \(2\) must be >= min_replicas"),
    (lambda: lk.deploy.Autoscaling(max_replicas=0), "max_replicas must be an int >= 1"),
    (lambda: lk.deploy.Autoscaling(min_replicas=1, max_replicas=4, initial_replicas=9), "initial_replicas"),
    (lambda: lk.deploy.Batching(max_batch_size=0), "max_batch_size must be an int >= 1"),
    (lambda: lk.deploy.Fleet([lk.deploy.Pool("p", device="l4", service_s=0.01)], router="round-robbin"),
     "Did you mean 'round-robin'"),
    (lambda: lk.deploy.Fleet([lk.deploy.Pool("p", device="l4", service_s=0.01)], router="edge-first"),
     "needs at least one edge pool"),
    (lambda: lk.deploy.Fleet([]), "at least one Pool"),
    (lambda: lk.deploy.trace("azure-cod"), "Did you mean 'azure-code'"),
    (lambda: lk.deploy.erlang_c(200, 0.01, 1), "unstable"),
    (lambda: lk.deploy.little(rate_rps=1), "exactly two"),
    (lambda: lk.deploy.simulate("fleet", lk.deploy.poisson(1, 1)), "takes a Fleet or a Pool"),
])
def test_bad_input_raises_a_value_error_that_says_what_is_allowed(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_specs_round_trip_through_json():
    auto = lk.deploy.Autoscaling(min_replicas=1, max_replicas=6, upscale_delay_s=3)
    fleet = lk.deploy.Fleet([lk.deploy.Pool("edge", device="jetson-orin-nano", model="mobilenet"),
                             lk.deploy.Pool("cloud", device="l4", model="mobilenet", link="lte", autoscaling=auto,
                                            batching=lk.deploy.Batching(4, 0.005), max_ongoing_requests=8)],
                            router="edge-first", spill_queue=3)
    again = lk.deploy.Fleet.from_dict(json.loads(json.dumps(fleet.to_dict())))
    assert again == fleet and again.pools[1].autoscaling == auto
    assert lk.deploy.Pool("x", device="l4", service_s=0.01).max_queued_requests == -1   # Ray's defaults
    assert (lk.deploy.Batching().max_batch_size, lk.deploy.Batching().batch_wait_timeout_s) == (10, 0.01)
    a = lk.deploy.Autoscaling()
    assert (a.target_ongoing_requests, a.upscale_delay_s, a.downscale_delay_s, a.look_back_period_s) == (2, 30, 600, 30)


def test_workload_generators_have_the_rates_they_promise():
    w = lk.deploy.poisson(200, 500, seed=3)
    gaps = np.diff(w.arrival_s)
    assert gaps.mean() == pytest.approx(1 / 200, rel=0.01) and gaps.std() / gaps.mean() == pytest.approx(1, rel=0.02)
    d = lk.deploy.diurnal(100, 10, period_s=100, duration_s=1000, seed=1)
    assert d.rate_rps == pytest.approx(55, rel=0.03)           # mean of the sinusoid
    b = lk.deploy.bursty(100, 10, mean_high_s=10, mean_low_s=30, duration_s=40_000, seed=2)   # 1000 cycles
    assert b.rate_rps == pytest.approx((100 * 10 + 10 * 30) / 40, rel=0.05)      # ~2.5 sd
    assert lk.deploy.poisson(5, 10, seed=1).arrival_s.tolist() == lk.deploy.poisson(5, 10, seed=1).arrival_s.tolist()


def test_trace_scales_rate_never_shape():
    import pandas as pd

    w1, w4 = lk.deploy.trace("azure-conv"), lk.deploy.trace("azure-conv", rate_scale=4)
    raw = pd.read_csv(dataset_path("azure-llm-trace-2023/AzureLLMInferenceTrace_conv.csv"))
    assert len(w1) == len(raw) and w1.columns["prompt_tokens"].sum() == raw["ContextTokens"].sum()
    assert np.allclose(w4.arrival_s * 4, w1.arrival_s)
    assert "rate x4" in repr(w4) and "shape unchanged" in repr(w4)
    first = pd.to_datetime(raw["TIMESTAMP"])
    assert np.allclose(np.sort((first - first.min()).dt.total_seconds()), w1.arrival_s)


def test_size_finds_the_cheapest_count_meeting_the_slo():
    pool = lk.deploy.Pool("gpu", device="l4", service_s=0.01)
    w = lk.deploy.poisson(250, 60, seed=0)
    s = lk.deploy.size(pool, w, slo_p99_s=0.03)
    k = s.replicas["gpu"]
    assert s.meets_slo and s.result.p99_s <= 0.03
    # brute force: one fewer replica misses the SLO
    fewer = lk.deploy.simulate(lk.deploy.Pool("gpu", device="l4", service_s=0.01, replicas=k - 1), w)
    assert fewer.p99_s > 0.03 or fewer.dropped


def test_plots_draw_what_the_results_hold():
    import matplotlib

    matplotlib.use("Agg")
    w = lk.deploy.poisson(100, 20, seed=0)
    r = lk.deploy.simulate(lk.deploy.Pool("a", device="l4", service_s=0.008), w)
    ax = lk.plot.latency_cdf(r, slo_s=0.02)
    x, y = ax.lines[0].get_data()
    assert np.allclose(np.sort(x), np.sort(r.latency_s * 1e3)) and y[-1] == 1
    axes = lk.plot.fleet_timeline(r, window_s=1.0)
    assert len(axes) == 3
    pool = lk.deploy.Pool("a", device="l4", service_s={b: 0.004 + 0.001 * b for b in range(1, 9)},
                          max_ongoing_requests=8, batching=lk.deploy.Batching(1, 0.002))
    _, rows = lk.plot.batching_knee(pool, lk.deploy.poisson(400, 10, seed=0), sizes=(1, 8))
    assert rows[0][2] > rows[1][2]                   # at 400 req/s, batch 1 saturates (5 ms > 2.5 ms per request)


def test_as_served_adds_serve_overhead_and_queues_per_replica():
    # one replica: Serve's overhead is a fixed delay on top of the same FIFO service (exactly); two replicas: each
    # its own queue with power-of-two routing, which never beats the simulator's central queue on mean latency
    import numpy as np

    w = lk.deploy.poisson(40, 30, seed=3)
    one = lk.deploy.Pool("gpu", device="l4", service_s=0.02, replicas=1)
    plain = lk.deploy.simulate(one, w)
    served = lk.deploy.simulate(lk.deploy.as_served(one, 0.004), w, seed=0)
    np.testing.assert_allclose(served.finish_s - served.arrival_s, plain.finish_s - plain.arrival_s + 0.004,
                               rtol=0, atol=1e-12)
    two = lk.deploy.Pool("gpu", device="l4", service_s=0.02, replicas=2)
    w2 = lk.deploy.poisson(80, 30, seed=4)
    central = lk.deploy.simulate(two, w2)
    per_replica = lk.deploy.simulate(lk.deploy.as_served(two, 0.0), w2, seed=0)
    mean = lambda r: float(np.mean(r.finish_s - r.arrival_s))    # noqa: E731
    assert mean(per_replica) >= mean(central) - 1e-12
    assert per_replica.requests == central.requests and per_replica.dropped == 0


@pytest.mark.parametrize("pool, overhead, words", [
    (lk.deploy.Pool("a", device="l4", service_s=0.01, autoscaling=lk.deploy.Autoscaling(1, 3)), 0.0, ["autoscales"]),
    (lk.deploy.Pool("a", device="l4", service_s=0.01, link="lte"), 0.0, ["link"]),
    (lk.deploy.Pool("a", device="l4", service_s=0.01), -0.001, ["overhead_s"]),
    ("a", 0.0, ["Pool"]),
])
def test_as_served_bad_input(pool, overhead, words):
    with pytest.raises(ValueError) as err:
        lk.deploy.as_served(pool, overhead)
    for w in words:
        assert w in str(err.value)
