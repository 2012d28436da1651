"""lk.llm (issue 17): the shipped small GPT, KV cache, analytic prefill/decode profiles, published configs."""

from __future__ import annotations

import json
import math

import pytest
import torch

import labkit as lk
from labkit.targets.catalog import datasets_dir


@pytest.fixture(scope="module")
def gpt():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # a 0.8M-parameter model: one thread, no thrashing on a shared CPU
    yield lk.zoo.load("gpt")
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------ shipped model

def test_shipped_weights_rescore_to_the_recorded_loss_with_an_independent_scorer(gpt):
    model, val_loss = gpt
    record = json.loads((datasets_dir() / "weights" / "accuracy.json").read_text())["models"]["gpt"]
    assert val_loss == record["val_loss"] < 1.75                      # the goal
    assert record["val_loss"] < record["bigram_val_loss"] - 0.5       # far better than counting pairs
    # independent scorer: own vocabulary and split from the raw file, log-softmax by hand
    raw = (datasets_dir() / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    table = {c: i for i, c in enumerate(sorted(set(raw)))}
    val = raw[int(0.9 * len(raw)):]
    n, windows = model.config.context, record["slice_windows"]
    ids = torch.tensor([[table[c] for c in val[w * n:(w + 1) * n + 1]] for w in range(windows)])
    with torch.no_grad():
        logits = model(ids[:, :-1]).double()
    logp = logits - logits.exp().sum(-1, keepdim=True).log()
    nll = -logp.gather(-1, ids[:, 1:].unsqueeze(-1)).mean().item()
    assert nll == pytest.approx(record["val_loss_slice"], abs=2e-4)
    assert lk.llm.val_loss(model, windows=windows) == pytest.approx(nll, abs=2e-4)


def test_bigram_baseline_matches_a_counting_oracle():
    raw = (datasets_dir() / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    chars = sorted(set(raw))
    cut = int(0.9 * len(raw))
    train, val = raw[:cut], raw[cut:]
    counts = {}
    for a, b in zip(train, train[1:]):
        counts[a, b] = counts.get((a, b), 0) + 1
    totals = {}
    for (a, _), c in counts.items():
        totals[a] = totals.get(a, 0) + c
    v = len(chars)
    nll = [-math.log((counts.get((a, b), 0) + 1) / (totals.get(a, 0) + v)) for a, b in zip(val[:20000], val[1:20001])]
    # the library scores the whole split; the oracle a 20k-character prefix: same model, close mean
    assert lk.llm.bigram_loss() == pytest.approx(sum(nll) / len(nll), abs=0.05)


def test_kv_cache_and_full_recompute_give_identical_greedy_tokens(gpt):
    model = gpt.model
    with_cache = lk.llm.generate(model, "ROMEO:\n", 60, temperature=0)
    without = lk.llm.generate(model, "ROMEO:\n", 60, temperature=0, kv_cache=False)
    assert with_cache.tokens == without.tokens and len(with_cache.text) == 60
    assert with_cache.text == lk.llm.decode_text(with_cache.tokens)
    assert with_cache.ttft_s > 0 and with_cache.tpot_s > 0 and with_cache.kv_cache and not without.kv_cache
    # the incremental forward (prefill 50, then 1 token at a time) reproduces the full causal forward
    ids = torch.tensor([lk.llm.encode("First Citizen:\nBefore we proceed any further, hear me speak.\n")])
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache()
        parts = [model(ids[:, :50], cache)] + [model(ids[:, i:i + 1], cache) for i in range(50, ids.shape[1])]
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-4)
    assert cache.length == ids.shape[1]


def test_seeded_sampling_is_reproducible_and_looks_like_the_corpus(gpt):
    a = lk.llm.generate(gpt.model, "KING", 80, temperature=0.8, top_k=20, seed=3)
    b = lk.llm.generate(gpt.model, "KING", 80, temperature=0.8, top_k=20, seed=3)
    assert a.tokens == b.tokens
    words = a.text.split()
    assert len(words) > 8 and sum(w.strip(".,;:!?'").isalpha() for w in words) > 0.6 * len(words)


def test_bad_input_gets_clear_errors(gpt):
    with pytest.raises(ValueError, match="llama-3.1-8b"):
        lk.llm.config("llama-3.1-8")
    with pytest.raises(ValueError, match="outside the model's vocabulary.*'€'"):
        lk.llm.generate(gpt.model, "ROMEO costs 5€", 10)
    with pytest.raises(ValueError, match="exceeds the model's context of 128"):
        lk.llm.generate(gpt.model, "ROMEO:", 123)
    lk.llm.generate(gpt.model, "ROMEO:" * 20, 8, temperature=0)         # 120 + 8: exactly fills the context
    with pytest.raises(ValueError, match="exceeds the model's context"):
        lk.llm.generate(gpt.model, "ROMEO:" * 20, 9)
    with pytest.raises(ValueError, match="context"):
        lk.llm.prefill("gpt", 129)
    with pytest.raises(ValueError, match="max_new_tokens"):
        lk.llm.generate(gpt.model, "ROMEO:", 0)


# ------------------------------------------------------------------------------- analytic profiles, KV

@pytest.mark.parametrize("tokens", [1, 17, 128])
def test_analytic_prefill_flops_match_torchs_flop_counter(gpt, tokens):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    ids = torch.zeros(2, tokens, dtype=torch.long)
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        gpt.model(ids)
    profile = lk.llm.prefill(gpt.model.config, tokens, batch=2, dtype="fp32", all_logits=True)
    assert 2 * profile.macs == counter.get_total_flops()
    assert profile.params == sum(p.numel() for p in gpt.model.parameters())


def test_analytic_decode_step_flops_match_torchs_flop_counter(gpt):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad():
        cache = gpt.model.new_cache()
        gpt.model(torch.zeros(1, 40, dtype=torch.long), cache)
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            gpt.model(torch.zeros(1, 1, dtype=torch.long), cache)
    assert 2 * lk.llm.decode("gpt", 40, dtype="fp32").macs == counter.get_total_flops()


@pytest.mark.parametrize("past, new", [(0, 9), (40, 1)])
def test_eager_profile_has_one_layer_per_kernel_of_the_real_forward(gpt, past, new):
    """Oracle: torch's profiler counts the small GPT's kernels (with its cache, as ``labkit validate`` times it);
    ``eager=True`` has a layer for each, the default (fused) profile fewer, and both the same FLOPs. Left out on
    both sides: the views, and the causal mask a prefill with a cache builds in each block (index arithmetic)."""
    from collections import Counter

    from torch.profiler import ProfilerActivity, profile

    cache = gpt.model.new_cache()
    with torch.inference_mode():
        if past:
            gpt.model(torch.zeros(1, past, dtype=torch.long), cache)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            gpt.model(torch.zeros(1, new, dtype=torch.long), cache)
    ran = Counter()
    for e in prof.events():
        if e.name == "aten::copy_" and len(e.input_shapes[0]) == 4:     # the K and V written into the cache
            ran["copy"] += 1
        elif e.name == "aten::add" and not all(e.input_shapes[:2]):      # the mask's index + start
            continue
        elif e.name in ("aten::linear", "aten::layer_norm", "aten::gelu", "aten::add",
                        "aten::scaled_dot_product_attention", "aten::embedding"):
            ran[e.name[6:]] += 1
    kw = dict(dtype="fp32", eager=True)
    eager = lk.llm.decode("gpt", past, **kw) if new == 1 else lk.llm.prefill("gpt", new, all_logits=True, **kw)
    names = {"layernorm": "layer_norm", "attention": "scaled_dot_product_attention"}
    assert Counter(names.get(lay.op, lay.op) for lay in eager.layers) == ran
    fused = lk.llm.decode("gpt", past, dtype="fp32") if new == 1 else lk.llm.prefill("gpt", new, dtype="fp32",
                                                                                       all_logits=True)
    assert len(fused.layers) < len(eager.layers) and fused.flops == eager.flops and fused.params == eager.params
    assert fused.weight_bytes == eager.weight_bytes
    assert sum(lay.bytes for lay in eager.layers) > sum(lay.bytes for lay in fused.layers)


def test_decode_profile_reads_the_kv_cache_and_kv_size_matches_the_real_cache(gpt):
    cfg = lk.llm.config("llama-3.1-8b")
    short, long = lk.llm.decode(cfg, 0), lk.llm.decode(cfg, 4096)
    extra = sum(a.input_bytes - b.input_bytes for a, b in zip(long.layers, short.layers))
    assert extra == 2 * 32 * 4096 * 8 * 128 * 2 == lk.llm.kv_bytes(cfg, 4096, "fp16")
    assert long.weight_bytes == short.weight_bytes
    # the small GPT's real cache holds exactly what kv_bytes says
    cache = gpt.model.new_cache(batch=3)
    with torch.no_grad():
        gpt.model(torch.zeros(3, 37, dtype=torch.long), cache)
    filled = sum(t[:, :, :cache.length].nbytes for t in cache.k + cache.v)
    assert filled == cache.bytes == lk.llm.kv_bytes("gpt", 37, "fp32", batch=3)


def test_max_sequences_is_the_largest_count_that_fits():
    budget = lk.llm.max_sequences("llama-3.1-8b", "h100-sxm", tokens=4096)
    dev = lk.device("h100-sxm")
    usable = dev.mem_bytes * 0.9
    weights, per_seq = 8030261248 * 2, 2 * 32 * 4096 * 1024 * 2
    n = budget.max_sequences
    assert weights + n * per_seq <= usable < weights + (n + 1) * per_seq
    assert lk.llm.max_sequences("llama-3.1-70b", "raspberry-pi-5", tokens=512).max_sequences == 0
    gqa_free = lk.llm.max_sequences("llama-2-7b", "h100-sxm", tokens=4096).kv_bytes_per_seq
    assert gqa_free == 2 * 32 * 4096 * 4096 * 2                       # no GQA: K and V are d_model wide


def test_engine_step_is_the_union_of_its_sequences():
    cfg = "llama-3.2-1b"
    assert lk.llm.step(cfg, decode_contexts=[300]).flops == lk.llm.decode(cfg, 300).flops
    assert lk.llm.step(cfg, prefill=[200]).flops == lk.llm.prefill(cfg, 200).flops
    mixed = lk.llm.step(cfg, decode_contexts=[300, 41], prefill=[(64, 128)])
    attn = sum(lay.macs for lay in mixed.layers if lay.op_class == "attention")
    q = 2048
    assert attn == 16 * 2 * q * (301 + 42 + 128 * 192)
    with pytest.raises(ValueError):
        lk.llm.step(cfg)


def test_batching_decode_raises_intensity_until_compute_bound():
    profile = lk.llm.decode("llama-3.1-8b", 1024)
    rows = [lk.estimate(profile, "h100-sxm", "fp16", batch=b) for b in (1, 8, 64, 512, 2048)]
    intensity = [e.layers[2].intensity for e in rows]                  # block0.qkv
    assert intensity == sorted(intensity) and intensity[-1] > 50 * intensity[0]
    tok_s = [e.batch / e.latency_s for e in rows]
    assert tok_s == sorted(tok_s)
    assert rows[1].latency_s < 1.5 * rows[0].latency_s                # 8x the tokens for almost the same time
    linears = [[lay.bound for lay in e.layers if lay.op_class == "matmul"] for e in rows]
    assert set(linears[0]) == {"memory"} and set(linears[-1]) == {"compute"}
    # attention reads each sequence's own KV cache: batching never makes it compute-bound
    assert {lay.bound for lay in rows[-1].layers if lay.op_class == "attention"} == {"memory"}


def test_published_configs_reproduce_published_parameter_counts():
    for name in lk.llm.config_names():
        c = lk.llm.config(name)
        if c.published_params is not None:
            assert c.params == pytest.approx(c.published_params, rel=0.006), name
    assert lk.llm.config("llama-3.2-1b").params == 1_235_814_400        # tied embeddings counted once
    assert lk.llm.config("gpt").params == sum(p.numel() for p in lk.zoo.load("gpt").model.parameters())


def test_validate_published_is_within_a_stated_error():
    table = lk.llm.validate_published(show=False)
    assert len(table) >= 13 and set(table["device"]) <= set(lk.devices().index)
    # a phone and data-centre serving engines are among them (issue 17)
    assert (table["device"].map(lambda d: lk.device(d).kind) == "npu").any()
    assert table["engine"].str.startswith("vLLM").sum() >= 2
    assert table["source"].str.len().gt(40).all() and table["date"].astype(str).str.match(r"20\d\d").all()
    assert table.attrs["median_abs_error"] < 0.35
    assert (table["predicted_tok_s"] / table["published_tok_s"]).between(0.4, 2.5).all()
    assert (table["bound"] == "memory").all()                          # batch-1 decode is bandwidth-bound


def test_rows_that_publish_a_time_per_token_become_tokens_per_s():
    import tomllib

    raw = tomllib.loads((datasets_dir() / "llm_published.toml").read_text())["rows"]
    table = lk.llm.published()
    assert len(raw) == len(table)
    for row, (_, got) in zip(raw, table.iterrows()):
        assert ("tokens_per_s" in row) != ("tpot_ms" in row)               # exactly one published figure
        want = row["tokens_per_s"] if "tokens_per_s" in row else 1000.0 / row["tpot_ms"]
        assert got["tokens_per_s"] == pytest.approx(want, rel=1e-12)
    assert sum("tpot_ms" in r for r in raw) >= 2


# ----------------------------------------------------------------------------------------- quantisation

def test_int8_per_channel_and_int4_groupwise_match_a_loop_oracle():
    from labkit.llm.quant import dequantize_tensor, quantize_tensor

    w = torch.randn(6, 64, generator=torch.Generator().manual_seed(1))
    for bits, group in ((8, None), (4, 32), (4, 16)):
        q, s = quantize_tensor(w, bits, group)
        deq = dequantize_tensor(q, s, group)
        qmax = 2 ** (bits - 1) - 1
        size = group or 64
        for r in range(6):
            for g0 in range(0, 64, size):
                block = w[r, g0:g0 + size].tolist()
                scale = float(torch.tensor(max(abs(x) for x in block) / qmax).half())
                for j, x in enumerate(block):
                    code = max(-qmax, min(qmax, round(x / scale)))
                    assert int(q[r, g0 + j]) == code
                    assert float(deq[r, g0 + j]) == pytest.approx(code * scale, rel=1e-6)
        assert int(q.abs().max()) == qmax                       # the largest weight of each group hits the end


def test_quantized_gpt_bytes_and_loss(gpt):
    model = gpt.model
    n_linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    n_all = sum(p.numel() for p in model.parameters())
    q8, q4 = lk.llm.quantize(model, bits=8), lk.llm.quantize(model, bits=4, group_size=32)
    assert q4.weight_bits == 4 + 16 / 32
    assert q4.bytes == (n_all - n_linear) * 4 + n_linear * 9 // 16
    assert q8.bytes < q8.fp32_bytes / 3 and q4.bytes < q8.bytes
    base = lk.llm.val_loss(model, windows=16)
    l8, l4 = lk.llm.val_loss(q8.model, windows=16), lk.llm.val_loss(q4.model, windows=16)
    assert abs(l8 - base) < 0.01 and base - 0.01 < l4 < base + 0.1  # int8 is nearly free; int4 costs a little
    assert next(model.parameters()).data_ptr() != next(q8.model.parameters()).data_ptr()   # a copy
    with pytest.raises(ValueError, match="group_size"):
        lk.llm.quantize(model, bits=4)
    with pytest.raises(ValueError, match="bits"):
        lk.llm.quantize(model, bits=3)


def test_packed_linears_keep_integer_codes_and_compute_what_quantize_computes(gpt):
    """lk.llm.pack (the integer-code model timed by bench/llm.py) against lk.llm.quantize's fake-quantised model
    as the oracle: same codes, same logits, for both kernels."""
    from labkit.llm.quant import quantize_tensor

    model = gpt.model
    ids = torch.tensor([lk.llm.encode("ROMEO:\nWhat light through yonder window breaks")])
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    for bits, group in ((8, None), (4, 32)):
        oracle = lk.llm.quantize(model, bits=bits, group_size=group).model
        with torch.no_grad():
            want = oracle(ids)
            for kernel in ("dequant", "fused"):
                packed = lk.llm.pack(model, bits, group, kernel)
                qs = [m for m in packed.modules() if type(m).__name__ == "QLinear"]
                assert len(qs) == n_linear and not any(isinstance(m, torch.nn.Linear) for m in packed.modules())
                assert torch.allclose(packed(ids), want, atol=1e-4), (bits, kernel)
                codes, _ = quantize_tensor(model.blocks[0].mlp[2].weight, bits, group)
                assert torch.equal(packed.blocks[0].mlp[2].q, codes) and codes.dtype == torch.int8
                if kernel == "fused" and bits == 4:
                    assert packed.head.kernel == "dequant"             # 65 rows: not a multiple of 16
                    assert packed.blocks[0].attn.qkv.kernel == "fused"
    with pytest.raises(ValueError, match="kernel"):
        lk.llm.pack(model, 8, kernel="fast")
    with pytest.raises(ValueError, match="group_size"):
        lk.llm.pack(model, 4)
    with pytest.raises(ValueError, match="per output channel"):
        lk.llm.pack(model, 8, 32, kernel="fused")
