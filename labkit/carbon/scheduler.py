"""Carbon-aware scheduling in time: run deferrable jobs when the grid is cleanest (lab 12).

A job has a planned start (when "run now" would start it), a duration and a power draw, and may run anywhere
inside its flexibility window ``[release, deadline]`` (release defaults to the planned start; the deadline to
``release + window``). On the 30-minute grid of ``labkit.carbon.timeseries``:

* a job that cannot be interrupted starts at the slot where the forecast mean over its duration is lowest;
* an interruptible job runs in the ``duration / 30 min`` slots of its window with the lowest forecast;
* ties go to the earliest slot. Emissions are always counted on the TRUE series.

Forecasts: ``"perfect"`` (the true series), ``None`` (no forecast: run at the planned time), or a float ``e``:
the scheduler sees ``true + N(0, e x mean(true))`` per slot, independent, seeded — the error model of
Wiesner et al. 2021 (their simulator adds Gaussian noise with standard deviation ``error x mean``).
Jobs are independent: no capacity limit (as in that paper). With a perfect forecast a job never emits more
than running at its planned time, since the planned slots are one of the candidates.

Ranges: every gram figure comes with a 5-95 % interval (``carbon_g_p5`` / ``carbon_g_p95``, ``run_now_g_*``,
``saved_g_*``), by seeded Monte Carlo over the uncertainties you state: ``power_rel`` (the jobs' power is within
+-power_rel of power_w: TDP and load curve), ``pue`` as a ``(low, high)`` interval, and ``intensity_rel`` (the
series' lifecycle factors within +-intensity_rel). Each is uniform and systematic (one draw applies to every job
and slot), so the schedule itself does not change and ``saved_pct`` has no spread; only grams do. With no
uncertainty stated (the default) the interval is the point.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from labkit.carbon.timeseries import SERIES_NAMES, STEP_H, YEAR, grid, series_code, utc_time


@dataclass(frozen=True)
class Job:
    """A deferrable job (lab 12): planned start, duration (multiple of 30 min), power, flexibility window.

    >>> import labkit as lk
    >>> lk.carbon.Job("2020-03-02 01:00", duration_h=2, power_w=500, deadline="2020-03-02 09:00")
    Job('2020-03-02 01:00', 2 h at 500 W, window 2020-03-02 01:00 .. 2020-03-02 09:00)
    """

    planned: object
    duration_h: float
    power_w: float = 1000.0
    release: object = None             # earliest start; default: planned
    deadline: object = None            # latest finish; default: release + schedule(window=)
    name: str = ""

    def __repr__(self) -> str:
        def t(x):
            return "?" if x is None else str(utc_time("a job time", x))[:16]

        end = "release + window" if self.deadline is None else t(self.deadline)
        rel = t(self.planned if self.release is None else self.release)
        return (f"Job({t(self.planned)!r}, {self.duration_h:g} h at {self.power_w:g} W, "
                f"window {rel} .. {end})")


@dataclass(frozen=True)
class Schedule:
    """What ``lk.carbon.schedule`` decided: per-job and total emissions, savings against run-now, delay."""

    region: str
    forecast: str
    interruptible: bool
    carbon_g: float                    # emitted by the schedule, on the true series, incl. PUE
    run_now_g: float                   # every job at its planned time
    saved_g: float
    saved_pct: float
    mean_delay_h: float                # finish time minus planned finish, mean over jobs (negative = earlier)
    max_delay_h: float
    jobs_worse_than_now: int           # jobs that emit more than at their planned time (forecast error)
    jobs: object = field(repr=False, compare=False)   # DataFrame, one row per job
    carbon_g_p5: float = math.nan      # 5-95 % Monte Carlo interval of carbon_g (power, PUE, intensity)
    carbon_g_p95: float = math.nan
    run_now_g_p5: float = math.nan
    run_now_g_p95: float = math.nan
    saved_g_p5: float = math.nan
    saved_g_p95: float = math.nan
    range_inputs: str = ""             # what the interval assumed

    def to_frame(self):
        """One row per job: planned, start, finish, delay_h, carbon_g, run_now_g, saved_g, saved_pct."""
        return self.jobs.copy()

    def __repr__(self) -> str:
        mode = "interruptible" if self.interruptible else "whole"
        rng = "" if not self.carbon_g_p95 > self.carbon_g_p5 else (
            f"; emitted 90% in [{_g(self.carbon_g_p5)}, {_g(self.carbon_g_p95)}] given {self.range_inputs}")
        return (f"Schedule({len(self.jobs)} {mode} jobs in {SERIES_NAMES[self.region]}, forecast {self.forecast}: "
                f"{_g(self.carbon_g)} vs {_g(self.run_now_g)} run-now, saved {self.saved_pct:.1f}%; "
                f"mean delay {self.mean_delay_h:.1f} h, max {self.max_delay_h:.1f} h; "
                f"{self.jobs_worse_than_now} jobs worse than run-now{rng})")


def _g(grams: float) -> str:
    return f"{grams / 1000:.3g} kg" if grams >= 1000 else f"{grams:.3g} g"


def _hours(what: str, value) -> float:
    import datetime

    if isinstance(value, datetime.timedelta):
        value = value.total_seconds() / 3600
    elif hasattr(value, "total_seconds"):
        value = value.total_seconds() / 3600
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{what} must be a number of hours (or a timedelta), got {value!r}.")
    if value < 0:
        raise ValueError(f"{what} must be >= 0 hours, got {value!r}.")
    return float(value)


def _slot(what: str, t, t0) -> int:
    steps = (t - t0) / np.timedelta64(30, "m")
    if abs(steps - round(steps)) > 1e-9:
        raise ValueError(f"{what} {t} is not on the half hour: the 2020 series are scheduled in 30-minute slots.")
    return int(round(steps))


def _forecast_kind(forecast) -> tuple[str, float | None]:
    if forecast is None or (isinstance(forecast, str) and forecast.strip().lower() in ("none", "run-now", "now")):
        return "none (run now)", None
    if isinstance(forecast, str) and forecast.strip().lower() == "perfect":
        return "perfect", 0.0
    if isinstance(forecast, numbers.Real) and not isinstance(forecast, bool) and math.isfinite(forecast) \
            and forecast >= 0:
        return ("perfect" if forecast == 0 else f"error {forecast:.0%} of mean (Gaussian)"), float(forecast)
    raise ValueError(f"forecast must be 'perfect', None (run now) or a relative error >= 0 such as 0.05 "
                     f"(noise with std 5% of the mean intensity), got {forecast!r}.")


def _jobs_list(jobs) -> list[Job]:
    if isinstance(jobs, Job):
        return [jobs]
    if hasattr(jobs, "to_dict") and hasattr(jobs, "columns"):       # a DataFrame
        allowed = {"planned", "duration_h", "power_w", "release", "deadline", "name"}
        extra = set(jobs.columns) - allowed
        if extra or not {"planned", "duration_h"} <= set(jobs.columns):
            raise ValueError(f"a jobs DataFrame needs columns planned and duration_h (optional: power_w, "
                             f"release, deadline, name); got {sorted(jobs.columns)}.")
        return [Job(**{k: v for k, v in row.items() if not (k in ("release", "deadline") and _isna(v))})
                for row in jobs.to_dict("records")]
    try:
        out = list(jobs)
    except TypeError:
        out = None
    if not out or not all(isinstance(j, Job) for j in out):
        raise ValueError(f"jobs must be a Job, a non-empty list of Job or a DataFrame of jobs, got {jobs!r}.")
    return out


def _isna(v) -> bool:
    import pandas as pd

    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def _place(fc: np.ndarray, lo: int, hi: int, n: int, interruptible: bool) -> np.ndarray:
    """Slots (indices into fc) chosen for n slots inside [lo, hi) by the forecast fc."""
    window = fc[lo:hi]
    if interruptible:
        pick = np.argsort(window, kind="stable")[:n]
        return lo + np.sort(pick)
    sums = np.convolve(window, np.ones(n), mode="valid")         # sums[s] = window[s:s+n].sum()
    s = int(np.argmin(sums))
    return np.arange(lo + s, lo + s + n)


def _factors(pue, power_rel, intensity_rel, n, seed) -> tuple[float, np.ndarray | None, str]:
    """(point PUE, n systematic factors on grams relative to the point or None when nothing is uncertain, label)."""
    from labkit.args import check_int

    lo, hi = (pue if isinstance(pue, (tuple, list)) and len(pue) == 2 else (pue, pue))
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 1.0:
            raise ValueError(f"pue must be >= 1.0 (facility energy / IT energy) or a (low, high) pair, got {pue!r}.")
    if lo > hi:
        raise ValueError(f"pue: low must be <= high, got {pue!r}.")
    for what, v in (("power_rel", power_rel), ("intensity_rel", intensity_rel)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < 1:
            raise ValueError(f"{what} must be a fraction in [0, 1) (0.1 = +-10 %), got {v!r}.")
    check_int("n_draws", n, 100)
    point = (lo + hi) / 2
    label = f"power +-{power_rel:.0%}, PUE U[{lo:g}, {hi:g}], intensity +-{intensity_rel:.0%}"
    if lo == hi and power_rel == 0 and intensity_rel == 0:
        return point, None, label + " (no uncertainty stated)"
    rng = np.random.default_rng([seed, 21])
    f = (rng.uniform(1 - power_rel, 1 + power_rel, n) * rng.uniform(lo, hi, n) / point
         * rng.uniform(1 - intensity_rel, 1 + intensity_rel, n))
    return point, f, label + f", {n} draws, seed {seed}"


def schedule(jobs, region, window=None, interruptible: bool = False, forecast="perfect", *, seed: int = 0,
             pue=1.0, power_rel: float = 0.0, intensity_rel: float = 0.0, n_draws: int = 2000) -> Schedule:
    """Shift deferrable `jobs` into low-carbon time on `region`'s real 2020 grid (lab 12).

    `window` (hours or a timedelta) is the flexibility window of jobs without their own deadline: the job
    must finish by ``release + window``. `forecast` is ``"perfect"``, ``None`` (run now) or a relative error
    such as ``0.05``. Emissions are grams CO2e on the true series, times `pue` (a number, or a (low, high)
    interval whose midpoint is the point figure). `power_rel`, `pue` as an interval and `intensity_rel` give the
    5-95 % ranges (``carbon_g_p5`` ... ``saved_g_p95``; seeded by `seed`, `n_draws` draws).

    >>> import labkit as lk
    >>> job = lk.carbon.Job("2020-05-04 18:00", duration_h=1, power_w=1000)
    >>> now = lk.carbon.schedule(job, "de", window=1)             # no flexibility: window = duration
    >>> later = lk.carbon.schedule(job, "de", window=12)
    >>> now.saved_g, later.carbon_g <= now.carbon_g
    (0.0, True)
    >>> r = lk.carbon.schedule(job, "de", window=12, pue=(1.1, 1.4), power_rel=0.2, intensity_rel=0.1)
    >>> r.carbon_g_p5 < r.carbon_g < r.carbon_g_p95, later.carbon_g_p5 == later.carbon_g == later.carbon_g_p95
    (True, True)
    """
    if not isinstance(interruptible, bool):
        raise ValueError(f"interruptible must be True or False, got {interruptible!r}.")
    pue, factors, range_label = _factors(pue, power_rel, intensity_rel, n_draws, seed)
    label, error = _forecast_kind(forecast)
    window_h = None if window is None else _hours("window", window)
    code = series_code(region)
    g = grid(code)
    t0 = g.index[0]
    true = np.asarray(g.to_numpy(), dtype=float)
    fc = true
    if error:
        rng = np.random.default_rng(seed)
        fc = true + rng.normal(0.0, error * float(true.mean()), size=true.size)
    year_lo, year_hi = utc_time("a job time", YEAR[0]), utc_time("a job time", YEAR[1])

    rows = []
    for i, job in enumerate(_jobs_list(jobs)):
        who = f"job {job.name or i}"
        dur = _hours(f"{who}: duration_h", job.duration_h)
        n = round(dur / STEP_H)
        if n < 1 or abs(n * STEP_H - dur) > 1e-9:
            raise ValueError(f"{who}: duration_h must be a positive multiple of 0.5 h (30-minute slots), got {dur!r}.")
        power_w = job.power_w
        if isinstance(power_w, bool) or not isinstance(power_w, numbers.Real) or not power_w > 0:
            raise ValueError(f"{who}: power_w must be a positive number of watts, got {power_w!r}.")
        planned = utc_time("a job time", job.planned)
        if not year_lo <= planned < year_hi:
            raise ValueError(f"{who}: planned start {planned} is outside 2020; the grid series cover 2020 only.")
        release = planned if job.release is None else utc_time("a job time", job.release)
        if job.deadline is not None:
            deadline = utc_time("a job time", job.deadline)
        elif window_h is not None:
            deadline = release + np.timedelta64(int(round(window_h * 60)), "m")
        else:
            raise ValueError(f"{who} has no deadline: pass window= (hours) or give the job a deadline.")
        p, lo, hi = _slot(f"{who}: planned", planned, t0), _slot(f"{who}: release", release, t0), \
            _slot(f"{who}: deadline", deadline, t0)
        if hi - lo < n:
            raise ValueError(f"{who} is longer than its window: {dur:g} h of work between {release} and {deadline} "
                             f"({(hi - lo) * STEP_H:g} h). Widen the window or shorten the job.")
        if not lo <= p <= hi - n:
            raise ValueError(f"{who}: its planned run ({planned} for {dur:g} h) must lie inside its window "
                             f"[{release}, {deadline}].")
        if lo < 0 or hi > true.size:
            raise ValueError(f"{who}: window [{release}, {deadline}] reaches outside the data "
                             f"({t0} .. {g.index[-1]}); keep jobs inside 2020.")
        now_slots = np.arange(p, p + n)
        chosen = now_slots if error is None else _place(fc, lo, hi, n, interruptible)
        kwh_per_slot = power_w / 1000.0 * STEP_H * pue
        grams, now_g = float(true[chosen].sum() * kwh_per_slot), float(true[now_slots].sum() * kwh_per_slot)
        start, finish = g.index[chosen[0]], g.index[chosen[-1]] + np.timedelta64(30, "m")
        rows.append({"job": job.name or i, "planned": planned, "start": start, "finish": finish,
                     "delay_h": (chosen[-1] + 1 - (p + n)) * STEP_H, "duration_h": dur, "power_w": float(power_w),
                     "carbon_g": grams, "run_now_g": now_g, "saved_g": now_g - grams,
                     "saved_pct": 100 * (now_g - grams) / now_g if now_g else 0.0})

    import pandas as pd

    table = pd.DataFrame(rows).set_index("job")
    total, now_total = float(table["carbon_g"].sum()), float(table["run_now_g"].sum())
    lo, hi = (1.0, 1.0) if factors is None else (float(q) for q in np.percentile(factors, [5, 95]))

    def span(x):
        return (x * lo, x * hi) if x >= 0 else (x * hi, x * lo)

    ranges = {f"{k}_p5": v for k, v in (("carbon_g", span(total)[0]), ("run_now_g", span(now_total)[0]),
                                        ("saved_g", span(now_total - total)[0]))}
    ranges.update({f"{k}_p95": v for k, v in (("carbon_g", span(total)[1]), ("run_now_g", span(now_total)[1]),
                                              ("saved_g", span(now_total - total)[1]))})
    return Schedule(region=code, forecast=label, interruptible=interruptible, carbon_g=total, run_now_g=now_total,
                    saved_g=now_total - total, saved_pct=100 * (now_total - total) / now_total if now_total else 0.0,
                    mean_delay_h=float(table["delay_h"].mean()), max_delay_h=float(table["delay_h"].max()),
                    jobs_worse_than_now=int((table["saved_g"] < -1e-9).sum()), jobs=table, range_inputs=range_label,
                    **ranges)

