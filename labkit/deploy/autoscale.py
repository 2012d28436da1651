"""Ray Serve's desired-replicas rule, transcribed so that the simulator scales a pool as Ray would (lab 07).

Source: the installed ray 2.60, file ``ray/serve/autoscaling_policy.py``:
``_get_cold_start_scale_up_replicas`` (0 running replicas and requests waiting: scale up now),
``_core_replica_queue_length_policy`` (desired = running * ongoing / (target_ongoing_requests * running)),
``_apply_scaling_factors`` (move by the up/downscaling factor of the gap, ceil; a downscale that the factor
would stall still steps down by one), ``_apply_delay_logic`` (a wish must persist for upscale_delay_s or
downscale_delay_s of wall-clock time, reset when its direction flips; 1 -> 0 uses downscale_to_zero_delay_s),
all wrapped by ``_apply_autoscaling_config``; then ``ray/serve/_private/autoscaling_state.py``,
``DeploymentAutoscalingState.get_decision_num_replicas`` (a float decision is ceiled; ``apply_bounds`` clips
to [min_replicas, max_replicas]). ``total_num_requests`` is Ray's ongoing (running + queued) requests
averaged over look_back_period_s; the simulator averages its samples taken every control_interval_s.

"""

from __future__ import annotations

import math

_EPS = 1e-6        # ray's _DELAY_ELAPSED_EPS_S


def decide(total_num_requests: float, running: int, target: int, cfg, state: dict, now_s: float) -> int:
    """The replica target Ray's default policy sets at time `now_s` (lab 07); updates `state` in place.

    `running`: replicas running now; `target`: the current target; `cfg`: an Autoscaling; `state`: a dict
    kept between calls (the pending decision's direction and start time).

    >>> import labkit as lk
    >>> cfg = lk.deploy.Autoscaling(min_replicas=1, max_replicas=10, upscale_delay_s=0)
    >>> decide(12.0, running=2, target=2, cfg=cfg, state={}, now_s=0.0)   # 12 ongoing / 2 per replica
    6
    """
    up = cfg.upscaling_factor or 1.0
    down = cfg.downscaling_factor or 1.0
    if running == 0 and total_num_requests > 0:                    # cold-start fast path
        decision = max(math.ceil(1 * up), target)
    else:
        desired = target if running == 0 else total_num_requests / cfg.target_ongoing_requests
        # _apply_scaling_factors
        if running == 0:
            desired = math.ceil(desired)
        else:
            delta = desired - running
            scaled = math.ceil(running + (up if delta > 0 else down) * delta)
            if math.ceil(float(desired)) < running and scaled == running:
                scaled -= 1
            desired = scaled
        if running == 0 and desired > 0:
            decision = desired
        else:
            decision = _delay(max(0, desired), target, cfg, state, now_s)
    return max(cfg.min_replicas, min(cfg.max_replicas, int(decision)))


def _delay(desired: int, target: int, cfg, state: dict, now: float) -> int:
    counter = state.get("counter", 0)
    since = state.get("since")
    decision = target
    if desired > target:
        if counter < 0:
            counter, since = 0, None
        counter += 1
        if since is None:
            since = now
        if now - since + _EPS >= cfg.upscale_delay_s:
            counter, since, decision = 0, None, desired
    elif desired < target:
        if counter > 0:
            counter, since = 0, None
        counter -= 1
        if target == 1:
            delay = cfg.downscale_to_zero_delay_s if cfg.downscale_to_zero_delay_s is not None \
                else cfg.downscale_delay_s
        else:
            delay = cfg.downscale_delay_s
            desired = max(1, desired)
        if since is None:
            since = now
        if now - since + _EPS >= delay:
            counter, since, decision = 0, None, desired
    else:
        counter, since = 0, None
    state["counter"], state["since"] = counter, since
    return decision
