"""Instant feedback in a notebook: ``lk.check("00.q1", lambda: answer, expected=45, points=2)``.

How a check cell passes the learner's value: as a **thunk**, ``lambda: answer``. The check cell runs even when
the answer cell above raised (``NotImplementedError`` from the scaffold) or was never run, so the name may be
undefined; the thunk turns that into a ✘ with a helpful message instead of a traceback.

Comparison modes (pick one; a number's tolerance should fit the quantity):

- ``expected=`` alone — exact for ints, strings, bools and containers of them (counts);
  relative ``rtol=1e-6`` for floats and arrays (model outputs); pass ``rtol=``/``atol=`` to change it;
- ``expected=, ratio=(lo, hi)`` — ``lo <= answer / expected <= hi`` (timings measured on the learner's machine);
- ``between=(lo, hi)`` — ``lo <= answer <= hi``;
- ``test=fn`` — ``fn(value)`` returns True, False or a message saying what is wrong (or raises AssertionError).

Grading (``labkit grade``): the restored check cells in the learner's sandboxed kernel get ``exporting_labkit``,
whose ``check`` only writes the answer's value as data; the oracle (``expected=`` and friends) is computed by
``oracle_labkit`` in a reference run of the solution that no learner code touches, and ``judge`` compares the
two in the grader's own process. Nothing the kernel does can score a point it did not answer; see GRADING.md.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field

_NO = object()   # "argument not given"


@dataclass(frozen=True)
class CheckResult:
    """What one ``lk.check`` found: the question, whether it passed, the points and a message."""

    question: str
    passed: bool
    points: float
    max_points: float
    message: str
    hint: str = ""
    _shown: list = field(default_factory=list, repr=False, compare=False)

    def text(self) -> str:
        mark = "✔" if self.passed else "✘"
        line = f"{mark} {self.question} — {_num(self.points)}/{_num(self.max_points)} points: {self.message}"
        if not self.passed and self.hint:
            line += f"\n  Hint: {self.hint}"
        return line

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        color = "#1a7f37" if self.passed else "#cf222e"
        mark = "✔" if self.passed else "✘"
        hint = (f"<div style='margin-left:1.6em'><i>Hint:</i> {html.escape(self.hint)}</div>"
                if self.hint and not self.passed else "")
        return (f"<div style='font-family:sans-serif;padding:2px 0'>"
                f"<span style='color:{color};font-weight:bold'>{mark} {html.escape(self.question)}</span>"
                f" — {_num(self.points)}/{_num(self.max_points)} points: {html.escape(self.message)}{hint}</div>")

    def _ipython_display_(self):
        # check() has already displayed this result; showing it again as the cell's Out[] would duplicate it.
        if self._shown:
            self._shown.clear()
            return
        _show(self)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# ---------------------------------------------------------------- turning values into plain Python
def _plain(value, depth=0):
    """Plain Python copy of `value`: exact int/float/bool/str/complex, lists, dicts. Arrays and tensors go
    through ``.tolist()``; subclasses are copied to their exact base type (so a custom ``__eq__`` can't lie)."""
    if depth > 50:
        raise TypeError("the value is nested too deeply")
    if value is None or type(value) in (bool, int, float, str, complex):
        return value
    mod = type(value).__module__ or ""
    if mod.startswith("torch") and hasattr(value, "detach"):
        return _plain(value.detach().cpu().tolist(), depth + 1)
    if mod.startswith("numpy") and hasattr(value, "tolist"):
        return _plain(value.tolist(), depth + 1)
    if isinstance(value, bool):
        return bool.__bool__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in list.__iter__(list(value))]
    if isinstance(value, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in dict.items(value)}
    raise TypeError(f"a value of type {type(value).__name__} cannot be checked here")


def _is_num(x) -> bool:
    return type(x) in (int, float)


def _compare(got, want, rtol: float, atol: float, path: str = "") -> str | None:
    """None when `got` matches `want`; else a short reason that does not reveal `want`."""
    where = f" at {path}" if path else ""
    if isinstance(want, list):
        if not isinstance(got, list):
            return f"expected a sequence{where}, got a {type(got).__name__}"
        if len(got) != len(want):
            return f"expected {len(want)} elements{where}, got {len(got)}"
        for i, (g, w) in enumerate(zip(got, want)):
            reason = _compare(g, w, rtol, atol, f"{path}[{i}]")
            if reason:
                return reason
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return f"expected a dict{where}, got a {type(got).__name__}"
        if set(got) != set(want):
            return f"the keys{where} are not the expected ones"
        for k in want:
            reason = _compare(got[k], want[k], rtol, atol, f"{path}[{k!r}]")
            if reason:
                return reason
        return None
    if type(want) is bool or type(got) is bool:
        return None if type(got) is type(want) and got == want else f"not the right answer{where}"
    if _is_num(want):
        if not _is_num(got):
            return f"expected a number{where}, got a {type(got).__name__}"
        if math.isnan(got):
            return f"the value{where} is NaN"
        if type(want) is int and rtol == 0 and atol == 0:
            return None if got == want else f"not the right count{where} (exact answer expected)"
        if math.isinf(want) or math.isinf(got):   # "never" (inf) matches only the same infinity
            return None if got == want else f"not the right answer{where}"
        if abs(got - want) > atol + rtol * abs(want):
            return f"not within tolerance{where} (rtol={rtol:g}, atol={atol:g})"
        return None
    return None if got == want and type(got) is type(want) else f"not the right answer{where}"


# ---------------------------------------------------------------- the check itself
def _evaluate(answer):
    """(value, None) or (None, message) — calling a thunk, with every learner error turned into words."""
    if not callable(answer):
        return answer, None
    try:
        return answer(), None
    except NameError as err:
        name = getattr(err, "name", None) or str(err)
        return None, (f"{name!r} is not defined yet: run the answer cell above (and replace its "
                      "`raise NotImplementedError`)")
    except NotImplementedError:
        return None, "not done yet: replace the `raise NotImplementedError` in the answer cell with your code"
    except Exception as err:  # the learner's code: report, never a traceback
        return None, f"your code raised {type(err).__name__}: {str(err)[:200]}"


def _judge(value, expected, rtol, atol, ratio, between, test) -> str | None:
    """None if `value` passes; otherwise the reason (never containing the expected answer)."""
    if test is not None:
        try:
            verdict = test(value)
        except AssertionError as err:
            return str(err) or "not the right answer"
        except Exception as err:
            return f"testing your answer raised {type(err).__name__}: {str(err)[:200]}"
        # numpy's bool is numpy.bool_ (numpy 1) or numpy.bool (numpy 2); its .item() is a real bool
        if verdict is True or (type(verdict).__module__ == "numpy" and type(verdict).__name__ in ("bool_", "bool")
                               and verdict.item() is True):
            return None
        return verdict if isinstance(verdict, str) and verdict else "not the right answer"
    try:
        got = _plain(value)
    except TypeError as err:
        return str(err)
    if between is not None:
        lo, hi = between
        if not _is_num(got):
            return f"expected a number, got a {type(got).__name__}"
        return None if lo <= got <= hi else "not in the expected range"
    want = _plain(expected)
    if ratio is not None:
        lo, hi = ratio
        if not _is_num(got):
            return f"expected a number, got a {type(got).__name__}"
        if math.isnan(got):
            return "the value is NaN"
        return None if want and lo <= got / want <= hi else f"off by more than a factor in [{lo:g}, {hi:g}]"
    exact = type(want) in (int, bool, str) or (isinstance(want, (list, dict)) and not _has_float(want))
    if rtol is None:
        rtol = 0.0 if exact and atol is None else 1e-6
    return _compare(got, want, float(rtol), float(atol or 0.0))


def _has_float(x) -> bool:
    if isinstance(x, list):
        return any(_has_float(v) for v in x)
    if isinstance(x, dict):
        return any(_has_float(v) for v in x.values())
    return type(x) is float


def _validate(question, expected, points, ratio, between, test):
    if not isinstance(question, str) or not question[:2].isdigit() or question[2:3] != ".":
        raise ValueError(f"question id must look like '00.q1' (lab, dot, name), got {question!r}.")
    modes = [m for m, on in (("expected", expected is not _NO and ratio is None), ("ratio", ratio is not None),
                             ("between", between is not None), ("test", test is not None)) if on]
    if len(modes) != 1:
        raise ValueError(f"lk.check({question!r}) needs exactly one of expected=, expected= with ratio=, "
                         f"between= or test=; got {modes or 'none'}.")
    if ratio is not None and expected is _NO:
        raise ValueError(f"lk.check({question!r}): ratio= compares with expected=; give both.")
    for name, pair in (("ratio", ratio), ("between", between)):
        if pair is not None and (len(pair) != 2 or not pair[0] <= pair[1]):
            raise ValueError(f"lk.check({question!r}): {name}= must be (low, high) with low <= high.")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
        raise ValueError(f"lk.check({question!r}): points must be a number >= 0, got {points!r}.")


def _show(result: CheckResult) -> None:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:
        shell = None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from IPython.display import display

        # one output with both forms: HTML in JupyterLab, the same words as text elsewhere (and for nbval)
        display({"text/html": result._repr_html_(), "text/plain": result.text()}, raw=True,
                metadata={"labkit": {"question": result.question}})
    else:
        print(result.text())


def _check(question, answer, expected=_NO, *, points=1, rtol=None, atol=None, ratio=None, between=None,
           test=None, hint="") -> CheckResult:
    _validate(question, expected, points, ratio, between, test)
    value, problem = _evaluate(answer)
    if problem is None:
        problem = _judge(value, None if expected is _NO else expected, rtol, atol, ratio, between, test)
    passed = problem is None
    result = CheckResult(question, passed, float(points) if passed else 0.0, float(points),
                         "correct" if passed else problem, hint)
    _show(result)
    result._shown.append(True)
    return result


def check(question: str, answer, expected=_NO, *, points: float = 1, rtol: float | None = None,
          atol: float | None = None, ratio=None, between=None, test=None, hint: str = "") -> CheckResult:
    """Check a learner's answer and print ✔ or ✘ with the points and, on failure, a hint (lab 00).

    `answer` is a thunk (``lambda: answer``) or a value. Never raises for a wrong, missing or unfinished
    answer, and never shows the expected value. Returns a frozen CheckResult.

    >>> r = check("00.q1", lambda: sum(range(10)), expected=45, points=2)
    ✔ 00.q1 — 2/2 points: correct
    >>> r.passed, r.points
    (True, 2.0)
    """
    return _check(question, answer, expected, points=points, rtol=rtol, atol=atol, ratio=ratio,
                  between=between, test=test, hint=hint)


# ---------------------------------------------------------------- grading: answers out as data, oracles elsewhere
def encode(value):
    """A plain value (from ``_plain``) as JSON-ready data that keeps its types: dict keys, complex, NaN/inf.

    >>> decode(json.loads(json.dumps(encode({8: [1.5, float("inf")], "k": 1j}))))
    {8: [1.5, inf], 'k': 1j}
    """
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if type(value) is complex:
        return {"complex": [value.real, value.imag]}
    if type(value) is float and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def decode(data):
    """The inverse of ``encode``; TypeError for anything ``encode`` cannot have written."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict):
        if set(data) == {"dict"}:
            return {_key(decode(k)): decode(v) for k, v in data["dict"]}
        if set(data) == {"complex"}:
            return complex(*data["complex"])
        if set(data) == {"float"} and data["float"] in ("nan", "inf", "-inf"):
            return float(data["float"])
        raise TypeError("not an encoded value")
    if data is None or type(data) in (bool, int, float, str):
        return data
    raise TypeError("not an encoded value")


def _key(k):
    return tuple(k) if isinstance(k, list) else k


def _append(path, line: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


class _GradingLabkit:
    """What ``lk`` means inside an instructor cell at grading time: the real labkit, except ``check``."""

    def __init__(self, check_fn, real):
        self.check = check_fn
        self._real = real

    def __getattr__(self, name):
        import importlib

        return getattr(self._real or importlib.import_module("labkit"), name)


def exporting_labkit(path: str, real=None) -> _GradingLabkit:
    """The ``lk`` of a restored check cell in the learner's kernel: ``check(question, answer)`` only writes the
    answer's value as data to `path` (the grader judges it in its own process; no oracle is ever here)."""

    def export(question, answer=None, expected=_NO, **kwargs):
        value, problem = _evaluate(answer)
        unanswered = problem
        line = {"question": str(question)}
        if problem is None:
            try:
                line["value"] = encode(_plain(value))
            except TypeError as err:
                problem = str(err)
        if problem is not None:
            line["error"] = problem
        _append(path, line)
        if kwargs.get("test") is not None:     # a kernel-judged test= check (lab metadata kernel_oracles)
            verdict = unanswered if unanswered is not None else _judge(
                value, expected, kwargs.get("rtol"), kwargs.get("atol"), kwargs.get("ratio"), kwargs.get("between"),
                kwargs["test"])
            _append(path, {"question": str(question), "kernel_verdict": "" if verdict is None else str(verdict)})
        elif expected is not _NO or kwargs.get("between") is not None:   # a kernel oracle (see GRADING.md)
            try:
                _append(path, {"question": str(question), "kernel_expected": encode(_plain(
                    None if expected is _NO else expected))})
            except TypeError:
                pass
        print(f"{question}: answer recorded for grading")

    return _GradingLabkit(export, real)


def oracle_labkit(path: str, answers_file: str | None = None, real=None) -> _GradingLabkit:
    """The ``lk`` of a check cell in the grader's reference run of the solution (instructor code only): it
    writes each question's oracle as data to `path`; a ``test=`` check also judges every submission's answer in
    `answers_file` (JSON: submission key -> question -> value as a learner's kernel exported it) and writes one
    verdict line per submission, after the oracle line."""
    answers = {}
    if answers_file:
        with open(answers_file, encoding="utf-8") as f:
            answers = json.load(f)

    def oracle(question, answer, expected=_NO, *, points=1, rtol=None, atol=None, ratio=None, between=None,
               test=None, hint=""):
        _validate(question, expected, points, ratio, between, test)
        want = None if expected is _NO else expected
        line = {"question": question}
        if test is not None:
            line["mode"] = "test"
        else:
            line.update(expected=encode(_plain(want)), rtol=rtol, atol=atol,
                        ratio=list(ratio) if ratio is not None else None,
                        between=list(between) if between is not None else None)
        value, problem = _evaluate(answer)
        line["solution_passes"] = (problem or _judge(value, want, rtol, atol, ratio, between, test)) is None
        _append(path, line)
        for key, given in answers.items() if test is not None else ():
            if question in given:
                try:
                    verdict = _judge(decode(given[question]), None, rtol, atol, ratio, between, test)
                except (TypeError, ValueError, KeyError) as err:
                    verdict = f"the exported answer could not be read ({type(err).__name__})"
                _append(path, {"question": question, "for": key, "verdict": verdict})

    return _GradingLabkit(oracle, real)


def judge(oracle: dict, value) -> str | None:
    """None when the decoded learner `value` passes the data `oracle` (a line of oracle_labkit); else why."""
    return _judge(value, decode(oracle["expected"]), oracle.get("rtol"), oracle.get("atol"),
                  tuple(oracle["ratio"]) if oracle.get("ratio") is not None else None,
                  tuple(oracle["between"]) if oracle.get("between") is not None else None, None)
