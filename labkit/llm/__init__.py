"""``lk.llm``: inside LLM inference — a small GPT trained here, KV cache, prefill vs decode (lab 08).

The small GPT: ``lk.zoo.load("gpt").model`` (labkit.llm.model), sampled with ``lk.llm.generate``.
Published models on paper: ``lk.llm.config(name)``, profiled with ``lk.llm.prefill`` / ``lk.llm.decode`` /
``lk.llm.step`` (analytic Profiles for ``lk.estimate``), KV-cache sizing with ``lk.llm.kv_bytes`` /
``lk.llm.max_sequences``, checked against published tokens/s by ``lk.llm.validate_published()``.

>>> import labkit as lk
>>> "llama-3.1-8b" in lk.llm.config_names()
True
"""

from __future__ import annotations

from labkit.lazy import namespace

_API = {
    "generate": "labkit.llm.sampling:generate",
    "Generation": "labkit.llm.sampling:Generation",
    "config": "labkit.llm.archs:config",
    "configs": "labkit.llm.archs:configs",
    "config_names": "labkit.llm.archs:names",
    "LLMConfig": "labkit.llm.archs:LLMConfig",
    "GPTConfig": "labkit.llm.model:GPTConfig",
    "KVCache": "labkit.llm.model:KVCache",
    "prefill": "labkit.llm.profiles:prefill",
    "decode": "labkit.llm.profiles:decode",
    "step": "labkit.llm.profiles:step",
    "kv_bytes": "labkit.llm.kv:kv_bytes",
    "max_sequences": "labkit.llm.kv:max_sequences",
    "KVBudget": "labkit.llm.kv:KVBudget",
    "val_loss": "labkit.llm.score:val_loss",
    "bigram_loss": "labkit.llm.score:bigram_loss",
    "encode": "labkit.llm.text:encode",
    "decode_text": "labkit.llm.text:decode",
    "published": "labkit.llm.validation:published",
    "validate_published": "labkit.llm.validation:validate_published",
    "tokens_per_s": "labkit.llm.validation:tokens_per_s",
    "step_time": "labkit.llm.validation:step_time",
    "quantize": "labkit.llm.quant:quantize",
    "Quantized": "labkit.llm.quant:Quantized",
    "model": "labkit.llm.model",
}

__all__ = sorted(_API)
__getattr__, __dir__ = namespace(globals(), _API, "lk.llm name")
