"""Figures of issue 17 (lab 08): the small GPT measured here against labkit's prediction for ``local``.

Not a test (nothing is asserted): prints
- TTFT over prompt lengths and TPOT over batch sizes, measured (median of repeats) beside
  ``lk.estimate(lk.llm.prefill/decode(...), "local", "fp32")`` and the relative error, as ``labkit validate``
  reports it ((predicted - measured) / measured, median of |error|);
- the KV cache's measured speed-up at a long context (126 of 128 tokens);
- weight-only int8 / int4 of the small GPT: validation loss, bytes, and the decode-step time measured here
  (fp32 vs integer codes, dequantised every step or by torch's fused CPU kernels) beside the prediction;
- ``lk.llm.validate_published()`` and its median error.
Usage: ``.venv/bin/python bench/llm.py`` (calibrates ``local`` on first use, as lab 00 does; 1 thread).
"""

from __future__ import annotations

import statistics
import time

import torch

import labkit as lk


def _median_s(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(1)
    gpt, val_loss = lk.zoo.load("gpt")
    cfg = gpt.config
    local = lk.device("local")
    errors = []
    print(f"small GPT: {sum(p.numel() for p in gpt.parameters()):,} params, val loss {val_loss:.3f} nats/char")
    print("\nprefill (TTFT) on local, batch 1:")
    for n in (8, 32, 64, 127):
        ids = torch.zeros(1, n, dtype=torch.long)
        with torch.inference_mode():
            measured = _median_s(lambda ids=ids: gpt(ids, gpt.new_cache()))
        predicted = lk.estimate(lk.llm.prefill(cfg, n, dtype="fp32", all_logits=True), local, "fp32").latency_s
        errors.append((predicted - measured) / measured)
        print(f"  prompt {n:4d}: measured {measured * 1e3:7.3f} ms  predicted {predicted * 1e3:7.3f} ms  "
              f"error {errors[-1]:+.0%}")
    print("\ndecode step (TPOT) at context 64 on local:")
    for b in (1, 4, 16, 64):
        cache = gpt.new_cache(b)
        with torch.inference_mode():
            gpt(torch.zeros(b, 64, dtype=torch.long), cache)

            def one(cache=cache, b=b):
                gpt(torch.zeros(b, 1, dtype=torch.long), cache)
                cache.length -= 1                          # stay at context 64
            measured = _median_s(one)
        predicted = lk.estimate(lk.llm.decode(cfg, 64, batch=b, dtype="fp32"), local, "fp32").latency_s
        errors.append((predicted - measured) / measured)
        print(f"  batch {b:4d}: measured {measured * 1e3:7.3f} ms  predicted {predicted * 1e3:7.3f} ms  "
              f"error {errors[-1]:+.0%}")
    print(f"median |error| (local): {statistics.median(abs(e) for e in errors):.0%}")

    cached = [lk.llm.generate(gpt, "KING:\nI ", 118, temperature=0) for _ in range(3)]
    full = [lk.llm.generate(gpt, "KING:\nI ", 118, temperature=0, kv_cache=False) for _ in range(3)]
    tc, tf = statistics.median(g.tpot_s for g in cached), statistics.median(g.tpot_s for g in full)
    print(f"\nKV cache at a 126-token context: TPOT {tc * 1e3:.3f} ms with, {tf * 1e3:.3f} ms without: "
          f"{tf / tc:.1f}x speed-up")
    print("sample:", repr(lk.llm.generate(gpt, "ROMEO:\n", 120, temperature=0.8, top_k=20, seed=1).text))

    base = lk.llm.val_loss(gpt)
    print(f"\nweight-only quantisation (whole validation split): fp32 {base:.4f} nats/char, "
          f"{4 * sum(p.numel() for p in gpt.parameters()):,} bytes")
    for bits, group in ((8, None), (4, 32), (4, 128)):
        q = lk.llm.quantize(gpt, bits=bits, group_size=group)
        print(f"  {q!r}: val loss {lk.llm.val_loss(q.model):.4f} ({lk.llm.val_loss(q.model) - base:+.4f})")
    quantized_decode(gpt)
    print()
    lk.llm.validate_published()


def quantized_decode(gpt, context: int = 64, batches=(1, 8), rounds: int = 3, budget_s: float = 0.3) -> dict:
    """Decode-step time of the small GPT with int8 / int4 weights measured here beside fp32, and predicted.

    Variants (labkit.llm.qlinear.pack): fp32; int8 per channel and int4 in groups of 32, each with the
    "dequant" kernel (fp32 weight rebuilt every step) and the "fused" CPU weight-only kernel. Every round
    times every variant once (interleaved), and each keeps its lowest median, so a burst of load hits all alike.
    Prints ratios to fp32 (within one run: the load average cannot flatter one variant) and the load average.
    """
    import os

    from labkit.llm.qlinear import pack
    from labkit.measure import lowest_median_s

    variants = {"fp32": gpt}
    for bits, group in ((8, None), (4, 32)):
        for kernel in ("dequant", "fused"):
            variants[f"int{bits} {kernel}"] = pack(gpt, bits, group, kernel)
    load0 = os.getloadavg()
    times = {}
    with torch.inference_mode():
        cases = []
        for b in batches:
            for name, model in variants.items():
                cache = model.new_cache(b)
                model(torch.zeros(b, context, dtype=torch.long), cache)
                token = torch.zeros(b, 1, dtype=torch.long)

                def step(model=model, cache=cache, token=token):
                    cache.length = context
                    return model(token, cache)
                cases.append(((name, b), step))
        for _ in range(rounds):
            for key, fn in cases:
                times[key] = min(times.get(key, float("inf")), lowest_median_s(fn, budget_s=budget_s / rounds, rounds=1))
    load1 = os.getloadavg()
    print(f"\nweight-only quantised decode step at context {context}, measured here "
          f"(load average {load0[0]:.2f} before, {load1[0]:.2f} after; {torch.get_num_threads()} thread):")
    for b in batches:
        base = times["fp32", b]
        print(f"  batch {b}: " + ", ".join(f"{name} {times[name, b] * 1e3:.3f} ms ({times[name, b] / base:.2f}x)"
                                          for name in variants))
    cfg = gpt.config
    bits8, bits4 = (lk.llm.quantize(gpt, b, g).weight_bits for b, g in ((8, None), (4, 32)))
    print(f"  predicted (lk.estimate at the stored weight bytes: fp32, int8 {bits8:.3g} and int4 {bits4:.3g} bits):")
    for dev in ("local", "raspberry-pi-5", "h100-sxm"):
        row = []
        for label, bits in (("fp32", None), ("int8", bits8), ("int4", bits4)):
            est = lk.estimate(lk.llm.decode(cfg, context, dtype="fp32", weight_bits=bits), dev, "fp32")
            row.append(f"{label} {est.latency_s * 1e3:.3f} ms")
        print(f"    small GPT on {dev}: " + ", ".join(row))
    for dev in ("raspberry-pi-5", "h100-sxm"):
        rates = []
        for label, wb in (("fp16", None), ("int8 (8.5 bpw)", 8.5), ("int4 (4.5 bpw)", 4.5)):
            try:
                rates.append(f"{label} {lk.llm.tokens_per_s('llama-3.1-8b', dev, dtype='fp16', weight_bits=wb):.1f}")
            except ValueError:                               # the weights do not fit the device's memory
                rates.append(f"{label} does not fit")
        print(f"    llama-3.1-8b on {dev}: " + ", ".join(rates) + " tok/s")
    return times


if __name__ == "__main__":
    main()
