"""Where labkit's shipped data lives (the repo's ``datasets/`` folder), and reading its TOML files once.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from labkit.paths import repo_root

ENV_VAR = "LABKIT_DATASETS"

def datasets_dir() -> Path:
    """The folder holding labkit's data files (devices.toml, links.toml, carbon.toml, ...).

    >>> from labkit.targets.catalog import datasets_dir
    >>> (datasets_dir() / "devices.toml").is_file()
    True
    """
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"{ENV_VAR}={override!r} is not a folder. Point it at labkit's datasets/ folder, or unset it "
                "to use the one in the repository."
            )
        return path
    path = repo_root() / "datasets"
    if not path.is_dir():
        raise FileNotFoundError(
            f"labkit's datasets/ folder was not found at {path}. labkit expects an editable install from the "
            f"repository (pip install -e .); or set {ENV_VAR} to the folder's path."
        )
    return path


def dataset_path(name: str) -> Path:
    """Path of one file in datasets/, with a clear error if it is missing."""
    path = datasets_dir() / name
    if not path.is_file():
        present = sorted(p.name for p in path.parent.iterdir() if p.is_file())
        raise FileNotFoundError(f"dataset {name!r} not found in {path.parent}. Present: {', '.join(present)}.")
    return path


def file_version(name: str) -> tuple[str, int]:
    """``(path, mtime_ns)`` of a dataset file: a cache key that changes when the file (or folder) does."""
    path = dataset_path(name)
    return str(path), path.stat().st_mtime_ns


def read_toml(name: str) -> dict:
    """The parsed contents of ``datasets/<name>``; parsed once per file version (path and mtime).

    The dict is shared between callers: treat it as read-only.
    """
    return _parse(*file_version(name))


@lru_cache(maxsize=32)
def _parse(path: str, mtime_ns: int) -> dict:
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path} is not valid TOML: {err}") from err


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file (the checksums listed in datasets/README.md)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_files() -> list[Path]:
    """Every data file under datasets/ (recursively), except README.md and hidden files; sorted."""
    root = datasets_dir()
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.name != "README.md"
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def checksum_table() -> str:
    """The Markdown checksum table for datasets/README.md, freshly computed.

    Regenerate after changing a data file:
    ``.venv/bin/python -c "import labkit.targets.catalog as c; print(c.checksum_table())"``
    """
    root = datasets_dir()
    rows = ["| file | sha256 |", "|---|---|"]
    rows += [f"| {p.relative_to(root).as_posix()} | {sha256(p)} |" for p in data_files()]
    return "\n".join(rows)


def catalog_key(name) -> str:
    """A catalog name in its canonical spelling: lowercase kebab-case ('H100_SXM' -> 'h100-sxm').

    Devices, links and carbon regions are all looked up through it.

    >>> catalog_key(" H100_SXM ")
    'h100-sxm'
    """
    if not isinstance(name, str):
        raise ValueError(f"expected a name (string), got {name!r} ({type(name).__name__}).")
    return "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


def named_rows(rows: dict, build) -> tuple[dict, dict]:
    """``({name: build(name, row)}, {alias key: name})`` for a catalog table whose rows may list ``aliases``.

    >>> named_rows({"lte": {"aliases": ["4G"]}}, lambda name, row: name.upper())
    ({'lte': 'LTE'}, {'4g': 'lte'})
    """
    items, aliases = {}, {}
    for name, row in rows.items():
        items[name] = build(name, row)
        for alias in row.get("aliases", []):
            aliases[catalog_key(alias)] = name
    return items, aliases


def lookup(what: str, name, items: dict, aliases: dict, also=()):
    """The catalog item called `name` (any spelling catalog_key accepts, or an alias), else a ValueError listing
    near matches among the names and `also` (names handled before the catalog, such as "local").

    >>> lookup("link", "4G", {"lte": 1}, {"4g": "lte"})
    1
    """
    key = catalog_key(name)
    key = aliases.get(key, key)
    if key not in items:
        from labkit.args import unknown_name

        raise unknown_name(what, name, [*items, *also])
    return items[key]
