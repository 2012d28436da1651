"""lk.deploy.carbon_router / carbon_on_series / carbon_tradeoff: carbon-aware routing on the real 2020 series.

Oracles: with equal intensities the router IS its fallback (identical per-request pools and finish times); a
light load never reaches the dirty pool; brute force over every assignment of a tiny burst to a clean and a
dirty pool (the router keeps the most requests on the clean pool that any assignment meeting the bound can);
the grams of a run inside one half hour equal the simulator's yearly-average grams rescaled by the CSV's value
read by hand.
"""

import csv
import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pytest

import labkit as lk

DATA = Path(__file__).resolve().parent.parent / "datasets" / "grid-carbon-2020"
FILES = {"de": "ger_ci.csv", "gb": "gb_ci.csv", "fr": "fr_ci.csv"}


def csv_value(code, when):
    """g/kWh at exactly `when` (a point in the CSV), read with the csv module."""
    with open(DATA / FILES[code]) as f:
        r = csv.reader(f)
        next(r)
        for t, v in r:
            if dt.datetime.fromisoformat(t) == when:
                return float(v)
    raise KeyError(when)


def pool(name, region, replicas=1, service_s=0.01, **kw):
    return lk.deploy.Pool(name, device="l4", service_s=service_s, region=region, replicas=replicas, **kw)


@pytest.mark.parametrize("fallback", ["least-loaded", "round-robin"])
def test_equal_intensities_behave_as_the_fallback(fallback):
    pools = [pool("a", "de", 2), pool("b", "aws-eu-central-1", 1)]       # both on Germany's grid
    w = lk.deploy.poisson(250, 20, seed=1)
    router = lk.deploy.carbon_router(pools, latency_bound_s=0.02, start="2020-02-10 08:00", fallback=fallback)
    a = lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), w)
    b = lk.deploy.simulate(lk.deploy.Fleet(pools, router=fallback), w)
    assert np.array_equal(a.pool, b.pool) and np.allclose(a.finish_s, b.finish_s, rtol=0, atol=1e-12)
    assert router.spilled == 0 and sum(router.sent) == len(w)


def test_light_load_never_uses_the_dirty_pool():
    auto = lk.deploy.Autoscaling(min_replicas=0, max_replicas=2, initial_replicas=0)
    pools = [pool("paris", "fr", 2), pool("frankfurt", "de", autoscaling=auto)]
    router = lk.deploy.carbon_router(pools, latency_bound_s=0.05, start="2020-07-01 00:00", time_scale=600)
    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), lk.deploy.poisson(20, 120, seed=0))
    assert router.sent[1] == 0 and (r.pool == 1).sum() == 0 and r.pools[1].replica_s == 0
    # the same when the dirty pool has a running replica: it idles
    pools = [pool("paris", "fr", 2), pool("frankfurt", "de", 3)]
    router = lk.deploy.carbon_router(pools, latency_bound_s=0.05, start="2020-07-01 00:00")
    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), lk.deploy.poisson(20, 120, seed=0))
    assert (r.pool == 1).sum() == 0 and r.p99_s <= 0.05


def test_follows_the_cleaner_grid_through_a_day():
    """Germany vs Great Britain swap places on windy days (9 Feb 2020: Germany cleaner in 31 of 48 half hours); at light load each request goes to the grid that is
    cleaner at its own half hour (read from the CSVs by hand)."""
    pools = [pool("de", "de", 4), pool("gb", "gb", 4)]
    start = dt.datetime(2020, 2, 9)
    router = lk.deploy.carbon_router(pools, latency_bound_s=0.05, start=start, time_scale=1800)   # 1 s = 30 min
    w = lk.deploy.Workload(np.arange(48) + 0.5)                                    # one request per half hour
    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), w)
    want = [0 if csv_value("de", start + dt.timedelta(minutes=30 * k)) < csv_value("gb", start + dt.timedelta(
        minutes=30 * k)) else 1 for k in range(48)]
    assert r.pool.tolist() == want and 0 < sum(want) < 48          # both grids win some half hours that day


def test_brute_force_tiny_burst():
    """12 requests in bursts: a 1-replica clean pool (FR) and a roomy dirty one (DE). Every one of the 2^12
    assignments is simulated; the router keeps as many requests in France as the best assignment whose every
    latency is within the bound, and meets the bound itself."""
    bound = 0.025
    pools = [pool("fr", "fr", 1), pool("de", "de", 12)]
    arr = [0.0, 0.001, 0.002, 0.003, 0.030, 0.031, 0.045, 0.080, 0.081, 0.082, 0.083, 0.120]
    w = lk.deploy.Workload(arr)
    router = lk.deploy.carbon_router(pools, latency_bound_s=bound, start="2020-05-05 10:00")
    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), w)
    assert r.latency_s.max() <= bound + 1e-12
    best = -1
    for bits in itertools.product((0, 1), repeat=len(arr)):
        res = lk.deploy.simulate(lk.deploy.Fleet(pools, router=lambda req, s, b=bits: b[req["index"]]), w)
        if res.latency_s.max() <= bound + 1e-12:
            best = max(best, bits.count(0))
    assert int((r.pool == 0).sum()) == best and 0 < best < len(arr)


def test_grams_on_the_series_inside_one_half_hour():
    pools = [pool("fr", "fr", 2), pool("de", "de", 1)]
    router = lk.deploy.carbon_router(pools, latency_bound_s=0.02, start="2020-01-15 09:00")
    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), lk.deploy.poisson(300, 60, seed=2))
    g = lk.deploy.carbon_on_series(r, pools, start="2020-01-15 09:00")
    when = dt.datetime(2020, 1, 15, 9)
    for k, code in enumerate(("fr", "de")):
        ratio = csv_value(code, when) / lk.carbon.intensity(code)
        assert g[pools[k].name] == pytest.approx(r.pools[k].carbon_g * ratio, rel=1e-9)
    assert g["total"] == pytest.approx(g["fr"] + g["de"]) and (r.pool == 1).sum() > 0   # the bound made it spill


def test_idle_grams_split_across_slots():
    p = pool("gb", "gb", 3)
    w = lk.deploy.Workload([0.0], duration_s=3600.0)            # one request, an hour of idle replicas
    start = dt.datetime(2020, 8, 1, 12, 15)
    g = lk.deploy.carbon_on_series(lk.deploy.simulate(p, w), p, start=start)["total"]
    idle_w = lk.device("l4").idle_w
    secs = [(dt.datetime(2020, 8, 1, 12, 0), 900), (dt.datetime(2020, 8, 1, 12, 30), 1800),
            (dt.datetime(2020, 8, 1, 13, 0), 900)]
    want = sum(3 * idle_w * s * csv_value("gb", t) for t, s in secs) / 3.6e6 * lk.carbon.pue("l4")
    dyn = (lk.device("l4").peak_w - idle_w) * 0.01 * csv_value("gb", secs[0][0]) / 3.6e6 * lk.carbon.pue("l4")
    assert g == pytest.approx(want + dyn, rel=1e-9)


def test_tradeoff_table_saves_carbon_within_the_bound():
    pools = [pool("paris", "fr", 1), pool("frankfurt", "de", 1)]
    t = lk.deploy.carbon_tradeoff(pools, lk.deploy.poisson(60, 120, seed=0), latency_bound_s=0.04,
                                  start="2020-10-01 18:00")
    assert list(t.index) == ["least-loaded", "carbon-aware"]
    ca = t.loc["carbon-aware"]
    assert ca["saved_pct"] > 20 and ca["share_paris"] > 0.6 and ca["p99_s"] <= 0.04 and ca["p99_lost_ms"] >= 0


@pytest.mark.parametrize("kw, match", [
    (dict(latency_bound_s=0), "latency_bound_s"),
    (dict(latency_bound_s=0.05, start="2021-03-01"), "2020"),
    (dict(latency_bound_s=0.05, fallback="least-loded"), "Did you mean 'least-loaded'"),
    (dict(latency_bound_s=0.05, fallback=3), "fallback"),
    (dict(latency_bound_s=0.05, time_scale=0), "time_scale"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        lk.deploy.carbon_router([pool("a", "fr"), pool("b", "de")], **kw)


def test_bad_pools():
    with pytest.raises(ValueError, match="no region"):
        lk.deploy.carbon_router([pool("a", "fr"), lk.deploy.Pool("b", device="l4", service_s=0.01)],
                                latency_bound_s=0.05)
    with pytest.raises(ValueError, match="Did you mean 'fr'"):
        lk.deploy.carbon_router([pool("a", "frr")], latency_bound_s=0.05)
    with pytest.raises(ValueError, match="2020 series"):
        lk.deploy.carbon_router([pool("a", "pl")], latency_bound_s=0.05)
    with pytest.raises(ValueError, match="Fleet or a list"):
        lk.deploy.carbon_router("fr", latency_bound_s=0.05)
    pools = [pool("a", "fr"), pool("b", "de")]
    router = lk.deploy.carbon_router(pools, latency_bound_s=0.05, start="2020-12-31 12:00", time_scale=3600)
    with pytest.raises(ValueError, match="past the end"):
        lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), lk.deploy.Workload([0.0, 900.0]))


def test_grams_on_the_series_follow_the_replica_timeline_of_an_autoscaling_pool():
    """Inside one half hour the series is one number, so the recount equals the simulator's yearly-average grams
    rescaled: the idle energy integrated from the replica timeline matches the simulator's replica-seconds."""
    auto = lk.deploy.Autoscaling(min_replicas=1, max_replicas=6, upscale_delay_s=2, downscale_delay_s=5,
                                 look_back_period_s=2)
    pools = [pool("fr", "fr", autoscaling=auto), pool("de", "de", 2)]
    router = lk.deploy.carbon_router(pools, latency_bound_s=0.03, start="2020-09-09 14:00")
    w = lk.deploy.bursty(400, 20, 10, 20, 300, seed=1)
    r = lk.deploy.simulate(lk.deploy.Fleet(pools, router=router), w)
    assert r.replicas[r.replicas[:, 1] == 0][:, 2].max() > 1                 # it did scale
    g = lk.deploy.carbon_on_series(r, pools, start="2020-09-09 14:00")
    when = dt.datetime(2020, 9, 9, 14)
    for k, code in enumerate(("fr", "de")):
        assert g[pools[k].name] == pytest.approx(r.pools[k].carbon_g * csv_value(code, when) / lk.carbon.intensity(code),
                                                 rel=1e-9)
