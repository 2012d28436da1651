"""Hints on request: ``lk.hint("05.q2")`` shows the next rung of a question's hint ladder (every lab).

An author writes a question's hints as ``### HINT:`` lines in its answer cell, in order: the concept, then the
approach, then the API. ``labkit build`` does NOT copy them into the scaffold (which shows only the
``### GOAL:``); it stores them in the student notebook's metadata (``labkit.hints``), which the learner's
kernel can read but which holds no answer. Each call reveals one more rung and shows every rung revealed so
far. The output carries ``{"labkit": {"hint": question, "level": n}}`` in its metadata, so a saved notebook
records how many hints were used; ``labkit grade`` puts that in the gradebook (``hints:<id>`` columns) and the
instructor decides whether hints cost points. Clearing the outputs hides the record: not a sandbox.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

_revealed: dict[str, int] = {}
NOTEBOOK_ENV = "LABKIT_NOTEBOOK"     # path of the lab notebook, when the kernel's folder has several


@dataclass(frozen=True)
class Hint:
    """The hints of `question` revealed so far: `level` of `of` rungs, `texts` in order."""

    question: str
    level: int
    of: int
    texts: tuple[str, ...]
    _shown: list = field(default_factory=list, repr=False, compare=False)

    def text(self) -> str:
        if not self.of:
            return f"{self.question} has no hints: reread the question and the lab's introduction."
        lines = [f"Hint {i}/{self.of} for {self.question}: {t}" for i, t in enumerate(self.texts, 1)]
        if self.level == self.of:
            lines.append("(that was the last hint)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def _ipython_display_(self):
        if self._shown:      # hint() has displayed it already; the cell's Out[] would show it twice
            self._shown.clear()
            return
        _show(self)


def _candidates(lab: str, notebook):
    if notebook:
        yield Path(notebook)
        return
    if os.environ.get(NOTEBOOK_ENV):
        yield Path(os.environ[NOTEBOOK_ENV])
    yield from sorted(Path.cwd().glob(f"{lab}_*.ipynb"))
    try:
        from labkit.paths import repo_root

        yield from sorted((repo_root() / "labs").glob(f"{lab}_*.ipynb"))
    except Exception:
        return


def ladder(question: str, notebook=None) -> tuple[str, ...]:
    """The hint ladder of `question` stored in the lab's student notebook (``labs/NN_*.ipynb``); () if none.

    >>> len(ladder("00.q1v")) >= 1
    True
    """
    m = re.match(r"^(\d\d)\.", str(question))
    if not m:
        raise ValueError(f"lk.hint: a question id looks like '05.q2' (lab, dot, name), got {question!r}.")
    for path in _candidates(m.group(1), notebook):
        try:
            meta = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {}).get("labkit", {})
        except (OSError, ValueError):
            continue
        hints = meta.get("hints")
        if isinstance(hints, dict):
            if question not in hints:
                from labkit.args import unknown_name

                raise unknown_name(f"question of lab {m.group(1)}", question, hints)
            return tuple(str(h) for h in hints[question])
    raise ValueError(f"lk.hint: no lab notebook {m.group(1)}_*.ipynb with hints found here or in labs/; "
                     f"set {NOTEBOOK_ENV} to the notebook's path.")


def hint(question: str, *, notebook=None) -> Hint:
    """Reveal the next hint of `question` (concept, then approach, then API) and show all revealed so far.

    >>> h = hint("00.q1v")  # doctest: +ELLIPSIS
    Hint 1/...
    >>> h.level
    1
    """
    rungs = ladder(question, notebook)
    level = min(_revealed.get(question, 0) + 1, len(rungs))
    _revealed[question] = level
    result = Hint(question, level, len(rungs), rungs[:level])
    _show(result)
    result._shown.append(True)
    return result


def _show(result: Hint) -> None:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:
        shell = None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from IPython.display import display

        display({"text/plain": result.text()}, raw=True,
                metadata={"labkit": {"hint": result.question, "level": result.level}})
    else:
        print(result.text())


def hints_used(nb) -> dict[str, int]:
    """Question id -> the highest hint level a saved notebook shows (from its outputs' metadata).

    >>> hints_used({"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data",
    ...     "metadata": {"labkit": {"hint": "05.q2", "level": 2}}}]}]})
    {'05.q2': 2}
    """
    used: dict[str, int] = {}
    for cell in (nb.get("cells") or []) if isinstance(nb, dict) else []:
        if not isinstance(cell, dict):
            continue
        for out in cell.get("outputs") or []:
            meta = (out.get("metadata") or {}).get("labkit") if isinstance(out, dict) else None
            if isinstance(meta, dict) and isinstance(meta.get("hint"), str):
                level = meta.get("level")
                if isinstance(level, int) and not isinstance(level, bool) and level > 0:
                    used[meta["hint"]] = max(used.get(meta["hint"], 0), level)
    return used
