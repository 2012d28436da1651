"""The authoring contract (docs/AUTHORING.md): student notebooks never hand out an answer; hints are on request
and recorded; exact answers are checked visibly by salted digest. The rule runs over every real lab."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

import labkit as lk
from labkit.grade.build import build
from labkit.grade.digest import digest
from labkit.grade.hints import hints_used
from labkit.grade.leaks import leaks

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "grading" / "solutions"
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name[:2])
def test_no_lab_hands_out_an_answer(path):
    nb = nbformat.read(path, as_version=4)
    assert leaks(nb, path) == []
    # and the student version, as built, has no expected value anywhere (what a hook would grep for)
    student = (ROOT / "labs" / path.name).read_text(encoding="utf-8")
    assert "expected=" not in student.replace("\\n", "\n")
    assert "### HINT" not in student and "### BEGIN SOLUTION" not in student


def _nb(*sources, hidden=()):
    cells = [nbformat.v4.new_code_cell("import labkit as lk\nx = 3", id="setup")]
    for i, src in enumerate(sources):
        cell = nbformat.v4.new_code_cell(src, id=f"c{i}")
        if i in hidden:
            cell.metadata["tags"] = ["hidden"]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


@pytest.mark.parametrize("src, words", [
    ('lk.check("00.q1", lambda: x, expected=3)', "`expected=`"),
    ('lk.check("00.q1", lambda: x, 3)', "passes an expected value"),
    ('def _ok(v):\n    return v > 2\nlk.check("00.q1", lambda: x, test=_ok)', "defines '_ok'"),
    ('lk.check("00.q1", lambda: x, test=lambda v: v == 254)', "compares with a literal"),
    ('lk.check("00.q1", lambda: x, test=lambda v: v in ("h100-sxm", "a100"))', "compares with a literal"),
    ('lk.check("00.q1", lambda: x, between=(253.9, 254.1))', "so narrow"),
])
def test_each_leak_rule_fires(src, words):
    found = leaks(_nb(src), "00_x.ipynb")
    assert any(words in p and "'c0'" in p for p in found), found
    assert leaks(_nb(src, hidden=(0,)), "00_x.ipynb") == []      # the same cell, hidden: fine


def test_visible_oracle_helpers_are_found():
    given = nbformat.v4.new_code_cell("def _q4_expected():\n    return 3", id="helper")
    nb = _nb('lk.check("00.q1", lambda: x, test=lambda v: v > 0)')
    nb.cells.insert(1, given)
    assert any("named like an oracle" in p for p in leaks(nb, "00_x.ipynb"))
    given.source = "def ref(v):\n    return v * 2"
    nb.cells[-1].source = 'lk.check("00.q1", lambda: x, test=lambda v: v > 0 and ref(1) > 0)'
    assert any("calls ref()" in p for p in leaks(nb, "00_x.ipynb"))


def test_honest_visible_checks_pass_the_rule():
    ok = ['lk.check("00.q1", lambda: x, test=lambda v: v > 0 and len(str(v)) != 0)',
          'lk.check("00.q1", lambda: x, between=(0.5, 2.0))',
          f'lk.check("00.q1", lambda: x, test=lk.matches("{digest("00.q1", 3)}"))']
    for src in ok:
        assert leaks(_nb(src), "00_x.ipynb") == [], src


def test_digest_matches_exact_answers_only():
    d = digest("05.q4", [254, 2286])
    assert lk.matches(d)([254, 2286]) is True
    assert lk.matches(d)((254, 2286)) is True                 # a tuple is the same answer
    assert lk.matches(d)([254, 2285]) != True                  # noqa: E712
    assert lk.matches(digest("05.q5", [254, 2286]))([254, 2286]) is True   # salted by the question...
    assert digest("05.q5", [254, 2286]) != d                   # ...so the same value hashes differently
    f = digest("02.q1", 0.123456789, sig=4)
    assert lk.matches(f, sig=4)(0.1234567) is True and lk.matches(f, sig=4)(0.1236) != True  # noqa: E712

    class Liar(int):
        def __eq__(self, other):
            return True
        __hash__ = int.__hash__
    assert lk.matches(d)([Liar(1), Liar(2)]) != True           # noqa: E712
    with pytest.raises(ValueError, match="not a digest"):
        lk.matches("254")


def test_hint_reveals_the_ladder_one_rung_at_a_time(tmp_path, capsys):
    labs = tmp_path / "labs"
    build(FIXTURE, labs)
    path = labs / "90_fixture.ipynb"
    meta = json.loads(path.read_text())["metadata"]["labkit"]["hints"]
    assert meta["90.q1"] == ["the built-in sum() over range(10)"]
    # a longer ladder, written into a copy of the metadata
    data = json.loads(path.read_text())
    data["metadata"]["labkit"]["hints"]["90.q2"] = ["concept", "approach", "API"]
    path.write_text(json.dumps(data))
    from labkit.grade import hints as h
    h._revealed.pop("90.q2", None)
    levels = [lk.hint("90.q2", notebook=path) for _ in range(4)]
    assert [x.level for x in levels] == [1, 2, 3, 3] and levels[-1].of == 3
    assert levels[1].texts == ("concept", "approach")
    out = capsys.readouterr().out
    assert "Hint 2/3 for 90.q2: approach" in out and "last hint" in out
    with pytest.raises(ValueError, match="90.q2"):
        lk.hint("90.q22", notebook=path)                          # unknown id: near matches named
    with pytest.raises(ValueError, match="looks like"):
        lk.hint("q2", notebook=path)


def test_hints_used_reads_saved_outputs():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("lk.hint('05.q2')")])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "Hint 1/3"},
                                                  metadata={"labkit": {"hint": "05.q2", "level": n}})
                           for n in (1, 3, 2)]
    assert hints_used(json.loads(nbformat.writes(nb))) == {"05.q2": 3}
    assert hints_used({"cells": [{"cell_type": "code", "outputs": [{"metadata": {"labkit": {"hint": "x",
                                                                                           "level": True}}}]}]}) == {}


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name[:2])
def test_each_lab_has_a_prediction_a_decision_and_readable_blanks(path):
    nb = nbformat.read(path, as_version=4)
    heads = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Q")]
    assert any("Predict" in h for h in heads), heads
    assert any("Decide" in h or "decide" in h for h in heads), heads
    for cell in nb.cells:      # Markdown eats "___" (emphasis): blanks are [ ]
        if cell.cell_type == "markdown":
            assert "___" not in cell.source, cell.id
    # every question of the lab is scored by a hidden check or a visible one, and hints exist for the answers
    student = json.loads((ROOT / "labs" / path.name).read_text(encoding="utf-8"))
    assert student["metadata"]["labkit"]["hints"], "no hint ladders"


def test_a_numpy_true_from_a_test_function_passes():
    """numpy 2 names its bool type `bool` (numpy 1: `bool_`); a test= returning np.True_ is a pass."""
    np = pytest.importorskip("numpy")
    assert lk.check("00.q9", lambda: 3.0, test=lambda v: np.float64(v) > 0).passed
    assert not lk.check("00.q9", lambda: -3.0, test=lambda v: np.float64(v) > 0).passed
