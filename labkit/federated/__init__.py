"""``lk.federated``: federated learning across simulated edge clients, with every byte and joule counted (lab 10).

- :func:`split` deals a dataset to clients (iid, dirichlet, shards, quantity) and measures the label skew;
- :func:`fleet` puts the clients on catalog devices and links (times and energy from ``lk.estimate``/``lk.link``);
- :func:`fedsgd`, :func:`fedavg`, :func:`fedprox` (all through :func:`train`) run the rounds, in process or
  on Ray (``backend="ray"``), with :class:`Compression` (top-k with error feedback, int8) on the updates;
- :func:`aggregate` is FedAvg's weighted average, :func:`client_update` one client's local training;
- the :class:`Result` has a row per round (``to_frame``) and per client (``clients_frame``);
  ``lk.plot.accuracy_rounds``, ``lk.plot.label_mix`` and ``lk.plot.round_timeline`` draw them.


>>> import labkit as lk
>>> s = lk.federated.split("digits", clients=10, scheme="dirichlet", alpha=0.3)
>>> s.clients, round(s.heterogeneity, 2) > 0.5
(10, True)
"""

from __future__ import annotations

from labkit.args import namespace
from labkit.federated.algorithms import aggregate, client_update, fedavg, fedprox, fedsgd
from labkit.federated.clients import Client, Fleet, fleet
from labkit.federated.compress import Compression, Payload
from labkit.federated.result import ClientRound, Result, Round
from labkit.federated.server import train
from labkit.federated.split import SCHEMES, Split, split

__all__ = ["Client", "ClientRound", "Compression", "Fleet", "Payload", "Result", "Round", "SCHEMES", "Split",
           "aggregate", "client_update", "fedavg", "fedprox", "fedsgd", "fleet", "split", "train"]

__getattr__, __dir__ = namespace("lk.federated", __all__)
