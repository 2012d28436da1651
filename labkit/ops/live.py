"""The Ray Serve backend (lab 11): `apply` deploys each pool as a Serve application on a real (local) Ray, and
the refresh step reads what the Serve controller is really running, so a change made by hand with Ray's own
API (``serve.run`` with another ``num_replicas``, ``serve.delete``) shows up as drift in the next plan.

One Serve application per pool, named after it, no HTTP proxy (requests go through DeploymentHandles);
replicas are `labkit.ops.serve_app.Replica` (they sleep out the pool's simulated service time). `read()`
rebuilds each pool's attributes from the controller's applied deployment config: ``num_replicas``,
``max_ongoing_requests``, ``autoscaling_config`` and the ``user_config`` that carries model, device, region,
dtype and batching. Applications without a labkit ``user_config`` are not reported (not labkit's).

>>> import labkit as lk
>>> b = lk.ops.RayServeBackend()         # starts nothing until first used
>>> b.name
'ray-serve'
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

import numpy as np

CARRIED = ("model", "device", "region", "dtype", "batching")     # attributes that travel in user_config
AUTOSCALING_KEYS = ("min_replicas", "max_replicas", "target_ongoing_requests")
CODE_VERSION = "labkit-ops-serve-app-1"


DEFAULT_SERVICE_S = 0.01      # a replica's seconds per request unless told (see RayServeBackend)


def service_s(attrs: dict) -> float:
    """Seconds one request of the pool's model takes on its device, from lab 07's simulator (batch of 1);
    profiling the model imports torch (~250 MB, seconds), hence not the backend's default."""
    from labkit.deploy import Pool
    from labkit.deploy.service import ServiceModel

    pool = Pool("p", device=attrs["device"], model=attrs["model"], dtype=attrs.get("dtype", "fp32"))
    return float(ServiceModel(pool).svc[1])


class RayServeBackend:
    """Pools as Ray Serve applications on the Ray at `address` (None: a local one, started on first use with
    `num_cpus` and shut down by `close`). Same interface as SimBackend: read, create, update, destroy, and
    `scale` (a change by hand, made through Ray's own ``serve.run``). `service_s`: seconds a replica takes
    per request, for every pool (10 ms by default: one replica saturates near 100 requests/s), or
    ``"simulated"``: each pool's model on its device, from lab 07's simulator (slower to start: it profiles
    the model with torch). Use it as a context manager, or call `close()`: Serve and the Ray it started are
    shut down.

    >>> import tempfile, labkit as lk
    >>> spec = {"name": "s", "pools": [{"name": "gpu", "model": "mobilenet", "device": "l4"}]}
    >>> with lk.ops.RayServeBackend() as b:                          # doctest: +SKIP
    ...     lk.ops.apply(lk.ops.plan(spec, tempfile.mkdtemp() + "/s.tfstate", b))
    ...     b.read()["gpu"]["replicas"]
    1
    """

    name = "ray-serve"

    def __init__(self, address: str | None = None, num_cpus: int = 2, service_s: float | str = DEFAULT_SERVICE_S):
        from labkit.args import Number, check

        if service_s != "simulated":
            service_s = check("service_s", service_s, Number(low=0))
        self.address, self.num_cpus, self.service_s = address, num_cpus, service_s
        self.log: list[tuple[str, str]] = []
        self._stack: contextlib.ExitStack | None = None

    def __repr__(self) -> str:
        return f"RayServeBackend(address={self.address!r}, started={self._stack is not None})"

    # -------------------------------------------------------------- lifecycle
    def start(self) -> RayServeBackend:
        """Join (or start) Ray and start Serve without an HTTP proxy; called by the first operation."""
        if self._stack is not None:
            return self
        from labkit.cluster import ray_cluster

        os.environ.setdefault("RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S", "1.0")   # as lk.deploy.serve
        stack = contextlib.ExitStack()
        stack.enter_context(ray_cluster(num_cpus=self.num_cpus, address=self.address))
        try:
            from ray import serve

            logging.disable(logging.INFO)
            try:
                _off_loop(serve.start, proxy_location="Disabled")
            finally:
                logging.disable(logging.NOTSET)
            logging.getLogger("ray.serve").setLevel(logging.WARNING)
            stack.callback(_off_loop, serve.shutdown)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def close(self) -> None:
        """Shut Serve down (all its applications), and Ray when this backend started it."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()

    def __enter__(self) -> RayServeBackend:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- refresh
    def details(self) -> dict:
        """The Serve controller's own account of every application (``get_serve_details``), as a dict."""
        from ray.serve.context import _get_global_client

        self.start()
        client = _get_global_client(raise_if_no_controller_running=False)
        return {} if client is None else _off_loop(client.get_serve_details)

    def read(self) -> dict:
        """``{pool: attributes}`` of the labkit pools Serve is running now, from the applied configs."""
        out = {}
        for app_name, app in (self.details().get("applications") or {}).items():
            dep = (app.get("deployments") or {}).get(app_name)
            if dep is None or app.get("status") == "DELETING":
                continue
            cfg = dep.get("deployment_config") or {}
            user = cfg.get("user_config") or {}
            if "model" not in user or "device" not in user:
                continue                                           # not a labkit pool
            auto = cfg.get("autoscaling_config")
            declared_auto = user.get("autoscaling")
            attrs = {k: user.get(k) for k in CARRIED}
            n = cfg.get("num_replicas")
            attrs["replicas"] = n if isinstance(n, int) and not declared_auto else user.get("replicas", 1)
            attrs["max_ongoing_requests"] = cfg.get("max_ongoing_requests")
            attrs["autoscaling"] = ({k: auto.get(k) for k in AUTOSCALING_KEYS} if auto and declared_auto
                                    else None)
            out[app_name] = attrs
        return out

    def running_replicas(self) -> dict:
        """``{pool: replicas in state RUNNING}`` (what serve.status() counts), labkit pools only."""
        out = {}
        for app_name, app in (self.details().get("applications") or {}).items():
            dep = (app.get("deployments") or {}).get(app_name) or {}
            out[app_name] = sum(r.get("state") == "RUNNING" for r in dep.get("replicas") or [])
        return out

    # -------------------------------------------------------------- changes
    def _options(self, name: str, attrs: dict) -> dict:
        user = {k: attrs.get(k) for k in CARRIED}
        user["service_s"] = service_s(attrs) if self.service_s == "simulated" else float(self.service_s)
        opts = {"max_ongoing_requests": attrs.get("max_ongoing_requests", 5), "user_config": user}
        if attrs.get("autoscaling"):
            user["autoscaling"], user["replicas"] = True, attrs.get("replicas", 1)
            opts["autoscaling_config"] = dict(attrs["autoscaling"])
        else:
            opts["num_replicas"] = int(attrs.get("replicas", 1))
        return opts

    def _run(self, name: str, options: dict) -> None:
        from ray import serve

        from labkit.ops.serve_app import deployment

        self.start()
        # A fixed code version (Serve's private option, as `serve deploy` sets one from the config): a change of
        # num_replicas or user_config is then a light update (replicas added, removed or reconfigured in place),
        # not a rolling restart of every replica, which a new random version per serve.run would be.
        dep = deployment(name, **options).options(version=CODE_VERSION, _internal=True)
        _off_loop(lambda: serve.run(dep.bind(), name=name, route_prefix=None))

    def create(self, name: str, attrs: dict) -> None:
        self._run(name, self._options(name, attrs))
        self.log.append(("create", name))

    def update(self, name: str, attrs: dict) -> None:
        self._run(name, self._options(name, attrs))
        self.log.append(("update", name))

    def destroy(self, name: str) -> None:
        from ray import serve

        self.start()
        _off_loop(serve.delete, name)
        self.log.append(("destroy", name))

    def scale(self, name: str, replicas: int) -> None:
        """A change by hand (outside labkit.ops), through Ray's own API: ``serve.run`` of the running
        deployment again with another ``num_replicas`` (its other settings as the controller has them). By hand,
        the same change is ``serve.run(labkit.ops.serve_app.deployment(name, num_replicas=n, user_config=...)
        .bind(), name=name, route_prefix=None)`` (a rolling restart of the replicas: no fixed code version)."""
        from labkit.args import Int, check, unknown_name

        replicas = check("replicas", replicas, Int(low=1))
        app = (self.details().get("applications") or {}).get(name)
        if app is None:
            raise unknown_name("running Serve application", name, self.read())
        cfg = app["deployments"][name]["deployment_config"]
        self._run(name, {"num_replicas": replicas, "max_ongoing_requests": cfg["max_ongoing_requests"],
                         "user_config": cfg.get("user_config")})

    def handle(self, name: str):
        """A DeploymentHandle to pool `name` (send requests with ``.remote(x)``)."""
        from ray import serve

        self.start()
        return serve.get_app_handle(name)

    def send(self, name: str, requests: int = 200, rate_rps: float = 50.0, seed: int = 0, metrics=None):
        """Open-loop Poisson load on pool `name` (lab 11): `requests` at `rate_rps`, each latency recorded and,
        with `metrics` (a `lk.ops.Metrics`), counted in its series as it happens. A frame: sent_s, latency_s,
        status ("ok", or "error" for a refused or failed request)."""
        import pandas as pd

        from labkit.args import Int, Number, check

        requests = check("requests", requests, Int(low=1))
        rate_rps = check("rate_rps", rate_rps, Number(low=0, low_open=True))
        h = self.handle(name)
        if metrics is not None:
            metrics.set_replicas(name, self.running_replicas().get(name, 0))
        arrivals = np.cumsum(np.random.default_rng(seed).exponential(1 / rate_rps, requests))
        sent, lat = np.full(requests, np.nan), np.full(requests, np.nan)
        _off_loop(_replay, h, arrivals, sent, lat, name, metrics)
        return pd.DataFrame({"sent_s": sent, "latency_s": lat,
                             "status": np.where(np.isfinite(lat), "ok", "error")})


def _off_loop(fn, *args, **kwargs):
    from labkit.deploy.twin import _off_loop as off

    return off(lambda: fn(*args, **kwargs))


def _replay(h, arrivals, sent, lat, pool, metrics):
    import asyncio

    async def one(i):
        if metrics is not None:
            metrics.queue.labels(metrics.app, pool).inc()
        t0 = time.perf_counter()
        sent[i] = t0
        ok = True
        try:
            await h.remote(int(i))
            lat[i] = time.perf_counter() - t0
        except Exception:                 # refused (max_queued_requests) or failed: an error, counted
            ok = False
        if metrics is not None:
            metrics.queue.labels(metrics.app, pool).dec()
            metrics.observe(pool, float(lat[i]) if ok else None)

    async def main():
        start = time.perf_counter()
        tasks = []
        for i, a in enumerate(arrivals.tolist()):
            delay = start + a - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.gather(*tasks)
        sent[:] = sent - start

    asyncio.run(main())
