"""KV-cache size per sequence and how many sequences fit a device's memory (lab 08; the budget of lab 09).


>>> import labkit as lk
>>> lk.llm.kv_bytes("llama-3.1-8b", tokens=1, dtype="fp16")     # 2 x 32 x 1024 x 2 B = 128 KiB per token
131072
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from labkit.args import check_int
from labkit.dtypes import dtype_bytes
from labkit.llm.archs import config as lookup


def kv_bytes(model, tokens: int, dtype: str = "fp16", batch: int = 1) -> int:
    """Bytes of the KV cache for `batch` sequences of `tokens` tokens: 2 x layers x tokens x kv_dim x bytes (lab 08)."""
    cfg = lookup(model)
    check_int("tokens", tokens, 0)
    check_int("batch", batch, 1)
    return int(2 * cfg.layers * tokens * cfg.kv_dim * dtype_bytes(dtype) * batch)


@dataclass(frozen=True)
class KVBudget:
    """What fits in one device's memory: weights first, then as many full-length sequences' KV caches as fit."""

    model: str
    device: str
    tokens: int                     # length of each sequence (prompt + output)
    mem_bytes: int                  # device memory
    usable_bytes: int               # after the reserve for activations and the runtime
    weight_bytes: int
    kv_bytes_per_seq: int
    max_sequences: int              # 0: the weights alone do not fit

    def __repr__(self) -> str:
        return (f"KVBudget({self.model} on {self.device}: weights {self.weight_bytes / 1e9:.3g} GB, KV "
                f"{self.kv_bytes_per_seq / 1e6:.4g} MB per {self.tokens}-token sequence -> "
                f"{self.max_sequences} sequences in {self.usable_bytes / 1e9:.3g} GB usable)")


def max_sequences(model, device, tokens: int, dtype: str = "fp16", weight_bits: float | None = None,
                  kv_dtype: str | None = None, reserve: float = 0.1) -> KVBudget:
    """How many `tokens`-long sequences' KV caches fit beside the weights on `device` (lab 08).

    `weight_bits`: bits per stored weight (default: the dtype's); `reserve`: fraction of memory kept for
    activations and the runtime (vLLM's default gpu_memory_utilization is 0.9).

    >>> import labkit as lk
    >>> lk.llm.max_sequences("llama-3.1-8b", "h100-sxm", tokens=4096).max_sequences
    114
    """
    cfg = lookup(model)
    if isinstance(device, str):
        from labkit.targets import device as find

        device = find(device)
    check_int("tokens", tokens, 1)
    if not 0 <= reserve < 1:
        raise ValueError(f"reserve is the fraction of memory kept free, in [0, 1), got {reserve!r}")
    bits = weight_bits if weight_bits is not None else 8 * dtype_bytes(dtype)
    weights = int(math.ceil(cfg.params * bits / 8))
    per_seq = kv_bytes(cfg, tokens, kv_dtype or dtype)
    usable = int(device.mem_bytes * (1 - reserve))
    n = max(0, (usable - weights) // per_seq) if per_seq else 0
    return KVBudget(cfg.name, device.name, tokens, int(device.mem_bytes), usable, weights, per_seq, int(n))
