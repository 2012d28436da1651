"""Put the instructor's cells back into a submitted notebook before it runs.

The executed notebook is the *solution's* skeleton: setup ("given"), check and hidden cells come from
``solutions/`` (so edited, deleted, duplicated or moved check cells change nothing); the learner's answer cells
fill the answer slots, and every other learner cell (scratch) is kept where it was relative to the cells
around it. A learner cell is matched to a solution cell by, in order:

1. its stable cell id (the build keeps the solution's ids);
2. for a code cell that mentions a check id, ``check("90.q1"`` — that check cell (an edited copy: dropped);
3. identical source (ignoring trailing spaces) to a solution cell;

and otherwise it is a learner cell placed after the last matched cell before it. Hidden cells therefore go back
after the answer cell they follow, with the learner's scratch cells for that answer in front of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from labkit.grade.build import questions as solution_questions
from labkit.grade.notebook import cell_role, checksum, find_lab, lab_id, mentioned_checks, source_of
from labkit.grade.sandbox import DEFAULT_MAX_PROCS

DEFAULT_CELL_TIMEOUT_S = 120
DEFAULT_TIMEOUT_S = 600
DEFAULT_MEMORY_MB = 2048


class Ungradable(Exception):
    """A submission that cannot be read as a notebook of the lab; the message says why."""


@dataclass(frozen=True)
class Lab:
    """A lab as the grader sees it: its solution cells, questions and limits (from the solution's metadata)."""

    lab: str
    path: str
    cells: tuple                      # nbformat cells of the solution, in order
    roles: tuple[str, ...]            # cell_role of each
    questions: dict                   # question id -> {points, hint, hidden}
    answer_questions: dict            # answer cell index -> question ids it is checked by
    cell_timeout_s: float = DEFAULT_CELL_TIMEOUT_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: float = DEFAULT_MEMORY_MB
    kernel_oracles: tuple = ()        # questions whose oracle is built from the kernel's own measurements
    calibrate: tuple = ()             # runtimes whose calibration the lab reads (lk.device("local")): made once on
                                      # the host before grading, so every kernel reads the same one
    max_procs: int = DEFAULT_MAX_PROCS  # processes + threads of a run (RLIMIT_NPROC): Ray Serve needs ~300
    cell_cpu_s: float | None = None   # CPU seconds per cell before it is interrupted (labkit.grade.cell_cpu)

    @property
    def max_score(self) -> float:
        return sum(q["points"] for q in self.questions.values())


def load_lab(lab: str, solutions_dir) -> Lab:
    """Read ``solutions_dir/NN_*.ipynb`` for lab `lab` ('00'); ValueError for an unknown lab."""
    path = find_lab(lab, solutions_dir)
    nb = nbformat.read(path, as_version=4)
    roles = tuple(cell_role(c) for c in nb.cells)
    answers, current = {}, None
    for i, role in enumerate(roles):
        if role == "answer":
            current = i
            answers[i] = []
        elif role in ("check", "hidden") and current is not None:
            answers[current] += mentioned_checks(source_of(nb.cells[i]))
    meta = nb.metadata.get("labkit", {})
    return Lab(lab_id(path), str(path), tuple(nb.cells), roles, solution_questions(nb),
               {i: tuple(q) for i, q in answers.items()},
               float(meta.get("cell_timeout_s", DEFAULT_CELL_TIMEOUT_S)),
               float(meta.get("timeout_s", DEFAULT_TIMEOUT_S)),
               float(meta.get("memory_mb", DEFAULT_MEMORY_MB)), tuple(meta.get("kernel_oracles", ())),
               tuple(meta.get("calibrate", ())), int(meta.get("max_procs", DEFAULT_MAX_PROCS)),
               float(meta["cell_cpu_s"]) if meta.get("cell_cpu_s") else None)


@dataclass(frozen=True)
class Prepared:
    """A submission ready to run: the notebook (JSON text), what each code cell is, and notes for the detail."""

    notebook: str
    code_roles: tuple[tuple[str, tuple[str, ...]], ...]   # per code cell: (role, question ids)
    notes: tuple[str, ...] = field(default=())


def read_submission(path) -> nbformat.NotebookNode:
    """The submission as a v4 notebook, or Ungradable saying why it cannot be read."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise Ungradable(f"cannot read the file: {err.strerror or err}") from None
    if not raw.strip():
        raise Ungradable(f"empty file ({len(raw)} bytes)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Ungradable("not a notebook: the file is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise Ungradable(f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        raise Ungradable("not a Jupyter notebook: the JSON has no list of cells")
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4, capture_validation_error={})
    except Exception as err:
        raise Ungradable(f"not a readable notebook ({type(err).__name__}: {str(err)[:200]})") from None
    for cell in nb.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Ungradable("not a readable notebook: a cell has no valid cell_type")
    return nb


def _code(source: str, cell_id: str | None = None):
    cell = nbformat.v4.new_code_cell(source)
    if cell_id:
        cell.id = cell_id
    return cell


def prepare(path, lab: Lab) -> Prepared:
    """Restore the instructor's cells into submission `path` (see the module docstring); Ungradable if it is
    not a notebook of `lab`."""
    nb = read_submission(path)
    other = nb.metadata.get("labkit", {}).get("lab") if isinstance(nb.metadata.get("labkit"), dict) else None
    if other is not None and str(other) != lab.lab:
        raise Ungradable(f"this is a notebook of lab {other}, not lab {lab.lab}")
    by_id = {c.get("id"): i for i, c in enumerate(lab.cells) if c.get("id")}
    by_sum = {}
    for i, c in enumerate(lab.cells):
        by_sum.setdefault(checksum(source_of(c)), i)
    check_home = {}
    for i, c in enumerate(lab.cells):
        if lab.roles[i] in ("check", "hidden"):
            for q in mentioned_checks(source_of(c)):
                check_home.setdefault(q, i)

    filled: dict[int, object] = {}            # solution index -> learner cell filling that slot
    after: dict[int, list] = {}               # solution index (-1: top) -> learner cells placed after it
    seen_checks: dict[int, bool] = {}         # check cell index -> learner's copy was identical
    anchor, matched = -1, 0
    for cell in nb.cells:
        src = source_of(cell)
        kind = cell.get("cell_type")
        pos = by_id.get(cell.get("id"))
        if pos is not None and lab.cells[pos].cell_type != kind:
            pos = None
        if pos is None and kind == "code":
            homes = [check_home[q] for q in mentioned_checks(src) if q in check_home]
            pos = homes[0] if homes else None
        if pos is None and src.strip():
            pos = by_sum.get(checksum(src))
            if pos is not None and lab.cells[pos].cell_type != kind:
                pos = None
        if pos is None:
            if kind == "code" or src.strip():
                after.setdefault(anchor, []).append(cell)
            continue
        matched += 1
        role = lab.roles[pos]
        if role in ("check", "hidden"):
            seen_checks[pos] = seen_checks.get(pos, False) or checksum(src) == checksum(source_of(lab.cells[pos]))
        elif role in ("answer", "markdown") and pos not in filled:
            filled[pos] = cell
        elif role in ("answer", "markdown"):
            after.setdefault(max(anchor, pos), []).append(cell)   # a duplicate: keep it as a learner cell
        anchor = max(anchor, pos)
    if not matched:
        raise Ungradable(f"no cell of lab {lab.lab} found in it: is it the right notebook?")

    cells, roles = [], []

    def learner(cell, role, qs=()):
        if cell.get("cell_type") == "code":
            cells.append(_code(source_of(cell)))
            roles.append((role, tuple(qs)))
        elif cell.get("cell_type") == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(source_of(cell)))

    for c in after.get(-1, []):
        learner(c, "extra")
    for i, sol in enumerate(lab.cells):
        role = lab.roles[i]
        if role in ("given", "check", "hidden") and sol.cell_type == "code":
            cells.append(_code(source_of(sol), sol.get("id")))
            roles.append((role, tuple(mentioned_checks(source_of(sol)))))
        elif role == "answer" and i in filled:
            learner(filled[i], "answer", lab.answer_questions.get(i, ()))
        elif role == "markdown" and i in filled:
            learner(filled[i], "markdown")
        for c in after.get(i, []):
            learner(c, "extra")
    visible = [i for i, r in enumerate(lab.roles) if r == "check"]
    edited = [q for i in visible if seen_checks.get(i) is False for q in mentioned_checks(source_of(lab.cells[i]))]
    deleted = [q for i in visible if i not in seen_checks for q in mentioned_checks(source_of(lab.cells[i]))]
    notes = []
    if edited:
        notes.append(f"edited check cell restored: {', '.join(edited)}")
    if deleted:
        notes.append(f"deleted check cell restored: {', '.join(deleted)}")
    out = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "labkit": {"lab": lab.lab, "graded": True}})
    return Prepared(nbformat.writes(out), tuple(roles), tuple(notes))
