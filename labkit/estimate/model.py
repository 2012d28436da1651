"""``lk.estimate``: predict latency, energy, cost and carbon of a Profile on a Device (labs 01, 05, 10).

The model (DESIGN.md §3), per layer, at the requested batch and dtype:

* roofline (catalog devices): ``t = max(flops / (peak[dtype] * eff_compute), bytes / (mem_bw * eff_mem))
  + overhead_s``. Element-wise flops use the same dtype peak as matmuls: optimistic on GPUs and TPUs, whose
  vector units are several times slower than their tensor cores — such layers are memory-bound anyway.
* systolic arrays (``device.array`` set, layers with a ``gemm``): the compute term is divided by the array
  utilisation of labkit.systolic (padding to the array, fill and drain).
* calibrated devices (``device.fits``, e.g. ``lk.device("local")``): a layer whose op class was fitted costs
  ``startup_s + max(flops / flops_per_s, bytes / bytes_per_s)``, or ``startup_s + flops / flops_per_s +
  bytes / bytes_per_s`` for a fit with ``overlap=False`` (labkit.calibration.calibrate's: on a CPU, small kernels do not
  overlap their data movement with their arithmetic); other classes fall back to the roofline.
  Its bytes rate is capped by the memory tier the layer's working set (its bytes) streams from
  (``device.mem_tiers``, a copy measured beyond the caches), and a layer whose output is large enough to be
  mapped fresh on every call pays for the page faults (``device.fresh_output``; torch on glibc, not ORT), as
  does each blocked copy oneDNN makes of a torch conv's input and output (``labkit.targets.fresh_buffers``),
  whose writing and reading the fit prices with the layer's bytes (``labkit.targets.reorder_bytes``).
  A fit keyed ``"<op_class>/<op>"`` (e.g. ``"pool/maxpool"``) takes precedence over its class's; a fit keyed
  ``"call"`` is the fixed cost of one model call (framework entry, ORT's ``session.run``), added once, and one
  keyed ``"switch"`` prices a layer whose caches went cold (``labkit.targets.cold_s``: its start-up in the share
  ``labkit.targets.switches`` gives its code, 0 for one op repeated, near 1 after other layers moved more than a
  core's L2; and its weights fetched again in their own share, by what the rest of the call moves, at the fit's
  rate or the memory tier of the whole call where slower: ``labkit.targets.cold_shares``). A torch conv
  is priced under the kernel torch runs it with (``labkit.targets.fit_op``: oneDNN, or im2col + GEMM).
  A fit holds for the dtype it was measured at; at another dtype only its bytes term changes.
* energy: ``idle_w * t + (peak_w - idle_w) * u * t``, u = the layer's use of its bound resource, in [0, 1].
* cost: ``price_usd_per_hour * t / 3600 / utilization``; carbon: ``energy * PUE * grid intensity(region)``.

Layers run one after another, so the model's latency is the sum of the layers' (no overlap of layers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from labkit.args import Int, Number, check
from labkit.dtypes import DTYPE_BYTES, normalize_dtype
from labkit.systolic import model as systolic
from labkit.targets.cold import cold_s, cold_shares
from labkit.targets.fitted import (
    blocked_flops,
    call_s,
    fit_for,
    fit_op,
    fresh_buffers,
    fresh_output_s,
    reorder_bytes,
    tier_bytes_per_s,
)
from labkit.units import si

# Models repeat their GEMM shapes; a pure function of five ints is safe to cache.
_array_utilization = lru_cache(maxsize=4096)(systolic.utilization)

# Grid region used when neither region= nor device.region says where the device runs (edge hardware).
DEFAULT_REGION = "world"


@dataclass(frozen=True)
class LayerEstimate:
    """The predicted cost of one layer: its time, what bounds it, its work and its energy."""

    name: str
    op: str
    op_class: str
    latency_s: float
    bound: str                      # "compute" or "memory"
    flops: int                      # at the estimate's batch
    bytes: int                      # weights + inputs + outputs at the estimate's batch and dtype
    energy_j: float
    array_utilization: float | None = None  # systolic-array utilisation of its GEMM (lab 05), else None

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte moved."""
        return self.flops / self.bytes if self.bytes else 0.0

    @property
    def flops_per_s(self) -> float:
        """Attained FLOP/s: the layer's work over its predicted time (the y of a roofline plot)."""
        return self.flops / self.latency_s if self.latency_s else 0.0


@dataclass(frozen=True)
class Estimate:
    """A model's predicted cost on one device; per-layer detail in ``layers`` and ``to_frame()``.

    >>> import labkit as lk, torch
    >>> p = lk.profile(torch.nn.Linear(512, 512), torch.zeros(8, 512))
    >>> e = lk.estimate(p, "h100-sxm", dtype="bf16")
    >>> e.latency_s > 0 and e.throughput_per_s == e.batch / e.latency_s
    True
    """

    model: str
    device: str
    dtype: str
    batch: int
    latency_s: float
    energy_j: float
    cost_usd: float                 # 0.0 for hardware not rented by the hour (edge devices)
    carbon_g: float                 # grams CO2e, incl. the facility's PUE
    throughput_per_s: float         # samples per second = batch / latency_s
    compute_bound_fraction: float   # share of latency_s spent in compute-bound layers
    region: str
    utilization: float              # fraction of the rented machine's time doing useful work
    layers: tuple[LayerEstimate, ...] = field(repr=False, default=())

    @property
    def cost_usd_per_1m(self) -> float:
        """USD per one million samples (inferences) at this batch."""
        return self.cost_usd / self.batch * 1e6

    @property
    def energy_j_per_sample(self) -> float:
        return self.energy_j / self.batch

    def to_frame(self):
        """One row per layer: op, bound, latency, FLOPs, bytes, intensity, attained FLOP/s, energy (pandas)."""
        import pandas as pd

        rows = [
            {
                "name": lay.name, "op": lay.op, "op_class": lay.op_class, "bound": lay.bound,
                "latency_s": lay.latency_s, "flops": lay.flops, "bytes": lay.bytes,
                "intensity": lay.intensity, "flops_per_s": lay.flops_per_s, "energy_j": lay.energy_j,
                "array_utilization": lay.array_utilization,
            }
            for lay in self.layers
        ]
        return pd.DataFrame(rows).set_index("name")

    def __repr__(self) -> str:
        return (
            f"Estimate({self.model!r} on {self.device}, {self.dtype}, batch={self.batch}: "
            f"latency {si(self.latency_s, 's')}, {self.throughput_per_s:,.4g} samples/s, "
            f"energy {si(self.energy_j, 'J')}, cost ${self.cost_usd:.3g} (${self.cost_usd_per_1m:,.4g} per 1M), "
            f"carbon {si(self.carbon_g, 'g')} CO2e in {self.region}, "
            f"{self.compute_bound_fraction:.0%} compute-bound, {len(self.layers)} layers)"
        )


def peak_flops(device, dtype: str) -> float:
    """The device's dense peak FLOP/s at `dtype` (a canonical name), with a clear error when it has none.

    >>> import labkit as lk
    >>> peak_flops(lk.device("h100-sxm"), "bf16") > 1e14
    True
    """
    peak = device.peak_flops.get(dtype)
    if not peak:
        have = ", ".join(d for d, v in device.peak_flops.items() if v) or "none"
        raise ValueError(
            f"device {device.name!r} has no {dtype} peak; it supports: {have}. Pass dtype= one of those."
        )
    return float(peak)


def _bytes(layer, bpe: float) -> int:
    # the same rounding as Layer.bytes at that dtype: each tensor rounded down on its own
    return int(layer.weight_elems * bpe) + int(layer.input_elems * bpe) + int(layer.output_elems * bpe)


def _array_util(layer, device) -> float | None:
    """Systolic utilisation of the layer's GEMM on device.array, or None (no array, or no GEMM)."""
    if device.array is None or layer.gemm is None:
        return None
    _, M, K, N = layer.gemm
    if min(M, K, N) < 1:
        return None
    rows, cols = device.array
    return _array_utilization(int(M), int(K), int(N), int(rows), int(cols))


def layer_time(layer, device, dtype: str = "fp32") -> tuple[float, str]:
    """Predicted seconds for one Layer on `device` at `dtype`, and what bounds it: ``(latency_s, bound)``.

    The one place the roofline formula lives; a calibrated layer is priced by its ``OpFit.time_s`` (the fit the
    calibration of lab 00 made, chosen by ``labkit.targets.fit_for``).
    Bytes are the layer's element counts at `dtype`; `layer` is taken at the batch you want.

    >>> from labkit.targets import Device
    >>> from labkit.profile.core import Layer
    >>> d = Device("toy", "edge-gpu", "x", {"fp32": 1e12}, 1e11, 1e9, 1, 10, overhead_s=0.0)
    >>> lay = Layer("fc", "linear", "matmul", ("input",), 10**6, 2 * 10**6, 10**6, 10**6, 10**3, 10**3)
    >>> t, bound = layer_time(lay, d, "fp32")   # 4.008e6 B / (1e11 * 0.7) = 57 µs > 2e6 / 6e11 = 3.3 µs
    >>> (round(t * 1e6, 2), bound)
    (57.26, 'memory')
    """
    dtype = normalize_dtype(dtype)
    return _layer_time(layer, device, dtype, _bytes(layer, DTYPE_BYTES[dtype]), _array_util(layer, device),
                       _fit_op(layer, device, dtype))


def _fit_op(layer, device, dtype: str) -> str:
    """The op name the device's fits price the layer under (labkit.targets.fit_op: torch's conv kernel, fp32)."""
    return fit_op(layer, _torch_threads(device, dtype))


def _torch_threads(device, dtype: str) -> int:
    """The torch threads that pick a layer's kernel and its oneDNN copies (fp32 only; 0: not torch's oneDNN)."""
    return device.torch_threads if dtype == "fp32" else 0


def _layer_time(layer, device, dtype: str, nbytes: int, util: float | None, op: str) -> tuple[float, str]:
    """layer_time for a canonical `dtype`, given the layer's bytes at it, its array utilisation and its fit op
    (lk.estimate's loop computes each once per layer)."""
    fit = fit_for(device.fits, layer.op_class, op)
    if fit is not None:
        # calibrated: Hockney-style start-up + rate per op class, fitted on this machine (OpFit owns the formula),
        # its bytes (with oneDNN's blocked copies in torch) capped by the memory tier its working set streams from,
        # plus faulting in its fresh buffers
        threads = _torch_threads(device, dtype)
        nbytes += reorder_bytes(layer, threads, DTYPE_BYTES[dtype])
        cap = tier_bytes_per_s(device.mem_tiers, nbytes)
        flops = blocked_flops(layer, threads)          # oneDNN computes its blocks' padded channels too
        compute_s, memory_s = fit.terms(flops, nbytes, cap)
        fresh_s = sum(fresh_output_s(device.fresh_output, b)
                      for b in fresh_buffers(layer, threads, DTYPE_BYTES[dtype]))
        latency_s = fit.time_s(flops, nbytes, cap, *layer.unit_counts) + fresh_s
        return latency_s, "compute" if compute_s > memory_s else "memory"
    peak = peak_flops(device, dtype) * device.eff_compute
    if util is not None:
        peak *= util              # padded tiles and fill/drain cycles do no useful work
    compute_s = layer.flops / peak if layer.flops else 0.0
    memory_s = nbytes / (device.mem_bw_bytes_per_s * device.eff_mem) if nbytes else 0.0
    bound = "compute" if compute_s > memory_s else "memory"
    return device.overhead_s + max(compute_s, memory_s), bound


def _check_args(profile, batch, utilization):
    if not hasattr(profile, "layers") or not hasattr(profile, "batch"):
        raise ValueError(
            f"estimate takes a Profile (from lk.profile(model, example)), got {type(profile).__name__}."
        )
    if not profile.layers:
        raise ValueError(f"profile {getattr(profile, 'name', '')!r} has no layers to estimate.")
    batch = check("batch", profile.batch if batch is None else batch, Int(low=1))
    utilization = check("utilization (the fraction of the rented machine's time doing useful work)",
                        1.0 if utilization is None else utilization, Number(low=0, high=1, low_open=True))
    return batch, utilization


def carbon_factor(device, region: str | None) -> tuple[str, float]:
    """(region, grams CO2e per joule incl. PUE) of energy used by `device` in `region` (default: the device's,
    else ``"world"``). The one conversion estimate and the fleet simulator (lab 07) share.

    >>> import labkit as lk
    >>> carbon_factor(lk.device("h100-sxm"), "fr")[0]
    'fr'
    """
    from labkit import carbon

    chosen = region or device.region or DEFAULT_REGION
    try:
        intensity = carbon.intensity(chosen)          # gCO2e per kWh
    except ValueError as err:
        if region is None and device.region is None:
            raise ValueError(
                f"device {device.name!r} has no grid region and there is no {DEFAULT_REGION!r} default; "
                "pass region= (see lk.carbon.regions())."
            ) from err
        raise
    return chosen, intensity * carbon.pue(device) / 3.6e6   # 1 kWh = 3.6e6 J


def estimate(profile, device, dtype: str = "fp32", batch: int | None = None, *,
             region: str | None = None, utilization: float | None = None) -> Estimate:
    """Predict latency, energy, cost and carbon of `profile` on `device` (introduced in lab 01).

    `batch` None keeps the profile's batch; another batch rescales per-sample work, not weights.
    `region` (grid region for carbon) defaults to the device's, else ``"world"`` (edge devices).
    `utilization` in (0, 1] spreads the idle time you pay for over the useful work (default 1.0).
    Cost is 0.0 for devices with no hourly price (owned edge hardware: you paid up front).

    >>> import labkit as lk, torch
    >>> p = lk.profile(torch.nn.Linear(1024, 1024), torch.zeros(1, 1024))
    >>> lk.estimate(p, "h100-sxm", "bf16").layers[0].bound     # one sample: reading weights dominates
    'memory'
    """
    if isinstance(device, str):
        from labkit.targets import device as lookup

        device = lookup(device)
    batch, utilization = _check_args(profile, batch, utilization)
    dtype = normalize_dtype(dtype)
    peak = peak_flops(device, dtype)
    bpe = DTYPE_BYTES[dtype]
    bw = device.mem_bw_bytes_per_s
    dyn_w = device.peak_w - device.idle_w

    layers = []
    weight_bytes = 0
    max_act_bytes = 0
    total_s = compute_s = energy_j = 0.0
    at_batch = profile.at_batch(batch).layers
    ops = [_fit_op(layer, device, dtype) for layer in at_batch]
    nbytes_of = [_bytes(layer, bpe) for layer in at_batch]
    # calibrated devices: a layer whose code and weights went cold since its op last ran pays a share of cold_s;
    # the bytes moved in between count oneDNN's blocked copies, as the calibration's (microbench.layer_work) do
    if device.fits and "switch" in device.fits:
        threads = _torch_threads(device, dtype)
        moved = [n + reorder_bytes(layer, threads, bpe) for layer, n in zip(at_batch, nbytes_of)]
        colds, weight_colds, cold_cap = cold_shares(ops, moved, device.mem_tiers)
    else:
        colds = weight_colds = [0.0] * len(at_batch)
        cold_cap = math.inf
    for layer, op, nbytes, cold, weight_cold in zip(at_batch, ops, nbytes_of, colds, weight_colds):
        util = _array_util(layer, device)
        t, bound = _layer_time(layer, device, dtype, nbytes, util, op)
        if cold or weight_cold:
            t += cold_s(device.fits, int(layer.weight_elems * bpe), cold, weight_cold, cold_cap)
        weight_bytes += int(layer.weight_elems * bpe)
        max_act_bytes = max(max_act_bytes, int(layer.input_elems * bpe) + int(layer.output_elems * bpe))
        # use of the bound resource, 0..1: attained FLOP/s over peak, or attained bytes/s over bandwidth
        if t <= 0:
            u = 0.0
        elif bound == "compute":
            u = layer.flops / t / peak
        else:
            u = nbytes / t / bw
        e = device.idle_w * t + dyn_w * min(max(u, 0.0), 1.0) * t
        total_s += t
        energy_j += e
        if bound == "compute":
            compute_s += t
        layers.append(LayerEstimate(layer.name, layer.op, layer.op_class, t, bound, layer.flops, nbytes, e, util))

    call = call_s(device.fits)     # calibrated devices: the fixed cost of one call of the model (ORT's session.run)
    total_s += call
    energy_j += device.idle_w * call

    need = weight_bytes + max_act_bytes
    if need > device.mem_bytes:
        raise ValueError(
            f"model needs {need / 1e9:.3g} GB at {dtype} (weights + largest activation at batch {batch}), "
            f"device {device.name} has {device.mem_bytes / 1e9:.3g} GB; try a smaller batch, a smaller dtype "
            "(int8), or a device with more memory."
        )

    price = device.price_usd_per_hour or 0.0
    region_used, g_per_j = carbon_factor(device, region)
    return Estimate(
        model=getattr(profile, "name", ""), device=device.name, dtype=dtype, batch=batch,
        latency_s=total_s, energy_j=energy_j, cost_usd=price * total_s / 3600.0 / utilization,
        carbon_g=energy_j * g_per_j, throughput_per_s=batch / total_s if total_s else float("inf"),
        compute_bound_fraction=compute_s / total_s if total_s else 0.0, region=region_used,
        utilization=utilization, layers=tuple(layers),
    )
