"""lk.federated on Ray: the same seed gives bit-identical global weights to the in-process backend, and the
Ray cluster that the run started is gone afterwards (only processes this test's run started are checked)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ray")

# Runs in a fresh interpreter, so labkit.cluster.ray_cluster starts (and must stop) its own cluster. A thread
# records every descendant of the driver while Ray runs (gcs_server, raylet, workers): those are ours.
SCRIPT = textwrap.dedent("""
    import json, threading, time
    import numpy as np, psutil
    import labkit as lk

    F = lk.federated
    me = psutil.Process()
    seen, stop = set(), threading.Event()
    def watch():
        while not stop.is_set():
            try:
                seen.update(p.pid for p in me.children(recursive=True))
            except psutil.Error:
                pass
            time.sleep(0.05)
    s = F.split("digits", clients=8, scheme="dirichlet", alpha=0.5, seed=3)
    fl = F.fleet(s, devices=["raspberry-pi-5", "a17"], links=["wifi", "lte"], slowdown=0.5, seed=3)
    kw = dict(rounds=3, fraction=0.5, epochs=2, batch=16, fleet=fl, deadline_s=1.0, seed=3, progress=False,
              compression=F.Compression(topk=0.2, int8=True))
    t0 = time.perf_counter()
    here = F.fedprox(s, mu=0.01, **kw)
    t1 = time.perf_counter()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    there = F.fedprox(s, mu=0.01, backend="ray", **kw)
    t2 = time.perf_counter()
    stop.set(); watcher.join()
    import ray
    deadline = time.time() + 60
    alive = [p for p in seen if psutil.pid_exists(p)]
    while alive and time.time() < deadline:
        time.sleep(0.5)
        alive = []
        for p in seen:
            try:
                if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.Error:
                pass
    print("RESULT", json.dumps(dict(
        same=bool((here.weights == there.weights).all()), backend=there.backend,
        rounds_same=[a.accuracy == b.accuracy for a, b in zip(here.rounds, there.rounds)],
        clients_same=here.clients == there.clients, seen=len(seen), alive=alive,
        initialized=ray.is_initialized(), inprocess_s=t1 - t0, ray_s=t2 - t1)))
""")


def test_ray_equals_inprocess_and_leaves_no_ray_process():
    # Ray's session dir under a short private temp dir (AF_UNIX socket paths are limited to 107 bytes)
    tmp = tempfile.mkdtemp(prefix="lkfed-", dir="/tmp")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "RAY_TMPDIR": tmp}
    try:
        out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    assert lines, out.stdout[-3000:] + out.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT "):])
    assert r["backend"] == "ray"
    assert r["same"] and all(r["rounds_same"]) and r["clients_same"]
    assert r["seen"] >= 2                       # we did watch Ray's own processes (gcs_server, raylet, ...)
    assert r["alive"] == [] and not r["initialized"], r
