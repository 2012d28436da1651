"""Does this machine's second CPU keep pace? Sampled while calibrating and validating (lab 00).

A virtual machine's CPUs are shared with other tenants on the host, and the guest does not always see it (no
steal time, no load). On lab 00's 2-core VM (bench/cpu_states.py) the second CPU ran, for 30-100 s at a time,
at about a third of its speed: a small conv took 87 µs with one torch thread and 230-250 µs with two, against
86 µs with two otherwise, and ResNet-18 at 64 px took 27% longer. A calibration in one state and a validation
in the other is then a quarter off before the model is wrong at all. ``sample`` tells the states apart: the
same small conv with one thread and with the process's threads; ``CpuStates`` counts the samples that lagged.

>>> states = CpuStates("validating", lagging=3, samples=12)
>>> states.share, str(states)
(0.25, '3 of 12 samples while validating')
"""

from __future__ import annotations

from dataclasses import dataclass

LAG = 1.5            # a sample lags when the parallel run takes this many times the one-thread run (2.7x seen)
BUDGET_S = 0.004     # seconds per timing (lk.measure's median, at least 5 calls): a sample costs about 10-20 ms


def lags(one_thread_s: float, parallel_s: float) -> bool:
    """True when the parallel run of the probe took LAG x its one-thread time (the other CPU fell behind).

    >>> lags(87e-6, 240e-6), lags(87e-6, 86e-6)
    (True, False)
    """
    return parallel_s > LAG * one_thread_s


_PROBE: list = []                                  # the probe conv and its input, built on first use


def probe_times(budget_s: float = BUDGET_S) -> tuple[float, float] | None:
    """Median seconds of the probe conv (32 channels, 3x3, 16x16, batch 1), timed by ``lowest_median_s`` for
    `budget_s`, with one torch thread, then with the process's thread count (restored); None when torch runs one
    thread."""
    import torch

    from labkit.measure import lowest_median_s

    threads = torch.get_num_threads()
    if threads < 2:
        return None
    if not _PROBE:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            _PROBE.extend((torch.nn.Conv2d(32, 32, 3, padding=1).eval(), torch.randn(1, 32, 16, 16)))
    conv, x = _PROBE
    with torch.inference_mode():
        try:
            torch.set_num_threads(1)
            one = lowest_median_s(conv, x, budget_s=budget_s, rounds=1)
        finally:
            torch.set_num_threads(threads)
        parallel = lowest_median_s(conv, x, budget_s=budget_s, rounds=1)
    return one, parallel


def sample() -> bool | None:
    """One sample: whether the probe lagged (``lags`` of ``probe_times``), or None when torch runs one thread."""
    times = probe_times()
    return None if times is None else lags(*times)


@dataclass
class CpuStates:
    """How many of ``samples`` probes lagged during a phase ("calibrating", "validating"); ``take()`` adds one."""

    phase: str
    lagging: int = 0
    samples: int = 0

    def take(self) -> None:
        got = sample()
        if got is not None:
            self.samples += 1
            self.lagging += int(got)

    @property
    def share(self) -> float | None:
        """The share of samples that lagged; None without samples (one thread)."""
        return self.lagging / self.samples if self.samples else None

    def __str__(self) -> str:
        return f"{self.lagging} of {self.samples} samples while {self.phase}"


def note(states) -> str | None:
    """A sentence for validate's table when any sample of any phase lagged, else None.

    >>> note([CpuStates("calibrating", 0, 19), CpuStates("validating", 4, 13)])[:60]
    'note: the second CPU lagged (a two-thread op took over 1.5x '
    >>> note([CpuStates("validating", 0, 13)]) is None
    True
    """
    states = [s for s in states if s.samples]
    if not any(s.lagging for s in states):
        return None
    return (f"note: the second CPU lagged (a two-thread op took over {LAG:g}x its one-thread time: another tenant "
            f"on its core) in {' and '.join(str(s) for s in states)}; two-thread times move by about a quarter "
            f"between the states (bench/cpu_states.py); one thread does not lag: `labkit calibrate --threads 1` "
            f"then `labkit validate --threads 1` check the model without the other tenant")
