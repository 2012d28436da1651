"""Salted digests: a visible check that an exact answer is right without showing the answer (lab 00 onwards).

An author computes ``digest("05.q4", answer)`` once (in a hidden cell or a terminal) and writes the string into
the visible check: ``lk.check("05.q4", lambda: cycles, test=lk.matches("05.q4:…"))``. The learner sees ✔ or ✘
at once; reading the check cell shows a hash, not the answer. Floats are rounded to ``sig`` significant digits
first, so give the same ``sig`` to both. Not a secret: a small answer space (a count below a million, one of
four choices) can be brute-forced, so score multiple-choice answers in a hidden cell, and treat the digest as
"does not hand out the answer", not as security.

>>> d = digest("90.q1", 45)
>>> matches(d)(45), matches(d)(44)
(True, 'not the right answer')
"""

from __future__ import annotations

import hashlib
import math

from labkit.grade.check import _plain


def _canonical(value, sig: int):
    value = _plain(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return float(f"{value:.{sig}g}")
    if isinstance(value, list):
        return [_canonical(v, sig) for v in value]
    if isinstance(value, dict):
        return sorted((repr(_canonical(k, sig)), _canonical(v, sig)) for k, v in value.items())
    raise TypeError(f"a value of type {type(value).__name__} cannot be digested")


def digest(question: str, value, sig: int = 6) -> str:
    """``"<question>:<sha256 hex>"`` of `value` (ints, strings, bools, floats to `sig` digits, lists, dicts).

    >>> digest("00.q9", "h100-sxm")[:6]
    '00.q9:'
    """
    if not isinstance(question, str) or not question:
        raise ValueError(f"digest: question must be a check id like '05.q4', got {question!r}.")
    payload = repr((question, _canonical(value, sig), sig))
    return f"{question}:{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


def matches(expected_digest: str, sig: int = 6):
    """A ``test=`` function for ``lk.check``: True when the answer's digest is `expected_digest` (see module).

    >>> t = matches(digest("00.q9", [1.0, 2.5]))
    >>> t([1.0000000001, 2.5]), t([1.0, 2.6])
    (True, 'not the right answer')
    """
    question, sep, hexd = str(expected_digest).partition(":")
    if not sep or len(hexd) != 32:
        raise ValueError(f"matches: {expected_digest!r} is not a digest; make one with "
                         "labkit.grade.digest.digest(question, value).")

    def test(value):
        try:
            got = digest(question, value, sig)
        except TypeError as err:
            return str(err)
        return True if got == expected_digest else "not the right answer"

    return test
