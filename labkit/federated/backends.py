"""Where client updates run: in this process (default) or as Ray tasks, with the same numbers either way (lab 10).

Both backends call the same ``labkit.federated.algorithms.client_update`` with the same arguments and seeds,
one torch thread per client, and hand the updates back in the order the clients were selected, so the server
aggregates the same floats in the same order: the same seed gives bit-identical global weights.

Ray: the cluster comes from ``labkit.cluster.ray_cluster`` (started small and shut down at the end, or joined at
``address=``). The training data goes into the object store once per run and the global weights once per
round (``ray.put``); each client is a task with an explicit ``num_cpus=1``, so two run at once on 2 cores.

"""

from __future__ import annotations

import contextlib

from labkit.args import unknown_name
from labkit.federated.algorithms import client_update

BACKENDS = ("inprocess", "ray")


class InProcess:
    """Run client updates one after another in this process."""

    name = "inprocess"

    def __init__(self, x, y):
        self.x, self.y = x, y

    def round(self, model, weights, jobs):
        """``jobs``: one dict per client with ``indices`` and client_update's keywords; returns the updates."""
        return [client_update(model, weights, self.x[j["indices"]], self.y[j["indices"]], **j["kwargs"])
                for j in jobs]


def _ray_client(model, weights, x, y, indices, kwargs):
    return client_update(model, weights, x[indices], y[indices], **kwargs)


class OnRay:
    """Run client updates as Ray tasks (``num_cpus`` each), data and weights through the object store."""

    name = "ray"

    def __init__(self, ray, x, y, num_cpus: int = 1):
        self.ray = ray
        self.x_ref, self.y_ref = ray.put(x), ray.put(y)          # once per run
        self.task = ray.remote(num_cpus=num_cpus, max_retries=0)(_ray_client)

    def round(self, model, weights, jobs):
        w_ref = self.ray.put(weights)                            # once per round, shared by every client
        refs = [self.task.remote(model, w_ref, self.x_ref, self.y_ref, j["indices"], j["kwargs"]) for j in jobs]
        return self.ray.get(refs)                                # in submission order


@contextlib.contextmanager
def backend(name: str, x, y, *, address: str | None = None, num_cpus: int = 2):
    """Yield a backend for a run: ``"inprocess"`` or ``"ray"`` (a local cluster of ``num_cpus``, or ``address``)."""
    if name not in BACKENDS:
        raise unknown_name("backend", name, BACKENDS)
    if name == "inprocess":
        if address is not None:
            raise ValueError("address= is for backend='ray'; the in-process backend runs here.")
        yield InProcess(x, y)
        return
    cluster, ray = _start_ray(num_cpus, address)
    try:
        yield OnRay(ray, x, y)
    finally:
        cluster.__exit__(None, None, None)


STARTS = 3   # Ray gives its raylet a fixed 30 s to register: a busy 2-core machine can miss it, so try again


def _start_ray(num_cpus: int, address: str | None):
    """Enter ``labkit.cluster.ray_cluster``; retry when Ray's node start-up times out on a loaded machine."""
    from labkit.cluster import ray_cluster

    for attempt in range(1, STARTS + 1):
        cluster = ray_cluster(num_cpus=num_cpus, address=address)
        try:
            return cluster, cluster.__enter__()
        except Exception as err:
            if "timed out during startup" not in str(err) or attempt == STARTS:
                raise
            import ray

            ray.shutdown()          # whatever the failed start left behind
