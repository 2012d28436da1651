"""What a compressed model costs and keeps: size on disk, accuracy, latency measured here (labs 02 and 03).

:func:`report` measures one model; every ``lk.compress`` function that makes a model returns
:class:`Compressed` (the model and its report); :func:`compare` tables several against a baseline.
:class:`OnnxModel` wraps an ONNX Runtime session so that it is called like a torch model (torch tensor in,
torch tensor out), which lets ``lk.data.accuracy`` and ``lk.measure`` treat both alike.

Size on disk is what a deployment ships: ``torch.save(model.state_dict())`` for a torch model (a pruned
model's zeros are still stored, as dense float32), the serialised ONNX file for an ONNX model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from labkit.args import Int, check, check_positive

DEFAULT_LATENCY_BATCH = 1

def _threads() -> int:
    """The thread count torch uses here, so ONNX Runtime and torch are timed on equal terms."""
    import torch

    return max(1, torch.get_num_threads())


class OnnxModel:
    """An ONNX model behind an ONNX Runtime session, called like a torch model (labs 02 and 04).

    Graph optimisation is ``ORT_ENABLE_ALL`` (what a deployment would use) and the intra-op threads match
    torch's, so latencies compare fairly with the torch model's.

    >>> import labkit as lk
    >>> onnx_model = lk.compress.ort_fp32(lk.zoo.build("mlp"), lk.data.for_model("mlp")).model
    >>> tuple(onnx_model(lk.zoo.example("mlp", batch=2)).shape)
    (2, 10)
    """

    def __init__(self, proto_or_bytes, name: str = "onnx"):
        import onnxruntime as ort

        data = proto_or_bytes.SerializeToString() if hasattr(proto_or_bytes, "SerializeToString") \
            else bytes(proto_or_bytes)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = _threads()
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        self.model_bytes = data
        self.name = name
        self.session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    @property
    def size_bytes(self) -> int:
        """Bytes of the serialised ONNX model (what a deployment ships)."""
        return len(self.model_bytes)

    def eval(self):
        """No-op, for code written for torch modules (``lk.data.accuracy`` calls it)."""
        return self

    def __call__(self, x):
        import numpy as np
        import torch

        array = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
        return torch.from_numpy(self.session.run(None, {self._input: array})[0])

    def save(self, path) -> str:
        """Write the ONNX file to `path`; returns the path."""
        import os

        with open(path, "wb") as f:
            f.write(self.model_bytes)
        return os.fspath(path)

    def __repr__(self) -> str:
        return f"OnnxModel({self.name!r}, {self.size_bytes / 1024:.1f} KiB)"


def size_bytes(model) -> int:
    """Bytes the model takes on disk: its ONNX file, or ``torch.save(state_dict)`` for a torch module (lab 02).

    >>> import labkit as lk
    >>> lk.compress.size_bytes(lk.zoo.build("mlp")) > 4 * 64 * 128
    True
    """
    if isinstance(model, OnnxModel):
        return model.size_bytes
    if hasattr(model, "SerializeToString"):           # an onnx.ModelProto
        return len(model.SerializeToString())
    if hasattr(model, "state_dict"):
        import torch

        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        return buffer.getbuffer().nbytes
    raise ValueError(f"model must be a torch.nn.Module, an OnnxModel or an onnx.ModelProto, got "
                     f"{type(model).__name__}.")


def _params(model) -> tuple[int, int]:
    """(parameters, non-zero parameters) of a torch module, or of an ONNX model's initializers."""
    if hasattr(model, "parameters"):
        total = nonzero = 0
        for p in model.parameters():
            total += p.numel()
            nonzero += int((p != 0).sum())
        return total, nonzero
    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(model.model_bytes) if isinstance(model, OnnxModel) else model
    total = nonzero = 0
    for init in proto.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype.kind == "f" or init.name.endswith(("_quantized", "weight", "bias")):
            total += array.size
            nonzero += int(np.count_nonzero(array))
    return total, nonzero


@dataclass(frozen=True)
class Report:
    """One model's size, accuracy and measured latency (labs 02 and 03).

    ``accuracy`` is top-1 in [0, 1] on the data passed; ``latency_s`` the measured median of one call at
    ``batch`` on this machine; ``nonzero_params`` counts weights that are not exactly zero (pruning).

    >>> import labkit as lk
    >>> r = lk.compress.report(lk.zoo.load("mlp").model, lk.data.for_model("mlp"), name="mlp fp32")
    >>> r.accuracy > 0.9 and r.size_bytes > 0
    True
    """

    name: str
    size_bytes: int
    accuracy: float
    latency_s: float
    batch: int
    params: int
    nonzero_params: int

    @property
    def sparsity(self) -> float:
        """Fraction of the parameters that are exactly zero."""
        return 1.0 - self.nonzero_params / self.params if self.params else 0.0

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([{"name": self.name, "size_bytes": self.size_bytes, "accuracy": self.accuracy,
                              "latency_s": self.latency_s, "batch": self.batch, "params": self.params,
                              "sparsity": self.sparsity}]).set_index("name")

    def __repr__(self) -> str:
        from labkit.units import si

        return (f"Report({self.name!r}: {self.size_bytes / 1024:.1f} KiB, accuracy {100 * self.accuracy:.2f}%, "
                f"{si(self.latency_s, 's')} at batch {self.batch}, sparsity {100 * self.sparsity:.0f}%)")


@dataclass(frozen=True)
class Compressed:
    """A new model and its :class:`Report` (labs 02 and 03); unpacks as ``model, report = ...``.

    >>> import labkit as lk
    >>> model, report = lk.compress.prune_magnitude(lk.zoo.load("mlp").model, 0.5, lk.data.for_model("mlp"))
    >>> lk.compress.sparsity(model), report.accuracy > 0.9
    (0.5, True)
    """

    model: object
    report: Report

    def __iter__(self):
        return iter((self.model, self.report))

    def __repr__(self) -> str:
        return f"Compressed({type(self.model).__name__}, {self.report!r})"


def check_data(data):
    """``(x, y)`` of a pair of equally long, non-empty tensors, or a ValueError that says so (lk.compress's data).

    >>> import torch
    >>> x, y = check_data((torch.zeros(4, 2), torch.zeros(4)))
    >>> len(x)
    4
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2 or not all(hasattr(d, "shape") for d in data):
        raise ValueError("data must be a pair (x, y) of tensors, e.g. lk.data.for_model('cnn', 'test'), "
                         f"got {type(data).__name__}.")
    x, y = data
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"data's x and y must have the same non-zero length, got {len(x)} and {len(y)}.")
    return x, y


def report(model, data, *, name: str | None = None, batch: int = DEFAULT_LATENCY_BATCH,
           min_time_s: float = 0.3) -> Report:
    """Measure a model: size on disk, accuracy on ``data = (x, y)``, median latency of ``model(x[:batch])``.

    Works for a torch module or an :class:`OnnxModel` (lab 02).

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("mlp")
    >>> lk.compress.report(model, lk.data.for_model("mlp")).params
    50826
    """
    x, y = check_data(data)
    batch = check("batch (at most the data's length)", batch, Int(low=1, high=len(x)))
    check_positive("min_time_s", min_time_s)
    from labkit.measure import measure
    from labkit.zoo.data import accuracy

    if name is None:
        name = getattr(model, "name", None) if isinstance(model, OnnxModel) else type(model).__name__
    import torch

    with torch.no_grad():
        acc = accuracy(model, x, y)
        example = x[:batch].contiguous()
        latency = measure(model, example, min_time_s=min_time_s, max_time_s=10 * min_time_s,
                          progress=False).p50_s
    params, nonzero = _params(model)
    return Report(str(name), size_bytes(model), float(acc), float(latency), batch, params, nonzero)


def compare(results, baseline: int | str = 0):
    """A table of reports (or Compressed results) with size, speed and accuracy relative to a baseline (lab 02).

    ``baseline`` is the index or name of the row the ratios are against (default: the first):
    ``smaller_x`` = baseline size / size, ``speedup_x`` = baseline latency / latency,
    ``accuracy_drop_pts`` = (baseline accuracy - accuracy) in percentage points.

    >>> import labkit as lk
    >>> data = lk.data.for_model("mlp")
    >>> model, _ = lk.zoo.load("mlp")
    >>> table = lk.compress.compare([lk.compress.report(model, data, name="a"),
    ...                              lk.compress.report(model, data, name="b")])
    >>> list(table.index), float(table.loc["a", "smaller_x"])
    (['a', 'b'], 1.0)
    """
    reports = [r.report if isinstance(r, Compressed) else r for r in results]
    if not reports or not all(isinstance(r, Report) for r in reports):
        raise ValueError("results must be a non-empty list of lk.compress Report or Compressed objects.")
    names = [r.name for r in reports]
    if isinstance(baseline, str):
        if baseline not in names:
            from labkit.args import unknown_name

            raise unknown_name("baseline", baseline, names)
        base = reports[names.index(baseline)]
    else:
        base = reports[check("baseline (a report name, or a row index)", baseline,
                             Int(low=-len(reports), high=len(reports) - 1))]
    import pandas as pd

    frame = pd.concat([r.to_frame() for r in reports])
    frame["smaller_x"] = base.size_bytes / frame["size_bytes"]
    frame["speedup_x"] = base.latency_s / frame["latency_s"]
    frame["accuracy_drop_pts"] = 100 * (base.accuracy - frame["accuracy"])
    return frame
