"""The small GPT that labkit trains and ships: a decoder-only transformer over characters (lab 08).


>>> from labkit.llm.model import GPTConfig, build
>>> model = build(GPTConfig(layers=1, d_model=32, heads=2, context=16))
>>> import torch
>>> tuple(model(torch.zeros(2, 5, dtype=torch.long)).shape)
(2, 5, 65)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from labkit.args import check_int


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a small GPT: vocabulary, context (max tokens), layers, width, heads, MLP hidden size.

    >>> GPTConfig().params
    826433
    """

    vocab: int = 65
    context: int = 128
    layers: int = 4
    d_model: int = 128
    heads: int = 4
    ffn: int = 512

    def __post_init__(self):
        for name in ("vocab", "context", "layers", "d_model", "heads", "ffn"):
            check_int(name, getattr(self, name), 1)
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    @property
    def params(self) -> int:
        """Parameter count in closed form (embeddings, 4 linears + 2 LayerNorms per block, final LN, head)."""
        d, f = self.d_model, self.ffn
        block = (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
        return self.vocab * d + self.context * d + self.layers * block + 2 * d + d * self.vocab + self.vocab

    def to_dict(self) -> dict:
        return asdict(self)


class KVCache:
    """Per-layer keys and values of the tokens seen so far, for a batch of sequences of equal length.

    ``k[layer]`` and ``v[layer]`` are (batch, heads, context, head_dim) tensors filled up to ``length``.
    ``bytes`` is what one decode step reads from it: 2 (K and V) x layers x batch x length x d_model x 4.
    """

    def __init__(self, config: GPTConfig, batch: int = 1):
        import torch

        check_int("batch", batch, 1)
        shape = (batch, config.heads, config.context, config.head_dim)
        self.config, self.batch, self.length = config, batch, 0
        self.k = [torch.zeros(shape) for _ in range(config.layers)]
        self.v = [torch.zeros(shape) for _ in range(config.layers)]

    @property
    def bytes(self) -> int:
        return 2 * self.config.layers * self.batch * self.length * self.config.d_model * 4

    def __repr__(self) -> str:
        return f"KVCache(batch={self.batch}, length={self.length}, bytes={self.bytes:,})"


def _classes():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Attention(nn.Module):
        def __init__(self, c: GPTConfig):
            super().__init__()
            self.heads, self.head_dim = c.heads, c.head_dim
            self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
            self.out = nn.Linear(c.d_model, c.d_model)

        def forward(self, x, cache=None, layer=0):           # x: (B, T, D)
            B, T, _ = x.shape
            q, k, v = (t.view(B, T, self.heads, self.head_dim).transpose(1, 2)
                       for t in self.qkv(x).chunk(3, dim=-1))  # each (B, H, T, Dh)
            if cache is None:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                start = cache.length
                cache.k[layer][:, :, start:start + T] = k
                cache.v[layer][:, :, start:start + T] = v
                k, v = cache.k[layer][:, :, :start + T], cache.v[layer][:, :, :start + T]
                if T == 1:                                       # decode: the new token sees everything
                    y = F.scaled_dot_product_attention(q, k, v)
                else:                                            # prefill after `start` cached tokens
                    rows = torch.arange(T).unsqueeze(1) + start
                    mask = torch.arange(start + T).unsqueeze(0) <= rows
                    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            return self.out(y.transpose(1, 2).reshape(B, T, -1))

    class Block(nn.Module):
        def __init__(self, c: GPTConfig):
            super().__init__()
            self.ln1, self.attn = nn.LayerNorm(c.d_model), Attention(c)
            self.ln2 = nn.LayerNorm(c.d_model)
            self.mlp = nn.Sequential(nn.Linear(c.d_model, c.ffn), nn.GELU(), nn.Linear(c.ffn, c.d_model))

        def forward(self, x, cache=None, layer=0):
            x = x + self.attn(self.ln1(x), cache, layer)
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        """Decoder-only transformer; ``forward(ids, cache=None)`` -> logits (B, T, vocab)."""

        def __init__(self, c: GPTConfig):
            super().__init__()
            self.config = c
            self.embed = nn.Embedding(c.vocab, c.d_model)
            self.pos = nn.Embedding(c.context, c.d_model)
            self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
            self.ln = nn.LayerNorm(c.d_model)
            self.head = nn.Linear(c.d_model, c.vocab)
            self.apply(self._init)

        @staticmethod
        def _init(module):
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

        def forward(self, ids, cache=None):                   # ids: (B, T) int64
            T = ids.shape[1]
            start = 0 if cache is None else cache.length
            if start + T > self.config.context:
                raise ValueError(f"{start + T} tokens do not fit the model's context of "
                                 f"{self.config.context} tokens")
            x = self.embed(ids) + self.pos(torch.arange(start, start + T))
            for i, block in enumerate(self.blocks):
                x = block(x, cache, i)
            if cache is not None:
                cache.length += T
            return self.head(self.ln(x))

        def new_cache(self, batch: int = 1) -> KVCache:
            """An empty KV cache for `batch` sequences."""
            return KVCache(self.config, batch)

    return GPT


def build(config: GPTConfig | None = None, seed: int = 0):
    """A freshly initialised GPT (eval mode); same seed, same weights; your torch RNG is untouched (lab 08).

    >>> from labkit.llm.model import build
    >>> sum(p.numel() for p in build().parameters())
    826433
    """
    import torch

    config = config or GPTConfig()
    check_int("seed", seed, 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _classes()(config)
    return model.eval()


@dataclass(frozen=True)
class LoadedGPT:
    """The shipped small GPT and its recorded validation loss; unpacks as ``model, val_loss = lk.zoo.load("gpt")``.

    ``val_loss`` is nats per character on the whole validation split, measured by scripts/train_llm.py;
    ``record`` holds the rest of its entry in datasets/weights/accuracy.json (bigram baseline, training time).
    """

    model: object
    val_loss: float
    name: str
    record: dict = field(repr=False, default_factory=dict)

    def __iter__(self):
        return iter((self.model, self.val_loss))


def load() -> LoadedGPT:
    """The small GPT with its trained weights (datasets/weights/gpt.pt), in eval mode (lab 08).

    >>> from labkit.llm.model import load
    >>> gpt, val_loss = load()
    >>> val_loss < 1.75
    True
    """
    import json

    import torch

    from labkit.targets.catalog import datasets_dir

    path = datasets_dir() / "weights" / "gpt.pt"
    record_path = path.parent / "accuracy.json"
    if not path.is_file() or not record_path.is_file():
        raise FileNotFoundError(f"no trained weights for the small GPT at {path} (or no {record_path.name}); "
                                "run scripts/train_llm.py to create them.")
    record = json.loads(record_path.read_text())["models"].get("gpt")
    if record is None:
        raise FileNotFoundError(f"{record_path} has no entry for 'gpt'; rerun scripts/train_llm.py.")
    model = build(GPTConfig(**record["config"]))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return LoadedGPT(model.eval(), float(record["val_loss"]), "gpt", record)
