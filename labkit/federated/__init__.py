"""``lk.federated``: federated learning across simulated edge clients, with every byte and joule counted (lab 10).

- :func:`split` deals a dataset to clients (iid, dirichlet, shards, quantity) and measures the label skew;
- :func:`fleet` puts the clients on catalog devices and links (times and energy from ``lk.estimate``/``lk.link``);
- :func:`fedsgd`, :func:`fedavg`, :func:`fedprox` (all through :func:`train`) run the rounds, in process or
  on Ray (``backend="ray"``), with :class:`Compression` (top-k with error feedback, int8) on the updates;
- :func:`aggregate` is FedAvg's weighted average, :func:`client_update` one client's local training;
- the :class:`Result` has a row per round (``to_frame``) and per client (``clients_frame``);
  ``lk.plot.accuracy_rounds``, ``lk.plot.label_mix`` and ``lk.plot.round_timeline`` draw them.

Layering: sits beside deploy; uses labkit.targets, labkit.estimate, labkit.profile, labkit.zoo, labkit.data,
labkit.carbon and labkit.cluster (Ray); nothing in labkit imports it but the learner's notebook.

>>> import labkit as lk
>>> s = lk.federated.split("digits", clients=10, scheme="dirichlet", alpha=0.3)
>>> s.clients, round(s.heterogeneity, 2) > 0.5
(10, True)
"""

from __future__ import annotations

from labkit.lazy import namespace

_API = {
    "split": "labkit.federated.split:split",
    "Split": "labkit.federated.split:Split",
    "SCHEMES": "labkit.federated.split:SCHEMES",
    "fleet": "labkit.federated.clients:fleet",
    "Fleet": "labkit.federated.clients:Fleet",
    "Client": "labkit.federated.clients:Client",
    "aggregate": "labkit.federated.algorithms:aggregate",
    "client_update": "labkit.federated.algorithms:client_update",
    "fedsgd": "labkit.federated.algorithms:fedsgd",
    "fedavg": "labkit.federated.algorithms:fedavg",
    "fedprox": "labkit.federated.algorithms:fedprox",
    "train": "labkit.federated.server:train",
    "Compression": "labkit.federated.compress:Compression",
    "Payload": "labkit.federated.compress:Payload",
    "Result": "labkit.federated.result:Result",
    "Round": "labkit.federated.result:Round",
    "ClientRound": "labkit.federated.result:ClientRound",
}

__all__ = sorted(_API)

# `split` shares its module's name: bound eagerly (split.py imports only numpy and labkit.args at import time).
from labkit.federated.split import split as split  # noqa: E402

__getattr__, __dir__ = namespace(globals(), _API, "lk.federated name")
