"""The two workloads of Wiesner et al., "Let's Wait Awhile", Middleware 2021, as lists of ``lk.carbon.Job``.

Scenario I: a periodic nightly job, planned at 01:00 UTC every day, that may move up to ``flex_h`` hours
earlier or later (the paper's simulator: 30-minute jobs, windows 0 to +-8 h in 30-minute steps).
Scenario II: ad-hoc ML training jobs submitted on workdays between 09:00 and 17:00, lasting 4 to 89.5 hours
(the paper's generator: 3,387 jobs, uniform over workdays, start and duration on the half hour, seed 0;
labkit draws them with its own code and numpy seed, so the jobs are alike in law, not identical), each to be
done by the start of the next workday (09:00) when its planned finish falls outside 09:00-17:00 Mon-Fri.
The paper's code moves a Friday-evening finish to Saturday 09:00; labkit uses the next workday (Monday).
"""

from __future__ import annotations

from labkit.args import check_int
from labkit.carbon.scheduler import Job, _hours


def nightly_jobs(flex_h: float = 0.0, *, hour: int = 1, duration_h: float = 0.5, power_w: float = 1000.0,
                 days: int = 366) -> list[Job]:
    """Scenario I: one job a night at `hour`:00 UTC from 2020-01-01, movable by +-`flex_h` hours (lab 12).

    >>> import labkit as lk
    >>> jobs = lk.carbon.nightly_jobs(2)
    >>> len(jobs), str(jobs[1].release), str(jobs[1].deadline)
    (366, '2020-01-01 23:00:00', '2020-01-02 03:30:00')
    """
    import pandas as pd

    flex = _hours("flex_h", flex_h)
    check_int("days", days, 1)
    if days > 366:
        raise ValueError(f"days must be <= 366 (the series cover 2020), got {days}.")
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise ValueError(f"hour must be an int in 0..23, got {hour!r}.")
    d = pd.Timedelta(hours=flex)
    jobs = []
    for k in range(days):
        planned = pd.Timestamp("2020-01-01") + pd.Timedelta(days=k, hours=hour)
        jobs.append(Job(planned, duration_h, power_w, release=planned - d,
                        deadline=planned + pd.Timedelta(hours=_hours("duration_h", duration_h)) + d,
                        name=f"night-{k:03d}"))
    return jobs


def _next_workday_deadline(finish):
    """Finish by 09:00 of the next workday when the planned finish is outside 09:00-17:00 Mon-Fri."""
    import pandas as pd

    t = finish.hour + finish.minute / 60
    if finish.weekday() < 5 and 9 <= t <= 17:
        return finish
    day = finish.normalize() + pd.Timedelta(days=0 if (finish.weekday() < 5 and t < 9) else 1)
    while day.weekday() >= 5:
        day += pd.Timedelta(days=1)
    return day + pd.Timedelta(hours=9)


def ml_jobs(n: int = 3387, *, seed: int = 0, power_w: float = 1000.0, min_h: float = 4.0,
            max_h: float = 89.5) -> list[Job]:
    """Scenario II: `n` ad-hoc ML training jobs, deadline = next workday 09:00 (lab 12).

    >>> import labkit as lk
    >>> jobs = lk.carbon.ml_jobs(50, seed=1)
    >>> len(jobs), all(j.planned.weekday() < 5 and 9 <= j.planned.hour < 17 for j in jobs)
    (50, True)
    """
    import numpy as np
    import pandas as pd

    check_int("n", n, 1)
    lo, hi = _hours("min_h", min_h), _hours("max_h", max_h)
    if not 0.5 <= lo <= hi:
        raise ValueError(f"need 0.5 <= min_h <= max_h, got min_h={min_h}, max_h={max_h}.")
    rng = np.random.default_rng(seed)
    days = [d for d in pd.date_range("2020-01-01", "2020-12-31", freq="D") if d.weekday() < 5]
    per_day = rng.multinomial(n, [1 / len(days)] * len(days))
    starts = np.arange(9 * 60, 17 * 60, 30)                   # 09:00 .. 16:30
    durations = np.arange(lo * 60, hi * 60 + 1, 30)
    jobs = []
    for day, count in zip(days, per_day):
        for minute in np.sort(rng.choice(starts, size=count)):
            planned = day + pd.Timedelta(minutes=int(minute))
            dur_h = float(rng.choice(durations)) / 60
            finish = planned + pd.Timedelta(hours=dur_h)
            jobs.append(Job(planned, dur_h, power_w, deadline=_next_workday_deadline(finish),
                            name=f"ml-{len(jobs):04d}"))
    return jobs
