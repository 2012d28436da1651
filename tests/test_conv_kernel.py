"""labkit.targets.fit_op against torch itself: which kernel torch eager runs a convolution with (lab 00).

The oracle is torch's own profiler: a conv that runs in oneDNN records ``aten::mkldnn_convolution``; one that
runs as ATen's im2col + GEMM records ``aten::_slow_conv2d_forward`` (or ``slow_conv_dilated2d``). fit_op reads
only the profile's Layer (its window, batch, groups and input size) and the thread count, so a Layer field the
profiler filled wrong, or a clause of torch's rule written wrong, fails here.
"""

from __future__ import annotations

import random

import pytest
import torch

import labkit as lk
from labkit.targets import fit_op


def _torch_kernel(model, x) -> str:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x)
    keys = {e.key for e in prof.key_averages()}
    assert any("conv" in k for k in keys), keys
    return "mkldnn" if "aten::mkldnn_convolution" in keys else "im2col"


class _Functional(torch.nn.Module):
    """F.conv1d/conv2d with its weight as a parameter: the profiler's functional path."""

    def __init__(self, conv):
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self.fn = torch.nn.functional.conv1d if isinstance(conv, torch.nn.Conv1d) else torch.nn.functional.conv2d

    def forward(self, x):
        return self.fn(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _cases(n, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        c_in = rng.choice((1, 3, 8, 16, 32, 96))
        depthwise = c_in > 1 and rng.random() < 0.2
        c_out = c_in if depthwise else rng.choice((4, 16, 32))
        k = rng.choice((1, 1, 3, 3, 5, (1, 5), (5, 3), (5, 4)))
        stride, dilation = rng.choice((1, 1, 2)), rng.choice((1, 1, 1, 2))
        batch = rng.choice((1, 1, 1, 2, 15, 16))
        # maps around torch's 20480-element cut at batch 1
        kk = k if isinstance(k, tuple) else (k, k)                     # not square: torch's "both ways"
        hw = max(max(kk) * dilation, int((rng.uniform(0.5, 2.0) * 20480 / c_in) ** 0.5))
        one_d = not isinstance(k, tuple) and rng.random() < 0.15
        conv_cls = torch.nn.Conv1d if one_d else torch.nn.Conv2d
        padding = k // 2 * dilation if one_d else tuple(n // 2 * dilation for n in kk)
        conv = conv_cls(c_in, c_out, k, stride=stride, dilation=dilation, padding=padding,
                        groups=c_in if depthwise else 1)
        shape = (batch, c_in, hw * hw) if one_d else (batch, c_in, hw, hw)
        yield conv, torch.randn(*shape)


@pytest.mark.parametrize("threads", [1, 2])
def test_fit_op_names_the_kernel_torch_runs(threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seen = set()
        for i, (conv, x) in enumerate(_cases(60, seed=threads)):
            model = conv if i % 2 else _Functional(conv)
            prof = lk.profile(model, x)
            (layer,) = [lay for lay in prof.layers if lay.op in ("conv1d", "conv2d")]
            want = _torch_kernel(model, x)
            got = "im2col" if fit_op(layer, threads).endswith(":im2col") else "mkldnn"
            assert got == want, (conv, tuple(x.shape), layer.window, threads)
            assert fit_op(layer, 0) == layer.op                       # not torch: no kernel choice
            seen.add(want)
        assert seen == {"mkldnn", "im2col"}                             # both sides of the rule were tried
    finally:
        torch.set_num_threads(before)


def test_the_window_follows_the_batch_the_estimate_asks_for():
    # 32 channels on 16x16 is 8192 elements per image: im2col at batch 1, oneDNN from batch 2 on
    prof = lk.profile(torch.nn.Conv2d(32, 32, 3, padding=1), torch.zeros(1, 32, 16, 16))
    (layer,) = prof.layers
    assert layer.window == (3, 3, 1, 1)
    assert fit_op(layer, 2) == "conv2d:im2col"
    assert fit_op(prof.at_batch(2).layers[0], 2) == "conv2d"
    assert lk.profile(torch.nn.Linear(4, 4), torch.zeros(1, 4)).layers[0].window == ()
