"""Where a spec is applied (lab 11): the simulator backend (an in-memory "running" fleet, instant) and the
export of a spec as the config file ``serve deploy`` accepts, validated with Ray's own schema.

A resource is one pool; its attributes are plain values. Changing `model`, `device`, `region` or `dtype`
forces a replacement (new replicas elsewhere); the others update in place.

>>> import labkit as lk
>>> spec = lk.ops.load_spec({"name": "s", "pools": [{"name": "gpu", "model": "mobilenet", "device": "l4"}]})
>>> lk.ops.attributes(spec)["gpu"]["device"]
'l4'
>>> cfg = lk.ops.serve_config(spec)
>>> cfg["applications"][0]["deployments"][0]["num_replicas"]
1
"""

from __future__ import annotations

import copy

FORCES_REPLACEMENT = ("model", "device", "region", "dtype")


def attributes(spec) -> dict:
    """``{pool name: attributes}`` a spec declares (what a plan compares with what is running)."""
    from labkit.ops.spec import load_spec

    spec = load_spec(spec)
    return {p.name: p.model_dump(exclude={"name"}) for p in spec.pools}


class SimBackend:
    """The simulator as a backend: a dict of running pools. ``scale`` (or ``running[...] = ...``) changes one
    by hand, behind the state's back, as an operator would with Ray's own API: the next plan shows it as drift.

    >>> import labkit as lk
    >>> b = lk.ops.SimBackend()
    >>> b.create("gpu", {"device": "l4", "replicas": 1}); b.scale("gpu", 3); b.read()["gpu"]["replicas"]
    3
    """

    name = "simulator"

    def __init__(self, running: dict | None = None):
        self.running: dict = copy.deepcopy(running or {})
        self.log: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"SimBackend(running={sorted(self.running)})"

    def read(self) -> dict:
        """What is running now (a copy): the refresh step of a plan."""
        return copy.deepcopy(self.running)

    def create(self, name: str, attrs: dict) -> None:
        self.running[name] = copy.deepcopy(attrs)
        self.log.append(("create", name))

    def update(self, name: str, attrs: dict) -> None:
        self.running[name] = copy.deepcopy(attrs)
        self.log.append(("update", name))

    def destroy(self, name: str) -> None:
        self.running.pop(name, None)
        self.log.append(("destroy", name))

    def scale(self, name: str, replicas: int) -> None:
        """A change by hand (outside labkit.ops): set a running pool's replicas."""
        from labkit.args import Int, check, unknown_name

        if name not in self.running:
            raise unknown_name("running pool", name, self.running)
        self.running[name]["replicas"] = check("replicas", replicas, Int(low=1))


def serve_config(spec, import_path: str = "labkit.ops.serve_app:app") -> dict:
    """The spec as a Ray Serve config (what ``serve deploy config.yaml`` takes), validated with Ray's own
    ``ray.serve.schema.ServeDeploySchema``: one application per spec, one deployment per pool (lab 11).

    The pool's model, device, region and dtype travel in ``user_config``; batching in it too (Ray's
    ``@serve.batch`` is set in code, not in the config). ``args`` names the pools for the application
    builder `labkit.ops.serve_app.app`.

    >>> import labkit as lk
    >>> spec = lk.ops.load_spec({"name": "s", "pools": [{"name": "gpu", "model": "mobilenet", "device": "l4",
    ...                          "autoscaling": {"min_replicas": 1, "max_replicas": 4}}]})
    >>> lk.ops.serve_config(spec)["applications"][0]["deployments"][0]["autoscaling_config"]["max_replicas"]
    4
    """
    from ray.serve.schema import ServeDeploySchema

    from labkit.ops.spec import load_spec

    spec = load_spec(spec)
    deployments = []
    for p in spec.pools:
        d = {"name": p.name, "max_ongoing_requests": p.max_ongoing_requests,
             "user_config": {"model": p.model, "device": p.device, "region": p.region, "dtype": p.dtype,
                             "batching": p.batching.model_dump() if p.batching else None}}
        if p.autoscaling:
            d["autoscaling_config"] = p.autoscaling.model_dump()
        else:
            d["num_replicas"] = p.replicas
        deployments.append(d)
    config = {"applications": [{"name": spec.name, "route_prefix": f"/{spec.name}", "import_path": import_path,
                                "args": {"pools": [p.name for p in spec.pools]}, "deployments": deployments}]}
    ServeDeploySchema.model_validate(config)         # raises pydantic's ValidationError on a bad config
    return config


def rayservice(spec, image: str = "rayproject/ray:2.60.0-py311-cpu") -> dict:
    """The spec as a KubeRay ``RayService`` manifest (what a user would ``kubectl apply``): the Serve config of
    `serve_config` embedded as ``serveConfigV2`` (a YAML string, as KubeRay takes it), a head group and one
    worker group per pool, sized by its replicas (or max_replicas when it autoscales) (lab 11).

    >>> import labkit as lk
    >>> spec = lk.ops.load_spec({"name": "shop", "pools": [{"name": "gpu", "model": "mobilenet", "device": "l4"}]})
    >>> m = lk.ops.rayservice(spec)
    >>> m["apiVersion"], m["kind"], m["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["groupName"]
    ('ray.io/v1', 'RayService', 'gpu')
    """
    import yaml

    from labkit.ops.spec import load_spec

    spec = load_spec(spec)

    def container(name):
        return [{"name": name, "image": image, "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                                                             "limits": {"cpu": "2", "memory": "4Gi"}}}]

    workers = []
    for p in spec.pools:
        n = p.autoscaling.max_replicas if p.autoscaling else p.replicas
        workers.append({"groupName": p.name, "replicas": n, "minReplicas": p.autoscaling.min_replicas
                        if p.autoscaling else n, "maxReplicas": n, "rayStartParams": {},
                        "template": {"metadata": {"labels": {"labkit.device": p.device}},
                                     "spec": {"containers": container("ray-worker")}}})
    return {"apiVersion": "ray.io/v1", "kind": "RayService",
            "metadata": {"name": spec.name, "labels": {"app.kubernetes.io/managed-by": "labkit"}},
            "spec": {"serveConfigV2": yaml.safe_dump(serve_config(spec), sort_keys=False),
                     "rayClusterConfig": {"rayVersion": image.split(":")[1].split("-")[0],
                                          "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0"},
                                                            "template": {"spec": {"containers":
                                                                                  container("ray-head")}}},
                                          "workerGroupSpecs": workers}}}
