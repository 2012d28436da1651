"""What one engine step of an LLM costs on a device, fitted once per pool (lab 09).

An engine step runs, for each sequence, ``new`` tokens after ``past`` cached ones (``lk.llm.step``). Its
``lk.estimate`` is a sum over layers, and each layer depends on the step through a few totals only:

* embedding, norms and the linears of every block see the step's ``M`` new tokens: a function ``g(M)``;
* the output head sees one row per sequence: a function of ``S`` (the number of sequences);
* attention (the same in every block) sees ``A = sum(new x (past + new))`` score entries, reads the KV cache of
  ``K = sum(past + new)`` positions and writes ``M`` rows.

The fit: ``g(M)`` is estimated exactly (``lk.estimate`` of a one-sequence prefill of M tokens, minus its
attention and head layers) on a grid — every M up to 32, then steps of ~6 % — lazily (a grid point is estimated
the first time a step needs it, then kept for the pool's run) and interpolated linearly between grid points (a roofline layer is piecewise linear in M, so the grid points are exact
and the error between them is small; ``tests/test_deploy_llm.py`` bounds it against ``lk.llm.step_time``). The
head and the attention layer are estimated exactly for each step by ``lk.estimate`` of a two-layer Profile with
the step's totals, memoised on ``(S, A, K, M)``. On a device with a systolic array the fit prices attention
without array padding (its tile shape depends on the longest sequence, which the totals drop).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np


class StepCost:
    """Seconds and joules of one engine step of `model` on `device` from its totals (lab 09).

    >>> import labkit as lk
    >>> from labkit.deploy.llm_cost import StepCost
    >>> cost = StepCost("llama-3.1-8b", "h100-sxm", max_tokens=256)
    >>> direct = lk.llm.step_time("llama-3.1-8b", "h100-sxm", decode_contexts=[300, 41], prefill=[(0, 128)])
    >>> t, _ = cost.step(decode_contexts=[300, 41], prefill=[(0, 128)])
    >>> abs(t / direct - 1) < 0.02
    True
    """

    def __init__(self, model, device, dtype: str = "fp16", weight_bits: float | None = None,
                 max_tokens: int = 1 << 20):
        from labkit.args import check_int
        from labkit.llm.archs import config
        from labkit.llm.profiles import step
        from labkit.targets import device as find

        self.cfg = config(model)
        self.device = find(device) if isinstance(device, str) else device
        self.dtype, self.weight_bits = dtype, weight_bits
        top = check_int("max_tokens", max_tokens, 1)
        grid = set(range(1, min(top, 32) + 1))
        m = 32.0
        while m < top:
            m *= 1.06
            grid.add(min(top, int(round(m))))
        self.grid = np.array(sorted(grid), dtype=np.int64)
        self._g_memo: dict = {}            # grid index -> (seconds, joules), estimated when first needed
        self._step = step
        unit = step(self.cfg, prefill=[(0, 1)], dtype=dtype, weight_bits=weight_bits)
        self._att = unit.layer("block0.attention")     # A = K = M = S = 1
        self._head = unit.layer("head")
        self._profile = unit
        self._memo: dict = {}
        self.estimates = 0                 # lk.estimate calls made for g(M)

    def _g_at(self, j: int) -> tuple[float, float]:
        hit = self._g_memo.get(j)
        if hit is None:
            from labkit.estimate import estimate

            M = int(self.grid[j])
            prof = self._step(self.cfg, prefill=[(0, M)] if M <= self.cfg.context else
                              [(0, self.cfg.context)] * (M // self.cfg.context) + ([(0, M % self.cfg.context)]
                                                                                    if M % self.cfg.context else []),
                              dtype=self.dtype, weight_bits=self.weight_bits)
            est = estimate(prof, self.device, self.dtype)
            drop = [lay for lay in est.layers if lay.op == "attention" or lay.name == "head"]
            hit = (est.latency_s - sum(lay.latency_s for lay in drop), est.energy_j - sum(lay.energy_j for lay in drop))
            self._g_memo[j] = hit
            self.estimates += 1
        return hit

    def _g(self, M: int) -> tuple[float, float]:
        if M > self.grid[-1]:
            raise ValueError(f"an engine step of {M} tokens is beyond this cost fit's max_tokens "
                             f"({int(self.grid[-1])}); raise max_tokens.")
        j = int(np.searchsorted(self.grid, M))
        if self.grid[j] == M:
            return self._g_at(j)
        (t0, e0), (t1, e1) = self._g_at(j - 1), self._g_at(j)
        f = (M - self.grid[j - 1]) / (self.grid[j] - self.grid[j - 1])
        return t0 + f * (t1 - t0), e0 + f * (e1 - e0)

    def _rest(self, S: int, A: int, K: int, M: int) -> tuple[float, float]:
        key = (S, A, K, M)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        from labkit.estimate import estimate
        from labkit.profile.core import Profile

        cfg, att, head = self.cfg, self._att, self._head
        att_k = replace(att, macs=att.macs * A, flops=att.flops * A, input_elems=M * cfg.q_dim + 2 * K * cfg.kv_dim,
                        output_elems=M * cfg.q_dim, gemm=None)
        gemm = None if head.gemm is None else (1, S, head.gemm[2], head.gemm[3])
        head_k = replace(head, macs=head.macs * S, flops=head.flops * S, input_elems=head.input_elems * S,
                         output_elems=head.output_elems * S, gemm=gemm)
        est = estimate(Profile("step rest", "analytic", 1, att.dtype, (att_k, head_k), 0, M, 0), self.device,
                       self.dtype)
        a, h = est.layers
        out = (cfg.layers * a.latency_s + h.latency_s, cfg.layers * a.energy_j + h.energy_j)
        if len(self._memo) < 200_000:
            self._memo[key] = out
        return out

    def totals(self, S: int, A: int, K: int, M: int) -> tuple[float, float]:
        """(seconds, joules) of a step with S sequences, A score entries, K cached+new positions, M new tokens."""
        gt, ge = self._g(M)
        rt, re = self._rest(S, A, K, M)
        return gt + rt, ge + re

    def step(self, decode_contexts=(), prefill=()) -> tuple[float, float]:
        """(seconds, joules) of the step ``lk.llm.step(model, decode_contexts, prefill)`` would profile."""
        seqs = [(int(c), 1) for c in decode_contexts]
        seqs += [(0, int(c)) if not isinstance(c, (tuple, list)) else (int(c[0]), int(c[1])) for c in prefill]
        S = len(seqs)
        A = sum(new * (past + new) for past, new in seqs)
        K = sum(past + new for past, new in seqs)
        M = sum(new for _, new in seqs)
        return self.totals(S, A, K, M)
