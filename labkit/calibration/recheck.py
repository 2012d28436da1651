"""Has this machine drifted since it was calibrated? ``labkit validate`` times some of the calibration's own
benchmarks again and compares (lab 00).

A validation error mixes two things: the model's error, and the machine running at another speed than when it
was calibrated (a VM's neighbours, a thermal or power state, another process). On lab 00's 2-core VM the same
ONNX Runtime predictions came out 36% too fast in one run and 23% too slow in the next, with nothing changed.
Timing a sample of the calibration's benchmarks again, exactly as the calibration timed them, measures the second
part: a ratio of 1.3 means those benchmarks now take 1.3x the time they took when calibrated, so predictions from
that calibration read about 23% too fast for the machine's sake alone.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

DRIFT_NOTE = 0.15      # validate's table notes a drift beyond this (either way): part of the error is the machine


@dataclass(frozen=True)
class Drift:
    """The calibration's own benchmarks timed again: ``ratio`` is the median of now / then (1.0: no drift;
    above 1: slower now), over ``n`` benchmarks.

    >>> Drift("torch", 1.25, 20).note()
    'torch ran its calibration benchmarks 1.25x as long as when calibrated'
    """

    runtime: str
    ratio: float
    n: int

    @property
    def notable(self) -> bool:
        """True when the drift is beyond DRIFT_NOTE either way."""
        return math.isfinite(self.ratio) and abs(math.log(self.ratio)) > math.log1p(DRIFT_NOTE)

    def note(self) -> str:
        """One line for validate's table: how long the benchmarks took now against when calibrated."""
        return f"{self.runtime} ran its calibration benchmarks {self.ratio:.3g}x as long as when calibrated"


def drift(cal, num_threads: int | None = None, n_models: int = 10) -> Drift:
    """Time about `n_models` of `cal`'s benchmarks again (labkit.calibration.benchrun.retime) and compare with its
    stored measurements (lab 00).

    >>> import labkit as lk
    >>> d = drift(lk.calibrate(quick=True))          # doctest: +SKIP
    >>> 0.5 < d.ratio < 2                             # doctest: +SKIP
    True
    """
    from labkit.calibration import benchrun

    then = {p[0]: p[6] for p in cal.points}
    now = benchrun.retime(cal.runtime, cal.quick, cal.fresh_output, n_models=n_models, num_threads=num_threads)
    ratios = [t / then[name] for name, t in now.items() if then.get(name, 0) > 0 and t > 0]
    return Drift(cal.runtime, statistics.median(ratios) if ratios else math.nan, len(ratios))
