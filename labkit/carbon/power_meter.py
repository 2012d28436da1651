"""Energy of a block of code on this machine, honestly labelled: RAPL where readable, else an estimate (lab 12).

Methods, in order of preference:

* ``"rapl"``: Intel/AMD RAPL package energy counters under ``/sys/class/powercap`` (``intel-rapl:N/energy_uj``,
  packages only, wrap-around handled with ``max_energy_range_uj``). Package energy only: no DRAM, disks, fans,
  power supply losses. Interval: +-10 % (labkit's assumption for RAPL's package model; not a published figure).
* ``"cpu-load estimate (codecarbon)"``: no readable counter (a VM, a container, a Mac). The power is
  codecarbon's CPU-load fallback (mlco2/codecarbon, ``codecarbon/external/hardware.py`` at commit 004e88f,
  class ``CPU``): process mode ``P = TDP x u`` with ``u`` = this process's (and its waited-for children's) CPU
  time / (wall time x logical CPUs); machine mode ``P = TDP x (0.1 + 0.9 u^3)``; a CPU model missing from its
  table gets ``TDP = 85 W`` (``POWER_CONSTANT``). labkit reports the process-mode figure and an interval that
  spans both load curves with the TDP between 0.5x and 1.5x its value (labkit's assumption: a VM's share of a
  package's TDP is unknown). Ray workers and other processes are not counted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

RAPL_DIR = "/sys/class/powercap"
GENERIC_TDP_W = 85.0          # codecarbon POWER_CONSTANT: W for a CPU model not in its table
RAPL_REL_ERR = 0.10           # labkit assumption (see module docstring)
TDP_RANGE = (0.5, 1.5)        # labkit assumption on the TDP (see module docstring)
METHOD_RAPL = "rapl"
METHOD_LOAD = "cpu-load estimate (codecarbon)"


def load_power_w(tdp_w: float, utilisation: float, mode: str = "process") -> float:
    """codecarbon's CPU-load power: ``TDP x u`` (process) or ``TDP x (0.1 + 0.9 u^3)`` (machine) (lab 12).

    >>> load_power_w(100, 0.5), round(load_power_w(100, 0.5, "machine"), 2)
    (50.0, 21.25)
    """
    u = min(max(float(utilisation), 0.0), 1.0)
    if mode == "process":
        return float(tdp_w) * u
    if mode == "machine":
        return float(tdp_w) * (0.1 + 0.9 * u**3)
    raise ValueError(f"mode must be 'process' or 'machine', got {mode!r}.")


def rapl_packages(root: str | os.PathLike = RAPL_DIR) -> list[Path]:
    """Readable RAPL package folders (``intel-rapl:N`` with a readable ``energy_uj``) under `root`."""
    base = Path(root)
    if not base.is_dir():
        return []
    out = []
    for d in sorted(base.glob("intel-rapl:*")):
        if d.name.count(":") != 1:          # intel-rapl:0:0 is a sub-domain (core, dram) of package 0
            continue
        try:
            int((d / "energy_uj").read_text())
        except (OSError, ValueError):
            continue
        out.append(d)
    return out


def _read_uj(pkgs: list[Path]) -> list[int]:
    return [int((p / "energy_uj").read_text()) for p in pkgs]


def _max_uj(pkg: Path) -> int:
    try:
        return int((pkg / "max_energy_range_uj").read_text())
    except (OSError, ValueError):
        return 2**32


def rapl_delta_j(before: list[int], after: list[int], maxima: list[int]) -> float:
    """Joules between two readings of each package counter, one wrap-around allowed per package.

    >>> rapl_delta_j([900], [100], [1000]) * 1e6     # wrapped: 100 + 1000 - 900 microjoules
    200.0
    """
    total = 0
    for a, b, m in zip(before, after, maxima):
        total += b - a if b >= a else b + m - a
    return total / 1e6


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class PowerReading:
    """Average power over an interval, the method that produced it, and an interval around it."""

    watts: float
    low_w: float
    high_w: float
    method: str
    duration_s: float
    utilisation: float | None = None   # CPU share used (load estimate only)
    detail: str = ""

    def __repr__(self) -> str:
        return (f"PowerReading({self.watts:.3g} W [{self.low_w:.3g}, {self.high_w:.3g}] by {self.method} "
                f"over {self.duration_s:.2f} s)")


@dataclass(frozen=True)
class Energy:
    """Energy of a metered block: point, interval, method. ``carbon_g(region)`` turns it into grams."""

    energy_j: float
    low_j: float
    high_j: float
    duration_s: float
    method: str
    utilisation: float | None = None
    detail: str = ""

    @property
    def power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0

    def carbon_g(self, region, pue: float = 1.0) -> float:
        """Grams CO2e of the point energy in `region` (yearly intensity), times `pue`."""
        from labkit.carbon.yearly import carbon_g

        return carbon_g(self.energy_j, region, pue=pue)

    def carbon_range(self, region, pue=1.0, **kw):
        """A Monte Carlo range (``lk.carbon.carbon_range``) over this energy's interval, PUE and intensity."""
        from labkit.carbon.uncertainty import carbon_range

        return carbon_range((self.low_j, self.high_j), region, pue=pue, **kw)

    def __repr__(self) -> str:
        return (f"Energy({self.energy_j:.3g} J [{self.low_j:.3g}, {self.high_j:.3g}] over {self.duration_s:.2f} s, "
                f"{self.power_w:.3g} W, method {self.method!r})")


class meter:
    """Context manager: the energy of the code inside it, with its method and interval (lab 12).

    >>> import labkit as lk
    >>> with lk.carbon.meter() as m:
    ...     _ = sum(i * i for i in range(100_000))
    >>> m.result.method in ("rapl", "cpu-load estimate (codecarbon)"), m.result.low_j <= m.result.energy_j
    (True, True)
    """

    def __init__(self, *, tdp_w: float | None = None, rapl_dir: str | os.PathLike = RAPL_DIR):
        self.tdp_w = GENERIC_TDP_W if tdp_w is None else float(tdp_w)
        if not self.tdp_w > 0:
            raise ValueError(f"tdp_w must be a positive number of watts, got {tdp_w!r}.")
        self.rapl_dir = rapl_dir
        self.result: Energy | None = None

    def __enter__(self):
        self._pkgs = rapl_packages(self.rapl_dir)
        self._uj = _read_uj(self._pkgs) if self._pkgs else None
        self._cpu = _cpu_seconds()
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        dt = time.perf_counter() - self._t
        if self._pkgs:
            try:
                e = rapl_delta_j(self._uj, _read_uj(self._pkgs), [_max_uj(p) for p in self._pkgs])
                self.result = Energy(e, e * (1 - RAPL_REL_ERR), e * (1 + RAPL_REL_ERR), dt, METHOD_RAPL,
                                     detail=f"{len(self._pkgs)} RAPL package(s) under {self.rapl_dir}")
                return False
            except (OSError, ValueError):
                pass
        ncpu = os.cpu_count() or 1
        u = min(1.0, (_cpu_seconds() - self._cpu) / (dt * ncpu)) if dt > 0 else 0.0
        watts = load_power_w(self.tdp_w, u)
        lo_w = min(load_power_w(self.tdp_w * TDP_RANGE[0], u, m) for m in ("process", "machine"))
        hi_w = max(load_power_w(self.tdp_w * TDP_RANGE[1], u, m) for m in ("process", "machine"))
        self.result = Energy(watts * dt, lo_w * dt, hi_w * dt, dt, METHOD_LOAD, utilisation=u,
                             detail=f"no readable RAPL counter under {self.rapl_dir}; TDP {self.tdp_w:g} W, "
                                    f"{ncpu} logical CPUs, utilisation {u:.0%}")
        return False

    def __getattr__(self, name):
        if name in ("energy_j", "low_j", "high_j", "duration_s", "method", "utilisation", "power_w", "detail",
                    "carbon_g", "carbon_range"):
            if self.__dict__.get("result") is None:
                raise AttributeError(f"meter.{name} is known once the `with` block has ended.")
            return getattr(self.result, name)
        raise AttributeError(name)


def power(interval_s: float = 0.5, *, tdp_w: float | None = None, rapl_dir: str | os.PathLike = RAPL_DIR):
    """Average power of this machine (RAPL) or of this process (load estimate) over `interval_s` (lab 12).

    It sleeps for `interval_s`: with RAPL it reads the package's power while idle here; with the load
    estimate, this process's (idle) share.

    >>> import labkit as lk
    >>> p = lk.carbon.power(0.05)
    >>> p.low_w <= p.watts <= p.high_w
    True
    """
    from labkit.args import check_positive

    check_positive("interval_s", interval_s)
    with meter(tdp_w=tdp_w, rapl_dir=rapl_dir) as m:
        time.sleep(interval_s)
    e = m.result
    d = e.duration_s
    return PowerReading(e.energy_j / d, e.low_j / d, e.high_j / d, e.method, d, e.utilisation, e.detail)
