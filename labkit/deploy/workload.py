"""Request streams for ``lk.deploy`` (lab 07): arrival times plus optional per-request columns.

A Workload is a column table: ``arrival_s`` (sorted, seconds from 0) and any number of named columns of the same
length (``size``: relative work of a request, 1.0 when absent; a real trace adds ``prompt_tokens`` and
``output_tokens``; token-level serving adds its own). Generators are seeded and vectorised (numpy), so a
million arrivals take milliseconds.

"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from labkit.args import check_positive

TRACES = {"azure-conv": "azure-llm-trace-2023/AzureLLMInferenceTrace_conv.csv",
          "azure-code": "azure-llm-trace-2023/AzureLLMInferenceTrace_code.csv"}


@dataclass(frozen=True, eq=False)
class Workload:
    """Arrival times (seconds, sorted) and optional per-request columns; ``len(w)`` requests (lab 07).

    >>> import labkit as lk
    >>> w = lk.deploy.Workload([0.0, 0.5, 2.0], {"size": [1.0, 2.0, 1.0]}, name="three")
    >>> len(w), w.duration_s, list(w.columns)
    (3, 2.0, ['size'])
    >>> lk.deploy.Workload([1.0, 0.5])
    Traceback (most recent call last):
    ValueError: arrival_s must be sorted (non-decreasing); element 1 (0.5) comes before element 0 (1). Sort the arrivals first (numpy.sort).
    """

    arrival_s: np.ndarray
    columns: MappingProxyType = field(default_factory=dict)
    name: str = "workload"
    note: str = ""                 # how it was made or scaled, shown in the repr
    duration_s: float | None = None

    def __post_init__(self):
        arr = np.ascontiguousarray(self.arrival_s, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"arrival_s must be a 1-D sequence of times in seconds, got shape {arr.shape}.")
        if arr.size and (not np.isfinite(arr).all() or arr[0] < 0):
            raise ValueError("arrival_s must hold finite times >= 0 seconds.")
        if arr.size > 1:
            bad = np.flatnonzero(np.diff(arr) < 0)
            if bad.size:
                k = int(bad[0])
                raise ValueError(f"arrival_s must be sorted (non-decreasing); element {k + 1} ({arr[k + 1]:g}) "
                                 f"comes before element {k} ({arr[k]:g}). Sort the arrivals first (numpy.sort).")
        cols = {}
        for key, values in dict(self.columns).items():
            col = np.ascontiguousarray(values)
            if col.shape != arr.shape:
                raise ValueError(f"column {key!r} has {col.shape[0] if col.ndim else 0} values; the workload has "
                                 f"{arr.size} arrivals: every column needs one value per request.")
            if key == "size" and (not np.isfinite(col).all() or (col <= 0).any()):
                raise ValueError("column 'size' (relative work per request) must hold finite numbers > 0.")
            col.setflags(write=False)
            cols[key] = col
        arr.setflags(write=False)
        dur = self.duration_s if self.duration_s is not None else (float(arr[-1]) if arr.size else 0.0)
        if dur < (arr[-1] if arr.size else 0.0):
            raise ValueError(f"duration_s ({dur}) must be >= the last arrival ({arr[-1]}).")
        object.__setattr__(self, "arrival_s", arr)
        object.__setattr__(self, "columns", MappingProxyType(cols))
        object.__setattr__(self, "duration_s", float(dur))

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def rate_rps(self) -> float:
        """Mean offered rate: requests over duration_s."""
        return len(self) / self.duration_s if self.duration_s > 0 else float("nan")

    def column(self, name: str, default: float = 1.0) -> np.ndarray:
        """A column's values, or `default` for every request when the workload has no such column."""
        if name in self.columns:
            return self.columns[name]
        return np.full(len(self), default)

    def with_column(self, name: str, values) -> Workload:
        """A copy with one more (or a replaced) column."""
        return Workload(self.arrival_s, {**self.columns, name: values}, self.name, self.note, self.duration_s)

    def head(self, duration_s: float) -> Workload:
        """The requests arriving before `duration_s` (a shorter run of the same stream)."""
        n = int(np.searchsorted(self.arrival_s, duration_s, side="left"))
        return Workload(self.arrival_s[:n], {k: v[:n] for k, v in self.columns.items()}, self.name,
                        f"{self.note}; first {duration_s:g} s".lstrip("; "), float(duration_s))

    def to_frame(self):
        """One row per request: arrival_s and the columns (pandas)."""
        import pandas as pd

        return pd.DataFrame({"arrival_s": self.arrival_s, **self.columns})

    def __repr__(self) -> str:
        cols = f", columns {list(self.columns)}" if self.columns else ""
        note = f"; {self.note}" if self.note else ""
        return (f"Workload({self.name!r}: {len(self):,} requests over {self.duration_s:.4g} s, "
                f"mean {self.rate_rps:.4g} req/s{cols}{note})")


def _rng(seed):
    return np.random.default_rng(seed)


def _homogeneous(rate: float, duration_s: float, rng) -> np.ndarray:
    """Poisson arrivals on [0, duration_s): cumulative exponential gaps, drawn in vectorised chunks."""
    out, t = [], 0.0
    chunk = max(1024, int(rate * duration_s * 1.05) + 64)
    while t < duration_s:
        gaps = rng.exponential(1.0 / rate, chunk)
        times = t + np.cumsum(gaps)
        out.append(times)
        t = float(times[-1])
    arr = np.concatenate(out)
    return arr[arr < duration_s]


def poisson(rate_rps: float, duration_s: float, seed: int = 0) -> Workload:
    """Poisson arrivals (exponential gaps of mean ``1/rate_rps``) for `duration_s` seconds (lab 07).

    >>> import labkit as lk
    >>> w = lk.deploy.poisson(100, 60, seed=1)
    >>> 5400 < len(w) < 6600          # 6000 expected, sd 77
    True
    """
    rate = check_positive("rate_rps", rate_rps)
    dur = check_positive("duration_s", duration_s)
    arr = _homogeneous(rate, dur, _rng(seed))
    return Workload(arr, name=f"poisson({rate:g} req/s)", note=f"seed {seed}", duration_s=dur)


def diurnal(peak_rps: float, trough_rps: float, period_s: float, duration_s: float, seed: int = 0) -> Workload:
    """Non-homogeneous Poisson arrivals whose rate swings from trough to peak and back each period (lab 07).

    ``rate(t) = trough + (peak - trough) * (1 - cos(2 pi t / period_s)) / 2``: trough at t = 0, peak at half a
    period. Drawn by thinning a Poisson stream at the peak rate (Lewis & Shedler).

    >>> import labkit as lk
    >>> w = lk.deploy.diurnal(peak_rps=50, trough_rps=10, period_s=600, duration_s=600, seed=0)
    >>> first, middle = (w.arrival_s < 60).sum(), ((w.arrival_s >= 270) & (w.arrival_s < 330)).sum()
    >>> bool(middle > 2 * first)       # busier at the peak
    True
    """
    peak = check_positive("peak_rps", peak_rps)
    trough = float(trough_rps)
    if not 0 <= trough <= peak:
        raise ValueError(f"trough_rps must be in [0, peak_rps={peak:g}], got {trough_rps!r}.")
    period = check_positive("period_s", period_s)
    dur = check_positive("duration_s", duration_s)
    rng = _rng(seed)
    cand = _homogeneous(peak, dur, rng)
    rate = trough + (peak - trough) * (1 - np.cos(2 * np.pi * cand / period)) / 2
    keep = rng.random(cand.size) * peak < rate
    return Workload(cand[keep], name=f"diurnal({trough:g}..{peak:g} req/s, period {period:g} s)",
                    note=f"seed {seed}", duration_s=dur)


def bursty(high_rps: float, low_rps: float, mean_high_s: float, mean_low_s: float, duration_s: float,
           seed: int = 0) -> Workload:
    """Two-state Markov-modulated Poisson arrivals: bursts at `high_rps`, lulls at `low_rps` (lab 07).

    The state lasts an exponential time of mean `mean_high_s` (burst) or `mean_low_s` (lull), starting in a lull.

    >>> import labkit as lk
    >>> w = lk.deploy.bursty(200, 20, mean_high_s=5, mean_low_s=20, duration_s=600, seed=0)
    >>> 20 < w.rate_rps < 200
    True
    """
    hi, lo = check_positive("high_rps", high_rps), float(low_rps)
    if not 0 <= lo <= hi:
        raise ValueError(f"low_rps must be in [0, high_rps={hi:g}], got {low_rps!r}.")
    mh, ml = check_positive("mean_high_s", mean_high_s), check_positive("mean_low_s", mean_low_s)
    dur = check_positive("duration_s", duration_s)
    rng = _rng(seed)
    parts, t, high = [], 0.0, False
    while t < dur:
        length = rng.exponential(mh if high else ml)
        end = min(t + length, dur)
        rate = hi if high else lo
        if rate > 0:
            parts.append(t + _homogeneous(rate, end - t, rng))
        t, high = end, not high
    arr = np.concatenate(parts) if parts else np.empty(0)
    return Workload(arr, name=f"bursty({lo:g}/{hi:g} req/s, {ml:g} s lulls, {mh:g} s bursts)",
                    note=f"seed {seed}", duration_s=dur)


def trace(name: str, rate_scale: float = 1.0, duration_s: float | None = None) -> Workload:
    """The real Azure LLM inference trace (2023-11-16, one hour), rate-scaled (lab 07).

    ``rate_scale`` divides every inter-arrival time (2.0 = twice the requests per second, the same burst shape
    on a compressed clock); the repr says so. Columns ``prompt_tokens`` and ``output_tokens`` come with it.
    Data: datasets/azure-llm-trace-2023 (CC-BY 4.0; Patel et al., Splitwise, ISCA 2024).

    >>> import labkit as lk
    >>> w = lk.deploy.trace("azure-code")
    >>> len(w), round(w.duration_s)
    (8819, 3600)
    >>> round(lk.deploy.trace("azure-code", rate_scale=4).rate_rps / w.rate_rps, 6)
    4.0
    """
    import pandas as pd

    from labkit.args import unknown_name
    from labkit.targets.catalog import dataset_path

    if name not in TRACES:
        raise unknown_name("trace", name, TRACES)
    scale = check_positive("rate_scale", rate_scale)
    df = pd.read_csv(dataset_path(TRACES[name]))
    ts = pd.to_datetime(df["TIMESTAMP"])
    t = (ts - ts.min()).dt.total_seconds().to_numpy()
    order = np.argsort(t, kind="stable")
    t = t[order]
    hour = 3600.0
    total = max(hour, float(t[-1]))
    arr = t / scale
    dur = total / scale
    cols = {"prompt_tokens": df["ContextTokens"].to_numpy(np.int64)[order],
            "output_tokens": df["GeneratedTokens"].to_numpy(np.int64)[order]}
    note = ("real timing" if scale == 1 else
            f"rate x{scale:g} (inter-arrival times / {scale:g}), shape unchanged")
    w = Workload(arr, cols, name=f"trace({name!r})", note=note, duration_s=dur)
    return w.head(duration_s) if duration_s is not None else w
