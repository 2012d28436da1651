"""Random synthetic networks from a seed: what ``lk.calibrate`` times *in context* (lab 00).

Why: a layer timed alone, in a hot loop, runs up to ~1.6x faster than the same layer inside a model (its
weights and input are hot in the cache, the allocator hands back the same block, no container modules call
it). Timing whole random networks, and fitting ``call + sum(layer times)`` to their total time, puts those
effects in the fit. A network is a random stack of blocks drawn from the usual PyTorch vocabulary:

- image nets, (C, H, W) input: conv kxk (+ batchnorm) (+ relu / relu6 / gelu), depthwise 3x3, max/avg
  pooling, residual blocks ``x + f(x)``, nested ``nn.Sequential`` containers; a pooled linear head,
- token nets, (T,) ids or (T, D) features: embedding, layernorm, linear, gelu/relu MLPs, multi-head
  self-attention (SDPA, or an explicit softmax(q k^T) v), residual adds, a mean or first-token head,
- vector nets, (D,) input: linear + activation stacks,
- wide nets (asked for by kind="wide"): MLP blocks of wide linears on a few tokens, or wide convs on small
  maps, whose weights (1-10 MB) do not stay in a core's caches from one layer to the next.

Widths, depths, spatial sizes, kernels and strides are drawn at random, with a cap on the MACs per sample so
that one network at batch 32 runs in milliseconds. Same seed, same network, same weights.

>>> from labkit.calibration.synthnet import random_net
>>> net, x = random_net(3, batch=2)
>>> net(x).shape[0]
2
"""

from __future__ import annotations

import random

WIDTHS = (8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 384)
MAX_MACS = 6e6           # per sample: at batch 32 about 0.4 GFLOP, a few ms here
WIDE_MAX_MACS = 12e6     # per sample, for the "wide" kind (weights beyond the caches): about 0.8 GFLOP at batch 32


def _nn():
    """Module classes, defined on first use so that importing labkit.calibration.synthnet does not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Residual(nn.Module):
        """x + body(x), then an optional activation (functional, as many forwards write it)."""

        def __init__(self, body, act=None):
            super().__init__()
            self.body, self.act = body, act

        def forward(self, x):
            y = x + self.body(x)
            return y if self.act is None else self.act(y)

    class SelfAttention(nn.Module):
        """Multi-head self-attention on (B, T, D): q, k, v projections (one fused or three), SDPA or an
        explicit softmax(q k^T / sqrt(d)) v, heads merged, an output projection (or none)."""

        def __init__(self, d, heads, fused, explicit, out):
            super().__init__()
            self.heads, self.d, self.explicit = heads, d // heads, explicit
            self.qkv = nn.Linear(d, 3 * d) if fused else None
            self.q, self.k, self.v = (None, None, None) if fused else (nn.Linear(d, d) for _ in range(3))
            self.out = nn.Linear(d, d) if out else nn.Identity()

        def forward(self, x):                                     # (B, T, D)
            if self.qkv is not None:
                q, k, v = self.qkv(x).chunk(3, dim=-1)
            else:
                q, k, v = self.q(x), self.k(x), self.v(x)
            q, k, v = (t.unflatten(-1, (self.heads, self.d)).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d)
            if self.explicit:
                scores = (q @ k.transpose(-2, -1)) * (self.d ** -0.5)  # (B, H, T, T)
                y = scores.softmax(dim=-1) @ v
            else:
                y = F.scaled_dot_product_attention(q, k, v)
            return self.out(y.transpose(1, 2).flatten(2))         # (B, T, D)

    class Head(nn.Module):
        """Image features (B, C, H, W) -> (B, C): global average pool (module or mean)."""

        def __init__(self, use_mean):
            super().__init__()
            self.use_mean = use_mean
            self.pool, self.flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten()

        def forward(self, x):
            return x.mean(dim=(2, 3)) if self.use_mean else self.flatten(self.pool(x))

    class TokenHead(nn.Module):
        """(B, T, D) -> (B, D): the mean over tokens, or the first token."""

        def __init__(self, first):
            super().__init__()
            self.first = first

        def forward(self, x):
            return x[:, 0] if self.first else x.mean(dim=1)

    class AddPos(nn.Module):
        """(B, T, D) + a learned (1, T, D) position table."""

        def __init__(self, t, d):
            super().__init__()
            self.pos = nn.Parameter(0.02 * torch.randn(1, t, d))

        def forward(self, x):
            return x + self.pos

    return nn, Residual, SelfAttention, Head, TokenHead, AddPos


def _act(nn, rng):
    return rng.choices([nn.ReLU, nn.ReLU6, nn.GELU], weights=[6, 3, 1])[0]()


def _near(rng, c, factors=(0.5, 1, 1, 1.5, 2, 2, 3, 4, 6)):
    """A width near c * a random factor, from WIDTHS."""
    target = c * rng.choice(factors)
    return min(WIDTHS, key=lambda w: abs(w - target))


class _OverBudget(Exception):
    """A block would take the network past MAX_MACS per sample."""


def _image_net(rng):
    """Conv / depthwise / pool / residual blocks on a (C, H, W) image, a pooled linear head."""
    nn, Residual, _, Head, _, _ = _nn()
    c_in, hw0 = rng.choice([1, 3]), rng.choice([16, 32, 32])
    hw, macs = hw0, 0

    def conv_unit(ci, co, k, stride, groups=1):
        """conv (+ batchnorm) (+ activation); counts MACs per sample and the new map size. Raises
        _OverBudget (and changes nothing) if the conv would take the net past MAX_MACS."""
        nonlocal hw, macs
        hw_out = (hw + stride - 1) // stride
        cost = hw_out * hw_out * co * (ci // groups) * k * k
        if macs + cost > MAX_MACS and macs:
            raise _OverBudget
        hw, macs = hw_out, macs + cost
        parts = [nn.Conv2d(ci, co, k, stride, k // 2, groups=groups, bias=rng.random() < 0.3)]
        if rng.random() < 0.75:
            parts.append(nn.BatchNorm2d(co))
        if rng.random() < 0.75:
            parts.append(_act(nn, rng))
        return parts

    c = rng.choice([8, 16, 24, 32])
    blocks = [nn.Sequential(*conv_unit(c_in, c, 3, 1))]
    for _ in range(rng.randint(3, 12)):
        kind = rng.choices(["conv", "dw", "pool", "residual", "plain"], weights=[4, 3, 1, 3, 1])[0]
        stride = 2 if hw >= 4 and rng.random() < 0.3 else 1
        hw_before, macs_before = hw, macs
        try:
            if kind == "pool" and hw >= 4:
                blocks.append(nn.MaxPool2d(2) if rng.random() < 0.7 else nn.AvgPool2d(2))
                hw //= 2
            elif kind == "conv":
                co = _near(rng, c)
                blocks.append(nn.Sequential(*conv_unit(c, co, rng.choice([1, 3, 3]), stride)))
                c = co
            elif kind == "dw":
                blocks.append(nn.Sequential(*conv_unit(c, c, 3, stride, groups=c)))
            elif kind == "residual":          # a shape-keeping body of 1-3 units, summed with its input
                body, mid = [], c
                for j in range(3):
                    last = j == 2 or rng.random() < 0.4
                    co = c if last else _near(rng, c, (1, 2, 4, 6))
                    if co == mid and rng.random() < 0.4:
                        body += conv_unit(mid, mid, 3, 1, groups=mid)
                    else:
                        body += conv_unit(mid, co, rng.choice([1, 3]), 1)
                    mid = co
                    if last:
                        break
                blocks.append(Residual(nn.Sequential(*body), _act(nn, rng) if rng.random() < 0.4 else None))
            else:                              # a batchnorm or an activation on its own
                blocks.append(nn.BatchNorm2d(c) if rng.random() < 0.5 else _act(nn, rng))
        except _OverBudget:   # the block would make the net too slow to time: stop here
            hw, macs = hw_before, macs_before
            break
    head = [Head(rng.random() < 0.3)]
    if rng.random() < 0.3:
        hidden = _near(rng, c)
        head += [nn.Linear(c, hidden), _act(nn, rng)]
        c = hidden
    head.append(nn.Linear(c, rng.choice([10, 10, 16, 100])))
    layers = [nn.Sequential(*blocks)] if rng.random() < 0.5 else blocks   # nested or flat, as models vary
    return nn.Sequential(*layers, *head), ("float", (c_in, hw0, hw0))


def _token_net(rng):
    """Embedding or linear input, then random attention / MLP / norm blocks (pre- or post-norm), a head."""
    nn, Residual, SelfAttention, _, TokenHead, AddPos = _nn()
    t = rng.choice([8, 16, 32, 32, 64])
    d = rng.choice([32, 48, 64, 64, 96, 128])
    heads = rng.choice([h for h in (1, 2, 4, 8) if d % h == 0 and d // h >= 8])
    if rng.random() < 0.6:
        vocab = rng.choice([16, 32, 64, 256])
        layers, spec = [nn.Embedding(vocab, d)], ("tokens", (t,), vocab)
    else:
        d_in = rng.choice([8, 16, 32, 64])
        layers, spec = [nn.Linear(d_in, d)], ("float", (t, d_in))
    if rng.random() < 0.6:
        layers.append(AddPos(t, d))
    pre = rng.random() < 0.7
    for _ in range(rng.randint(1, 4)):
        kind = rng.choices(["attention", "mlp", "norm"], weights=[4, 4, 1])[0]
        if kind == "attention":
            body = SelfAttention(d, heads, fused=rng.random() < 0.3, explicit=rng.random() < 0.3,
                                 out=rng.random() < 0.85)
        elif kind == "mlp":
            hidden = d * rng.choice([1, 2, 4])
            body = nn.Sequential(nn.Linear(d, hidden), nn.GELU() if rng.random() < 0.7 else nn.ReLU(),
                                 nn.Linear(hidden, d))
        else:
            layers.append(nn.LayerNorm(d))
            continue
        if pre:
            layers.append(Residual(nn.Sequential(nn.LayerNorm(d), body)))
        else:
            layers += [Residual(body), nn.LayerNorm(d)]
    if pre and rng.random() < 0.7:
        layers.append(nn.LayerNorm(d))
    layers += [TokenHead(first=rng.random() < 0.3), nn.Linear(d, rng.choice([2, 10, 32]))]
    return nn.Sequential(*layers), spec


def _vector_net(rng):
    """(D,) features through linear + activation layers (batchnorm or layernorm now and then)."""
    nn, *_ = _nn()
    d0 = d = rng.choice([16, 32, 64, 128, 256, 784])
    layers = []
    for _ in range(rng.randint(1, 5)):
        out = _near(rng, max(d, 32), (0.25, 0.5, 1, 2, 4))
        layers.append(nn.Linear(d, out))
        if rng.random() < 0.2:
            layers.append(nn.BatchNorm1d(out) if rng.random() < 0.5 else nn.LayerNorm(out))
        layers.append(_act(nn, rng))
        d = out
    layers.append(nn.Linear(d, rng.choice([2, 10, 100])))
    return nn.Sequential(*layers), ("float", (d0,))


def _wide_net(rng):
    """Weights beyond a core's caches (1-10 MB), as published models have: MLP blocks of wide linears on a few
    tokens, or wide convs on small maps. Each layer finds its weights evicted by the layers before it, which is
    what pins the cold-cache cost per weight byte (``labkit.targets.cold_s``); the other kinds' weights stay in
    cache."""
    nn, Residual, _, Head, TokenHead, _ = _nn()
    if rng.random() < 0.5:                      # (T, D) tokens through pre-norm MLP blocks
        t, d = rng.choice([1, 2, 4, 8]), rng.choice([256, 384, 512, 768])
        layers, macs = [nn.Linear(d, d)], t * d * d
        for _ in range(8):
            hidden = d * rng.choice([1, 2, 4])
            if macs + 2 * t * d * hidden > WIDE_MAX_MACS:
                break
            macs += 2 * t * d * hidden
            layers.append(Residual(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, hidden), _act(nn, rng),
                                                 nn.Linear(hidden, d))))
        return nn.Sequential(*layers, TokenHead(first=False), nn.Linear(d, 10)), ("float", (t, d))
    hw, c = rng.choice([2, 2, 4]), rng.choice([64, 128])
    layers, macs = [nn.Conv2d(3, c, 3, 1, 1), nn.ReLU()], hw * hw * c * 27
    for _ in range(12):
        co, k = rng.choice([128, 256, 384, 512]), rng.choice([1, 3, 3])
        if macs + hw * hw * c * co * k * k > WIDE_MAX_MACS:
            continue
        macs += hw * hw * c * co * k * k
        layers += [nn.Conv2d(c, co, k, 1, k // 2, bias=False), nn.BatchNorm2d(co), _act(nn, rng)]
        c = co
    return nn.Sequential(*layers, Head(rng.random() < 0.3), nn.Linear(c, 100)), ("float", (3, hw, hw))


KINDS = {"image": _image_net, "tokens": _token_net, "vector": _vector_net, "wide": _wide_net}
WEIGHTS = {"image": 6, "tokens": 3, "vector": 1, "wide": 0}     # "wide" only when asked for


def random_net(seed: int, batch: int = 1, kind: str | None = None):
    """The random network of `seed` (eval mode, fixed weights) and an example input at `batch` (lab 00).

    `kind` ("image", "tokens", "vector") forces a family; by default the seed draws it. The global torch
    random state is left untouched.

    >>> net, x = random_net(0, batch=4, kind="vector")
    >>> tuple(x.shape)[0], net.training
    (4, False)
    """
    import torch

    if kind is not None and kind not in KINDS:
        from labkit.args import unknown_name

        raise unknown_name("synthetic network kind", kind, KINDS)
    rng = random.Random(seed)
    chosen = kind or rng.choices(list(KINDS), weights=list(WEIGHTS.values()))[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net, spec = KINDS[chosen](rng)
        for m in net.modules():   # batchnorm statistics as a trained net has them, not 0 and 1
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        gen = torch.Generator().manual_seed(seed)
        if spec[0] == "tokens":
            x = torch.randint(0, spec[2], (batch, *spec[1]), generator=gen)
        else:
            x = torch.randn((batch, *spec[1]), generator=gen)
    return net.eval(), x
