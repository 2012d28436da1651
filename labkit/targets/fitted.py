"""What a calibrated device's fits price, and how (lab 00): ``OpFit`` (one op class's fitted cost), the fit that
prices a layer (``fit_for``, under the op name ``fit_op`` gives it: a torch conv's kernel, a torch max pool that
spills from the core's cache), the memory tier its working set streams from, faulting in fresh buffers (a layer's
output; and the blocked copies oneDNN makes of a torch conv's input and output, ``fresh_buffers``, whose traffic
``reorder_bytes`` counts, and the padded channels it computes, ``blocked_flops``), and the fixed cost of a model
call; the cold-cache cost a layer pays among other layers is labkit/targets/cold.py's. ``lk.estimate`` and the
calibration's fit both price through these, so the two cannot drift apart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class OpFit:
    """A fitted cost for one op class on a calibrated device (Hockney's r∞ / n½ idea):
    ``t = startup_s + max(flops / flops_per_s, bytes / bytes_per_s)``, or with ``overlap=False`` (compute
    and data movement one after the other, as small CPU kernels run: labkit.calibration.calibrate's fits)
    ``t = startup_s + flops / flops_per_s + bytes / bytes_per_s``; plus ``kernel_call_s`` per small kernel a
    depthwise convolution runs as (``Layer.kernel_calls``: channels x images), ``weight_s`` per weight a GEMM
    packs on each call (``Layer.packed_weights``), ``small_gemm_weight_s`` more per weight of a GEMM with
    few rows (``Layer.small_gemm_weights``), and ``small_image_gemm_weight_s`` per weight and image of a conv
    on maps of few pixels (``Layer.small_image_gemm_weights``)."""

    startup_s: float
    flops_per_s: float
    bytes_per_s: float
    overlap: bool = True
    kernel_call_s: float = 0.0
    weight_s: float = 0.0
    small_gemm_weight_s: float = 0.0
    small_image_gemm_weight_s: float = 0.0

    def time_s(self, flops: float, nbytes: float, cap_bytes_per_s: float = math.inf, calls: int = 0,
               weights: int = 0, small_weights: int = 0, image_weights: int = 0) -> float:
        """Seconds for one layer of `flops` and `nbytes` under this fit: the one owner of the calibrated formula
        (``lk.estimate``'s layer_time and the calibration's fit both use it). `cap_bytes_per_s` is what the
        memory tier holding the layer's working set delivers (``tier_bytes_per_s``): the fit's rate, measured
        on cache-sized data, cannot beat it. `calls`, `weights`, `small_weights` and `image_weights` are the
        layer's ``unit_counts`` (kernel calls, packed weights, weights of a GEMM with few rows, and of a conv on
        small maps once per image).

        >>> OpFit(1e-5, 1e10, 1e9).time_s(1e6, 1e4)                  # 10 µs + max(100 µs, 10 µs)
        0.00011
        >>> round(OpFit(1e-5, 1e10, 1e9, overlap=False).time_s(1e6, 1e4), 9)   # 10 + 100 + 10 µs
        0.00012
        >>> round(OpFit(0, 1e10, 1e9, overlap=False).time_s(0, 1e4, cap_bytes_per_s=5e8), 9)   # 1e4 B at 0.5 GB/s
        2e-05
        >>> round(OpFit(0, 1e10, 1e9, weight_s=3e-10).time_s(0, 0, weights=10**6) * 1e6, 3)   # 1M weights packed
        300.0
        """
        compute_s, memory_s = self.terms(flops, nbytes, cap_bytes_per_s)
        work_s = max(compute_s, memory_s) if self.overlap else compute_s + memory_s
        return (self.startup_s + calls * self.kernel_call_s + weights * self.weight_s
                + small_weights * self.small_gemm_weight_s + image_weights * self.small_image_gemm_weight_s
                + work_s)

    def terms(self, flops: float, nbytes: float, cap_bytes_per_s: float = math.inf) -> tuple[float, float]:
        """``(compute_s, memory_s)`` of one layer under this fit: what ``time_s`` adds (or overlaps), and what
        decides whether lk.estimate calls the layer compute- or memory-bound.

        >>> OpFit(0, 1e10, 1e9).terms(1e6, 1e4, cap_bytes_per_s=5e8)
        (0.0001, 2e-05)
        """
        compute_s = flops / self.flops_per_s if flops else 0.0
        memory_s = nbytes / min(self.bytes_per_s, cap_bytes_per_s) if nbytes else 0.0
        return compute_s, memory_s


def tier_bytes_per_s(tiers, nbytes: float) -> float:
    """Bandwidth (bytes/s) of the memory tier a working set of `nbytes` streams from, on a calibrated device:
    `tiers` is ``((working_set_bytes, bytes_per_s), ...)``, a copy measured beyond the caches' plateau (lab 00).
    Below the first size the data sits in cache and nothing caps the fit (``inf``); between sizes the rate is
    interpolated on log size; beyond the last, the last (DRAM).

    >>> tiers = ((8e6, 100e9), (64e6, 40e9), (256e6, 30e9))
    >>> tier_bytes_per_s(tiers, 1e6), tier_bytes_per_s(tiers, 1e9) / 1e9
    (inf, 30.0)
    >>> round(tier_bytes_per_s(tiers, 128e6) / 1e9, 1)              # halfway on log size
    35.0
    """
    if not tiers or nbytes < tiers[0][0]:
        return math.inf
    sizes = [math.log(s) for s, _ in tiers]
    rates = [r for _, r in tiers]
    x = math.log(nbytes)
    for i in range(1, len(sizes)):
        if x <= sizes[i]:
            w = (x - sizes[i - 1]) / (sizes[i] - sizes[i - 1])
            return rates[i - 1] + w * (rates[i] - rates[i - 1])
    return rates[-1]


def fresh_output_s(fresh: tuple[float, float] | None, out_bytes: float) -> float:
    """Seconds a layer spends faulting in a freshly allocated output of `out_bytes`: ``fresh`` is
    ``(threshold_bytes, seconds_per_byte)`` as measured by the calibration (lab 00). torch on glibc maps outputs
    above glibc's mmap threshold (32 MiB at most) anew on every call and touches every page, unless a free chunk
    of the heap can hold one (freed memory stays there, labkit/allocator.py): a process whose heap grew on other
    work faults less than this prices. ``import labkit`` puts torch's big buffers in huge pages, which fault in
    about five times faster (the calibration measures whichever it gets). ONNX Runtime reuses its arena
    (``fresh`` is None).

    >>> round(fresh_output_s((32 * 2**20, 3e-10), 64 * 2**20) * 1e3, 2)   # ms: 64 MiB at ~3.3 GB/s of faults
    20.13
    >>> fresh_output_s((32 * 2**20, 3e-10), 2**20), fresh_output_s(None, 2**30)
    (0.0, 0.0)
    """
    if not fresh or out_bytes < fresh[0]:
        return 0.0
    return out_bytes * fresh[1]


@lru_cache(maxsize=1)
def onednn_block() -> int:
    """Channels per block of oneDNN's fp32 layouts on this CPU: 16 where it runs AVX-512 code (``aBcd16b``), 8
    below that (AVX2's ``aBcd8b``). ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) caps oneDNN's ISA, as oneDNN
    reads it; else torch's CPU capability tells (lab 00).

    >>> onednn_block() in (8, 16)
    True
    """
    isa = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    if isa and isa != "ALL":
        return 16 if isa.startswith(("AVX512", "AVX10")) else 8
    import torch

    return 16 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 8


def fresh_buffers(layer, torch_threads: int = 0, bytes_per_elem: float | None = None) -> tuple[int, ...]:
    """Bytes of each buffer `layer` writes freshly allocated on every call, which ``fresh_output_s`` prices: its
    output; and for a convolution that torch eager (``torch_threads`` > 0; 0: another runtime) runs in oneDNN
    (``fit_op``), two more, because oneDNN computes in a channel-blocked layout: the blocked copy it reorders its
    input into (not for an ungrouped conv of fewer input channels than a block, which oneDNN reads in place,
    unless its 1x1 kernel runs it: that one reads only blocked inputs) and the blocked output it reorders back.
    Blocked copies round channels up to whole blocks (``onednn_block``: 16 on AVX-512, 8 on AVX2).
    `bytes_per_elem`: the dtype's size (default: the layer's). Shown by ``ONEDNN_VERBOSE=1`` (reorder, conv,
    reorder) and by the page faults of one call (lab 00's machine: a depthwise conv of a 55 MiB map at batch 32
    faulted in 165 MiB, three times its output).

    >>> from labkit.profile.core import Layer
    >>> dw = Layer("c", "conv2d", "dwconv", ("input",), 0, 0, 0, 0, 96 * 56 * 56, 96 * 56 * 56, (1, 96, 56, 56),
    ...            (96, 3136, 9, 1), window=(3, 3, 1, 1))
    >>> fresh_buffers(dw), fresh_buffers(dw, 2)             # ORT: its output; torch: plus two blocked copies
    ((1204224,), (1204224, 1204224, 1204224))
    >>> stem = Layer("s", "conv2d", "conv", ("input",), 0, 0, 0, 0, 2 * 3 * 64 * 64, 2 * 20 * 64 * 64,
    ...              (2, 20, 64, 64), (1, 8192, 27, 20), window=(3, 3, 1, 1))
    >>> out, blocked = fresh_buffers(stem, 2)               # 3 channels read in place
    >>> blocked == out * (32 if onednn_block() == 16 else 24) // 20     # 20 channels padded to whole blocks
    True
    """
    if bytes_per_elem is None:                  # the layer's own dtype
        bytes_per_elem = layer.output_bytes / layer.output_elems if layer.output_elems else 0.0
    out = int(layer.output_elems * bytes_per_elem)
    if not _onednn_conv(layer, torch_threads):
        return (out,)
    shape = layer.output_shape
    groups, in_channels = _groups_and_in_channels(layer)
    blocked_out = round(out * _blocks(shape[1]) / shape[1])
    if not _blocked_input(layer, groups, in_channels):
        return (out, blocked_out)
    return (out, round(layer.input_elems * bytes_per_elem * _blocks(in_channels) / in_channels), blocked_out)


def blocked_flops(layer, torch_threads: int = 0) -> float:
    """The FLOPs lk.estimate and the calibration's fit price `layer` at: for a convolution that torch eager runs
    in oneDNN (``torch_threads`` > 0; ``fit_op``), its FLOPs with the channels rounded up to whole blocks
    (``onednn_block``), since oneDNN's blocked kernels compute the padding too: the output channels, and the input
    channels where oneDNN reads a blocked copy of its input (``fresh_buffers``); a depthwise conv's one channel
    per group pads with its output's. Any other layer: its own FLOPs. Measured on lab 00's machine (one thread,
    batch 32, a 3x3 conv on 16x16 maps): 24->24, 24->32, 32->24 and 32->32 channels all took 1.36-1.37 ms.

    >>> from labkit.profile.core import Layer
    >>> conv = Layer("c", "conv2d", "conv", ("input",), 0, 2 * 32 * 256 * 24 * 216, 0, 0, 32 * 24 * 256,
    ...              32 * 24 * 256, (32, 24, 16, 16), (1, 8192, 216, 24), window=(3, 3, 1, 1))
    >>> blocked_flops(conv, 1) / conv.flops == (_blocks(24) / 24) ** 2       # 24 -> 32 channels on AVX-512
    True
    >>> blocked_flops(conv) == conv.flops                    # not torch: ONNX Runtime's GEMMs pad nothing
    True
    """
    if not _onednn_conv(layer, torch_threads):
        return float(layer.flops)
    groups, in_channels = _groups_and_in_channels(layer)
    pad = _blocks(layer.output_shape[1]) / layer.output_shape[1]
    if groups == 1 and _blocked_input(layer, groups, in_channels):
        pad *= _blocks(in_channels) / in_channels
    return layer.flops * pad


def _onednn_conv(layer, torch_threads: int) -> bool:
    """Whether torch eager (at `torch_threads` > 0) runs `layer` as a oneDNN convolution, in its blocked layout."""
    return bool(torch_threads and getattr(layer, "window", ()) and layer.gemm and len(layer.output_shape) >= 2
                and not fit_op(layer, torch_threads).endswith(IM2COL))


def _groups_and_in_channels(layer) -> tuple[int, int]:
    """A conv layer's groups and input channels, from its GEMM shape and kernel."""
    groups, _, k, _ = layer.gemm
    return groups, groups * max(1, k // (layer.window[0] * layer.window[1]))


def _blocked_input(layer, groups: int, in_channels: int) -> bool:
    """Whether oneDNN copies a conv's input to its blocked layout: not for an ungrouped conv of fewer input
    channels than a block, which it reads in place, unless its 1x1 kernel runs it."""
    return not (in_channels < onednn_block() and groups == 1 and not _onednn_1x1(layer, in_channels))


def reorder_bytes(layer, torch_threads: int = 0, bytes_per_elem: float | None = None) -> int:
    """Bytes a torch conv in oneDNN moves besides its own weights, input and output: each blocked copy
    (``fresh_buffers`` past the output) written by one reorder and read by the next step; 0 for any other layer.
    A calibrated fit prices them with the layer's bytes (lk.estimate and the calibration's fit alike; lab 00).

    >>> from labkit.profile.core import Layer
    >>> dw = Layer("c", "conv2d", "dwconv", ("input",), 0, 0, 0, 0, 96 * 56 * 56, 96 * 56 * 56, (1, 96, 56, 56),
    ...            (96, 3136, 9, 1), window=(3, 3, 1, 1))
    >>> reorder_bytes(dw, 2) == 4 * dw.output_bytes, reorder_bytes(dw)
    (True, 0)
    """
    return 2 * sum(fresh_buffers(layer, torch_threads, bytes_per_elem)[1:])


def _onednn_1x1(layer, in_channels: int) -> bool:
    """Whether oneDNN runs a conv with its 1x1 kernel: a 1x1 window of stride 1, or a strided one whose input
    is exactly its output times the stride along each axis (oneDNN then first packs the strided pixels; else its
    generic kernel runs it, seen with ``ONEDNN_VERBOSE=1`` as ``jit_1x1`` against ``jit``)."""
    kh, kw, stride = layer.window[:3]
    if (kh, kw) != (1, 1):
        return False
    shape = layer.output_shape
    out_pixels = math.prod(shape[2:])
    in_pixels = layer.input_elems / max(1, shape[0] * in_channels)
    return stride == 1 or in_pixels == out_pixels * stride ** (len(shape) - 2)      # per strided axis


def _blocks(channels: int) -> int:
    """`channels` rounded up to whole oneDNN blocks."""
    block = onednn_block()
    return -(-channels // block) * block


def fit_for(fits: Mapping[str, OpFit] | None, op_class: str, op: str) -> OpFit | None:
    """The fit that prices a layer: its op's own (``"pool/maxpool"``) if the calibration made one, else its op
    class's (``"pool"``), else None (the roofline prices it).

    >>> fit_for({"pool": OpFit(1e-6, 1e9, 1e9)}, "pool", "maxpool").startup_s
    1e-06
    >>> fit_for({}, "pool", "maxpool") is None
    True
    """
    if not fits:
        return None
    return fits.get(f"{op_class}/{op}") or fits.get(op_class)


def call_s(fits: Mapping[str, OpFit] | None) -> float:
    """The fixed cost of one model call (framework entry, ORT's ``session.run``): the start-up of the fit keyed
    ``"call"`` on a calibrated device, 0.0 elsewhere. Added once per model call (lk.estimate), once per side
    used (lk.partition).

    >>> call_s({"call": OpFit(2e-5, 1.0, 1.0)}), call_s({})
    (2e-05, 0.0)
    """
    call = fits.get("call") if fits else None
    return call.startup_s if call is not None else 0.0


IM2COL, WIDE_DEPTHWISE, SPILLED = ":im2col", ":wide", ":spill"
POOL_SPILL_BYTES = 320 * 2**10   # torch's NCHW max pool (max_pool2d_with_indices) runs ~2.7x slower per element
                                 # once its working set (input, output, int64 indices) per thread passes this.
                                 # Measured on lab 00's Zen 4 (1 MiB L2): 2x2 pools 1.9 -> 5.3 ns per input
                                 # element between 336 and 448 KiB on one thread, 3x3/s2 between 224 and 336 KiB;
                                 # on two threads the step sits at about twice the bytes


def fit_op(layer, torch_threads: int = 0) -> str:
    """The op name a calibrated fit prices `layer` under: its ``op``, or ``op + ":im2col"`` for a convolution
    that torch eager (on a device calibrated with ``torch_threads`` threads; 0: not torch) runs as ATen's
    im2col + GEMM ("slow_conv2d") instead of oneDNN. The two kernels differ by up to 4x on one shape (lab 00's
    machine: a 1x1 conv 96->16 on 16x16 at batch 1 took 65 µs in oneDNN on two threads, 16 µs as a GEMM).
    A depthwise conv with a kernel wider than 3x3 is ``op + ":wide"`` in torch: oneDNN runs a 5x5 one 10-25%
    slower than a 3x3 at batch 1 (lab 00's machine, one thread), not the 2.8x its FLOPs say, where ONNX
    Runtime's time grows with the FLOPs; one fit for both kernel sizes would misprice one of them.
    torch's rule for fp32 (``ConvParams::use_mkldnn`` in aten/src/ATen/native/Convolution.cpp): oneDNN when
    (strided, dilated, batch >= 16, a kernel other than 1x1, or more than one thread) and (groups > 1, a kernel
    larger than 3 both ways, batch > 1, or more than 20480 input elements). ``Layer.window`` holds the kernel.

    >>> from dataclasses import replace
    >>> from labkit.profile.core import Layer
    >>> conv = Layer("c", "conv2d", "conv", ("input",), 0, 0, 0, 0, 64 * 16 * 16, 0, (1, 64, 16, 16),
    ...              (1, 256, 576, 64), window=(3, 3, 1, 1))
    >>> fit_op(conv, 2), fit_op(conv), fit_op(replace(conv, output_shape=(2, 64, 16, 16)), 2)
    ('conv2d:im2col', 'conv2d', 'conv2d')
    >>> dw5 = Layer("d", "conv2d", "dwconv", ("input",), 0, 0, 0, 0, 96 * 14 * 14, 96 * 14 * 14, (1, 96, 14, 14),
    ...             (96, 196, 25, 1), window=(5, 5, 1, 1))
    >>> fit_op(dw5, 1), fit_op(replace(dw5, window=(3, 3, 1, 1)), 1), fit_op(dw5)
    ('conv2d:wide', 'conv2d', 'conv2d')

    torch's max pool over more than ``POOL_SPILL_BYTES`` per thread is ``"maxpool:spill"``: its rate falls by
    ~2.7x there, and one fit over both sides mispriced the batch-1 benchmarks of the CNN's pools by +76-130%.

    >>> pool = Layer("p", "maxpool", "pool", ("input",), 0, 16384, 0, 0, 16384, 4096, (1, 16, 16, 16))
    >>> fit_op(pool, 1), fit_op(replace(pool, input_elems=2**19, output_elems=2**17), 1), fit_op(pool)
    ('maxpool', 'maxpool:spill', 'maxpool')
    """
    if torch_threads and layer.op == "maxpool" and _pool_bytes(layer) / torch_threads > POOL_SPILL_BYTES:
        return layer.op + SPILLED
    window = getattr(layer, "window", ())
    if not torch_threads or not window or not layer.output_shape:
        return layer.op
    kh, kw, stride, dilation = window
    batch = layer.output_shape[0]
    groups = layer.gemm[0] if layer.gemm else 1
    first = stride > 1 or dilation > 1 or batch >= 16 or kh != 1 or kw != 1 or torch_threads > 1
    second = groups > 1 or (kh > 3 and kw > 3) or batch > 1 or layer.input_elems > 20480
    if not (first and second):
        return layer.op + IM2COL
    return layer.op + WIDE_DEPTHWISE if layer.op_class == "dwconv" and kh * kw > 9 else layer.op


def _pool_bytes(layer) -> float:
    """The working set of torch's max pool: its input and output, and the int64 index of each output element
    that max_pool2d_with_indices writes even when nothing asks for it."""
    return layer.input_bytes + layer.output_bytes + 8 * layer.output_elems
