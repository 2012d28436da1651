"""The Profile and Layer types that every front end (torch, ONNX, JAX) returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from labkit.dtypes import dtype_bytes, normalize_dtype

# Op classes: the kernels differ by class, so the calibrated model fits one start-up + rate per class.
OP_CLASSES = ("conv", "dwconv", "matmul", "attention", "elementwise", "norm", "pool", "memory")

@dataclass(frozen=True)
class Layer:
    """One node of the model's graph (a DAG): its work, its weights and the tensors it reads and writes.

    Element counts are per profile batch; byte sizes follow the layer's ``dtype``.
    ``gemm`` is ``(groups, M, K, N)`` for conv/linear/matmul/attention work, for systolic-array padding.
    """

    name: str
    op: str                         # e.g. "conv2d", "linear", "relu", "add", "matmul", "attention"
    op_class: str                   # one of OP_CLASSES
    inputs: tuple[str, ...]         # producing layers, or "input" for a model input
    macs: int
    flops: int                      # 2 per MAC + element-wise work
    params: int
    weight_elems: int
    input_elems: int
    output_elems: int
    output_shape: tuple[int, ...] = ()
    gemm: tuple[int, int, int, int] | None = None
    dtype: str = "fp32"

    @property
    def weight_bytes(self) -> int:
        return int(self.weight_elems * dtype_bytes(self.dtype))

    @property
    def input_bytes(self) -> int:
        return int(self.input_elems * dtype_bytes(self.dtype))

    @property
    def output_bytes(self) -> int:
        return int(self.output_elems * dtype_bytes(self.dtype))

    @property
    def bytes(self) -> int:
        """Bytes moved: weights + inputs + outputs."""
        return self.weight_bytes + self.input_bytes + self.output_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte moved."""
        return self.flops / self.bytes if self.bytes else 0.0


@dataclass(frozen=True)
class Profile:
    """What a model costs to run once: totals and a per-layer DAG.

    >>> import torch, labkit as lk
    >>> p = lk.profile(torch.nn.Linear(8, 4), torch.zeros(1, 8))
    >>> (p.params, p.macs)
    (36, 32)
    """

    name: str
    source: str                     # "torch", "onnx" or "jax"
    batch: int
    dtype: str
    layers: tuple[Layer, ...]
    params: int
    input_elems: int
    output_elems: int

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def input_bytes(self) -> int:
        return int(self.input_elems * dtype_bytes(self.dtype))

    @property
    def output_bytes(self) -> int:
        return int(self.output_elems * dtype_bytes(self.dtype))

    def with_dtype(self, dtype: str) -> Profile:
        """The same profile with byte sizes at another dtype (``"int8"``, ``"bf16"``, …)."""
        dtype = normalize_dtype(dtype)
        return replace(self, dtype=dtype, layers=tuple(replace(lay, dtype=dtype) for lay in self.layers))

    def layer(self, name: str) -> Layer:
        """The layer called `name` (a clear error lists near matches)."""
        for lay in self.layers:
            if lay.name == name:
                return lay
        from labkit.args import unknown_name

        raise unknown_name("layer", name, [lay.name for lay in self.layers])

    def to_frame(self):
        """One row per layer: op, inputs, MACs, FLOPs, bytes, intensity (a pandas DataFrame)."""
        import pandas as pd

        rows = [
            {
                "name": lay.name, "op": lay.op, "op_class": lay.op_class, "inputs": ",".join(lay.inputs),
                "output_shape": lay.output_shape, "params": lay.params, "macs": lay.macs, "flops": lay.flops,
                "weight_bytes": lay.weight_bytes, "input_bytes": lay.input_bytes,
                "output_bytes": lay.output_bytes, "intensity": lay.intensity,
            }
            for lay in self.layers
        ]
        return pd.DataFrame(rows).set_index("name")

    def __repr__(self) -> str:
        return (
            f"Profile({self.name!r}, source={self.source}, batch={self.batch}, dtype={self.dtype}, "
            f"layers={len(self.layers)}, params={self.params:,}, macs={self.macs:,}, flops={self.flops:,}, "
            f"weight_bytes={self.weight_bytes:,})"
        )
