"""Predicted decode tokens/s of published LLMs, and the check against published measurements (lab 08).

"""

from __future__ import annotations

from labkit.args import check_int


def tokens_per_s(model, device, context: int = 256, dtype: str = "fp16", weight_bits: float | None = None,
                 batch: int = 1) -> float:
    """Predicted decode tokens per second (all `batch` sequences together) on `device` (lab 08).

    >>> import labkit as lk
    >>> fp16 = lk.llm.tokens_per_s("llama-3.1-8b", "h100-sxm")
    >>> int4 = lk.llm.tokens_per_s("llama-3.1-8b", "h100-sxm", weight_bits=4.5)
    >>> 2 < int4 / fp16 < 4                   # decode reads the weights: fewer bytes, more tokens/s
    True
    """
    from labkit.estimate import estimate
    from labkit.llm.profiles import decode

    check_int("batch", batch, 1)
    est = estimate(decode(model, context, batch=batch, dtype=dtype, weight_bits=weight_bits), device, dtype)
    return batch / est.latency_s


def step_time(model, device, decode_contexts=(), prefill=(), dtype: str = "fp16",
              weight_bits: float | None = None) -> float:
    """Predicted seconds of one engine step with a mixed batch on `device` (continuous batching, lab 09).

    `decode_contexts`: cached length of each running sequence; `prefill`: prompt chunks (ints, or
    ``(cached, new)`` pairs), as ``lk.llm.step`` takes them.

    >>> import labkit as lk
    >>> alone = lk.llm.step_time("llama-3.1-8b", "h100-sxm", decode_contexts=[500])
    >>> with_32 = lk.llm.step_time("llama-3.1-8b", "h100-sxm", decode_contexts=[500] * 32)
    >>> with_32 < 2 * alone                   # 32 tokens for less than twice the time of one
    True
    """
    from labkit.estimate import estimate
    from labkit.llm.profiles import step

    profile = step(model, decode_contexts=decode_contexts, prefill=prefill, dtype=dtype, weight_bits=weight_bits)
    return estimate(profile, device, dtype).latency_s


def published():
    """The published decode speeds (datasets/llm_published.toml) as a pandas DataFrame, one row each (lab 08).

    A row that publishes a time per output token (``tpot_ms``) gets ``tokens_per_s = 1000 / tpot_ms``.
    """
    import pandas as pd

    from labkit.targets.catalog import read_toml

    table = pd.DataFrame(read_toml("llm_published.toml")["rows"])
    if "tpot_ms" in table:                       # rows that publish a time per output token instead of a rate
        table["tokens_per_s"] = table["tokens_per_s"].fillna(1e3 / table["tpot_ms"])
    return table


def validate_published(show: bool = True):
    """labkit's predicted tokens/s beside each published figure, with the error (lab 08).

    ``error`` is predicted / published - 1 (+0.25 = predicted 25 % too fast). Returns the table; its
    ``attrs["median_abs_error"]`` is the median of |error|. ``show=True`` prints it.

    >>> import labkit as lk
    >>> table = lk.llm.validate_published(show=False)
    >>> set(table.columns) >= {"published_tok_s", "predicted_tok_s", "error"}
    True
    """
    from labkit.estimate import estimate
    from labkit.llm.profiles import decode

    table = published()
    predicted, bound, weight_gb = [], [], []
    for row in table.itertuples():
        profile = decode(row.model, int(row.context), dtype=row.dtype, weight_bits=float(row.weight_bits))
        est = estimate(profile, row.device, row.dtype)
        predicted.append(1.0 / est.latency_s)
        bound.append("compute" if est.compute_bound_fraction > 0.5 else "memory")
        weight_gb.append(profile.weight_bytes / 1e9)
    table["weights_gb"] = weight_gb
    table["predicted_tok_s"] = predicted
    table = table.rename(columns={"tokens_per_s": "published_tok_s"})
    table["error"] = table["predicted_tok_s"] / table["published_tok_s"] - 1
    table["bound"] = bound
    table.attrs["median_abs_error"] = float(table["error"].abs().median())
    if show:
        cols = ["model", "quant", "device", "engine", "weights_gb", "published_tok_s", "predicted_tok_s", "error",
                "bound"]
        with __import__("pandas").option_context("display.width", 200, "display.max_colwidth", 30):
            print(table[cols].to_string(formatters={"error": "{:+.0%}".format, "weights_gb": "{:.2f}".format,
                                                    "published_tok_s": "{:.1f}".format,
                                                    "predicted_tok_s": "{:.1f}".format}))
        print(f"median |error| over {len(table)} published figures: {table.attrs['median_abs_error']:.0%}")
    return table
