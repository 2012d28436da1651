"""The character vocabulary and the train/validation split of tinyshakespeare (lab 08).


>>> from labkit.llm import text
>>> len(text.chars())
65
>>> text.decode(text.encode("To be"))
'To be'
"""

from __future__ import annotations

from functools import lru_cache

CORPUS = "tinyshakespeare/input.txt"
TRAIN_FRACTION = 0.9


@lru_cache(maxsize=1)
def corpus() -> str:
    """The whole tinyshakespeare text (lab 08).

    >>> from labkit.llm.text import corpus
    >>> len(corpus())
    1115394
    """
    from labkit.targets.catalog import dataset_path

    return dataset_path(CORPUS).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def chars() -> str:
    """The vocabulary: the corpus's distinct characters, sorted; a token id is an index into it (lab 08).

    >>> from labkit.llm.text import chars
    >>> chars()[:3], chars()[-1]
    ('\\n !', 'z')
    """
    return "".join(sorted(set(corpus())))


def encode(s: str) -> list[int]:
    """Token ids of `s`; a character outside the vocabulary raises ValueError naming it (lab 08).

    >>> from labkit.llm.text import encode
    >>> encode("ab")
    [39, 40]
    """
    if not isinstance(s, str):
        raise ValueError(f"text must be a str, got {type(s).__name__}")
    index = {c: i for i, c in enumerate(chars())}
    bad = sorted({c for c in s if c not in index})
    if bad:
        raise ValueError(f"characters outside the model's vocabulary: {', '.join(repr(c) for c in bad)}; "
                         f"the vocabulary is the {len(index)} characters of tinyshakespeare: {chars()!r}")
    return [index[c] for c in s]


def decode(ids) -> str:
    """The text of a sequence of token ids (ints or a 1-D tensor) (lab 08).

    >>> from labkit.llm.text import decode
    >>> decode([20, 43, 50, 50, 53])
    'Hello'
    """
    table = chars()
    return "".join(table[int(i)] for i in ids)


def split(name: str):
    """The token ids of the ``"train"`` or ``"val"`` split as a 1-D int64 tensor (lab 08).

    >>> from labkit.llm.text import split
    >>> len(split("train")) + len(split("val"))
    1115394
    """
    if name not in ("train", "val"):
        from labkit.args import unknown_name

        raise unknown_name("split", name, ["train", "val"])

    data = _all_ids()
    cut = int(TRAIN_FRACTION * len(data))
    return data[:cut] if name == "train" else data[cut:]


@lru_cache(maxsize=1)
def _all_ids():
    import torch

    table = {c: i for i, c in enumerate(chars())}
    return torch.tensor([table[c] for c in corpus()], dtype=torch.long)
