"""Pictures of LLM inference: prefill and decode on the roofline, TPOT against context, the batching knee (lab 08).

"""

from __future__ import annotations


def _device(device):
    if isinstance(device, str):
        from labkit.targets import device as lookup

        return lookup(device)
    return device


def llm_roofline(model, device, dtype: str = "fp16", prompt: int = 512, context: int = 512,
                 batches=(1, 8, 64, 512), weight_bits: float | None = None, ax=None):
    """The device's roof with a prefill point and decode points at several batch sizes (lab 08).

    >>> import labkit as lk
    >>> ax = lk.plot.llm_roofline("llama-3.1-8b", "h100-sxm", batches=(1, 64))
    >>> len(ax.collections)          # prefill + one point per batch
    3
    """
    import matplotlib.pyplot as plt

    from labkit.estimate import estimate
    from labkit.llm.profiles import decode, prefill
    from labkit.plot import roof

    dev = _device(device)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    points = [("prefill " + str(prompt), estimate(prefill(model, prompt, dtype=dtype, weight_bits=weight_bits),
                                                  dev, dtype))]
    step = decode(model, context, dtype=dtype, weight_bits=weight_bits)
    points += [(f"decode batch {b}", estimate(step, dev, dtype, batch=b)) for b in batches]
    xs = []
    for i, (label, est) in enumerate(points):
        flops, nbytes = sum(lay.flops for lay in est.layers), sum(lay.bytes for lay in est.layers)
        x, y = flops / nbytes, flops / est.latency_s
        xs.append(x)
        ax.scatter([x], [y], s=60, marker="s" if i == 0 else "o", label=f"{label}: {x:.3g} FLOP/B", zorder=3)
    peak, bw, ridge = roof(dev, dtype)
    lo, hi = min(xs + [ridge]) / 5, max(xs + [ridge]) * 5
    grid = [lo * (hi / lo) ** (k / 100) for k in range(101)]
    ax.plot(grid, [min(peak, g * bw) for g in grid], color="black", label=f"{dev.name} roof ({dtype})")
    ax.axvline(ridge, color="gray", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP / byte)", ylabel="attained FLOP/s",
           title=f"{model if isinstance(model, str) else getattr(model, 'name', 'model')}: prefill vs decode")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def tpot_context(model, devices, contexts=(128, 512, 2048, 8192, 32768), dtype: str = "fp16",
                 weight_bits: float | None = None, measured=None, ax=None):
    """Predicted time per output token against context length on each device; ``measured`` = {context: s} (lab 08).

    >>> import labkit as lk
    >>> ax = lk.plot.tpot_context("llama-3.1-8b", ["h100-sxm", "a100-sxm"], contexts=(128, 4096))
    >>> len(ax.lines)
    2
    """
    import matplotlib.pyplot as plt

    from labkit.estimate import estimate
    from labkit.llm.profiles import decode

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for d in devices if isinstance(devices, (list, tuple)) else [devices]:
        dev = _device(d)
        ys = [estimate(decode(model, c, dtype=dtype, weight_bits=weight_bits), dev, dtype).latency_s * 1e3
              for c in contexts]
        ax.plot(contexts, ys, marker="o", label=f"{dev.name} (predicted)")
    if measured:
        cs = sorted(measured)
        ax.scatter(cs, [measured[c] * 1e3 for c in cs], color="black", marker="x", zorder=3, label="measured here")
    ax.set(xscale="log", yscale="log", xlabel="context (tokens in the KV cache)", ylabel="TPOT (ms)",
           title="decode: time per output token grows with the KV cache it reads")
    ax.legend(fontsize="small")
    return ax


def llm_batching_knee(model, device, context: int = 1024, batches=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
                  dtype: str = "fp16", weight_bits: float | None = None, ax=None):
    """Decode tokens/s and TPOT against batch size: flat TPOT while memory-bound, then the knee (lab 08).

    >>> import labkit as lk
    >>> ax = lk.plot.llm_batching_knee("llama-3.1-8b", "h100-sxm", batches=(1, 16, 256))
    >>> len(ax.lines)
    1
    """
    import matplotlib.pyplot as plt

    from labkit.estimate import estimate
    from labkit.llm.profiles import decode

    dev = _device(device)
    step = decode(model, context, dtype=dtype, weight_bits=weight_bits)
    ests = [estimate(step, dev, dtype, batch=b) for b in batches]
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    ax.plot(batches, [e.batch / e.latency_s for e in ests], marker="o", color="tab:blue")
    ax.set(xscale="log", yscale="log", xlabel="batch (sequences decoding together)",
           ylabel="tokens/s (all sequences)", title=f"batching knee on {dev.name}, context {context}")
    twin = ax.twinx()
    twin.plot(batches, [e.latency_s * 1e3 for e in ests], marker=".", ls="--", color="tab:red")
    twin.set(yscale="log", ylabel="TPOT (ms), dashed")
    return ax
