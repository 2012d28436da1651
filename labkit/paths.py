"""Where things are: the repository labkit runs from, and the file of the checker the grader loads.

Folders can move without breaking anything: the repository is found by walking up from this package to the
first folder that holds labkit's ``pyproject.toml``, never by counting ``parent`` steps.

>>> (repo_root() / "datasets").is_dir()
True
>>> checker_file().name
'check.py'
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def repo_root() -> Path:
    """The repository that holds this labkit (an editable install): the first ancestor of the package with a
    ``pyproject.toml`` naming labkit. A clear FileNotFoundError when labkit is not installed from its repository."""
    for folder in PACKAGE_DIR.parents:
        project = folder / "pyproject.toml"
        if project.is_file() and 'name = "labkit"' in project.read_text(encoding="utf-8", errors="replace"):
            return folder
    raise FileNotFoundError(
        f"labkit's repository was not found above {PACKAGE_DIR}. labkit expects an editable install from its "
        "repository (pip install -e .), which ships datasets/, solutions/ and labs/ beside the package."
    )


def checker_file() -> Path:
    """The source file of ``lk.check`` (labkit.grade.check), which the grader loads afresh for every check cell."""
    return Path(importlib.util.find_spec("labkit.grade.check").origin)
