"""`labkit build`: student versions from solutions, deterministic, --check for staleness, clear source errors."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from labkit.cli import main
from labkit.grade.build import BuildError, build, scaffold
from labkit.grade.notebook import checksum

FIXTURE = Path(__file__).parent / "fixtures" / "grading" / "solutions"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def built(tmp_path):
    labs = tmp_path / "labs"
    assert main(["build", "--solutions", str(FIXTURE), "--labs", str(labs)]) == 0
    return labs


def test_student_version_has_scaffolds_not_solutions(built):
    solution = nbformat.read(FIXTURE / "90_fixture.ipynb", as_version=4)
    student = nbformat.read(built / "90_fixture.ipynb", as_version=4)
    text = nbformat.writes(student)
    # every solution line is gone; the hints became TODOs
    # every solution line is gone, hints too (they are the lk.hint ladder); the goals became TODOs
    for cell in solution.cells:
        if "### BEGIN SOLUTION" in cell.source:
            body = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in body.splitlines():
                if line.strip() and "### GOAL" not in line:
                    assert line.strip() not in "".join(c.source for c in student.cells), line
    answer = next(c for c in student.cells if c.id == "q1-answer")
    assert answer.source == ('# TODO: `total` is the sum of the integers 0..9\n'
                             '# (stuck? lk.hint("90.q1") shows a hint)\nraise NotImplementedError')
    # the hints live in the metadata, as an ordered ladder per question (the first check after the answer)
    assert student.metadata["labkit"]["hints"] == {"90.q1": ["the built-in sum() over range(10)"],
                                                  "90.q2": ["numpy multiplies element-wise"],
                                                  "90.q3": ["data.max() and data.min()"]}
    assert next(c for c in student.cells if c.id == "q2-answer").source.endswith("    raise NotImplementedError")
    # hidden cells removed, other ids kept, points cell added at the top (after the title)
    hidden = {c.id for c in solution.cells if "hidden" in c.metadata.get("tags", [])}
    assert [c.id for c in student.cells] == (
        [solution.cells[0].id, "labkit-points"] + [c.id for c in solution.cells[1:] if c.id not in hidden])
    assert "90.q2h" not in text
    assert "Points: 7 in total" in student.cells[1].source
    # outputs cleared, check cells locked and checksummed
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    checks = [c for c in student.cells if c.metadata.get("labkit", {}).get("role") == "check"]
    assert [c.id for c in checks] == ["q1-check", "q2-check", "q3-check"]
    for c in checks:
        assert c.metadata["labkit"]["checksum"] == checksum(c.source)
        assert c.metadata["editable"] is False
    assert student.metadata["labkit"]["lab"] == "90" and student.metadata["labkit"]["points"] == 7
    assert "widgets" not in student.metadata
    nbformat.validate(student)


def test_build_is_deterministic_and_check_detects_staleness(tmp_path, built, capsys):
    first = (built / "90_fixture.ipynb").read_bytes()
    assert build(FIXTURE, built).written == ()
    assert (built / "90_fixture.ipynb").read_bytes() == first
    assert main(["build", "--check", "--solutions", str(FIXTURE), "--labs", str(built)]) == 0
    # edit a copy of the solution: labs/ is now stale, and --check names the file
    sols = tmp_path / "solutions"
    shutil.copytree(FIXTURE, sols)
    nb = nbformat.read(sols / "90_fixture.ipynb", as_version=4)
    nb.cells[0].source += "\nOne more line."
    nbformat.write(nb, sols / "90_fixture.ipynb")
    capsys.readouterr()
    assert main(["build", "--check", "--solutions", str(sols), "--labs", str(built)]) == 1
    assert "90_fixture.ipynb" in capsys.readouterr().err
    assert (built / "90_fixture.ipynb").read_bytes() == first          # --check writes nothing
    (built / "91_orphan.ipynb").write_bytes(first)
    assert main(["build", "--check", "--solutions", str(FIXTURE), "--labs", str(built)]) == 1
    assert "91_orphan.ipynb" in capsys.readouterr().err


def test_repository_labs_are_up_to_date():
    """The repo's own labs/ must match solutions/ (run `labkit build` after editing a solution)."""
    assert main(["build", "--check", "--solutions", str(REPO / "solutions"), "--labs", str(REPO / "labs")]) == 0


def _broken(tmp_path, edit) -> str:
    nb = nbformat.read(FIXTURE / "90_fixture.ipynb", as_version=4)
    edit(nb)
    sols = tmp_path / "solutions"
    sols.mkdir(exist_ok=True)
    # json, not nbformat.write: nbformat would quietly repair duplicated ids
    (sols / "90_fixture.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    with pytest.raises(BuildError) as err:
        build(sols, tmp_path / "labs")
    return str(err.value)


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.id == cell_id)


def test_check_id_used_twice_is_a_build_error(tmp_path):
    msg = _broken(tmp_path, lambda nb: setattr(_cell(nb, "q3-check"), "source",
                                               'lk.check("90.q1", lambda: spread, between=(8, 10))'))
    assert "90_fixture.ipynb" in msg and "'q3-check'" in msg and "used twice" in msg


def test_begin_without_end_is_a_build_error(tmp_path):
    msg = _broken(tmp_path, lambda nb: setattr(_cell(nb, "q1-answer"), "source",
                                               "### BEGIN SOLUTION\ntotal = 45"))
    assert "'q1-answer'" in msg and "has no ### END SOLUTION" in msg


def test_solution_cell_without_check_is_a_build_error(tmp_path):
    def drop(nb):
        nb.cells = [c for c in nb.cells if c.id != "q3-check"]

    msg = _broken(tmp_path, drop)
    assert "'q3-answer'" in msg and "no check cell after it" in msg


def test_wrong_lab_prefix_duplicated_and_missing_ids_are_build_errors(tmp_path):
    msg = _broken(tmp_path, lambda nb: setattr(_cell(nb, "q3-check"), "source",
                                               'lk.check("12.q3", lambda: spread, between=(8, 10))'))
    assert "'12.q3' does not start with this lab's number '90.'" in msg
    msg = _broken(tmp_path, lambda nb: nb.cells.append(copy.deepcopy(nb.cells[0])))
    assert "'title'" in msg and "ids must be unique" in msg

    def no_ids(nb):
        nb.nbformat_minor = 4
        for c in nb.cells:
            del c["id"]
    assert "has no id" in _broken(tmp_path, no_ids)


def test_scaffold_keeps_indentation_and_multiple_hints():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    ### HINT: square it\n    ### HINT: then add one\n" \
          "    return x * x + 1\n    ### END SOLUTION\n"
    assert scaffold(src) == ("def f(x):\n    # TODO: write your solution here (the question above says what)\n"
                             "    raise NotImplementedError")
    src = src.replace("### HINT: square it", "### GOAL: f(x) is one more than x squared")
    assert scaffold(src, question="00.q1") == (
        "def f(x):\n    # TODO: f(x) is one more than x squared\n"
        "    # (stuck? lk.hint(\"00.q1\") shows a hint)\n    raise NotImplementedError")
