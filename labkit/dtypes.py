"""Numeric formats labkit knows, and how many bytes one element takes.
"""

from __future__ import annotations

from labkit.args import unknown_name

# bytes per element
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4,
    "tf32": 4,
    "bf16": 2,
    "fp16": 2,
    "fp8": 1,
    "int8": 1,
    "int4": 0.5,
}

_ALIASES = {
    "float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16",
    "bfloat16": "bf16", "qint8": "int8", "uint8": "int8", "float8": "fp8",
}

def normalize_dtype(dtype: str) -> str:
    """Canonical dtype name ('float16' -> 'fp16'); a clear ValueError for anything else.

    >>> normalize_dtype("bfloat16")
    'bf16'
    """
    if not isinstance(dtype, str):
        raise ValueError(f"dtype must be a string such as 'fp32', got {dtype!r} ({type(dtype).__name__}).")
    key = dtype.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        raise unknown_name("dtype", dtype, DTYPE_BYTES)
    return key


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of `dtype` (fp32 → 4, int8 → 1, int4 → 0.5)."""
    return DTYPE_BYTES[normalize_dtype(dtype)]
