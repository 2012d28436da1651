"""SLO burn-rate alerts (lab 11): the SRE workbook's multi-window, multi-burn-rate rules, as a Prometheus
rules file, and labkit's own evaluation of when each alert fires on a series of request counters.

A burn rate is how fast the error budget is spent: 1x spends exactly the budget over the SLO window. An alert
fires when the error ratio exceeds ``burn x error_budget`` over BOTH its long and its short window (the short
one makes it stop soon after the problem does). The workbook's burns follow from "this share of the budget
spent within the long window": burn = share x SLO window / long window. For a 30-day SLO: 2% in 1 h = 14.4x,
5% in 6 h = 6x (pages), 10% in 3 days = 1x (a ticket).

>>> import labkit as lk
>>> slo = lk.ops.SLO(availability=0.999, window_days=30)
>>> [(a.name, a.burn_rate, a.long, a.short) for a in lk.ops.burn_rate_alerts(slo)]
[('SLOErrorBudgetBurnFast', 14.4, '1h', '5m'), ('SLOErrorBudgetBurnSlow', 6.0, '6h', '30m'), ('SLOErrorBudgetBurnTicket', 1.0, '3d', '6h')]
"""

from __future__ import annotations

from dataclasses import dataclass

METRIC = "labkit_requests_total"       # a counter labelled app=<spec name>, status="ok" | "error"

# (alert, severity, share of the budget, long window, short window) — the SRE workbook, chapter 5, table 5-8
WINDOWS = (("SLOErrorBudgetBurnFast", "page", 0.02, "1h", "5m"),
           ("SLOErrorBudgetBurnSlow", "page", 0.05, "6h", "30m"),
           ("SLOErrorBudgetBurnTicket", "ticket", 0.10, "3d", "6h"))
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> int:
    """A Prometheus duration (``"5m"``, ``"3d"``) in seconds.

    >>> seconds("6h")
    21600
    """
    from labkit.args import unknown_name

    if not duration or duration[-1] not in _UNIT_S or not duration[:-1].isdigit():
        raise unknown_name("duration unit in", duration, [f"N{u}" for u in _UNIT_S])
    return int(duration[:-1]) * _UNIT_S[duration[-1]]


@dataclass(frozen=True)
class BurnRateWindow:
    """One alert: fires when the error ratio > `burn_rate` x `error_budget` over both `long` and `short`."""

    name: str
    severity: str
    budget_share: float
    long: str
    short: str
    burn_rate: float
    error_budget: float

    @property
    def threshold(self) -> float:
        """The error ratio above which this alert fires: burn_rate x error_budget."""
        return round(self.burn_rate * self.error_budget, 12)


def burn_rate_alerts(slo) -> list[BurnRateWindow]:
    """The three workbook alerts for `slo` (an lk.ops.SLO), burn rates derived from its window."""
    window_s = slo.window_days * 86400
    return [BurnRateWindow(name, sev, share, long, short, round(share * window_s / seconds(long), 9),
                           slo.error_budget) for name, sev, share, long, short in WINDOWS]


def _ratio(app: str, window: str) -> str:
    return (f'sum(rate({METRIC}{{app="{app}",status="error"}}[{window}])) / '
            f'sum(rate({METRIC}{{app="{app}"}}[{window}]))')


def alert_rules(spec) -> dict:
    """The Prometheus rules file (as a dict) for the spec's SLO: one group, one alerting rule per window pair.

    >>> import labkit as lk
    >>> spec = lk.ops.load_spec({"name": "shop", "pools": [{"name": "a", "model": "mobilenet", "device": "l4"}]})
    >>> print(lk.ops.alert_rules(spec)["groups"][0]["rules"][0]["expr"])
    (
      sum(rate(labkit_requests_total{app="shop",status="error"}[1h])) / sum(rate(labkit_requests_total{app="shop"}[1h])) > 0.0144
    and
      sum(rate(labkit_requests_total{app="shop",status="error"}[5m])) / sum(rate(labkit_requests_total{app="shop"}[5m])) > 0.0144
    )
    """
    from labkit.ops.spec import load_spec

    spec = load_spec(spec)
    rules = []
    for a in burn_rate_alerts(spec.slo):
        expr = (f"(\n  {_ratio(spec.name, a.long)} > {a.threshold!r}\nand\n"
                f"  {_ratio(spec.name, a.short)} > {a.threshold!r}\n)")
        rules.append({"alert": a.name, "expr": expr,
                      "labels": {"severity": a.severity, "app": spec.name},
                      "annotations": {"summary": f"{spec.name} is burning its error budget at {a.burn_rate:g}x "
                                                 f"({a.long} and {a.short} windows)",
                                      "description": f"SLO {spec.slo.availability:.4%} over "
                                                     f"{spec.slo.window_days}d; {a.budget_share:.0%} of the budget "
                                                     f"goes in {a.long} at this rate."}})
    return {"groups": [{"name": f"{spec.name}-slo-burn-rate", "rules": rules}]}


def rules_yaml(spec, path=None) -> str:
    """The rules file as YAML text (written to `path` if given), for ``promtool check rules`` and Prometheus."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def block(dumper, value):                       # multi-line PromQL as a readable `|` block
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, block)
    text = yaml.dump(alert_rules(spec), Dumper=Dumper, sort_keys=False, width=200)
    if path is not None:
        from pathlib import Path

        Path(path).write_text(text)
    return text


def evaluate(spec, times_s, ok_total, error_total, every_s: float | None = None):
    """labkit's own evaluation of the rules: which alerts fire at each evaluation time (lab 11).

    `times_s`: sample times (seconds, increasing, evenly spaced); `ok_total`, `error_total`: the two
    counters sampled then. Over a window w at time t the error ratio is the errors' increase over the total's
    increase between the first and last samples in [t - w, t] (Prometheus's rate() extrapolates both
    increases by the same factor, which cancels in the ratio while neither counter is near zero).
    Returns a DataFrame indexed by time with one boolean column per alert.
    """
    import numpy as np
    import pandas as pd

    from labkit.ops.spec import load_spec

    spec = load_spec(spec)
    t = np.asarray(times_s, dtype=float)
    ok, err = np.asarray(ok_total, dtype=float), np.asarray(error_total, dtype=float)
    if not (len(t) == len(ok) == len(err)) or len(t) < 2:
        raise ValueError(f"times_s, ok_total and error_total must have the same length >= 2, got {len(t)}, "
                         f"{len(ok)}, {len(err)}.")
    total = ok + err

    def ratio(window_s):
        first = np.searchsorted(t, t - window_s - 1e-9, side="left")
        d_err, d_tot = err - err[first], total - total[first]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = d_err / d_tot
        return np.where(np.arange(len(t)) - first >= 1, r, np.nan)   # rate() needs two samples

    out = {}
    for a in burn_rate_alerts(spec.slo):
        long_r, short_r = ratio(seconds(a.long)), ratio(seconds(a.short))
        out[a.name] = (long_r > a.threshold) & (short_r > a.threshold)
    return pd.DataFrame(out, index=pd.Index(t, name="time_s"))


def _values(x) -> str:
    return " ".join(f"{v:.10g}" for v in x)


def rule_tests(spec, times_s, ok_total, error_total, rules_file: str = "rules.yml") -> dict:
    """A ``promtool test rules`` file (as a dict) whose expected alerts are labkit's own `evaluate` of the
    same counters at every sample time: promtool passing means Prometheus and labkit agree (lab 11).

    The samples must be evenly spaced (whole seconds) and start at 0.
    """
    import numpy as np

    from labkit.ops.spec import load_spec

    spec = load_spec(spec)
    t = np.asarray(times_s, dtype=float)
    step = t[1] - t[0] if len(t) > 1 else 0
    if len(t) < 2 or t[0] != 0 or step != int(step) or not np.allclose(np.diff(t), step):
        raise ValueError("times_s must start at 0 and be evenly spaced by a whole number of seconds.")
    fired = evaluate(spec, t, ok_total, error_total)
    rules = {r["alert"]: r for r in alert_rules(spec)["groups"][0]["rules"]}
    sel = f'{METRIC}{{app="{spec.name}",status="%s"}}'
    tests = []
    for name, rule in rules.items():
        cases = [{"eval_time": f"{int(ti)}s", "alertname": name,
                  "exp_alerts": [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]
                  if on else []} for ti, on in zip(t, fired[name])]
        tests += cases
    return {"rule_files": [rules_file], "evaluation_interval": f"{int(step)}s",
            "tests": [{"interval": f"{int(step)}s",
                       "input_series": [{"series": sel % "ok", "values": _values(ok_total)},
                                        {"series": sel % "error", "values": _values(error_total)}],
                       "alert_rule_test": tests}]}
