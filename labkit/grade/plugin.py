"""A pytest plugin the grader loads next to nbval (``-p labkit.grade.plugin``): it records, as JSON lines in
the file named by ``LABKIT_GRADE_EVENTS``, which notebook cell started and how it ended.
"""

from __future__ import annotations

import json
import os
import re

import pytest

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL = re.compile(r"::Cell (\d+)$")

def _write(item: dict) -> None:
    path = os.environ.get("LABKIT_GRADE_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(item) + "\n")


def _cell(nodeid: str):
    m = _CELL.search(nodeid)
    return int(m.group(1)) if m else None


def _summary(exc: BaseException) -> str:
    """'NotImplementedError: …', 'timed out' or the nbval message — one line, never the whole traceback."""
    message = str(exc)
    if message.startswith("Timeout"):
        return "timed out" + (" (could not be interrupted)" if "Failed to interrupt" in message else "")
    if "Kernel dead" in message:
        return "not run: the kernel had stopped"
    tb = _ANSI.sub("", getattr(exc, "inner_traceback", None) or "")
    lines = [ln.strip() for ln in tb.splitlines() if ln.strip()]
    last = lines[-1] if lines else message
    if last.startswith("KeyboardInterrupt"):      # the runner's per-cell CPU-time limit (labkit.grade.runner)
        return "interrupted: over the CPU-time limit of a cell"
    return last.rstrip(":").strip()[:200]


def pytest_runtest_logstart(nodeid, location):
    cell = _cell(nodeid)
    if cell is not None:
        _write({"cell": cell, "event": "start"})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    cell = _cell(item.nodeid)
    if call.when == "call" and cell is not None:
        error = _summary(call.excinfo.value) if call.excinfo is not None else None
        if call.excinfo is not None and call.excinfo.typename == "Skipped":
            error = None
        _write({"cell": cell, "event": "end", "error": error})
