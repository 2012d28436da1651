"""What a pool costs, worked out once per run: service time and energy per batch size, links, price, carbon and
cold start (lab 07). The event loop (labkit.deploy.sim) and the Ray Serve twin (labkit.deploy.twin) both read it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from labkit.deploy.pool import Pool

# Cold start when the pool does not give one: process/actor start plus reading the weights into device memory.
REPLICA_START_S = 2.0          # estimate: a Ray Serve replica actor and its Python imports, a few seconds here
WEIGHT_LOAD_BYTES_PER_S = 2e9  # estimate: NVMe/object-store read of the weights, ~2 GB/s, below any device's bus

class PoolState(NamedTuple):
    """What a router function sees of one pool when a request arrives."""

    name: str
    ongoing: int          # queued + in service
    waiting: int          # queued, not yet in a batch that runs
    running: int          # replicas that can serve now
    is_edge: bool


@lru_cache(maxsize=32)
def _zoo_profile(name: str):
    from labkit import zoo
    from labkit.profile import profile

    return profile(zoo.build(name), zoo.example(name))


def profile_of(pool: Pool):
    """The pool's model as a Profile (a zoo name is profiled once and cached), or None for a pool with service_s."""
    if pool.model is None:
        return None
    return _zoo_profile(pool.model) if isinstance(pool.model, str) else pool.model


def cold_start_s(pool: Pool) -> float:
    """Seconds from a scale-up decision to a replica that serves (lab 07): the pool's cold_start_s if set, else
    ``REPLICA_START_S + weight bytes / min(WEIGHT_LOAD_BYTES_PER_S, device memory bandwidth)``.

    >>> import labkit as lk
    >>> cold_start_s(lk.deploy.Pool("a", device="l4", service_s=0.01, cold_start_s=7.5))
    7.5
    """
    if pool.cold_start_s is not None:
        return pool.cold_start_s
    prof = profile_of(pool)
    if prof is None:
        return REPLICA_START_S
    from labkit.dtypes import dtype_bytes
    from labkit.targets import device

    nbytes = prof.params * dtype_bytes(pool.dtype)
    return REPLICA_START_S + nbytes / min(WEIGHT_LOAD_BYTES_PER_S, device(pool.device).mem_bw_bytes_per_s)


class ServiceModel:
    """What one pool costs in a run: service time and dynamic energy per batch size (from lk.estimate), link
    delays, price per second, grid carbon per joule, cold start. The simulator and the Ray Serve twin share it."""

    __slots__ = ("svc", "dyn_j", "up_s", "down_s", "egress_usd", "idle_w", "usd_per_s", "g_per_j", "region",
                 "cold_s", "cap_extra", "B", "T", "is_edge")

    def __init__(self, pool: Pool):
        from labkit.estimate import carbon_factor, estimate
        from labkit.targets import device, link

        dev = device(pool.device)
        B = pool.max_batch_size
        prof = profile_of(pool)
        svc, dyn = [0.0] * (B + 1), [0.0] * (B + 1)
        for b in range(1, B + 1):
            if pool.service_s is not None:
                s = pool.service_s
                t = float(s(b) if callable(s) else s[b] if isinstance(s, dict) else s)
                if not t > 0:
                    raise ValueError(f"pool {pool.name!r}: service_s for batch {b} must be > 0, got {t!r}.")
                svc[b], dyn[b] = t, (dev.peak_w - dev.idle_w) * t
            else:
                e = estimate(prof, dev, pool.dtype, batch=b, region=pool.region)
                svc[b], dyn[b] = e.latency_s, e.energy_j - dev.idle_w * e.latency_s
        self.svc, self.dyn_j, self.B = svc, dyn, B
        self.T = pool.batching.batch_wait_timeout_s if pool.batching is not None else 0.0
        in_b = pool.input_bytes if pool.input_bytes is not None else (
            prof.input_elems / prof.batch * 4 if prof is not None else 0.0)
        out_b = pool.output_bytes if pool.output_bytes is not None else (
            prof.output_elems / prof.batch * 4 if prof is not None else 0.0)
        if pool.link is not None:
            lk_ = link(pool.link)
            self.up_s = lk_.rtt_s / 2 + lk_.upload_s(in_b)
            self.down_s = lk_.rtt_s / 2 + lk_.download_s(out_b)
            self.egress_usd = out_b / 1e9 * lk_.egress_usd_per_gb
        else:
            self.up_s = self.down_s = self.egress_usd = 0.0
        self.idle_w = dev.idle_w
        self.usd_per_s = (dev.price_usd_per_hour or 0.0) / 3600.0
        self.region, self.g_per_j = carbon_factor(dev, pool.region)
        self.cold_s = cold_start_s(pool)
        self.cap_extra = pool.max_queued_requests       # -1: no bound
        self.is_edge = pool.is_edge
