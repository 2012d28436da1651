"""Held-out architectures for ``labkit validate --held-out``: published networks the calibration never saw (lab 00).

Written here from their published definitions (no download, random weights: timing does not depend on them),
each at the size its paper or reference implementation gives, so that its parameter count is the published
one to the parameter (tests/test_heldout.py):

| name | published parameters | definition |
|---|---|---|
| resnet18, resnet34 | 11,689,512; 21,797,672 | He et al., CVPR 2016, Table 1 (torchvision's BasicBlock layout) |
| mobilenet_v2 | 3,504,872 | Sandler et al., CVPR 2018, Table 2 (width 1.0) |
| mobilenet_v3_small | 2,542,856 | Howard et al., ICCV 2019, Table 2 (torchvision's layout) |
| efficientnet_b0 | 5,288,548 | Tan & Le, ICML 2019, Table 1 (torchvision's layout) |
| vit_tiny | 5,717,416 | DeiT-Ti: Touvron et al., ICML 2021, Table 1 (patch 16, dim 192, 12 x 3 heads) |
| bert_mini | 11,170,560 | Turc et al., 2019, "Well-read students": L=4, H=256, A=4, 30,522-token vocabulary |

The convolutional networks take any input size (global pooling); ViT's position table and BERT's sequence
length follow the example. Cases are named ``"<model>@<size>"`` (pixels, or tokens for bert_mini).
"""

from __future__ import annotations

from functools import lru_cache

from labkit.args import check_int, unknown_name

PUBLISHED_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "mobilenet_v2": 3_504_872,
                    "mobilenet_v3_small": 2_542_856, "efficientnet_b0": 5_288_548, "vit_tiny": 5_717_416,
                    "bert_mini": 11_170_560}
# What `labkit validate --held-out` runs: every family, small to large inputs (ViT needs multiples of 16).
CASES = ("resnet18@64", "resnet18@128", "resnet34@96", "mobilenet_v2@96", "mobilenet_v2@224",
         "mobilenet_v3_small@64", "mobilenet_v3_small@224", "efficientnet_b0@128", "vit_tiny@64",
         "vit_tiny@224", "bert_mini@32", "bert_mini@128")


def _div8(v: float) -> int:
    """Round channels to a multiple of 8, never below 90% of `v` (the reference implementations' rule)."""
    new = max(8, int(v + 4) // 8 * 8)
    return new + 8 if new < 0.9 * v else new


@lru_cache(maxsize=1)
def _nets():
    """The model classes, defined on first use so that importing this module does not import torch."""
    import torch
    from torch import nn

    def conv_bn(cin, cout, k, stride=1, groups=1, act=None):
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(conv_bn(cin, cout, 3, stride, act=nn.ReLU), conv_bn(cout, cout, 3))
            self.down = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

        def forward(self, x):
            return torch.relu(self.body(x) + self.down(x))

    class ResNet(nn.Module):
        def __init__(self, blocks):
            super().__init__()
            layers, cin = [conv_bn(3, 64, 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)], 64
            for i, (n, cout) in enumerate(zip(blocks, (64, 128, 256, 512))):
                for j in range(n):
                    layers.append(Basic(cin, cout, 2 if i > 0 and j == 0 else 1))
                    cin = cout
            self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):
            return self.fc(self.features(x))

    class SE(nn.Module):
        def __init__(self, ch, squeeze, act, gate):
            super().__init__()
            self.pool, self.fc1, self.act = nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, squeeze, 1), act()
            self.fc2, self.gate = nn.Conv2d(squeeze, ch, 1), gate()

        def forward(self, x):
            return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))

    class MBConv(nn.Module):
        """Inverted residual: 1x1 expand, k x k depthwise, optional squeeze-excite, 1x1 project."""

        def __init__(self, cin, exp, cout, k, stride, act, se_squeeze=None, se_act=nn.ReLU, gate=nn.Hardsigmoid):
            super().__init__()
            layers = [conv_bn(cin, exp, 1, act=act)] if exp != cin else []
            layers.append(conv_bn(exp, exp, k, stride, groups=exp, act=act))
            if se_squeeze:
                layers.append(SE(exp, se_squeeze, se_act, gate))
            layers.append(conv_bn(exp, cout, 1))
            self.body, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [conv_bn(3, 32, 3, 2, act=nn.ReLU6)], 32
            for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                               (6, 160, 3, 2), (6, 320, 1, 1)):
                for i in range(n):
                    layers.append(MBConv(cin, cin * t, c, 3, s if i == 0 else 1, nn.ReLU6))
                    cin = c
            layers += [conv_bn(cin, 1280, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            self.features, self.classifier = nn.Sequential(*layers), nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x):
            return self.classifier(self.features(x))

    class MobileNetV3Small(nn.Module):
        # (kernel, expanded, out, squeeze-excite, activation, stride): torchvision's mobilenet_v3_small
        CONFIG = ((3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
                  (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
                  (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
                  (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1))

        def __init__(self):
            super().__init__()
            layers, cin = [conv_bn(3, 16, 3, 2, act=nn.Hardswish)], 16
            for k, exp, cout, se, act, s in self.CONFIG:
                act = nn.ReLU if act == "RE" else nn.Hardswish
                layers.append(MBConv(cin, exp, cout, k, s, act, _div8(exp // 4) if se else None))
                cin = cout
            layers += [conv_bn(cin, 576, 1, act=nn.Hardswish), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(1024, 1000))

        def forward(self, x):
            return self.classifier(self.features(x))

    class EfficientNetB0(nn.Module):
        # (expand ratio, kernel, stride, in, out, repeats): Tan & Le, Table 1
        STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                  (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))

        def __init__(self):
            super().__init__()
            layers = [conv_bn(3, 32, 3, 2, act=nn.SiLU)]
            for t, k, s, cin, cout, n in self.STAGES:
                for i in range(n):
                    c = cin if i == 0 else cout           # squeeze-excite squeezes to a quarter of the block input
                    layers.append(MBConv(c, c * t, cout, k, s if i == 0 else 1, nn.SiLU, max(1, c // 4),
                                         nn.SiLU, nn.Sigmoid))
            layers += [conv_bn(320, 1280, 1, act=nn.SiLU), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            self.features, self.classifier = nn.Sequential(*layers), nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x):
            return self.classifier(self.features(x))

    class Attention(nn.Module):
        """Multi-head self-attention written out (q @ k^T, softmax, @ v), so the profile sees what runs."""

        def __init__(self, dim, heads, fused_qkv):
            super().__init__()
            self.heads = heads
            if fused_qkv:
                self.qkv = nn.Linear(dim, 3 * dim)
            else:
                self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):                      # x: [B, T, D]
            B, T, D = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1) if hasattr(self, "qkv") else (self.q(x), self.k(x), self.v(x))
            q, k, v = (t.reshape(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
            att = torch.softmax(q @ k.transpose(-2, -1) * (D // self.heads) ** -0.5, dim=-1)
            return self.proj((att @ v).transpose(1, 2).reshape(B, T, D))

    class ViTBlock(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads, fused_qkv=True)
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class ViTTiny(nn.Module):
        def __init__(self, size=224, patch=16, dim=192, depth=12, heads=3):
            super().__init__()
            self.patch = nn.Conv2d(3, dim, patch, patch)
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos = nn.Parameter(torch.zeros(1, (size // patch) ** 2 + 1, dim))
            self.blocks = nn.Sequential(*[ViTBlock(dim, heads) for _ in range(depth)])
            self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 1000)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)                  # [B, patches, dim]
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            return self.head(self.norm(self.blocks(x))[:, 0])

    class BertLayer(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.attn, self.norm1 = Attention(dim, heads, fused_qkv=False), nn.LayerNorm(dim)
            self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
            self.norm2 = nn.LayerNorm(dim)

        def forward(self, x):                      # post-norm, as BERT
            x = self.norm1(x + self.attn(x))
            return self.norm2(x + self.ffn(x))

    class BertMini(nn.Module):
        def __init__(self, vocab=30522, dim=256, layers=4, heads=4, max_len=512):
            super().__init__()
            self.words, self.positions = nn.Embedding(vocab, dim), nn.Embedding(max_len, dim)
            self.types, self.norm = nn.Embedding(2, dim), nn.LayerNorm(dim)
            self.layers = nn.Sequential(*[BertLayer(dim, heads) for _ in range(layers)])
            self.pooler = nn.Linear(dim, dim)

        def forward(self, ids):                    # ids: [B, T] token ids
            pos = torch.arange(ids.shape[1], device=ids.device)
            # every token is of segment type 0: its embedding row is added to all of them
            x = self.norm(self.words(ids) + self.positions(pos) + self.types.weight[0])
            return torch.tanh(self.pooler(self.layers(x)[:, 0]))

    return {"resnet18": lambda size: ResNet((2, 2, 2, 2)), "resnet34": lambda size: ResNet((3, 4, 6, 3)),
            "mobilenet_v2": lambda size: MobileNetV2(), "mobilenet_v3_small": lambda size: MobileNetV3Small(),
            "efficientnet_b0": lambda size: EfficientNetB0(), "vit_tiny": lambda size: ViTTiny(size),
            "bert_mini": lambda size: BertMini()}


def parse(case: str) -> tuple[str, int]:
    """``"resnet18@64"`` -> ``("resnet18", 64)``, with a clear error for an unknown model or a bad size.

    >>> parse("vit_tiny@224")
    ('vit_tiny', 224)
    """
    name, _, size = str(case).partition("@")
    if name not in PUBLISHED_PARAMS:
        raise unknown_name("held-out model", name, PUBLISHED_PARAMS)
    if not size.isdigit():
        raise ValueError(f"a held-out case is '<model>@<size>', e.g. 'resnet18@64'; got {case!r}.")
    size = check_int(f"the size of {case!r}", int(size), 16 if name == "vit_tiny" else 8)
    if name == "vit_tiny" and size % 16:
        raise ValueError(f"vit_tiny takes images whose side is a multiple of its 16-pixel patch, got {size}.")
    return name, size


def build(case: str, seed: int = 0):
    """The network of `case` (``"<model>@<size>"``, or a bare name at its published size), in eval mode.

    >>> import torch
    >>> sum(p.numel() for p in build("resnet18").parameters())
    11689512
    """
    import torch

    name, size = parse(case if "@" in str(case) else f"{case}@{128 if case == 'bert_mini' else 224}")
    torch.manual_seed(seed)
    return _nets()[name](size).eval()


def example(case: str, batch: int = 1, seed: int = 0):
    """An input batch for `case`: images ``[batch, 3, size, size]``, or token ids ``[batch, size]`` for bert_mini."""
    import torch

    name, size = parse(case)
    check_int("batch", batch, 1)
    g = torch.Generator().manual_seed(seed)
    if name == "bert_mini":
        return torch.randint(0, 30522, (batch, size), generator=g)
    return torch.randn(batch, 3, size, size, generator=g)
