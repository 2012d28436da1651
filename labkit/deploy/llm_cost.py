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
        self._lin = None
        self._linearise()
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

    def _layers(self, S: int, A: int, K: int, M: int, weights: bool = True, flops: bool = True,
                elems: bool = True):
        """The step's attention layer (one block) and head layer at these totals; parts can be zeroed (probes)."""
        cfg, att, head = self.cfg, self._att, self._head
        f, e = (1 if flops else 0), (1 if elems else 0)
        att_k = replace(att, macs=att.macs * A * f, flops=att.flops * A * f,
                        input_elems=(M * cfg.q_dim + 2 * K * cfg.kv_dim) * e, output_elems=M * cfg.q_dim * e,
                        gemm=None)
        gemm = None if head.gemm is None else (1, S, head.gemm[2], head.gemm[3])
        head_k = replace(head, macs=head.macs * S * f, flops=head.flops * S * f, input_elems=head.input_elems * S * e,
                         output_elems=head.output_elems * S * e, weight_elems=head.weight_elems if weights else 0,
                         gemm=gemm)
        return att_k, head_k

    def _exact_rest(self, S: int, A: int, K: int, M: int, **parts) -> tuple[float, float, float, float]:
        """lk.estimate of the attention and head layers: (att s, att J, head s, head J)."""
        from labkit.estimate import estimate
        from labkit.profile.core import Profile

        layers = self._layers(S, A, K, M, **parts)
        est = estimate(Profile("step rest", "analytic", 1, self._att.dtype, layers, 0, max(M, 1), 0), self.device,
                       self.dtype)
        a, h = est.layers
        return a.latency_s, a.energy_j, h.latency_s, h.energy_j

    def _linearise(self) -> None:
        """Read the roofline of the attention and head layers off probe estimates (start-up, compute slope,
        memory slope, their energies), then check it against exact estimates; on any mismatch (a calibrated
        device's OpFit is not a max of two lines) keep the exact per-step estimate."""
        idle = self.device.idle_w
        big = 4096
        z = self._exact_rest(0, 0, 0, 0, weights=False)
        c0a, c0h = z[0], z[2]

        def part(S, A, K, M, **kw):
            at, ae, ht, he = self._exact_rest(S, A, K, M, **kw)
            return at - c0a, ae - idle * at, ht - c0h, he - idle * ht

        fa = part(big, big, 0, 0, weights=False, elems=False)        # compute per A / per S
        ka = part(0, 0, big, 0, weights=False, flops=False)          # memory per K
        ma = part(big, 0, 0, big, weights=False, flops=False)        # memory per M / per S
        wh = part(0, 0, 0, 0, flops=False)                           # the head's weights
        self._lin = (c0a, fa[0] / big, fa[1] / big, ka[0] / big, ka[1] / big, ma[0] / big, ma[1] / big,
                     c0h, fa[2] / big, fa[3] / big, wh[2], wh[3], ma[2] / big, ma[3] / big)
        rng = np.random.default_rng(0)
        for _ in range(8):
            S, M = int(rng.integers(1, 300)), int(rng.integers(1, 5000))
            K = M + int(rng.integers(0, 100_000))
            A = int(rng.integers(M, M * 100 + 1))
            exact = self._exact_rest(S, A, K, M)
            fast = self._fast(S, A, K, M)
            if not np.allclose((exact[0] * self.cfg.layers + exact[2], exact[1] * self.cfg.layers + exact[3]),
                               fast, rtol=1e-9, atol=0):
                self._lin = None
                return

    def _fast(self, S: int, A: int, K: int, M: int) -> tuple[float, float]:
        c0a, ta, ea, tk, ek, tm, em, c0h, th, eh, tw, ew, ths, ehs = self._lin
        idle, L = self.device.idle_w, self.cfg.layers
        comp, mem = ta * A, tk * K + tm * M
        at = c0a + (comp if comp > mem else mem)
        ae = idle * at + (ea * A if comp > mem else ek * K + em * M)
        comp, mem = th * S, tw + ths * S
        ht = c0h + (comp if comp > mem else mem)
        he = idle * ht + (eh * S if comp > mem else ew + ehs * S)
        return L * at + ht, L * ae + he

    @property
    def linear(self) -> bool:
        """True when the fast line-pair model holds (checked at construction), so decode runs can be vectorised."""
        return self._lin is not None

    def decode_run(self, S: int, K0: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(seconds, joules) of `steps` consecutive pure-decode steps of S sequences whose step j reads
        ``K0 + j x S`` cached+new positions (vectorised; needs ``linear``)."""
        c0a, ta, ea, tk, ek, tm, em, c0h, th, eh, tw, ew, ths, ehs = self._lin
        idle, L = self.device.idle_w, self.cfg.layers
        K = K0 + S * np.arange(steps, dtype=np.float64)
        comp, mem = ta * K, tk * K + tm * S
        at = c0a + np.where(comp > mem, comp, mem)
        ae = idle * at + np.where(comp > mem, ea * K, ek * K + em * S)
        ht, he = self._fast(S, 0, 0, 0)                       # the head (S only) plus L idle attention starts
        ht, he = ht - L * c0a, he - L * idle * c0a
        gt, ge = self._g(S)
        return L * at + ht + gt, L * ae + he + ge

    def _rest(self, S: int, A: int, K: int, M: int) -> tuple[float, float]:
        if self._lin is not None:
            return self._fast(S, A, K, M)
        a_t, a_e, h_t, h_e = self._exact_rest(S, A, K, M)
        return self.cfg.layers * a_t + h_t, self.cfg.layers * a_e + h_e

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
