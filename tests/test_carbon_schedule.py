"""lk.carbon.schedule: carbon-aware shifting in time (lab 12).

Oracles: brute force over every start slot (whole jobs) and every subset of slots (interruptible jobs) on the
CSV read by hand; a property test (hypothesis) that a perfect forecast never does worse than run-now.
"""

import csv
import datetime as dt
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labkit as lk

DATA = Path(__file__).resolve().parent.parent / "datasets" / "grid-carbon-2020"
FILES = {"de": "ger_ci.csv", "gb": "gb_ci.csv", "fr": "fr_ci.csv"}
_CACHE = {}


def half_hourly(code):
    """{datetime: g/kWh} at :00 and :30, missing half hours filled with the previous value."""
    if code not in _CACHE:
        with open(DATA / FILES[code]) as f:
            r = csv.reader(f)
            next(r)
            pts = {dt.datetime.fromisoformat(t): float(v) for t, v in r}
        out, t, last = {}, dt.datetime(2019, 12, 20), None
        while t <= dt.datetime(2021, 1, 9, 23, 30):
            last = pts.get(t, last)
            out[t] = last
            t += dt.timedelta(minutes=30)
        _CACHE[code] = out
    return _CACHE[code]


def slots(start, end):
    t, out = start, []
    while t < end:
        out.append(t)
        t += dt.timedelta(minutes=30)
    return out


def brute(code, release, deadline, n, interruptible, kw=1.0):
    ci = half_hourly(code)
    window = slots(release, deadline)
    if interruptible:
        best = min(sum(ci[t] for t in c) for c in itertools.combinations(window, n))
    else:
        best = min(sum(ci[t] for t in window[s:s + n]) for s in range(len(window) - n + 1))
    return best * kw * 0.5


@pytest.mark.parametrize("code", FILES)
@pytest.mark.parametrize("interruptible", [False, True])
def test_small_cases_match_brute_force(code, interruptible):
    for planned, n, window_h in [(dt.datetime(2020, 3, 2, 17), 2, 6), (dt.datetime(2020, 7, 14, 6, 30), 3, 5),
                                 (dt.datetime(2020, 11, 28, 22), 1, 8)]:
        job = lk.carbon.Job(planned, duration_h=n * 0.5, power_w=2000)
        s = lk.carbon.schedule([job], code, window=window_h, interruptible=interruptible)
        deadline = planned + dt.timedelta(hours=window_h)
        assert s.carbon_g == pytest.approx(brute(code, planned, deadline, n, interruptible, kw=2.0))
        now = sum(half_hourly(code)[t] for t in slots(planned, planned + dt.timedelta(hours=n * 0.5)))
        assert s.run_now_g == pytest.approx(now * 2.0 * 0.5)
        row = s.to_frame().iloc[0]
        assert planned <= row["start"].to_pydatetime() and row["finish"].to_pydatetime() <= deadline


def test_no_flexibility_and_no_forecast_are_run_now():
    jobs = lk.carbon.nightly_jobs(0, days=30)
    s = lk.carbon.schedule(jobs, "gb")
    assert s.saved_g == 0 and s.mean_delay_h == 0
    flexible = lk.carbon.nightly_jobs(6, days=30)
    none = lk.carbon.schedule(flexible, "gb", forecast=None)
    assert none.carbon_g == none.run_now_g == s.carbon_g
    assert none.forecast.startswith("none")


@settings(max_examples=40, deadline=None)
@given(day=st.integers(0, 360), slot=st.integers(0, 47), n=st.integers(1, 12), slack=st.integers(0, 40),
       before=st.integers(0, 12), code=st.sampled_from(list(FILES)), interruptible=st.booleans())
def test_perfect_forecast_is_never_worse_than_run_now(day, slot, n, slack, before, code, interruptible):
    planned = dt.datetime(2020, 1, 1) + dt.timedelta(days=day, minutes=30 * slot)
    release = planned - dt.timedelta(minutes=30 * before)
    deadline = planned + dt.timedelta(minutes=30 * (n + slack))
    job = lk.carbon.Job(planned, n * 0.5, 750, release=release, deadline=deadline)
    s = lk.carbon.schedule(job, code, interruptible=interruptible)
    assert s.carbon_g <= s.run_now_g + 1e-9
    assert s.jobs_worse_than_now == 0
    if n + slack + before <= 14:
        assert s.carbon_g == pytest.approx(brute(code, release, deadline, n, interruptible, kw=0.75))


def test_interrupting_never_hurts_and_wider_windows_never_hurt():
    jobs = lk.carbon.ml_jobs(120, seed=3)
    whole = lk.carbon.schedule(jobs, "de")
    split = lk.carbon.schedule(jobs, "de", interruptible=True)
    assert split.carbon_g <= whole.carbon_g + 1e-6
    savings = [lk.carbon.schedule(lk.carbon.nightly_jobs(h, days=60), "de").saved_g for h in (0, 1, 2, 4, 8)]
    assert savings == sorted(savings) and savings[0] == 0 and savings[-1] > 0


def test_forecast_error_can_do_worse_and_is_seeded():
    jobs = lk.carbon.nightly_jobs(4, days=120)
    perfect = lk.carbon.schedule(jobs, "fr")
    noisy = lk.carbon.schedule(jobs, "fr", forecast=0.10, seed=1)
    assert noisy.carbon_g >= perfect.carbon_g - 1e-6          # perfect is optimal job by job
    assert noisy.jobs_worse_than_now > 0                      # France's flat curve drowns in 10 % noise
    assert noisy == lk.carbon.schedule(jobs, "fr", forecast=0.10, seed=1)
    assert noisy != lk.carbon.schedule(jobs, "fr", forecast=0.10, seed=2)
    assert lk.carbon.schedule(jobs, "fr", forecast=0.0).carbon_g == perfect.carbon_g


def test_bad_input_is_a_clear_value_error():
    job = lk.carbon.Job("2020-04-01 10:00", duration_h=3)
    with pytest.raises(ValueError, match="longer than its window"):
        lk.carbon.schedule(job, "de", window=2)
    with pytest.raises(ValueError, match=">= 0"):
        lk.carbon.schedule(job, "de", window=-1)
    with pytest.raises(ValueError, match="outside 2020"):
        lk.carbon.schedule(lk.carbon.Job("2021-01-03 10:00", 1), "de", window=4)
    with pytest.raises(ValueError, match="outside 2020"):
        lk.carbon.schedule(lk.carbon.Job("2019-12-25 10:00", 1), "de", window=4)
    with pytest.raises(ValueError, match="Did you mean"):
        lk.carbon.schedule(job, "frr", window=6)
    with pytest.raises(ValueError, match="half hour"):
        lk.carbon.schedule(lk.carbon.Job("2020-04-01 10:10", 1), "de", window=4)
    with pytest.raises(ValueError, match="multiple of 0.5"):
        lk.carbon.schedule(lk.carbon.Job("2020-04-01 10:00", 0.7), "de", window=4)
    with pytest.raises(ValueError, match="forecast"):
        lk.carbon.schedule(job, "de", window=6, forecast="oracle")
    with pytest.raises(ValueError, match="deadline"):
        lk.carbon.schedule(job, "de")
    with pytest.raises(ValueError, match="jobs"):
        lk.carbon.schedule([], "de", window=6)
    with pytest.raises(ValueError, match="nightly|2020"):
        lk.carbon.nightly_jobs(1, days=400)


def test_dataframe_of_jobs_is_accepted():
    import pandas as pd

    df = pd.DataFrame({"planned": ["2020-02-03 12:00", "2020-02-04 12:00"], "duration_h": [1.0, 2.0],
                       "power_w": [300.0, 400.0]})
    s = lk.carbon.schedule(df, "gb", window=10)
    jobs = [lk.carbon.Job("2020-02-03 12:00", 1.0, 300.0), lk.carbon.Job("2020-02-04 12:00", 2.0, 400.0)]
    assert s.carbon_g == pytest.approx(lk.carbon.schedule(jobs, "gb", window=10).carbon_g)
    assert "jobs" in repr(s)


def test_ml_jobs_deadline_rule():
    import pandas as pd

    from labkit.carbon.workloads import _next_workday_deadline as nwd

    assert nwd(pd.Timestamp("2020-03-04 12:00")) == pd.Timestamp("2020-03-04 12:00")   # Wed noon: no slack
    assert nwd(pd.Timestamp("2020-03-04 20:00")) == pd.Timestamp("2020-03-05 09:00")   # Wed evening
    assert nwd(pd.Timestamp("2020-03-05 03:00")) == pd.Timestamp("2020-03-05 09:00")   # Thu night
    assert nwd(pd.Timestamp("2020-03-06 18:00")) == pd.Timestamp("2020-03-09 09:00")   # Fri evening -> Mon
    assert nwd(pd.Timestamp("2020-03-07 12:00")) == pd.Timestamp("2020-03-09 09:00")   # Saturday -> Mon
    jobs = lk.carbon.ml_jobs(200, seed=0)
    assert all(4 <= j.duration_h <= 89.5 for j in jobs)
    assert all(pd.Timestamp(j.deadline) >= j.planned + pd.Timedelta(hours=j.duration_h) for j in jobs)


def test_ranges_contain_the_point_are_seeded_and_vanish_without_uncertainty():
    jobs = [lk.carbon.Job(f"2020-04-0{d} 01:00", duration_h=1, power_w=800) for d in range(1, 8)]
    point = lk.carbon.schedule(jobs, "de", window=8)
    assert point.carbon_g_p5 == point.carbon_g == point.carbon_g_p95          # nothing stated: no width
    assert point.saved_g_p5 == point.saved_g == point.saved_g_p95 and "no uncertainty" in point.range_inputs
    kw = dict(window=8, pue=(1.1, 1.5), power_rel=0.2, intensity_rel=0.1, seed=3)
    r = lk.carbon.schedule(jobs, "de", **kw)
    assert r == lk.carbon.schedule(jobs, "de", **kw)                           # seeded: the same figures
    assert r.carbon_g_p5 != lk.carbon.schedule(jobs, "de", **{**kw, "seed": 4}).carbon_g_p5
    assert r.carbon_g == pytest.approx(point.carbon_g * 1.3)                  # the PUE interval's midpoint
    for k in ("carbon_g", "run_now_g", "saved_g"):
        assert getattr(r, f"{k}_p5") < getattr(r, k) < getattr(r, f"{k}_p95")
    assert r.saved_pct == pytest.approx(point.saved_pct)                      # systematic factors cancel
    # bounds by hand: the product of the three factors lies in [0.8 x 1.1/1.3 x 0.9, 1.2 x 1.5/1.3 x 1.1]
    assert r.carbon_g * 0.8 * 1.1 / 1.3 * 0.9 <= r.carbon_g_p5 and r.carbon_g_p95 <= r.carbon_g * 1.2 * 1.5 / 1.3 * 1.1
    widths = [lk.carbon.schedule(jobs, "de", window=8, pue=(1.3 - h, 1.3 + h), power_rel=h, intensity_rel=h)
              for h in (0.2, 0.1, 0.01, 0.0)]
    w = [s.carbon_g_p95 - s.carbon_g_p5 for s in widths]
    assert w[0] > w[1] > w[2] > w[3] == 0.0
    assert "90% in" in repr(r) and "90% in" not in repr(point)


@pytest.mark.parametrize("kw, match", [(dict(pue=0.9), "pue"), (dict(pue=(1.4, 1.1)), "low must be"),
                                       (dict(power_rel=1.5), "power_rel"), (dict(intensity_rel=-0.1), "intensity_rel"),
                                       (dict(n_draws=10), "n_draws")])
def test_range_arguments_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        lk.carbon.schedule(lk.carbon.Job("2020-04-01 01:00", duration_h=1), "fr", window=4, **kw)
