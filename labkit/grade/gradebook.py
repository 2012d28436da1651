"""Scores from a run's judged checks, the gradebook CSV and the per-student feedback files.

Scoring trusts only the solution: the points of a question are those its check call declares in
``solutions/``; a question earns them when the grader's judge (``labkit.grade.oracle``) passed the value the
kernel exported for it. A check that
never ran (time limit, dead kernel) earns nothing, and the detail says why.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace


@dataclass(frozen=True)
class Grade:
    """One gradebook row: status 'graded' or 'ungradable', points per question, detail and feedback lines."""

    submission: str
    status: str
    score: float
    max_score: float
    detail: str
    points: dict            # question id -> points earned
    results: dict           # question id -> {"passed", "message", "hint"} (absent: the check did not run)
    sandbox: str = ""       # how its kernel ran: "bwrap", "none" (--unsafe-no-sandbox), "" (never ran)
    hints: dict = field(default_factory=dict)   # question id -> hints the learner revealed (lk.hint), if any


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


def ungradable(name: str, reason: str, lab) -> Grade:
    return Grade(name, "ungradable", 0.0, lab.max_score, reason, {q: 0.0 for q in lab.questions}, {})


def _cell_label(role: str, qs, extra_index: int) -> str:
    if role == "answer":
        return f"answer {'/'.join(q for q in dict.fromkeys(qs) if not q.endswith('h')) or '/'.join(qs) or '?'}"
    if role == "extra":
        return f"your extra cell {extra_index}"
    if role in ("check", "hidden"):
        return f"{'hidden ' if role == 'hidden' else ''}check {'/'.join(qs)}"
    return "setup cell"


def hinted_questions(lab) -> list[str]:
    """The questions of `lab` that have a hint ladder (``### HINT:`` lines in their answer cell), in order."""
    from labkit.grade.build import answer_questions, hint_ladder
    from labkit.grade.notebook import source_of

    owners = answer_questions(SimpleNamespace(cells=list(lab.cells)))
    return list(dict.fromkeys(q for i, q in owners.items() if hint_ladder(source_of(lab.cells[i]))))


def hints_of(path) -> dict:
    """Question id -> hints revealed, read from a submitted notebook's saved outputs ({} if unreadable)."""
    from labkit.grade.hints import hints_used

    try:
        return hints_used(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def score(name: str, lab, prepared, run, hints: dict | None = None) -> Grade:
    """The Grade of a submission that ran: `prepared` from restore.prepare, `run` from runner.run_notebook,
    `hints` from `hints_of` (how many hints the learner revealed per question)."""
    results = {}
    for line in run.checks:
        q = line.get("question")
        if q in lab.questions:
            results[q] = {"passed": line.get("passed") is True, "message": str(line.get("message", ""))[:300],
                          "hint": lab.questions[q]["hint"]}
    points = {q: (v["points"] if results.get(q, {}).get("passed") else 0.0) for q, v in lab.questions.items()}
    problems, extra_no = [], {}
    n = 0
    for i, (role, _) in enumerate(prepared.code_roles):
        if role == "extra":
            n += 1
            extra_no[i] = n
    ended = {e["cell"]: e.get("error") for e in run.events if e.get("event") == "end"}
    started = [e["cell"] for e in run.events if e.get("event") == "start"]
    for cell, error in ended.items():
        if error and cell < len(prepared.code_roles) and "kernel had stopped" not in error:
            role, qs = prepared.code_roles[cell]
            problems.append(f"{_cell_label(role, qs, extra_no.get(cell, 0))}: {error}")
    if run.stopped:
        where = ""
        if started and started[-1] not in ended and started[-1] < len(prepared.code_roles):
            role, qs = prepared.code_roles[started[-1]]
            where = f" in {_cell_label(role, qs, extra_no.get(started[-1], 0))}"
        problems.append(f"{run.stopped}{where}")
    missing = [q for q in lab.questions if q not in results]
    if missing:
        problems.append(f"checks that did not run: {', '.join(missing)}")
    detail = "; ".join([*prepared.notes, *problems]) or "all cells ran"
    used = {q: n for q, n in (hints or {}).items() if q in lab.questions}
    return Grade(name, "graded", sum(points.values()), lab.max_score, detail, points, results,
                 sandbox=run.sandbox, hints=used)


def write_gradebook(grades, lab, out_dir) -> Path:
    """``OUT/gradebook.csv``: submission, status, score, max_score, detail, sandbox, one ``q:<id>`` column each,
    then one ``hints:<id>`` column (hints revealed with lk.hint) per question that has hints."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "gradebook.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        hinted = hinted_questions(lab)
        writer.writerow(["submission", "status", "score", "max_score", "detail", "sandbox",
                         *(f"q:{q}" for q in lab.questions), *(f"hints:{q}" for q in hinted)])
        for g in grades:
            writer.writerow([g.submission, g.status, _fmt(g.score), _fmt(g.max_score), g.detail, g.sandbox,
                             *(_fmt(g.points.get(q, 0.0)) for q in lab.questions),
                             *(str(g.hints.get(q, 0)) for q in hinted)])
    return path


def feedback_name(submission: str) -> str:
    """A safe file name for a submission's feedback: 'alice/lab 00.ipynb' -> 'alice__lab_00.md'."""
    stem = submission[:-6] if submission.endswith(".ipynb") else submission
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem.replace("/", "__").replace("\\", "__")).strip("._") + ".md"


def feedback(grade: Grade, lab) -> str:
    """The Markdown feedback for one student: score, then per question ✔/✘, points, message and hint."""
    lines = [f"# Lab {lab.lab} — feedback for `{grade.submission}`", ""]
    if grade.status != "graded":
        lines += ["**Could not be graded:** " + grade.detail, "",
                  "Submit the lab's notebook (`.ipynb`) as saved by JupyterLab, and check it opens there."]
        return "\n".join(lines) + "\n"
    lines += [f"**Score: {_fmt(grade.score)} / {_fmt(grade.max_score)}**", "",
              "| question | result | points | feedback |", "|---|---|---|---|"]
    for q, spec in lab.questions.items():
        got = grade.results.get(q)
        label = q + (" (hidden)" if spec["hidden"] else "")
        pts = f"{_fmt(grade.points[q])}/{_fmt(spec['points'])}"
        if got is None:
            text = "the check did not run (see the notes below)"
            text += f". Hint: {spec['hint']}" if spec["hint"] else ""
            lines.append(f"| {label} | ✘ | {pts} | {_cell(text)} |")
        elif got["passed"]:
            lines.append(f"| {label} | ✔ | {pts} | correct{_hints_note(grade, q)} |")
        else:
            text = got["message"] + (f". Hint: {got['hint']}" if got["hint"] else "")
            lines.append(f"| {label} | ✘ | {pts} | {_cell(text)} |")
    lines += ["", f"Notes: {grade.detail}"]
    return "\n".join(lines) + "\n"


def _hints_note(grade: Grade, q: str) -> str:
    n = grade.hints.get(q, 0)
    return f" ({n} hint{'s' * (n != 1)} used)" if n else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_feedback(grades, lab, out_dir) -> list[Path]:
    """One Markdown file per submission in ``OUT/feedback/``."""
    folder = Path(out_dir) / "feedback"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for g in grades:
        path = folder / feedback_name(g.submission)
        path.write_text(feedback(g, lab), encoding="utf-8")
        paths.append(path)
    return paths
