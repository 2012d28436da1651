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

from labkit.args import namespace
from labkit.llm import model
from labkit.llm.archs import LLMConfig, config, configs
from labkit.llm.archs import names as config_names
from labkit.llm.kv import KVBudget, kv_bytes, max_sequences
from labkit.llm.model import GPTConfig, KVCache
from labkit.llm.profiles import decode, prefill, step
from labkit.llm.qlinear import pack
from labkit.llm.quant import Quantized, dequantize_tensor, quantize, quantize_tensor
from labkit.llm.sampling import Generation, generate
from labkit.llm.score import bigram_loss, val_loss
from labkit.llm.text import decode as decode_text
from labkit.llm.text import encode
from labkit.llm.validation import published, step_time, tokens_per_s, validate_published

__all__ = ["GPTConfig", "Generation", "KVBudget", "KVCache", "LLMConfig", "Quantized", "bigram_loss", "config",
           "config_names", "configs", "decode", "decode_text", "dequantize_tensor", "encode", "generate", "kv_bytes", "max_sequences",
           "model", "pack", "prefill", "published", "quantize", "quantize_tensor", "step", "step_time", "tokens_per_s", "val_loss",
           "validate_published"]

__getattr__, __dir__ = namespace("lk.llm", __all__)
