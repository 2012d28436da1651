"""lk.ops — operate a deployment (lab 11): declare it in a spec, plan, apply, alert on its SLO, and watch its
input data drift.

>>> import labkit as lk
>>> sorted(n for n in lk.ops.__all__ if n in ("apply", "plan", "load_spec"))
['apply', 'load_spec', 'plan']
"""

from __future__ import annotations

from labkit.args import namespace
from labkit.ops.alerts import (
    WINDOWS,
    BurnRateWindow,
    alert_rules,
    burn_rate_alerts,
    evaluate,
    rule_tests,
    rules_yaml,
)
from labkit.ops.backend import FORCES_REPLACEMENT, SimBackend, attributes, rayservice, serve_config
from labkit.ops.drift import DriftReport, FeatureDrift, drift
from labkit.ops.live import RayServeBackend
from labkit.ops.metrics import Metrics, histogram_quantile, latency_buckets, scrape, simulated_series
from labkit.ops.plan import ApplyResult, Change, Plan, StalePlanError, apply, plan
from labkit.ops.prom import Prometheus, PrometheusNotFound, prometheus, query
from labkit.ops.state import State, StateFile, StateLockedError

__all__ = ["ApplyResult", "BurnRateWindow", "Change", "DriftReport", "FORCES_REPLACEMENT", "FeatureDrift",
           "Metrics", "Plan", "Prometheus", "PrometheusNotFound", "RayServeBackend", "SLO", "SimBackend", "Spec",
           "StalePlanError", "State", "StateFile", "StateLockedError", "WINDOWS", "alert_rules", "apply",
           "attributes", "burn_rate_alerts", "drift", "evaluate", "histogram_quantile", "latency_buckets",
           "load_spec", "plan", "prometheus", "query", "rayservice", "rule_tests", "rules_yaml", "scrape",
           "serve_config", "simulated_series"]

_near_match, __dir__ = namespace("lk.ops", __all__)
_LAZY = {"SLO", "Spec", "load_spec"}     # pydantic's models take ~0.4 s to import: loaded on first use


def __getattr__(name: str):
    if name in _LAZY:
        from labkit.ops import spec

        return getattr(spec, name)
    return _near_match(name)


del namespace
