"""Validation loss (nats per character) of a character model, and the bigram baseline it must beat (lab 08).


>>> from labkit.llm.score import bigram_loss
>>> round(bigram_loss(), 2)
2.48
"""

from __future__ import annotations

from labkit.args import check_int
from labkit.llm import text


def val_loss(model, windows: int | None = None, split: str = "val", batch: int = 64) -> float:
    """Mean cross-entropy (nats/char) of `model` on the first `windows` context-long windows of `split`.

    ``windows=None`` scores the whole split. Lab 08 re-scores the shipped weights with it.

    >>> import labkit as lk
    >>> gpt, recorded = lk.zoo.load("gpt")
    >>> abs(lk.llm.val_loss(gpt) - recorded) < 1e-3
    True
    """
    import torch

    data = text.split(split)
    n = model.config.context
    total = (len(data) - 1) // n
    if windows is not None:
        check_int("windows", windows, 1)
        total = min(total, windows)
    loss_sum, count = 0.0, 0
    with torch.inference_mode():
        for first in range(0, total, batch):
            idx = range(first, min(total, first + batch))
            x = torch.stack([data[i * n:(i + 1) * n] for i in idx])
            y = torch.stack([data[i * n + 1:(i + 1) * n + 1] for i in idx])
            logits = model(x)
            loss_sum += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(),
                                                                reduction="sum"))
            count += y.numel()
    return loss_sum / count


def bigram_loss(split: str = "val", smoothing: float = 1.0) -> float:
    """Loss of the add-`smoothing` bigram model counted on the training split: the baseline (lab 08)."""
    import torch

    v = len(text.chars())
    train = text.split("train")
    counts = torch.full((v, v), float(smoothing))
    counts.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True)
    logp = (counts / counts.sum(1, keepdim=True)).log()
    data = text.split(split)
    return float(-logp[data[:-1], data[1:]].mean())
