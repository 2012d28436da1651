"""What a learner deploys (lab 07): Pool, Batching, Autoscaling and Fleet — frozen specs with Ray Serve's names
and defaults, each round-tripping to a plain dict (``to_dict`` / ``from_dict``) so a fleet can be written down,
swept and exported.

Ray Serve's names and defaults (ray 2.60, ray/serve/config.py ``AutoscalingConfig``, ray/serve/batching.py
``batch``, ray/serve/_private/constants.py): ``max_ongoing_requests=5``, ``max_queued_requests=-1`` (no
bound), ``max_batch_size=10``, ``batch_wait_timeout_s=0.01``, ``min_replicas=1``, ``max_replicas=1``,
``target_ongoing_requests=2``, ``upscale_delay_s=30``, ``downscale_delay_s=600``, ``look_back_period_s=30``,
``upscaling_factor``/``downscaling_factor`` None (= 1.0).

"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields

from labkit.args import check_int, check_positive

ROUTERS = ("power-of-two", "round-robin", "least-loaded", "edge-first")
CLOUD_KINDS = ("cloud-gpu", "cloud-cpu", "cloud-npu", "tpu")


def _nonneg(what: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{what} must be a finite number >= 0 seconds, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class Batching:
    """Ray Serve's ``@serve.batch``: up to `max_batch_size` requests, waiting at most `batch_wait_timeout_s`
    after the first request of a batch reaches an idle replica (lab 07).

    >>> import labkit as lk
    >>> lk.deploy.Batching()
    Batching(max_batch_size=10, batch_wait_timeout_s=0.01)
    """

    max_batch_size: int = 10
    batch_wait_timeout_s: float = 0.01

    def __post_init__(self):
        check_int("max_batch_size", self.max_batch_size, 1)
        object.__setattr__(self, "batch_wait_timeout_s", _nonneg("batch_wait_timeout_s", self.batch_wait_timeout_s))


@dataclass(frozen=True)
class Autoscaling:
    """Ray Serve's ``autoscaling_config``, with its names and defaults (lab 07).

    The rule (labkit.deploy.autoscale.decide, a transcription of Ray's): desired = ongoing requests averaged
    over `look_back_period_s` / `target_ongoing_requests`, moved toward by the up/downscaling factor, applied
    once the wish has persisted for the up/downscale delay, clipped to [min_replicas, max_replicas].
    `control_interval_s` is how often Ray's controller decides (RAY_SERVE_CONTROL_LOOP_INTERVAL_S, 0.1 s).

    >>> import labkit as lk
    >>> lk.deploy.Autoscaling(min_replicas=1, max_replicas=8).target_ongoing_requests
    2.0
    >>> lk.deploy.Autoscaling(min_replicas=4, max_replicas=2)
    Traceback (most recent call last):
    ValueError: max_replicas (2) must be >= min_replicas (4).
    """

    min_replicas: int = 1
    max_replicas: int = 1
    initial_replicas: int | None = None
    target_ongoing_requests: float = 2.0
    upscale_delay_s: float = 30.0
    downscale_delay_s: float = 600.0
    downscale_to_zero_delay_s: float | None = None
    look_back_period_s: float = 30.0
    upscaling_factor: float | None = None
    downscaling_factor: float | None = None
    control_interval_s: float = 0.1

    def __post_init__(self):
        check_int("min_replicas", self.min_replicas, 0)
        check_int("max_replicas", self.max_replicas, 1)
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) must be >= min_replicas ({self.min_replicas}).")
        if self.initial_replicas is not None:
            check_int("initial_replicas", self.initial_replicas, 0)
            if not self.min_replicas <= self.initial_replicas <= self.max_replicas:
                raise ValueError(f"initial_replicas ({self.initial_replicas}) must be in [min_replicas, "
                                 f"max_replicas] = [{self.min_replicas}, {self.max_replicas}].")
        object.__setattr__(self, "target_ongoing_requests",
                           check_positive("target_ongoing_requests", self.target_ongoing_requests))
        for name in ("upscale_delay_s", "downscale_delay_s"):
            object.__setattr__(self, name, _nonneg(name, getattr(self, name)))
        if self.downscale_to_zero_delay_s is not None:
            _nonneg("downscale_to_zero_delay_s", self.downscale_to_zero_delay_s)
        for name in ("look_back_period_s", "control_interval_s"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name)))
        for name in ("upscaling_factor", "downscaling_factor"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))

    @property
    def start_replicas(self) -> int:
        """Replicas at deploy time: initial_replicas, else min_replicas (Ray's rule)."""
        return self.initial_replicas if self.initial_replicas is not None else self.min_replicas


@dataclass(frozen=True)
class Pool:
    """Replicas of one model on one catalog device in one region: a Ray Serve deployment (lab 07).

    `model` is a zoo name (``"mobilenet"``) or a Profile; or give `service_s` instead: seconds per batch, a
    number (the same for every batch size), a dict ``{batch: seconds}`` or a callable ``batch -> seconds``.
    `link` (a ``lk.link`` name) puts the pool behind a network from the user: each request pays half the RTT
    plus its input's upload on the way in, half the RTT plus its output's download on the way out, and
    the output's egress price; no link = next to the user (an edge pool).
    `replicas` is Ray's ``num_replicas`` (ignored when `autoscaling` is set). `cold_start_s` None derives a
    model-load time from the weights (see labkit.deploy.service.cold_start_s).

    >>> import labkit as lk
    >>> p = lk.deploy.Pool("gpu", device="l4", model="mobilenet", replicas=2, max_ongoing_requests=8,
    ...                    batching=lk.deploy.Batching(8))
    >>> p.max_ongoing_requests, p.max_batch_size
    (8, 8)
    >>> lk.deploy.Pool.from_dict(p.to_dict()) == p
    True
    >>> lk.deploy.Pool("x", device="l4", service_s=0.01, replicas=0)
    Traceback (most recent call last):
    ValueError: replicas must be an int >= 1, got 0.
    """

    name: str
    device: str
    model: object = None
    service_s: object = None
    replicas: int = 1
    region: str | None = None
    link: str | None = None
    dtype: str = "fp32"
    max_ongoing_requests: int = 5
    max_queued_requests: int = -1
    batching: Batching | None = None
    autoscaling: Autoscaling | None = None
    cold_start_s: float | None = None
    input_bytes: float | None = None
    output_bytes: float | None = None

    def __post_init__(self):
        from labkit.targets import device, link

        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a pool needs a name (a non-empty string), got {self.name!r}.")
        dev = self.device if isinstance(self.device, str) else getattr(self.device, "name", self.device)
        device(dev)                                         # unknown names raise with near matches
        object.__setattr__(self, "device", dev)
        if self.link is not None:
            link(self.link)
        if self.model is None and self.service_s is None:
            raise ValueError(f"pool {self.name!r} needs model= (a zoo name or a Profile) or service_s= "
                             "(seconds per batch: a number, a dict {batch: s} or a function of the batch size).")
        if isinstance(self.model, str):
            from labkit import zoo

            if self.model not in zoo.names():
                from labkit.args import unknown_name

                raise unknown_name("zoo model", self.model, zoo.names())
        if isinstance(self.service_s, numbers.Real):
            object.__setattr__(self, "service_s", check_positive("service_s", self.service_s))
        check_int("replicas", self.replicas, 1)
        check_int("max_ongoing_requests", self.max_ongoing_requests, 1)
        if isinstance(self.max_queued_requests, bool) or not isinstance(self.max_queued_requests, int) \
                or self.max_queued_requests < -1:
            raise ValueError(f"max_queued_requests must be -1 (no bound, Ray's default) or an int >= 0, "
                             f"got {self.max_queued_requests!r}.")
        if isinstance(self.batching, dict):
            object.__setattr__(self, "batching", Batching(**self.batching))
        if isinstance(self.autoscaling, dict):
            object.__setattr__(self, "autoscaling", Autoscaling(**self.autoscaling))
        if self.cold_start_s is not None:
            object.__setattr__(self, "cold_start_s", _nonneg("cold_start_s", self.cold_start_s))
        for name in ("input_bytes", "output_bytes"):
            if getattr(self, name) is not None and (not isinstance(getattr(self, name), numbers.Real)
                                                     or getattr(self, name) < 0):
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)!r}.")

    @property
    def max_batch_size(self) -> int:
        """Largest batch a replica runs: Batching's max_batch_size, never above max_ongoing_requests (a Ray
        replica never holds more than max_ongoing_requests requests); 1 without batching."""
        if self.batching is None:
            return 1
        return min(self.batching.max_batch_size, self.max_ongoing_requests)

    @property
    def is_edge(self) -> bool:
        """True for devices that are not rented cloud kinds (the edge-first router's first choice)."""
        from labkit.targets import device

        return device(self.device).kind not in CLOUD_KINDS

    def to_dict(self) -> dict:
        """Plain dict (JSON-able when model is a zoo name and service_s a number or dict)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (Batching, Autoscaling)):
                v = asdict(v)
            elif f.name == "model" and v is not None and not isinstance(v, str):
                v = v                                        # a Profile travels as itself
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Pool:
        """The Pool a ``to_dict()`` came from."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            from labkit.args import unknown_name

            raise unknown_name("Pool field", sorted(unknown)[0], [f.name for f in fields(cls)])
        return cls(**d)


@dataclass(frozen=True)
class Fleet:
    """Pools behind one router (lab 07).

    `router`: ``"power-of-two"`` (Ray Serve's default: two pools at random, the less loaded per running
    replica), ``"round-robin"``, ``"least-loaded"``, ``"edge-first"`` (the first edge pool whose queue is
    shorter than `spill_queue`, else the least-loaded cloud pool), or a function
    ``fn(request, pool_states) -> pool index`` (request: dict of the workload's row with ``index`` and
    ``arrival_s``; pool_states: a tuple of labkit.deploy.service.PoolState).

    >>> import labkit as lk
    >>> f = lk.deploy.Fleet([lk.deploy.Pool("a", device="l4", service_s=0.01)], router="least-loaded")
    >>> lk.deploy.Fleet.from_dict(f.to_dict()) == f
    True
    >>> lk.deploy.Fleet(f.pools, router="least-loded")
    Traceback (most recent call last):
    ValueError: unknown router 'least-loded'. Did you mean 'least-loaded'? Allowed: edge-first, least-loaded, power-of-two, round-robin.
    """

    pools: tuple
    router: object = "power-of-two"
    spill_queue: int = 4

    def __post_init__(self):
        pools = tuple(Pool.from_dict(p) if isinstance(p, dict) else p for p in
                      (self.pools if isinstance(self.pools, (list, tuple)) else [self.pools]))
        if not pools or not all(isinstance(p, Pool) for p in pools):
            raise ValueError("a Fleet needs at least one Pool (lk.deploy.Pool(...)).")
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise ValueError(f"pool names must be unique, got {names}.")
        object.__setattr__(self, "pools", pools)
        if isinstance(self.router, str):
            if self.router not in ROUTERS:
                from labkit.args import unknown_name

                raise unknown_name("router", self.router, ROUTERS)
        elif not callable(self.router):
            raise ValueError(f"router must be one of {', '.join(ROUTERS)} or a function (request, pool_states) "
                             f"-> pool index, got {self.router!r}.")
        check_int("spill_queue", self.spill_queue, 0)
        if self.router == "edge-first" and not any(p.is_edge for p in pools):
            raise ValueError("router 'edge-first' needs at least one edge pool (a device that is not "
                             f"{', '.join(CLOUD_KINDS)}).")

    def to_dict(self) -> dict:
        """Plain dict: ``{"pools": [pool dicts], "router": ..., "spill_queue": ...}``."""
        return {"pools": [p.to_dict() for p in self.pools], "router": self.router, "spill_queue": self.spill_queue}

    @classmethod
    def from_dict(cls, d: dict) -> Fleet:
        """The Fleet a ``to_dict()`` came from."""
        return cls(**d)
