"""Human-readable quantities: the one SI formatter behind every labkit repr.

>>> si(0.00123, "s"), si(45.6e-6, "s"), si(2.0, "J"), si(1500, "g")
('1.23 ms', '45.6 µs', '2 J', '1.5 kg')
"""

from __future__ import annotations

import math

_PREFIXES = ((1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def si(value: float, unit: str) -> str:
    """`value` with 3 significant digits and an SI prefix from n to k: 0.00123 s -> '1.23 ms'.

    >>> si(0, "s"), si(float("inf"), "s")
    ('0 s', 'inf s')
    """
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}" if value else f"0 {unit}"
    for factor, prefix in _PREFIXES:
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value / 1e-9:.3g} n{unit}"
