"""lk.check: ✔/✘ with points, never a traceback, never the expected answer; tolerances; grading-mode log."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

import labkit as lk
from labkit.grade.check import decode, exporting_labkit, judge, oracle_labkit


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


def test_grading_exports_data_and_judges_outside(tmp_path, monkeypatch, capsys):
    # the learner's kernel writes only values; the oracle comes from the reference run; judge() compares
    monkeypatch.setenv("LABKIT_GRADE_LOG", str(tmp_path / "old.jsonl"))     # the old log: nothing reads it
    lk.check("00.q1", lambda: 45, expected=45, points=2)
    assert not (tmp_path / "old.jsonl").exists()
    answers, oracles = tmp_path / "a.jsonl", tmp_path / "o.jsonl"
    exp = exporting_labkit(str(answers))
    exp.check("00.q1", lambda: np.float64(2.0) * 22.5, expected=45, points=2)
    exp.check("00.q2", lambda: {8: (1, 2.5), 4: [float("inf")]})
    exp.check("00.q3", lambda: undefined_name)  # noqa: F821
    ora = oracle_labkit(str(oracles))
    ora.check("00.q1", lambda: 45, expected=45, points=2)
    ora.check("00.q2", lambda: None, expected={8: [1, 2.5], 4: [float("inf")]})
    ora.check("00.q3", lambda: 3, between=(2, 4))
    lines = [json.loads(x) for x in answers.read_text().splitlines()]
    got = {x["question"]: x for x in lines if "kernel_expected" not in x}
    # expected= reaches the exporter only for a declared kernel oracle (the runner strips it otherwise)
    assert [x["question"] for x in lines if "kernel_expected" in x] == ["00.q1"]
    want = {x["question"]: x for x in map(json.loads, oracles.read_text().splitlines())}
    assert judge(want["00.q1"], decode(got["00.q1"]["value"])) is None
    assert judge(want["00.q2"], decode(got["00.q2"]["value"])) is None
    assert judge(want["00.q2"], {"8": [1, 2.5], "4": [float("inf")]}) is not None   # str keys are not int keys
    assert "error" in got["00.q3"] and "undefined_name" in got["00.q3"]["error"]
    assert judge(want["00.q3"], 3.5) is None and judge(want["00.q3"], 5) is not None
    assert [want[q]["solution_passes"] for q in ("00.q1", "00.q2", "00.q3")] == [True, False, True]
    assert judge(want["00.q1"], 44) is not None and judge(want["00.q1"], True) is not None
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


def test_a_numpy_true_from_a_test_function_passes_and_a_numpy_false_fails(capsys):
    np = pytest.importorskip("numpy")
    assert lk.check("00.q1", lambda: 3, test=lambda v: np.bool_(v == 3)).passed
    assert lk.check("00.q1", lambda: 3, test=lambda v: np.bool_(v == 4)).passed is False
    assert lk.check("00.q1", lambda: 3, test=lambda v: np.array([v == 3]).all()).passed
    _out(capsys)


def test_kernel_oracles_are_used_only_when_declared_and_plausible():
    from types import SimpleNamespace as NS

    from labkit.grade.oracle import judge_run
    from labkit.grade.runner import RunResult

    ref = {"question": "04.q7", "expected": [0.010, True], "rtol": None, "atol": None, "ratio": None,
           "between": None}
    def run(*lines):
        return RunResult(lines, (), None, 1.0, 0.0, "")
    mine = run({"question": "04.q7", "value": [0.012, True]}, {"question": "04.q7", "kernel_expected": [0.012, True]})
    declared, undeclared = NS(questions={"04.q7": {}}, kernel_oracles=("04.q7",)), NS(questions={"04.q7": {}})
    assert judge_run(mine, declared, {"04.q7": ref}).checks[0]["passed"]            # its own measurement
    assert not judge_run(mine, undeclared, {"04.q7": ref}).checks[0]["passed"]      # not declared: reference
    forged = run({"question": "04.q7", "value": [5.0, True]}, {"question": "04.q7", "kernel_expected": [5.0, True]})
    assert not judge_run(forged, declared, {"04.q7": ref}).checks[0]["passed"]      # 500x off: implausible
