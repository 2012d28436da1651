"""``lk.compress``: make a model smaller or cheaper, and measure what it cost (labs 02 and 03).

Every function that makes a new model returns :class:`Compressed` — the model and a :class:`Report` of its
size on disk (bytes), accuracy on the data you pass, and latency measured here — so that every claim in the
labs is a measurement, and ``lk.compress.compare`` / ``lk.plot.pareto`` put them side by side.

- Quantise (lab 02): :func:`fake_quant` (by hand: symmetric/asymmetric, per-tensor/per-channel, any bit
  width, with its error), :func:`quantize_weights` (fake-quantise a model's weights), :func:`ort_fp32`,
  :func:`ort_dynamic`, :func:`ort_static` (int8 with a calibration reader over real data), :func:`fp16`.
- Prune and distil (lab 03): :func:`prune_magnitude`, :func:`sensitivity`, :func:`prune_channels` (really
  removes channels: a smaller dense model; ``keep=`` takes your own channel selector), :func:`finetune`,
  :func:`train`, :func:`distill` (``loss=`` takes your own KD loss).

>>> import labkit as lk
>>> fq = lk.compress.fake_quant([0.5, -1.0, 0.25], bits=8)
>>> round(fq.scale, 6)
0.007874
"""

from __future__ import annotations

from labkit.args import namespace
from labkit.compress.distillation import distill, finetune, kd_loss, student_cnn, train
from labkit.compress.fakequant import FakeQuant, fake_quant, quantize_weights
from labkit.compress.ortquant import fp16, ort_dynamic, ort_fp32, ort_static
from labkit.compress.prune import (
           Sensitivity,
           prunable_layers,
           prune_channels,
           prune_magnitude,
           sensitivity,
           sparsity,
)
from labkit.compress.report import Compressed, OnnxModel, Report, compare, report, size_bytes

__all__ = ["Compressed", "FakeQuant", "OnnxModel", "Report", "Sensitivity", "compare", "distill", "fake_quant",
           "finetune", "fp16", "kd_loss", "ort_dynamic", "ort_fp32", "ort_static", "prunable_layers",
           "prune_channels", "prune_magnitude", "quantize_weights", "report", "sensitivity", "size_bytes",
           "sparsity", "student_cnn", "train"]

__getattr__, __dir__ = namespace("lk.compress", __all__)
