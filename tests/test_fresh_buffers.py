"""labkit.targets.fresh_buffers against oneDNN and the kernel (lab 00): the buffers a torch conv writes fresh
(and labkit.targets.blocked_flops: the channels oneDNN pads to whole blocks).

Two oracles, neither of which reads labkit's rule:
- oneDNN's own log (``ONEDNN_VERBOSE=1``, in a subprocess): which activations a conv reorders into a blocked
  layout, their dims, and the block size of the layout it names (``aBcd16b``);
- the kernel's count of minor page faults (``getrusage``) during one call of a conv whose buffers are all beyond
  glibc's largest mmap threshold (32 MiB on 64-bit), so every one of them is mapped afresh and faulted in.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import subprocess
import sys

import pytest
import torch

import labkit as lk
from labkit.targets import blocked_flops, fit_op, fresh_buffers, onednn_block

BATCH = 20            # >= 16: oneDNN for every conv; no channel count below equals it, so dims tell who is who

_CHILD = r"""
import json, sys, torch
torch.set_num_threads(2)
for i, (c_in, c_out, k, stride, groups, hw, one_d) in enumerate(json.loads(sys.argv[1])):
    cls = torch.nn.Conv1d if one_d else torch.nn.Conv2d
    conv = cls(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups).eval()
    x = torch.randn((20, c_in, hw * hw) if one_d else (20, c_in, hw, hw))
    print("CASE", i, flush=True)
    with torch.inference_mode():
        conv(x)
    print("", flush=True)
"""


def _cases(n, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        c_in = rng.choice((1, 3, 4, 8, 12, 16, 24, 48, 96))   # about the blocks: AVX2's is 8, AVX-512's 16
        depthwise = c_in > 4 and rng.random() < 0.3
        c_out = c_in if depthwise else rng.choice((4, 16, 24, 40, 64))
        k, stride = rng.choice((1, 1, 3, 3, 5)), rng.choice((1, 1, 2))
        out.append((c_in, c_out, k, stride, c_in if depthwise else 1, rng.choice((6, 12, 17)),
                    rng.random() < 0.15))
    # and the edges of the rules: a strided 1x1 conv that oneDNN's 1x1 kernel runs (6 = 3 x 2) or not (17), and
    # channel counts between AVX2's block and AVX-512's, plain and depthwise
    return out + [(4, 16, 1, 2, 1, 17, False), (4, 24, 1, 2, 1, 6, False), (12, 16, 3, 1, 1, 12, False),
                  (8, 8, 3, 1, 8, 12, False), (12, 40, 1, 2, 1, 17, True)]


def _reorders(log: str) -> dict[int, list[tuple[tuple[int, ...], int]]]:
    """Per case: (dims, block) of each activation reorder oneDNN ran (dims led by the batch)."""
    out, case = {}, None
    for line in log.splitlines():
        if line.startswith("CASE"):
            case = int(line.split()[1])
            out[case] = []
        elif case is not None and ",exec," in line and ",reorder," in line:
            fields = line.split(",")
            dims = tuple(int(d) for d in fields[-2].split("x"))
            if dims[0] != BATCH:
                continue                                # a weight reorder: led by the output channels
            blocks = [int(b) for b in re.findall(r"aBc\w*?(\d+)b", line)]
            out[case].append((dims, max(blocks) if blocks else 1))
    return out


@pytest.fixture(params=[None, "AVX2"])          # this CPU's own code, and oneDNN held to AVX2's
def max_isa(request, monkeypatch):
    """oneDNN's ISA cap for the test and its child (labkit's block read afresh, and again after the test)."""
    if request.param:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", request.param)
    onednn_block.cache_clear()
    yield request.param
    monkeypatch.undo()
    onednn_block.cache_clear()


def test_blocked_copies_are_onednn_reorders(max_isa):
    cases = _cases(32)
    env = dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")
    log = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cases)], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    reorders = _reorders(log)
    assert len(reorders) == len(cases), log[-2000:]
    checked = 0
    for i, (c_in, c_out, k, stride, groups, hw, one_d) in enumerate(cases):
        cls = torch.nn.Conv1d if one_d else torch.nn.Conv2d
        conv = cls(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups).eval()
        x = torch.randn((BATCH, c_in, hw * hw) if one_d else (BATCH, c_in, hw, hw))
        layer = next(lay for lay in lk.profile(conv, x).layers if lay.op_class in ("conv", "dwconv"))
        assert not fit_op(layer, 2).endswith(":im2col")     # batch 20: oneDNN, as the log shows
        seen = reorders[i]
        predicted = fresh_buffers(layer, 2)[1:]             # the blocked copies, after the output itself
        assert len(predicted) == len(seen), (cases[i], seen, predicted)
        # the FLOPs oneDNN computes: channels padded to the blocks of the layouts it reordered into (blocked_flops)
        out_dims, out_block = seen[-1]
        pad = -(-out_dims[1] // out_block) * out_block / out_dims[1]
        if len(seen) == 2 and groups == 1:
            in_dims, in_block = seen[0]
            pad *= -(-in_dims[1] // in_block) * in_block / in_dims[1]
        assert blocked_flops(layer, 2) == pytest.approx(layer.flops * pad), (cases[i], seen)
        for (dims, block), nbytes in zip(seen, predicted):
            assert block == onednn_block(), (cases[i], dims, block)
            channels = -(-dims[1] // block) * block
            rest = 1
            for d in (dims[0], *dims[2:]):
                rest *= d
            assert nbytes == channels * rest * 4, (cases[i], dims, nbytes)
            checked += 1
    assert checked > len(cases), "too few blocked copies were compared"


_FAULTS = r"""
import json, os, resource, sys, torch
torch.set_num_threads(2)
shape, conv = json.loads(sys.argv[1])
model, x = torch.nn.Conv2d(**conv).eval(), torch.randn(shape)
with torch.inference_mode():
    for _ in range(2):
        model(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model(x)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * os.sysconf("SC_PAGE_SIZE"))
"""


def _thp_always() -> bool:
    """Transparent huge pages on every mapping: a 2 MiB page faults once, not 512 times."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or _thp_always()
                    or any(k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD")) for k in os.environ),
                    reason="glibc's default malloc, with 4 KiB pages")
@pytest.mark.parametrize("shape, conv", [
    ((32, 64, 80, 80), dict(in_channels=64, out_channels=64, kernel_size=3, padding=1, groups=64)),   # 3 x 52 MiB
    ((32, 64, 80, 80), dict(in_channels=64, out_channels=16, kernel_size=1, stride=2)),            # input's copy
    ((32, 3, 224, 224), dict(in_channels=3, out_channels=16, kernel_size=3, padding=1)),           # 2 x 98 MiB
])
def test_fresh_buffers_are_the_page_faults(shape, conv):
    # in a fresh interpreter: in a long-lived one, glibc may serve a big buffer from a free chunk left inside
    # its heap, which faults nothing (only what the heap cannot serve is mapped afresh). Without torch's huge
    # pages (which `import labkit` asks for, labkit/allocator.py): one fault per 4 KiB counts the bytes.
    env = os.environ | {"THP_MEM_ALLOC_ENABLE": "0"}
    out = subprocess.run([sys.executable, "-c", _FAULTS, json.dumps([shape, conv])], capture_output=True,
                         text=True, timeout=120, check=True, env=env).stdout
    faulted = int(out.split()[-1])
    layer = lk.profile(torch.nn.Conv2d(**conv).eval(), torch.randn(shape)).layers[0]
    buffers = fresh_buffers(layer, 2)
    big = sum(b for b in buffers if b >= 40 * 2**20)              # beyond glibc's largest mmap threshold, 32 MiB
    small = sum(b for b in buffers if b < 40 * 2**20)
    assert all(b < 16 * 2**20 for b in buffers if b < 40 * 2**20)   # reused from the heap call after call
    assert big * 0.9 <= faulted <= big * 1.1 + small + 2**22, (buffers, faulted)
