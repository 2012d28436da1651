"""Argument checks for every public labkit function: one declarative vocabulary, one wording of errors.

A *rule* says what a value must be (``Int(low=1)``, ``Number(low=0)``, ``OneOf(names)``). ``check(what, value,
rule)`` returns the value, normalised (a numpy integer becomes an ``int``), or raises a ValueError that says what
was wrong and what is allowed — the same sentence everywhere: ``"batch must be an int >= 1, got 0."``. Unknown
names list their near matches (``unknown_name``). ``@checked(batch=Int(low=1), ...)`` applies rules to a
function's arguments by name. ``what`` may be a path (``"pools[0].replicas"``), so a nested spec (lab 11) is
checked field by field with the same rules.

>>> check("epochs", 3, Int(low=1))
3
>>> check("epochs", 0, Int(low=1))
Traceback (most recent call last):
ValueError: epochs must be an int >= 1, got 0.
>>> check("rtt_s", float("nan"), Number(low=0))
Traceback (most recent call last):
ValueError: rtt_s must be a finite number >= 0, got nan.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches

REJECT = object()   # what a rule returns for a value it does not accept (None can be a valid value)


def unknown_name(what: str, name: object, choices: Iterable) -> ValueError:
    """A ValueError that says which name was unknown, lists near matches and what is allowed.

    >>> print(unknown_name("device", "h10", ["h100-sxm", "a100", "t4"]))
    unknown device 'h10'. Did you mean 'a100', 'h100-sxm'? Allowed: a100, h100-sxm, t4.
    """
    choices = sorted(str(c) for c in choices)
    near = get_close_matches(str(name), choices, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    shown = ", ".join(choices[:40]) + (" …" if len(choices) > 40 else "")
    return ValueError(f"unknown {what} {name!r}.{hint} Allowed: {shown}.")


def _bounds(low, high, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}" if isinstance(low, float) else f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}" if isinstance(high, float) else f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


@dataclass(frozen=True)
class Int:
    """An integer (Python or numpy, never a bool) within optional bounds; normalised to ``int``."""

    low: int | None = None
    high: int | None = None

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an int in [{self.low}, {self.high}]"
        return " ".join(filter(None, ["an int", _bounds(self.low, self.high, False, False)]))

    def __call__(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return REJECT
        value = int(value)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            return REJECT
        return value


@dataclass(frozen=True)
class Number:
    """A finite real number (int, float or numpy scalar, never a bool) within optional bounds; a ``float``.

    ``low_open=True`` makes the lower bound strict (``Number(low=0, low_open=True)`` is "a positive number").
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __str__(self) -> str:
        if self.low == 0 and self.low_open and self.high is None:
            return "a positive finite number"
        if self.low is not None and self.high is not None:
            return (f"a finite number in {'(' if self.low_open else '['}{self.low:g}, "
                    f"{self.high:g}{')' if self.high_open else ']'}")
        return " ".join(filter(None, ["a finite number", _bounds(self.low, self.high, self.low_open, self.high_open)]))

    def __call__(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return REJECT
        value = float(value)
        if not math.isfinite(value):
            return REJECT
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return REJECT
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return REJECT
        return value


@dataclass(frozen=True)
class Bool:
    """``True`` or ``False`` (numpy bools too; never 0, 1 or a string); normalised to ``bool``."""

    def __str__(self) -> str:
        return "True or False"

    def __call__(self, value):
        # numpy's bool is no subclass of bool; recognised by its type, so that args.py needs no numpy
        kind = type(value)
        numpy_bool = kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")
        return bool(value) if isinstance(value, bool) or numpy_bool else REJECT


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of names; an unknown one lists its near matches."""

    choices: tuple

    def __init__(self, choices: Iterable):
        object.__setattr__(self, "choices", tuple(choices))

    def __str__(self) -> str:
        return "one of " + ", ".join(map(str, self.choices))

    def __call__(self, value):
        return value if value in self.choices else REJECT


@dataclass(frozen=True)
class Optional:
    """``None``, or a value that passes `rule`."""

    rule: Int | Number | OneOf | Bool

    def __str__(self) -> str:
        return "None, True or False" if isinstance(self.rule, Bool) else f"None or {self.rule}"

    def __call__(self, value):
        return None if value is None else self.rule(value)


def check(what: str, value, rule):
    """`value` normalised by `rule`, or a ValueError ``"{what} must be {rule}, got {value!r}."``.

    >>> check("dtype", "fp16", OneOf(["fp32", "fp16"]))
    'fp16'
    >>> check("max_replicas", None, Optional(Int(low=1))) is None
    True
    """
    out = rule(value)
    if out is REJECT:
        if isinstance(rule, OneOf):
            raise unknown_name(what, value, rule.choices)
        raise ValueError(f"{what} must be {rule}, got {value!r}.")
    return out


def checked(**rules):
    """Decorate a public function so that the named arguments are checked (and normalised) by their rules.

    >>> @checked(batch=Int(low=1))
    ... def run(batch=1):
    ...     return batch
    >>> run(batch=4)
    4
    >>> run(batch=0)
    Traceback (most recent call last):
    ValueError: batch must be an int >= 1, got 0.
    """

    def wrap(fn):
        sig = inspect.signature(fn)
        unknown = set(rules) - set(sig.parameters)
        if unknown:
            raise TypeError(f"@checked names arguments {sorted(unknown)} that {fn.__name__} does not take")

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            for name, rule in rules.items():
                if name in bound.arguments:
                    bound.arguments[name] = check(name, bound.arguments[name], rule)
            return fn(*bound.args, **bound.kwargs)

        return inner

    return wrap


def check_int(what: str, value, low: int) -> int:
    """`value` as an int if it is an integer >= `low` (numpy integers too, never a bool).

    >>> check_int("epochs", 3, 1)
    3
    """
    return check(what, value, Int(low=low))


def check_positive(what: str, value) -> float:
    """`value` as a float if it is a finite number > 0.

    >>> check_positive("lr", 1e-3)
    0.001
    """
    return check(what, value, Number(low=0, low_open=True))


def namespace(module_name: str, public: Iterable[str]):
    """A namespace module's ``(__getattr__, __dir__)``: ``dir()`` lists `public`, an unknown name lists near matches.

    >>> getattr_, dir_ = namespace("lk.demo", ["roofline", "timeline"])
    >>> dir_()
    ['roofline', 'timeline']
    >>> getattr_("rooflne")
    Traceback (most recent call last):
    AttributeError: unknown lk.demo name 'rooflne'. Did you mean 'roofline'? Allowed: roofline, timeline.
    """
    names = sorted(public)

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(str(unknown_name(f"{module_name} name", name, names)))

    def __dir__():
        return names

    return __getattr__, __dir__
