"""``lk.zoo``: the small models every lab profiles, compresses, compiles and deploys (lab 00 onwards).

Every model is small (< 2 M parameters, < 5 MB in fp32), built offline from a seed (same seed, same
weights), returned in eval mode, and written so that ``torch.fx.symbolic_trace`` and ONNX export work: no
data-dependent Python control flow in ``forward``. ``lk.zoo.load(name)`` gives the same model with trained
weights (datasets/weights/<name>.pt, written by scripts/train_zoo.py) and its recorded test accuracy.

>>> import labkit as lk
>>> lk.zoo.names()
['mlp', 'cnn', 'mobilenet', 'resnet', 'transformer']
>>> model = lk.zoo.build("cnn")
>>> tuple(model(lk.zoo.example("cnn", batch=2)).shape)
(2, 10)
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.args import check_int, unknown_name

NUM_CLASSES = 10            # digits 0-9; the token task also has 10 classes
VOCAB, SEQ_LEN = 32, 32     # transformer: token ids in [0, 32), sequences of exactly 32 tokens


@dataclass(frozen=True)
class ModelInfo:
    """What a zoo model does and what it eats.

    >>> import labkit as lk
    >>> lk.zoo.info("mlp").input_shape
    (64,)
    """

    name: str
    task: str
    input_shape: tuple[int, ...]   # one example, without the batch dimension
    input_dtype: str               # "float32" (images, features) or "int64" (token ids)
    num_classes: int
    description: str
    lab: str                       # the lab that introduces it


_INFO = {
    info.name: info
    for info in (
        ModelInfo("mlp", "digit classification (8x8 digits, flattened)", (64,), "float32", NUM_CLASSES,
                  "MLP 64 -> 256 -> 128 -> 10 with ReLU", "00"),
        ModelInfo("cnn", "digit classification (digits upsampled to 32x32)", (1, 32, 32), "float32",
                  NUM_CLASSES, "3 x (conv3x3-BN-ReLU-maxpool) 16/32/64 channels + linear head", "01"),
        ModelInfo("mobilenet", "digit classification (digits upsampled to 32x32)", (1, 32, 32), "float32",
                  NUM_CLASSES, "MobileNetV2-style, width 0.5: inverted residuals with depthwise 3x3 convs "
                  "and residual adds", "01"),
        ModelInfo("resnet", "digit classification (digits upsampled to 32x32)", (1, 32, 32), "float32",
                  NUM_CLASSES, "ResNet-14 (CIFAR-style): 3 stages x 2 basic blocks, 16/32/64 channels, "
                  "skip connections", "01"),
        ModelInfo("transformer", "token-sequence classification (vocab 32, length 32)", (SEQ_LEN,), "int64",
                  NUM_CLASSES, "encoder, d_model 64, 4 heads, 2 layers: explicit q/k/v/out Linears + "
                  "scaled_dot_product_attention, pre-LayerNorm, GELU MLP, mean-pool, linear head", "01"),
    )
}


def names() -> list[str]:
    """The zoo's model names, smallest idea first (lab 00).

    >>> import labkit as lk
    >>> "resnet" in lk.zoo.names()
    True
    """
    return list(_INFO)


def info(name: str) -> ModelInfo:
    """Task, input shape and description of a zoo model (lab 00); unknown names list the near matches."""
    if name not in _INFO:
        raise unknown_name("zoo model", name, _INFO)
    return _INFO[name]


def _models():
    """The model classes, defined on first use so that ``import labkit.zoo`` does not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def conv_bn(cin, cout, kernel=3, stride=1, groups=1, act=nn.ReLU):
        layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, act()) if act is not None else nn.Sequential(*layers)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()  # (B, 64) stays; (B, 1, 8, 8) -> (B, 64)
            self.fc1, self.fc2, self.fc3 = nn.Linear(64, 256), nn.Linear(256, 128), nn.Linear(128, NUM_CLASSES)

        def forward(self, x):                        # x: (B, 64)
            x = F.relu(self.fc1(self.flatten(x)))    # (B, 256)
            x = F.relu(self.fc2(x))                  # (B, 128)
            return self.fc3(x)                       # (B, 10)

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                conv_bn(1, 16), nn.MaxPool2d(2),     # (B, 16, 16, 16)
                conv_bn(16, 32), nn.MaxPool2d(2),    # (B, 32, 8, 8)
                conv_bn(32, 64), nn.MaxPool2d(2),    # (B, 64, 4, 4)
            )
            self.flatten = nn.Flatten()              # (B, 1024)
            self.fc = nn.Linear(64 * 4 * 4, NUM_CLASSES)

        def forward(self, x):                        # x: (B, 1, 32, 32)
            return self.fc(self.flatten(self.features(x)))

    class InvertedResidual(nn.Module):
        """1x1 expand -> 3x3 depthwise -> 1x1 project (linear), plus x when shapes allow."""

        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            layers = [conv_bn(cin, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
            layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),  # depthwise
                       conv_bn(hidden, cout, 1, act=None)]                                # linear bottleneck
            self.block = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout  # fixed at build time: fx-traceable

        def forward(self, x):
            return x + self.block(x) if self.residual else self.block(x)

    class MobileNet(nn.Module):
        # (expansion t, output channels c at width 1.0, repeats n, first stride s), as in MobileNetV2,
        # strides adapted to 32x32 inputs: 32 -> 16 -> 8 -> 4 -> 2.
        SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                    (6, 160, 3, 2), (6, 320, 1, 1))

        def __init__(self, width=0.5, last_channels=640):
            super().__init__()

            def ch(c):  # scale by width, round to a multiple of 8 (as MobileNetV2 does)
                return max(8, int(c * width + 4) // 8 * 8)

            cin = ch(32)
            layers = [conv_bn(1, cin, 3, 1, act=nn.ReLU6)]                 # (B, 16, 32, 32)
            for t, c, n, s in self.SETTINGS:
                for i in range(n):
                    layers.append(InvertedResidual(cin, ch(c), s if i == 0 else 1, t))
                    cin = ch(c)
            layers.append(conv_bn(cin, last_channels, 1, act=nn.ReLU6))    # (B, 640, 2, 2)
            self.features = nn.Sequential(*layers)
            self.pool, self.flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten()  # (B, 640)
            self.fc = nn.Linear(last_channels, NUM_CLASSES)

        def forward(self, x):                        # x: (B, 1, 32, 32)
            return self.fc(self.flatten(self.pool(self.features(x))))

    class BasicBlock(nn.Module):
        """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut (1x1 conv-BN when the shape changes), then ReLU."""

        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = conv_bn(cin, cout, 3, stride)
            self.conv2 = conv_bn(cout, cout, 3, 1, act=None)
            self.shortcut = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout \
                else nn.Identity()
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))

    class ResNet(nn.Module):
        def __init__(self, widths=(16, 32, 64), blocks=2):
            super().__init__()
            layers, cin = [conv_bn(1, widths[0])], widths[0]                # (B, 16, 32, 32)
            for stage, cout in enumerate(widths):                          # 32x32 -> 16x16 -> 8x8
                for i in range(blocks):
                    layers.append(BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1))
                    cin = cout
            self.features = nn.Sequential(*layers)
            self.pool, self.flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten()  # (B, 64)
            self.fc = nn.Linear(cin, NUM_CLASSES)

        def forward(self, x):                        # x: (B, 1, 32, 32)
            return self.fc(self.flatten(self.pool(self.features(x))))

    class SelfAttention(nn.Module):
        def __init__(self, d_model, heads):
            super().__init__()
            self.heads, self.head_dim = heads, d_model // heads
            self.q, self.k, self.v = (nn.Linear(d_model, d_model) for _ in range(3))
            self.out = nn.Linear(d_model, d_model)

        def forward(self, x):                        # x: (B, T, D)
            # (B, T, D) -> (B, T, H, D/H) -> (B, H, T, D/H); unflatten keeps B and T symbolic for fx
            q, k, v = (proj(x).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
                       for proj in (self.q, self.k, self.v))
            y = F.scaled_dot_product_attention(q, k, v)   # (B, H, T, D/H), softmax(q k^T / sqrt(D/H)) v
            return self.out(y.transpose(1, 2).flatten(2))  # (B, T, D)

    class EncoderLayer(nn.Module):
        def __init__(self, d_model, heads, mlp_ratio=4):
            super().__init__()
            self.ln1, self.attn = nn.LayerNorm(d_model), SelfAttention(d_model, heads)
            self.ln2 = nn.LayerNorm(d_model)
            self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                     nn.Linear(mlp_ratio * d_model, d_model))

        def forward(self, x):                        # pre-LN: x + f(LN(x)), shapes (B, T, D)
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class Transformer(nn.Module):
        def __init__(self, d_model=64, heads=4, layers=2):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, d_model)                       # (B, T) -> (B, T, D)
            self.pos = nn.Parameter(torch.randn(1, SEQ_LEN, d_model) * 0.02)  # learned; T must be 32
            self.layers = nn.Sequential(*(EncoderLayer(d_model, heads) for _ in range(layers)))
            self.ln = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, NUM_CLASSES)

        def forward(self, tokens):                   # tokens: (B, 32) int64 in [0, 32)
            x = self.layers(self.embed(tokens) + self.pos)
            return self.head(self.ln(x).mean(dim=1))  # mean over tokens: (B, D) -> (B, 10)

    return {"mlp": MLP, "cnn": CNN, "mobilenet": MobileNet, "resnet": ResNet, "transformer": Transformer}


def build(name: str, seed: int = 0):
    """A freshly initialised zoo model, in eval mode; the same seed gives the same weights (lab 00).

    Your global torch random state is left untouched.

    >>> import labkit as lk
    >>> sum(p.numel() for p in lk.zoo.build("mlp").parameters())
    50826
    """
    info(name)  # validates the name
    seed = check_int("seed", seed, 0)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _models()[name]()
    return model.eval()


def example(name: str, batch: int = 1, seed: int = 0):
    """An input of the right shape and dtype for ``build(name)``: (batch, *info(name).input_shape) (lab 00).

    Images and features are standard-normal floats; token ids are uniform in [0, 32).

    >>> import labkit as lk
    >>> lk.zoo.example("transformer", batch=4).shape
    torch.Size([4, 32])
    """
    spec = info(name)
    batch = check_int("batch", batch, 1)
    seed = check_int("seed", seed, 0)
    import torch

    generator = torch.Generator().manual_seed(seed)
    shape = (batch, *spec.input_shape)
    if spec.input_dtype == "int64":
        return torch.randint(0, VOCAB, shape, generator=generator)
    return torch.randn(shape, generator=generator)


@dataclass(frozen=True)
class Loaded:
    """A trained zoo model and its recorded test accuracy; unpacks as ``model, accuracy = lk.zoo.load(name)``.

    ``accuracy`` is top-1 in [0, 1] on ``lk.data.for_model(name, "test")``, measured by scripts/train_zoo.py
    when the weights were written.
    """

    model: object
    accuracy: float
    name: str

    def __iter__(self):
        return iter((self.model, self.accuracy))


def weights_path(name: str):
    """Where the trained weights of a zoo model are stored: datasets/weights/<name>.pt (lab 01)."""
    info(name)
    from labkit.targets.catalog import datasets_dir

    return datasets_dir() / "weights" / f"{name}.pt"


def load(name: str) -> Loaded:
    """A zoo model with its shipped trained weights, in eval mode, and its recorded test accuracy (lab 01).

    ``lk.zoo.load("gpt")`` is the small language model of lab 08 (labkit.llm.model.load): it unpacks as
    ``model, val_loss`` (nats per character) instead.

    >>> import labkit as lk
    >>> model, accuracy = lk.zoo.load("cnn")
    >>> accuracy > 0.9
    True
    """
    if name == "gpt":
        from labkit.llm.model import load as load_gpt

        return load_gpt()
    import json

    import torch

    path = weights_path(name)
    record_path = path.parent / "accuracy.json"
    if not path.is_file() or not record_path.is_file():
        raise FileNotFoundError(f"no trained weights for {name!r} at {path} (or no {record_path.name}); "
                                "run scripts/train_zoo.py to create them.")
    record = json.loads(record_path.read_text())["models"]
    if name not in record:
        raise FileNotFoundError(f"{record_path} has no accuracy for {name!r}; rerun scripts/train_zoo.py {name}.")
    model = build(name)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return Loaded(model.eval(), float(record[name]["test_accuracy"]), name)
