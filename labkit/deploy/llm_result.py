"""The outcome of token-level LLM serving (lab 09): per-request TTFT, TPOT and end-to-end latency, tokens/s, KV
occupancy over time, preemptions, and the price, energy and carbon of a million tokens.

TTFT = first token - arrival; TPOT = (last token - first token) / (output tokens - 1), NaN for one-token
outputs; end-to-end = last token - arrival. Cost rents every replica for the whole run (``duration_s``: the
workload's duration or the last token, whichever is later); energy is the steps' energy plus idle power
while a replica waits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PCTS = (50, 90, 99)


class TokenTimes:
    """Per-request TTFT, TPOT and end-to-end seconds from arrival_s, first_token_s, finish_s and output_tokens:
    the one owner of these formulas, for the simulated LLMResult and the served ServedLLM (lab 09)."""

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_token_s - self.arrival_s

    @property
    def tpot_s(self) -> np.ndarray:
        gaps = np.maximum(self.output_tokens - 1, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(gaps > 0, (self.finish_s - self.first_token_s) / np.maximum(gaps, 1), np.nan)

    @property
    def e2e_s(self) -> np.ndarray:
        return self.finish_s - self.arrival_s


@dataclass(frozen=True, eq=False)
class LLMResult(TokenTimes):
    """Per-request token times of a simulated LLM pool (lab 09); see ``summary()`` and ``to_frame()``.

    >>> import labkit as lk
    >>> w = lk.deploy.Workload([0.0], {"prompt_tokens": [64], "output_tokens": [3]})
    >>> r = lk.deploy.serve_llm_sim(w, "llama-3.1-8b", "h100-sxm")
    >>> bool(r.ttft_s[0] > 0 and r.e2e_s[0] > r.ttft_s[0]), r.steps
    (True, 3)
    """

    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    preempted: np.ndarray            # times each request was preempted (and recomputed)
    replica: np.ndarray
    kv_timeline: np.ndarray          # rows (time_s, replica, kv tokens in use) at each step start
    model: str
    device: str
    scheduler: str
    replicas: int
    kv_capacity_tokens: int          # per replica
    busy_s: float                    # replica-seconds running steps
    step_energy_j: float
    steps: int
    tokens_processed: int            # prompt tokens (recomputed ones included) + decode tokens
    tokens_emitted: int              # output tokens handed out, counted as they are emitted
    duration_s: float
    idle_w: float
    usd_per_s: float
    region: str
    g_per_j: float
    workload: str = ""

    # totals
    @property
    def preemptions(self) -> int:
        return int(self.preempted.sum())

    @property
    def energy_j(self) -> float:
        idle_s = self.replicas * self.duration_s - self.busy_s
        return self.step_energy_j + self.idle_w * max(idle_s, 0.0)

    @property
    def cost_usd(self) -> float:
        return self.replicas * self.duration_s * self.usd_per_s

    @property
    def carbon_g(self) -> float:
        return self.energy_j * self.g_per_j

    @property
    def tokens_in_per_s(self) -> float:
        return float(self.prompt_tokens.sum()) / self.duration_s

    @property
    def tokens_out_per_s(self) -> float:
        return float(self.output_tokens.sum()) / self.duration_s

    @property
    def cost_usd_per_1m_output(self) -> float:
        return self.cost_usd / self.output_tokens.sum() * 1e6

    @property
    def energy_j_per_1m_tokens(self) -> float:
        """Joules per million tokens (prompt + output)."""
        return self.energy_j / (self.prompt_tokens.sum() + self.output_tokens.sum()) * 1e6

    @property
    def carbon_g_per_1m_tokens(self) -> float:
        return self.energy_j_per_1m_tokens * self.g_per_j

    def kv_occupancy(self) -> np.ndarray:
        """Rows (time_s, replica, fraction of the replica's KV cache in use), one per step start."""
        occ = self.kv_timeline.copy()
        occ[:, 2] /= self.kv_capacity_tokens
        return occ

    def percentiles(self, metric: str = "ttft_s") -> dict:
        """{50: ..., 90: ..., 99: ...} of ``ttft_s``, ``tpot_s`` or ``e2e_s`` (NaNs ignored)."""
        if metric not in ("ttft_s", "tpot_s", "e2e_s"):
            from labkit.args import unknown_name

            raise unknown_name("metric", metric, ("ttft_s", "tpot_s", "e2e_s"))
        values = getattr(self, metric)
        values = values[np.isfinite(values)]
        return {p: float(np.percentile(values, p)) if values.size else float("nan") for p in PCTS}

    def goodput_rps(self, ttft_slo_s: float, tpot_slo_s: float) -> float:
        """Requests per second that met both the TTFT and the TPOT SLO (one-token outputs: TTFT only)."""
        tpot = np.nan_to_num(self.tpot_s, nan=0.0)
        ok = (self.ttft_s <= ttft_slo_s) & (tpot <= tpot_slo_s)
        return float(ok.sum()) / self.duration_s

    def summary(self) -> dict:
        """The headline numbers, units in the names."""
        out = {}
        for m in ("ttft_s", "tpot_s", "e2e_s"):
            for p, v in self.percentiles(m).items():
                out[f"{m[:-2]}_p{p}_s"] = v
        out.update(tokens_in_per_s=self.tokens_in_per_s, tokens_out_per_s=self.tokens_out_per_s,
                   preemptions=self.preemptions, kv_peak_fraction=float(self.kv_occupancy()[:, 2].max(initial=0)),
                   cost_usd_per_1m_output=self.cost_usd_per_1m_output,
                   energy_j_per_1m_tokens=self.energy_j_per_1m_tokens,
                   carbon_g_per_1m_tokens=self.carbon_g_per_1m_tokens)
        return out

    def to_frame(self):
        """One row per request: arrival, prompt/output tokens, TTFT, TPOT, end-to-end, preemptions (pandas)."""
        import pandas as pd

        return pd.DataFrame({"arrival_s": self.arrival_s, "replica": self.replica,
                             "prompt_tokens": self.prompt_tokens, "output_tokens": self.output_tokens,
                             "ttft_s": self.ttft_s, "tpot_s": self.tpot_s, "e2e_s": self.e2e_s,
                             "preempted": self.preempted})

    def __repr__(self) -> str:
        s = self.summary()
        return (f"LLMResult({self.model} on {self.replicas} x {self.device}, {self.scheduler}; "
                f"{len(self.arrival_s):,} requests, {self.steps:,} steps: TTFT p50/p99 "
                f"{s['ttft_p50_s'] * 1e3:.4g}/{s['ttft_p99_s'] * 1e3:.4g} ms, TPOT p50/p99 "
                f"{s['tpot_p50_s'] * 1e3:.4g}/{s['tpot_p99_s'] * 1e3:.4g} ms, {self.tokens_out_per_s:.4g} "
                f"output tok/s, {self.preemptions} preemptions, ${self.cost_usd_per_1m_output:.3g} per 1M output "
                f"tokens, {self.carbon_g_per_1m_tokens:.3g} g CO2e per 1M tokens ({self.region}))")
