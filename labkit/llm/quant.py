"""Weight-only quantisation by hand: int8 per output channel and int4 in groups, as LLM runtimes do (lab 08).


>>> import torch
>>> from labkit.llm.quant import quantize_tensor, dequantize_tensor
>>> w = torch.tensor([[0.5, -1.0, 0.25, 0.0]])
>>> q, s = quantize_tensor(w, bits=8)
>>> q.tolist(), round(float(s[0, 0]), 5)
([[64, -127, 32, 0]], 0.00787)
>>> dequantize_tensor(q, s, group_size=None).allclose(w, atol=s.max() / 2)
True
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.args import check_int

SCALE_BITS = 16          # scales stored as fp16, as llama.cpp and MLX do


def _check(bits, group_size):
    if bits not in (4, 8):
        raise ValueError(f"bits must be 8 (per-channel) or 4 (group-wise), got {bits!r}")
    if group_size is not None:
        check_int("group_size", group_size, 1)


def quantize_tensor(w, bits: int = 8, group_size: int | None = None):
    """Symmetric integer codes and scales of a 2-D weight (out, in): one scale per row, or per row-group (lab 08).

    Returns ``(q, scales)``: q int8 of w's shape (int4 values lie in [-7, 7]); scales (out, 1) per channel or
    (out, in / group_size) per group.
    """
    import torch

    _check(bits, group_size)
    if w.dim() != 2:
        raise ValueError(f"quantize_tensor takes a 2-D weight (out_features, in_features), got shape {tuple(w.shape)}")
    qmax = 2 ** (bits - 1) - 1
    rows, cols = w.shape
    if group_size is None:
        groups = w.reshape(rows, 1, cols)
    else:
        if cols % group_size:
            raise ValueError(f"in_features ({cols}) must be a multiple of group_size ({group_size})")
        groups = w.reshape(rows, cols // group_size, group_size)
    scales = groups.abs().amax(-1, keepdim=True).clamp(min=1e-12) / qmax
    scales = scales.half().float()                       # stored as fp16: quantise with the stored scale
    q = torch.clamp(torch.round(groups / scales), -qmax, qmax).to(torch.int8)
    return q.reshape(rows, cols), scales.squeeze(-1)


def dequantize_tensor(q, scales, group_size: int | None = None):
    """The floating-point weight a runtime reconstructs from codes and scales (lab 08)."""
    rows, cols = q.shape
    g = cols if group_size is None else group_size
    return (q.float().reshape(rows, cols // g, g) * scales.unsqueeze(-1)).reshape(rows, cols)


@dataclass(frozen=True)
class Quantized:
    """A weight-only quantised copy of a model, what it stores, and the rounding error it made."""

    model: object                   # same architecture; linear weights replaced by their dequantised values
    bits: int
    group_size: int | None          # None: one scale per output channel
    weight_bits: float              # bits per quantised weight, scales included
    bytes: int                      # whole model: quantised linears + fp32 for everything else
    fp32_bytes: int
    max_abs_error: float            # largest |w - dequantised w| over all quantised weights

    @property
    def compression(self) -> float:
        return self.fp32_bytes / self.bytes

    def __repr__(self) -> str:
        how = "per channel" if self.group_size is None else f"groups of {self.group_size}"
        return (f"Quantized(int{self.bits} {how}: {self.weight_bits:.3g} bits/weight, {self.bytes:,} bytes "
                f"({self.compression:.2f}x smaller than fp32), max |error| {self.max_abs_error:.2e})")


def quantize(model, bits: int = 8, group_size: int | None = None) -> Quantized:
    """Weight-only quantise every Linear of `model` (int8: per channel; int4: ``group_size=32`` typical) (lab 08).

    The returned model computes with the dequantised weights, so its loss is what the stored integers give.

    >>> import labkit as lk
    >>> q4 = lk.llm.quantize(lk.llm.model.build(), bits=4, group_size=32)
    >>> q4.weight_bits
    4.5
    """
    import copy

    import torch

    _check(bits, group_size)
    if bits == 4 and group_size is None:
        raise ValueError("int4 needs group-wise scales: pass group_size (e.g. 32); per-channel int4 loses too much")
    clone = copy.deepcopy(model).eval()
    total_bits = quant_weights = 0
    fp32_bytes = sum(p.numel() * 4 for p in model.parameters())
    worst = 0.0
    with torch.no_grad():
        for module in clone.modules():
            if isinstance(module, torch.nn.Linear):
                w = module.weight
                q, s = quantize_tensor(w, bits, group_size)
                deq = dequantize_tensor(q, s, group_size)
                worst = max(worst, float((deq - w).abs().max()))
                w.copy_(deq)
                quant_weights += w.numel()
                total_bits += w.numel() * bits + s.numel() * SCALE_BITS
    other = fp32_bytes - quant_weights * 4
    return Quantized(clone, bits, group_size, total_bits / quant_weights, int(other + total_bits // 8),
                     int(fp32_bytes), worst)
