"""The notebook vocabulary shared by ``labkit build`` and ``labkit grade``: cell roles, check ids, checksums.

A solution notebook ``solutions/NN_name.ipynb`` is made of cells with one role each:

- ``markdown`` — text (kept in the student version);
- ``answer``   — a code cell with a ``### BEGIN SOLUTION`` / ``### END SOLUTION`` region (the learner fills it);
- ``check``    — a code cell that calls ``lk.check("NN.qK", lambda: value, ...)`` (visible, restored at grading);
- ``hidden``   — a cell tagged ``hidden`` (removed from the student version, put back at grading);
- ``given``    — any other code cell (setup code; restored at grading, so edits to it change nothing).
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "### HINT:"
GOAL = "### GOAL:"
HIDDEN_TAG = "hidden"
POINTS_CELL_ID = "labkit-points"        # the generated "points at the top" cell of a student version
LAB_FILE = re.compile(r"^(\d\d)_[A-Za-z0-9_\-]+\.ipynb$")
QUESTION_ID = re.compile(r"^(\d\d)\.[A-Za-z0-9_.\-]+$")
# A check id mentioned in a cell's text, for fallback matching of cells whose ids were lost.
CHECK_MENTION = re.compile(r"""\bcheck\(\s*["'](\d\d\.[A-Za-z0-9_.\-]+)["']""")
ROLES = ("markdown", "raw", "given", "answer", "check", "hidden")


@dataclass(frozen=True)
class CheckCall:
    """One ``lk.check(...)`` call found in a cell: its question id, points (default 1), hint, and whether it
    judges with a ``test=`` function."""

    question: str
    points: float
    hint: str
    line: int
    test: bool = False


def source_of(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def cell_role(cell) -> str:
    """The role of a solution cell: one of ``ROLES`` (see the module docstring)."""
    kind = cell.get("cell_type")
    if HIDDEN_TAG in (cell.get("metadata", {}).get("tags") or []):
        return "hidden"
    if kind != "code":
        return "raw" if kind == "raw" else "markdown"
    src = source_of(cell)
    if BEGIN in src:
        return "answer"
    if CHECK_MENTION.search(src):
        return "check"
    return "given"


def checksum(source: str) -> str:
    """sha256 (first 16 hex digits) of a cell's source with trailing whitespace removed from each line."""
    text = "\n".join(line.rstrip() for line in source.strip().splitlines())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def python_source(source: str) -> str:
    """Cell source as plain Python: IPython magics (``%time``, ``!ls``) are turned into calls."""
    try:
        ast.parse(source)
        return source
    except SyntaxError:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)


def _constant(node, default):
    return node.value if isinstance(node, ast.Constant) else default


def check_calls(source: str) -> list[CheckCall]:
    """Every ``lk.check("NN.qK", ...)`` call in `source`, in order; ValueError if one is malformed.

    >>> [c.question for c in check_calls('lk.check("00.q1", lambda: x, expected=3, points=2)')]
    ['00.q1']
    """
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError as err:
        raise ValueError(f"the cell is not valid Python ({err.msg}, line {err.lineno}).") from None
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "check" and isinstance(node.func.value, ast.Name)):
            continue
        if node.func.value.id != "lk":
            raise ValueError(f"line {node.lineno}: call checks as lk.check(...) (found "
                             f"{node.func.value.id}.check), so grading can bind a fresh checker.")
        first = node.args[0] if node.args else None
        question = _constant(first, None)
        if not isinstance(question, str) or not QUESTION_ID.match(question):
            raise ValueError(f"line {node.lineno}: the first argument of lk.check must be a literal id "
                             "like \"00.q1\" (two-digit lab, a dot, a name).")
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        points = _constant(kw.get("points"), 1 if "points" not in kw else None)
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise ValueError(f"line {node.lineno}: points= of {question} must be a literal number >= 0.")
        hint = _constant(kw.get("hint"), "" if "hint" not in kw else None)
        if not isinstance(hint, str):
            raise ValueError(f"line {node.lineno}: hint= of {question} must be a literal string.")
        calls.append(CheckCall(question, float(points), hint, node.lineno, "test" in kw))
    return sorted(calls, key=lambda c: c.line)


def mentioned_checks(source: str) -> list[str]:
    """Check ids mentioned as ``check("NN.qK"`` in any text (no parsing; for matching edited cells)."""
    return CHECK_MENTION.findall(source)


def lab_id(path) -> str:
    """'00' for 'solutions/00_orientation.ipynb'; ValueError for a name that is not NN_name.ipynb."""
    name = Path(path).name
    m = LAB_FILE.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a lab notebook name: use NN_name.ipynb, e.g. 00_orientation.ipynb.")
    return m.group(1)


def find_lab(lab: str, solutions_dir) -> Path:
    """The solution notebook of lab `lab` ('00', '0' or '00_orientation') in `solutions_dir`."""
    from labkit.args import unknown_name

    solutions_dir = Path(solutions_dir)
    labs = {lab_id(p): p for p in sorted(solutions_dir.glob("*.ipynb")) if LAB_FILE.match(p.name)}
    key = str(lab).strip()
    key = key.split("_", 1)[0].zfill(2) if key[:1].isdigit() else key
    if key not in labs:
        raise unknown_name(f"lab (no solutions/{key}_*.ipynb in {solutions_dir})", lab, labs)
    return labs[key]
