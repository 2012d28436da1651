"""Prefill and decode as labkit Profiles, built analytically from an LLM config (lab 08; engine steps: lab 09).


One builder serves every case: a *step* runs, for each sequence, ``new`` tokens after ``past`` cached ones.
Prefill of n is one sequence (0, n); a decode step at position n is (n, 1); an engine step with continuous
batching (lab 09) mixes both: ``lk.llm.step(cfg, decode_contexts=[300, 41], prefill=[(0, 128)])``.
Per transformer block the layers are: norm1, qkv (one fused GEMM), attention, out, norm2, mlp_up (gate and
up fused for SwiGLU, activation included), mlp_down; plus the embedding lookup, the final norm and the output
head, with the elementwise work (the residual adds, the activation, the KV-cache write) folded into its
neighbours, as a compiler that fuses them would run it. ``eager=True`` profiles what an unfused eager forward
runs instead (the small GPT in torch, timed by ``labkit validate``): each block also has ``k_write`` and
``v_write`` (the new keys and values copied into the cache), ``act`` (the activation; SiLU x gate for SwiGLU)
and ``residual1`` / ``residual2`` (the adds); learned positions are a second lookup (``pos_embed``) and an add
(``pos_add``). The FLOPs are the same either way; an eager step moves more bytes and runs more kernels.
Counting conventions:

* The linears see every new token of the step (M = total new tokens): their weights are read once per step,
  which is why batching decode steps raises arithmetic intensity (the batching knee, lab 08).
* attention reads the KV cache: its input is the queries plus K and V of all ``past + new`` positions
  (``2 x (past + new) x kv_dim`` elements per sequence, per layer) — the decode-step memory traffic that grows
  with context. Its MACs are ``2 x new x (past + new) x q_dim`` (scores and the weighted sum; no causal
  discount, as torch's FLOP counter counts ``scaled_dot_product_attention``).
* the head computes logits for the last token of each sequence only (``all_logits=True``: for every token,
  as the small GPT's forward does).
* ``weight_bits`` (weight-only quantisation: e.g. 4.5 for llama.cpp's Q4_0) scales the bytes of stored weights
  relative to the profile's dtype: ``weight_elems = params x weight_bits / (8 x bytes(dtype))``. Estimate
  at that same dtype. Activations and the KV cache stay at the dtype.
* Profile ``batch`` is the number of sequences, so ``lk.estimate(p, dev, batch=B)`` scales tokens, KV reads and
  FLOPs by B/batch and keeps the weights: the same step for B sequences.
"""

from __future__ import annotations

from labkit.args import check_int
from labkit.dtypes import dtype_bytes, normalize_dtype
from labkit.llm.archs import LLMConfig
from labkit.llm.archs import config as lookup
from labkit.profile.core import Layer, Profile

NORM_FLOPS = 5          # per element: mean, variance, scale (and shift)
ACT_FLOPS = 8           # per element of the MLP hidden: GELU / SiLU x gate


def _weights(n: int, scale: float) -> int:
    return int(round(n * scale))


def _build(cfg: LLMConfig, seqs: list[tuple[int, int]], batch: int, dtype: str, weight_bits: float | None,
           all_logits: bool, name: str, eager: bool = False) -> Profile:
    dtype = normalize_dtype(dtype)
    wscale = 1.0 if weight_bits is None else weight_bits / (8 * dtype_bytes(dtype))
    d, qd, kvd, f, v = cfg.d_model, cfg.q_dim, cfg.kv_dim, cfg.ffn, cfg.vocab
    n_new = sum(new for _, new in seqs)
    ctx = [past + new for past, new in seqs]
    norm_w = 2 * d if cfg.layernorm else d
    up = (2 if cfg.gated_mlp else 1) * f
    b = 1 if cfg.bias else 0
    layers: list[Layer] = []

    def add(lname, op, op_class, inputs, macs, extra_flops, params, weight_elems, in_elems, out_elems, out_shape,
            gemm=None):
        layers.append(Layer(lname, op, op_class, inputs, int(macs), int(2 * macs + extra_flops), int(params),
                            int(weight_elems), int(in_elems), int(out_elems), out_shape, gemm, dtype))

    emb_params = v * d + (cfg.context * d if cfg.learned_positions else 0)
    rows = n_new * d * (2 if cfg.learned_positions else 1)          # only the looked-up rows are read
    if eager and cfg.learned_positions:                              # two lookups and an add
        add("embed", "embedding", "memory", ("input",), 0, 0, v * d, _weights(n_new * d, wscale), n_new, n_new * d,
            (n_new, d))
        add("pos_embed", "embedding", "memory", ("input",), 0, 0, cfg.context * d, _weights(n_new * d, wscale),
            n_new, n_new * d, (n_new, d))
        add("pos_add", "add", "elementwise", ("embed", "pos_embed"), 0, n_new * d, 0, 0, 2 * n_new * d, n_new * d,
            (n_new, d))
        prev = "pos_add"
    else:
        add("embed", "embedding", "memory", ("input",), 0, n_new * d * (1 if cfg.learned_positions else 0),
            emb_params, _weights(rows, wscale), n_new, n_new * d, (n_new, d))
        prev = "embed"
    for i in range(cfg.layers):
        p = f"block{i}."
        add(p + "norm1", "layernorm" if cfg.layernorm else "rmsnorm", "norm", (prev,), 0, NORM_FLOPS * n_new * d,
            norm_w, norm_w, n_new * d, n_new * d, (n_new, d))
        qkv_w = d * (qd + 2 * kvd)
        add(p + "qkv", "linear", "matmul", (p + "norm1",), n_new * qkv_w, b * n_new * (qd + 2 * kvd),
            qkv_w + b * (qd + 2 * kvd), _weights(qkv_w + b * (qd + 2 * kvd), wscale), n_new * d,
            n_new * (qd + 2 * kvd), (n_new, qd + 2 * kvd), (1, n_new, d, qd + 2 * kvd))
        if eager:
            for kv in "kv":
                add(p + kv + "_write", "copy", "memory", (p + "qkv",), 0, 0, 0, 0, n_new * kvd, n_new * kvd,
                    (n_new, kvd))
        att_macs = sum(2 * new * c * qd for (_, new), c in zip(seqs, ctx))
        kv_read = sum(2 * c * kvd for c in ctx)
        longest = max(ctx)
        add(p + "attention", "attention", "attention", (p + "v_write" if eager else p + "qkv",), att_macs,
            sum(5 * new * c * cfg.heads for (_, new), c in zip(seqs, ctx)), 0, 0, n_new * qd + kv_read,
            n_new * qd, (n_new, qd), (len(seqs) * cfg.heads, max(new for _, new in seqs), cfg.head_dim, longest))
        add(p + "out", "linear", "matmul", (p + "attention",), n_new * qd * d, b * n_new * d,
            qd * d + b * d, _weights(qd * d + b * d, wscale), n_new * qd, n_new * d, (n_new, d), (1, n_new, qd, d))
        prev = p + "out"
        if eager:
            add(p + "residual1", "add", "elementwise", (prev,), 0, n_new * d, 0, 0, 2 * n_new * d, n_new * d,
                (n_new, d))
            prev = p + "residual1"
        add(p + "norm2", "layernorm" if cfg.layernorm else "rmsnorm", "norm", (prev,), 0,
            NORM_FLOPS * n_new * d + (0 if eager else n_new * d), norm_w, norm_w, (1 if eager else 2) * n_new * d,
            n_new * d, (n_new, d))
        add(p + "mlp_up", "linear", "matmul", (p + "norm2",), n_new * d * up,
            (0 if eager else ACT_FLOPS * n_new * f) + b * n_new * up, d * up + b * up,
            _weights(d * up + b * up, wscale),
            n_new * d, n_new * (up if eager else f), (n_new, up if eager else f), (1, n_new, d, up))
        prev = p + "mlp_up"
        if eager:
            add(p + "act", "silu" if cfg.gated_mlp else "gelu", "elementwise", (prev,), 0, ACT_FLOPS * n_new * f, 0, 0,
                n_new * up, n_new * f, (n_new, f))
            prev = p + "act"
        add(p + "mlp_down", "linear", "matmul", (prev,), n_new * f * d, (0 if eager else n_new * d) + b * n_new * d,
            f * d + b * d, _weights(f * d + b * d, wscale), n_new * f, n_new * d, (n_new, d), (1, n_new, f, d))
        prev = p + "mlp_down"
        if eager:
            add(p + "residual2", "add", "elementwise", (prev,), 0, n_new * d, 0, 0, 2 * n_new * d, n_new * d,
                (n_new, d))
            prev = p + "residual2"
    add("norm", "layernorm" if cfg.layernorm else "rmsnorm", "norm", (prev,), 0, NORM_FLOPS * n_new * d,
        norm_w, norm_w, n_new * d, n_new * d, (n_new, d))
    m = n_new if all_logits else len(seqs)
    head_params = 0 if cfg.tied_embeddings else v * d + b * v
    add("head", "linear", "matmul", ("norm",), m * d * v, b * m * v, head_params,
        _weights(v * d + b * v, wscale), m * d, m * v, (m, v), (1, m, d, v))
    return Profile(name, "analytic", batch, dtype, tuple(layers), cfg.params, n_new, m * v)


def _cfg(model) -> LLMConfig:
    return lookup(model)


def prefill(model, tokens: int, batch: int = 1, dtype: str = "fp16", weight_bits: float | None = None,
            all_logits: bool = False, eager: bool = False) -> Profile:
    """The prompt pass: `batch` sequences of `tokens` tokens each, from an empty cache (lab 08).

    ``lk.estimate(prefill(...), device, dtype)`` is the time to first token. ``eager=True``: the unfused kernels
    of an eager forward (the module docstring lists them).

    >>> import labkit as lk
    >>> p = lk.llm.prefill("llama-3.1-8b", 512)
    >>> round(p.flops / 512 / 1e9, 1)   # GFLOP per token: ~2 per weight the token meets (embeddings excluded)
    14.2
    >>> eager = lk.llm.prefill("gpt", 8, dtype="fp32", eager=True)     # the small GPT as torch runs it
    >>> len(eager.layers) - len(lk.llm.prefill("gpt", 8, dtype="fp32").layers), eager.flops == lk.llm.prefill(
    ...     "gpt", 8, dtype="fp32").flops
    (22, True)
    """
    cfg = _cfg(model)
    check_int("tokens", tokens, 1)
    check_int("batch", batch, 1)
    _fits(cfg, tokens)
    return _build(cfg, [(0, tokens)] * batch, batch, dtype, weight_bits, all_logits, f"{cfg.name} prefill {tokens}",
                  eager)


def decode(model, context: int, batch: int = 1, dtype: str = "fp16", weight_bits: float | None = None,
           eager: bool = False) -> Profile:
    """One decode step: each of `batch` sequences adds 1 token after `context` cached ones (lab 08).

    Its bytes include reading the KV cache of all ``context + 1`` positions; the estimate is the time per output
    token (TPOT). ``eager=True``: the unfused kernels of an eager forward, as for ``prefill``.

    >>> import labkit as lk
    >>> small, long = lk.llm.decode("llama-3.1-8b", 128), lk.llm.decode("llama-3.1-8b", 8192)
    >>> long.layer("block0.attention").input_bytes > 50 * small.layer("block0.attention").input_bytes
    True
    """
    cfg = _cfg(model)
    check_int("context", context, 0)
    check_int("batch", batch, 1)
    _fits(cfg, context + 1)
    return _build(cfg, [(context, 1)] * batch, batch, dtype, weight_bits, False, f"{cfg.name} decode @{context}",
                  eager)


def step(model, decode_contexts=(), prefill=(), dtype: str = "fp16", weight_bits: float | None = None) -> Profile:
    """One engine step with a mixed batch (continuous batching, lab 09), as a Profile with batch 1.

    `decode_contexts`: the cached length of each running sequence (each adds one token).
    `prefill`: prompt chunks, each an int (new tokens, nothing cached) or ``(cached, new)`` for chunked prefill.

    >>> import labkit as lk
    >>> s = lk.llm.step("llama-3.1-8b", decode_contexts=[300, 41], prefill=[(0, 128)])
    >>> s.input_elems                          # tokens processed this step
    130
    """
    cfg = _cfg(model)
    seqs = []
    for c in decode_contexts:
        check_int("decode context", c, 0)
        seqs.append((int(c), 1))
    for chunk in prefill:
        past, new = (0, chunk) if not isinstance(chunk, (tuple, list)) else chunk
        check_int("prefill cached tokens", past, 0)
        check_int("prefill new tokens", new, 1)
        seqs.append((int(past), int(new)))
    if not seqs:
        raise ValueError("an engine step needs at least one sequence: give decode_contexts and/or prefill")
    for past, new in seqs:
        _fits(cfg, past + new)
    return _build(cfg, seqs, 1, dtype, weight_bits, False,
                  f"{cfg.name} step ({len(decode_contexts)} decode, {len(seqs) - len(decode_contexts)} prefill)")


def _fits(cfg: LLMConfig, tokens: int) -> None:
    if tokens > cfg.context:
        raise ValueError(f"{tokens} tokens exceed {cfg.name}'s context of {cfg.context} tokens")
