"""The rule that a student notebook never hands out an answer: what ``labkit build`` refuses (every lab).

A visible cell (anything not tagged ``hidden``) must not hold an expected value or an oracle that computes it.
Checked by rule, on the solution notebook, cell by cell (docs/AUTHORING.md has the why and the fixes):

1. ``expected=`` anywhere in a visible cell (an lk.check's third positional argument counts too): the exact,
   scored comparison goes in a hidden cell; a visible check uses ``test=`` (a property, a bound, a
   re-derivation from the learner's own measurements) or ``test=lk.matches(digest)`` for an exact answer.
2. A ``def``, ``class`` or ``import`` in a visible check cell: a helper there is an oracle a learner can copy.
3. A comparison (``==``, ``!=``, ``in``, ``is``) with a literal other than 0, 1, -1, True, False, None in a
   visible check cell: ``test=lambda v: v == 254`` prints the answer.
4. ``between=(lo, hi)`` with literal bounds less than 5 % apart: a range that narrow is the answer.
5. A visible check that calls a function defined in a visible non-answer cell, or any visible definition named
   like an oracle (``*expected*``, ``*oracle*``, ``*solution*``, ``_q3_...``): the helper is the answer.

A rule cannot prove a check is honest (``test=lambda v: np.allclose(v, data * 3)`` is an oracle it does not
see); reviewers read the visible checks too.

>>> import nbformat
>>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('lk.check("00.q1", lambda: x, expected=3)')])
>>> leaks(nb, "00_x.ipynb")[0].split(": ", 1)[1][:40]
'a visible cell holds `expected=`: put th'
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from labkit.grade.notebook import BEGIN, cell_role, python_source, source_of

_HARMLESS = (0, 1, -1, True, False, None)
_ORACLE_NAME = re.compile(r"expected|oracle|solution|^_?q\d+_", re.IGNORECASE)
_EXPECTED = re.compile(r"\bexpected\s*=")


def _where(path, index, cell) -> str:
    return f"{Path(path).name}, cell {index} (id {cell.get('id', '?')!r})"


def _parse(src: str):
    try:
        return ast.parse(python_source(src))
    except (SyntaxError, ValueError):
        return None


def _revealing(node) -> bool:
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, str):
            return bool(v)
        return isinstance(v, (int, float, complex)) and not any(v == h and type(v) is not str for h in _HARMLESS
                                                                 if h is not None)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _revealing(node.operand) if not (isinstance(node.operand, ast.Constant)
                                               and node.operand.value == 1) else False
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_revealing(e) for e in node.elts)
    return False


def _literal_number(node):
    try:
        v = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _visible_source(cell) -> str:
    """What the learner sees of a cell: an answer cell's solution regions are dropped."""
    src = source_of(cell)
    if BEGIN not in src:
        return src
    from labkit.grade.build import scaffold

    return scaffold(src)


def leaks(nb, path) -> list[str]:
    """Every way a visible cell of solution notebook `nb` hands out an answer, one message each ([] if none)."""
    problems, helpers = [], {}
    roles = [cell_role(c) for c in nb.cells]
    for i, cell in enumerate(nb.cells):
        if roles[i] != "given" or cell.cell_type != "code":
            continue
        tree = _parse(source_of(cell))
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                helpers[node.name] = _where(path, i, cell)
                if _ORACLE_NAME.search(node.name):
                    problems.append(f"{_where(path, i, cell)}: a visible cell defines {node.name!r}, named like "
                                    "an oracle: oracles go in a cell tagged hidden.")
    for i, cell in enumerate(nb.cells):
        where, role = _where(path, i, cell), roles[i]
        if role == "hidden":
            continue
        try:
            seen = _visible_source(cell)
        except ValueError:
            continue        # a broken solution region: validate() reports it
        if _EXPECTED.search(seen):
            problems.append(f"{where}: a visible cell holds `expected=`: put the exact check in a cell tagged "
                            "hidden, and check visibly with test= (a property, a bound, a re-derivation, or "
                            "lk.matches(digest)).")
        if role != "check":
            continue
        tree = _parse(seen)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
                what = getattr(node, "name", None) or "an import"
                problems.append(f"{where}: a visible check cell defines {what!r} (line {node.lineno}): helpers "
                                "in a check cell are oracles a learner can copy; move them to a hidden cell.")
            elif isinstance(node, ast.Compare) and any(
                    isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot)) for op in node.ops):
                if any(_revealing(side) for side in (node.left, *node.comparators)):
                    problems.append(f"{where}: a visible check compares with a literal (line {node.lineno}): "
                                    "that literal is the answer; use lk.matches(digest) or a hidden check.")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check":
                if len(node.args) > 2:
                    problems.append(f"{where}: a visible lk.check passes an expected value (line {node.lineno}).")
                for kw in node.keywords:
                    if kw.arg == "between" and isinstance(kw.value, (ast.Tuple, ast.List)) and len(kw.value.elts) == 2:
                        lo, hi = (_literal_number(e) for e in kw.value.elts)
                        if lo is not None and hi is not None and hi - lo < 0.05 * max(abs(lo), abs(hi)):
                            problems.append(f"{where}: between=({lo:g}, {hi:g}) is so narrow that it gives the "
                                            f"answer away (line {node.lineno}); check a property, or go hidden.")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers:
                problems.append(f"{where}: a visible check calls {node.func.id}(), defined in the visible cell "
                                f"{helpers[node.func.id]}: that helper is an oracle; move it to a hidden cell.")
    return problems
