"""A carbon figure as a range, not a point: seeded Monte Carlo over energy, PUE and grid intensity (lab 12).

Each input is a point (no spread) or an interval ``(low, high)`` sampled uniformly; the grid intensity is
sampled from the region's real 2020 half-hourly series when it has one (the time of use unknown), else
uniformly within +-15 % of the yearly figure for rows marked ``approximate`` in carbon.toml (the tolerance
that file states) and +-5 % otherwise (labkit's assumption for year-to-year drift; not a published figure).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

APPROX_REL = 0.15
YEARLY_REL = 0.05


@dataclass(frozen=True)
class Range:
    """A Monte Carlo range of grams CO2e: mean, median and the 5-95 % interval."""

    mean_g: float
    p5_g: float
    p50_g: float
    p95_g: float
    n: int
    seed: int
    inputs: str

    def __repr__(self) -> str:
        return (f"Range({self.mean_g:.3g} g CO2e, 90% in [{self.p5_g:.3g}, {self.p95_g:.3g}] g; "
                f"{self.n} draws, seed {self.seed}; {self.inputs})")


def _interval(what: str, value, low_ok: float) -> tuple[float, float]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        lo, hi = value
    else:
        lo = hi = value
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < low_ok:
            raise ValueError(f"{what} must be a number >= {low_ok:g} or a (low, high) pair, got {value!r}.")
    if lo > hi:
        raise ValueError(f"{what}: low must be <= high, got {value!r}.")
    return float(lo), float(hi)


def carbon_range(energy_j, region, pue=1.0, *, n: int = 10_000, seed: int = 0) -> Range:
    """Grams CO2e of `energy_j` in `region` as a 5-95 % range, by seeded Monte Carlo (lab 12).

    `energy_j` and `pue` are numbers or ``(low, high)`` intervals (uniform); the intensity is drawn from the
    2020 series of ``de``/``gb``/``fr`` (or a cloud region on those grids), else around the yearly figure.

    >>> import labkit as lk
    >>> r = lk.carbon.carbon_range((3.0e6, 4.2e6), "fr", pue=(1.1, 1.4), seed=0)
    >>> r.p5_g < r.p50_g < r.p95_g, r == lk.carbon.carbon_range((3.0e6, 4.2e6), "fr", pue=(1.1, 1.4), seed=0)
    (True, True)
    """
    from labkit.args import check_int
    from labkit.carbon.yearly import J_PER_KWH, grid_of

    e_lo, e_hi = _interval("energy_j", energy_j, 0.0)
    p_lo, p_hi = _interval("pue", pue, 1.0)
    check_int("n", n, 100)
    check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    energy = rng.uniform(e_lo, e_hi, n)
    pues = rng.uniform(p_lo, p_hi, n)
    try:
        from labkit.carbon.timeseries import YEAR, grid, series_code

        code = series_code(region)
    except ValueError:
        code = None
    if code is not None:
        g = grid(code)
        values = g[(g.index >= YEAR[0]) & (g.index < YEAR[1])].to_numpy()
        ci = rng.choice(values, size=n)
        what = f"intensity drawn from the 2020 series of {code}"
    else:
        grid_code, row = grid_of(region)
        rel = APPROX_REL if row.get("approximate") else YEARLY_REL
        g_kwh = float(row["g_per_kwh"])
        ci = rng.uniform(g_kwh * (1 - rel), g_kwh * (1 + rel), n)
        what = f"intensity {g_kwh:g} g/kWh +-{rel:.0%} ({grid_code}, {row['year']})"
    grams = energy / J_PER_KWH * ci * pues
    p5, p50, p95 = np.percentile(grams, [5, 50, 95])
    return Range(float(grams.mean()), float(p5), float(p50), float(p95), n, seed,
                 f"energy U[{e_lo:.3g}, {e_hi:.3g}] J, PUE U[{p_lo:g}, {p_hi:g}], {what}")


def estimate_range(estimate, pue=None, *, n: int = 10_000, seed: int = 0) -> Range:
    """The carbon of an ``lk.estimate`` result as a 5-95 % range, not a point (labs 01, 12).

    Power: the device may draw anything between its idle and peak power for the predicted time (the roofline
    model's load curve is the uncertain part), so energy is uniform on ``[idle_w, peak_w] x latency_s``.
    PUE: the device's class value unless `pue` (a number or a (low, high) pair) is given. Intensity: as in
    ``carbon_range``, for the estimate's region.

    >>> import labkit as lk, torch
    >>> e = lk.estimate(lk.profile(torch.nn.Linear(256, 256), torch.zeros(8, 256)), "l4", region="de")
    >>> r = lk.carbon.estimate_range(e, pue=(1.1, 1.6))
    >>> r.p5_g < r.p95_g
    True
    """
    from labkit.carbon.yearly import pue as pue_of
    from labkit.targets import device as lookup

    for attr in ("device", "latency_s", "region"):
        if not hasattr(estimate, attr):
            raise ValueError(f"estimate_range takes the result of lk.estimate (it needs .{attr}), got {estimate!r}.")
    dev = lookup(estimate.device)
    energy = (dev.idle_w * estimate.latency_s, dev.peak_w * estimate.latency_s)
    return carbon_range(energy, estimate.region, pue=pue_of(dev) if pue is None else pue, n=n, seed=seed)
