"""The server's round loop: select clients, time them on the fleet, run them on a backend, aggregate (lab 10).

One round r (seeded by ``(seed, r)``, so a run is reproducible and the same on every backend):

1. select ``m = max(1, round(C * K))`` clients without replacement;
2. time each on the fleet (labkit.federated.clients): planned steps, deadline -> dropped or partial work;
3. run the kept clients' local updates on the backend (labkit.federated.backends);
4. decode their payloads and set ``w <- w + sum_k (n_k / n) delta_k`` over the clients used (FedAvg's average);
5. evaluate the new global model on the test data.

"""

from __future__ import annotations

import numpy as np

from labkit.args import check_int, check_positive, unknown_name
from labkit.federated.algorithms import _one_thread, aggregate, module_for
from labkit.federated.compress import Compression
from labkit.federated.result import ClientRound, Result, Round

ALGORITHMS = ("fedsgd", "fedavg", "fedprox")


def _evaluate(net, weights, x, y) -> tuple[float, float]:
    import torch
    from torch.nn.utils import vector_to_parameters

    with torch.no_grad(), _one_thread():
        vector_to_parameters(torch.from_numpy(weights.copy()), list(net.parameters()))
        net.eval()
        logits = net(torch.from_numpy(x))
        yt = torch.from_numpy(y)
        loss = float(torch.nn.functional.cross_entropy(logits, yt))
        return float((logits.argmax(dim=1) == yt).float().mean()), loss


def _test_data(test, split):
    if test is None:
        return split.x, split.y
    if isinstance(test, str):
        if test != "digits":
            raise unknown_name("test set", test, ["digits"])
        from labkit.zoo.data import for_model

        x, y = for_model("mlp", "test")
        return x.numpy(), y.numpy()
    x, y = test
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y, dtype=np.int64)
    return x.reshape(len(x), -1), y


def _initial_weights(model, seed: int) -> np.ndarray:
    from torch.nn.utils import parameters_to_vector

    if isinstance(model, str):
        from labkit.zoo import build

        net = build(model, seed=seed)
    else:
        net = model
    return parameters_to_vector(net.parameters()).detach().numpy().astype(np.float32).copy()


def _check(algorithm, rounds, fraction, epochs, batch, lr, mu, deadline_s, compression):
    if algorithm not in ALGORITHMS:
        raise unknown_name("algorithm", algorithm, ALGORITHMS)
    check_int("rounds", rounds, 1)
    check_int("epochs", epochs, 1)
    if batch is not None:
        check_int("batch", batch, 1)
    ok = isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0 < fraction <= 1
    if not ok:
        raise ValueError(f"fraction C (share of clients per round) must be in (0, 1], got {fraction!r}.")
    check_positive("lr", lr)
    if isinstance(mu, bool) or not isinstance(mu, (int, float)) or mu < 0:
        raise ValueError(f"mu (FedProx's proximal weight) must be a number >= 0, got {mu!r}.")
    if deadline_s is not None:
        check_positive("deadline_s", deadline_s)
    if compression is not None and not isinstance(compression, Compression):
        raise ValueError("compression must be lk.federated.Compression(topk=..., int8=...) or None.")


def train(split, *, algorithm: str = "fedavg", rounds: int = 20, fraction: float = 0.1, epochs: int = 5,
          batch: int | None = 10, lr: float = 0.1, mu: float = 0.0, compression: Compression | None = None,
          fleet=None, deadline_s: float | None = None, backend: str = "inprocess", address: str | None = None,
          num_cpus: int = 2, model="mlp", test="digits", seed: int = 0, progress: bool = True) -> Result:
    """Train ``model`` (a zoo name or a torch module) federated over ``split``'s clients (lab 10).

    ``fedavg`` / ``fedsgd`` / ``fedprox`` call this with their settings. ``fleet`` (default: every client a
    Raspberry Pi 5 on Wi-Fi) sets the simulated times and energies; ``deadline_s`` drops late clients (FedProx
    takes their partial work); ``backend="ray"`` runs clients as Ray tasks (``address=`` joins a cluster).

    >>> import labkit as lk
    >>> s = lk.federated.split("digits", clients=5)
    >>> a = lk.federated.train(s, rounds=2, fraction=0.4, progress=False)
    >>> b = lk.federated.train(s, rounds=2, fraction=0.4, progress=False)
    >>> bool((a.weights == b.weights).all())
    True
    """
    from tqdm.auto import tqdm

    from labkit.federated.backends import backend as open_backend
    from labkit.federated.clients import Fleet
    from labkit.federated.clients import fleet as make_fleet

    _check(algorithm, rounds, fraction, epochs, batch, lr, mu, deadline_s, compression)
    check_int("seed", seed, 0)
    if not hasattr(split, "indices"):
        raise ValueError("train takes a Split from lk.federated.split(...).")
    fleet = make_fleet(split.clients) if fleet is None else fleet
    if not isinstance(fleet, Fleet) or len(fleet.clients) != split.clients:
        raise ValueError(f"fleet must be lk.federated.fleet(...) with one entry per client ({split.clients}).")
    compression = compression or Compression()
    if not isinstance(model, str):
        import copy

        model = copy.deepcopy(model)
    net = module_for(model)
    x_test, y_test = _test_data(test, split)
    weights = _initial_weights(model, seed)
    n_params = weights.size
    sizes = split.sizes
    m = max(1, int(round(fraction * split.clients)))
    partial = algorithm == "fedprox"
    residuals: dict[int, np.ndarray | None] = {}
    rows, client_rows = [], []
    with open_backend(backend, split.x, split.y, address=address, num_cpus=num_cpus) as runner:
        for r in tqdm(range(1, rounds + 1), desc=f"{algorithm} rounds", disable=not progress):
            rng = np.random.default_rng([seed, r])
            chosen = sorted(int(k) for k in rng.choice(split.clients, size=m, replace=False))
            bytes_down = n_params * 4                              # the global weights, float32
            bytes_up = compression.payload_bytes(n_params)
            timings = {k: fleet.timing(model, k, round=r, samples=sizes[k], epochs=epochs, batch=batch,
                                       bytes_down=bytes_down, bytes_up=bytes_up, deadline_s=deadline_s,
                                       partial=partial) for k in chosen}
            used = [k for k in chosen if not timings[k].dropped]
            jobs = [{"indices": split.indices[k],
                     "kwargs": dict(epochs=epochs, batch=batch, lr=lr, mu=mu, seed=[seed, r, k],
                                    max_steps=timings[k].steps, compression=compression,
                                    residual=residuals.get(k))} for k in used]
            updates = runner.round(model, weights, jobs) if used else []
            for k, u in zip(used, updates):
                residuals[k] = u.residual
                assert u.payload.bytes == bytes_up, "payload size differs from the planned bytes"
            if updates:
                delta = aggregate([u.payload.decode() for u in updates], [sizes[k] for k in used])
                weights = (weights + delta).astype(np.float32)
            acc, loss = _evaluate(net, weights, x_test, y_test)
            for k in chosen:
                t = timings[k]
                client_rows.append(ClientRound(
                    r, k, fleet.clients[k].device, fleet.clients[k].link, sizes[k], t.steps,
                    epochs * -(-sizes[k] // (sizes[k] if batch is None else min(batch, sizes[k]))),
                    t.slowdown, t.download_s, t.compute_s, t.upload_s, t.finish_s, t.dropped,
                    0 if t.dropped else bytes_up, bytes_down, t.energy_j))
            dropped = len(chosen) - len(used)
            round_s = deadline_s if (dropped and deadline_s) else max(timings[k].finish_s for k in used)
            rows.append(Round(r, acc, loss, len(used), dropped, bytes_up * len(used), bytes_down * len(chosen),
                              float(round_s), float(sum(timings[k].energy_j for k in chosen))))
        name = runner.name
    config = dict(rounds=rounds, fraction=fraction, epochs=epochs, batch=batch, lr=lr, mu=mu,
                  compression=compression, deadline_s=deadline_s, seed=seed, clients=split.clients,
                  scheme=split.scheme)
    return Result(algorithm, name, n_params, tuple(rows), tuple(client_rows), weights, config)
