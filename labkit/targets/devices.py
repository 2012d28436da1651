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
class OpFit:
    """A fitted cost for one op class on a calibrated device (Hockney's r∞ / n½ idea):
    ``t = startup_s + max(flops / flops_per_s, bytes / bytes_per_s)``, or with ``overlap=False`` (compute
    and data movement one after the other, as small CPU kernels run: labkit.calibration.calibrate's fits)
    ``t = startup_s + flops / flops_per_s + bytes / bytes_per_s``; plus ``kernel_call_s`` per small kernel a
    depthwise convolution runs as (``Layer.kernel_calls``: channels x images), ``weight_s`` per weight a GEMM
    packs on each call (``Layer.packed_weights``), ``small_gemm_weight_s`` more per weight of a GEMM with
    few rows (``Layer.small_gemm_weights``), and ``small_image_gemm_weight_s`` per weight and image of a conv
    on maps of few pixels (``Layer.small_image_gemm_weights``)."""

    startup_s: float
    flops_per_s: float
    bytes_per_s: float
    overlap: bool = True
    kernel_call_s: float = 0.0
    weight_s: float = 0.0
    small_gemm_weight_s: float = 0.0
    small_image_gemm_weight_s: float = 0.0

    def time_s(self, flops: float, nbytes: float, cap_bytes_per_s: float = math.inf, calls: int = 0,
               weights: int = 0, small_weights: int = 0, image_weights: int = 0) -> float:
        """Seconds for one layer of `flops` and `nbytes` under this fit: the one owner of the calibrated formula
        (``lk.estimate``'s layer_time and the calibration's fit both use it). `cap_bytes_per_s` is what the
        memory tier holding the layer's working set delivers (``tier_bytes_per_s``): the fit's rate, measured
        on cache-sized data, cannot beat it. `calls`, `weights`, `small_weights` and `image_weights` are the
        layer's ``unit_counts`` (kernel calls, packed weights, weights of a GEMM with few rows, and of a conv on
        small maps once per image).

        >>> OpFit(1e-5, 1e10, 1e9).time_s(1e6, 1e4)                  # 10 µs + max(100 µs, 10 µs)
        0.00011
        >>> round(OpFit(1e-5, 1e10, 1e9, overlap=False).time_s(1e6, 1e4), 9)   # 10 + 100 + 10 µs
        0.00012
        >>> round(OpFit(0, 1e10, 1e9, overlap=False).time_s(0, 1e4, cap_bytes_per_s=5e8), 9)   # 1e4 B at 0.5 GB/s
        2e-05
        >>> round(OpFit(0, 1e10, 1e9, weight_s=3e-10).time_s(0, 0, weights=10**6) * 1e6, 3)   # 1M weights packed
        300.0
        """
        compute_s, memory_s = self.terms(flops, nbytes, cap_bytes_per_s)
        work_s = max(compute_s, memory_s) if self.overlap else compute_s + memory_s
        return (self.startup_s + calls * self.kernel_call_s + weights * self.weight_s
                + small_weights * self.small_gemm_weight_s + image_weights * self.small_image_gemm_weight_s
                + work_s)

    def terms(self, flops: float, nbytes: float, cap_bytes_per_s: float = math.inf) -> tuple[float, float]:
        """``(compute_s, memory_s)`` of one layer under this fit: what ``time_s`` adds (or overlaps), and what
        decides whether lk.estimate calls the layer compute- or memory-bound.

        >>> OpFit(0, 1e10, 1e9).terms(1e6, 1e4, cap_bytes_per_s=5e8)
        (0.0001, 2e-05)
        """
        compute_s = flops / self.flops_per_s if flops else 0.0
        memory_s = nbytes / min(self.bytes_per_s, cap_bytes_per_s) if nbytes else 0.0
        return compute_s, memory_s


def tier_bytes_per_s(tiers, nbytes: float) -> float:
    """Bandwidth (bytes/s) of the memory tier a working set of `nbytes` streams from, on a calibrated device:
    `tiers` is ``((working_set_bytes, bytes_per_s), ...)``, a copy measured beyond the caches' plateau (lab 00).
    Below the first size the data sits in cache and nothing caps the fit (``inf``); between sizes the rate is
    interpolated on log size; beyond the last, the last (DRAM).

    >>> tiers = ((8e6, 100e9), (64e6, 40e9), (256e6, 30e9))
    >>> tier_bytes_per_s(tiers, 1e6), tier_bytes_per_s(tiers, 1e9) / 1e9
    (inf, 30.0)
    >>> round(tier_bytes_per_s(tiers, 128e6) / 1e9, 1)              # halfway on log size
    35.0
    """
    if not tiers or nbytes < tiers[0][0]:
        return math.inf
    sizes = [math.log(s) for s, _ in tiers]
    rates = [r for _, r in tiers]
    x = math.log(nbytes)
    for i in range(1, len(sizes)):
        if x <= sizes[i]:
            w = (x - sizes[i - 1]) / (sizes[i] - sizes[i - 1])
            return rates[i - 1] + w * (rates[i] - rates[i - 1])
    return rates[-1]


def fresh_output_s(fresh: tuple[float, float] | None, out_bytes: float) -> float:
    """Seconds a layer spends faulting in a freshly allocated output of `out_bytes`: ``fresh`` is
    ``(threshold_bytes, seconds_per_byte)`` as measured by the calibration (lab 00). torch on glibc maps outputs
    above glibc's mmap threshold (32 MiB at most) anew on every call and touches every page; ONNX Runtime
    reuses its arena (``fresh`` is None).

    >>> round(fresh_output_s((32 * 2**20, 3e-10), 64 * 2**20) * 1e3, 2)   # ms: 64 MiB at ~3.3 GB/s of faults
    20.13
    >>> fresh_output_s((32 * 2**20, 3e-10), 2**20), fresh_output_s(None, 2**30)
    (0.0, 0.0)
    """
    if not fresh or out_bytes < fresh[0]:
        return 0.0
    return out_bytes * fresh[1]


def fit_for(fits: Mapping[str, OpFit] | None, op_class: str, op: str) -> OpFit | None:
    """The fit that prices a layer: its op's own (``"pool/maxpool"``) if the calibration made one, else its op
    class's (``"pool"``), else None (the roofline prices it).

    >>> fit_for({"pool": OpFit(1e-6, 1e9, 1e9)}, "pool", "maxpool").startup_s
    1e-06
    >>> fit_for({}, "pool", "maxpool") is None
    True
    """
    if not fits:
        return None
    return fits.get(f"{op_class}/{op}") or fits.get(op_class)


def call_s(fits: Mapping[str, OpFit] | None) -> float:
    """The fixed cost of one model call (framework entry, ORT's ``session.run``): the start-up of the fit keyed
    ``"call"`` on a calibrated device, 0.0 elsewhere. Added once per model call (lk.estimate), once per side
    used (lk.partition).

    >>> call_s({"call": OpFit(2e-5, 1.0, 1.0)}), call_s({})
    (2e-05, 0.0)
    """
    call = fits.get("call") if fits else None
    return call.startup_s if call is not None else 0.0


SWITCH_OPS = 3.0    # the cold-code penalty's scale in distinct ops (``switches``): measured here (torch, 2 threads),
                    # a layer after 1, 2, 3, 5 and 11 other distinct ops cost 0.3, 1.5, 2.7, 2.6 and 3.9 µs more than
                    # alone, and 1 - exp(-d / 3) is 0.28, 0.49, 0.63, 0.81 and 0.97 of its plateau


def switch_s(fits: Mapping[str, OpFit] | None) -> float:
    """The most a layer costs more in a forward pass of mixed ops than on its own (its code and dispatch path
    start cold; ``switches`` says how cold): the start-up of the fit keyed ``"switch"`` on a calibrated
    device, 0.0 elsewhere (lab 00).

    >>> switch_s({"switch": OpFit(4e-6, 1.0, 1.0)}), switch_s({})
    (4e-06, 0.0)
    """
    switch = fits.get("switch") if fits else None
    return switch.startup_s if switch is not None else 0.0


def switches(ops) -> list[float]:
    """For each layer of a model call, in order, the share of ``switch_s`` it pays: ``1 - exp(-d / SWITCH_OPS)``,
    d the number of distinct other ops run since this op last ran (calls repeat: the first layer follows the
    last). One op repeated stays hot (d = 0); two alternating stay nearly hot; a dozen distinct ops in turn
    evict each other's code from the caches and branch predictors. Measured on this machine's torch, a chain of
    24 mixed small ops ran 4-6 µs per op slower than the sum of each alone; a chain of one op did not.

    >>> [round(w, 2) for w in switches(["linear", "relu", "linear", "relu"])]
    [0.28, 0.28, 0.28, 0.28]
    >>> switches(["relu"]), [round(w, 2) for w in switches(["a", "b", "c", "a"])]
    ([0.0], [0.0, 0.49, 0.49, 0.49])
    """
    ops = list(ops)
    last = {op: pos for pos, op in enumerate(ops)}     # each op's last run in the call before (calls repeat)
    out = []
    for pos, op in enumerate(ops, start=len(ops)):
        d = sum(1 for p in last.values() if p > last[op])
        out.append(1.0 - math.exp(-d / SWITCH_OPS))
        last[op] = pos
    return out


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


