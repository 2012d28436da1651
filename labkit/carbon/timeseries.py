"""Real grid carbon intensity through 2020: Germany, Great Britain and France (lab 12).

Data: ``datasets/grid-carbon-2020/`` — verbatim copies of the data of Wiesner et al., "Let's Wait Awhile",
Middleware 2021 (computed from ENTSO-E generation per production type with IPCC lifecycle intensities; see the
folder's README). Germany comes in 15-minute steps, Great Britain in 15/30-minute steps, France in 30-minute
steps, all in UTC, from 2019-12-20 to 2021-01-09.

``series`` returns the file's own points. Everything else (``profile``, the scheduler) works on a regular
30-minute grid made of the points at :00 and :30, as the paper's simulator did (its ``simulate.py`` keeps
``minute % 30 == 0``); a missing half hour takes the previous value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from labkit.args import unknown_name
from labkit.targets.catalog import catalog_key, file_version

STEP_H = 0.5                                   # the scheduler's and profile's grid, hours
FOLDER = "grid-carbon-2020"
_FILES = {"de": "ger_ci.csv", "gb": "gb_ci.csv", "fr": "fr_ci.csv"}
SERIES_NAMES = {"de": "Germany", "gb": "Great Britain", "fr": "France"}
_ALIASES = {"ger": "de", "germany": "de", "uk": "gb", "great-britain": "gb", "britain": "gb", "france": "fr"}
YEAR = ("2020-01-01", "2021-01-01")            # [start, end): the year a learner may ask for


def series_regions() -> dict[str, str]:
    """The regions with a 2020 series: code -> name (lab 12).

    >>> import labkit as lk
    >>> lk.carbon.series_regions()
    {'de': 'Germany', 'gb': 'Great Britain', 'fr': 'France'}
    """
    return dict(SERIES_NAMES)


def series_code(region) -> str:
    """The code of the 2020 series for `region`: 'de', 'gb' or 'fr' for a code, an alias or a cloud region (carbon.toml) whose grid has a series."""
    key = catalog_key(region)
    key = _ALIASES.get(key, key)
    if key in _FILES:
        return key
    from labkit.carbon.yearly import tables

    _, cloud, _, _ = tables()
    if key in cloud and cloud[key]["grid"] in _FILES:
        return cloud[key]["grid"]
    with_series = [name for name, row in cloud.items() if row["grid"] in _FILES]
    raise unknown_name("region with a 2020 series", region, [*_FILES, *_ALIASES, *with_series])


@lru_cache(maxsize=8)
def _raw(code: str, version: tuple[str, int]):
    import pandas as pd

    s = pd.read_csv(version[0], index_col=0, parse_dates=True)["Carbon Intensity"]
    s.index.name = "time_utc"
    return s.rename("g_per_kwh").astype(float)


def _load(code: str):
    return _raw(code, file_version(f"{FOLDER}/{_FILES[code]}"))


@lru_cache(maxsize=8)
def _grid_cached(code: str, version: tuple[str, int]):
    import pandas as pd

    s = _raw(code, version)
    s = s[s.index.minute % 30 == 0]
    full = pd.date_range(s.index[0], s.index[-1], freq="30min", name="time_utc")
    return s.reindex(full).ffill()


def grid(region):
    """The whole file (2019-12-20 .. 2021-01-09) on the regular 30-minute grid (for the scheduler)."""
    code = series_code(region)
    return _grid_cached(code, file_version(f"{FOLDER}/{_FILES[code]}"))


def utc_time(what: str, value, default: str | None = None):
    """`value` as a naive UTC pandas Timestamp (aware ones converted), `default` when None; else a ValueError.

    >>> utc_time("start", "2020-06-01T02:00+02:00")
    Timestamp('2020-06-01 00:00:00')
    """
    import pandas as pd

    if value is None and default is not None:
        return pd.Timestamp(default)
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{what} must be a date or time in 2020 such as '2020-06-01 01:00', got {value!r}.") from err
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t


def series(region, start=None, end=None):
    """Carbon intensity of `region`'s grid in gCO2e/kWh through 2020, at the data's own resolution (lab 12).

    A pandas Series indexed by UTC time over ``[start, end)`` (default: all of 2020). `region` is ``"de"``,
    ``"gb"``, ``"fr"`` (or "germany", "uk", ...), or a cloud region on one of those grids ("aws-eu-west-3").
    Times outside 2020 raise a ValueError.

    >>> import labkit as lk
    >>> s = lk.carbon.series("fr", start="2020-06-01", end="2020-06-02")
    >>> len(s), s.index[0]             # France: one point per half hour
    (48, Timestamp('2020-06-01 00:00:00'))
    >>> bool(lk.carbon.series("de").mean() > lk.carbon.series("fr").mean())
    True
    """
    code = series_code(region)
    lo, hi = utc_time("start", start, YEAR[0]), utc_time("end", end, YEAR[1])
    first, last = utc_time("", YEAR[0], YEAR[0]), utc_time("", YEAR[1], YEAR[1])
    if lo < first or hi > last:
        raise ValueError(f"the grid series cover 2020 only ([{YEAR[0]}, {YEAR[1]})); got start={lo}, end={hi}.")
    if lo >= hi:
        raise ValueError(f"start must be before end, got start={lo}, end={hi}.")
    s = _load(code)
    return s[(s.index >= lo) & (s.index < hi)].copy()


@dataclass(frozen=True)
class GridProfile:
    """When a grid is clean: 2020 intensity by hour of day (UTC) and by month, with spread (lab 12).

    ``hour_month`` is the 24 x 12 table of mean gCO2e/kWh; ``by_hour`` and ``by_month`` hold mean, std,
    p10 and p90 over every half hour of 2020 in that hour or month.
    """

    region: str
    name: str
    mean_g_per_kwh: float
    cleanest_hour: int                 # hour of day (UTC) with the lowest 2020 mean
    dirtiest_hour: int
    cleanest_month: int                # 1..12
    dirtiest_month: int
    hour_month: object                 # DataFrame: index hour 0..23, columns month 1..12, mean g/kWh
    by_hour: object                    # DataFrame: index hour, columns mean, std, p10, p90
    by_month: object                   # DataFrame: index month, columns mean, std, p10, p90

    @property
    def daily_swing_g_per_kwh(self) -> float:
        """Difference between the dirtiest and the cleanest hour-of-day mean."""
        return float(self.by_hour["mean"].max() - self.by_hour["mean"].min())

    def to_frame(self):
        """The hour x month table of mean gCO2e/kWh."""
        return self.hour_month.copy()

    def __repr__(self) -> str:
        return (f"GridProfile({self.name}: mean {self.mean_g_per_kwh:.0f} g/kWh in 2020; cleanest at "
                f"{self.cleanest_hour:02d}:00 UTC and in month {self.cleanest_month}; dirtiest at "
                f"{self.dirtiest_hour:02d}:00 UTC and in month {self.dirtiest_month}; daily swing "
                f"{self.daily_swing_g_per_kwh:.0f} g/kWh)")


def _spread(groups):
    t = groups.agg(["mean", "std"])
    t["p10"] = groups.quantile(0.10)
    t["p90"] = groups.quantile(0.90)
    return t


def profile(region) -> GridProfile:
    """Mean 2020 intensity of `region` by hour of day (UTC) and by month, with spread (lab 12).

    >>> import labkit as lk
    >>> p = lk.carbon.profile("de")
    >>> p.hour_month.shape, 0 <= p.cleanest_hour < 24, 1 <= p.cleanest_month <= 12
    ((24, 12), True, True)
    """
    code = series_code(region)
    g = grid(code)
    g = g[(g.index >= YEAR[0]) & (g.index < YEAR[1])]
    hour, month = g.index.hour, g.index.month
    by_hour = _spread(g.groupby(hour))
    by_month = _spread(g.groupby(month))
    by_hour.index.name, by_month.index.name = "hour", "month"
    table = g.groupby([hour, month]).mean().unstack()
    table.index.name, table.columns.name = "hour", "month"
    return GridProfile(
        region=code, name=SERIES_NAMES[code], mean_g_per_kwh=float(g.mean()),
        cleanest_hour=int(by_hour["mean"].idxmin()), dirtiest_hour=int(by_hour["mean"].idxmax()),
        cleanest_month=int(by_month["mean"].idxmin()), dirtiest_month=int(by_month["mean"].idxmax()),
        hour_month=table, by_hour=by_hour, by_month=by_month)
