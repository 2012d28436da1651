"""lk.ops live (lab 11): the Ray Serve backend (apply for real; a change made by hand with Ray's own API is
drift in the next plan; apply twice changes nothing), the metrics, and a real Prometheus server whose
histogram_quantile agrees with the quantile of the same requests.

Prometheus (Debian's `prometheus` package, installed by .ci/run) is an oracle here: absent, its tests skip
with a message, except in CI (CI=true), where they fail. The Ray tests share the session's cluster
(tests/conftest.py) and shut Serve down when done; no Prometheus outlives its `with` block.
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from procs import serve_processes

import labkit as lk

IN_CI = os.environ.get("CI", "").lower() == "true"
SPEC = {"name": "shop", "slo": {"availability": 0.999, "latency_s": 0.05},
        "pools": [{"name": "gpu", "model": "mobilenet", "device": "l4", "replicas": 1}]}


def need_prometheus():
    if shutil.which("prometheus") is None:
        msg = "prometheus not found: `apt-get install -y prometheus` provides it (.ci/run installs it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def live(ray_session):
    """A Ray Serve backend on the session's Ray; Serve (all its applications) shut down afterwards."""
    backend = lk.ops.RayServeBackend()
    try:
        yield backend.start()
    finally:
        backend.close()
    from ray import serve

    assert not serve.status().applications           # nothing left running, and no Serve actor process either
    deadline = time.monotonic() + 20
    while serve_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not serve_processes()




# ------------------------------------------------------------------------------------- Ray Serve backend
def test_apply_to_ray_serve_then_hand_changes_show_up_as_drift(live, tmp_path):
    from ray import serve

    state = tmp_path / "shop.tfstate"
    first = lk.ops.plan(SPEC, state, live)
    assert [c.symbol for c in first.changes] == ["+"]
    assert lk.ops.apply(first).serial == 1
    assert live.read()["gpu"] == lk.ops.attributes(SPEC)["gpu"]       # read back from the controller
    assert live.running_replicas()["gpu"] == 1

    again = lk.ops.plan(SPEC, state, live)                              # apply -> apply: nothing to do
    assert again.detailed_exitcode == 0 and not again.drift
    assert lk.ops.apply(again).serial == 1

    live.scale("gpu", 2)                                  # by hand: serve.run with another num_replicas
    assert serve.status().applications["gpu"].deployments["gpu"].replica_states.get("RUNNING") == 2
    p = lk.ops.plan(SPEC, state, live)
    assert [(c.action, c.changed) for c in p.drift] == [("drift", ("replicas",))]
    assert [(c.action, c.before["replicas"], c.after["replicas"]) for c in p.changes] == [("update", 2, 1)]
    assert "has changed outside labkit" in p.render() and "replicas = 1 -> 2" in p.render()
    lk.ops.apply(p)
    assert live.read()["gpu"]["replicas"] == 1 and lk.ops.plan(SPEC, state, live).detailed_exitcode == 0

    serve.delete("gpu")                                   # by hand: Ray's own API deletes the application
    p = lk.ops.plan(SPEC, state, live)
    assert [(c.action, c.after) for c in p.drift] == [("drift", None)]
    assert [c.action for c in p.changes] == ["create"] and "has been deleted outside labkit" in p.render()
    lk.ops.apply(p)
    assert lk.ops.plan(SPEC, state, live).detailed_exitcode == 0


def test_read_rebuilds_attributes_from_the_controllers_config_and_skips_other_apps():
    b = lk.ops.RayServeBackend()
    user = {"model": "mobilenet", "device": "l4", "region": None, "dtype": "fp32", "batching": None,
            "service_s": 0.01}
    details = {"applications": {
        "gpu": {"status": "RUNNING", "deployments": {"gpu": {"deployment_config": {
            "num_replicas": 3, "max_ongoing_requests": 5, "user_config": user}}}},
        "auto": {"status": "RUNNING", "deployments": {"auto": {"deployment_config": {
            "num_replicas": None, "max_ongoing_requests": 8, "user_config": {**user, "autoscaling": True, "replicas": 1},
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2.0,
                                   "upscale_delay_s": 30.0}}}}},
        "other": {"status": "RUNNING", "deployments": {"other": {"deployment_config": {"num_replicas": 1}}}},
        "gone": {"status": "DELETING", "deployments": {"gone": {"deployment_config": {"user_config": user}}}}}}
    b.details = lambda: details                           # what get_serve_details returns, without a Ray
    got = b.read()
    assert sorted(got) == ["auto", "gpu"]                  # not labkit's, or being deleted: not reported
    assert got["gpu"]["replicas"] == 3 and got["gpu"]["autoscaling"] is None
    assert got["auto"]["autoscaling"] == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2.0}
    spec = {"name": "s", "pools": [{"name": "auto", "model": "mobilenet", "device": "l4", "max_ongoing_requests": 8,
                                    "autoscaling": {"min_replicas": 1, "max_replicas": 4}}]}
    assert got["auto"] == lk.ops.attributes(spec)["auto"]


# ------------------------------------------------------------------------------- metrics and Prometheus
def test_prometheus_p99_over_served_requests_agrees_with_their_own_quantile(live, tmp_path):
    need_prometheus()
    spec = lk.ops.load_spec(SPEC)
    lk.ops.apply(lk.ops.plan(spec, tmp_path / "s.tfstate", live))
    m = lk.ops.Metrics(spec.name, slo=spec.slo)
    assert spec.slo.latency_s in m.buckets                   # the objective is a bucket bound
    with m.serve() as target, lk.ops.prometheus([target]) as prom:
        df = live.send("gpu", requests=200, rate_rps=50, seed=1, metrics=m)
        n = len(df)
        prom.wait_for(f"sum(labkit_requests_total) >= {n}")
        p99 = float(prom.query("histogram_quantile(0.99, sum by (le) (labkit_request_latency_seconds_bucket))"
                               ).value.iloc[0])
        buckets = prom.query("sum by (le) (labkit_request_latency_seconds_bucket)")
        assert prom.query("labkit_replicas").value.tolist() == [1.0]
        scraped = lk.ops.scrape(target)                      # the real /metrics endpoint, over HTTP
        process = prom.process
    assert process.poll() is not None                        # the server is gone with its block
    with pytest.raises(OSError):                             # and so is the /metrics endpoint
        lk.ops.scrape(target, timeout_s=2)
    assert (df.status == "ok").all()
    exact = float(np.quantile(df.latency_s, 0.99))
    bounds = np.array(m.buckets)

    def width(x):                                           # of the bucket that holds x
        i = int(np.searchsorted(bounds, x))
        return bounds[i] - (bounds[i - 1] if i else 0.0) if i < len(bounds) else np.inf

    assert abs(p99 - exact) <= max(width(exact), width(p99)), (p99, exact, m.buckets)
    # labkit's own histogram_quantile, on the bucket counts Prometheus stored, gives Prometheus's number
    by_le = dict(zip(buckets["le"], buckets["value"]))
    counts = [by_le[str(b)] for b in m.buckets] + [by_le["+Inf"]]
    assert lk.ops.histogram_quantile(0.99, m.buckets, counts) == pytest.approx(p99, rel=1e-9)
    assert scraped.query("metric == 'labkit_requests_total'").value.sum() == n


def test_prometheus_absent_is_a_clear_error():
    with pytest.raises(lk.ops.PrometheusNotFound, match="apt-get install prometheus"):
        with lk.ops.prometheus(["127.0.0.1:1"], binary="no-such-prometheus"):
            pass


def test_a_bad_query_names_prometheus_reason():
    need_prometheus()
    with lk.ops.prometheus([]) as prom:
        with pytest.raises(ValueError, match="bad_data"):
            prom.query("sum(")


def test_the_simulator_produces_the_same_series_on_simulated_time():
    spec = lk.ops.load_spec(SPEC)
    r = lk.deploy.simulate(spec.fleet(service_s=0.01), lk.deploy.poisson(50, 10, seed=0))
    sim = lk.ops.simulated_series(r, spec.name, slo=spec.slo, step_s=2.0)
    live_names = set(lk.ops.scrape(_fed(spec, [0.01])).metric)
    assert set(sim.metric) <= live_names | {"labkit_requests_total"}
    last = sim[sim.t == sim.t.max()]
    ok = last.query("metric == 'labkit_requests_total' and status == 'ok'").value.iloc[0]
    assert ok == (~r.dropped_mask).sum()
    lat = (r.finish_s - r.arrival_s)[~r.dropped_mask]
    le = last.query("metric == 'labkit_request_latency_seconds_bucket'").set_index("le").value
    for b in lk.ops.latency_buckets(spec.slo.latency_s):
        assert le[str(b)] == (lat <= b).sum()
    counter = sim.query("metric == 'labkit_requests_total' and status == 'ok'").value.to_numpy()
    assert (np.diff(counter) >= 0).all()                     # a counter never goes down


def _fed(spec, latencies):
    m = lk.ops.Metrics(spec.name, slo=spec.slo)
    m.set_replicas("gpu", 1)
    m.queue.labels(spec.name, "gpu").set(0)
    for s in latencies:
        m.observe("gpu", s)
    return m.text()


def test_metric_names_match_the_alert_rules_counter():
    from labkit.ops.alerts import METRIC

    assert METRIC in set(lk.ops.scrape(_fed(lk.ops.load_spec(SPEC), [0.01, None])).metric)


def test_the_exported_serve_config_builds_with_rays_own_loader():
    """What `serve deploy config.yaml` does before it starts anything: import the config's import_path, call
    the builder with the config's args, build the application (Ray's own functions, no cluster needed)."""
    from ray._common.utils import import_attr
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve._private.build_app import build_app

    spec = dict(SPEC, pools=SPEC["pools"] + [{"name": "cpu", "model": "mlp", "device": "t4"}])
    for s in (SPEC, spec):
        cfg = lk.ops.serve_config(s)["applications"][0]
        app = call_user_app_builder_with_args_if_necessary(import_attr(cfg["import_path"]), cfg["args"])
        built = build_app(app, name=cfg["name"], default_runtime_env={})
        names = {d.name for d in built.deployments}
        assert {d["name"] for d in cfg["deployments"]} <= names
        assert built.ingress_deployment_name == ("gpu" if s is SPEC else "router")
