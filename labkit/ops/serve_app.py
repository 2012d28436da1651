"""The Ray Serve application a spec deploys (lab 11): what ``import_path: labkit.ops.serve_app:app`` in
`lk.ops.serve_config` names, and what `lk.ops.RayServeBackend` runs, one Serve application per pool.

A replica is a cheap callable, not the model: it sleeps out the pool's service time (``user_config["service_s"]``,
which the backend takes from lab 07's simulator for the pool's model on its device, DEFAULT_SERVICE_S when a
config does not give it), one request at a time (an asyncio lock), so requests queue at a busy replica as on a
real device. Why not the model itself: each replica is its own Ray worker process, and onnxruntime or torch in
every one of them would cost ~100-300 MB each and the shared CPU time, for a lab that is about operating the
fleet, not about the model's arithmetic (lab 07's ``lk.deploy.serve`` runs the ONNX model). Batching settings
travel in the config but this replica serves requests one by one.

>>> from labkit.ops import serve_app
>>> r = serve_app.Replica(); r.reconfigure({"service_s": 0.002, "device": "l4"}); r.service_s
0.002
>>> built = serve_app.app({"pools": ["gpu", "cpu"]})          # what `serve deploy` builds from the config
>>> type(built).__name__
'Application'
"""

from __future__ import annotations

import asyncio
import itertools

DEFAULT_SERVICE_S = 0.005      # a config without a service time (``serve deploy`` of the exported file)


class Replica:
    """One replica of a pool: answers after the pool's service time, requests served one at a time."""

    def __init__(self):
        self.config: dict = {}
        self.service_s = DEFAULT_SERVICE_S
        self._lock = None

    def reconfigure(self, user_config: dict) -> None:
        """Serve calls this with the deployment's ``user_config`` at start and on every config update."""
        self.config = dict(user_config or {})
        self.service_s = float(self.config.get("service_s") or DEFAULT_SERVICE_S)

    async def __call__(self, request=None):
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await asyncio.sleep(self.service_s)
        return request


class Router:
    """The ingress of a several-pool application (``serve deploy`` of the exported config): round-robin."""

    def __init__(self, *pools):
        self.pools = pools
        self._next = itertools.cycle(range(len(pools)))

    async def __call__(self, request=None):
        return await self.pools[next(self._next)].remote(request)


def deployment(name: str, **options):
    """`Replica` as a Serve deployment called `name`, with Serve's `options` (num_replicas, user_config, ...).
    Replicas ask for no CPU (they mostly sleep, so a 2-core machine holds several) and stop within 2 s."""
    from ray import serve

    options.setdefault("ray_actor_options", {"num_cpus": 0})
    options.setdefault("graceful_shutdown_wait_loop_s", 0.2)   # a replica holds at most a few sleeps: stop fast
    options.setdefault("graceful_shutdown_timeout_s", 2.0)
    return serve.deployment(Replica).options(name=name, **options)


def app(args: dict):
    """Serve's application builder: ``args = {"pools": [names]}`` (the config's ``args``) -> the Application,
    one deployment per pool, named after it (the config's ``deployments`` entries set their options); several
    pools sit behind a round-robin Router."""
    from ray import serve

    names = list((args or {}).get("pools") or [])
    if not names:
        raise ValueError("the labkit app needs args: {pools: [pool names]} (lk.ops.serve_config writes it).")
    pools = [deployment(n).bind() for n in names]
    if len(pools) == 1:
        return pools[0]
    return serve.deployment(Router).options(name="router", ray_actor_options={"num_cpus": 0}).bind(*pools)
