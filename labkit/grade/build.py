"""``labkit build``: write the student notebooks in ``labs/`` from the solutions in ``solutions/``.

One source, two products (TinyTorch's rule): the solution notebook is the only one an author edits. The student
version has every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region replaced by a scaffold (``# TODO`` with the
region's ``### GOAL:`` lines — the goal, never the code — a pointer to ``lk.hint``, then
``raise NotImplementedError``); the region's ``### HINT:`` lines go, in order, into the notebook's metadata
(``labkit.hints``, the ladder ``lk.hint`` reveals), never into the scaffold. Hidden cells are removed, outputs,
execution counts and widget state cleared, cell ids kept, check cells locked with their checksum in the
metadata, and a "points" cell is put at the top. The build refuses a lab whose visible cells hand out an answer
(``labkit.grade.leaks``, docs/AUTHORING.md). The build is deterministic: running it twice changes no byte.

    labkit build                      # solutions/ -> labs/
    labkit build --check              # exit 1 and name the stale files if labs/ is out of date
    labkit build --solutions DIR --labs DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from labkit.grade.leaks import leaks
from labkit.grade.notebook import (
    BEGIN,
    END,
    GOAL,
    HINT,
    LAB_FILE,
    POINTS_CELL_ID,
    cell_role,
    check_calls,
    checksum,
    lab_id,
    mentioned_checks,
    source_of,
)
from labkit.paths import repo_root

_KEEP_CELL_META = ("tags", "labkit")


class BuildError(ValueError):
    """A solution notebook that cannot be built; the message names the notebook and the cells."""


@dataclass(frozen=True)
class BuildResult:
    """What a build did: files written (or, with check=True, found stale) and files already up to date."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    stale: tuple[str, ...]


def _where(path, index, cell) -> str:
    return f"{Path(path).name}, cell {index} (id {cell.get('id', '?')!r})"


def scaffold(source: str, where: str = "cell", question: str | None = None) -> str:
    r"""Replace each solution region of `source` by ``# TODO: <goal>`` lines and ``raise NotImplementedError``.

    ``### HINT:`` lines are dropped (they become the ``lk.hint`` ladder, see `hint_ladder`).

    >>> print(scaffold("x = 1\n### BEGIN SOLUTION\n### GOAL: y is one more than x\n### HINT: add\n"
    ...                "y = x + 1\n### END SOLUTION", question="00.q1"))
    x = 1
    # TODO: y is one more than x
    # (stuck? lk.hint("00.q1") shows a hint)
    raise NotImplementedError
    """
    out, region, goals, hints, indent = [], None, [], [], ""
    for n, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if region is not None:
                raise BuildError(f"{where}: line {n} opens a solution region inside another (line {region}).")
            region, goals, hints, indent = n, [], [], line[: len(line) - len(line.lstrip())]
        elif stripped.startswith(END):
            if region is None:
                raise BuildError(f"{where}: line {n} has {END} without a {BEGIN} before it.")
            todo = goals or ["write your solution here (the question above says what)"]
            out += [f"{indent}# TODO: {todo[0]}"] + [f"{indent}#       {g}" for g in todo[1:]]
            if hints and question:
                out.append(f'{indent}# (stuck? lk.hint("{question}") shows a hint)')
            out.append(f"{indent}raise NotImplementedError")
            region = None
        elif region is not None:
            if stripped.startswith(GOAL):
                goals.append(stripped[len(GOAL):].strip())
            elif stripped.startswith(HINT):
                hints.append(stripped[len(HINT):].strip())
        else:
            out.append(line)
    if region is not None:
        raise BuildError(f"{where}: {BEGIN} on line {region} has no {END}.")
    return "\n".join(out)


def hint_ladder(source: str) -> list[str]:
    r"""The ``### HINT:`` lines of the solution regions of `source`, in order (the ladder lk.hint reveals).

    >>> hint_ladder("### BEGIN SOLUTION\n### HINT: concept\n### HINT: approach\ny = 1\n### END SOLUTION")
    ['concept', 'approach']
    """
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            inside = True
        elif stripped.startswith(END):
            inside = False
        elif inside and stripped.startswith(HINT):
            out.append(stripped[len(HINT):].strip())
    return out


def answer_questions(nb) -> dict[int, str]:
    """Answer cell index -> the question its hints belong to: the first visible check after it (else hidden)."""
    out, current, visible, hidden = {}, None, [], []

    def close():
        if current is not None and (visible or hidden):
            out[current] = (visible or hidden)[0]

    for i, cell in enumerate(nb.cells):
        role = cell_role(cell)
        if role == "answer":
            close()
            current, visible, hidden = i, [], []
        elif role in ("check", "hidden") and cell.cell_type == "code":
            qs = [c.question for c in check_calls_safe(source_of(cell))]
            (visible if role == "check" else hidden).extend(qs)
    close()
    return out


def validate(nb, path) -> list[str]:
    """Every problem that stops `nb` (the solution at `path`) from being built, one message each."""
    problems, seen, lab = [], {}, lab_id(path)
    ids = [c.get("id") for c in nb.cells]
    for i, cell in enumerate(nb.cells):
        where, role, src = _where(path, i, cell), cell_role(cell), source_of(cell)
        if not cell.get("id"):
            problems.append(f"{where}: the cell has no id; save the notebook with JupyterLab >= 3 "
                            "(nbformat 4.5) so every cell gets a stable id.")
        elif ids.count(cell.get("id")) > 1:
            problems.append(f"{where}: the id is used by {ids.count(cell.get('id'))} cells; ids must be unique.")
        if role in ("answer", "markdown") or BEGIN in src or END in src:
            try:
                scaffold(src, where)
            except BuildError as err:
                problems.append(str(err))
        if role == "answer" and mentioned_checks(src):
            problems.append(f"{where}: a solution cell must not call lk.check; put checks in their own cell.")
            continue
        if cell.cell_type != "code":
            continue
        try:
            calls = check_calls(src)
        except ValueError as err:
            problems.append(f"{where}: {err}")
            continue
        for call in calls:
            if not call.question.startswith(lab + "."):
                problems.append(f"{where}: check id {call.question!r} does not start with this lab's "
                                f"number '{lab}.'.")
            if call.question in seen:
                problems.append(f"{where}: check id {call.question!r} is used twice (also in {seen[call.question]}).")
            seen.setdefault(call.question, where)
    # every solution cell must be followed by a check before the next solution cell (or the end)
    pending = None
    for i, cell in enumerate(nb.cells):
        role = cell_role(cell)
        if role == "answer":
            if pending is not None:
                problems.append(f"{pending}: this solution cell has no check cell after it.")
            pending = _where(path, i, cell)
        elif role in ("check", "hidden") and cell.cell_type == "code" and check_calls_safe(source_of(cell)):
            pending = None
    if pending is not None:
        problems.append(f"{pending}: this solution cell has no check cell after it.")
    if not seen:
        problems.append(f"{Path(path).name}: no lk.check(...) call found; a lab needs at least one question.")
    if not problems:
        problems += leaks(nb, path)
    return problems


def check_calls_safe(source: str):
    try:
        return check_calls(source)
    except ValueError:
        return []


def questions(nb) -> dict[str, dict]:
    """Question id -> {points, hint, hidden, test} for every check in a (valid) solution notebook, in order
    (test: some check of it judges with a ``test=`` function)."""
    out = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for call in check_calls_safe(source_of(cell)):
                tested = call.test or out.get(call.question, {}).get("test", False)
                out[call.question] = {"points": call.points, "hint": call.hint,
                                      "hidden": cell_role(cell) == "hidden", "test": tested}
    return out


def _points_cell(qs: dict) -> dict:
    visible = {q: v for q, v in qs.items() if not v["hidden"]}
    hidden = sum(v["points"] for v in qs.values() if v["hidden"])
    total = sum(v["points"] for v in qs.values())
    fmt = lambda x: str(int(x)) if float(x).is_integer() else f"{x:g}"  # noqa: E731
    parts = ", ".join(f"{q} ({fmt(v['points'])})" for q, v in visible.items())
    text = f"**Points: {fmt(total)} in total.**" + (f" Questions checked as you go: {parts}." if parts else "")
    if hidden:
        text += f" Hidden checks, run when your notebook is graded: {fmt(hidden)} point{'s' * (hidden != 1)}."
    text += " Stuck? `lk.hint(\"NN.qK\")` reveals a question's hints one at a time (the gradebook counts them)."
    return nbformat.v4.new_markdown_cell(text, id=POINTS_CELL_ID, metadata={"labkit": {"role": "points"}})


def student_notebook(nb, path):
    """The student version of solution notebook `nb` (read from `path`); BuildError if it is not valid."""
    problems = validate(nb, path)
    if problems:
        raise BuildError(f"cannot build {Path(path).name}:\n  " + "\n  ".join(problems))
    qs = questions(nb)
    owner = answer_questions(nb)
    hints = {}
    cells = []
    for index, cell in enumerate(nb.cells):
        role = cell_role(cell)
        if role == "hidden" or cell.get("id") == POINTS_CELL_ID:
            continue
        src = source_of(cell)
        meta = {k: cell.metadata[k] for k in _KEEP_CELL_META if k in cell.get("metadata", {})}
        if BEGIN in src:
            if role == "answer" and index in owner and hint_ladder(src):
                hints.setdefault(owner[index], []).extend(hint_ladder(src))
            src = scaffold(src, question=owner.get(index) if role == "answer" else None)
            if cell.cell_type == "markdown":
                src = src.replace("raise NotImplementedError", "*(your answer here)*")
        if role == "check":
            meta["labkit"] = {**meta.get("labkit", {}), "role": "check", "checksum": checksum(src),
                              "questions": [c.question for c in check_calls(src)]}
            meta["editable"], meta["deletable"] = False, False
        elif role == "answer":
            meta["labkit"] = {**meta.get("labkit", {}), "role": "answer"}
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(src, id=cell.id, metadata=meta)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(src, id=cell.id, metadata=meta)
        else:
            new = nbformat.v4.new_raw_cell(src, id=cell.id, metadata=meta)
        cells.append(new)
    at = 1 if cells and cells[0].cell_type == "markdown" else 0
    cells.insert(at, _points_cell(qs))
    lab_meta = {k: v for k, v in nb.metadata.get("labkit", {}).items()}
    lab_meta.update({"lab": lab_id(path), "source": f"solutions/{Path(path).name}",
                     "points": sum(v["points"] for v in qs.values()), "hints": hints,
                     "checks": {c.id: c.metadata["labkit"]["checksum"] for c in cells
                                if c.metadata.get("labkit", {}).get("role") == "check"}})
    meta = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}, "labkit": lab_meta}
    out = nbformat.v4.new_notebook(cells=cells, metadata=meta)
    out.nbformat, out.nbformat_minor = 4, 5
    nbformat.validate(out)
    return out


def render(nb) -> bytes:
    """Deterministic bytes of a notebook: nbformat's layout (sorted keys, one-space indent, sources as lines)."""
    text = nbformat.writes(nb)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def _read_source(path: Path):
    """Read a solution notebook, refusing duplicated cell ids (which nbformat would quietly renumber)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    ids = [c.get("id") for c in raw.get("cells", []) if isinstance(c, dict) and c.get("id")]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise BuildError(f"cannot build {path.name}:\n  {path.name}: cell id(s) {', '.join(map(repr, dups))} "
                         "used by more than one cell; ids must be unique.")
    return nbformat.reads(json.dumps(raw), as_version=4)


def build(solutions: str | Path | None = None, labs: str | Path | None = None, check: bool = False) -> BuildResult:
    """Write ``labs/NN_name.ipynb`` for every ``solutions/NN_name.ipynb`` (check=True: write nothing, list stale).

    >>> import labkit.grade.build as a
    >>> a.build(check=True).stale  # doctest: +SKIP
    ()
    """
    solutions = Path(solutions or repo_root() / "solutions")
    labs = Path(labs or repo_root() / "labs")
    if not solutions.is_dir():
        raise BuildError(f"no solutions folder at {solutions}")
    written, unchanged, stale, errors = [], [], [], []
    sources = sorted(p for p in solutions.glob("*.ipynb") if LAB_FILE.match(p.name))
    for src in sources:
        try:
            data = render(student_notebook(_read_source(src), src))
        except BuildError as err:
            errors.append(str(err))
            continue
        except Exception as err:  # unreadable JSON, invalid nbformat
            errors.append(f"cannot read {src.name}: {type(err).__name__}: {err}")
            continue
        dest = labs / src.name
        if dest.is_file() and dest.read_bytes() == data:
            unchanged.append(str(dest))
        elif check:
            stale.append(str(dest))
        else:
            labs.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            written.append(str(dest))
    if errors:
        raise BuildError("\n".join(errors))
    if labs.is_dir():   # student notebooks with no solution any more are stale too
        names = {p.name for p in sources}
        stale += [str(p) for p in sorted(labs.glob("*.ipynb")) if LAB_FILE.match(p.name) and p.name not in names]
    return BuildResult(tuple(written), tuple(unchanged), tuple(stale))


def cli(argv: list[str]) -> int:
    """``labkit build [--check] [--solutions DIR] [--labs DIR]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="labkit build", description="Write labs/ from solutions/.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if labs/ is stale")
    parser.add_argument("--solutions", default=None, help="folder of solution notebooks (default: solutions/)")
    parser.add_argument("--labs", default=None, help="folder of student notebooks (default: labs/)")
    args = parser.parse_args(argv)
    try:
        result = build(args.solutions, args.labs, check=args.check)
    except BuildError as err:
        print(f"labkit build: {err}", file=sys.stderr)
        return 1
    if args.check:
        if result.stale:
            print("labkit build --check: stale (run `labkit build`):\n  " + "\n  ".join(result.stale),
                  file=sys.stderr)
            return 1
        print(f"labkit build --check: {len(result.unchanged)} notebook(s) up to date")
        return 0
    for path in result.written:
        print(f"wrote {path}")
    for path in result.stale:
        print(f"stale: {path} has no solution notebook any more; delete it", file=sys.stderr)
    print(f"labkit build: {len(result.written)} written, {len(result.unchanged)} unchanged")
    return 0
