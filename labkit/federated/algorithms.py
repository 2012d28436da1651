"""FedSGD, FedAvg and FedProx: what a client computes, how the server combines it, and the three entry points.

McMahan et al. (AISTATS 2017), "Communication-Efficient Learning of Deep Networks from Decentralized Data":

- each round the server sends the global weights w to a fraction C of the K clients;
- client k runs E epochs of minibatch SGD (batch B) on its n_k samples, starting from w -> w_k;
- the server sets ``w <- sum_k (n_k / n) w_k`` (n = the selected clients' samples): :func:`aggregate`.

FedSGD is FedAvg with E = 1 and B = the client's whole dataset: one gradient step per client, so the average
is one full-batch gradient step on the selected clients' union. FedProx (Li et al., MLSys 2020) adds
``mu/2 ||w - w_global||^2`` to each client's loss (pulls local models back) and accepts partial work from
slow clients instead of dropping them.

Weights travel as one flat float32 vector (``torch.nn.utils.parameters_to_vector`` order); an update is
``w_k - w``, compressed by labkit.federated.compress before it goes up.


>>> import numpy as np
>>> aggregate([np.array([1.0, 1.0]), np.array([4.0, 0.0])], sizes=[2, 1]).tolist()   # (2*[1,1] + [4,0]) / 3
[2.0, 0.6666666865348816]
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from labkit.federated.compress import Compression, Payload


@dataclass(frozen=True)
class ClientUpdate:
    """What a client returns: the compressed delta, its error-feedback residual, steps done, mean train loss."""

    payload: Payload
    residual: np.ndarray | None
    steps: int
    loss: float


def aggregate(vectors, sizes) -> np.ndarray:
    """FedAvg's server step: the average of ``vectors`` weighted by the clients' sample counts ``sizes``.

    >>> import numpy as np
    >>> aggregate([np.zeros(3), np.ones(3)], sizes=[1, 3]).tolist()
    [0.75, 0.75, 0.75]
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    if len(vectors) == 0 or len(vectors) != len(sizes) or (sizes <= 0).any():
        raise ValueError(f"aggregate needs one positive size per vector, got {len(vectors)} vectors and "
                         f"sizes {sizes.tolist()}.")
    weights = sizes / sizes.sum()
    total = np.zeros_like(np.asarray(vectors[0], dtype=np.float64))
    for p, v in zip(weights, vectors):
        total += p * np.asarray(v, dtype=np.float64)
    return total.astype(np.float32)


@lru_cache(maxsize=8)
def _zoo_module(name: str):
    from labkit.zoo import build

    return build(name)


def module_for(model):
    """The torch module to train: a zoo model built by name (cached per process), or the module given."""
    return _zoo_module(model) if isinstance(model, str) else model


@contextlib.contextmanager
def _one_thread():
    # one intra-op thread everywhere: the same float sums in this process and in a Ray worker (bit-identical)
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def client_update(model, weights: np.ndarray, x: np.ndarray, y: np.ndarray, *, epochs: int, batch: int | None,
                  lr: float, mu: float = 0.0, seed=0, max_steps: int | None = None,
                  compression: Compression | None = None, residual: np.ndarray | None = None) -> ClientUpdate:
    """One client's round: start at the global ``weights``, run local SGD, return the compressed update.

    ``epochs`` passes over (x, y) in minibatches of ``batch`` (None = the whole client dataset), shuffled by
    ``seed``; FedProx's proximal term when ``mu > 0``; stop after ``max_steps`` steps (partial work).
    """
    import torch
    from torch.nn.utils import parameters_to_vector, vector_to_parameters

    net = module_for(model)
    compression = compression or Compression()
    rng = np.random.default_rng(seed)
    n = len(y)
    b = n if batch is None else min(batch, n)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    params = list(net.parameters())
    w0 = torch.from_numpy(np.array(weights, dtype=np.float32))
    steps, losses = 0, []
    with _one_thread():
        vector_to_parameters(w0.clone(), params)
        net.train()
        budget = np.inf if max_steps is None else max_steps
        for _ in range(epochs):
            order = rng.permutation(n) if b < n else np.arange(n)
            for start in range(0, n, b):
                if steps >= budget:
                    break
                idx = torch.from_numpy(order[start:start + b])
                loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
                if mu > 0:   # FedProx: mu/2 ||w - w_global||^2
                    loss = loss + 0.5 * mu * (parameters_to_vector(params) - w0).pow(2).sum()
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    for p, g in zip(params, grads):
                        p.sub_(lr * g)                              # plain SGD, as in McMahan et al.
                steps += 1
                losses.append(float(loss.detach()))
        delta = (parameters_to_vector(params).detach() - w0).numpy()
    payload, residual = compression.encode(delta, residual)
    return ClientUpdate(payload, residual, steps, float(np.mean(losses)) if losses else float("nan"))


def fedavg(split, *, rounds: int = 20, fraction: float = 0.1, epochs: int = 5, batch: int | None = 10,
           lr: float = 0.1, **kwargs):
    """Federated averaging (McMahan et al. 2017): C = ``fraction``, E = ``epochs``, B = ``batch`` (lab 10).

    Late clients (``deadline_s=``) are dropped. Other keywords go to :func:`labkit.federated.train`
    (fleet, compression, backend, seed, ...).

    >>> import labkit as lk
    >>> s = lk.federated.split("digits", clients=10, scheme="iid")
    >>> r = lk.federated.fedavg(s, rounds=3, fraction=0.5, progress=False)
    >>> r.accuracy > 0.5
    True
    """
    from labkit.federated.server import train

    return train(split, algorithm="fedavg", rounds=rounds, fraction=fraction, epochs=epochs, batch=batch,
                 lr=lr, **kwargs)


def fedsgd(split, *, rounds: int = 20, fraction: float = 0.1, lr: float = 0.5, **kwargs):
    """FedSGD: each selected client takes one full-batch gradient step; the server averages (lab 10).

    >>> import labkit as lk
    >>> s = lk.federated.split("digits", clients=10, scheme="iid")
    >>> lk.federated.fedsgd(s, rounds=2, fraction=1.0, progress=False).rounds[-1].clients_used
    10
    """
    from labkit.federated.server import train

    return train(split, algorithm="fedsgd", rounds=rounds, fraction=fraction, epochs=1, batch=None, lr=lr,
                 **kwargs)


def fedprox(split, *, mu: float = 0.01, rounds: int = 20, fraction: float = 0.1, epochs: int = 5,
            batch: int | None = 10, lr: float = 0.1, **kwargs):
    """FedProx (Li et al. 2020): FedAvg plus ``mu/2 ||w - w_global||^2``; late clients send partial work (lab 10).

    >>> import labkit as lk
    >>> s = lk.federated.split("digits", clients=10, scheme="shards")
    >>> lk.federated.fedprox(s, mu=0.1, rounds=2, progress=False).algorithm
    'fedprox'
    """
    from labkit.federated.server import train

    return train(split, algorithm="fedprox", rounds=rounds, fraction=fraction, epochs=epochs, batch=batch,
                 lr=lr, mu=mu, **kwargs)
