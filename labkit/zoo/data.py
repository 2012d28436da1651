"""``lk.data``: the data the zoo models were trained on, bundled or generated, never downloaded (labs 01-04).

- Vision: scikit-learn's bundled handwritten digits (1,797 8x8 greyscale images, 10 classes), split once
  80/20, stratified by class, with a fixed seed. ``size=32`` upsamples bilinearly to the 1x32x32 input the
  cnn, mobilenet and resnet take.
- Noisy digits: the test digits again, ``copies`` times, each copy with its own seeded Gaussian pixel noise
  (``noisy_digits``): a harder, larger test set (1,800 images by default) on which small accuracy losses show.
- Text: a generated token task for the transformer. Each sequence is 32 token ids drawn uniformly from a
  vocabulary of 32; the label is the token among 0-9 that occurs most often (sequences with a tie for the
  most frequent, or with none of 0-9, are redrawn, so every label is unambiguous). The generator is numpy
  with a seed: the same seed gives the same data on every machine.

>>> import labkit as lk
>>> x, y = lk.data.digits("test")
>>> tuple(x.shape), x.dtype, y.dtype
((360, 1, 8, 8), torch.float32, torch.int64)
"""

from __future__ import annotations

from labkit.args import Number, check, check_int, namespace, unknown_name

SPLITS = ("train", "test")
DIGIT_SIZES = (8, 32)
TEST_FRACTION = 0.2                 # 1797 digits -> 1437 train, 360 test
NOISY_COPIES = 5                    # 360 test digits x 5 noisy copies = 1,800 images
NOISY_SIGMA = 0.1                   # Gaussian pixel noise (pixels are in [0, 1])
TOKEN_CLASSES = 10                  # label = most frequent token among ids 0..9
TOKENS_DEFAULT_N = {"train": 8000, "test": 2000}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)


def digits(split: str = "train", size: int = 8, seed: int = 0):
    """Bundled handwritten digits as tensors ``(x, y)`` (lab 01).

    x: (N, 1, size, size) float32 in [0, 1] (pixel / 16); y: (N,) int64 class 0-9. The split is 80/20,
    stratified by class, shuffled with ``seed`` (seed 0 is the split the zoo weights were trained on).
    ``size=32`` resizes bilinearly (align_corners=False) for the 32x32 zoo models.

    >>> import labkit as lk
    >>> x, y = lk.data.digits("train", size=32)
    >>> tuple(x.shape), int(y.max())
    ((1437, 1, 32, 32), 9)
    """
    _check_split(split)
    _check_size(size)
    seed = check_int("seed", seed, 0)
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()                                   # images: (1797, 8, 8) ints 0..16
    images = bunch.images.astype(np.float32) / 16.0
    labels = bunch.target.astype(np.int64)
    parts = train_test_split(images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=seed)
    x_np, y_np = (parts[0], parts[2]) if split == "train" else (parts[1], parts[3])
    x = torch.from_numpy(np.ascontiguousarray(x_np)).unsqueeze(1)   # (N, 1, 8, 8)
    return _resize(x, size), torch.from_numpy(np.ascontiguousarray(y_np))


def _check_size(size) -> None:
    if size not in DIGIT_SIZES:
        raise ValueError(f"size must be one of {DIGIT_SIZES} (8 = as bundled, 32 = for cnn/mobilenet/resnet), "
                         f"got {size!r}.")


def _resize(x, size: int):
    """(N, 1, 8, 8) digits at ``size`` x ``size``: bilinear (align_corners=False), kept in [0, 1]."""
    if size != 8:
        import torch.nn.functional as F

        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return x.contiguous()


def noisy_digits(size: int = 8, copies: int = NOISY_COPIES, sigma: float = NOISY_SIGMA, seed: int = 0):
    """The test digits, ``copies`` times, with seeded Gaussian pixel noise: a harder test split (lab 02).

    Copy ``k`` of every test image (``digits("test")``, the zoo's split) gets its own noise: x = clip(image +
    sigma * N(0, 1), 0, 1) at 8x8, drawn from ``numpy.random.default_rng([seed, 7])``; ``size=32`` then upsamples
    like ``digits``. Rows are copy-major (copy 0's 360 images, then copy 1's, ...); y repeats the test labels.
    With more images and less certain ones, a small loss of accuracy (a few quantisation steps) moves more
    than one image: 1,800 images make one image 0.056 points instead of 0.28. Generated, never downloaded.

    >>> import labkit as lk
    >>> x, y = lk.data.noisy_digits(size=32)        # lab 02 scores its quantised variants on copies=3 of this
    >>> tuple(x.shape), len(y), bool(0 <= x.min() and x.max() <= 1)
    ((1800, 1, 32, 32), 1800, True)
    """
    _check_size(size)
    copies = check_int("copies", copies, 1)
    seed = check_int("seed", seed, 0)
    sigma = check("sigma (Gaussian pixel noise; pixels are in [0, 1])", sigma, Number(low=0, high=10, high_open=True))
    import numpy as np
    import torch

    x8, y = digits("test", size=8)
    rng = np.random.default_rng([seed, 7])
    clean = np.tile(x8.numpy(), (copies, 1, 1, 1))                     # (copies * 360, 1, 8, 8)
    noise = rng.standard_normal(clean.shape).astype(np.float32) * np.float32(sigma)
    x = torch.from_numpy(np.clip(clean + noise, 0.0, 1.0).astype(np.float32))
    return _resize(x, size), y.repeat(copies)


def tokens(split: str = "train", n: int | None = None, seed: int = 0):
    """The generated "most frequent digit token" task as tensors ``(x, y)`` (lab 01).

    x: (n, 32) int64 token ids in [0, 32); y: (n,) int64 = the id among 0-9 occurring most often in the row
    (unique by construction). n defaults to 8,000 (train) or 2,000 (test); train and test come from
    independent random streams of the same seed (a row repeating across them has odds ~ n^2 / 32^32).

    >>> import labkit as lk
    >>> x, y = lk.data.tokens("test", n=4)
    >>> tuple(x.shape), bool((x < 32).all())
    ((4, 32), True)
    """
    _check_split(split)
    n = TOKENS_DEFAULT_N[split] if n is None else n
    n = check_int("n", n, 1)
    seed = check_int("seed", seed, 0)
    import numpy as np
    import torch

    from labkit.zoo.models import SEQ_LEN, VOCAB

    rng = np.random.default_rng([seed, SPLITS.index(split)])   # one stream per (seed, split)
    kept_x, kept_y, have = [], [], 0
    while have < n:
        batch = rng.integers(0, VOCAB, size=(2 * n, SEQ_LEN))            # (2n, 32)
        counts = np.stack([(batch == t).sum(axis=1) for t in range(TOKEN_CLASSES)], axis=1)  # (2n, 10)
        top = counts.max(axis=1)
        unique = (counts == top[:, None]).sum(axis=1) == 1
        ok = unique & (top > 0)
        kept_x.append(batch[ok])
        kept_y.append(counts[ok].argmax(axis=1))
        have += int(ok.sum())
    x = np.concatenate(kept_x)[:n].astype(np.int64)
    y = np.concatenate(kept_y)[:n].astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def for_model(name: str, split: str = "test", seed: int = 0):
    """The split a zoo model was trained/tested on, shaped as ``lk.zoo.info(name).input_shape`` (lab 01).

    mlp gets (N, 64) flattened 8x8 digits; cnn, mobilenet and resnet get (N, 1, 32, 32); the transformer
    gets (N, 32) token ids. ``lk.zoo.load(name)``'s recorded accuracy is on ``for_model(name, "test")``.

    >>> import labkit as lk
    >>> x, y = lk.data.for_model("mlp")
    >>> tuple(x.shape)
    (360, 64)
    """
    from labkit.zoo.models import info

    spec = info(name)
    if spec.input_dtype == "int64":
        return tokens(split, seed=seed)
    if spec.input_shape == (64,):
        x, y = digits(split, size=8, seed=seed)
        return x.flatten(1), y                               # (N, 64)
    x, y = digits(split, size=spec.input_shape[-1], seed=seed)
    return x, y


def accuracy(model, x, y, batch: int = 512) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on ``(x, y)``, evaluated in batches without gradients (lab 01).

    Puts the model in eval mode (batch norm uses its running statistics).

    >>> import labkit as lk
    >>> model = lk.zoo.build("mlp")
    >>> 0.0 <= lk.data.accuracy(model, *lk.data.for_model("mlp")) <= 1.0
    True
    """
    batch = check_int("batch", batch, 1)
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x and y must have the same non-zero length, got {len(x)} and {len(y)}.")
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += int((model(x[i:i + batch]).argmax(dim=1) == y[i:i + batch]).sum())
    return correct / len(y)


__all__ = ["DIGIT_SIZES", "SPLITS", "accuracy", "digits", "for_model", "noisy_digits", "tokens"]

__getattr__, __dir__ = namespace("lk.data", __all__)
