"""A deployment spec (lab 11): pools, router and SLO, written in YAML or a dict, validated by pydantic.

Errors name the field path (``pools[0].device``), say what is allowed, and give near matches for unknown
devices, models and keys. ``Spec.fleet()`` is the lab-07 ``lk.deploy.Fleet`` the spec declares.

>>> import labkit as lk
>>> spec = lk.ops.load_spec('''
... name: shop
... pools:
...   - {name: gpu, model: mobilenet, device: l4, replicas: 2}
... slo: {availability: 0.999, latency_s: 0.2}
... ''')
>>> spec.pools[0].replicas, spec.slo.error_budget
(2, 0.001)
>>> lk.ops.load_spec({"name": "shop", "pools": [{"name": "gpu", "model": "mobilenet", "device": "l44"}]})
Traceback (most recent call last):
ValueError: bad spec: pools[0].device: unknown device 'l44'. Did you mean 'l4', 'l40s'? Allowed: ...
"""

from __future__ import annotations

import re
from difflib import get_close_matches
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from labkit.args import unknown_name

ROUTERS = ("power-of-two", "round-robin", "least-loaded", "edge-first")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchingSpec(_Strict):
    """Ray Serve's ``@serve.batch`` settings."""

    max_batch_size: int = Field(10, ge=1)
    batch_wait_timeout_s: float = Field(0.01, ge=0)


class AutoscalingSpec(_Strict):
    """Ray Serve's ``autoscaling_config`` (the fields a spec may set)."""

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _order(self):
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) must be >= min_replicas ({self.min_replicas})")
        return self


class PoolSpec(_Strict):
    """One pool: a Ray Serve deployment of `model` on catalog `device` in `region`."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    model: str
    device: str
    region: str | None = None
    dtype: Literal["fp32", "fp16", "bf16", "int8"] = "fp32"
    replicas: int = Field(1, ge=1)
    max_ongoing_requests: int = Field(5, ge=1)
    batching: BatchingSpec | None = None
    autoscaling: AutoscalingSpec | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        from labkit.targets import device

        try:
            device(v)
        except (KeyError, ValueError) as e:
            raise ValueError(str(e).strip("\"'")) from None
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        from labkit import zoo

        if v not in zoo.names():
            raise _Unknown("zoo model", v, zoo.names())
        return v


class SLO(_Strict):
    """The service level objective: `availability` of requests succeed, and `percentile` of them within
    `latency_s`, over a rolling `window_days`."""

    availability: float = Field(0.999, gt=0, lt=1)
    latency_s: float | None = Field(None, gt=0)
    percentile: float = Field(99.0, gt=0, lt=100)
    window_days: int = Field(30, ge=1)

    @property
    def error_budget(self) -> float:
        """Share of requests allowed to fail over the window: 1 - availability."""
        return round(1.0 - self.availability, 12)


class Spec(_Strict):
    """A whole deployment: pools behind one router, and its SLO."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    pools: list[PoolSpec] = Field(min_length=1)
    router: Literal[ROUTERS] = "power-of-two"          # type: ignore[valid-type]
    slo: SLO = SLO()

    @model_validator(mode="after")
    def _unique(self):
        names = [p.name for p in self.pools]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"pool names must be unique, {dup} appear more than once")
        return self

    def pool(self, name: str) -> PoolSpec:
        """The pool called `name`."""
        for p in self.pools:
            if p.name == name:
                return p
        raise unknown_name("pool", name, [p.name for p in self.pools])

    def fleet(self, service_s: float | None = None):
        """The lk.deploy.Fleet this spec declares (lab 07's simulator runs it)."""
        from labkit.deploy import Autoscaling, Batching, Fleet, Pool

        pools = [Pool(p.name, device=p.device, model=None if service_s else p.model, service_s=service_s,
                      replicas=p.replicas, region=p.region, dtype=p.dtype,
                      max_ongoing_requests=p.max_ongoing_requests,
                      batching=Batching(**p.batching.model_dump()) if p.batching else None,
                      autoscaling=Autoscaling(**p.autoscaling.model_dump()) if p.autoscaling else None)
                 for p in self.pools]
        return Fleet(pools, router=self.router)


class _Unknown(ValueError):
    def __init__(self, what, name, choices):
        super().__init__(str(unknown_name(what, name, choices)))


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(spec)"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that holds the field at `loc` (for near matches of unknown keys)."""
    model: type[BaseModel] = Spec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        ann = model.model_fields[part].annotation
        inner = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            args = [a for arg in getattr(ann, "__args__", ()) for a in getattr(arg, "__args__", (arg,))]
            inner = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            return None
        model = inner[0]
    return model


def _message(err: dict) -> str:
    loc = tuple(err["loc"])
    path = _path(loc)
    if err["type"] == "extra_forbidden":
        model = _model_at(loc)
        allowed = list(model.model_fields) if model else []
        near = get_close_matches(str(loc[-1]), allowed, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        return f"{path}: unknown key {loc[-1]!r}.{hint} Allowed: {', '.join(allowed)}."
    if err["type"] == "missing":
        return f"{path}: required field is missing."
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("error"), ValueError):
        return f"{path}: {ctx['error']}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        return f"{path}: {unknown_name('value', err['input'], choices)}"
    return f"{path}: {msg}, got {err['input']!r}." if "input" in err and not isinstance(err["input"], dict) \
        else f"{path}: {msg}."


def load_spec(source) -> Spec:
    """A validated Spec from a dict, a YAML string, or a path to a YAML file (lab 11).

    >>> import labkit as lk
    >>> lk.ops.load_spec({"name": "s", "pools": [{"name": "a", "model": "mobilenet", "device": "l4",
    ...                   "replica": 2}]})
    Traceback (most recent call last):
    ValueError: bad spec: pools[0].replica: unknown key 'replica'. Did you mean 'replicas'? Allowed: ...
    """
    if isinstance(source, Spec):
        return source
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith(
            (".yaml", ".yml"))):
        source = Path(source).read_text()
    if isinstance(source, str):
        import yaml

        source = yaml.safe_load(source)
    if not isinstance(source, dict):
        raise ValueError(f"a spec is a mapping (name, pools, router, slo), got {type(source).__name__}.")
    try:
        return Spec.model_validate(source)
    except ValidationError as e:
        lines = [_message(err) for err in e.errors()]
        raise ValueError("bad spec: " + "\n  ".join(lines)) from None
