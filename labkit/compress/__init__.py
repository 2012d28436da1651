"""``lk.compress``: make a model smaller or cheaper, and measure what it cost (labs 02 and 03).

Every function that makes a new model returns :class:`Compressed` — the model and a :class:`Report` of its
size on disk (bytes), accuracy on the data you pass, and latency measured here — so that every claim in the
labs is a measurement, and ``lk.compress.compare`` / ``lk.plot.pareto`` put them side by side.

- Quantise (lab 02): :func:`fake_quant` (by hand: symmetric/asymmetric, per-tensor/per-channel, any bit
  width, with its error), :func:`quantize_weights` (fake-quantise a model's weights), :func:`ort_fp32`,
  :func:`ort_dynamic`, :func:`ort_static` (int8 with a calibration reader over real data), :func:`fp16`.
- Prune and distil (lab 03): :func:`prune_magnitude`, :func:`sensitivity`, :func:`prune_channels` (really
  removes channels: a smaller dense model), :func:`finetune`, :func:`train`, :func:`distill`.

Layering: imports labkit.measure, labkit.data, labkit.compiling.ort (ONNX export); never the simulator.

>>> import labkit as lk
>>> fq = lk.compress.fake_quant([0.5, -1.0, 0.25], bits=8)
>>> round(fq.scale, 6)
0.007874
"""

from __future__ import annotations

from labkit.lazy import namespace

_API = {
    # labkit.compress.report: the one result type and how it is measured
    "Report": "labkit.compress.report:Report",
    "Compressed": "labkit.compress.report:Compressed",
    "OnnxModel": "labkit.compress.report:OnnxModel",
    "report": "labkit.compress.report:report",
    "compare": "labkit.compress.report:compare",
    "size_bytes": "labkit.compress.report:size_bytes",
    # labkit.compress.fakequant: quantisation by hand (lab 02)
    "FakeQuant": "labkit.compress.fakequant:FakeQuant",
    "fake_quant": "labkit.compress.fakequant:fake_quant",
    "quantize_weights": "labkit.compress.fakequant:quantize_weights",
    # labkit.compress.ortquant: ONNX Runtime fp32 / int8 dynamic / int8 static / fp16 (lab 02)
    "ort_fp32": "labkit.compress.ortquant:ort_fp32",
    "ort_dynamic": "labkit.compress.ortquant:ort_dynamic",
    "ort_static": "labkit.compress.ortquant:ort_static",
    "fp16": "labkit.compress.ortquant:fp16",
    # labkit.compress.prune: unstructured and structured pruning (lab 03)
    "prune_magnitude": "labkit.compress.prune:prune_magnitude",
    "sensitivity": "labkit.compress.prune:sensitivity",
    "Sensitivity": "labkit.compress.prune:Sensitivity",
    "prune_channels": "labkit.compress.prune:prune_channels",
    "sparsity": "labkit.compress.prune:sparsity",
    "prunable_layers": "labkit.compress.prune:prunable_layers",
    # labkit.compress.distillation: training loops (lab 03)
    "finetune": "labkit.compress.distillation:finetune",
    "train": "labkit.compress.distillation:train",
    "distill": "labkit.compress.distillation:distill",
    "kd_loss": "labkit.compress.distillation:kd_loss",
    "student_cnn": "labkit.compress.distillation:student_cnn",
}

__all__ = sorted(_API)

# `report` shares its module's name: bound eagerly, or importing labkit.compress.report anywhere would set
# lk.compress.report to the module (report.py imports nothing heavy at import time).
from labkit.compress.report import report as report  # noqa: E402

__getattr__, __dir__ = namespace(globals(), _API, "lk.compress name")
