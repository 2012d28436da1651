"""lk.check: ✔/✘ with points, never a traceback, never the expected answer; tolerances; grading-mode log."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

import labkit as lk
from labkit.grade.check import grading_labkit


def _out(capsys) -> str:
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return out.out


def test_exact_count_passes_and_fails_without_revealing_the_answer(capsys):
    r = lk.check("00.q1", lambda: sum(range(10)), expected=45, points=2)
    assert (r.question, r.passed, r.points, r.max_points) == ("00.q1", True, 2.0, 2.0)
    assert "✔ 00.q1" in _out(capsys)
    r = lk.check("00.q1", lambda: 987654320, expected=987654321, points=2, hint="count again")
    assert (r.passed, r.points, r.max_points) == (False, 0.0, 2.0)
    text = _out(capsys)
    assert "✘ 00.q1" in text and "count again" in text and "987654321" not in text


def test_result_is_frozen():
    r = lk.check("00.q1", 3, expected=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.passed = False


@pytest.mark.parametrize("thunk, words", [
    (lambda: undefined_name, "'undefined_name' is not defined"),  # noqa: F821
    (lambda: (_ for _ in ()).throw(NotImplementedError()), "not done yet"),
    (lambda: 1 / 0, "ZeroDivisionError"),
    (lambda: "45", "expected a number"),
    (lambda: float("nan"), "NaN"),
    (lambda: object(), "cannot be checked"),
])
def test_learner_mistakes_are_a_cross_with_a_message(capsys, thunk, words):
    r = lk.check("00.q1", thunk, expected=45.0)
    assert not r.passed and words in r.message
    assert words in _out(capsys)


def test_relative_tolerance_for_arrays_and_exact_shapes(capsys):
    x = np.linspace(0, 1, 50)
    assert lk.check("00.q2", lambda: x * (1 + 1e-9), expected=x).passed
    assert not lk.check("00.q2", lambda: x * 1.01, expected=x).passed
    assert lk.check("00.q2", lambda: x * 1.01, expected=x, rtol=0.02).passed
    assert "expected 50 elements" in lk.check("00.q2", lambda: x[:-1], expected=x).message
    assert lk.check("00.q2", lambda: np.int64(7), expected=7).passed      # numpy scalars are numbers
    _out(capsys)


def test_ratio_for_timings_and_between_for_ranges(capsys):
    assert lk.check("00.q3", lambda: 0.012, expected=0.010, ratio=(0.5, 2.0)).passed
    assert not lk.check("00.q3", lambda: 0.030, expected=0.010, ratio=(0.5, 2.0)).passed
    assert lk.check("00.q4", lambda: 9.0, between=(8.5, 9.5)).passed
    assert not lk.check("00.q4", lambda: 10, between=(8.5, 9.5)).passed
    _out(capsys)


def test_custom_test_function(capsys):
    def is_sorted(v):
        return True if list(v) == sorted(v) else "the list is not sorted"

    assert lk.check("00.q5", lambda: [1, 2, 3], test=is_sorted).passed
    r = lk.check("00.q5", lambda: [3, 1], test=is_sorted)
    assert not r.passed and r.message == "the list is not sorted"
    _out(capsys)


def test_an_object_that_claims_equality_does_not_pass(capsys):
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class Anything:
        def __eq__(self, other):
            return True

    assert not lk.check("00.q1", lambda: Liar(0), expected=45).passed
    assert not lk.check("00.q1", lambda: Anything(), expected=45).passed
    _out(capsys)


def test_author_mistakes_raise_value_error():
    with pytest.raises(ValueError, match="exactly one of"):
        lk.check("00.q1", 1, expected=1, between=(0, 2))
    with pytest.raises(ValueError, match="question id"):
        lk.check("q1", 1, expected=1)
    with pytest.raises(ValueError, match="low <= high"):
        lk.check("00.q1", 1, between=(2, 0))


def test_html_rendering_escapes_and_marks():
    r = lk.check("00.q1", lambda: 1, expected=2, hint="<b>sum</b>")
    html = r._repr_html_()
    assert "✘" in html and "&lt;b&gt;sum&lt;/b&gt;" in html and "<b>sum</b>" not in html


def test_grading_log_lines(tmp_path, monkeypatch, capsys):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("LABKIT_GRADE_LOG", str(log))
    lk.check("00.q1", lambda: 45, expected=45, points=2)
    grading_labkit("secret", str(log)).check("00.q2", lambda: 1, expected=2, points=3)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["question"], x["passed"], x["points"], x["max_points"], x["token"]) for x in lines] == [
        ("00.q1", True, 2.0, 2.0, None), ("00.q2", False, 0.0, 3.0, "secret")]
    _out(capsys)


def test_lk_check_works_after_the_module_is_imported(capsys):
    # `import labkit.grade.check` makes the package attribute lk.check the module; it must still be callable
    import importlib

    import labkit

    importlib.import_module("labkit.grade.check")
    assert labkit.check("00.q1", lambda: 2, expected=2).passed
    assert lk.check("00.q1", lambda: 3, expected=2).passed is False
    _out(capsys)


def test_infinity_matches_only_the_same_infinity(capsys):
    # "never pays off" is math.inf: an infinite answer passes against the same infinity, and only that
    assert lk.check("00.q9", math.inf, expected=math.inf).passed
    assert lk.check("00.q9", [1.0, math.inf], expected=[1.0, math.inf]).passed
    assert not lk.check("00.q9", -math.inf, expected=math.inf).passed
    assert not lk.check("00.q9", 1e308, expected=math.inf).passed
    assert not lk.check("00.q9", math.inf, expected=5.0).passed
    _out(capsys)
