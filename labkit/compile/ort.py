"""ONNX export and ONNX Runtime at each graph-optimisation level, with the nodes that run counted (lab 04).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass

from labkit.args import Bool, Int, OneOf, check, unknown_name

LEVELS = ("disabled", "basic", "extended", "all")
_ORT_LEVEL = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}

def _as_args(example) -> tuple:
    """An example as a tuple of tensors/arrays: one tensor, or a tuple/list of them."""
    args = tuple(example) if isinstance(example, (tuple, list)) else (example,)
    if not args or not all(hasattr(a, "shape") for a in args):
        raise ValueError("example must be a tensor/array or a tuple of them (the model's inputs), "
                         f"got {type(example).__name__}.")
    return args


def _is_torch_module(model) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(model, torch.nn.Module)


def _export(model, args, path: str, fold: bool) -> None:
    """fold=True: labkit's one export (labkit.compile.onnx); fold=False: the same, without the exporter's
    constant folding, which would fold BatchNormalization into Conv before ORT ever sees the graph."""
    if fold:
        from labkit.compile.onnx import export_file as export_folded

        export_folded(model, args, path)
        return
    import warnings

    import torch

    names = [f"x{i}" for i in range(len(args))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(args), path, dynamo=False, input_names=names, output_names=["y"],
                          dynamic_axes={**{n: {0: "batch"} for n in names}, "y": {0: "batch"}},
                          opset_version=17, do_constant_folding=False)


def export_onnx(model, example, path=None, *, fold: bool = False):
    """Export a torch model to ONNX (batch axis dynamic, inputs x0, x1, …, output y; opset 17) (lab 04).

    ``fold=False`` (default) keeps the graph as torch wrote it (BatchNormalization and all) so that ONNX
    Runtime's own rewrites are visible; ``fold=True`` lets the exporter fold constants (BN into Conv) first.
    Returns `path` when given, else the in-memory ``onnx.ModelProto``.

    >>> import labkit as lk
    >>> proto = lk.compile.export_onnx(lk.zoo.build("cnn"), lk.zoo.example("cnn"))
    >>> sum(n.op_type == "BatchNormalization" for n in proto.graph.node)
    3
    """
    if not _is_torch_module(model):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    fold = check("fold", fold, Bool())
    args = _as_args(example)
    if path is not None:
        path = os.fspath(path)
        _export(model.eval(), args, path, fold)
        return path
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        file = os.path.join(tmp, "model.onnx")
        _export(model.eval(), args, file, fold)
        return onnx.load(file)


def _load(onnx_model, example):
    """A ModelProto from a path, bytes, a ModelProto or a torch module (exported on the fly)."""
    import onnx

    if _is_torch_module(onnx_model):
        return export_onnx(onnx_model, example)
    if isinstance(onnx_model, onnx.ModelProto):
        return onnx_model
    if isinstance(onnx_model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(onnx_model))
    if isinstance(onnx_model, (str, os.PathLike)):
        if not os.path.exists(onnx_model):
            raise ValueError(f"no ONNX file at {os.fspath(onnx_model)!r}.")
        return onnx.load(os.fspath(onnx_model))
    raise ValueError("onnx_model must be an ONNX path, bytes, an onnx.ModelProto or a torch.nn.Module, "
                     f"got {type(onnx_model).__name__}.")


def _op_name(node) -> str:
    """op_type, with the domain's last part when it is not standard ONNX: 'FusedConv (microsoft)',
    'Conv (nchwc)' (ORT's blocked-layout Conv is a different kernel from ONNX's Conv)."""
    if node.domain in ("", "ai.onnx"):
        return node.op_type
    return f"{node.op_type} ({node.domain.split('.')[-1]})"


def node_counts(model) -> dict[str, int]:
    """Nodes of an ONNX graph by op type (subgraphs of If/Loop included), most frequent first."""
    counts: Counter = Counter()

    def walk(graph):
        for node in graph.node:
            counts[_op_name(node)] += 1
            for attr in node.attribute:
                if attr.g is not None and len(attr.g.node):
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(model.graph)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True, repr=False)
class OrtLevels:
    """ONNX Runtime at each graph-optimisation level: node counts by op type, latency, output error (lab 04).

    ``counts[level]`` maps op type -> nodes in the graph ORT runs at that level; ``latency[level]`` is a
    :class:`labkit.Measurement` of one ``session.run``; ``max_abs_diff[level]`` compares that level's outputs
    with the unoptimised graph's (``disabled``), or with torch's when the model was a torch module.
    """

    levels: tuple[str, ...]
    counts: dict                   # level -> {op type: nodes}
    latency: dict                  # level -> Measurement of one session.run, seconds
    max_abs_diff: dict             # level -> max |output - reference| (same units as the model output)
    reference: str                 # "torch" or "disabled": what max_abs_diff compares with
    threads: int                   # ORT intra-op threads used for every level

    def nodes(self, level: str) -> int:
        """Total nodes in the graph ORT runs at `level`."""
        self._check_level(level)
        return sum(self.counts[level].values())

    def _check_level(self, level) -> None:
        if level not in self.counts:
            raise unknown_name("ORT level", level, self.levels)

    def fusions(self, before: str = "disabled", after: str = "all"):
        """Op types whose node count changed from level `before` to `after` (negative: removed or fused
        away; positive: fused ops that appeared), as a pandas Series sorted by change."""
        import pandas as pd

        self._check_level(before)
        self._check_level(after)
        ops = sorted(set(self.counts[before]) | set(self.counts[after]))
        diff = {op: self.counts[after].get(op, 0) - self.counts[before].get(op, 0) for op in ops}
        diff = {op: d for op, d in diff.items() if d}
        return pd.Series(diff, name=f"{after} - {before}", dtype=int).sort_values()

    def to_frame(self):
        """Op types x levels node counts, with rows 'total nodes', 'p50_s' and 'max_abs_diff' at the bottom."""
        import pandas as pd

        ops = sorted({op for c in self.counts.values() for op in c})
        table = pd.DataFrame({lv: [self.counts[lv].get(op, 0) for op in ops] for lv in self.levels}, index=ops)
        extra = pd.DataFrame({lv: [self.nodes(lv), self.latency[lv].p50_s, self.max_abs_diff[lv]]
                              for lv in self.levels}, index=["total nodes", "p50_s", "max_abs_diff"],
                             dtype=object)      # object: node counts stay ints beside float seconds
        return pd.concat([table.astype(object), extra.astype(object)])

    def __repr__(self) -> str:
        parts = [f"{lv}: {self.nodes(lv)} nodes, p50 {self.latency[lv].p50_s * 1e6:.0f} µs"
                 for lv in self.levels]
        return "OrtLevels(" + "; ".join(parts) + ")"


def _session(model_bytes: bytes, level: str, threads: int, saved: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _ORT_LEVEL[level])
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    so.optimized_model_filepath = saved
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def ort_levels(onnx_model, example, *, levels=LEVELS, threads: int = 1, min_time_s: float = 0.2,
               max_time_s: float = 2.0) -> OrtLevels:
    """Run an ONNX model in ONNX Runtime at each graph-optimisation level; count nodes, measure, compare (lab 04).

    `onnx_model`: a path, bytes, an ``onnx.ModelProto`` or a torch module (exported with
    :func:`export_onnx`; then outputs are compared with torch's). `example`: the inputs (tensor or tuple).
    `levels`: any of "disabled", "basic", "extended", "all". Timing uses ``lk.measure`` with `threads`
    intra-op threads (1 by default: steadier, and fair between levels). Introduced in lab 04.

    >>> import labkit as lk
    >>> r = lk.compile.ort_levels(lk.zoo.build("cnn"), lk.zoo.example("cnn"), min_time_s=0.01)
    >>> r.counts["disabled"]["BatchNormalization"], r.counts["basic"].get("BatchNormalization", 0)
    (3, 0)
    """
    import numpy as np

    from labkit.compile.onnx import feeds as feeds_for
    from labkit.measure import measure

    levels = tuple(levels) if isinstance(levels, (list, tuple)) else (levels,)
    if not levels:
        raise ValueError(f"levels must name at least one of {', '.join(LEVELS)}.")
    for lv in levels:
        check("ORT level", lv, OneOf(LEVELS))
    threads = check("threads (ORT intra-op threads)", threads, Int(low=1))
    args = _as_args(example)
    torch_model = onnx_model if _is_torch_module(onnx_model) else None
    model_bytes = _load(onnx_model, example).SerializeToString()

    ref = None
    if torch_model is not None:
        import torch

        with torch.no_grad():
            out = torch_model(*args)
        ref = [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]
    if ref is None:                        # the unoptimised graph is the reference: run it first
        levels = ("disabled", *(lv for lv in levels if lv != "disabled"))

    import onnx

    counts, latency, diffs = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for lv in levels:
            saved = os.path.join(tmp, f"{lv}.onnx")
            sess = _session(model_bytes, lv, threads, saved)
            counts[lv] = node_counts(onnx.load(saved))
            feeds = feeds_for(sess, args)
            outs = sess.run(None, feeds)
            ref = outs if ref is None else ref
            diffs[lv] = max(float(np.max(np.abs(np.asarray(o) - r))) for o, r in zip(outs, ref))
            latency[lv] = measure(sess.run, None, feeds, min_time_s=min_time_s, max_time_s=max_time_s,
                                  progress=False)
    return OrtLevels(levels=levels, counts=counts, latency=latency, max_abs_diff=diffs,
                     reference="torch" if torch_model is not None else "disabled", threads=threads)
