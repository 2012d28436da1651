"""A pool's Prometheus metrics (lab 11), defined once: a request counter by status, a latency histogram whose
buckets are chosen from the SLO (its latency objective is one of the bounds), and replicas and queue gauges.
The live run feeds them as requests come back and exposes them on an HTTP ``/metrics`` port; the simulator
produces the same series on simulated time (`simulated_series` of an lk.deploy Result); `scrape` reads any
``/metrics`` endpoint into a frame, and `histogram_quantile` is Prometheus's own estimate, for comparison.

Where the series live: in the process that sends the load (`RayServeBackend.send` feeds them, `Metrics.serve`
exposes them with prometheus-client's own HTTP server), so the latency is what a client sees, Serve's routing
included. Ray's own metrics export would need its metrics agent and a scrape target per node, and reports
the replica's side only; one port in the driver is the simplest thing a Prometheus can reliably scrape here.

>>> import labkit as lk
>>> lk.ops.latency_buckets(0.2)
(0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.8, 2.0)
>>> m = lk.ops.Metrics("shop", slo=lk.ops.SLO(latency_s=0.2))
>>> for s in (0.03, 0.12, 0.5): m.observe("gpu", s)
>>> m.observe("gpu", None)                                            # a failed request
>>> df = lk.ops.scrape(m.text())
>>> int(df.query("metric == 'labkit_requests_total' and status == 'error'").value.iloc[0])
1
>>> round(lk.ops.histogram_quantile(0.5, lk.ops.latency_buckets(0.2), [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]), 3)
0.175
"""

from __future__ import annotations

import contextlib

import numpy as np

REQUESTS = "labkit_requests"                       # exposed as labkit_requests_total (lk.ops.alerts.METRIC)
LATENCY = "labkit_request_latency_seconds"
REPLICAS = "labkit_replicas"
QUEUE = "labkit_queue_depth"
FACTORS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 10.0)   # bounds as multiples of the objective


def latency_buckets(latency_s: float | None = None) -> tuple:
    """Histogram bounds for an SLO latency objective: dense around it (0.5x, 0.75x, 1x, 1.5x, 2x) so a p99
    near the objective is read to within a quarter of it, sparse far away; the objective is a bound, so
    ``le="<objective>"`` counts the requests that met it exactly. None: Prometheus's default buckets."""
    if latency_s is None:
        return (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
    return tuple(float(f"{f * latency_s:.6g}") for f in FACTORS)


class Metrics:
    """The series of one application `app` (a spec's name), in their own registry: ``labkit_requests_total``
    {app, pool, status}, ``labkit_request_latency_seconds`` {app, pool} with `latency_buckets` of the SLO,
    ``labkit_replicas`` and ``labkit_queue_depth`` {app, pool}. `serve()` exposes them over HTTP."""

    def __init__(self, app: str, slo=None, buckets=None):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.app = app
        self.buckets = tuple(buckets) if buckets is not None else latency_buckets(
            getattr(slo, "latency_s", None))
        self.registry = CollectorRegistry()
        labels = ["app", "pool"]
        self.requests = Counter(REQUESTS, "Requests answered, by status (ok or error)", labels + ["status"],
                                registry=self.registry)
        self.latency = Histogram(LATENCY, "Seconds from sending a request to its answer", labels,
                                 buckets=self.buckets, registry=self.registry)
        self.replicas = Gauge(REPLICAS, "Replicas running", labels, registry=self.registry)
        self.queue = Gauge(QUEUE, "Requests sent and not yet answered", labels, registry=self.registry)

    def observe(self, pool: str, latency_s: float | None) -> None:
        """One request of `pool` came back after `latency_s` seconds (None: it failed)."""
        if latency_s is None or not np.isfinite(latency_s):
            self.requests.labels(self.app, pool, "error").inc()
        else:
            self.requests.labels(self.app, pool, "ok").inc()
            self.latency.labels(self.app, pool).observe(latency_s)

    def set_replicas(self, pool: str, n: float) -> None:
        self.replicas.labels(self.app, pool).set(n)

    def text(self) -> str:
        """The exposition text a scrape of ``/metrics`` returns."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()

    @contextlib.contextmanager
    def serve(self, port: int = 0, host: str = "127.0.0.1"):
        """Expose the series at ``http://host:port/metrics`` while inside (port 0: a free one); yields the
        ``host:port`` a Prometheus scrape config targets. The server is stopped on exit."""
        from prometheus_client import start_http_server

        server, thread = start_http_server(port, addr=host, registry=self.registry)
        try:
            yield f"{host}:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def scrape(source, timeout_s: float = 5.0):
    """The samples of a ``/metrics`` endpoint (a URL or ``host:port``) or of exposition text, as a frame:
    one row per sample, columns metric, value and one per label."""
    import urllib.request

    import pandas as pd
    from prometheus_client.parser import text_string_to_metric_families

    text = source
    if "\n" not in source and not source.startswith("#"):
        url = source if "://" in source else f"http://{source}"
        url = url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            text = r.read().decode()
    rows = [{"metric": s.name, **s.labels, "value": s.value}
            for fam in text_string_to_metric_families(text) for s in fam.samples]
    return pd.DataFrame(rows)


def histogram_quantile(q: float, bounds, cumulative) -> float:
    """Prometheus's ``histogram_quantile``: the `q` quantile from cumulative bucket counts (one per bound,
    then +Inf), interpolated linearly inside the bucket that holds it (from 0 for the first bucket); in the
    +Inf bucket, the highest finite bound. NaN with no observations."""
    bounds = [float(b) for b in bounds]
    c = np.asarray(cumulative, dtype=float)
    if len(c) != len(bounds) + 1:
        raise ValueError(f"cumulative needs one count per bound plus +Inf: {len(bounds) + 1}, got {len(c)}.")
    total = c[-1]
    if not total > 0:
        return float("nan")
    rank = q * total
    i = int(np.searchsorted(c, rank, side="left"))
    if i >= len(bounds):
        return bounds[-1]
    lo, below = (0.0, 0.0) if i == 0 else (bounds[i - 1], c[i - 1])
    inside = c[i] - below
    return float(bounds[i] if inside <= 0 else lo + (bounds[i] - lo) * (rank - below) / inside)


def simulated_series(result, app: str, slo=None, step_s: float = 1.0, buckets=None):
    """The series a Prometheus would have scraped from `result` (an lk.deploy Result), every `step_s` of
    simulated time: columns t, metric, app, pool, status, le, value (the names and labels of `Metrics`).

    >>> import labkit as lk
    >>> spec = lk.ops.load_spec({"name": "shop", "slo": {"latency_s": 0.05},
    ...                          "pools": [{"name": "gpu", "model": "mobilenet", "device": "l4"}]})
    >>> r = lk.deploy.simulate(spec.fleet(service_s=0.01), lk.deploy.poisson(50, 10, seed=0))
    >>> s = lk.ops.simulated_series(r, spec.name, slo=spec.slo)
    >>> end = s[(s.t == s.t.max()) & (s.metric == "labkit_request_latency_seconds_bucket")]
    >>> p99 = lk.ops.histogram_quantile(0.99, lk.ops.latency_buckets(0.05), end.value)   # as Prometheus would
    >>> abs(p99 - r.percentile_s(99)) <= 0.0125                                           # within its bucket
    True
    """
    import pandas as pd

    bounds = tuple(buckets) if buckets is not None else latency_buckets(getattr(slo, "latency_s", None))
    arr, fin, dropped = result.arrival_s, result.finish_s, result.dropped_mask
    lat = fin - arr
    end = max(result.duration_s, float(np.nanmax(fin)) if np.isfinite(fin).any() else 0.0)
    ts = np.arange(0.0, end + step_s, step_s)
    rows = []
    for k, totals in enumerate(result.pools):
        pool = totals.name
        mine = result.pool == k
        ok, err = mine & ~dropped, mine & dropped
        done_t = np.sort(fin[ok])
        for t in ts:
            ended = ok & (fin <= t)
            base = {"t": t, "pool": pool, "status": None, "le": None}
            rows.append({**base, "metric": f"{REQUESTS}_total", "status": "ok",
                         "value": float(np.searchsorted(done_t, t, side="right"))})
            rows.append({**base, "metric": f"{REQUESTS}_total", "status": "error",
                         "value": float((err & (arr <= t)).sum())})
            seen = lat[ended]
            for b in bounds:
                rows.append({**base, "metric": f"{LATENCY}_bucket", "le": str(b), "value": float((seen <= b).sum())})
            rows.append({**base, "metric": f"{LATENCY}_bucket", "le": "+Inf", "value": float(len(seen))})
            rows.append({**base, "metric": f"{LATENCY}_count", "value": float(len(seen))})
            rows.append({**base, "metric": f"{LATENCY}_sum", "value": float(seen.sum())})
            rows.append({**base, "metric": QUEUE, "value": float((mine & (arr <= t) & ~(fin <= t) & ~dropped).sum())})
            tl = result.replicas[result.replicas[:, 1] == k]
            at = tl[tl[:, 0] <= t]
            rows.append({**base, "metric": REPLICAS, "value": float(at[-1, 3]) if len(at) else float("nan")})
    df = pd.DataFrame(rows, columns=["t", "metric", "pool", "status", "le", "value"])
    df.insert(2, "app", app)
    return df
