"""lk.carbon: grid intensity, PUE and grams of CO2e (lab 10; lab 01 through lk.estimate).

Oracles: carbon.toml read directly with tomllib, and the kWh arithmetic done by hand.
"""

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

import labkit as lk
from labkit.targets import KINDS

RAW = tomllib.loads((Path(__file__).resolve().parent.parent / "datasets" / "carbon.toml").read_text())
GRIDS, CLOUD = RAW["grids"], RAW["regions"]


def test_at_least_20_regions_eu_us_and_cloud():
    assert len(GRIDS) + len(CLOUD) >= 20 and len(GRIDS) >= 20
    for code in ("fr", "de", "se", "no", "pl", "es", "it", "nl", "ie", "fi", "us-ca", "us-tx", "us-va", "us-wa"):
        assert code in GRIDS
    assert CLOUD["aws-us-east-1"]["grid"] == "us-va"
    assert CLOUD["gcp-europe-north1"]["grid"] == "fi"
    assert CLOUD["azure-westeurope"]["grid"] == "nl"


@pytest.mark.parametrize("code", sorted(GRIDS))
def test_every_grid_has_value_year_and_dated_source(code):
    g = GRIDS[code]
    assert 0 < g["g_per_kwh"] < 1200 and 2019 <= g["year"] <= 2026
    assert str(g["year"]) in g["source"] or re.search(r"\b20\d\d\b", g["source"])
    assert lk.carbon.intensity(code) == g["g_per_kwh"]


def test_cloud_regions_resolve_to_their_grid():
    t = lk.carbon.regions()
    for name, row in CLOUD.items():
        assert lk.carbon.intensity(name) == GRIDS[row["grid"]]["g_per_kwh"]
        assert t.loc[name, "grid"] == row["grid"] and t.loc[name, "kind"] == "cloud"
    assert set(t.index) == set(GRIDS) | set(CLOUD)
    assert t.loc["us-va", "approximate"] and not t.loc["fr", "approximate"]


def test_intensities_are_in_the_known_order():
    i = lk.carbon.intensity
    assert i("no") < i("se") < i("fr") < i("de") < i("pl")
    assert i("gcp-europe-north1") < i("aws-eu-central-1") < i("azure-polandcentral")
    assert i("fr") < i("world") < i("pl")


def test_region_names_are_tolerant_and_unknown_ones_suggest():
    assert lk.carbon.intensity("FR") == lk.carbon.intensity("fr")
    assert lk.carbon.intensity("AWS_US_EAST_1") == lk.carbon.intensity("aws-us-east-1")
    with pytest.raises(ValueError, match="'aws-us-east-1'"):
        lk.carbon.intensity("aws-us-east1")
    with pytest.raises(ValueError, match="unknown region"):
        lk.carbon.intensity("atlantis")


def test_every_catalog_device_region_is_known():
    for _, row in lk.devices().iterrows():
        if isinstance(row["region"], str):
            lk.carbon.intensity(row["region"])


def test_pue_rule_by_kind_device_and_class():
    hyperscale = RAW["pue"]["hyperscale"]["value"]
    assert 1.0 < hyperscale < 1.2
    for kind in ("cloud-gpu", "cloud-cpu", "cloud-npu", "tpu"):
        assert lk.carbon.pue(kind) == hyperscale
    for kind in ("edge-gpu", "edge-cpu", "npu", "mcu", "local"):
        assert lk.carbon.pue(kind) == 1.0
    assert set(RAW["pue_by_kind"]) == set(KINDS)
    assert lk.carbon.pue(lk.device("h100-sxm")) == hyperscale
    assert lk.carbon.pue("jetson-orin-nano") == 1.0
    assert lk.carbon.pue("colocation") == RAW["pue"]["colocation"]["value"] > hyperscale
    for cls in RAW["pue"].values():   # measured classes cite a dated survey; 1.0 is a stated convention
        assert cls["value"] >= 1.0 and cls["source"]
        assert cls["value"] == 1.0 or re.search(r"\b20\d\d\b", cls["source"])
    with pytest.raises(ValueError, match="kind"):
        lk.carbon.pue("spaceship")
    with pytest.raises(ValueError):
        lk.carbon.pue(3)


def test_carbon_g_is_kwh_times_intensity_times_pue():
    # 7.2 MJ = 2 kWh; Germany 381 g/kWh
    assert lk.carbon.carbon_g(7.2e6, "de") == pytest.approx(2 * GRIDS["de"]["g_per_kwh"])
    assert lk.carbon.carbon_g(7.2e6, "de", pue=1.1) == pytest.approx(2 * GRIDS["de"]["g_per_kwh"] * 1.1)
    assert lk.carbon.carbon_g(0, "pl") == 0
    # the same job is ~16x dirtier in Poland than in Sweden
    assert lk.carbon.carbon_g(1e6, "pl") / lk.carbon.carbon_g(1e6, "se") == pytest.approx(662 / 41)


@pytest.mark.parametrize("energy, pue, says", [(-1.0, 1.0, "energy_j"), (float("nan"), 1.0, "energy_j"),
                                               ("1 kWh", 1.0, "energy_j"), (1.0, 0.9, "pue"),
                                               (1.0, float("inf"), "pue")])
def test_carbon_g_rejects_bad_input(energy, pue, says):
    with pytest.raises(ValueError, match=says):
        lk.carbon.carbon_g(energy, "fr", pue=pue)


@given(e=st.floats(0, 1e12), pue=st.floats(1.0, 3.0), region=st.sampled_from(sorted(GRIDS)))
def test_carbon_g_is_kwh_times_grid_intensity_times_pue(e, pue, region):
    # pins the formula, not just linearity: joules -> kWh (/3.6e6), times the grid's g/kWh from the data file
    # (read here with tomllib, not through labkit), times the facility's PUE
    want = e / 3.6e6 * GRIDS[region]["g_per_kwh"] * pue
    assert lk.carbon.carbon_g(e, region, pue=pue) == pytest.approx(want, rel=1e-12, abs=1e-300)


def test_carbon_g_known_values():
    g = GRIDS["fr"]["g_per_kwh"]
    assert lk.carbon.carbon_g(3.6e6, "fr") == pytest.approx(g)               # 1 kWh, no overhead
    assert lk.carbon.carbon_g(1.8e6, "fr", pue=2.0) == pytest.approx(g)      # half a kWh, twice the facility
    assert lk.carbon.carbon_g(0.0, "fr", pue=3.0) == 0.0


@given(a=st.floats(0, 1e9), b=st.floats(0, 1e9), pue=st.floats(1.0, 3.0))
def test_carbon_g_is_linear_in_energy(a, b, pue):
    total = lk.carbon.carbon_g(a + b, "ie", pue=pue)
    assert total == pytest.approx(lk.carbon.carbon_g(a, "ie", pue=pue) + lk.carbon.carbon_g(b, "ie", pue=pue),
                                  rel=1e-9, abs=1e-9)


def test_gb_yearly_row_is_the_2020_mean_of_the_shipped_series():
    """carbon.toml's GB row (no Ember table stored for the UK) = the mean of gb_ci.csv over 2020 on the
    30-minute grid, read here with the csv module (missing half hours take the previous value)."""
    import csv
    import datetime as dt

    path = Path(__file__).resolve().parent.parent / "datasets" / "grid-carbon-2020" / "gb_ci.csv"
    with open(path) as f:
        rows = csv.reader(f)
        next(rows)
        pts = {dt.datetime.fromisoformat(t): float(v) for t, v in rows}
    t, last, total, n = dt.datetime(2019, 12, 31, 23, 30), None, 0.0, 0
    last = pts[t]
    t += dt.timedelta(minutes=30)
    while t < dt.datetime(2021, 1, 1):
        last = pts.get(t, last)
        total, n = total + last, n + 1
        t += dt.timedelta(minutes=30)
    assert n == 366 * 48
    assert GRIDS["gb"]["g_per_kwh"] == round(total / n) and GRIDS["gb"]["year"] == 2020
    assert lk.carbon.intensity("gb") == lk.carbon.intensity("aws-eu-west-2") == GRIDS["gb"]["g_per_kwh"]
    assert lk.carbon.intensity("gb") == round(lk.carbon.profile("gb").mean_g_per_kwh)
