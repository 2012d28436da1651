"""The import contract of docs/ARCHITECTURE.md, enforced: who may import whom, and how big a module may grow.

Every import of a labkit module anywhere in labkit/ — at the top of a file or inside a function — is read with
``ast`` and mapped to its *unit* (a top-level folder such as ``estimate``, or a foundation module such as
``args``). A unit may import itself, the foundation, and the units listed for it in ALLOWED; nothing else,
except the one named exception.
"""

from __future__ import annotations

import ast
import shutil
import types
from pathlib import Path

import pytest

import labkit as lk

PACKAGE = Path(lk.__file__).resolve().parent

# The foundation: small leaves every unit may import. They import only each other, in this order.
FOUNDATION = ("args", "units", "paths", "dtypes", "measure", "cluster", "allocator")
FOUNDATION_ALLOWED = {"args": set(), "units": set(), "paths": set(), "dtypes": {"args"}, "allocator": set(),
                      "measure": {"args", "units"}, "cluster": {"args"}}

# The flow: targets + model -> profile -> estimate -> decisions -> report; grading beside it.
SIMULATOR = {"targets", "carbon", "profile", "zoo", "systolic", "estimate", "calibration", "compile", "compress",
             "partition", "deploy", "llm", "federated", "ops", "plot"}
ALLOWED: dict[str, set[str]] = {
    "targets": set(),
    "carbon": {"targets"},                       # a leaf with data, below estimate
    "profile": set(),                            # model -> Profile; never estimate
    "zoo": {"targets", "llm"},                   # the models and their data; lk.zoo.load("gpt") is llm's model
    "systolic": set(),                           # the array model estimate uses, its simulator and pictures
    "estimate": {"targets", "carbon", "systolic"},   # never the profiler, plot or a decision
    "compile": {"profile"},
    "calibration": {"targets", "profile", "zoo", "estimate", "compile", "llm"},   # llm: the GPT's rows of validate
    "compress": {"zoo", "compile", "profile"},
    "partition": {"targets", "estimate", "profile"},
    "llm": {"targets", "profile", "estimate"},   # the small GPT and published LLMs, on paper and run
    "deploy": {"targets", "carbon", "zoo", "profile", "estimate", "compile", "llm"},
    "federated": {"targets", "carbon", "zoo", "profile", "estimate"},   # clients on catalog devices and links   # fleets: service times from estimate
    "ops": {"deploy", "targets", "zoo"},           # operate a fleet: spec -> plan -> apply, SLO alerts
    "plot": SIMULATOR - {"plot"},                # the report end: may read anything of the simulator
    "grade": set(),                              # beside the simulator, never in it
    "cli": SIMULATOR | {"grade"},                # the `labkit` command dispatches to everything
}
# The one accepted exception: lk.device("local") measures this machine on first use (lazily, in that call).
EXCEPTIONS = {("targets/devices.py", "calibration")}
MAX_LINES = 400


def _unit(module: str) -> str | None:
    """'labkit.estimate.model' -> 'estimate'; 'labkit' itself (the flat API) -> '__init__'."""
    parts = module.split(".")
    if parts[0] != "labkit":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, package_root: Path):
    """(line, imported labkit module) for every import in `path`, relative ones resolved."""
    here = list(path.relative_to(package_root.parent).parts[:-1])   # the package the file is in
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                module = node.module or ""
            if module == "labkit":      # from labkit import carbon -> the unit is what is imported
                for alias in node.names:
                    sub = package_root / alias.name
                    is_unit = sub.is_dir() or sub.with_suffix(".py").is_file()
                    yield node.lineno, f"labkit.{alias.name}" if is_unit else "labkit"
            else:
                yield node.lineno, module


def violations(package_root: Path = PACKAGE) -> list[str]:
    """Every import in `package_root` that the contract forbids, as 'file:line: unit -> unit (why)'."""
    found = []
    for path in sorted(package_root.rglob("*.py")):
        rel = path.relative_to(package_root).as_posix()
        src_unit = rel.split("/")[0].removesuffix(".py")
        if src_unit in ("__init__", "__main__"):
            continue                                 # the flat API and `python -m labkit` sit above everything
        for line, module in _imports(path, package_root):
            dst = _unit(module)
            if dst is None or dst == src_unit or dst == "__init__" and src_unit == "cli":
                continue
            if src_unit in FOUNDATION:
                ok = dst in FOUNDATION_ALLOWED[src_unit]
            else:
                ok = dst in FOUNDATION or dst in ALLOWED.get(src_unit, set())
            if not ok and (rel, dst) not in EXCEPTIONS:
                why = ("not a known unit: add it to tests/test_architecture.py and docs/ARCHITECTURE.md"
                       if src_unit not in ALLOWED and src_unit not in FOUNDATION else "not allowed")
                found.append(f"{rel}:{line}: {src_unit} -> {dst} ({module}; {why})")
    return found


def oversized(package_root: Path = PACKAGE) -> list[str]:
    return [f"{p.relative_to(package_root)}: {n} lines" for p in sorted(package_root.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]


def test_every_import_follows_the_contract():
    assert violations() == []


def test_the_contract_catches_a_deliberate_violation(tmp_path):
    # a copy of the real package, plus one module that breaks each kind of rule
    copy = tmp_path / "labkit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "grade" / "evil.py").write_text("def f():\n    from labkit.estimate import estimate\n")
    (copy / "profile" / "evil.py").write_text("from labkit import estimate\n")
    (copy / "estimate" / "evil.py").write_text("from ..plot import roofline\n")
    (copy / "args.py").write_text((copy / "args.py").read_text() + "\nimport labkit.targets\n")
    found = violations(copy)
    assert len(found) == 4, found
    assert any(v.startswith("grade/evil.py:2: grade -> estimate") for v in found)
    assert any(v.startswith("profile/evil.py:1: profile -> estimate") for v in found)
    assert any(v.startswith("estimate/evil.py:1: estimate -> plot") for v in found)
    assert any(v.startswith("args.py:") and "args -> targets" in v for v in found)


def test_the_one_exception_is_real_and_named_once():
    # if lk.device("local") stopped importing calibration, the exception would be dead text
    src = (PACKAGE / "targets" / "devices.py").read_text()
    assert "from labkit.calibration" in src
    assert len(EXCEPTIONS) == 1


def test_no_module_is_over_the_size_budget():
    assert oversized() == []


def test_the_size_budget_catches_a_big_module(tmp_path):
    (tmp_path / "big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert oversized(tmp_path) == [f"big.py: {MAX_LINES + 1} lines"]


NAMESPACES = [name for name in lk.__all__ if isinstance(getattr(lk, name), types.ModuleType)]


@pytest.mark.parametrize("name", ["lk", *NAMESPACES])
def test_every_namespace_lists_what_it_offers_and_names_near_matches(name):
    ns = lk if name == "lk" else getattr(lk, name)
    public = ns.__all__
    assert dir(ns) == sorted(public)
    for attr in public:
        assert getattr(ns, attr) is not None
    with pytest.raises(AttributeError, match="Did you mean"):
        getattr(ns, public[0] + "x")
