"""``lk.llm.generate``: sample text from the small GPT, with or without a KV cache, timing TTFT and TPOT (lab 08).

"""

from __future__ import annotations

import time
from dataclasses import dataclass

from labkit.args import check_int
from labkit.llm import text


@dataclass(frozen=True)
class Generation:
    """Generated text and its timings: time to first token (prefill + first sample) and time per output token."""

    prompt: str
    text: str                       # the new characters only
    tokens: tuple[int, ...]         # their token ids
    ttft_s: float                   # prompt in -> first new token out
    tpot_s: float                   # mean time per output token after the first (0.0 if only one)
    total_s: float
    kv_cache: bool

    @property
    def tokens_per_s(self) -> float:
        """Decode rate after the first token: 1 / tpot_s."""
        return 1.0 / self.tpot_s if self.tpot_s else float("inf")

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return (f"Generation({len(self.tokens)} tokens, kv_cache={self.kv_cache}, TTFT {self.ttft_s * 1e3:.2f} ms, "
                f"TPOT {self.tpot_s * 1e3:.3f} ms, {self.tokens_per_s:,.0f} tokens/s: {shown!r})")


def _check(model, prompt, max_new_tokens, temperature, top_k, seed):
    if not hasattr(model, "config") or not hasattr(model, "new_cache"):
        raise ValueError(f"generate takes the small GPT (lk.zoo.load('gpt').model), got {type(model).__name__}")
    ids = text.encode(prompt)
    if not ids:
        raise ValueError("prompt is empty; give at least one character (e.g. '\\n')")
    check_int("max_new_tokens", max_new_tokens, 1)
    context = model.config.context
    if len(ids) + max_new_tokens > context:
        raise ValueError(f"prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) = "
                         f"{len(ids) + max_new_tokens} exceeds the model's context of {context} tokens; "
                         f"allowed: max_new_tokens <= {context - len(ids)} for this prompt")
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None:
        check_int("top_k", top_k, 1)
    check_int("seed", seed, 0)
    return ids


def _pick(logits, temperature, top_k, generator):
    import torch

    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None and top_k < logits.numel():
        cut = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < cut, float("-inf"))
    return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))


def generate(model, prompt: str, max_new_tokens: int = 100, temperature: float = 0.8, top_k: int | None = None,
             seed: int = 0, kv_cache: bool = True) -> Generation:
    """Continue `prompt` by `max_new_tokens` characters and time it (lab 08).

    ``temperature=0`` is greedy. Prompt + new tokens must fit the context (128 for the shipped model).

    >>> import labkit as lk
    >>> gpt = lk.zoo.load("gpt").model
    >>> a = lk.llm.generate(gpt, "ROMEO:", 20, temperature=0)
    >>> b = lk.llm.generate(gpt, "ROMEO:", 20, temperature=0, kv_cache=False)
    >>> a.text == b.text and len(a.text) == 20
    True
    """
    ids = _check(model, prompt, max_new_tokens, temperature, top_k, seed)
    import torch

    generator = torch.Generator().manual_seed(seed)
    out: list[int] = []
    stamps: list[float] = []
    with torch.inference_mode():
        start = time.perf_counter()
        if kv_cache:
            cache = model.new_cache(1)
            logits = model(torch.tensor([ids]), cache)[0, -1]
            for i in range(max_new_tokens):
                out.append(_pick(logits, temperature, top_k, generator))
                stamps.append(time.perf_counter())
                if i + 1 < max_new_tokens:
                    logits = model(torch.tensor([[out[-1]]]), cache)[0, -1]
        else:
            seq = torch.tensor([ids])
            for _ in range(max_new_tokens):
                out.append(_pick(model(seq)[0, -1], temperature, top_k, generator))
                stamps.append(time.perf_counter())
                seq = torch.cat([seq, torch.tensor([[out[-1]]])], 1)
    ttft = stamps[0] - start
    tpot = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else 0.0
    return Generation(prompt, text.decode(out), tuple(out), ttft, tpot, stamps[-1] - start, bool(kv_cache))
