"""``lk.llm.config``: architectures of published open LLMs (and the small GPT), on paper — no weights (lab 08).


>>> import labkit as lk
>>> c = lk.llm.config("llama-3.1-8b")
>>> (c.layers, c.d_model, c.heads, c.kv_heads, c.head_dim)
(32, 4096, 32, 8, 128)
>>> c.params
8030261248
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.args import unknown_name


@dataclass(frozen=True)
class LLMConfig:
    """A decoder-only transformer's shape (lab 08): enough to count its parameters, FLOPs and bytes."""

    name: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    context: int                      # longest sequence it was trained for (tokens)
    gated_mlp: bool = True            # SwiGLU: gate, up and down matrices; False: up and down (GELU)
    tied_embeddings: bool = False     # the output head reuses the input embedding matrix
    learned_positions: bool = False   # a (context x d_model) position table (GPT-2 style); False = RoPE
    layernorm: bool = False           # LayerNorm (scale + shift) instead of RMSNorm (scale only)
    bias: bool = False                # biases on every linear (GPT-2 style)
    published_params: float | None = None   # as the publisher states it (rounded)
    source: str = ""

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of K (and of V) per token: kv_heads x head_dim (= d_model without GQA)."""
        return self.kv_heads * self.head_dim

    @property
    def block_params(self) -> int:
        """Parameters of one transformer block: attention, MLP and its two norms."""
        d, f = self.d_model, self.ffn
        attn = d * (self.q_dim + 2 * self.kv_dim) + self.q_dim * d
        mlp = (3 if self.gated_mlp else 2) * d * f
        if self.bias:
            attn += self.q_dim + 2 * self.kv_dim + d
            mlp += (2 if self.gated_mlp else 1) * f + d
        return attn + mlp + 2 * self._norm_params

    @property
    def _norm_params(self) -> int:
        return 2 * self.d_model if self.layernorm else self.d_model

    @property
    def params(self) -> int:
        """Total parameters in closed form: embeddings + blocks + final norm + output head."""
        total = self.vocab * self.d_model + self.layers * self.block_params + self._norm_params
        if self.learned_positions:
            total += self.context * self.d_model
        if not self.tied_embeddings:
            total += self.vocab * self.d_model + (self.vocab if self.bias else 0)
        return total

    @property
    def matmul_params(self) -> int:
        """Parameters that multiply every token's activations (blocks' linears + head): 2 FLOPs each per token."""
        d = self.d_model
        per_block = d * (self.q_dim + 2 * self.kv_dim) + self.q_dim * d + (3 if self.gated_mlp else 2) * d * self.ffn
        return self.layers * per_block + self.vocab * d

    def __repr__(self) -> str:
        gqa = f", GQA {self.heads}/{self.kv_heads}" if self.kv_heads != self.heads else ""
        return (f"LLMConfig({self.name!r}: {self.params / 1e9:.3g} B params, {self.layers} layers, d_model "
                f"{self.d_model}, {self.heads} heads{gqa}, ffn {self.ffn}, vocab {self.vocab:,})")


_HF = "config.json of huggingface.co/{} (model card and config, checked 2026-12)"

_CONFIGS = {
    c.name: c
    for c in (
        LLMConfig("llama-3.2-1b", 16, 2048, 32, 8, 8192, 128256, 131072, tied_embeddings=True,
                  published_params=1.23e9, source=_HF.format("meta-llama/Llama-3.2-1B")
                  + "; 1.23B parameters (Meta's Llama 3.2 model card)"),
        LLMConfig("llama-3.2-3b", 28, 3072, 24, 8, 8192, 128256, 131072, tied_embeddings=True,
                  published_params=3.21e9, source=_HF.format("meta-llama/Llama-3.2-3B")
                  + "; 3.21B parameters (Meta's Llama 3.2 model card)"),
        LLMConfig("llama-3.1-8b", 32, 4096, 32, 8, 14336, 128256, 131072,
                  published_params=8.03e9, source=_HF.format("meta-llama/Llama-3.1-8B")
                  + "; 8.03B: llama.cpp's count of the real weights ('model params = 8.03 B', log in GitHub pytorch/torchchat#855)"),
        LLMConfig("llama-3.1-70b", 80, 8192, 64, 8, 28672, 128256, 131072,
                  published_params=70.6e9, source=_HF.format("meta-llama/Llama-3.1-70B")
                  + "; 70.6B parameters (Hugging Face model page)"),
        LLMConfig("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, 4096,
                  published_params=6.74e9, source=_HF.format("meta-llama/Llama-2-7b-hf")
                  + "; 6.74B parameters (Hugging Face model page)"),
        LLMConfig("llama-2-13b", 40, 5120, 40, 40, 13824, 32000, 4096,
                  published_params=13.0e9, source=_HF.format("meta-llama/Llama-2-13b-hf")
                  + "; 13.0B parameters (Hugging Face model page)"),
    )
}


def names() -> list[str]:
    """Config names: the published models, then ``"gpt"`` (the small GPT trained here) (lab 08).

    >>> import labkit as lk
    >>> lk.llm.config_names()[:2]
    ['llama-3.2-1b', 'llama-3.2-3b']
    """
    return [*_CONFIGS, "gpt"]


def gpt_config(config=None) -> LLMConfig:
    """The small GPT's architecture as an LLMConfig (from a GPTConfig; default: the shipped model's)."""
    if config is None:
        from labkit.llm.model import GPTConfig

        config = GPTConfig()
    return LLMConfig("gpt", config.layers, config.d_model, config.heads, config.heads, config.ffn, config.vocab,
                     config.context, gated_mlp=False, learned_positions=True, layernorm=True, bias=True,
                     source="labkit.llm.model.GPTConfig (trained by scripts/train_llm.py)")


def config(name) -> LLMConfig:
    """The architecture of a published open model by name, or ``"gpt"`` for the small GPT (lab 08).

    Unknown names raise ValueError listing the near matches.

    >>> import labkit as lk
    >>> lk.llm.config("llama-3.2-1b").kv_heads
    8
    """
    if isinstance(name, LLMConfig):
        return name
    if hasattr(name, "d_model") and hasattr(name, "ffn"):   # a GPTConfig
        return gpt_config(name)
    key = str(name).strip().lower()
    if key == "gpt":
        return gpt_config()
    if key not in _CONFIGS:
        raise unknown_name("LLM config", name, names())
    return _CONFIGS[key]


def configs():
    """All configs as a table: layers, widths, heads, KV heads, params (closed form) and published (pandas)."""
    import pandas as pd

    rows = []
    for n in names():
        c = config(n)
        rows.append({"name": c.name, "layers": c.layers, "d_model": c.d_model, "heads": c.heads,
                     "kv_heads": c.kv_heads, "ffn": c.ffn, "vocab": c.vocab, "params": c.params,
                     "published_params": c.published_params, "source": c.source})
    return pd.DataFrame(rows).set_index("name")
