"""Compress a client's update before it goes up the link, and count the bytes of what is actually sent (lab 10).

An update is the flat float32 delta ``w_client - w_global``. Two tools, which compose:

- **top-k sparsification** (``topk=`` a fraction in (0, 1]): send only the k largest |delta| entries and
  their int32 indices. With **error feedback** (Seide et al. 2014; Stich et al. 2018) the client keeps what
  it did not send and adds it to its next update, so nothing is lost, only delayed.
- **int8 quantisation** (``int8=True``): symmetric, one float32 scale per message,
  ``q = round(delta / scale)`` with ``scale = max|delta| / 127``.

``Payload.bytes`` is the sum of the ``nbytes`` of the arrays in the message (values, indices, scale): the
bytes a real client would put on the wire, headers aside. With ``topk=1`` and no int8 the message is the dense
float32 delta: exactly ``parameters x 4`` bytes, and decoding it gives back the delta bit for bit.


>>> import numpy as np
>>> c = Compression(topk=0.5, int8=True)
>>> p, residual = c.encode(np.array([0.1, -2.0, 0.3, 1.0], dtype=np.float32))
>>> p.bytes, [round(float(v), 3) for v in p.decode()]   # 2 int8 values + 2 int32 indices + 1 float32 scale
(14, [0.0, -2.0, 0.0, 1.008])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Payload:
    """What one client sends up: values (float32 or int8), indices (int32, or None when dense), a scale."""

    size: int                        # length of the dense delta
    values: np.ndarray
    indices: np.ndarray | None = None
    scale: np.ndarray | None = None  # float32 scalar array when int8

    @property
    def bytes(self) -> int:
        """Bytes on the wire: the sum of the arrays' nbytes."""
        return int(sum(a.nbytes for a in (self.values, self.indices, self.scale) if a is not None))

    def decode(self) -> np.ndarray:
        """The dense float32 delta the server reconstructs."""
        values = self.values.astype(np.float32)
        if self.scale is not None:
            values = values * self.scale[0]
        if self.indices is None:
            return values
        dense = np.zeros(self.size, dtype=np.float32)
        dense[self.indices] = values
        return dense


@dataclass(frozen=True)
class Compression:
    """How updates are compressed: ``topk`` fraction kept (1 = all, dense), ``int8``, ``error_feedback``."""

    topk: float = 1.0
    int8: bool = False
    error_feedback: bool = True

    def __post_init__(self):
        ok = isinstance(self.topk, (int, float)) and not isinstance(self.topk, bool) and 0 < self.topk <= 1
        if not ok:
            raise ValueError(f"topk is the fraction of entries sent, in (0, 1], got {self.topk!r}.")
        if not isinstance(self.int8, bool) or not isinstance(self.error_feedback, bool):
            raise ValueError("int8 and error_feedback must be True or False.")

    @property
    def lossless(self) -> bool:
        return self.topk == 1 and not self.int8

    def kept(self, size: int) -> int:
        """How many entries of a delta of ``size`` are sent."""
        return max(1, int(round(self.topk * size)))

    def payload_bytes(self, size: int) -> int:
        """Bytes of the message for a delta of ``size`` entries (what :meth:`encode`'s payload will weigh).

        >>> Compression().payload_bytes(1000), Compression(topk=0.1, int8=True).payload_bytes(1000)
        (4000, 504)
        """
        k = self.kept(size)
        return k * (1 if self.int8 else 4) + (4 * k if k < size else 0) + (4 if self.int8 else 0)

    def encode(self, delta: np.ndarray, residual: np.ndarray | None = None) -> tuple[Payload, np.ndarray | None]:
        """``(payload, new_residual)`` for a float32 ``delta``; the residual is what error feedback carries on.

        Returns ``None`` as the residual when error feedback is off or nothing was lost.
        """
        delta = np.asarray(delta, dtype=np.float32)
        if self.lossless:
            return Payload(delta.size, delta.copy()), None
        target = delta + residual if (self.error_feedback and residual is not None) else delta
        k = self.kept(target.size)
        if k < target.size:
            # the k largest |entries|; argpartition then sort the indices so the message is canonical
            idx = np.sort(np.argpartition(np.abs(target), target.size - k)[target.size - k:]).astype(np.int32)
            values = target[idx]
        else:
            idx, values = None, target
        scale = None
        if self.int8:
            peak = float(np.abs(values).max())
            s = np.float32(peak / 127.0 if peak > 0 else 1.0)
            values = np.clip(np.round(values / s), -127, 127).astype(np.int8)
            scale = np.array([s], dtype=np.float32)
        payload = Payload(target.size, values, idx, scale)
        new_residual = (target - payload.decode()) if self.error_feedback else None
        return payload, new_residual

    def __repr__(self) -> str:
        if self.lossless:
            return "Compression(none: dense float32)"
        parts = [f"top-{self.topk:.3g}"] if self.topk < 1 else []
        parts += ["int8"] if self.int8 else []
        parts += ["error feedback"] if self.error_feedback else []
        return f"Compression({', '.join(parts)})"
