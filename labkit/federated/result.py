"""What a federated run returns: one row per round, one per client per round, and totals (lab 10).


Times are simulated seconds on the clients' catalog devices and links (labkit.federated.clients), not the
seconds this machine took; energies are joules on the client devices (compute + radio for the upload).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ClientRound:
    """One selected client in one round: where it ran, what it did, when it finished, what it cost."""

    round: int
    client: int
    device: str
    link: str
    samples: int
    steps: int                 # local SGD steps done (fewer than planned: FedProx partial work)
    planned_steps: int
    slowdown: float            # the seeded lognormal factor on its compute time
    download_s: float
    compute_s: float
    upload_s: float
    finish_s: float            # download + compute + upload (or when it was cut off)
    dropped: bool              # missed the deadline and its update was not used
    bytes_up: int
    bytes_down: int
    energy_j: float            # compute + upload radio


@dataclass(frozen=True)
class Round:
    """One round: global accuracy/loss after it, who took part, the bytes, the round's time and energy."""

    round: int
    accuracy: float
    loss: float
    clients_used: int
    clients_dropped: int
    bytes_up: int
    bytes_down: int
    round_s: float             # slowest used client, or the deadline when someone was dropped
    energy_j: float


@dataclass(frozen=True)
class Result:
    """A federated training run: ``rounds`` (per round), ``clients`` (per client per round), final ``weights``.

    >>> import labkit as lk
    >>> s = lk.federated.split("digits", clients=4, scheme="iid")
    >>> r = lk.federated.fedavg(s, rounds=2, fraction=1.0, epochs=1, batch=32, progress=False)
    >>> len(r.to_frame()), r.bytes_up == 2 * 4 * 50826 * 4
    (2, True)
    """

    algorithm: str
    backend: str
    parameters: int
    rounds: tuple[Round, ...] = field(repr=False)
    clients: tuple[ClientRound, ...] = field(repr=False)
    weights: np.ndarray = field(repr=False)
    config: dict = field(repr=False, default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Test accuracy after the last round."""
        return self.rounds[-1].accuracy

    @property
    def bytes_up(self) -> int:
        return sum(r.bytes_up for r in self.rounds)

    @property
    def bytes_down(self) -> int:
        return sum(r.bytes_down for r in self.rounds)

    @property
    def time_s(self) -> float:
        """Simulated wall time: the rounds one after another."""
        return float(sum(r.round_s for r in self.rounds))

    @property
    def energy_j(self) -> float:
        return float(sum(r.energy_j for r in self.rounds))

    def carbon_g(self, region: str = "world") -> float:
        """Grams CO2e of the clients' energy on the grid of ``region`` (edge devices: PUE 1)."""
        from labkit.carbon import carbon_g

        return carbon_g(self.energy_j, region)

    def rounds_to(self, target: float) -> int | None:
        """The first round (1-based) whose accuracy reaches ``target``, or None if none did."""
        for r in self.rounds:
            if r.accuracy >= target:
                return r.round
        return None

    def bytes_to(self, target: float) -> int | None:
        """Bytes sent up until the accuracy first reached ``target``, or None."""
        n = self.rounds_to(target)
        return None if n is None else sum(r.bytes_up for r in self.rounds[:n])

    def to_frame(self):
        """One row per round (pandas), with cumulative bytes up."""
        import pandas as pd

        frame = pd.DataFrame([r.__dict__ for r in self.rounds]).set_index("round")
        frame["cum_bytes_up"] = frame["bytes_up"].cumsum()
        return frame

    def clients_frame(self):
        """One row per selected client per round (pandas): device, link, steps, times, bytes, energy."""
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.clients])

    def __repr__(self) -> str:
        dropped = sum(r.clients_dropped for r in self.rounds)
        return (f"Result({self.algorithm} on {self.backend}, {len(self.rounds)} rounds, {self.parameters:,} "
                f"parameters: accuracy {self.accuracy:.3f}, up {self.bytes_up / 1e6:.3g} MB, down "
                f"{self.bytes_down / 1e6:.3g} MB, {self.time_s:.3g} s simulated, {self.energy_j:.3g} J on clients, "
                f"{dropped} client-rounds dropped)")
