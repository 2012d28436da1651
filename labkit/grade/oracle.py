"""Scores computed outside the learner's kernel: the oracles from a reference run, compared in the grader.

The learner's sandboxed kernel only *exports* each answer's value as data (``check.exporting_labkit``). The
oracles come from one **reference run** of the solution notebook per batch (instructor code only, in its own
sandbox): its check cells write ``expected=``/``between=``/``ratio=`` and tolerances as data
(``check.oracle_labkit``). ``judge_run`` then compares, in the grader's process, the *first* exported value of
each question with its oracle. A ``test=`` check (a function, not data) is judged in the reference run, which
runs after the submissions and is fed their exported values, never in the kernel that ran the learner's code.

>>> from types import SimpleNamespace as NS
>>> from labkit.grade.runner import RunResult
>>> lab = NS(questions={"00.q1": {}})
>>> run = RunResult(({"question": "00.q1", "value": 44}, {"question": "00.q1", "value": 45}), (), None, 1.0, 0.0, "")
>>> oracle = {"question": "00.q1", "expected": 45, "rtol": None, "atol": None, "ratio": None, "between": None}
>>> judge_run(run, lab, {"00.q1": oracle}).checks     # the first export counts; 44 is not 45
({'question': '00.q1', 'passed': False, 'message': 'not the right count (exact answer expected)'},)
"""

from __future__ import annotations

import dataclasses

from labkit.grade.check import decode, judge


class ReferenceFailed(RuntimeError):
    """The solution's own reference run did not produce an oracle for every question."""


def oracles_of(run, lab) -> tuple[dict, str]:
    """question -> oracle line, from a reference run; and a note naming questions without one ('' if none)."""
    found = {}
    for line in run.exports:
        q = line.get("question")
        if q in lab.questions and q not in found and "for" not in line:     # "for": a submission's verdict
            found[q] = line
    missing = [q for q in lab.questions if q not in found]
    note = ""
    if missing:
        note = (f"the solution's reference run gave no oracle for {', '.join(missing)}"
                + (f" ({run.stopped})" if run.stopped else ""))
    return found, note


def answers_of(run) -> dict:
    """question -> the first line the learner's kernel exported for it (later lines are ignored)."""
    first = {}
    for line in run.exports:
        q = line.get("question")
        if isinstance(q, str) and q not in first and "kernel_expected" not in line:
            first[q] = line
    return first


def _plausible(kernel, ref, factor: float = 10.0) -> bool:
    """A kernel-measured oracle has the reference's shape, its non-numbers, and every number within `factor`."""
    if isinstance(ref, list):
        return isinstance(kernel, list) and len(kernel) == len(ref) and all(map(_plausible, kernel, ref))
    if isinstance(ref, dict):
        return isinstance(kernel, dict) and set(kernel) == set(ref) and all(_plausible(kernel[k], ref[k]) for k in ref)
    if type(ref) in (int, float) and type(ref) is not bool and type(kernel) in (int, float):
        if ref == kernel:
            return True
        if ref == 0 or kernel == 0 or (ref > 0) != (kernel > 0):
            return abs(kernel - ref) <= 1e-9
        return 1 / factor <= kernel / ref <= factor
    return kernel == ref and type(kernel) is type(ref)


def judge_run(run, lab, oracles: dict, verdicts: dict | None = None):
    """`run` with ``checks`` filled in: one {question, passed, message} per question the kernel exported.

    `verdicts` maps a ``test=`` question to its verdict line from the reference run fed this run's answers.
    """
    checks = []
    kernel = {}
    for line in run.exports:         # lab metadata "kernel_oracles": expected= as the kernel measured it
        q = line.get("question")
        if q in getattr(lab, "kernel_oracles", ()) and "kernel_expected" in line and q not in kernel:
            kernel[q] = line["kernel_expected"]
    verdicts_k = {}                  # kernel_oracles with test=: the kernel's own verdict ("" = passed)
    for line in run.exports:
        q = line.get("question")
        if q in getattr(lab, "kernel_oracles", ()) and "kernel_verdict" in line and q not in verdicts_k:
            verdicts_k[q] = line["kernel_verdict"]
    for q, line in answers_of(run).items():
        if q not in lab.questions:
            continue
        oracle = oracles.get(q)
        if q in verdicts_k:          # trusted: the lab declared it (answers a function or a table can't carry)
            message = verdicts_k[q] or None
            checks.append({"question": q, "passed": message is None, "message": "correct" if message is None
                           else str(message)[:300]})
            continue
        if q in kernel and oracle is not None and oracle.get("mode") != "test":
            if _plausible(decode(kernel[q]), decode(oracle["expected"])):
                oracle = {**oracle, "expected": kernel[q]}
            else:   # a kernel's measurement 10x away from the reference run's: not trusted, use the reference
                oracle = {**oracle, "note": "kernel oracle implausible"}
        if "error" in line or "value" not in line:
            message = str(line.get("error") or "no value was exported")[:300]
        elif oracle is None:
            message = "no oracle for this question (the solution's own check did not run when grading)"
        elif oracle.get("mode") == "test":
            verdict = (verdicts or {}).get(q)
            message = "the test of this answer did not run" if verdict is None else verdict.get("verdict")
        else:
            try:
                message = judge(oracle, decode(line["value"]))
            except (TypeError, ValueError, KeyError) as err:
                message = f"the exported answer could not be read ({type(err).__name__})"
        checks.append({"question": q, "passed": message is None, "message": "correct" if message is None
                       else str(message)[:300]})
    return dataclasses.replace(run, checks=tuple(checks))
