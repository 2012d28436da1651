"""lk.deploy's autoscaler against Ray Serve's own policy code (the installed ray), fed the same recorded series of
ongoing-request counts; and the autoscaler inside the simulator (cold starts, cost of replica-seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import labkit as lk


def ray_replica_sequence(series, cfg, lag_ticks, tick_s, monkeypatch):
    """Ray's decision each tick: the default policy wrapped as Ray's controller wraps it
    (autoscaling_policy._apply_autoscaling_config), a float ceiled and clipped to [min, max] as in
    autoscaling_state.DeploymentAutoscalingState.get_decision_num_replicas. Time is a fake clock."""
    pytest.importorskip("ray.serve")
    from ray.serve import autoscaling_policy as ap
    from ray.serve._private.common import DeploymentID
    from ray.serve.config import AutoscalingConfig, AutoscalingContext

    clock = [0.0]
    monkeypatch.setattr(ap.time, "time", lambda: clock[0])
    config = AutoscalingConfig(min_replicas=cfg.min_replicas, max_replicas=cfg.max_replicas,
                               initial_replicas=cfg.initial_replicas,
                               target_ongoing_requests=cfg.target_ongoing_requests,
                               upscale_delay_s=cfg.upscale_delay_s, downscale_delay_s=cfg.downscale_delay_s,
                               downscale_to_zero_delay_s=cfg.downscale_to_zero_delay_s,
                               upscaling_factor=cfg.upscaling_factor, downscaling_factor=cfg.downscaling_factor)
    policy = ap._apply_autoscaling_config(ap.replica_queue_length_autoscaling_policy)
    target, state, out, history = cfg.start_replicas, {}, [], []
    for k, total in enumerate(series):
        clock[0] = (k + 1) * tick_s
        running = history[k - lag_ticks] if k >= lag_ticks else cfg.start_replicas
        ctx = AutoscalingContext(
            deployment_id=DeploymentID(name="d", app_name="a"), deployment_name="d", app_name="a",
            current_num_replicas=running, target_num_replicas=target, running_replicas=[],
            total_num_requests=float(total), total_queued_requests=0.0, aggregated_metrics={}, raw_metrics={},
            capacity_adjusted_min_replicas=cfg.min_replicas, capacity_adjusted_max_replicas=cfg.max_replicas,
            policy_state=dict(state), last_scale_up_time=None, last_scale_down_time=None,
            current_time=clock[0], config=config)
        decision, state = policy(ctx)
        if isinstance(decision, float):
            decision = math.ceil(decision)
        target = max(cfg.min_replicas, min(cfg.max_replicas, decision))
        history.append(target)
        out.append(target)
    return out


def labkit_replica_sequence(series, cfg, lag_ticks, tick_s):
    target, state, out = cfg.start_replicas, {}, []
    for k, total in enumerate(series):
        running = out[k - lag_ticks] if k >= lag_ticks else cfg.start_replicas
        target = lk.deploy.decide(float(total), running, target, cfg, state, (k + 1) * tick_s)
        out.append(target)
    return out


CONFIGS = [
    dict(min_replicas=1, max_replicas=10, upscale_delay_s=3.0, downscale_delay_s=10.0),
    dict(min_replicas=0, max_replicas=6, target_ongoing_requests=3, upscale_delay_s=0.0, downscale_delay_s=5.0,
         downscale_to_zero_delay_s=20.0),
    dict(min_replicas=2, max_replicas=20, initial_replicas=4, upscale_delay_s=1.0, downscale_delay_s=2.0,
         upscaling_factor=0.5, downscaling_factor=0.3),
    dict(min_replicas=1, max_replicas=8, upscale_delay_s=0.0, downscale_delay_s=0.0, upscaling_factor=2.0),
]


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_replica_sequence_equals_rays_policy(kw, seed, monkeypatch):
    rng = np.random.default_rng(seed)
    # a recorded-looking series: bursts, lulls and idle stretches of ongoing requests (windowed means)
    level = np.repeat(rng.choice([0.0, 0.5, 3.0, 12.0, 30.0], 40), 25)
    series = np.maximum(0, level + rng.normal(0, 1.5, level.size)) * (level > 0)
    cfg = lk.deploy.Autoscaling(**kw)
    ours = labkit_replica_sequence(series, cfg, lag_ticks=7, tick_s=0.1)
    rays = ray_replica_sequence(series, cfg, lag_ticks=7, tick_s=0.1, monkeypatch=monkeypatch)
    assert ours == rays
    assert len(set(ours)) > 2                         # the series really moves the replica count


def test_autoscaled_pool_follows_a_diurnal_load_and_pays_for_cold_starts():
    w = lk.deploy.diurnal(peak_rps=400, trough_rps=20, period_s=600, duration_s=600, seed=0)
    auto = lk.deploy.Autoscaling(min_replicas=1, max_replicas=12, upscale_delay_s=5, downscale_delay_s=30,
                                 look_back_period_s=10)
    pool = lk.deploy.Pool("gpu", device="l4", service_s=0.02, autoscaling=auto, cold_start_s=10.0)
    r = lk.deploy.simulate(pool, w)
    tl = r.replicas
    alive = tl[:, 2]
    assert alive.max() >= 4 and alive[-1] <= 3         # up for the peak, back down after it
    # replicas cost from the decision: alive >= running always, and some time was paid while starting
    assert (tl[:, 2] >= tl[:, 3]).all() and (tl[:, 2] > tl[:, 3]).any()
    # replica-seconds integrate the alive timeline exactly
    t, a = tl[:, 0], tl[:, 2]
    integral = np.sum(np.diff(t) * a[:-1])
    assert r.pools[0].replica_s == pytest.approx(integral, rel=1e-9)
    fixed = lk.deploy.simulate(lk.deploy.Pool("gpu", device="l4", service_s=0.02, replicas=12), w)
    assert r.cost_usd < fixed.cost_usd                 # autoscaling pays for fewer replica-seconds ...
    assert r.p99_s > fixed.p99_s                       # ... and its cold starts show in the tail
    cold = lk.deploy.simulate(lk.deploy.Pool("gpu", device="l4", service_s=0.02, autoscaling=auto,
                                             cold_start_s=0.0), w)
    assert cold.p99_s < r.p99_s


def test_scale_from_zero_serves_every_request():
    w = lk.deploy.poisson(5, 120, seed=3)
    auto = lk.deploy.Autoscaling(min_replicas=0, max_replicas=2, downscale_delay_s=5, look_back_period_s=2)
    r = lk.deploy.simulate(lk.deploy.Pool("gpu", device="l4", service_s=0.01, autoscaling=auto,
                                          cold_start_s=3.0), w)
    assert r.dropped == 0 and np.isfinite(r.finish_s).all()
    assert r.latency_s.max() >= 3.0                     # the first request waited out a cold start
