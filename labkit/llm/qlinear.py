"""Weight-only quantised linears that keep their integer codes, to time quantised decode on this CPU (lab 08).

``lk.llm.quantize`` answers "what does rounding cost in loss": it writes the dequantised values back into fp32
weights, so the model runs exactly as fast as before. ``pack`` answers "what does it do to speed": each Linear
becomes a ``QLinear`` that stores int8 codes (int4 values in [-7, 7], one per int8 here) and fp16-rounded
scales, and computes with one of two kernels:

* ``"dequant"``: every call rebuilds the fp32 weight from codes and scales, then runs the ordinary matmul —
  what a runtime without integer kernels does. It reads fewer bytes of *stored* weight but writes and reads a
  full fp32 copy each step, so on a CPU it is slower than fp32, not faster.
* ``"fused"``: torch's CPU weight-only kernels (``aten._weight_int8pack_mm``, per-channel int8;
  ``aten._weight_int4pack_mm_for_cpu``, group-wise int4), which unpack inside the matmul as llama.cpp does.
  The int4 kernel packs 16 output rows at a time: a layer with another row count (the GPT's 65-way head)
  falls back to ``"dequant"``.

Both compute what ``quantize`` computes (same codes, same scales), up to float rounding.

>>> import torch
>>> from labkit.llm.model import GPTConfig, build
>>> from labkit.llm.qlinear import pack
>>> q = pack(build(GPTConfig(layers=1, d_model=64, heads=2, context=16)), bits=4, group_size=32)
>>> type(q.blocks[0].attn.qkv).__name__, q.blocks[0].attn.qkv.q.dtype
('QLinear', torch.int8)
"""

from __future__ import annotations

KERNELS = ("dequant", "fused")


def _module():
    import torch
    import torch.nn.functional as F
    from torch import nn

    from labkit.llm.quant import dequantize_tensor, quantize_tensor

    class QLinear(nn.Module):
        """A Linear whose weight is stored as integer codes and scales (weight-only quantisation)."""

        def __init__(self, linear, bits: int, group_size: int | None, kernel: str):
            super().__init__()
            q, s = quantize_tensor(linear.weight.detach(), bits, group_size)
            self.bits, self.group_size, self.kernel = bits, group_size, kernel
            self.out_features, self.in_features = linear.weight.shape
            self.register_buffer("q", q)
            self.register_buffer("scales", s)
            self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())
            self._packed = None
            if kernel == "fused" and bits == 4 and self.out_features % 16:
                self.kernel = "dequant"                               # the int4 kernel packs rows by 16
            if self.kernel == "fused" and bits == 4:
                codes = (q.to(torch.int32) + 8)                       # unsigned nibbles 1..15, zero point 8
                self._packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
                self._scale_zeros = torch.stack([s.T.contiguous(), torch.zeros_like(s.T)], -1).contiguous()

        def weight_fp32(self):
            return dequantize_tensor(self.q, self.scales, self.group_size)

        def forward(self, x):
            if self.kernel == "dequant":
                return F.linear(x, self.weight_fp32(), self.bias)
            flat = x.reshape(-1, self.in_features)
            if self.bits == 8:
                y = torch.ops.aten._weight_int8pack_mm(flat, self.q, self.scales.reshape(-1))
            else:
                y = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self._packed, self.group_size,
                                                                self._scale_zeros)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            how = "per channel" if self.group_size is None else f"groups of {self.group_size}"
            return f"{self.in_features} -> {self.out_features}, int{self.bits} {how}, kernel={self.kernel}"

    return QLinear


def pack(model, bits: int = 8, group_size: int | None = None, kernel: str = "dequant"):
    """A copy of `model` whose Linears store int8 / int4 codes (``QLinear``), computing with `kernel` (lab 08).

    int8 is per output channel (``group_size=None``); int4 needs ``group_size`` (e.g. 32). ``kernel="fused"``
    uses torch's CPU weight-only matmuls; ``"dequant"`` rebuilds the fp32 weight every call.
    """
    import copy

    import torch

    from labkit.args import OneOf, check
    from labkit.llm.quant import _check

    _check(bits, group_size)
    check("kernel", kernel, OneOf(KERNELS))
    if bits == 4 and group_size is None:
        raise ValueError("int4 needs group-wise scales: pass group_size (e.g. 32)")
    if kernel == "fused" and bits == 8 and group_size is not None:
        raise ValueError("the fused int8 kernel takes one scale per output channel: group_size=None")
    qlinear = _module()
    clone = copy.deepcopy(model).eval()
    with torch.no_grad():
        for parent in list(clone.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.Linear):
                    setattr(parent, name, qlinear(child, bits, group_size, kernel))
    return clone
