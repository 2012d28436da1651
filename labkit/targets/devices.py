"""Hardware targets: the device catalog in datasets/devices.toml, as frozen dataclasses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

from labkit.args import Int, Number, check, unknown_name
from labkit.dtypes import DTYPE_BYTES, normalize_dtype
from labkit.targets.catalog import catalog_key, file_version, lookup, named_rows, read_toml
from labkit.targets.fitted import OpFit

# Device kinds, as DESIGN.md names them (+ cloud-npu for parts like Inferentia2, local for this machine), and the
# side of the network each one sits on: the one place that says which kinds are rented cloud hardware.
SIDE = {"cloud-gpu": "cloud", "cloud-cpu": "cloud", "cloud-npu": "cloud", "tpu": "cloud",
        "edge-gpu": "edge", "edge-cpu": "edge", "npu": "edge", "mcu": "edge", "local": "edge"}
KINDS = tuple(SIDE)

def kinds_on(side: str) -> tuple[str, ...]:
    """The device kinds on one side of the network, "edge" or "cloud" (lab 06).

    >>> kinds_on("cloud")
    ('cloud-gpu', 'cloud-cpu', 'cloud-npu', 'tpu')
    """
    if side not in ("edge", "cloud"):
        raise unknown_name("side", side, ("edge", "cloud"))
    return tuple(k for k, s in SIDE.items() if s == side)

# Names that are not in the catalog but measured on this machine: name -> runtime for calibrate.local_device.
LOCAL_NAMES = {"local": "torch", "local-ort": "onnxruntime"}


@dataclass(frozen=True)
class Device:
    """One target: dense peaks per dtype, memory, power, price, and where it runs.

    Build your own to explore "what if" hardware; bad values raise ValueError at construction:

    >>> import labkit as lk
    >>> d = lk.device("tpu-v5e")
    >>> d.peak("bf16") > 1e14
    True
    >>> toy = lk.Device("toy", "edge-gpu", "me", {"fp16": 10e12}, mem_bw_bytes_per_s=100e9,
    ...                 mem_bytes=8 * 2**30, idle_w=5, peak_w=25)
    >>> toy.peak("float16")
    10000000000000.0
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
    fits: Mapping[str, OpFit] = field(default_factory=dict, repr=False)  # op class -> fitted cost (calibrated devices)
    mem_tiers: tuple = field(default=(), repr=False)    # calibrated: ((working-set bytes, bytes/s), ...) beyond cache
    fresh_output: tuple | None = field(default=None, repr=False)   # calibrated: (threshold bytes, s per byte)
    torch_threads: int = field(default=0, repr=False)   # calibrated on torch eager: its threads (picks its conv kernel)
    sources: Mapping[str, str] = field(default_factory=dict, repr=False)  # field -> "source, as-of date"
    notes: str = field(default="", repr=False)

    def __post_init__(self):
        who = f"Device {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Device name must be a non-empty string, got {self.name!r}.")
        if self.kind not in KINDS:
            raise unknown_name(f"device kind (for {who})", self.kind, KINDS)
        if not isinstance(self.peak_flops, Mapping) or not self.peak_flops:
            raise ValueError(f"{who}: peak_flops must map at least one dtype to FLOP/s, e.g. {{'fp32': 1e12}}.")
        peaks = {}
        for dtype, value in self.peak_flops.items():
            try:
                key = normalize_dtype(dtype)
            except ValueError as err:
                raise ValueError(f"{who}: peak_flops key {dtype!r} is not a dtype. "
                                 f"Allowed: {', '.join(DTYPE_BYTES)}.") from err
            check(f"{who}: peak_flops[{dtype!r}]", value, Number(low=0, low_open=True))
            peaks[key] = float(value)
        check(f"{who}: mem_bw_bytes_per_s", self.mem_bw_bytes_per_s, Number(low=0, low_open=True))
        check(f"{who}: mem_bytes", self.mem_bytes, Number(low=0, low_open=True))
        check(f"{who}: idle_w", self.idle_w, Number(low=0))
        check(f"{who}: peak_w", self.peak_w, Number(low=0))
        if self.peak_w < self.idle_w:
            raise ValueError(f"{who}: peak_w ({self.peak_w} W) must be >= idle_w ({self.idle_w} W).")
        if self.price_usd_per_hour is not None:
            check(f"{who}: price_usd_per_hour", self.price_usd_per_hour, Number(low=0))
        if self.region is not None and (not isinstance(self.region, str) or not self.region):
            raise ValueError(f"{who}: region must be a region name (see lk.carbon.regions()) or None.")
        array = self.array
        if array is not None:
            array = tuple(array) if isinstance(array, (tuple, list)) else (array,)
            if len(array) != 2:
                raise ValueError(f"{who}: array must be (rows, cols) of ints >= 1, e.g. (128, 128); "
                                 f"got {self.array!r}.")
            array = tuple(check(f"{who}: array[{i}] (rows, cols)", n, Int(low=1)) for i, n in enumerate(array))
        for what in ("eff_compute", "eff_mem"):
            value = getattr(self, what)
            check(f"{who}: {what}", value, Number(low=0, high=1, low_open=True))
        check(f"{who}: overhead_s", self.overhead_s, Number(low=0))
        object.__setattr__(self, "peak_flops", MappingProxyType(peaks))
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "fits", MappingProxyType(dict(self.fits)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(self.peak_flops)

    def peak(self, dtype: str = "fp32") -> float:
        """Dense peak FLOP/s (int8: OP/s) at `dtype`; ValueError listing the dtypes this device has.

        >>> import labkit as lk
        >>> lk.device("h100-sxm").peak("bf16") / 1e12
        989.5
        """
        key = normalize_dtype(dtype)
        if key not in self.peak_flops:
            raise ValueError(f"device {self.name!r} has no published {key} peak; it supports "
                             f"{', '.join(self.dtypes)}. Pick one of those (e.g. dtype={self.dtypes[0]!r}).")
        return self.peak_flops[key]


# ---------------------------------------------------------------------------------------------- the catalog

_DEVICE_KEYS = {"kind", "vendor", "aliases", "notes", "peak_tflops", "peak_gflops", "published_sparse_tflops",
                "mem_bw_gb_s", "mem_gib", "mem_bytes", "idle_w", "peak_w", "price_usd_per_hour", "region",
                "array", "eff_compute", "eff_mem", "overhead_s", "sources"}


def _device_from_toml(name: str, row: dict, kinds: dict) -> Device:
    extra = set(row) - _DEVICE_KEYS
    if extra:
        raise ValueError(f"devices.toml [{name}]: unknown keys {sorted(extra)}; allowed: {sorted(_DEVICE_KEYS)}.")
    if ("peak_tflops" in row) == ("peak_gflops" in row):
        raise ValueError(f"devices.toml [{name}]: give exactly one of peak_tflops or peak_gflops.")
    scale, table = (1e12, row["peak_tflops"]) if "peak_tflops" in row else (1e9, row["peak_gflops"])
    if ("mem_gib" in row) == ("mem_bytes" in row):
        raise ValueError(f"devices.toml [{name}]: give exactly one of mem_gib or mem_bytes.")
    mem = row["mem_gib"] * 2**30 if "mem_gib" in row else row["mem_bytes"]
    defaults = kinds.get(row.get("kind"), {})
    return Device(
        name=name, kind=row.get("kind"), vendor=row.get("vendor", ""),
        peak_flops={dtype: value * scale for dtype, value in table.items()},
        mem_bw_bytes_per_s=row["mem_bw_gb_s"] * 1e9, mem_bytes=float(mem),
        idle_w=row["idle_w"], peak_w=row["peak_w"],
        price_usd_per_hour=row.get("price_usd_per_hour"), region=row.get("region"),
        array=tuple(row["array"]) if "array" in row else None,
        eff_compute=row.get("eff_compute", defaults.get("eff_compute", 0.6)),
        eff_mem=row.get("eff_mem", defaults.get("eff_mem", 0.7)),
        overhead_s=row.get("overhead_s", defaults.get("overhead_s", 5e-6)),
        sources=row.get("sources", {}), notes=row.get("notes", ""),
    )


@lru_cache(maxsize=4)
def _devices_cached(version: tuple[str, int]) -> tuple[dict[str, Device], dict[str, str]]:
    data = read_toml("devices.toml")
    kinds = data.get("kinds", {})
    return named_rows(data.get("devices", {}), lambda name, row: _device_from_toml(name, row, kinds))


def _catalog() -> tuple[dict[str, Device], dict[str, str]]:
    """{name: Device}, {alias: name}; built once per version of devices.toml (its path and mtime)."""
    return _devices_cached(file_version("devices.toml"))


def device(name) -> Device:
    """The catalog Device called `name` (case and '_' tolerant), or this machine for "local" (lab 00).

    "local" / "local-ort" calibrate this machine for torch / onnxruntime (cached after the first run).
    A Device passed in is returned as-is, so functions can take either.

    >>> import labkit as lk
    >>> lk.device("H100_SXM").name
    'h100-sxm'
    >>> try:
    ...     lk.device("tpu-v5")
    ... except ValueError as err:
    ...     print("tpu-v5e" in str(err))
    True
    """
    if isinstance(name, Device):
        return name
    key = catalog_key(name)
    if key in LOCAL_NAMES:
        from labkit.calibration.calibrate import local_device

        return local_device(runtime=LOCAL_NAMES[key])
    return lookup("device", name, *_catalog(), also=LOCAL_NAMES)


def devices(kind: str | None = None):
    """The catalog as a pandas DataFrame, one row per device, in human units (lab 01).

    Columns: kind, vendor, fp32/tf32/fp16/bf16/fp8 _tflops and int8_tops (dense; NaN where not supported),
    mem_bw_gb_s (1e9 B/s), mem_gib, idle_w, peak_w, price_usd_per_hour, region, array, eff_compute, eff_mem,
    overhead_s. Does not calibrate "local".

    >>> import labkit as lk
    >>> t = lk.devices(kind="tpu")
    >>> "tpu-v6e" in t.index and bool((t["kind"] == "tpu").all())
    True
    """
    import pandas as pd

    if kind is not None and kind not in KINDS:
        raise unknown_name("device kind", kind, KINDS)
    rows = []
    for d in _catalog()[0].values():
        if kind is not None and d.kind != kind:
            continue
        row = {"name": d.name, "kind": d.kind, "vendor": d.vendor}
        for dtype in ("fp32", "tf32", "fp16", "bf16", "fp8"):
            row[f"{dtype}_tflops"] = d.peak_flops.get(dtype, math.nan) / 1e12
        row["int8_tops"] = d.peak_flops.get("int8", math.nan) / 1e12
        row.update(mem_bw_gb_s=d.mem_bw_bytes_per_s / 1e9, mem_gib=d.mem_bytes / 2**30, idle_w=d.idle_w,
                   peak_w=d.peak_w, price_usd_per_hour=d.price_usd_per_hour, region=d.region, array=d.array,
                   eff_compute=d.eff_compute, eff_mem=d.eff_mem, overhead_s=d.overhead_s)
        rows.append(row)
    return pd.DataFrame(rows).set_index("name") if rows else pd.DataFrame(rows)


