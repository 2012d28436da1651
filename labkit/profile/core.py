"""The Profile and Layer types that every front end (torch, ONNX, JAX) returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from labkit.args import Int, check
from labkit.dtypes import dtype_bytes, normalize_dtype

_new = object.__new__

# Op classes: the kernels differ by class, so the calibrated model fits one start-up + rate per class.
OP_CLASSES = ("conv", "dwconv", "matmul", "attention", "elementwise", "norm", "pool", "memory")
GEMM_CLASSES = ("conv", "matmul")   # op classes whose weighted layers run as a GEMM (depthwise convs do not)
SMALL_GEMM_ROWS = 16                # below this many rows, CPU GEMM kernels run far below their rate

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
    window: tuple[int, ...] = ()    # a 1-D/2-D conv's (kernel h, kernel w, largest stride, largest dilation); a
                                    # 1-D kernel is (1, k). torch picks its conv kernel by it (labkit.targets.fit_op)

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

    @property
    def kernel_calls(self) -> int:
        """Small kernels a depthwise convolution runs as: channels x images (ONNX Runtime loops over both, each
        with its own set-up); 0 for other layers. A calibrated fit prices each (``OpFit.kernel_call_s``)."""
        if self.gemm is None or self.op_class != "dwconv" or not self.output_shape:
            return 0
        return int(self.gemm[0]) * int(self.output_shape[0])

    @property
    def gemm_rows(self) -> int:
        """Rows that stream through each weight matrix of a weighted conv or matmul (macs / weights: a conv's
        batch x output pixels, a linear's tokens); 0 for other layers."""
        if self.op_class not in GEMM_CLASSES or not self.weight_elems or not self.macs:
            return 0
        return max(1, round(self.macs / self.weight_elems))

    @property
    def packed_weights(self) -> int:
        """Weights a CPU GEMM kernel packs into its own layout on every call: those of a weighted conv or
        matmul with at least 2 rows (one row is a matrix-vector product, which reads the weights as they are);
        0 for other layers. A calibrated fit prices each (``OpFit.weight_s``): torch re-packs them per call,
        ONNX Runtime once per session."""
        return int(self.weight_elems) if self.gemm_rows >= 2 else 0

    @property
    def small_gemm_weights(self) -> int:
        """The packed weights of a GEMM with fewer than SMALL_GEMM_ROWS rows, where CPU kernels fall far below
        their rate (measured in lab 00's machine: a 3x3 conv on a 2x2 map at batch 1 runs as a 4-row GEMM at
        12 GFLOP/s, against ~130 at 16 rows); priced by ``OpFit.small_gemm_weight_s``."""
        return self.packed_weights if self.gemm_rows < SMALL_GEMM_ROWS else 0

    @property
    def small_image_gemm_weights(self) -> int:
        """A conv's weights once per image when each image's output map has fewer than SMALL_GEMM_ROWS pixels:
        a runtime that runs a conv as one GEMM per image (ONNX Runtime does) pays the small-GEMM slowdown per
        image, even at batch 32 (measured in lab 00's machine: a 3x3 conv on 2x2 maps runs at ~37 GFLOP/s at any
        batch there); priced by ``OpFit.small_image_gemm_weight_s``."""
        if self.op_class != "conv" or not self.packed_weights or not self.output_shape:
            return 0
        images = int(self.output_shape[0])
        return self.packed_weights * images if self.gemm_rows < SMALL_GEMM_ROWS * images else 0

    @property
    def unit_counts(self) -> tuple[int, int, int, int]:
        """``(kernel_calls, packed_weights, small_gemm_weights, small_image_gemm_weights)``: what a calibrated
        fit prices per unit, beside the FLOPs and bytes (``OpFit.time_s``)."""
        return self.kernel_calls, self.packed_weights, self.small_gemm_weights, self.small_image_gemm_weights


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

    def at_batch(self, batch: int) -> Profile:
        """The same model at another batch: per-sample work and activations times ``batch / self.batch``,
        weights unchanged. The one place labkit rescales a profile (``lk.estimate``, ``lk.partition`` and the
        calibration use it). A GEMM that multiplies by a weight matrix streams the batch through its M; one of two
        activations (attention's ``q @ k^T``) has one more group per sample.

        >>> import torch, labkit as lk
        >>> p = lk.profile(torch.nn.Linear(8, 4), torch.zeros(2, 8))
        >>> p8 = p.at_batch(8)
        >>> (p8.batch, p8.flops == 4 * p.flops, p8.weight_bytes == p.weight_bytes, p8.layers[0].gemm)
        (8, True, True, (1, 8, 8, 4))
        """
        batch = check("batch", batch, Int(low=1))
        if batch == self.batch:
            return self
        scale = batch // self.batch if batch % self.batch == 0 else batch / self.batch
        old = self.batch
        return replace(self, batch=batch, layers=tuple([_scaled(lay, scale, old, batch) for lay in self.layers]),
                       input_elems=round(self.input_elems * scale), output_elems=round(self.output_elems * scale))

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


def _scaled(layer: Layer, scale: float | int, old_batch: int, new_batch: int) -> Layer:
    """`layer` with per-sample work times `scale` (an int when the batch is a multiple: exact and faster).
    Built by copying its __dict__: dataclasses.replace is ~10x slower per layer, and lk.estimate rescales every
    layer of a 1,000-layer profile."""
    new = _new(Layer)
    d = new.__dict__
    d.update(layer.__dict__)
    if type(scale) is int:
        d["macs"], d["flops"] = layer.macs * scale, layer.flops * scale
        d["input_elems"], d["output_elems"] = layer.input_elems * scale, layer.output_elems * scale
    else:
        d["macs"], d["flops"] = round(layer.macs * scale), round(layer.flops * scale)
        d["input_elems"], d["output_elems"] = round(layer.input_elems * scale), round(layer.output_elems * scale)
    shape = layer.output_shape
    if shape and shape[0] == old_batch:          # the profilers record batch-first shapes
        d["output_shape"] = (new_batch, *shape[1:])
    gemm = layer.gemm
    if gemm is not None:
        g, M, K, N = gemm
        if layer.weight_elems:   # x[M,K] @ w[K,N]: one weight matrix for every sample, the batch streams through M
            d["gemm"] = (g, max(1, round(M * scale)), K, N)
        else:                    # activation @ activation: each sample brings its own operand (groups = batch x heads)
            d["gemm"] = (max(1, round(g * scale)), M, K, N)
    return new
