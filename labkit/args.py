"""Argument checks shared by labkit's modules: each raises a ValueError that says what was wrong and what is
allowed (``labkit.dtypes.unknown_name`` does the same for names, with near matches).

Layering: imports nothing from labkit; everything else may import it.

>>> check_int("epochs", 3, 1)
3
>>> check_int("epochs", 0, 1)
Traceback (most recent call last):
ValueError: epochs must be an int >= 1, got 0.
"""

from __future__ import annotations

import math


def check_int(what: str, value, low: int) -> int:
    """`value` if it is an int (not a bool) >= `low`; else a ValueError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what} must be an int >= {low}, got {value!r}.")
    return value


def check_positive(what: str, value) -> float:
    """`value` as a float if it is a finite number > 0; else a ValueError naming `what`.

    >>> check_positive("lr", 1e-3)
    0.001
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive number, got {value!r}.")
    return float(value)
