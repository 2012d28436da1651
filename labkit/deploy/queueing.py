"""Closed forms of queueing theory, beside the simulator (lab 07): Erlang C (M/M/c), Pollaczek–Khinchine (M/G/1,
M/D/1) and Little's law. The lab predicts with them first; the tests use them as oracles of lk.deploy.simulate.

"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.args import check_int, check_positive


@dataclass(frozen=True)
class Queue:
    """Steady-state figures of a queue: probability to wait, mean wait in the queue, mean response time."""

    rate_rps: float
    service_s: float
    servers: int
    utilization: float
    p_wait: float
    mean_wait_s: float
    mean_response_s: float

    @property
    def mean_in_system(self) -> float:
        """Little's law: rate x mean response time."""
        return self.rate_rps * self.mean_response_s


def _check(rate_rps, service_s, servers):
    rate = check_positive("rate_rps", rate_rps)
    svc = check_positive("service_s", service_s)
    c = check_int("servers", servers, 1)
    rho = rate * svc / c
    if rho >= 1:
        raise ValueError(f"the queue is unstable: utilisation rate_rps * service_s / servers = {rho:.3g} >= 1; "
                         "a steady state needs it below 1 (more servers, or a lower rate).")
    return rate, svc, c, rho


def erlang_c(rate_rps: float, service_s: float, servers: int = 1) -> Queue:
    """M/M/c: Poisson arrivals, exponential service of mean `service_s`, `servers` replicas (lab 07).

    ``P(wait) = C(c, a)`` with a = rate x service (Erlang C); mean wait ``C / (c/service - rate)``.

    >>> q = erlang_c(rate_rps=80, service_s=0.01, servers=1)      # M/M/1 at rho = 0.8
    >>> round(q.p_wait, 6), round(q.mean_wait_s, 6)               # rho, rho * s / (1 - rho)
    (0.8, 0.04)
    """
    rate, svc, c, rho = _check(rate_rps, service_s, servers)
    a = rate * svc
    # Erlang B by its stable recursion, then C = B / (1 - rho (1 - B))
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    p_wait = b / (1 - rho * (1 - b))
    wait = p_wait * svc / (c * (1 - rho))
    return Queue(rate, svc, c, rho, p_wait, wait, wait + svc)


def pollaczek_khinchine(rate_rps: float, service_s: float, scv: float = 0.0) -> Queue:
    """M/G/1 mean wait: ``rho * service_s * (1 + scv) / (2 (1 - rho))``; scv = squared coefficient of variation
    of the service time (0: deterministic, M/D/1; 1: exponential, M/M/1) (lab 07).

    >>> round(pollaczek_khinchine(80, 0.01).mean_wait_s, 6)       # M/D/1: half the M/M/1 wait
    0.02
    """
    rate, svc, _, rho = _check(rate_rps, service_s, 1)
    if not scv >= 0:
        raise ValueError(f"scv (squared coefficient of variation) must be >= 0, got {scv!r}.")
    wait = rho * svc * (1 + scv) / (2 * (1 - rho))
    return Queue(rate, svc, 1, rho, rho, wait, wait + svc)


def md1(rate_rps: float, service_s: float) -> Queue:
    """M/D/1: Poisson arrivals, a fixed service time, one server (Pollaczek–Khinchine with scv = 0) (lab 07).

    >>> md1(50, 0.01).mean_wait_s
    0.005
    """
    return pollaczek_khinchine(rate_rps, service_s, 0.0)


def little(*, rate_rps: float | None = None, latency_s: float | None = None,
           in_system: float | None = None) -> float:
    """Little's law ``L = lambda W``: give two of rate_rps, latency_s, in_system; returns the third (lab 07).

    >>> little(rate_rps=200, latency_s=0.05)       # requests in the system on average
    10.0
    >>> little(in_system=10, rate_rps=200)          # mean latency, seconds
    0.05
    """
    given = {k: v for k, v in (("rate_rps", rate_rps), ("latency_s", latency_s), ("in_system", in_system))
             if v is not None}
    if len(given) != 2:
        raise ValueError(f"little() needs exactly two of rate_rps, latency_s, in_system; got {sorted(given)}.")
    for k, v in given.items():
        check_positive(k, v)
    if in_system is None:
        return rate_rps * latency_s
    if latency_s is None:
        return in_system / rate_rps
    return in_system / latency_s
