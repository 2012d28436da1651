"""A synthetic n-layer profile (a DAG) for timing lk.estimate and lk.partition at scale (bench/run.py).

Layers cycle conv -> norm -> relu, with residual adds (ResNet-like skips) and a linear every few layers, so
every layer class the estimator distinguishes appears, and matmul-like layers carry `gemm` shapes (systolic
padding is exercised on a TPU). Sizes are random but seeded: the same profile on every run.
"""

from __future__ import annotations

import random


def layered_profile(n: int = 1000, seed: int = 0, skip_every: int = 4):
    """n layers; every `skip_every`-th layer is an add reading the previous layer and one a few layers back."""
    import labkit as lk

    rng = random.Random(seed)
    layers = []
    for v in range(n):
        prev = "input" if v == 0 else f"l{v - 1}"
        channels, hw = rng.choice([32, 64, 128, 256]), rng.choice([7, 14, 28, 56])
        out = channels * hw * hw                     # elements of the (1, C, H, W) output, batch 1
        if v >= 4 and v % skip_every == 0:           # residual add: two inputs, element-wise
            back = f"l{v - rng.randint(2, 4)}"
            layers.append(lk.Layer(f"l{v}", "add", "elementwise", (prev, back), 0, out, 0, 0, 2 * out, out,
                                   (1, channels, hw, hw)))
        elif v % 7 == 3:                             # a linear layer: GEMM (1, M=hw*hw, K, N)
            k, m = channels, hw * hw
            layers.append(lk.Layer(f"l{v}", "linear", "matmul", (prev,), m * k * channels,
                                   2 * m * k * channels, k * channels + channels, k * channels, m * k, out,
                                   (1, m, channels), gemm=(1, m, k, channels)))
        elif v % 3 == 0:                             # 3x3 conv: GEMM (1, M=H*W, K=9*C, N=C)
            k = 9 * channels
            macs = hw * hw * k * channels
            layers.append(lk.Layer(f"l{v}", "conv2d", "conv", (prev,), macs, 2 * macs, k * channels + channels,
                                   k * channels, out, out, (1, channels, hw, hw), gemm=(1, hw * hw, k, channels)))
        elif v % 3 == 1:
            layers.append(lk.Layer(f"l{v}", "batchnorm", "norm", (prev,), 0, 4 * out, 2 * channels,
                                   2 * channels, out, out, (1, channels, hw, hw)))
        else:
            layers.append(lk.Layer(f"l{v}", "relu", "elementwise", (prev,), 0, out, 0, 0, out, out,
                                   (1, channels, hw, hw)))
    return lk.Profile(f"synthetic-dag-{n}", "torch", 1, "fp32", tuple(layers),
                      params=sum(layer.params for layer in layers), input_elems=3 * 224 * 224,
                      output_elems=layers[-1].output_elems)
