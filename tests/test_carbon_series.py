"""lk.carbon.series / profile: the real 2020 grid series (lab 12).

Oracle: the CSV files read with the csv module and aggregated with plain Python (no pandas), in the test.
"""

import csv
import datetime as dt
from collections import defaultdict
from pathlib import Path

import pytest

import labkit as lk

DATA = Path(__file__).resolve().parent.parent / "datasets" / "grid-carbon-2020"
FILES = {"de": "ger_ci.csv", "gb": "gb_ci.csv", "fr": "fr_ci.csv"}


def rows(code):
    with open(DATA / FILES[code]) as f:
        r = csv.reader(f)
        assert next(r) == ["Time", "Carbon Intensity"]
        return [(dt.datetime.fromisoformat(t), float(v)) for t, v in r]


def half_hours_2020(code):
    """The points at :00 and :30 in 2020, with a missing half hour filled by the previous value."""
    pts = {t: v for t, v in rows(code) if t.minute in (0, 30)}
    out, t, last = [], dt.datetime(2019, 12, 20), None
    while t < dt.datetime(2021, 1, 1):
        last = pts.get(t, last)
        if t.year == 2020:
            out.append((t, last))
        t += dt.timedelta(minutes=30)
    return out


@pytest.mark.parametrize("code", FILES)
def test_series_is_the_file_restricted_to_the_asked_span(code):
    raw = rows(code)
    s = lk.carbon.series(code)
    want = [(t, v) for t, v in raw if t.year == 2020]
    assert len(s) == len(want)
    assert list(s.to_numpy()) == [v for _, v in want]
    june = lk.carbon.series(code, start="2020-06-01", end="2020-06-08")
    assert all(dt.datetime(2020, 6, 1) <= t.to_pydatetime() < dt.datetime(2020, 6, 8) for t in june.index)
    assert len(june) == sum(1 for t, _ in raw if dt.datetime(2020, 6, 1) <= t < dt.datetime(2020, 6, 8))


def test_series_aliases_and_cloud_regions_on_the_same_grid():
    assert lk.carbon.series("Germany", "2020-02-01", "2020-02-02").equals(lk.carbon.series("de", "2020-02-01",
                                                                                          "2020-02-02"))
    assert lk.carbon.series("aws-eu-west-3", "2020-02-01", "2020-02-02").equals(
        lk.carbon.series("fr", "2020-02-01", "2020-02-02"))
    assert lk.carbon.series("UK", "2020-02-01", "2020-02-02").equals(lk.carbon.series("gb", "2020-02-01",
                                                                                     "2020-02-02"))


@pytest.mark.parametrize("start,end", [("2019-12-31", None), (None, "2021-01-02"), ("2020-05-02", "2020-05-01"),
                                       ("yesterday-ish", None)])
def test_series_outside_2020_or_backwards_is_a_value_error(start, end):
    with pytest.raises(ValueError, match="2020|before|date"):
        lk.carbon.series("de", start=start, end=end)


def test_unknown_region_lists_near_matches():
    with pytest.raises(ValueError, match="'de'"):
        lk.carbon.series("dee")
    with pytest.raises(ValueError, match="unknown region"):
        lk.carbon.profile("atlantis")
    with pytest.raises(ValueError):
        lk.carbon.series("pl")          # has a yearly figure, but no 2020 series


@pytest.mark.parametrize("code", FILES)
def test_profile_matches_a_hand_aggregation(code):
    pts = half_hours_2020(code)
    by_hour, by_month, cell = defaultdict(list), defaultdict(list), defaultdict(list)
    for t, v in pts:
        by_hour[t.hour].append(v)
        by_month[t.month].append(v)
        cell[t.hour, t.month].append(v)

    def mean(xs):
        return sum(xs) / len(xs)

    p = lk.carbon.profile(code)
    assert p.mean_g_per_kwh == pytest.approx(mean([v for _, v in pts]))
    assert p.cleanest_hour == min(by_hour, key=lambda h: mean(by_hour[h]))
    assert p.dirtiest_hour == max(by_hour, key=lambda h: mean(by_hour[h]))
    assert p.cleanest_month == min(by_month, key=lambda m: mean(by_month[m]))
    for (h, m), vs in list(cell.items())[::37]:
        assert p.hour_month.loc[h, m] == pytest.approx(mean(vs))
    hour = p.by_hour.loc[p.cleanest_hour]
    assert hour["p10"] <= hour["mean"] <= hour["p90"] and hour["std"] > 0
    assert p.to_frame().shape == (24, 12)
    assert p.name in repr(p)


def test_france_is_cleanest_and_flattest():
    """The story lab 12 tells: nuclear France is low and flat; Germany and Britain swing more."""
    de, gb, fr = (lk.carbon.profile(c) for c in ("de", "gb", "fr"))
    assert fr.mean_g_per_kwh < gb.mean_g_per_kwh < de.mean_g_per_kwh
    assert fr.daily_swing_g_per_kwh < min(de.daily_swing_g_per_kwh, gb.daily_swing_g_per_kwh)


def test_carbon_namespace_names_resolve_and_stay_functions():
    import importlib

    for mod in ("yearly", "timeseries", "power_meter", "scheduler", "uncertainty", "workloads"):
        importlib.import_module(f"labkit.carbon.{mod}")
    for name in lk.carbon.__all__:
        assert getattr(lk.carbon, name) is not None, name
    for name in ("series", "profile", "schedule", "intensity", "carbon_g", "pue", "power", "carbon_range"):
        assert callable(getattr(lk.carbon, name)) and not isinstance(getattr(lk.carbon, name), type(lk)), name
    for name in ("carbon_week", "carbon_heatmap", "carbon_savings", "carbon_pareto"):
        assert callable(getattr(lk.plot, name)), name
    assert callable(lk.placement)
