"""How much of this machine other processes used while labkit was measuring it (lab 00).

The 1-minute load average counts labkit's own threads too, so on a quiet 2-core machine a calibration that
keeps both cores busy reads as "load 2" and looked like contention. This measures what the warning claims:
the CPU time the whole machine spent busy, minus the CPU time of this process (and its waited-for children),
over the wall time of the block, as a share of the machine's CPUs.

>>> with OtherLoad() as other:
...     _ = sum(range(10**5))
>>> 0.0 <= other.share <= 1.0
True
"""

from __future__ import annotations

import time

# Above this share of the CPUs used by others, measured times are noticeably disturbed (a note says so).
NOTE_ABOVE = 0.2


def _machine_busy_s() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def _own_s() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


class OtherLoad:
    """A context manager: ``.share`` is the fraction of the machine's CPU capacity that *other* processes used
    while the block ran (0 = labkit had the machine to itself), ``.other_cpu_s`` the CPU seconds they took."""

    share: float = 0.0
    other_cpu_s: float = 0.0

    def __enter__(self):
        import psutil

        self._cpus = psutil.cpu_count() or 1
        self._t0, self._busy0, self._own0 = time.perf_counter(), _machine_busy_s(), _own_s()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._t0
        other = (_machine_busy_s() - self._busy0) - (_own_s() - self._own0)
        self.other_cpu_s = max(other, 0.0)
        self.share = min(self.other_cpu_s / (wall * self._cpus), 1.0) if wall > 0 else 0.0
        return False

    def note(self) -> str | None:
        """A sentence for the report when others took more than NOTE_ABOVE of the CPUs, else None."""
        if self.share <= NOTE_ABOVE:
            return None
        return (f"other processes used {self.share:.0%} of this machine's CPUs while measuring, so the "
                "measured times are disturbed; on a quiet machine run it again")
