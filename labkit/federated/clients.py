"""Put federated clients on catalog devices and links, and time a round with the performance model (lab 10).

Per selected client in a round (all simulated, from the same model as ``lk.estimate`` and ``lk.link``):

- download: ``rtt/2 + 8 * bytes_down / downlink_bps`` (the global weights, float32);
- compute: ``steps * step_s * slowdown``. One SGD step on a batch of b costs about 3x a forward pass
  (forward + backward ≈ 2x forward; Kaplan et al. 2020's 6N vs 2N FLOPs per token), so
  ``step_s = 3 * lk.estimate(profile, device, dtype, batch=b).latency_s`` and the step's energy is 3x the
  estimate's. ``slowdown`` is a seeded lognormal factor exp(N(0, sigma^2)), one per client per round: other
  apps, thermal throttling, a weak signal;
- upload: ``rtt/2 + 8 * bytes_up / uplink_bps``; radio energy ``8 * bytes_up * energy_j_per_bit``.

With a round deadline, a client that would finish late is dropped (FedAvg, FedSGD: the server stops waiting
at the deadline) or, for FedProx, sends what it managed: as many steps as fit before the deadline.

Each device trains at fp32 if the catalog gives it an fp32 peak, else fp16 (a phone's neural engine).


>>> import labkit as lk
>>> f = lk.federated.fleet(4, devices=["raspberry-pi-5", "a17"], links=["wifi", "lte"])
>>> [(c.device, c.link) for c in f.clients]
[('raspberry-pi-5', 'wifi'), ('apple-a17-neural-engine', 'wifi'), ('raspberry-pi-5', 'lte'), ('apple-a17-neural-engine', 'lte')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from labkit.args import check_int

TRAIN_FLOPS_FACTOR = 3.0          # one training step ≈ 3 forward passes


@dataclass(frozen=True)
class Client:
    """Where client k runs: its catalog device (by name), its link, the dtype it trains at."""

    index: int
    device: str
    link: str
    dtype: str


@dataclass(frozen=True)
class Timing:
    """A selected client's round on the simulated clock (see the module docstring)."""

    steps: int
    download_s: float
    compute_s: float
    upload_s: float
    finish_s: float
    dropped: bool
    energy_j: float
    slowdown: float


@dataclass(frozen=True)
class Fleet:
    """Clients placed on devices and links, with the straggler spread ``slowdown_sigma`` (lab 10)."""

    clients: tuple[Client, ...]
    slowdown_sigma: float = 0.0
    seed: int = 0

    def device(self, k: int):
        from labkit.targets import device

        return device(self.clients[k].device)

    def step(self, model, k: int, batch: int) -> tuple[float, float]:
        """``(seconds, joules)`` of one SGD step of ``model`` on a batch of ``batch`` on client k's device."""
        c = self.clients[k]
        return _step_cost(_model_key(model), c.device, c.dtype, batch, model)

    def timing(self, model, k: int, *, round: int, samples: int, epochs: int, batch: int | None,
               bytes_down: int, bytes_up: int, deadline_s: float | None, partial: bool) -> Timing:
        """Client k's round: download, ``epochs`` passes over ``samples`` in batches, upload; the deadline."""
        lk_ = _link(self.clients[k].link)
        b = samples if batch is None else min(batch, samples)
        planned = epochs * math.ceil(samples / b)
        step_s, step_j = self.step(model, k, b)
        rng = np.random.default_rng([self.seed, round, k, 7])
        slow = float(np.exp(rng.normal(0.0, self.slowdown_sigma))) if self.slowdown_sigma > 0 else 1.0
        down_s = lk_.rtt_s / 2 + lk_.download_s(bytes_down)
        up_s = lk_.rtt_s / 2 + lk_.upload_s(bytes_up)
        up_j = 8.0 * bytes_up * lk_.energy_j_per_bit
        steps, dropped = planned, False
        finish = down_s + planned * step_s * slow + up_s
        if deadline_s is not None and finish > deadline_s:
            fit = int(max(0.0, deadline_s - down_s - up_s) // (step_s * slow))
            if partial and fit >= 1:
                steps = min(fit, planned)
                finish = down_s + steps * step_s * slow + up_s
            else:                                  # cut off at the deadline: its compute so far is spent
                dropped = True
                steps = min(planned, int(max(0.0, deadline_s - down_s) // (step_s * slow)))
                return Timing(steps, down_s, steps * step_s * slow, 0.0, deadline_s, True, steps * step_j, slow)
        return Timing(steps, down_s, steps * step_s * slow, up_s, finish, dropped, steps * step_j + up_j, slow)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.clients]).set_index("index")


@lru_cache(maxsize=64)
def _link(name: str):
    from labkit.targets import link

    return link(name)


def _model_key(model):
    return model if isinstance(model, str) else id(model)


@lru_cache(maxsize=256)
def _step_cost(key, device_name: str, dtype: str, batch: int, model) -> tuple[float, float]:
    from labkit.estimate import estimate

    prof = _profile(key, model)
    est = estimate(prof, device_name, dtype=dtype, batch=batch)
    return TRAIN_FLOPS_FACTOR * est.latency_s, TRAIN_FLOPS_FACTOR * est.energy_j


@lru_cache(maxsize=8)
def _profile(key, model):
    import torch

    from labkit.federated.algorithms import module_for
    from labkit.profile import profile

    net = module_for(model)
    first = next(net.parameters())
    if isinstance(model, str):
        from labkit.zoo import example

        x = example(model, batch=1)
    else:
        x = torch.zeros(1, first.shape[1] if first.ndim == 2 else first.shape[0])
    return profile(net, x)


def _train_dtype(dev) -> str:
    for dtype in ("fp32", "fp16"):
        if dev.peak_flops.get(dtype):
            return dtype
    raise ValueError(f"device {dev.name!r} has no fp32 or fp16 peak to train at (it has "
                     f"{', '.join(dev.peak_flops)}); pick another device.")


def fleet(clients, devices=("raspberry-pi-5",), links=("wifi",), *, slowdown: float = 0.0, seed: int = 0) -> Fleet:
    """Place ``clients`` (a count or a Split) on ``devices`` and ``links``, cycling through every pair (lab 10).

    Client k gets ``devices[k % D]`` and ``links[(k // D) % L]``. ``slowdown`` is sigma of the lognormal
    straggler factor (0 = none; 0.5 = a typical client 1.0x, one in six ~1.65x or slower).

    >>> import labkit as lk
    >>> f = lk.federated.fleet(3, devices=["rpi5"], links=["lte"], slowdown=0.5)
    >>> f.clients[0].device, f.clients[0].link, f.clients[0].dtype
    ('raspberry-pi-5', 'lte', 'fp32')
    """
    from labkit.targets import device, link

    n = clients.clients if hasattr(clients, "clients") and not isinstance(clients, int) else clients
    check_int("clients", n, 1)
    check_int("seed", seed, 0)
    devices = [devices] if isinstance(devices, str) else list(devices)
    links = [links] if isinstance(links, str) else list(links)
    if not devices or not links:
        raise ValueError("fleet needs at least one device and one link (catalog names: lk.devices(), lk.links()).")
    if isinstance(slowdown, bool) or not isinstance(slowdown, (int, float)) or not 0 <= slowdown < 5:
        raise ValueError(f"slowdown is the lognormal sigma, a number in [0, 5), got {slowdown!r}.")
    devs = [device(d) for d in devices]           # unknown names raise with near matches
    lnks = [link(x) for x in links]
    placed = tuple(
        Client(k, devs[k % len(devs)].name, lnks[(k // len(devs)) % len(lnks)].name,
               _train_dtype(devs[k % len(devs)]))
        for k in range(n)
    )
    return Fleet(placed, float(slowdown), seed)
