"""``lk.partition``: split a model between an edge device and the cloud (lab 06).

The model of one placement (every layer on "edge" or "cloud"; the input starts on the edge):

* latency = edge compute + upload + cloud compute + download, plus one ``link.rtt_s`` when any layer runs in
  the cloud. Compute is the sum of the layers' ``latency_s`` from ``lk.estimate`` on their device (layers run
  one after another; edge and cloud never overlap). Upload sends every edge-made tensor that a cloud layer
  reads (the input included) once, at ``link.uplink_bps``; download brings back each model output (a layer
  no other layer reads) made in the cloud, at ``link.downlink_bps``. Data never goes back down otherwise: a
  placement where an edge layer reads a cloud layer's output is not valid.
* edge energy = the edge layers' energy from ``lk.estimate`` + the radio's ``link.energy_j_per_bit`` for each
  bit sent + the edge device's ``idle_w`` while it waits (upload, RTT, cloud compute, download). Receiving
  the (small) result costs no radio energy here.
* cost = cloud compute at the cloud's ``price_usd_per_hour`` (and the edge's, if it has one) + egress
  ``link.egress_usd_per_gb`` of the downloaded bytes. Upload (ingress) is free, as on public clouds.

Tensor sizes are element counts from the profile at `dtype` (model inputs too, even integer token ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from labkit.args import Int, OneOf, Optional, check, unknown_name
from labkit.dtypes import DTYPE_BYTES, normalize_dtype
from labkit.estimate import estimate
from labkit.partition import cut as partition_cut
from labkit.targets import call_s
from labkit.units import si

OBJECTIVES = ("latency", "energy", "cost")
METHODS = ("auto", "scan", "min-cut")
_FIELD = {"latency": "latency_s", "energy": "edge_energy_j", "cost": "cost_usd"}


@dataclass(frozen=True)
class Totals:
    """What one placement costs, end to end (a Plan's own numbers, and its all-edge / all-cloud baselines)."""

    latency_s: float
    edge_energy_j: float
    cost_usd: float
    upload_bytes: int
    download_bytes: int
    edge_compute_s: float
    upload_s: float          # bytes sent / uplink rate (the RTT is counted apart, in rtt_s)
    cloud_compute_s: float
    download_s: float
    rtt_s: float             # link.rtt_s when any layer runs in the cloud, else 0


@dataclass(frozen=True)
class Segment:
    """One bar of a plan's timeline: ``lane`` is "edge", "uplink", "rtt", "cloud" or "downlink"."""

    lane: str
    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class LayerPlacement:
    """Where one layer runs and what it would cost on either side."""

    name: str
    device: str              # "edge" or "cloud"
    edge_latency_s: float
    cloud_latency_s: float
    edge_energy_j: float
    output_bytes: int        # at the plan's dtype and batch
    uploaded_bytes: int      # what the plan sends of this layer's output (compressed), 0 if nothing


@dataclass(frozen=True)
class Plan:
    """The best placement found by ``lk.partition``, its costs, timeline and the two baselines (lab 06).

    ``placement`` maps layer name -> "edge" or "cloud"; ``all_edge`` and ``all_cloud`` are the Totals of
    running everything on one side. ``to_frame()`` is one row per layer; ``compare()`` one row per option.
    """

    model: str
    edge: str
    cloud: str
    link: str
    objective: str
    dtype: str
    batch: int
    compress: str | None
    method: str                          # "scan" (chain) or "min-cut" (DAG)
    placement: Mapping[str, str] = field(repr=False)
    latency_s: float = 0.0
    edge_energy_j: float = 0.0
    cost_usd: float = 0.0
    upload_bytes: int = 0
    download_bytes: int = 0
    edge_compute_s: float = 0.0
    upload_s: float = 0.0
    cloud_compute_s: float = 0.0
    download_s: float = 0.0
    rtt_s: float = 0.0
    timeline: tuple[Segment, ...] = field(default=(), repr=False)
    all_edge: Totals | None = field(default=None, repr=False)
    all_cloud: Totals | None = field(default=None, repr=False)
    layers: tuple[LayerPlacement, ...] = field(default=(), repr=False)

    @property
    def edge_layers(self) -> tuple[str, ...]:
        return tuple(n for n, d in self.placement.items() if d == "edge")

    @property
    def cloud_layers(self) -> tuple[str, ...]:
        return tuple(n for n, d in self.placement.items() if d == "cloud")

    @property
    def split_after(self) -> str | None:
        """The last edge layer when the edge runs a prefix of the layers (always so for a chain):
        the last layer's name for all-edge, "input" for all-cloud; None when the edge part is not a prefix."""
        sides = list(self.placement.values())
        k = sides.count("edge")
        if sides[:k] != ["edge"] * k:
            return None
        return "input" if k == 0 else list(self.placement)[k - 1]

    def to_frame(self):
        """One row per layer: device, edge and cloud latency, edge energy, output and uploaded bytes (pandas)."""
        import pandas as pd

        rows = [{"name": lay.name, "device": lay.device, "edge_latency_s": lay.edge_latency_s,
                 "cloud_latency_s": lay.cloud_latency_s, "edge_energy_j": lay.edge_energy_j,
                 "output_bytes": lay.output_bytes, "uploaded_bytes": lay.uploaded_bytes} for lay in self.layers]
        return pd.DataFrame(rows).set_index("name")

    def compare(self):
        """This plan against all-edge and all-cloud: one row each, with latency, energy, cost, bytes (pandas)."""
        import pandas as pd

        keys = ("latency_s", "edge_energy_j", "cost_usd", "upload_bytes", "download_bytes", "edge_compute_s",
                "upload_s", "cloud_compute_s", "download_s", "rtt_s")
        rows = {"plan": {k: getattr(self, k) for k in keys}}
        for name, tot in (("all-edge", self.all_edge), ("all-cloud", self.all_cloud)):
            rows[name] = {k: getattr(tot, k) for k in keys}
        return pd.DataFrame.from_dict(rows, orient="index")

    def __repr__(self) -> str:
        n_edge = len(self.edge_layers)
        split = self.split_after
        where = (f"split after {split!r}" if split is not None else "DAG cut") + \
            f" ({n_edge} edge / {len(self.placement) - n_edge} cloud layers)"
        base = ""
        if self.all_edge is not None and self.all_cloud is not None:
            base = f" (all-edge {si(self.all_edge.latency_s, 's')}, all-cloud {si(self.all_cloud.latency_s, 's')})"
        squeeze = f", compress={self.compress}" if self.compress else ""
        return (f"Plan({self.model!r}: {self.edge} -[{self.link}]-> {self.cloud}, objective={self.objective}, "
                f"{self.dtype}, batch={self.batch}{squeeze}: {where}; latency {si(self.latency_s, 's')}{base}, "
                f"edge energy {si(self.edge_energy_j, 'J')}, cost ${self.cost_usd:.3g}, "
                f"upload {self.upload_bytes:,} B)")


class Problem:
    """A profile on an edge and a cloud device: per-layer costs and the data edges, link-independent.

    Built once per (profile, edge, cloud, dtype, batch); the widget explorer re-solves it for each link.
    """

    def __init__(self, profile, edge, cloud, dtype: str = "fp32", batch: int | None = None):
        from labkit.targets import device as lookup

        if not hasattr(profile, "layers") or not hasattr(profile, "batch"):
            raise ValueError(f"partition takes a Profile (from lk.profile(model, example)), "
                             f"got {type(profile).__name__}.")
        self.profile = profile
        self.dtype = normalize_dtype(dtype)
        self.edge, self.cloud = lookup(edge), lookup(cloud)
        ests = []
        for role, dev in (("edge", self.edge), ("cloud", self.cloud)):
            try:
                ests.append(estimate(profile, dev, self.dtype, batch))
            except ValueError as err:
                raise ValueError(f"{role} device {dev.name!r} cannot run this model: {err}") from err
        est_e, est_c = ests
        self.batch = est_e.batch
        self.names = [lay.name for lay in profile.layers]
        index = {name: i for i, name in enumerate(self.names)}
        if len(index) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise ValueError(f"layer names must be unique, {dup} appear more than once.")
        self.producers: list[tuple[int, ...]] = []
        for v, lay in enumerate(profile.layers):
            prods = []
            for src in lay.inputs:
                if src == "input":
                    prods.append(partition_cut.INPUT)
                elif src not in index:
                    raise unknown_name(f"input of layer {lay.name!r}", src, ["input", *self.names])
                elif index[src] >= v:
                    raise ValueError(f"layer {lay.name!r} reads {src!r}, which comes later: layers must be in "
                                     "topological order (producers first), as lk.profile returns them.")
                else:
                    prods.append(index[src])
            self.producers.append(tuple(dict.fromkeys(prods)))
        n = len(self.names)
        # data edges, producer index + 1 (0 = the input) -> reader index
        pairs = [(u + 1, v) for v, prods in enumerate(self.producers) for u in prods]
        self.src = np.array([p[0] for p in pairs], dtype=int)
        self.dst = np.array([p[1] for p in pairs], dtype=int)
        read = np.zeros(n + 1, dtype=bool)
        read[self.src] = True
        self.is_output = ~read[1:]                       # (n,): layers nobody reads are the model's outputs
        self.chain = partition_cut.is_chain(self.producers)

        scaled = profile.at_batch(self.batch)
        self.elems = np.array([scaled.input_elems] + [lay.output_elems for lay in scaled.layers], dtype=float)
        self.t_edge = np.array([lay.latency_s for lay in est_e.layers])    # (n,) s
        self.t_cloud = np.array([lay.latency_s for lay in est_c.layers])   # (n,) s
        self.e_edge = np.array([lay.energy_j for lay in est_e.layers])     # (n,) J
        # calibrated devices have a fixed cost per model call (lk.estimate adds it once): once per side used
        self.call_edge_s, self.call_cloud_s = call_s(self.edge.fits), call_s(self.cloud.fits)
        self.out_bytes = (self.elems * DTYPE_BYTES[self.dtype]).astype(np.int64)   # (n + 1,): input first

    def cross_bytes(self, compress: str | None) -> np.ndarray:
        """(n + 1,) bytes to upload each tensor (input first), after optional compression."""
        bpe = DTYPE_BYTES[self.dtype if compress is None else compress]
        return (self.elems * bpe).astype(np.int64)

    def evaluate(self, cloud: np.ndarray, link, compress: str | None) -> tuple[Totals, np.ndarray]:
        """Totals of the placement `cloud` (bool (n,)), and the uploaded bytes of each tensor (n + 1,)."""
        edge = ~cloud
        any_cloud, any_edge = bool(cloud.any()), bool(edge.any())
        on_edge = np.concatenate(([True], edge))        # (n + 1,): the input is made on the edge
        crossing = on_edge[self.src] & cloud[self.dst]
        sent = np.zeros(len(self.elems), dtype=bool)
        sent[self.src[crossing]] = True                  # each tensor once, however many cloud readers
        sent_bytes = np.where(sent, self.cross_bytes(compress), 0)
        up_b = int(sent_bytes.sum())
        down_b = int(self.out_bytes[1:][self.is_output & cloud].sum())
        edge_s = float(self.t_edge[edge].sum()) + (self.call_edge_s if any_edge else 0.0)
        cloud_s = float(self.t_cloud[cloud].sum()) + (self.call_cloud_s if any_cloud else 0.0)
        up_s, down_s = link.upload_s(up_b), link.download_s(down_b)
        rtt = link.rtt_s if any_cloud else 0.0
        wait_s = up_s + rtt + cloud_s + down_s
        energy = (float(self.e_edge[edge].sum()) + (self.edge.idle_w * self.call_edge_s if any_edge else 0.0)
                  + link.energy_j_per_bit * 8.0 * up_b + self.edge.idle_w * wait_s)
        cost = ((self.edge.price_usd_per_hour or 0.0) * edge_s + (self.cloud.price_usd_per_hour or 0.0) * cloud_s
                ) / 3600.0 + link.egress_usd_per_gb * down_b / 1e9
        totals = Totals(edge_s + wait_s, energy, cost, up_b, down_b, edge_s, up_s, cloud_s, down_s, rtt)
        return totals, sent_bytes

    def weights(self, link, objective: str, compress: str | None):
        """(edge_w (n,), cloud_w (n,), up_w (n + 1,)) in the objective's unit, for the solvers."""
        cross = self.cross_bytes(compress).astype(float)
        down_s = np.where(self.is_output, 8.0 * self.out_bytes[1:] / link.downlink_bps, 0.0)
        up_s = 8.0 * cross / link.uplink_bps
        if objective == "latency":
            return self.t_edge, self.t_cloud + down_s, up_s
        if objective == "energy":
            idle = self.edge.idle_w
            return self.e_edge, idle * (self.t_cloud + down_s), 8.0 * cross * link.energy_j_per_bit + idle * up_s
        egress = np.where(self.is_output, link.egress_usd_per_gb * self.out_bytes[1:] / 1e9, 0.0)
        return ((self.edge.price_usd_per_hour or 0.0) * self.t_edge / 3600.0,
                (self.cloud.price_usd_per_hour or 0.0) * self.t_cloud / 3600.0 + egress, np.zeros(len(cross)))

    def solve(self, link, objective: str, compress: str | None, method: str = "auto") -> Plan:
        n = len(self.names)
        if method == "scan" and not self.chain:
            raise ValueError("method='scan' needs a chain (each layer reads only the one before it); this "
                             "model has branches or skips: use method='min-cut' or 'auto'.")
        use_scan = self.chain if method == "auto" else method == "scan"
        edge_w, cloud_w, up_w = self.weights(link, objective, compress)
        if use_scan:
            k = partition_cut.chain_split(edge_w, cloud_w, up_w)
            best = np.arange(n) >= k
        else:
            best = np.zeros(n, dtype=bool)
            best[list(partition_cut.min_cut(edge_w, cloud_w, up_w, self.producers))] = True
        # The RTT (and a calibrated device's per-call cost) is the same for every mixed placement, so the
        # solvers leave it out; compare explicitly with both all-on-one-side placements, which pay less of it.
        all_edge, all_cloud = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
        key = _FIELD[objective]
        results = [(cand, *self.evaluate(cand, link, compress)) for cand in (all_edge, best, all_cloud)]
        chosen, tot, sent = min(results, key=lambda r: getattr(r[1], key))   # ties: all-edge, then the solver's
        layers = tuple(LayerPlacement(name, "cloud" if chosen[i] else "edge", float(self.t_edge[i]),
                                      float(self.t_cloud[i]), float(self.e_edge[i]), int(self.out_bytes[i + 1]),
                                      int(sent[i + 1])) for i, name in enumerate(self.names))
        return Plan(model=getattr(self.profile, "name", ""), edge=self.edge.name, cloud=self.cloud.name,
                    link=link.name, objective=objective, dtype=self.dtype, batch=self.batch, compress=compress,
                    method="scan" if use_scan else "min-cut",
                    placement=MappingProxyType({lay.name: lay.device for lay in layers}),
                    **{k: getattr(tot, k) for k in Totals.__dataclass_fields__},
                    timeline=timeline_of(tot), all_edge=results[0][1], all_cloud=results[2][1], layers=layers)


def timeline_of(tot: Totals) -> tuple[Segment, ...]:
    """Edge compute, upload, half the RTT, cloud compute, the other half of the RTT, download, in sequence.

    The RTT has lanes of its own ("rtt"): half of it on the way up, half on the way down (the model charges
    one RTT per inference that uses the cloud; it does not say which way the delay falls).
    """
    segs, t = [], 0.0
    phases = [("edge", "edge compute", tot.edge_compute_s)]
    if tot.rtt_s or tot.cloud_compute_s:
        phases += [("uplink", f"upload {tot.upload_bytes:,} B", tot.upload_s),
                   ("rtt", "RTT/2 (on the way up)", tot.rtt_s / 2),
                   ("cloud", "cloud compute", tot.cloud_compute_s),
                   ("rtt", "RTT/2 (on the way down)", tot.rtt_s / 2),
                   ("downlink", f"download {tot.download_bytes:,} B", tot.download_s)]
    for lane, label, dur in phases:
        if dur > 0:
            segs.append(Segment(lane, label, t, t + dur))
            t += dur
    return tuple(segs)


def check_options(link, objective, compress, dtype, method):
    from labkit.targets import Link
    from labkit.targets import link as lookup_link

    objective = check("objective", objective, OneOf(OBJECTIVES))
    method = check("method", method, OneOf(METHODS))
    if not isinstance(link, (str, Link)):
        raise ValueError(f"link must be a catalog name ('lte', 'wifi', ...; see lk.links()) or an lk.Link, "
                         f"got {type(link).__name__}.")
    link = lookup_link(link)
    if compress is not None:
        compress = normalize_dtype(compress)
        if DTYPE_BYTES[compress] > DTYPE_BYTES[normalize_dtype(dtype)]:
            raise ValueError(f"compress={compress!r} is wider than the model's dtype {dtype!r}: compression "
                             f"must shrink the tensors; pick a narrower format (e.g. 'int8') or None.")
    return link, compress


def partition(profile, edge, cloud, link, objective: str = "latency", dtype: str = "fp32",
              batch: int | None = None, *, compress: str | None = None, method: str = "auto") -> Plan:
    """The optimal edge–cloud split of `profile` over `link` for one objective (lab 06).

    `objective` is "latency" (s), "energy" (the edge device's J: its layers, its radio, its idle power while it
    waits) or "cost" (USD: cloud compute + egress of the downloaded result). Chains are solved by
    Neurosurgeon's linear scan (Kang et al., ASPLOS 2017); DAGs by an exact minimum s–t cut in the spirit of
    DADS (Hu et al., INFOCOM 2019), each tensor sent once however many cloud layers read it. Both return the
    true optimum over all valid placements (no data back down to the edge except the result); `method`
    forces "scan" (chains only) or "min-cut". `compress` ("fp16", "int8", ...) shrinks the tensors sent up
    to that format; its accuracy impact is not modelled here (lab 02 measures quantisation error).

    >>> import labkit as lk
    >>> p = lk.profile(lk.zoo.build("cnn"), lk.zoo.example("cnn"))
    >>> plan = lk.partition(p, edge="raspberry-pi-5", cloud="l4", link="wifi")
    >>> plan.latency_s <= min(plan.all_edge.latency_s, plan.all_cloud.latency_s)
    True
    """
    batch = check("batch", batch, Optional(Int(low=1)))
    link, compress = check_options(link, objective, compress, dtype, method)
    return Problem(profile, edge, cloud, dtype, batch).solve(link, objective, compress, method)
