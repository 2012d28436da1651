"""lk.check's comparison, at its edges: every grade depends on it, so each rule has a test that a one-line change
to the rule fails (these are the tests `make mutate` runs against labkit/grade/check.py; keep them fast).

The oracles do not restate the code's formula: each case is *built* on one side of the documented boundary
(an offset of k times the tolerance, with k < 1 or k > 1; a value at, inside or just outside a range; a
container with one element or key added, removed or changed), so the right verdict is known by construction.
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labkit as lk


def passes(answer, expected=None, **kw) -> bool:
    """lk.check's verdict, its ✔/✘ line swallowed (hypothesis reruns a test many times)."""
    if expected is not None:
        kw["expected"] = expected
    with contextlib.redirect_stdout(io.StringIO()):
        r = lk.check("00.q1", lambda: answer, **kw)
    assert r.points == (r.max_points if r.passed else 0.0)
    return r.passed


# magnitudes from tiny to huge, both signs; never 0 (a relative tolerance of 0 is an exact match)
magnitudes = st.floats(1e-200, 1e200, allow_nan=False, allow_infinity=False)
signed = st.builds(lambda m, neg: -m if neg else m, magnitudes, st.booleans())
inside = st.sampled_from([0.0, 0.25, 0.5, 0.9, 0.99])        # fraction of the allowed distance
outside = st.sampled_from([1.01, 1.1, 2.0, 10.0, 1e3])


# ---------------------------------------------------------------- floats: tolerance relative to the expected value
@settings(max_examples=150, deadline=None)
@given(signed, st.sampled_from([1e-6, 1e-4, 1e-2, 0.3]), inside, st.booleans())
def test_a_float_within_rtol_of_the_expected_value_passes(want, rtol, k, up):
    got = want + (1 if up else -1) * k * rtol * abs(want)
    assert passes(got, want, rtol=rtol)


@settings(max_examples=150, deadline=None)
@given(signed, st.sampled_from([1e-6, 1e-4, 1e-2, 0.3]), outside, st.booleans())
def test_a_float_beyond_rtol_of_the_expected_value_fails(want, rtol, k, up):
    got = want + (1 if up else -1) * k * rtol * abs(want)
    assert not passes(got, want, rtol=rtol)


@settings(max_examples=100, deadline=None)
@given(signed, inside, outside, st.booleans())
def test_the_default_tolerance_is_one_part_per_million(want, k_in, k_out, up):
    sign = 1 if up else -1
    assert passes(want + sign * k_in * 1e-6 * abs(want), want)
    assert not passes(want + sign * k_out * 1e-6 * abs(want), want)
    assert not passes(want * (1 + sign * 1e-4), want)       # well inside 1e-3, far outside 1e-6


def test_tolerance_is_relative_to_the_expected_value_not_to_the_answer():
    # |1.5 - 1| = 0.5: beyond 0.4 of the expected 1, within 0.4 of the answer 1.5 (0.6)
    assert not passes(1.5, 1.0, rtol=0.4)
    assert passes(1.0, 1.5, rtol=0.4)                        # 0.5 <= 0.4 * 1.5 = 0.6
    assert not passes(-1.5, -1.0, rtol=0.4)
    # an answer of 0 against 1 with rtol=1 is at the boundary (|0 - 1| = 1 * |1|); 1 against 0 is not
    assert passes(0.0, 1.0, rtol=1.0)
    assert not passes(1.0, 0.0, rtol=1.0)


@settings(max_examples=100, deadline=None)
@given(st.floats(1e-3, 1e3), inside, outside, st.booleans())
def test_atol_adds_an_absolute_allowance(atol, k_in, k_out, up):
    sign = 1 if up else -1
    assert passes(sign * k_in * atol, 0.0, atol=atol)
    assert not passes(sign * k_out * atol, 0.0, atol=atol)
    assert not passes(sign * k_out * atol, 0.0)              # default: no absolute allowance for 0


def test_the_boundary_itself_is_inside():
    assert passes(1.25, 1.0, rtol=0.25)                      # exactly representable: |1.25 - 1| == 0.25 * 1
    assert passes(0.75, 1.0, rtol=0.25)
    assert passes(0.5, 0.0, atol=0.5)


# ---------------------------------------------------------------- exact kinds: counts, bools, strings
@settings(max_examples=100, deadline=None)
@given(st.integers(-10**18, 10**18), st.integers(1, 10**6))
def test_an_int_expected_value_is_exact(want, delta):
    assert passes(want, want)
    assert not passes(want + delta, want)
    assert not passes(want - delta, want)


def test_a_bool_matches_only_the_same_bool():
    assert passes(True, True) and passes(False, False)
    for got, want in [(1, True), (0, False), (1.0, True), (True, 1), (False, 0), (True, 1.0), ("True", True),
                      (np.int64(1), True), (False, True), (True, False)]:
        assert not passes(got, want), (got, want)
    assert passes(np.bool_(True), True)                      # numpy's bool is a bool
    assert not passes([1, 0], [True, False])                 # inside containers too


def test_strings_are_exact():
    assert passes("edge", "edge")
    assert not passes("Edge", "edge") and not passes("edge ", "edge")


def test_a_number_where_a_string_was_expected_fails_and_vice_versa():
    assert not passes(45, "45") and not passes("45", 45) and not passes("45", 45.0)


# ---------------------------------------------------------------- containers: same shape, then element by element
int_lists = st.lists(st.integers(-1000, 1000), min_size=0, max_size=8)


@settings(max_examples=100, deadline=None)
@given(int_lists, st.integers(-1000, 1000))
def test_a_list_with_an_extra_or_a_missing_element_fails(want, extra):
    assert passes(list(want), want)
    assert passes(tuple(want), want)                          # a tuple is a sequence too
    assert not passes(want + [extra], want)                   # longer
    assert not passes([extra] + want, want)
    if want:
        assert not passes(want[:-1], want)                    # shorter
        assert not passes(want[1:], want)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=8), st.data())
def test_a_list_with_one_element_changed_fails_wherever_it_is(want, data):
    i = data.draw(st.integers(0, len(want) - 1))
    got = list(want)
    got[i] += data.draw(st.integers(1, 5))
    assert not passes(got, want)


def test_floats_in_lists_use_the_tolerance_element_by_element():
    want = [1.0, 2.0, 4.0]
    assert passes([1.0, 2.0 * (1 + 1e-7), 4.0], want)
    assert not passes([1.0, 2.0, 4.0 * (1 + 1e-4)], want)
    assert not passes([1.0, 2.0], want) and not passes([1.0, 2.0, 4.0, 8.0], want)
    assert not passes([[1.0, 2.0]], [[1.0, 2.0, 3.0]])       # nested: the inner length counts too
    assert not passes(np.ones((2, 3)), np.ones((3, 2)).tolist())
    assert not passes(1.0, [1.0]) and not passes([1.0], 1.0)


keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(keys, st.integers(-100, 100), max_size=5), keys, st.integers(-100, 100))
def test_a_dict_with_an_extra_or_a_missing_key_fails(want, key, value):
    assert passes(dict(want), want)
    if key not in want:
        assert not passes({**want, key: value}, want)         # extra key
    if want:
        k = next(iter(want))
        assert not passes({x: v for x, v in want.items() if x != k}, want)   # missing key
        assert not passes({**want, k: want[k] + 1}, want)                    # changed value
        if key not in want:                                  # same size, one key renamed
            renamed = {(key if x == k else x): v for x, v in want.items()}
            assert not passes(renamed, want)


def test_a_dict_is_compared_value_by_value():
    assert passes({"edge": 3, "cloud": 1.0}, {"cloud": 1.0 * (1 + 1e-8), "edge": 3})
    assert not passes({"edge": 3, "cloud": 1.1}, {"edge": 3, "cloud": 1.0})
    assert not passes({"edge": 4, "cloud": 1.0}, {"edge": 3, "cloud": 1.0})
    assert not passes([("edge", 3)], {"edge": 3})


# ---------------------------------------------------------------- between=(lo, hi): inclusive at both ends
@settings(max_examples=150, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(0, 1e6))
def test_between_includes_both_ends_and_nothing_outside(lo, width):
    hi = lo + width
    for x in (lo, hi, lo + width / 2):
        assert passes(x, between=(lo, hi)), (x, lo, hi)
    assert not passes(math.nextafter(lo, -math.inf), between=(lo, hi))
    assert not passes(math.nextafter(hi, math.inf), between=(lo, hi))


def test_between_takes_ints_and_rejects_non_numbers():
    assert passes(3, between=(3, 3))
    assert not passes(float("nan"), between=(0, 1))
    assert not passes("0.5", between=(0, 1)) and not passes([0.5], between=(0, 1))


# ---------------------------------------------------------------- ratio=(lo, hi): answer / expected
@settings(max_examples=150, deadline=None)
@given(signed.filter(lambda w: 1e-100 < abs(w) < 1e100), st.floats(0.01, 0.9), st.floats(1.1, 100.0),
       st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.5, 0.98, 1.02, 2.0]))
def test_ratio_is_answer_over_expected(want, lo, hi, t, outward):
    r_in = lo * (1 + 1e-9) + t * (hi * (1 - 1e-9) - lo * (1 + 1e-9))      # a ratio inside [lo, hi]
    assert passes(want * r_in, want, ratio=(lo, hi))
    r_out = lo * outward if outward < 1 else hi * outward                  # a ratio outside it
    assert not passes(want * r_out, want, ratio=(lo, hi))


def test_ratio_is_not_expected_over_answer():
    # answer 2.5x the expected passes (0.9, 3); the inverse 0.4 would not, and 0.5x fails though 2 would pass
    assert passes(2.5, 1.0, ratio=(0.9, 3.0))
    assert not passes(0.5, 1.0, ratio=(0.9, 3.0))
    assert passes(0.010, 0.010, ratio=(1.0, 1.0)) and passes(0.04, 0.01, ratio=(0.5, 4.0))


def test_ratio_against_zero_or_nan_fails():
    assert not passes(0.0, 0.0, ratio=(0.5, 2.0))
    assert not passes(float("nan"), 1.0, ratio=(0.5, 2.0))
    assert not passes("1", 1.0, ratio=(0.5, 2.0))


# ---------------------------------------------------------------- test=fn: only True (or numpy's True) passes
@pytest.mark.parametrize("verdict, ok", [(True, True), (np.bool_(True), True), (False, False), (1, False),
                                         ("", False), ("too small", False), (None, False),
                                         (np.bool_(False), False), ([True], False)])
def test_a_test_function_passes_only_on_true(verdict, ok):
    assert passes(0, test=lambda v: verdict) is ok


def test_a_test_function_message_and_assertion_are_the_feedback():
    with contextlib.redirect_stdout(io.StringIO()):
        r = lk.check("00.q1", 3, test=lambda v: "too small")
        assert r.message == "too small"
        r = lk.check("00.q1", 3, test=lambda v: False)
        assert not r.passed and r.message
        def strict(v):
            assert v > 5, "should exceed 5"
        r = lk.check("00.q1", 3, test=strict)
        assert not r.passed and r.message.startswith("should exceed 5")
        assert lk.check("00.q1", 9, test=strict).passed is False     # returns None, not True


# ---------------------------------------------------------------- special floats
def test_nan_never_passes_and_infinities_match_only_themselves():
    nan, inf = float("nan"), math.inf
    assert not passes(nan, 1.0) and not passes(nan, nan) and not passes(nan, 1.0, rtol=1e9)
    assert passes(inf, inf) and passes(-inf, -inf)
    assert not passes(inf, -inf) and not passes(1e308, inf, rtol=1.0) and not passes(inf, 1e308, rtol=1e9)
    assert not passes(nan, 1, rtol=0, atol=0)                    # even against an exact int


# ---------------------------------------------------------------- the feedback words: where and what, never the answer
def message(answer, expected=None, **kw) -> str:
    if expected is not None:
        kw["expected"] = expected
    with contextlib.redirect_stdout(io.StringIO()):
        r = lk.check("00.q1", lambda: answer, **kw)
    assert not r.passed
    return r.message


@pytest.mark.parametrize("answer, expected, kw, words", [
    (3.0, [3.0], {}, "expected a sequence, got a float"),
    ("x", {"a": 1}, {}, "expected a dict, got a str"),
    ("1", 1.0, {}, "expected a number, got a str"),
    ([1, [2, 3]], [1, [2, 4]], {}, "not the right count at [1][1] (exact answer expected)"),
    ([1, [2, "x"]], [1, [2, 4.0]], {}, "expected a number at [1][1], got a str"),
    ([1, [2]], [1, 2], {}, "expected a number at [1], got a list"),
    ([[1], 2], [[1, 1], 2], {}, "expected 2 elements at [0], got 1"),
    ({"a": {"b": 1.5}}, {"a": {"b": 1.0}}, {}, "not within tolerance at ['a']['b'] (rtol=1e-06, atol=0)"),
    ({"a": [1]}, {"a": {"b": 1}}, {}, "expected a dict at ['a'], got a list"),
    ({"a": {"c": 1}}, {"a": {"b": 1}}, {}, "the keys at ['a'] are not the expected ones"),
    (44, 45, {}, "not the right count (exact answer expected)"),
    (1.5, 1.0, {"rtol": 0.1, "atol": 0.2}, "not within tolerance (rtol=0.1, atol=0.2)"),
    (True, 1, {}, "not the right answer"),
    (1, True, {}, "not the right answer"),
    ([0, True], [0, 1], {}, "not the right answer at [1]"),
    ("b", "a", {}, "not the right answer"),
    (float("nan"), [1.0], {}, "expected a sequence, got a float"),
    ([float("nan")], [1.0], {}, "the value at [0] is NaN"),
    ("0.5", None, {"between": (0, 1)}, "expected a number, got a str"),
    (2, None, {"between": (0, 1)}, "not in the expected range"),
    ("0.5", 1.0, {"ratio": (0.5, 2)}, "expected a number, got a str"),
    (float("nan"), 1.0, {"ratio": (0.5, 2)}, "the value is NaN"),
    (9.0, 1.0, {"ratio": (0.5, 2)}, "off by more than a factor in [0.5, 2]"),
])
def test_the_message_says_where_and_what(answer, expected, kw, words):
    assert message(answer, expected, **kw) == words


def test_an_int_expected_value_takes_a_tolerance_when_one_is_given():
    assert passes(46, 45, atol=1) and passes(45.3, 45, rtol=0.01)
    assert not passes(47, 45, atol=1) and not passes(46, 45, rtol=0.01)


def test_test_function_feedback_words():
    def silent(v):
        raise AssertionError      # a bare assert, as a notebook sees it (pytest would add words to it)

    def boom(v):
        raise ValueError("x" * 300)

    assert message(3, test=silent) == "not the right answer"
    assert message(3, test=boom) == "testing your answer raised ValueError: " + "x" * 200
    for verdict in (1, [True], 0, None, ""):
        assert message(3, test=lambda v, verdict=verdict: verdict) == "not the right answer"


def test_numpy_1_bool_true_from_a_test_function_passes_too():
    # numpy < 2 named its bool type "bool_"; a stand-in with that module and name
    old_bool = type("bool_", (), {"__module__": "numpy", "item": lambda self: True})
    assert passes(0, test=lambda v: old_bool())
    not_numpy = type("bool_", (), {"__module__": "notnumpy", "item": lambda self: True})
    assert not passes(0, test=lambda v: not_numpy())
