"""The small GPT's rows of ``labkit validate``: TTFT and TPOT measured here against ``lk.estimate`` (lab 08).

Each case is one call timed in torch eager, under ``torch.inference_mode()``, beside the analytic Profile
that describes it (labkit.llm.profiles), estimated on ``lk.device("local")`` at fp32:

- ``gpt prefill N``: the prompt pass of N tokens from an empty KV cache, as ``lk.llm.generate`` runs it
  (the time to first token; the model's forward computes logits for every position: ``all_logits=True``);
- ``gpt decode ctx C``: one decode step, 1 new token per sequence after C cached ones (the time per output
  token), at batch 1 and larger batches;
- ``gpt recompute ctx C``: the same next token without a cache, the whole C + 1 tokens again (what
  ``generate(kv_cache=False)`` does per token).

The KV cache's speed-up at the longest context is recompute / decode, measured and predicted.

On this 0.8M-parameter model every step is short (about a millisecond), so the fixed cost per torch op
matters: the Profile has 7 layers per block while eager torch runs about twice as many ops (views, the cache
writes, GELU, the residual adds), and the smallest steps are predicted the most too fast.

>>> from labkit.calibration.gptcases import cases
>>> [name for name, *_ in cases(None, names_only=True)][:2]
['gpt prefill 8', 'gpt prefill 32']
"""

from __future__ import annotations

from dataclasses import dataclass

NAME = "gpt"
PREFILL = (8, 32, 127)                                   # prompt lengths, batch 1
DECODE = ((8, 1), (64, 1), (126, 1), (64, 8), (64, 32))  # (context, batch)
LONG = 126                                               # the KV cache's speed-up is measured at this context


@dataclass(frozen=True)
class KVSpeedup:
    """The KV cache's speed-up per output token at one context: recompute time / decode-step time."""

    context: int
    measured: float
    predicted: float

    def __str__(self) -> str:
        return (f"KV cache at context {self.context}: a decode step is {self.measured:.1f}x faster than "
                f"recomputing the {self.context + 1} tokens (predicted {self.predicted:.1f}x)")


def step_profile(cfg, name: str, batch: int = 1, dtype: str = "fp32"):
    """The analytic Profile of the step a row `name` times (``"gpt prefill 8"``, ``"gpt decode ctx 64"``,
    ``"gpt recompute ctx 126"``), at `batch` and `dtype`; the GPU check (gpucheck.py) prices the same steps.

    >>> from labkit.llm.model import GPTConfig
    >>> step_profile(GPTConfig(), "gpt decode ctx 64", batch=8).batch
    8
    """
    from labkit.llm.profiles import decode, prefill

    kind, n = name.split()[1], int(name.split()[-1])
    if kind == "decode":
        return decode(cfg, n, batch=batch, dtype=dtype, eager=True)
    return prefill(cfg, n + (kind == "recompute"), batch=batch, dtype=dtype, all_logits=True, eager=True)


def cases(model, names_only: bool = False):
    """[(row name, batch, profile, fn, args)] for the small GPT `model` (lk.zoo.load("gpt").model).

    Every ``fn`` leaves the model and its cache as it found them, so a case can be timed any number of times.
    ``names_only``: the names and batches, nothing built (no torch).
    """
    names = ([(f"{NAME} prefill {n}", 1) for n in PREFILL] + [(f"{NAME} decode ctx {c}", b) for c, b in DECODE]
             + [(f"{NAME} recompute ctx {LONG}", 1)])
    if names_only:
        return [(name, b, None, None, ()) for name, b in names]
    import torch

    cfg = model.config
    out = []
    for n in PREFILL:
        ids = torch.zeros(1, n, dtype=torch.long)
        out.append((f"{NAME} prefill {n}", 1, step_profile(cfg, f"{NAME} prefill {n}"),
                    lambda ids=ids: model(ids, model.new_cache(1)), ()))
    for c, b in DECODE:
        cache = model.new_cache(b)
        with torch.inference_mode():
            model(torch.zeros(b, c, dtype=torch.long), cache)
        token = torch.zeros(b, 1, dtype=torch.long)

        def step(cache=cache, token=token, c=c):
            cache.length = c                     # back to C cached tokens: the step rewrites position C
            return model(token, cache)
        out.append((f"{NAME} decode ctx {c}", b, step_profile(cfg, f"{NAME} decode ctx {c}", b), step, ()))
    ids = torch.zeros(1, LONG + 1, dtype=torch.long)
    out.append((f"{NAME} recompute ctx {LONG}", 1, step_profile(cfg, f"{NAME} recompute ctx {LONG}"),
                lambda: model(ids), ()))
    return out


def speedup(rows) -> KVSpeedup | None:
    """The KV speed-up from validate's rows (None when the two rows it needs are not there)."""
    by_name = {(r.model, r.batch): r for r in rows}
    full, step = by_name.get((f"{NAME} recompute ctx {LONG}", 1)), by_name.get((f"{NAME} decode ctx {LONG}", 1))
    if full is None or step is None:
        return None
    return KVSpeedup(LONG, full.measured_s / step.measured_s, full.predicted_s / step.predicted_s)
