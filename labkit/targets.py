"""Hardware targets and network links: the catalog in datasets/, as frozen dataclasses.

Layering: imports labkit.dtypes and labkit.catalog only (never the profiler or the simulator).
Introduced in lab 00 (``lk.device``) and lab 01 (``lk.devices``); links in lab 06.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

# Device kinds, as DESIGN.md names them (+ cloud-npu for parts like Inferentia2, local for this machine).
KINDS = ("cloud-gpu", "cloud-cpu", "cloud-npu", "tpu", "edge-gpu", "edge-cpu", "npu", "mcu", "local")


@dataclass(frozen=True)
class OpFit:
    """A fitted cost for one op class on a calibrated device (Hockney's r∞ / n½ idea):
    ``t = startup_s + max(flops / flops_per_s, bytes / bytes_per_s)``."""

    startup_s: float
    flops_per_s: float
    bytes_per_s: float


@dataclass(frozen=True)
class Device:
    """One target: dense peaks per dtype, memory, power, price, and where it runs.

    >>> import labkit as lk
    >>> d = lk.device("tpu-v5e")
    >>> d.peak_flops["bf16"] > d.peak_flops.get("fp32", 0)
    True
    """

    name: str
    kind: str
    vendor: str
    peak_flops: Mapping[str, float]          # dtype -> dense FLOP/s (int8: OP/s)
    mem_bw_bytes_per_s: float
    mem_bytes: float
    idle_w: float
    peak_w: float
    price_usd_per_hour: float | None = None  # None: not rented by the hour
    region: str | None = None                # grid region for carbon (see datasets/carbon.toml)
    array: tuple[int, int] | None = None     # systolic array rows x cols, if it has one
    eff_compute: float = 0.6                 # achievable fraction of peak FLOP/s
    eff_mem: float = 0.7                     # achievable fraction of peak bandwidth
    overhead_s: float = 5e-6                 # per-layer launch/dispatch overhead
    fits: Mapping[str, OpFit] = field(default_factory=dict)  # op class -> fitted cost (calibrated devices)
    sources: Mapping[str, str] = field(default_factory=dict)  # field -> "source, as-of date"
    notes: str = ""

    def __post_init__(self):
        object.__setattr__(self, "peak_flops", MappingProxyType(dict(self.peak_flops)))
        object.__setattr__(self, "fits", MappingProxyType(dict(self.fits)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(self.peak_flops)


@dataclass(frozen=True)
class Link:
    """A network link between an edge device and the cloud.

    >>> import labkit as lk
    >>> lk.link("lte").uplink_bps < lk.link("wifi").uplink_bps
    True
    """

    name: str
    uplink_bps: float          # bits per second, device -> cloud
    downlink_bps: float        # bits per second, cloud -> device
    rtt_s: float
    energy_j_per_bit: float    # device radio energy per bit sent
    egress_usd_per_gb: float   # cloud egress price
    sources: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""

    def upload_s(self, nbytes: float) -> float:
        """Seconds to send `nbytes` up, excluding the round trip."""
        return 8.0 * nbytes / self.uplink_bps

    def download_s(self, nbytes: float) -> float:
        """Seconds to receive `nbytes`, excluding the round trip."""
        return 8.0 * nbytes / self.downlink_bps
