"""ONNX Runtime fp32, int8 (dynamic and static) and fp16 versions of a torch model, each measured (lab 02).

Every function exports the model with ``labkit.compile.ort.export_onnx(model, x[:1], fold=True)`` (batch
norm folded into the convs), converts it in a temporary folder that is deleted afterwards, and returns
:class:`~labkit.compress.report.Compressed`: the :class:`OnnxModel` and its report (file size, accuracy on
``data``, latency measured here at batch 1). Compare int8 against :func:`ort_fp32`, not against the torch
model: same runtime, so the difference is the quantisation alone.

What runs on this CPU (ONNX Runtime's CPU execution provider):
- dynamic int8: weights stored int8; activations quantised on the fly at every call. MatMul/Gemm become
  ``MatMulInteger`` and Conv becomes ``ConvInteger`` (which has no fast kernel), so convnets often get
  slower, not faster.
- static int8: activation ranges fixed ahead of time from calibration data; activations uint8, weights
  int8 (the U8S8 pair ORT recommends on x86: int8 x int8 is much slower there). ORT fuses the QDQ pattern
  into ``QLinearConv``/``QGemm`` integer kernels.
- fp16: halves the file, but this CPU provider has no fp16 Conv/Gemm kernels: ORT inserts Casts and runs
  the layers in fp32 (the fp16 weights are widened when the session loads), so it is not faster here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile

from labkit.args import Bool, OneOf, check
from labkit.compress.report import Compressed, OnnxModel, check_data, report

METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
FORMATS = {"qdq": "QDQ", "qoperator": "QOperator"}
CALIBRATION_BATCH = 32


@contextlib.contextmanager
def _quiet():
    """Silence what onnxruntime.quantization logs on the root logger ("consider pre-processing") and prints
    (the entropy/percentile calibrators' progress lines)."""
    import io

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _check_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}.")
    return name


def _export(model, data):
    """The fp32 ONNX ModelProto of a torch module (BN folded), exported at the data's batch-1 shape."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module (e.g. lk.zoo.load('cnn').model), got "
                         f"{type(model).__name__}.")
    x, _ = check_data(data)
    from labkit.compile.ort import export_onnx

    return export_onnx(model.eval(), x[:1], fold=True)


def _finish(model_bytes: bytes, data, name: str) -> Compressed:
    onnx_model = OnnxModel(model_bytes, name)
    return Compressed(onnx_model, report(onnx_model, data, name=name))


def ort_fp32(model, data, *, name: str = "fp32 (ONNX)") -> Compressed:
    """The torch model exported to ONNX and run by ONNX Runtime in fp32: the fair baseline for int8 (lab 02).

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("mlp")
    >>> base = lk.compress.ort_fp32(model, lk.data.for_model("mlp"))
    >>> base.report.accuracy == lk.data.accuracy(model, *lk.data.for_model("mlp"))
    True
    """
    name = _check_name(name)
    return _finish(_export(model, data).SerializeToString(), data, name)


def _preprocess(proto, folder: str) -> str:
    """Write the model and ORT's quantisation pre-processing of it (shape inference, graph clean-up)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    raw = os.path.join(folder, "fp32.onnx")
    onnx.save(proto, raw)
    prepared = os.path.join(folder, "prepared.onnx")
    with _quiet():
        quant_pre_process(raw, prepared)
    return prepared


def reduce_range() -> bool:
    """Whether int8 weights must use 7 bits on this CPU: x86 without VNNI saturates U8S8 products.

    ONNX Runtime's quantisation guide: reduce-range "is designed for the U8S8 format on AVX2 and AVX512
    (non-VNNI) machines to mitigate saturation issues"; a CPU with VNNI (or an ARM one) needs no such care.
    Measured here on an AVX2-only AMD EPYC: without it, static int8 lost 18 points of accuracy on the CNN.

    >>> isinstance(reduce_range(), bool)
    True
    """
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = f.read()
    except OSError:
        return True            # unknown x86: the safe choice costs one bit of weight precision
    return not any(flag in flags for flag in (" avx512_vnni", " avx_vnni", " amx_int8"))


def _read(path: str) -> bytes:
    """The quantised file's bytes, less the shape annotations (value_info) pre-processing added: the fp32
    file has none, so both are compared like for like (ONNX Runtime infers shapes again when it loads)."""
    import onnx

    proto = onnx.load(path)
    del proto.graph.value_info[:]
    return proto.SerializeToString()


def ort_dynamic(model, data, *, per_channel: bool = False, name: str = "int8 dynamic") -> Compressed:
    """Dynamic int8 with ``onnxruntime.quantization.quantize_dynamic``: int8 weights, no calibration (lab 02).

    Activations are quantised at run time, per call, from their observed range. Linear layers become
    ``MatMulInteger``, convolutions ``ConvInteger`` — the latter has no fast kernel on CPU, so a convnet
    shrinks but may well slow down (measure it).

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("mlp")
    >>> data = lk.data.for_model("mlp")
    >>> small = lk.compress.ort_dynamic(model, data)
    >>> small.report.size_bytes < lk.compress.ort_fp32(model, data).report.size_bytes / 3
    True
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    name = _check_name(name)
    per_channel = check("per_channel", per_channel, Bool())
    proto = _export(model, data)
    with tempfile.TemporaryDirectory() as folder:
        prepared = _preprocess(proto, folder)
        out = os.path.join(folder, "int8_dynamic.onnx")
        with _quiet():
            quantize_dynamic(prepared, out, per_channel=per_channel, weight_type=QuantType.QInt8,
                             reduce_range=reduce_range())
        model_bytes = _read(out)
    return _finish(model_bytes, data, name)


def _calibration_batches(calibration, x):
    """Validate the calibration tensor against the model's input and cut it into float32 numpy batches."""
    import numpy as np

    if not hasattr(calibration, "shape"):
        raise ValueError("calibration must be a tensor of real inputs shaped like the data's x, e.g. "
                         f"lk.data.for_model('cnn', 'train')[0][:256], got {type(calibration).__name__}.")
    array = calibration.detach().cpu().numpy() if hasattr(calibration, "detach") else np.asarray(calibration)
    if tuple(array.shape[1:]) != tuple(x.shape[1:]) or array.shape[0] < 1:
        raise ValueError(f"calibration must have shape (N, {', '.join(map(str, x.shape[1:]))}) with N >= 1 "
                         f"(N inputs shaped like the data's x), got {tuple(array.shape)}.")
    if array.dtype.kind != "f" or not np.isfinite(array).all():
        raise ValueError(f"calibration must hold finite floats (real inputs), got dtype {array.dtype}.")
    array = np.ascontiguousarray(array, dtype=np.float32)
    return [array[i:i + CALIBRATION_BATCH] for i in range(0, len(array), CALIBRATION_BATCH)]


def ort_static(model, data, calibration, *, per_channel: bool = True, method: str = "minmax",
               format: str = "qdq", name: str = "int8 static") -> Compressed:
    """Static int8 with ``onnxruntime.quantization.quantize_static``, calibrated on real inputs (lab 02).

    ``calibration``: a tensor (N, *input shape) of real inputs (training images, not the test set) that
    ONNX Runtime runs through the model to fix every activation's range ahead of time (``method``:
    "minmax", "entropy" or "percentile"). Weights int8 (per output channel with ``per_channel=True``),
    activations uint8 (weights use 7 bits on x86 CPUs without VNNI: see :func:`reduce_range`). ``format``:
    "qdq" (QuantizeLinear/DequantizeLinear pairs around float ops — the
    portable form other runtimes read) or "qoperator" (integer ops such as ``QLinearConv`` written into the
    file: fewer nodes, so a smaller file).

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("mlp")
    >>> calib = lk.data.for_model("mlp", "train")[0][:64]
    >>> q = lk.compress.ort_static(model, lk.data.for_model("mlp"), calib)
    >>> q.report.accuracy > 0.95
    True
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    name = _check_name(name)
    per_channel = check("per_channel", per_channel, Bool())
    method = check("calibration method", method, OneOf(METHODS))
    format = check("format", format, OneOf(FORMATS))
    x, _ = check_data(data)
    batches = _calibration_batches(calibration, x)
    proto = _export(model, data)
    input_name = proto.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(batches)

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as folder:
        prepared = _preprocess(proto, folder)
        out = os.path.join(folder, "int8_static.onnx")
        with _quiet():
            quantize_static(prepared, out, Reader(), quant_format=getattr(QuantFormat, FORMATS[format]),
                            per_channel=per_channel, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, reduce_range=reduce_range(),
                            calibrate_method=getattr(CalibrationMethod, METHODS[method]))
        model_bytes = _read(out)
    return _finish(model_bytes, data, name)


def fp16(model, data, *, name: str = "fp16") -> Compressed:
    """The model with fp16 weights and arithmetic (inputs and outputs stay fp32), run by ONNX Runtime (lab 02).

    Uses ``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)``. The file is
    half the size; but this CPU provider has no fp16 Conv/Gemm kernels, so ORT inserts Casts and computes
    in fp32 — no faster here. GPUs and NPUs with fp16 units are where it pays (see ``lk.estimate``).

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("mlp")
    >>> half = lk.compress.fp16(model, lk.data.for_model("mlp"))
    >>> round(lk.compress.ort_fp32(model, lk.data.for_model("mlp")).report.size_bytes / half.report.size_bytes)
    2
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    name = _check_name(name)
    proto = _export(model, data)
    with _quiet():
        half = convert_float_to_float16(proto, keep_io_types=True)
    return _finish(half.SerializeToString(), data, name)
