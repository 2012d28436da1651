"""lk.carbon.meter / power / carbon_range: measured energy, its method, and ranges (lab 12).

Oracles: codecarbon's documented formulas written out here; a fake /sys/class/powercap tree whose counters the
test sets; the real RAPL counters when this machine exposes them; closed forms for Monte Carlo means.
"""

import os
import time
from pathlib import Path

import numpy as np
import pytest

import labkit as lk
from labkit.carbon import power_meter as meter_mod


def fake_rapl(root: Path, values, maxima=None):
    for i, v in enumerate(values):
        d = root / f"intel-rapl:{i}"
        d.mkdir(exist_ok=True)
        (d / "energy_uj").write_text(f"{v}\n")
        (d / "max_energy_range_uj").write_text(f"{(maxima or [2**32] * len(values))[i]}\n")
        sub = root / f"intel-rapl:{i}:0"                 # a sub-domain: must not be counted twice
        sub.mkdir(exist_ok=True)
        (sub / "energy_uj").write_text("123\n")


def test_rapl_is_used_when_readable_and_counts_packages_only(tmp_path):
    fake_rapl(tmp_path, [1_000_000, 5_000_000])
    with lk.carbon.meter(rapl_dir=tmp_path) as m:
        fake_rapl(tmp_path, [3_500_000, 6_000_000])      # +2.5 J and +1.0 J
    assert m.method == "rapl"
    assert m.energy_j == pytest.approx(3.5)
    assert m.low_j == pytest.approx(3.5 * 0.9) and m.high_j == pytest.approx(3.5 * 1.1)


def test_rapl_wraparound(tmp_path):
    fake_rapl(tmp_path, [999_000_000], maxima=[1_000_000_000])
    with lk.carbon.meter(rapl_dir=tmp_path) as m:
        fake_rapl(tmp_path, [1_000_000], maxima=[1_000_000_000])
    assert m.energy_j == pytest.approx(2.0)


def test_load_formulas_are_codecarbons():
    """codecarbon CPU (external/hardware.py): process TDP*u; machine TDP*(0.1 + 0.9 u^3)."""
    for tdp, u in [(85, 0.0), (85, 0.3), (120, 1.0), (65, 0.77)]:
        assert meter_mod.load_power_w(tdp, u) == pytest.approx(tdp * u)
        assert meter_mod.load_power_w(tdp, u, "machine") == pytest.approx(tdp * (0.1 + 0.9 * u ** 3))
    assert meter_mod.GENERIC_TDP_W == 85
    with pytest.raises(ValueError, match="mode"):
        meter_mod.load_power_w(85, 0.5, "socket")


def _busy(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1
    return x


def test_fallback_estimate_follows_cpu_time(tmp_path):
    with lk.carbon.meter(rapl_dir=tmp_path / "none", tdp_w=100) as busy:
        _busy(0.3)
    with lk.carbon.meter(rapl_dir=tmp_path / "none", tdp_w=100) as idle:
        time.sleep(0.3)
    for m in (busy, idle):
        assert m.method == "cpu-load estimate (codecarbon)"
        assert m.energy_j == pytest.approx(100 * m.utilisation * m.duration_s)
        assert m.low_j <= m.energy_j <= m.high_j
    ncpu = os.cpu_count()
    assert busy.utilisation > 0.1 / ncpu and busy.utilisation > 5 * idle.utilisation   # busy thread vs a sleep
    assert busy.energy_j > 5 * idle.energy_j
    assert "TDP 100 W" in busy.result.detail


def test_power_reading_and_bad_input(tmp_path):
    p = lk.carbon.power(0.05, rapl_dir=tmp_path / "none")
    assert p.method == "cpu-load estimate (codecarbon)" and p.low_w <= p.watts <= p.high_w
    with pytest.raises(ValueError, match="interval_s"):
        lk.carbon.power(0)
    with pytest.raises(ValueError, match="tdp_w"):
        lk.carbon.meter(tdp_w=-5)
    m = lk.carbon.meter()
    with pytest.raises(AttributeError, match="with"):
        _ = m.energy_j


@pytest.mark.skipif(not meter_mod.rapl_packages(), reason="no readable RAPL counters on this machine")
def test_real_rapl_counts_more_when_busy():
    with lk.carbon.meter() as busy:
        _busy(0.5)
    assert busy.method == "rapl" and busy.energy_j > 0


def test_carbon_range_mean_is_the_product_of_means():
    e, p = (2.0e6, 4.0e6), (1.1, 1.5)
    r = lk.carbon.carbon_range(e, "de", pue=p, n=200_000, seed=7)
    s = lk.carbon.series("de")
    s = s[s.index.minute % 30 == 0]
    expected = np.mean(e) / 3.6e6 * float(s.mean()) * np.mean(p)
    assert r.mean_g == pytest.approx(expected, rel=0.01)
    assert r.p5_g < r.p50_g < r.p95_g
    assert r == lk.carbon.carbon_range(e, "de", pue=p, n=200_000, seed=7)


def test_carbon_range_on_a_yearly_region_brackets_the_point():
    point = lk.carbon.carbon_g(3.6e6, "pl", pue=1.2)
    r = lk.carbon.carbon_range(3.6e6, "pl", pue=1.2, seed=0)
    assert r.p5_g < point < r.p95_g
    assert r.p95_g <= point * 1.05 + 1e-9 and r.p5_g >= point * 0.95 - 1e-9          # +-5 % for exact rows
    wide = lk.carbon.carbon_range(3.6e6, "it", pue=1.2, seed=0)                      # approximate row: +-15 %
    assert (wide.p95_g - wide.p5_g) / lk.carbon.carbon_g(3.6e6, "it", pue=1.2) > 0.2


def test_metered_energy_to_range_and_bad_input(tmp_path):
    with lk.carbon.meter(rapl_dir=tmp_path / "none") as m:
        _busy(0.05)
    r = m.carbon_range("gb", pue=(1.1, 1.2), n=1000)
    assert r.p5_g <= r.p95_g
    assert m.carbon_g("fr") == pytest.approx(m.energy_j / 3.6e6 * lk.carbon.intensity("fr"))
    with pytest.raises(ValueError, match="pue"):
        lk.carbon.carbon_range(1e6, "fr", pue=0.9)
    with pytest.raises(ValueError, match="low must be"):
        lk.carbon.carbon_range((2e6, 1e6), "fr")
    with pytest.raises(ValueError, match="unknown region"):
        lk.carbon.carbon_range(1e6, "narnia")


def test_estimate_range_spans_idle_to_peak_power():
    import torch

    e = lk.estimate(lk.profile(torch.nn.Linear(512, 512), torch.zeros(16, 512)), "a100-sxm", region="de")
    d = lk.device("a100-sxm")
    r = lk.carbon.estimate_range(e, seed=3, n=50_000)
    s = lk.carbon.series("de")
    s = s[s.index.minute % 30 == 0]
    k = e.latency_s / 3.6e6 * lk.carbon.pue(d)
    assert d.idle_w * k * s.min() <= r.p5_g < r.p95_g <= d.peak_w * k * s.max()
    assert r.mean_g == pytest.approx((d.idle_w + d.peak_w) / 2 * k * float(s.mean()), rel=0.02)
    assert d.idle_w * k * s.min() <= e.carbon_g <= d.peak_w * k * s.max()
    with pytest.raises(ValueError, match="lk.estimate"):
        lk.carbon.estimate_range(3.0)
