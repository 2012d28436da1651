"""lk.ops (lab 11): spec validation, Terraform-style plan/apply on the simulator backend, the state file's
atomicity and lock, the Ray Serve config export, and the SLO burn-rate rules checked by Prometheus's promtool.

promtool (Debian's `prometheus` package, installed by .ci/run) is the oracle for the rules: absent, those tests
skip with a message, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

import labkit as lk

IN_CI = os.environ.get("CI", "").lower() == "true"
PROMTOOL = shutil.which("promtool")

BASE = {"name": "shop", "router": "least-loaded", "slo": {"availability": 0.999, "latency_s": 0.2},
        "pools": [{"name": "gpu", "model": "mobilenet", "device": "l4", "replicas": 2},
                  {"name": "cpu", "model": "resnet", "device": "c7i-4xlarge", "replicas": 1},
                  {"name": "old", "model": "mlp", "device": "t4"}]}


def spec_with(**changes):
    d = json.loads(json.dumps(BASE))
    for path, value in changes.items():          # "pools__0__replicas" -> d["pools"][0]["replicas"]
        *head, last = [int(p) if p.isdigit() else p for p in path.split("__")]
        node = d
        for p in head:
            node = node[p]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return d


def need_promtool():
    if PROMTOOL is None:
        msg = "promtool not found: `apt-get install -y prometheus` provides it (.ci/run installs it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


# ---------------------------------------------------------------------------------------------- the spec
@pytest.mark.parametrize("changes, path, words", [
    ({"pools__1__device": "c7i-4xlarg"}, "pools[1].device", ["'c7i-4xlarge'", "Allowed:", "h100-sxm"]),
    ({"pools__0__model": "mobilenett"}, "pools[0].model", ["'mobilenet'", "Allowed:", "resnet"]),
    ({"pools__0__replica": 3}, "pools[0].replica", ["unknown key", "'replicas'", "max_ongoing_requests"]),
    ({"router": "least-loded"}, "router", ["'least-loaded'", "power-of-two", "round-robin"]),
    ({"slo__availability": 1.5}, "slo.availability", ["less than 1", "1.5"]),
    ({"pools__0__replicas": 0}, "pools[0].replicas", ["greater than or equal to 1", "0"]),
    ({"pools__2__device": ...}, "pools[2].device", ["missing"]),
    ({"pools__0__autoscaling": {"min_replicas": 4, "max_replicas": 2}}, "pools[0].autoscaling",
     ["max_replicas (2) must be >= min_replicas (4)"]),
    ({"pools__0__batching": {"max_batch_siz": 8}}, "pools[0].batching.max_batch_siz",
     ["'max_batch_size'", "batch_wait_timeout_s"]),
    ({"pools__1__name": "gpu"}, "(spec)", ["unique", "gpu"]),
])
def test_a_bad_spec_names_the_path_and_what_is_allowed(changes, path, words):
    with pytest.raises(ValueError) as e:
        lk.ops.load_spec(spec_with(**changes))
    line = next((ln for ln in str(e.value).splitlines() if path in ln), None)
    assert line is not None, f"{path} not named in:\n{e.value}"
    for w in words:
        assert w in line, f"{w!r} missing from {line!r}"


def test_every_error_of_a_spec_is_reported_at_once_and_yaml_files_load(tmp_path):
    with pytest.raises(ValueError) as e:
        lk.ops.load_spec(spec_with(pools__0__device="l44", pools__1__replicas=-1, router="rr"))
    assert [p for p in ("pools[0].device", "pools[1].replicas", "router") if p in str(e.value)] == \
        ["pools[0].device", "pools[1].replicas", "router"]
    f = tmp_path / "shop.yaml"
    f.write_text(yaml.safe_dump(BASE))
    spec = lk.ops.load_spec(str(f))
    assert spec == lk.ops.load_spec(BASE) == lk.ops.load_spec(f.read_text())
    fleet = spec.fleet()
    assert isinstance(fleet, lk.deploy.Fleet) and [p.name for p in fleet.pools] == ["gpu", "cpu", "old"]
    assert fleet.pools[0].replicas == 2 and fleet.router == "least-loaded"


# ---------------------------------------------------------------------------------------------- plan/apply
@pytest.fixture
def applied(tmp_path):
    state, backend = lk.ops.StateFile(tmp_path / "shop.tfstate"), lk.ops.SimBackend()
    first = lk.ops.plan(BASE, state, backend)
    assert first.detailed_exitcode == 2 and [c.symbol for c in first.changes] == ["+", "+", "+"]
    assert first.counts == {"add": 3, "change": 0, "destroy": 0}
    assert lk.ops.apply(first).serial == 1
    assert backend.read() == lk.ops.attributes(BASE)
    return state, backend


def test_each_kind_of_change_gets_terraforms_symbol_and_the_forcing_attribute(applied):
    state, backend = applied
    new = spec_with(pools__0__replicas=4, pools__1__device="t4")
    new["pools"] = new["pools"][:2] + [{"name": "edge", "model": "mobilenet", "device": "jetson-orin-nx"}]
    p = lk.ops.plan(new, state, backend)
    got = {c.address: (c.symbol, c.changed, c.forces) for c in p.changes}
    assert got == {"gpu": ("~", ("replicas",), ()), "cpu": ("-/+", ("device",), ("device",)),
                   "edge": ("+", got["edge"][1], ()), "old": ("-", got["old"][1], ())}
    assert p.detailed_exitcode == 2 and not p.drift
    text = p.render()
    assert 'Plan: 2 to add, 1 to change, 2 to destroy.' in text      # a replacement is 1 add + 1 destroy
    assert '-/+ pool "cpu"' in text and '~ device = "c7i-4xlarge" -> "t4"  # forces replacement' in text
    assert '~ replicas = 2 -> 4' in text and '+ pool "edge"' in text and '- pool "old"' in text
    assert list(p.to_frame()["symbol"]) == ["+", "~", "-/+", "-"]
    result = lk.ops.apply(p)
    assert (result.added, result.changed, result.destroyed, result.serial) == (2, 1, 2, 2)
    assert backend.read() == lk.ops.attributes(new)
    assert ("destroy", "cpu") in backend.log and backend.log[-1] == ("destroy", "old")


def test_applying_twice_changes_nothing(applied):
    state, backend = applied
    before, log = state.path.read_bytes(), list(backend.log)
    again = lk.ops.plan(BASE, state, backend)
    assert again.detailed_exitcode == 0 and again.changes == () and again.drift == ()
    assert "No changes." in again.render()
    assert lk.ops.apply(again).serial == 1
    assert state.path.read_bytes() == before and backend.log == log


def test_a_change_by_hand_is_drift_and_the_plan_puts_it_back(applied):
    state, backend = applied
    backend.scale("gpu", 5)
    p = lk.ops.plan(BASE, state, backend)
    assert [(d.address, d.changed) for d in p.drift] == [("gpu", ("replicas",))]
    assert [(c.symbol, c.address, c.before["replicas"], c.after["replicas"]) for c in p.changes] == \
        [("~", "gpu", 5, 2)]
    assert "changed outside of labkit" in p.render()
    lk.ops.apply(p)
    assert backend.read()["gpu"]["replicas"] == 2
    backend.destroy("cpu")                                          # deleted by hand: created again
    assert [(c.symbol, c.address) for c in lk.ops.plan(BASE, state, backend).changes] == [("+", "cpu")]


def test_a_stale_plan_is_refused(applied):
    state, backend = applied
    a = lk.ops.plan(spec_with(pools__0__replicas=3), state, backend)
    b = lk.ops.plan(spec_with(pools__0__replicas=4), state, backend)
    lk.ops.apply(a)
    with pytest.raises(lk.ops.StalePlanError, match="serial 1 .* now serial 2"):
        lk.ops.apply(b)
    assert backend.read()["gpu"]["replicas"] == 3
    c = lk.ops.plan(spec_with(pools__0__replicas=4), state, backend)
    backend.scale("gpu", 7)                                         # the world moved after the plan
    with pytest.raises(lk.ops.StalePlanError, match="running changed"):
        lk.ops.apply(c)
    assert state.read().serial == 2


def test_the_lock_keeps_a_second_apply_out(applied):
    state, backend = applied
    p = lk.ops.plan(spec_with(pools__0__replicas=3), state, backend)
    with state.lock():
        with pytest.raises(lk.ops.StateLockedError, match="locked"):
            lk.ops.apply(p)
    assert not state.lock_path.exists()
    assert lk.ops.apply(p).serial == 2


def test_a_crash_mid_write_leaves_the_old_state_valid(applied, tmp_path):
    state, _ = applied
    before = state.read()
    # a real crash: a child process dies (os._exit, no cleanup) after writing half of the new state's bytes
    child = textwrap.dedent(f"""
        import os, labkit as lk
        st = lk.ops.StateFile({str(state.path)!r})
        real_fsync = os.fsync
        def die(fd):
            os.ftruncate(fd, 20)          # half-written temp file on disk, then the process is killed
            os._exit(9)
        os.fsync = die
        st.write(st.read().next({{"gpu": {{"replicas": 99}}}}))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    assert subprocess.run([sys.executable, "-c", child], env=env).returncode == 9
    leftovers = [f for f in os.listdir(state.path.parent) if f.endswith(".tmp")]
    assert leftovers, "the child should have died with its temp file on disk"
    assert state.read() == before                                   # old state, whole and readable
    # and an exception during the write (disk full) leaves no temp file behind
    real = os.replace
    try:
        def full(*a):
            raise OSError(28, "No space left on device")
        os.replace = full
        with pytest.raises(OSError):
            state.write(before.next({}))
    finally:
        os.replace = real
    assert state.read() == before
    assert [f for f in os.listdir(state.path.parent) if f.endswith(".tmp")] == leftovers


# ---------------------------------------------------------------------------------------------- Ray Serve
def test_the_serve_config_passes_rays_own_schema_and_carries_the_spec():
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    spec = spec_with(pools__2__autoscaling={"min_replicas": 1, "max_replicas": 6, "target_ongoing_requests": 3})
    cfg = lk.ops.serve_config(spec)
    parsed = ServeDeploySchema.model_validate(cfg)
    deps = {d.name: d for d in parsed.applications[0].deployments}
    assert deps["gpu"].num_replicas == 2 and deps["cpu"].user_config["device"] == "c7i-4xlarge"
    assert deps["old"].autoscaling_config["max_replicas"] == 6
    cfg["applications"][0]["deployments"][0]["num_replicas"] = 0   # the schema is a real check
    with pytest.raises(ValidationError):
        ServeDeploySchema.model_validate(cfg)


# ---------------------------------------------------------------------------------------------- SLO alerts
def test_burn_rates_follow_from_the_budget_share_and_the_window():
    # the SRE workbook's table for a 30-day SLO, re-derived: share of budget x 720 h / long window in hours
    slo = lk.ops.SLO(availability=0.999, window_days=30)
    got = {a.name: (a.burn_rate, a.threshold, a.severity) for a in lk.ops.burn_rate_alerts(slo)}
    assert got == {"SLOErrorBudgetBurnFast": (pytest.approx(0.02 * 720 / 1), pytest.approx(0.0144), "page"),
                   "SLOErrorBudgetBurnSlow": (pytest.approx(0.05 * 720 / 6), pytest.approx(0.006), "page"),
                   "SLOErrorBudgetBurnTicket": (pytest.approx(0.10 * 720 / 72), pytest.approx(0.001), "ticket")}
    assert [a.burn_rate for a in lk.ops.burn_rate_alerts(lk.ops.SLO(window_days=28))] == \
        pytest.approx([0.02 * 672, 0.05 * 672 / 6, 0.10 * 672 / 72])


def test_promtool_checks_the_rules_file(tmp_path):
    need_promtool()
    f = tmp_path / "rules.yml"
    lk.ops.rules_yaml(BASE, f)
    r = subprocess.run([PROMTOOL, "check", "rules", str(f)], capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS: 3 rules found" in r.stdout, r.stdout + r.stderr
    f.write_text(f.read_text().replace("sum(rate(", "sum(rat(", 1))    # promtool is a real check
    assert subprocess.run([PROMTOOL, "check", "rules", str(f)], capture_output=True).returncode != 0


def series(minutes, start, length, errors_per_min):
    """Counters sampled each minute: 1000 ok/min, 0.2 errors/min (0.2x burn), `errors_per_min` during the
    event; both counters start far from zero so that rate()'s extrapolation cancels in the ratio."""
    t = np.arange(minutes + 1) * 60.0
    err = np.full(len(t), 0.2)
    err[start + 1:start + 1 + length] = errors_per_min
    ok, err = np.full(len(t), 1000.0), err
    ok[0] = err[0] = 0
    return t, 1e6 + np.cumsum(ok), 1e3 + np.cumsum(err)


@pytest.mark.parametrize("event", ["outage", "blip"])
def test_promtool_agrees_with_labkits_evaluation_outage_pages_blip_never_does(event, tmp_path):
    start = 240
    t, ok, err = series(480, start, 30, 1000.0) if event == "outage" else series(480, start, 2, 200.0)
    fired = lk.ops.evaluate(BASE, t, ok, err)
    pages = fired[["SLOErrorBudgetBurnFast", "SLOErrorBudgetBurnSlow"]].any(axis=1)
    if event == "outage":                              # half the requests fail: paged within 2 minutes
        first = pages.index[pages.to_numpy()].min() / 60
        assert start < first <= start + 2
        assert not pages.loc[(start + 30 + 60) * 60:].any()        # and it stops after the short window
    else:
        assert not pages.any()
    need_promtool()
    lk.ops.rules_yaml(BASE, tmp_path / "rules.yml")
    test = lk.ops.rule_tests(BASE, t, ok, err, "rules.yml")
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False, width=10**6))
    r = subprocess.run([PROMTOOL, "test", "rules", "test.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, (r.stdout + r.stderr)[-3000:]
    # one wrong expectation must make promtool fail (so the agreement above is not vacuous)
    case = next(c for c in test["tests"][0]["alert_rule_test"] if c["eval_time"] == f"{(start + 5) * 60}s"
                and c["alertname"] == "SLOErrorBudgetBurnFast")
    case["exp_alerts"] = [] if case["exp_alerts"] else [{"exp_labels": {"severity": "page", "app": "shop"}}]
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False, width=10**6))
    assert subprocess.run([PROMTOOL, "test", "rules", "test.yml"], capture_output=True, cwd=tmp_path).returncode == 1


class FlakyBackend(lk.ops.SimBackend):
    """Dies (like a killed apply) on the n-th create."""

    def __init__(self, fail_at):
        super().__init__()
        self.fail_at, self.creates = fail_at, 0

    def create(self, name, attrs):
        self.creates += 1
        if self.creates == self.fail_at:
            raise KeyboardInterrupt("killed mid-apply")
        super().create(name, attrs)


def test_an_apply_that_dies_half_way_leaves_a_valid_state_and_the_next_plan_finishes_the_job(tmp_path):
    state, backend = lk.ops.StateFile(tmp_path / "s.tfstate"), FlakyBackend(fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        lk.ops.apply(lk.ops.plan(BASE, state, backend))
    assert not state.lock_path.exists() and state.read().serial == 0 and sorted(backend.read()) == ["gpu"]
    p = lk.ops.plan(BASE, state, backend)                      # the pool that was made is adopted, not remade
    assert [(c.symbol, c.address) for c in p.changes] == [("+", "cpu"), ("+", "old")]
    assert lk.ops.apply(p).serial == 1 and backend.read() == lk.ops.attributes(BASE)


def test_two_processes_applying_at_once_never_both_win(tmp_path):
    """Two real processes race for the same state: the lock (or the stale check) turns one away, and the state
    on disk is the winner's, whole."""
    script = textwrap.dedent(f"""
        import sys, time, labkit as lk
        st = lk.ops.StateFile({str(tmp_path / "s.tfstate")!r})
        spec = {json.dumps(BASE)}
        spec["pools"][0]["replicas"] = int(sys.argv[1])
        p = lk.ops.plan(spec, st, lk.ops.SimBackend())
        while time.time() < float(sys.argv[2]):
            pass
        try:
            print("won", lk.ops.apply(p).serial)
        except (lk.ops.StateLockedError, lk.ops.StalePlanError) as e:
            print("lost", type(e).__name__)
    """)
    import time

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    go = str(time.time() + 6)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(r), go], env=env, stdout=subprocess.PIPE,
                              text=True) for r in (3, 4)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    # each process has its own (simulated) backend: both could apply in turn only if the loser's plan were
    # accepted against a state that had moved, which must never happen
    winners = [r for r, o in zip((3, 4), outs) if o[0] == "won"]
    assert len(winners) == 1 and all(o[0] in ("won", "lost") for o in outs), outs
    st = lk.ops.StateFile(tmp_path / "s.tfstate").read()
    assert st.serial == 1 and st.resources["gpu"]["replicas"] == winners[0]


def test_the_rayservice_manifest_embeds_the_serve_config_that_ray_accepts():
    from ray.serve.schema import ServeDeploySchema

    spec = spec_with(pools__2__autoscaling={"min_replicas": 1, "max_replicas": 6})
    m = lk.ops.rayservice(spec)
    assert (m["apiVersion"], m["kind"], m["metadata"]["name"]) == ("ray.io/v1", "RayService", "shop")
    embedded = yaml.safe_load(m["spec"]["serveConfigV2"])          # KubeRay takes it as a YAML string
    assert embedded == lk.ops.serve_config(spec)
    ServeDeploySchema.model_validate(embedded)
    groups = {g["groupName"]: (g["minReplicas"], g["replicas"], g["maxReplicas"])
              for g in m["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    assert groups == {"gpu": (2, 2, 2), "cpu": (1, 1, 1), "old": (1, 6, 6)}
    assert m["spec"]["rayClusterConfig"]["rayVersion"] == "2.60.0"
    yaml.safe_load(yaml.safe_dump(m))                               # writes as a manifest file
