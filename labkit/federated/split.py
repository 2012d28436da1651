"""Split one dataset across federated clients, IID or skewed, and measure the skew (lab 10).

Schemes (K clients, C classes, N samples):

- ``"iid"``: shuffle, then K near-equal parts: every client sees the global label mix.
- ``"dirichlet"``: label skew. For each class, its samples are dealt to the clients in proportions drawn from
  Dirichlet(alpha, ..., alpha): alpha -> 0 gives one class per client, alpha -> inf gives IID.
- ``"shards"``: McMahan et al. (AISTATS 2017): sort by label, cut into ``K * shards_per_client`` equal shards,
  give each client ``shards_per_client`` of them at random (2 shards: most clients see only 2 classes).
- ``"quantity"``: quantity skew. The label mix stays global but client sizes follow Dirichlet(alpha).

Heterogeneity is Zhao et al.'s (2018, "Federated Learning with Non-IID Data") earth mover's distance between a
client's label distribution p_k and the global one p: ``EMD_k = sum_c |p_k(c) - p(c)|`` (0 = the global mix,
2 = disjoint), averaged over clients, unweighted.


>>> import labkit as lk
>>> s = lk.federated.split("digits", clients=10, scheme="shards", seed=0)
>>> len(s.sizes), sum(s.sizes), s.heterogeneity > 1.0
(10, 1437, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labkit.args import check_int, check_positive, unknown_name

SCHEMES = ("iid", "dirichlet", "shards", "quantity")


@dataclass(frozen=True)
class Split:
    """Data dealt to clients: ``x``, ``y`` (all of it) and ``indices[k]`` (client k's rows), plus the skew.

    ``label_counts`` is a (clients, classes) int array; ``heterogeneity`` the mean EMD to the global mix.
    """

    scheme: str
    x: np.ndarray = field(repr=False)            # (N, features) float32
    y: np.ndarray = field(repr=False)            # (N,) int64
    indices: tuple[np.ndarray, ...] = field(repr=False)
    num_classes: int
    alpha: float | None = None
    seed: int = 0

    @property
    def clients(self) -> int:
        return len(self.indices)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Samples per client."""
        return tuple(len(i) for i in self.indices)

    def client(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Client k's ``(x, y)``."""
        idx = self.indices[k]
        return self.x[idx], self.y[idx]

    @property
    def label_counts(self) -> np.ndarray:
        """(clients, classes) count of each label at each client."""
        return np.stack([np.bincount(self.y[i], minlength=self.num_classes) for i in self.indices])

    @property
    def emd(self) -> np.ndarray:
        """Per client: ``sum_c |p_k(c) - p(c)|`` against the global label distribution, in [0, 2]."""
        counts = self.label_counts
        p_k = counts / counts.sum(axis=1, keepdims=True)
        p = np.bincount(self.y, minlength=self.num_classes) / len(self.y)
        return np.abs(p_k - p).sum(axis=1)

    @property
    def heterogeneity(self) -> float:
        """Mean earth mover's distance of the clients' label mixes to the global one (0 = IID, 2 = disjoint)."""
        return float(self.emd.mean())

    def to_frame(self):
        """One row per client: size, number of classes present, EMD, and the count of each label (pandas)."""
        import pandas as pd

        counts = self.label_counts
        frame = pd.DataFrame(counts, columns=[f"label_{c}" for c in range(self.num_classes)])
        frame.insert(0, "emd", self.emd)
        frame.insert(0, "classes", (counts > 0).sum(axis=1))
        frame.insert(0, "samples", counts.sum(axis=1))
        frame.index.name = "client"
        return frame

    def __repr__(self) -> str:
        sizes = self.sizes
        alpha = f", alpha={self.alpha:g}" if self.alpha is not None else ""
        return (f"Split({self.scheme}{alpha}: {self.clients} clients, {sum(sizes)} samples, "
                f"{min(sizes)}-{max(sizes)} per client, heterogeneity (mean EMD) {self.heterogeneity:.3f})")


def _dataset(dataset) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(dataset, str):
        if dataset != "digits":
            raise unknown_name("dataset", dataset, ["digits"])
        from labkit.zoo.data import for_model

        x, y = for_model("mlp", "train")                     # (1437, 64), (1437,)
    elif isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        x, y = dataset
    else:
        raise ValueError("dataset must be 'digits' or a pair (x, y) of arrays/tensors with one row per sample, "
                         f"got {type(dataset).__name__}.")
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
    if x.ndim < 1 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"dataset x and y need the same non-zero number of rows, got {x.shape} and {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("dataset labels y must be integers >= 0 (class ids).")
    return x.reshape(len(x), -1), y.astype(np.int64)


def _no_empty(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Give each empty client one sample taken from the largest client (Dirichlet draws can leave some empty)."""
    parts = [p.copy() for p in parts]
    for k in range(len(parts)):
        if len(parts[k]) == 0:
            big = max(range(len(parts)), key=lambda j: len(parts[j]))
            parts[k], parts[big] = parts[big][-1:], parts[big][:-1]
    return parts


def _dirichlet_labels(y, clients, alpha, rng) -> list[np.ndarray]:
    parts: list[list[np.ndarray]] = [[] for _ in range(clients)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        share = rng.dirichlet(np.full(clients, alpha))                  # (clients,) sums to 1
        cuts = (np.cumsum(share)[:-1] * len(idx)).astype(int)
        for k, part in enumerate(np.split(idx, cuts)):
            parts[k].append(part)
    return _no_empty([np.concatenate(p) for p in parts])


def _quantity(n, clients, alpha, rng) -> list[np.ndarray]:
    order = rng.permutation(n)
    share = rng.dirichlet(np.full(clients, alpha))
    cuts = (np.cumsum(share)[:-1] * n).astype(int)
    return _no_empty(np.split(order, cuts))


def _shards(y, clients, per_client, rng) -> list[np.ndarray]:
    order = np.argsort(y, kind="stable")                               # sorted by label
    shards = np.array_split(order, clients * per_client)
    deal = rng.permutation(len(shards)).reshape(clients, per_client)
    return [np.concatenate([shards[s] for s in row]) for row in deal]


def split(dataset="digits", clients: int = 10, scheme: str = "iid", alpha: float | None = None, seed: int = 0,
          *, shards_per_client: int = 2) -> Split:
    """Deal ``dataset`` ('digits' = the bundled training digits, or ``(x, y)``) to ``clients`` (lab 10).

    ``alpha`` (dirichlet and quantity only; default 0.5) sets the skew: smaller is more skewed. The same seed
    gives the same split on every machine (numpy's PCG64).

    >>> import labkit as lk
    >>> iid = lk.federated.split("digits", clients=20, scheme="iid")
    >>> skew = lk.federated.split("digits", clients=20, scheme="dirichlet", alpha=0.1)
    >>> iid.heterogeneity < 0.5 < skew.heterogeneity
    True
    """
    if scheme not in SCHEMES:
        raise unknown_name("scheme", scheme, SCHEMES)
    check_int("clients", clients, 1)
    check_int("seed", seed, 0)
    check_int("shards_per_client", shards_per_client, 1)
    if scheme in ("dirichlet", "quantity"):
        alpha = 0.5 if alpha is None else check_positive("alpha", alpha)
    elif alpha is not None:
        raise ValueError(f"alpha is for the 'dirichlet' and 'quantity' schemes, not {scheme!r}; leave it out.")
    x, y = _dataset(dataset)
    n = len(y)
    need = clients * shards_per_client if scheme == "shards" else clients
    if need > n:
        what = f"{clients} clients x {shards_per_client} shards" if scheme == "shards" else f"{clients} clients"
        raise ValueError(f"{what} need at least {need} samples; the dataset has {n}. Use at most "
                         f"{n // (shards_per_client if scheme == 'shards' else 1)} clients.")
    rng = np.random.default_rng([seed, SCHEMES.index(scheme)])
    if scheme == "iid":
        parts = np.array_split(rng.permutation(n), clients)
    elif scheme == "dirichlet":
        parts = _dirichlet_labels(y, clients, alpha, rng)
    elif scheme == "shards":
        parts = _shards(y, clients, shards_per_client, rng)
    else:
        parts = _quantity(n, clients, alpha, rng)
    indices = tuple(np.sort(p).astype(np.int64) for p in parts)
    return Split(scheme, x, y, indices, int(y.max()) + 1, alpha, seed)
