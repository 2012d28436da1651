"""Every real lab, graded as an instructor would: its solution earns full marks, its untouched student version
zero — and the student version never crashes the grader. New labs in solutions/ are picked up automatically."""

import csv
import re
import shutil
from pathlib import Path

import pytest

from labkit.grade.batch import cli as grade_cli

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted(p.name.split("_")[0] for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
SYSTEMS = "07"      # labs 07 on: the systems layer of the syllabus (DESIGN.md section 3)


def test_there_are_labs():
    assert "00" in LABS


def _full_marks_and_zero(lab, tmp_path):
    (solution,) = (ROOT / "solutions").glob(f"{lab}_*.ipynb")
    student = ROOT / "labs" / solution.name
    subs = tmp_path / "submissions"
    subs.mkdir()
    shutil.copy(solution, subs / "solution.ipynb")
    shutil.copy(student, subs / "untouched.ipynb")
    out = tmp_path / "graded"
    assert grade_cli(["--lab", lab, "--out", str(out), "--workers", "2", "--quiet", str(subs)]) == 0
    rows = {Path(r["submission"]).stem: r for r in csv.DictReader(open(out / "gradebook.csv"))}
    sol, stu = rows["solution"], rows["untouched"]
    assert sol["status"] == stu["status"] == "graded", (sol["detail"], stu["detail"])
    assert float(sol["score"]) == float(sol["max_score"]) > 0, (sol["detail"], sol)
    assert float(stu["score"]) == 0, stu
    # A check cell must never raise for an unfinished notebook (the learner would get a traceback, not a ✘):
    # everything a check needs from the answer cells goes inside its thunk.
    assert not re.search(r"\bcheck \d\d\.", stu["detail"]), stu["detail"]
    questions = [k for k in sol if k.startswith("q:")]
    assert questions and all(float(sol[q]) > 0 for q in questions)
    assert (out / "feedback").is_dir() and len(list((out / "feedback").iterdir())) == 2


# Two classes, so that `make test` (xdist --dist loadscope: one class or file per worker at a time) grades the
# two halves of the syllabus on both workers at once; tests/conftest.py puts them first in the queue.
@pytest.mark.slow
class TestFoundationLabs:
    @pytest.mark.parametrize("lab", [lab for lab in LABS if lab < SYSTEMS])
    def test_solution_full_marks_student_version_zero(self, lab, tmp_path):
        _full_marks_and_zero(lab, tmp_path)


@pytest.mark.slow
class TestSystemsLabs:
    @pytest.mark.parametrize("lab", [lab for lab in LABS if lab >= SYSTEMS])
    def test_solution_full_marks_student_version_zero(self, lab, tmp_path):
        _full_marks_and_zero(lab, tmp_path)
