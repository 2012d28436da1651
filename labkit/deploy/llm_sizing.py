"""``lk.deploy.size_llm``: the cheapest LLM pool (device and replica count) that meets a TTFT and a TPOT SLO on
a workload, and the price of a million output tokens on it (lab 09).

Search (simulation-based, stated in the result): for each device, simulate 1, 2, 4, ... replicas
(``lk.deploy.serve_llm_sim``) until the pool meets both SLOs at the chosen percentile, then bisect between the
last count that missed and the first that met; the smallest count found is verified by its own simulation. A
pool of k replicas costs k x the device's hourly price for the whole run, so among the devices that meet the SLO
the cheapest per 1M output tokens wins. More replicas split the same requests (round-robin), so an SLO met by k
replicas is met by more; the bisection assumes it, and the table keeps every device's verifying numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.args import check_int, check_positive


@dataclass(frozen=True, eq=False)
class LLMSizing:
    """The cheapest pool found, its verifying LLMResult, one row per device, and how it was found (lab 09)."""

    device: str | None            # None when no device meets the SLO within max_replicas
    replicas: int
    result: object                # the verifying LLMResult of the pick (None when nothing meets the SLO)
    table: object                 # pandas DataFrame, one row per device
    ttft_slo_s: float
    tpot_slo_s: float
    pct: int
    simulations: int
    method: str

    @property
    def meets_slo(self) -> bool:
        return self.device is not None

    @property
    def usd_per_1m_output(self) -> float:
        return float("nan") if self.result is None else self.result.cost_usd_per_1m_output

    def __repr__(self) -> str:
        slo = f"TTFT p{self.pct} <= {self.ttft_slo_s * 1e3:.4g} ms, TPOT p{self.pct} <= {self.tpot_slo_s * 1e3:.4g} ms"
        if not self.meets_slo:
            return f"LLMSizing(no device meets {slo}; {self.simulations} simulations)"
        return (f"LLMSizing({self.replicas} x {self.device} meets {slo}: ${self.usd_per_1m_output:.4g} per 1M "
                f"output tokens; {self.simulations} simulations, {self.method})")


def _meets(r, ttft_slo_s, tpot_slo_s, pct) -> bool:
    ttft, tpot = r.percentiles("ttft_s")[pct], r.percentiles("tpot_s")[pct]
    return bool(ttft <= ttft_slo_s and (tpot != tpot or tpot <= tpot_slo_s))     # NaN TPOT: one-token outputs


def size_llm(workload, model: str, devices, ttft_slo_s: float, tpot_slo_s: float, *, pct: int = 99,
             max_replicas: int = 16, scheduler: str = "continuous", chunk_tokens: int | None = None,
             max_batch: int = 256, dtype: str = "fp16", weight_bits: float | None = None,
             region: str | None = None) -> LLMSizing:
    """Cheapest (device, replicas) whose p`pct` TTFT and TPOT meet the SLOs on `workload` (lab 09).

    `devices`: catalog names (or one name). A device whose memory cannot hold the model and one sequence gets
    a row saying so. Returns an ``LLMSizing``: ``.device``, ``.replicas``, ``.result`` (the verifying
    LLMResult: ``cost_usd_per_1m_output``, ``carbon_g_per_1m_tokens``), ``.table`` (every device's smallest
    count and its numbers).

    >>> import labkit as lk
    >>> w = lk.deploy.trace("azure-conv", duration_s=60)
    >>> s = lk.deploy.size_llm(w, "llama-3.1-8b", ["h100-sxm", "l4"], ttft_slo_s=0.5, tpot_slo_s=0.05)
    >>> s.device, s.replicas, s.meets_slo
    ('h100-sxm', 1, True)
    >>> lk.deploy.size_llm(w, "llama-3.1-8b", "h100-sxm", ttft_slo_s=0.5, tpot_slo_s=0.05, pct=95)
    Traceback (most recent call last):
    ValueError: unknown pct 95. Did you mean '99', '90', '50'? Allowed: 50, 90, 99.
    """
    import pandas as pd

    from labkit.args import unknown_name
    from labkit.deploy.llm_cost import StepCost
    from labkit.deploy.llm_engine import serve_llm_sim
    from labkit.deploy.llm_result import PCTS
    from labkit.targets import device as find

    check_positive("ttft_slo_s", ttft_slo_s)
    check_positive("tpot_slo_s", tpot_slo_s)
    check_int("max_replicas", max_replicas, 1)
    if pct not in PCTS:
        raise unknown_name("pct", pct, PCTS)
    names = [devices] if isinstance(devices, str) else list(devices)
    if not names:
        raise ValueError("size_llm needs at least one device name, e.g. ['h100-sxm', 'a100-sxm', 'l4'].")
    runs = [0]
    rows, best = [], None
    for name in names:
        dev = find(name)
        cost = StepCost(model, dev, dtype, weight_bits)
        memo: dict = {}

        def run(k, dev=dev, cost=cost, memo=memo):
            if k not in memo:
                runs[0] += 1
                memo[k] = serve_llm_sim(workload, model, dev, scheduler, replicas=k, chunk_tokens=chunk_tokens,
                                        max_batch=max_batch, dtype=dtype, weight_bits=weight_bits, region=region,
                                        cost=cost)
            return memo[k]

        try:
            run(1)
        except ValueError as exc:             # the KV budget cannot hold one sequence beside the weights
            if "smaller than one sequence" not in str(exc) and "holds no token" not in str(exc):
                raise
            rows.append({"device": dev.name, "replicas": None, "meets_slo": False, "note": "the model does not fit"})
            continue
        lo, hi, k = 0, None, 1                  # lo: largest count known to miss; hi: smallest known to meet
        while True:
            if _meets(run(k), ttft_slo_s, tpot_slo_s, pct):
                hi = k
                break
            lo = k
            if k == max_replicas:
                break
            k = min(2 * k, max_replicas)
        while hi is not None and hi - lo > 1:
            mid = (lo + hi) // 2
            if _meets(run(mid), ttft_slo_s, tpot_slo_s, pct):
                hi = mid
            else:
                lo = mid
        r = run(hi if hi is not None else max_replicas)
        rows.append({"device": dev.name, "replicas": hi, "meets_slo": hi is not None,
                     f"ttft_p{pct}_ms": r.percentiles("ttft_s")[pct] * 1e3,
                     f"tpot_p{pct}_ms": r.percentiles("tpot_s")[pct] * 1e3,
                     "usd_per_1m_output": r.cost_usd_per_1m_output,
                     "g_co2_per_1m_tokens": r.carbon_g_per_1m_tokens, "region": r.region,
                     "note": "" if hi is not None else f"misses the SLO at {r.replicas} replicas (max_replicas)"})
        if hi is not None and (best is None or r.cost_usd_per_1m_output < best[2].cost_usd_per_1m_output):
            best = (dev.name, hi, r)
    table = pd.DataFrame(rows).set_index("device")
    device, replicas, result = best if best is not None else (None, 0, None)
    return LLMSizing(device, replicas, result, table, float(ttft_slo_s), float(tpot_slo_s), pct, runs[0],
                     "per device: 1, 2, 4, ... replicas until the SLO holds, then bisection; the cheapest per 1M "
                     "output tokens among the devices that meet it")
