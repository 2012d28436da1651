"""The small GPT's engine, in torch: a slot-based KV cache, one-sequence prefill, batched decode of sequences of
different lengths, and the step costs measured on this machine (lab 09; served by ``lk.deploy.serve_llm``).

The KV cache holds ``slots`` sequences (``(slots, heads, context, head_dim)`` keys and values per layer). A step
writes each new token's keys and values at ``(slot, position)`` and attends, per sequence, to the positions up to
its own (a mask), so sequences of different lengths decode together in one batched forward pass. Greedy only.

``measure_step_cost`` times that engine's prefill and decode here and fits
``decode(S sequences, K cached positions) = a + b S + c K`` and ``prefill(n tokens) = p + q n``: a step cost
(``GPTStepCost``) that ``lk.deploy.serve_llm_sim(..., cost=...)`` takes instead of the roofline fit, so the
simulator and the served engine price the same steps.

>>> from labkit.deploy.gpt_engine import measure_step_cost
>>> cost = measure_step_cost(repeats=2)                              # doctest: +SKIP
>>> 0 < cost.step([40, 60], [30])[0] < 0.1                           # doctest: +SKIP
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


class Engine:
    """The GPT's weights and a KV cache of `slots` sequences (lab 09): ``step(slots, ids, pos)`` -> next tokens.

    >>> import labkit as lk
    >>> from labkit.deploy.gpt_engine import Engine
    >>> eng = Engine(lk.zoo.load("gpt").model, slots=2)
    >>> first = eng.prefill(0, lk.llm.text.encode("ROMEO:"))
    >>> first == lk.llm.generate(lk.zoo.load("gpt").model, "ROMEO:", 1, temperature=0).tokens[0]
    True
    """

    def __init__(self, model, slots: int):
        import torch

        c = model.config
        self.model, self.config, self.slots, self.torch = model, c, int(slots), torch
        shape = (self.slots, c.heads, c.context, c.head_dim)
        self.k = [torch.zeros(shape) for _ in range(c.layers)]
        self.v = [torch.zeros(shape) for _ in range(c.layers)]

    def forward(self, slots, ids, pos):
        """Logits of each sequence's last new token: `slots` (B,), `ids` and `pos` (B, T) long tensors."""
        torch, m = self.torch, self.model
        F = torch.nn.functional
        B, T = ids.shape
        L = int(pos.max()) + 1
        mask = torch.arange(L).view(1, 1, 1, L) <= pos.view(B, 1, T, 1)        # (B, 1, T, L)
        rows = slots.view(B, 1).expand(B, T)
        x = m.embed(ids) + m.pos(pos)
        for i, blk in enumerate(m.blocks):
            a = blk.attn
            q, k, v = (t.view(B, T, a.heads, a.head_dim).transpose(1, 2) for t in a.qkv(blk.ln1(x)).chunk(3, -1))
            self.k[i][rows, :, pos] = k.transpose(1, 2)                           # (B, T, H, Dh) at (slot, pos)
            self.v[i][rows, :, pos] = v.transpose(1, 2)
            y = F.scaled_dot_product_attention(q, self.k[i][slots, :, :L], self.v[i][slots, :, :L], attn_mask=mask)
            x = x + a.out(y.transpose(1, 2).reshape(B, T, -1))
            x = x + blk.mlp(blk.ln2(x))
        return m.head(m.ln(x[:, -1]))

    def prefill(self, slot: int, ids) -> int:
        """Run a whole prompt into `slot` (positions 0..n-1); its first output token (greedy)."""
        torch = self.torch
        n = len(ids)
        with torch.inference_mode():
            logits = self.forward(torch.tensor([slot]), torch.tensor([list(ids)]), torch.arange(n).view(1, n))
        return int(logits[0].argmax())

    def decode(self, slots, last, lengths) -> list[int]:
        """One batched decode step: sequence b (in `slots[b]`, `lengths[b]` tokens cached) reads `last[b]`."""
        torch = self.torch
        S = len(slots)
        with torch.inference_mode():
            logits = self.forward(torch.tensor(slots), torch.tensor(last).view(S, 1), torch.tensor(lengths).view(S, 1))
        return logits.argmax(-1).tolist()


@dataclass(frozen=True)
class GPTStepCost:
    """Seconds of one engine step of the small GPT, measured on this machine (lab 09): a drop-in ``cost=`` for
    ``lk.deploy.serve_llm_sim``. A step decodes S sequences reading K cached positions in one batched pass and
    prefills each new prompt in its own pass: ``a + b S + c K`` (when S > 0) ``+ sum(p + q n)``. Joules: 0."""

    decode_base_s: float
    decode_per_seq_s: float
    decode_per_ctx_s: float
    prefill_base_s: float
    prefill_per_token_s: float
    samples: int
    fit_error: float                      # worst relative error of the fit on its own samples
    where: str = "measured here"
    cfg: object = field(default=None, repr=False, compare=False)
    linear = False                         # no vectorised fast-forward in the simulator: every step is priced

    def decode_s(self, S: int, K: int) -> float:
        return self.decode_base_s + self.decode_per_seq_s * S + self.decode_per_ctx_s * K if S else 0.0

    def prefill_s(self, n: int) -> float:
        return self.prefill_base_s + self.prefill_per_token_s * n

    def step(self, decode_contexts=(), prefill=()) -> tuple[float, float]:
        """(seconds, 0.0) of a step decoding sequences with these contexts and prefilling these prompts."""
        ctx = [int(c) for c in decode_contexts]
        t = self.decode_s(len(ctx), sum(ctx) + len(ctx))
        for p in prefill:
            t += self.prefill_s(int(p[1]) if isinstance(p, (tuple, list)) else int(p))
        return float(t), 0.0

    def scaled(self, factor: float, where: str | None = None) -> GPTStepCost:
        """Every coefficient x `factor` (e.g. ``ServedLLM.dilation``: how much slower the passes ran in service)."""
        from dataclasses import replace

        return replace(self, decode_base_s=self.decode_base_s * factor, decode_per_seq_s=self.decode_per_seq_s * factor,
                       decode_per_ctx_s=self.decode_per_ctx_s * factor, prefill_base_s=self.prefill_base_s * factor,
                       prefill_per_token_s=self.prefill_per_token_s * factor,
                       where=where or f"{self.where}, x {factor:.3g}")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("decode_base_s", "decode_per_seq_s", "decode_per_ctx_s",
                                              "prefill_base_s", "prefill_per_token_s", "samples", "fit_error",
                                              "where")}


def _best_time(fn, repeats: int) -> float:
    """The fastest of `repeats` timed calls (after a warm one): on a shared CPU, noise only ever adds time."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


def fit_step_cost(engine: Engine, max_batch: int = 8, repeats: int = 7, where: str = "measured here") -> GPTStepCost:
    """Time `engine`'s prefill and batched decode on a small grid and fit ``GPTStepCost`` (the fastest of
    `repeats` calls each: the cost without contention; ``ServedLLM.dilation`` says how much slower it ran in service).
    Both fits are non-negative least squares (scipy's ``nnls``): noise can tilt a plain fit into a negative
    intercept or slope, which no step has."""
    from scipy.optimize import nnls

    from labkit.llm.archs import config

    ctx = engine.config.context
    batches = sorted({1, 2, max(1, max_batch // 2), max_batch} & set(range(1, engine.slots + 1)))
    rows, ys = [], []
    for S in batches:
        for length in (ctx // 8, ctx // 2, ctx - 2):
            slots, last, lens = list(range(S)), [0] * S, [length] * S
            rows.append((1.0, S, S * (length + 1)))
            ys.append(_best_time(lambda s=slots, t=last, n=lens: engine.decode(s, t, n), repeats))
    X = np.array(rows)
    dec = nnls(X, np.array(ys))[0]
    ns = [4, ctx // 4, ctx // 2, ctx - 2]
    pre_y = [_best_time(lambda n=n: engine.prefill(0, [0] * n), repeats) for n in ns]
    pre = nnls(np.array([[n, 1.0] for n in ns]), np.array(pre_y))[0]          # (q, p): np.polyval's order
    fitted = list(X @ dec) + list(np.polyval(pre, ns))
    err = float(np.max(np.abs(np.array(fitted) / np.array(ys + pre_y) - 1)))
    return GPTStepCost(float(dec[0]), float(dec[1]), float(dec[2]), float(pre[1]), float(pre[0]), len(fitted), err,
                       where, config("gpt"))


def measure_step_cost(max_batch: int = 8, repeats: int = 7, threads: int = 1) -> GPTStepCost:
    """The shipped GPT's step costs measured in this process with `threads` torch threads (restored after) (lab 09).

    ``lk.deploy.serve_llm`` measures the same inside its replica (``served.step_cost``); this is the no-Ray way.
    """
    import torch

    from labkit.llm.model import load

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fit_step_cost(Engine(load().model, max_batch), max_batch, repeats, "measured in this process")
    finally:
        torch.set_num_threads(before)


def local_measured():
    """This machine as a Device for the simulator, without a roofline calibration: the GPT's measured step costs
    price every step (``cost=``), so only its name, memory and power are used."""
    import platform

    import psutil

    from labkit.targets.devices import Device

    idle_w, busy_w = 1.5, 6.0          # W for the one CPU the replica uses: labkit.calibration's documented estimate
    return Device("local", "local", platform.processor() or "this CPU", {"fp32": 1e9}, mem_bw_bytes_per_s=1e9,
                  mem_bytes=float(psutil.virtual_memory().total), idle_w=idle_w, peak_w=busy_w,
                  notes="this machine; steps priced by the small GPT's measured step costs, not a roofline")
