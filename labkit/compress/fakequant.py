"""Quantisation by hand: map floats to b-bit integer codes and back, and measure what was lost (lab 02).

A quantiser keeps a ``scale`` (the float step between neighbouring codes) and a ``zero_point`` (the code
that stands for 0.0). Quantise: ``code = clamp(round(x / scale) + zero_point, qmin, qmax)``; dequantise:
``(code - zero_point) * scale``. The round trip ``fake_quant`` returns is what an int8 kernel "sees".

- symmetric (restricted range, zero point 0): ``scale = max|x| / (2^(b-1) - 1)``, codes in
  ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` — what weights use;
- asymmetric (affine): the range ``[min(x, 0), max(x, 0)]`` spread over ``[0, 2^b - 1]`` with
  ``scale = (hi - lo) / (2^b - 1)`` and ``zero_point = round(-lo / scale)`` — better for one-sided
  tensors such as post-ReLU activations, where symmetric wastes half its codes on negatives that never occur.

Per-channel (``axis=0`` for a Conv/Linear weight: one scale per output channel) follows each channel's
own range instead of the largest one in the tensor. Rounding is round-half-to-even, as torch's
``fake_quantize_per_tensor_affine`` / ``fake_quantize_per_channel_affine`` do, so their results match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from labkit.args import Bool, Int, OneOf, check

SCHEMES = ("symmetric", "asymmetric")
MIN_BITS, MAX_BITS = 2, 16
BITS = Int(low=MIN_BITS, high=MAX_BITS)


def code_range(bits: int, scheme: str) -> tuple[int, int]:
    """(qmin, qmax): the integer codes a `bits`-bit quantiser of `scheme` uses (lab 02).

    >>> code_range(8, "symmetric"), code_range(8, "asymmetric")
    ((-127, 127), (0, 255))
    """
    bits, scheme = check("bits", bits, BITS), check("scheme", scheme, OneOf(SCHEMES))
    if scheme == "symmetric":
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1




def _as_tensor(x):
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, (np.ndarray, list, tuple, int, float, np.generic)):
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    else:
        raise ValueError(f"x must be a torch tensor, a numpy array or a list of numbers, got {type(x).__name__}.")
    if t.numel() == 0:
        raise ValueError("x must have at least one element, got an empty tensor.")
    t = t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("x must be finite (no NaN or inf): a quantiser's range would be undefined.")
    return t


@dataclass(frozen=True, repr=False)
class FakeQuant:
    """A tensor quantised and dequantised, with the integer codes and the error it cost (lab 02).

    ``values`` = ``(codes - zero_point) * scale`` (float32, same shape as the input); ``scale`` and
    ``zero_point`` are a float and an int per tensor, or 1-d tensors (one per channel along ``axis``).
    ``mse``, ``max_abs_error`` and ``sqnr_db`` (signal-to-quantisation-noise ratio, 10·log10(Σx² / Σerr²);
    inf when nothing was lost) compare ``values`` with the original.

    >>> import labkit as lk
    >>> fq = lk.compress.fake_quant([0.5, -1.0, 0.25], bits=8)
    >>> fq.codes.tolist(), round(fq.scale, 6), fq.zero_point
    ([64, -127, 32], 0.007874, 0)
    """

    values: object
    codes: object
    scale: object
    zero_point: object
    bits: int
    scheme: str
    axis: int | None
    mse: float
    max_abs_error: float
    sqnr_db: float

    @property
    def qmin(self) -> int:
        """The smallest code this quantiser uses."""
        return code_range(self.bits, self.scheme)[0]

    @property
    def qmax(self) -> int:
        """The largest code this quantiser uses."""
        return code_range(self.bits, self.scheme)[1]

    def levels(self, channel: int | None = None):
        """The float values the codes stand for, ``(code - zero_point) * scale`` for every code (lab 02).

        Per-channel quantisers need ``channel`` (which channel's grid).

        >>> import labkit as lk
        >>> lk.compress.fake_quant([1.0, -1.0], bits=2).levels().tolist()
        [-1.0, 0.0, 1.0]
        """
        import torch

        codes = torch.arange(self.qmin, self.qmax + 1, dtype=torch.float32)
        if self.axis is None:
            return (codes - self.zero_point) * self.scale
        count = len(self.scale)
        channel = check("channel (this quantiser is per-channel)", channel, Int(low=0, high=count - 1))
        return (codes - float(self.zero_point[channel])) * float(self.scale[channel])

    def __repr__(self) -> str:
        where = "per-tensor" if self.axis is None else f"per-channel (axis {self.axis}, {len(self.scale)} channels)"
        scale = f"scale {self.scale:.4g}" if self.axis is None else \
            f"scales {float(self.scale.min()):.3g}..{float(self.scale.max()):.3g}"
        return (f"FakeQuant({self.bits}-bit {self.scheme} {where}, shape {tuple(self.values.shape)}, {scale}, "
                f"mse {self.mse:.3g}, max error {self.max_abs_error:.3g}, SQNR {self.sqnr_db:.1f} dB)")


def _params(lo, hi, bits: int, scheme: str):
    """Scale and zero point (float32 / int32 tensors, broadcast over channels) from each range."""
    import torch

    qmin, qmax = code_range(bits, scheme)
    if scheme == "symmetric":
        scale = torch.maximum(hi.abs(), lo.abs()) / qmax
    else:
        lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)
        scale = (hi - lo) / (qmax - qmin)
    # all-zero: scale 1; otherwise at least float32's eps, as torch's observers do (1/scale stays finite)
    scale = torch.where(scale > 0, torch.clamp(scale, min=torch.finfo(torch.float32).eps), torch.ones_like(scale))
    if scheme == "symmetric":
        zero_point = torch.zeros_like(scale, dtype=torch.int32)
    else:
        zero_point = torch.clamp(torch.round(-lo / scale), qmin, qmax).to(torch.int32)
    return scale.to(torch.float32), zero_point


def fake_quant(x, bits: int = 8, scheme: str = "symmetric", axis: int | None = None) -> FakeQuant:
    """Quantise `x` to `bits`-bit integer codes and back; returns codes, scale, zero point and the error (lab 02).

    ``scheme``: "symmetric" (zero point 0, codes ±(2^(b-1) - 1)) or "asymmetric" (range [min(x,0), max(x,0)]
    onto [0, 2^b - 1]). ``axis=None`` is per-tensor (one scale); ``axis=k`` gives one scale per index along
    dimension k (``axis=0``: per output channel of a Conv or Linear weight). ``bits`` from 2 to 16.
    An all-zero tensor (or channel) gets scale 1, and no scale is below float32's eps (as torch's observers),
    so nothing divides by zero.

    >>> import labkit as lk
    >>> fq = lk.compress.fake_quant([0.0, 0.3, 1.0], bits=8, scheme="asymmetric")
    >>> fq.zero_point, fq.codes.tolist()
    (0, [0, 76, 255])
    """
    import torch

    bits, scheme = check("bits", bits, BITS), check("scheme", scheme, OneOf(SCHEMES))
    t = _as_tensor(x)
    qmin, qmax = code_range(bits, scheme)
    if axis is None:
        lo, hi = t.min(), t.max()
        shape = ()
    else:
        axis = check(f"axis (None: per-tensor) of a tensor of shape {tuple(t.shape)}", axis,
                     Int(low=-t.dim(), high=t.dim() - 1))
        axis = axis % t.dim()
        moved = t.movedim(axis, 0).reshape(t.shape[axis], -1)
        lo, hi = moved.min(dim=1).values, moved.max(dim=1).values
        shape = [1] * t.dim()
        shape[axis] = -1
    scale, zero_point = _params(lo, hi, bits, scheme)
    s = scale.reshape(shape)
    z = zero_point.reshape(shape).to(torch.float32)
    inv_scale = 1.0 / s                                   # multiply by 1/scale, as torch's kernels do
    codes = torch.clamp(torch.round(t * inv_scale) + z, qmin, qmax)
    values = (codes - z) * s
    err = (t - values).double()
    noise = float((err ** 2).sum())
    signal = float((t.double() ** 2).sum())
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    if axis is None:
        scale_out, zp_out = float(scale), int(zero_point)
    else:
        scale_out, zp_out = scale, zero_point
    return FakeQuant(values=values, codes=codes.to(torch.int32), scale=scale_out, zero_point=zp_out, bits=bits,
                     scheme=scheme, axis=axis, mse=float((err ** 2).mean()), max_abs_error=float(err.abs().max()),
                     sqnr_db=sqnr)


def _weight_axis(module) -> int:
    """The output-channel axis of a Conv/Linear weight: 0, except ConvTranspose (in, out/groups, ...): 1."""
    import torch

    return 1 if isinstance(module, torch.nn.modules.conv._ConvTransposeNd) else 0


def quantize_weights(model, bits: int = 8, scheme: str = "symmetric", per_channel: bool = True):
    """A copy of a torch model with every Conv/Linear weight fake-quantised to `bits` bits (lab 02).

    Biases, batch-norm parameters and activations stay float32, so the accuracy of the copy shows what
    quantising the weights alone costs. ``per_channel=True`` gives each output channel its own scale.
    The original model is not changed.

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("mlp")
    >>> q = lk.compress.quantize_weights(model, bits=4)
    >>> len(q.fc1.weight[0].unique()) <= 15
    True
    """
    import copy

    import torch

    bits, scheme = check("bits", bits, BITS), check("scheme", scheme, OneOf(SCHEMES))
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    per_channel = check("per_channel", per_channel, Bool())
    layers = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)
    if not any(isinstance(m, layers) for m in model.modules()):
        raise ValueError(f"{type(model).__name__} has no Conv or Linear layer whose weights could be quantised.")
    quantized = copy.deepcopy(model)
    with torch.no_grad():
        for module in quantized.modules():
            if isinstance(module, layers):
                axis = _weight_axis(module) if per_channel else None
                module.weight.copy_(fake_quant(module.weight, bits, scheme, axis=axis).values)
    return quantized
