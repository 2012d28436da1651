"""ONNX export and ONNX Runtime sessions, the one way labkit makes them (lk.compile, lk.compress, calibration).
"""

from __future__ import annotations


def export_file(model, args, path: str) -> None:
    """ONNX export of a torch model to `path`, as calibration, validation and lk.compile all do it: batch axis dynamic, inputs x0, x1, …;
    the TorchScript exporter (fast), else the dynamo one."""
    import warnings

    import torch

    names = [f"x{i}" for i in range(len(args))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, tuple(args), path, dynamo=False, input_names=names, output_names=["y"],
                              dynamic_axes={**{n: {0: "batch"} for n in names}, "y": {0: "batch"}},
                              opset_version=17)
        except Exception:   # the legacy exporter is deprecated; the dynamo exporter is slower but current
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(model, tuple(args), path, dynamo=True,
                              dynamic_shapes=tuple({0: batch} for _ in args), verbose=False)


def session(model, num_threads: int, optimized_path: str | None = None):
    """An InferenceSession as calibration and validation both run it: `num_threads` intra-op threads,
    sequential, graph level ``ORT_ENABLE_EXTENDED`` (the highest level whose graph lk.profile can read); `model` is a path, bytes or a ModelProto.
    With `optimized_path`, the graph that actually runs is saved there (for lk.profile)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.intra_op_num_threads = int(num_threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if optimized_path:
        so.optimized_model_filepath = str(optimized_path)
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def feeds(sess, args) -> dict:
    """ONNX Runtime feeds: the session's inputs, in order, from torch tensors or arrays."""
    return {meta.name: (a.numpy() if hasattr(a, "numpy") else a) for meta, a in zip(sess.get_inputs(), args)}
