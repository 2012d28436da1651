"""`make mutate`: mutation testing of labkit's core modules with mutmut, against bench/mutation_budget.toml.

For each module in the budget file, the tree is copied to a scratch folder (your checkout is never touched),
mutmut mutates only the listed functions of that one file and runs only that module's test files against
each mutant. A mutant that no test notices "survives". Each survivor must be either killed by a new test or
listed in the budget file as equivalent (same behaviour for every input), with the reason; the run fails when
a module has more unexplained survivors than its budget allows.

    python bench/mutate.py                 # every module in the budget file
    python bench/mutate.py check cut       # some of them
    python bench/mutate.py check --tests tests/test_check.py   # another test selection (e.g. a "before" score)
    python bench/mutate.py sim --only labkit.deploy.sim.x__run__mutmut_12    # re-check named mutants (fast)

Not part of `make test`: a module takes minutes (one pytest run per mutant, forked by mutmut).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

BUDGET = Path(__file__).resolve().parent / "mutation_budget.toml"
# the tree to mutate: this checkout, or another one (e.g. `git archive` of an older commit, for a "before" score)
ROOT = Path(os.environ.get("LABKIT_MUTATE_ROOT") or Path(__file__).resolve().parents[1])
COPY = ("labkit", "tests", "datasets", "pyproject.toml")


def _scratch(name: str, spec: dict, tests: list[str]) -> Path:
    """A copy of the tree with a [tool.mutmut] section for this module."""
    tree = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]        # one scratch folder per tree and module
    work = Path(tempfile.gettempdir()) / f"labkit-mutate-{os.getuid()}" / f"{name}-{tree}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for item in COPY:
        src = ROOT / item
        (shutil.copytree(src, work / item, ignore=ignore) if src.is_dir() else shutil.copy2(src, work / item))
    toml = (work / "pyproject.toml").read_text()
    toml += ("\n[tool.mutmut]\nsource_paths = [\"labkit\"]\n"
             f"only_mutate = [\"{spec['file']}\"]\n"
             f"pytest_add_cli_args_test_selection = {tests!r}\n"
             f"pytest_add_cli_args = {['-p', 'no:cacheprovider', '-q', '-x', *spec.get('pytest_args', [])]!r}\n"
             ).replace("'", '"')
    # mutmut 3.8 (process_isolation "fork") stops a mutant after ceil((the seconds its covering tests took in
    # the stats run + timeout_constant) x timeout_multiplier x 2) seconds of CPU time (RLIMIT_CPU) and counts it
    # as killed ("timeout"). Even at the default multiplier (15) it stopped mutants whose tests all pass in ~20 s
    # in one pytest process (cause inside mutmut's forked runs, not found), so run_module re-checks every
    # timeout (_passes_alone); a module whose code loops sets test_deadline_s and may lower the multiplier.
    for key in ("timeout_multiplier", "timeout_constant"):
        if key in spec:
            toml += f"{key} = {float(spec[key])!r}\n"
    (work / "pyproject.toml").write_text(toml)
    return work


def _mutant_globs(spec: dict) -> list[str]:
    """mutmut's names for the mutants of the listed functions (methods: Class.method)."""
    module = spec["file"].removesuffix(".py").replace("/", ".")
    globs = []
    for fn in spec["functions"]:
        if "." in fn:
            cls, meth = fn.split(".")
            globs.append(f"{module}.xǁ{cls}ǁ{meth}__mutmut_*")
        else:
            globs.append(f"{module}.x_{fn}__mutmut_*")
    return globs


def _check_functions_exist(spec: dict) -> None:
    tree = ast.parse((ROOT / spec["file"]).read_text())
    names = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    names |= {f"{c.name}.{n.name}" for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
              for n in c.body if isinstance(n, ast.FunctionDef)}
    missing = [f for f in spec["functions"] if f not in names]
    if missing:
        raise SystemExit(f"{spec['file']}: no function {missing} (update bench/mutation_budget.toml)")


def _env(work: Path, deadline_s=None, **extra: str) -> dict:
    """The tests' environment in a mutation run: they run in work/mutants/, a copy of the code and tests only, so
    the catalog is pointed at work/datasets; with `deadline_s`, tests/conftest.py fails a test that runs longer
    (a mutant that loops forever)."""
    env = {**os.environ, "MPLBACKEND": "Agg", "LABKIT_DATASETS": str(work / "datasets"), **extra}
    if deadline_s:
        env["LABKIT_TEST_DEADLINE_S"] = str(deadline_s)
    return env


def _mutmut(work: Path, *args: str, check=True, deadline_s=None) -> str:
    env = _env(work, deadline_s)
    out = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, env=env, text=True,
                         capture_output=True, check=False)
    if check and out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
        raise SystemExit(f"mutmut {args[0]} failed in {work}")
    return out.stdout


def _passes_alone(work: Path, mutant: str, tests: list[str], spec: dict) -> bool:
    """True if `mutant`'s module tests all pass in one plain pytest process (no fork, a wall-clock deadline per
    test from tests/conftest.py): a mutant that really never ends fails there at the deadline."""
    deadline = float(spec.get("test_deadline_s", 120))
    env = _env(work, deadline, MUTANT_UNDER_TEST=mutant)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", *spec.get("pytest_args", []),
           *tests]
    try:
        out = subprocess.run(cmd, cwd=work / "mutants", env=env, capture_output=True, text=True,
                             timeout=20 * deadline)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0


def _diff_lines(diff: str) -> tuple[str, str]:
    """(the line as written, the line as mutated) from mutmut's diff, whitespace-trimmed."""
    minus = [_squash(x[1:]) for x in diff.splitlines() if x.startswith("-") and not x.startswith("---")]
    plus = [_squash(x[1:]) for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++")]
    return " / ".join(minus), " / ".join(plus)


def _squash(line: str) -> str:
    """A line with its whitespace runs made single spaces, so alignment before a comment never matters."""
    return " ".join(line.split())


def run_module(name: str, spec: dict, tests: list[str] | None, only: list[str] | None = None) -> dict:
    _check_functions_exist(spec)
    tests = tests or spec["tests"]
    work = _scratch(name, spec, tests)
    globs = [m for m in only if m.startswith(spec["file"].removesuffix(".py").replace("/", "."))] if only \
        else _mutant_globs(spec)
    if not globs:
        raise SystemExit(f"{name}: none of the --only mutants belong to {spec['file']}")
    print(f"== {name}: {spec['file']} ({', '.join(spec['functions'])}) against {' '.join(tests)}", flush=True)
    _mutmut(work, "run", "--max-children", str(spec.get("children", 2)), *globs,
            deadline_s=spec.get("test_deadline_s"))
    status = {}
    for line in _mutmut(work, "results", "--all", "true").splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m and any(Path(m[1]).match(g) or re.fullmatch(g.replace("*", ".*"), m[1]) for g in globs):
            status[m[1]] = m[2].strip()
    # mutmut's "timeout" is not a kill to trust: in its fork mode, mutants whose tests all pass have run past the
    # CPU-time limit (sim and fastpath, 2026-12-03: 25 and 33 of them). Re-run each in one pytest process.
    for mutant in [m for m, state in status.items() if state == "timeout"]:
        if _passes_alone(work, mutant, tests, spec):
            print(f"  {mutant}: mutmut's timeout, but its tests pass in one process: a survivor", flush=True)
            status[mutant] = "survived"
    # `context` (optional): a line that must also appear, unchanged, around the mutated one, for a `was`/`now`
    # pair that occurs at several places of which only one is equivalent (e.g. `seq += 1` -> `seq = 1`)
    equivalent = [(_squash(e["was"]), _squash(e["now"]), e["reason"], _squash(e.get("context", "")))
                  for e in spec.get("equivalent", [])]
    survivors, explained, used = [], [], set()
    for mutant, state in sorted(status.items()):
        if state not in ("survived", "no tests"):
            continue
        diff = _mutmut(work, "show", mutant)
        was, now = _diff_lines(diff)
        around = {_squash(x[1:]) for x in diff.splitlines() if x.startswith(" ")}
        hit = next((i for i, (w, n, _, c) in enumerate(equivalent) if w == was and n == now
                    and (not c or c in around)), None)
        if hit is None:
            survivors.append((mutant, state, was, now))
        else:
            used.add(hit)
            explained.append((mutant, equivalent[hit][2]))
    counts = {s: sum(v == s for v in status.values()) for s in set(status.values())}
    if not status or counts.get("not checked"):
        raise SystemExit(f"{name}: mutmut left {counts.get('not checked', 'all')} mutants unchecked (see {work})")
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    total = len(status)
    scored = total - len(explained)
    result = {"module": name, "mutants": total, "killed": killed, "equivalent": len(explained),
              "unexplained": len(survivors), "budget": spec.get("unexplained", 0),
              "score": killed / scored if scored else 1.0, "counts": counts}
    for mutant, state, was, now in survivors:
        print(f"  SURVIVED {mutant} ({state})\n    - {was}\n    + {now}")
    stale = [] if only else [equivalent[i][:2] for i in range(len(equivalent)) if i not in used]
    for was, now in stale:
        print(f"  note: budget lists an equivalent mutant no longer produced: {was!r} -> {now!r}")
    print(f"  {name}: {total} mutants, {killed} killed, {len(explained)} equivalent (listed), "
          f"{len(survivors)} unexplained (budget {result['budget']}); "
          f"score {result['score']:.1%} of non-equivalent; states {counts}", flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module keys of bench/mutation_budget.toml (default: all)")
    parser.add_argument("--tests", nargs="+", help="run these test files instead of the module's own")
    parser.add_argument("--only", nargs="+", help="run only these mutants (names as printed), to re-check survivors")
    args = parser.parse_args(argv)
    budget = tomllib.loads(BUDGET.read_text())["modules"]
    names = args.modules or list(budget)
    unknown = [n for n in names if n not in budget]
    if unknown:
        raise SystemExit(f"unknown module {unknown}; allowed: {', '.join(budget)}")
    results = [run_module(n, budget[n], args.tests, args.only) for n in names]
    print("\nmodule       mutants  killed  equivalent  unexplained/budget  score")
    for r in results:
        print(f"{r['module']:<12} {r['mutants']:>7} {r['killed']:>7} {r['equivalent']:>11} "
              f"{r['unexplained']:>11}/{r['budget']:<6}  {r['score']:6.1%}")
    over = [r["module"] for r in results if r["unexplained"] > r["budget"]]
    if over:
        print(f"over budget: {', '.join(over)}: kill the survivors with a test, or list them as equivalent "
              "with the reason in bench/mutation_budget.toml")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
