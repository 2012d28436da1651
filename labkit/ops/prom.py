"""A real Prometheus server for a lab (lab 11): `prometheus(targets)` starts Debian's ``prometheus`` binary in
a temporary folder with a generated config (a short scrape interval, a free port, its data in the folder) and
always stops it; `query(promql)` asks its HTTP API and returns a pandas frame.

>>> import labkit as lk
>>> with lk.ops.Metrics("shop").serve() as target:                              # doctest: +SKIP
...     with lk.ops.prometheus([target]) as prom:
...         prom.wait_for("up == 1")
...         lk.ops.query("up")["value"].tolist()
[1.0]
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

BINARY = "prometheus"
_current: list = []            # the servers running now, innermost last (query's default)


class PrometheusNotFound(RuntimeError):
    """No prometheus binary on this machine."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """A running server: `url`, `query`, `wait_for`; its folder holds ``prometheus.yml`` and the log."""

    def __init__(self, url: str, folder: Path, process: subprocess.Popen):
        self.url, self.folder, self.process = url, folder, process

    def __repr__(self) -> str:
        return f"Prometheus({self.url!r})"

    def query(self, promql: str, time_s: float | None = None):
        return query(promql, url=self.url, time_s=time_s)

    def wait_for(self, promql: str, timeout_s: float = 30.0, poll_s: float = 0.2):
        """Poll `promql` until it returns a non-empty result (e.g. a scrape that saw every request); the frame."""
        deadline = time.monotonic() + timeout_s
        while True:
            df = self.query(promql)
            if len(df):
                return df
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} returned nothing within {timeout_s} s (Prometheus at {self.url}; "
                                   f"log: {self.folder / 'prometheus.log'}).")
            time.sleep(poll_s)


@contextlib.contextmanager
def prometheus(targets, scrape_interval: str = "1s", port: int | None = None, binary: str | None = None,
               job: str = "labkit", start_timeout_s: float = 60.0):
    """Run a Prometheus server scraping `targets` (``host:port`` strings) every `scrape_interval` while
    inside; yields a `Prometheus`. Stopped (and its folder removed) on exit, even on error. Raises
    PrometheusNotFound where the binary is absent (Debian's ``prometheus`` package provides it).
    """
    exe = shutil.which(binary or BINARY)
    if exe is None:
        raise PrometheusNotFound(f"no {binary or BINARY!r} binary on PATH: `apt-get install prometheus` provides "
                                 "it (the project's .ci/run, docker/Dockerfile and binder/apt.txt install it).")
    if isinstance(targets, str):
        targets = [targets]
    folder = Path(tempfile.mkdtemp(prefix="labkit-prometheus-"))
    port = port or _free_port()
    config = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
              "scrape_configs": [{"job_name": job, "scrape_interval": scrape_interval,
                                  "scrape_timeout": scrape_interval, "static_configs": [{"targets": list(targets)}]}]}
    (folder / "prometheus.yml").write_text(json.dumps(config, indent=1))      # JSON is YAML
    log = open(folder / "prometheus.log", "wb")
    proc = subprocess.Popen([exe, f"--config.file={folder / 'prometheus.yml'}",
                             f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=warn", "--storage.tsdb.retention.time=1h"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder,
                            preexec_fn=_die_with_parent())
    server = Prometheus(f"http://127.0.0.1:{port}", folder, proc)
    try:
        _wait_ready(server, start_timeout_s)
        _current.append(server)
        yield server
    finally:
        if server in _current:
            _current.remove(server)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _die_with_parent():
    """On Linux, from the main thread: the server gets SIGTERM if this process dies without leaving the `with`
    (a killed kernel), so no Prometheus outlives its lab. (The signal follows the thread that started it, hence
    main thread only.)"""
    import sys
    import threading

    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None

    def set_pdeathsig():
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG

    return set_pdeathsig


def _wait_ready(server: Prometheus, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if server.process.poll() is not None:
            log = (server.folder / "prometheus.log").read_text()[-2000:]
            raise RuntimeError(f"prometheus exited with code {server.process.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(server.url + "/-/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"prometheus at {server.url} not ready within {timeout_s} s.")
        time.sleep(0.1)


def query(promql: str, url: str | None = None, time_s: float | None = None):
    """Evaluate `promql` on the Prometheus at `url` (None: the innermost `prometheus()` running here) through
    its HTTP API (``/api/v1/query``); a frame with one row per series: its labels, t and value (a scalar
    result: one row, no labels)."""
    import pandas as pd

    if url is None:
        if not _current:
            raise RuntimeError("no Prometheus running here: use `with lk.ops.prometheus(targets):`, or give url=.")
        url = _current[-1].url
    params = {"query": promql}
    if time_s is not None:
        params["time"] = str(time_s)
    req = urllib.request.Request(url.rstrip("/") + "/api/v1/query", data=urllib.parse.urlencode(params).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:            # a bad query: Prometheus says why in the body
        body = json.load(e)
    if body.get("status") != "success":
        raise ValueError(f"Prometheus refused {promql!r}: {body.get('errorType')}: {body.get('error')}")
    data = body["data"]
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return pd.DataFrame([{"t": float(result[0]), "value": float(result[1])}])
    if kind == "matrix":
        rows = [{**s["metric"], "t": float(t), "value": float(v)} for s in result for t, v in s["values"]]
    else:
        rows = [{**s["metric"], "t": float(s["value"][0]), "value": float(s["value"][1])} for s in result]
    return pd.DataFrame(rows, columns=sorted({k for r in rows for k in r} - {"t", "value"}) + ["t", "value"])
