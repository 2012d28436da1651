"""The grader's reference run: one run of the solution per batch, after the submissions, judges every
submission's ``test=`` answers; if that run fails with answers fed in, the old way (the solution alone, then
once per submission) still grades everyone. The runs here are simulated in-process with the real checkers
(``exporting_labkit`` for a learner's kernel, ``oracle_labkit`` for the reference), no kernel or sandbox."""

from __future__ import annotations

import json
from types import SimpleNamespace as NS

from labkit.grade.batch import _REFERENCE, _reference
from labkit.grade.check import exporting_labkit, oracle_labkit
from labkit.grade.oracle import judge_run, oracles_of
from labkit.grade.runner import RunResult

LAB = NS(questions={"90.q1": {"points": 1, "test": True}, "90.q2": {"points": 1, "test": False},
                    "90.k": {"points": 1, "test": True}},
         kernel_oracles=("90.k",))
HANG = 666     # an answer whose test the simulated reference run cannot finish (it is killed)


def _lines(path):
    return tuple(json.loads(x) for x in path.read_text().splitlines()) if path.exists() else ()


def _learner(tmp_path, name, q1):
    """A learner's run: q1 as given (an exception for no value), q2 = 3."""
    path = tmp_path / f"{name}.jsonl"
    lk = exporting_labkit(str(path))
    lk.check("90.q1", q1 if callable(q1) else (lambda: q1))
    lk.check("90.q2", lambda: 3)
    lk.check("90.k", lambda: 7)
    return RunResult(_lines(path), (), None, 1.0, 0.0, "")


def _fake_runner(tmp_path, calls):
    """A run_all that runs the solution's check cells in-process with the answers each job was given."""

    def run_all(jobs, bar):
        out = {}
        for key, args in jobs:
            answers = args[7] if len(args) > 7 else None
            calls.append((key, answers))
            exports = tmp_path / f"ref{len(calls)}.jsonl"
            answers_file = None
            if answers:
                answers_file = tmp_path / f"answers{len(calls)}.json"
                answers_file.write_text(json.dumps(answers))
            lk = oracle_labkit(str(exports), str(answers_file) if answers_file else None)
            stopped = None
            if any(a.get("90.q1") == HANG for a in (answers or {}).values()):
                stopped = "killed: notebook time limit of 900 s reached"      # q1's cell never finished
            else:
                lk.check("90.q1", lambda: 45, test=lambda v: v == 45 or "not 45")
            lk.check("90.q2", lambda: 3, expected=3)
            lk.check("90.k", lambda: 7, test=lambda v: v == 7)
            out[key] = RunResult(_lines(exports), (), stopped, 1.0, 0.0, "")
        return out

    return run_all


def _grade(tmp_path, results):
    calls = []
    oracles, note, verdicts = _reference(results, LAB, ("nb", (), None, {}, "x.ipynb", "none", True),
                                         _fake_runner(tmp_path, calls), None)
    marks = {name: {c["question"]: c["passed"] for c in judge_run(run, LAB, oracles, verdicts.get(name)).checks}
             for name, run in results.items()}
    return calls, note, marks


def test_one_reference_run_judges_every_submission(tmp_path):
    results = {"right": _learner(tmp_path, "right", 45), "wrong": _learner(tmp_path, "wrong", 44),
               "raised": _learner(tmp_path, "raised", lambda: 1 / 0)}
    calls, note, marks = _grade(tmp_path, results)
    assert [key for key, _ in calls] == [_REFERENCE]        # one run of the solution for the whole batch
    # only test= questions travel, only values (not errors), and never a kernel-judged one (90.k)
    assert sorted(calls[0][1].values(), key=str) == [{"90.q1": 44}, {"90.q1": 45}]
    assert note == ""
    assert marks["right"]["90.q1"] and not marks["wrong"]["90.q1"] and not marks["raised"]["90.q1"]
    assert all(m["90.q2"] for m in marks.values())


def test_a_reference_run_that_fails_with_answers_falls_back_to_one_run_per_submission(tmp_path):
    results = {"right": _learner(tmp_path, "right", 45), "hangs": _learner(tmp_path, "hangs", HANG),
               "wrong": _learner(tmp_path, "wrong", 44)}
    calls, note, marks = _grade(tmp_path, results)
    keys = [key for key, _ in calls]
    assert keys[:2] == [_REFERENCE, _REFERENCE] and calls[1][1] is None and len(keys) == 5
    assert sorted(len(a) for _, a in calls[2:]) == [1, 1, 1]      # each submission alone
    assert note == ""                                            # the plain reference run gave every oracle
    assert marks["right"]["90.q1"] and not marks["wrong"]["90.q1"]
    assert not marks["hangs"]["90.q1"]                           # its own run failed: no verdict, no point
    assert all(m["90.q2"] for m in marks.values())


def test_verdict_lines_are_never_taken_for_oracles():
    lines = ({"question": "90.q1", "for": "0", "verdict": None},
             {"question": "90.q1", "mode": "test", "solution_passes": True})
    oracles, note = oracles_of(RunResult(lines, (), None, 1.0, 0.0, ""), NS(questions={"90.q1": {}}))
    assert oracles["90.q1"].get("mode") == "test" and note == ""
