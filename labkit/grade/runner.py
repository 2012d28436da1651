"""Run one prepared submission through nbval in a fresh, sandboxed kernel, under time, memory and disk limits.

``run_notebook`` is a pure function of its arguments (a notebook as JSON text, the lab's extra files, limits,
the sandbox mode), so the same call runs in a thread here or as a Ray task on another machine (which then
applies the same sandbox, or refuses). It:

1. *arms* the instructor's check and hidden cells. In a learner's notebook every ``lk.check(q, answer, ...)``
   call is rewritten to ``lk.check(q, answer)`` — the oracle arguments (``expected=``, ``between=``, ``test=``,
   tolerances) and the helpers only they use are removed, so no oracle ever reaches the kernel — and ``lk`` is
   a checker loaded fresh from ``labkit/grade/check.py`` whose ``check`` writes the answer's value as data.
   In the reference run (``reference=True``: the solution itself, no learner code) ``check`` writes the oracle,
   and a ``test=`` check judges the learners' exported values it is given (``answers``) as data;
2. runs ``pytest --nbval-lax --nbval-current-env --nbval-cell-timeout S`` in the sandbox (``labkit.grade.sandbox``)
   or, with mode ``"none"``, in a temporary folder with the grader's rights;
3. watches the process tree every 0.1 s: over the memory cap (the summed RSS of pytest + kernel + children,
   or, once that is over the cap, their proportional set size, which counts shared pages once) or the notebook time
   limit, or a kernel that died in the middle of a cell, and the whole tree is killed. With a per-cell CPU-time
   limit (``Limits.cell_cpu_s``), a cell whose kernel has used that many CPU seconds since the cell started is
   interrupted (KeyboardInterrupt: the cell fails, the next cells run); a cell that goes on for as many CPU
   seconds again ignored the interrupt, and the tree is killed. CPU seconds do not grow when the machine is
   loaded, so this stops a busy loop quickly without failing slow honest cells; the wall-clock limits are then
   only ceilings for a hang (a cell that sleeps or waits);
4. returns the exported lines (answers, or oracles), the cell events and why it stopped, if it was stopped.
   Scoring happens in the grader's process (``labkit.grade.oracle``), never here.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from labkit.grade.cell_cpu import CellCPU
from labkit.grade.sandbox import DEFAULT_MAX_PROCS, UNSAFE, WORK, Box
from labkit.measure import pss_bytes
from labkit.paths import checker_file

EVENTS_ENV = "LABKIT_GRADE_EVENTS"
_POLL_S = 0.1
_TAIL_BYTES = 16_000
_MAX_EXPORT_BYTES = 64 * 2**20     # what the grader reads of the answers file
# CPython 3.11 keeps the AST converter's recursion depth in state shared by every thread (gh-106905): two grading
# threads arming notebooks at once (ast.parse/unparse in answer_only) once failed a whole run with a spurious
# "SystemError: AST constructor recursion depth mismatch". Arming takes milliseconds, so it is done one at a time.
_ARM_LOCK = threading.Lock()


@dataclass(frozen=True)
class Limits:
    """Per-cell and per-notebook time limits (s), memory cap (MiB: summed RSS, or PSS once RSS is over it), threads per kernel, disk cap (MiB
    of each writable place in the sandbox), processes + threads of the run, and the per-cell CPU-time limit (CPU
    seconds of the kernel and its children while one cell runs; None: no CPU limit)."""

    cell_timeout_s: float
    timeout_s: float
    memory_mb: float
    threads: int = 1
    disk_mb: float = 512
    max_procs: int = DEFAULT_MAX_PROCS
    cell_cpu_s: float | None = None


@dataclass(frozen=True)
class RunResult:
    """What happened when a notebook ran: exported lines, cell events, why it was stopped, the sandbox mode;
    ``checks`` (question, passed, message) is filled in by the grader's judge, never by the kernel."""

    exports: tuple         # answer lines (learner run) or oracle lines (reference run), as written, in order
    events: tuple          # dicts from the pytest plugin: {"cell", "event": "start"|"end", "error"}
    stopped: str | None    # None, or why the run was killed
    wall_s: float
    peak_rss_mb: float
    output_tail: str
    sandbox: str = "bwrap"
    checks: tuple = ()     # judged results: {"question", "passed", "message"}


# pytest, minus 2 s of start-up: jsonschema (imported by nbformat, imported by nbval) would compile an RFC 3987
# grammar that notebook validation never uses. Only third-party plugins named with -p load (no autoload).
_PYTEST_MAIN = ("import sys; sys.modules['rfc3987_syntax'] = None; import pytest; "
                "sys.exit(pytest.main(sys.argv[1:]))")

_ARMED = '''\
# labkit grade: the instructor's cell, run with a freshly loaded checker
def __labkit_armed_cell():
    import builtins as b
    import importlib.util as u
    import sys
    name = "labkit_grade_checker"
    spec = u.spec_from_file_location(name, {path!r})
    mod = u.module_from_spec(spec)
    sys.modules[name] = mod   # only while it loads (dataclasses look the module up)
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    user = b.globals()
    ns = b.dict(user)
    ns["lk"] = mod.{factory}
    b.exec(b.compile({source!r}, "<instructor cell>", "exec"), ns)
    for k, v in b.list(ns.items()):
        if k not in ("lk", "__builtins__", "__labkit_armed_cell"):
            user[k] = v
__labkit_armed_cell()
del __labkit_armed_cell
'''


def _is_check(node) -> bool:
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr == "check" and isinstance(f.value, ast.Name)
            and f.value.id == "lk" and bool(node.args))


class _AnswerOnly(ast.NodeTransformer):
    def __init__(self, keep=()):
        self.keep = set(keep)

    def visit_Call(self, node):
        self.generic_visit(node)
        if not _is_check(node):
            return node
        if isinstance(node.args[0], ast.Constant) and node.args[0].value in self.keep:
            return node       # a kernel oracle (the lab's metadata says so): the kernel evaluates it
        answer = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "answer"), ast.Constant(None))
        return ast.Call(node.func, [node.args[0], answer], [])


def answer_only(source: str, keep=()) -> str:
    """A check cell as the learner's kernel gets it: each ``lk.check(q, answer, <oracle>...)`` becomes
    ``lk.check(q, answer)``, and top-level definitions that only the oracles used are dropped.

    >>> print(answer_only('def _ref():\\n    return 45\\nlk.check("00.q1", lambda: total, expected=_ref(), points=2)'))
    lk.check('00.q1', lambda: total)
    """
    tree = _AnswerOnly(keep).visit(ast.parse(source))
    while True:     # drop definitions nothing left uses (an oracle's helpers), until none is dropped
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        keep = [st for st in tree.body if not _defines(st) or _defines(st) & used]
        if len(keep) == len(tree.body):
            break
        tree.body = keep
    return ast.unparse(ast.fix_missing_locations(tree))


def _defines(st) -> set:
    if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {st.name}
    if isinstance(st, (ast.Assign, ast.AnnAssign)):
        targets = st.targets if isinstance(st, ast.Assign) else [st.target]
        if all(isinstance(t, ast.Name) for t in targets):
            return {t.id for t in targets}
    return set()


def arm(notebook: str, code_roles, export_path: str, reference: bool = False, answers_file: str | None = None,
        kernel_oracles=()) -> str:
    """The notebook with every instructor check/hidden code cell wrapped to use a fresh checker (see above);
    a reference run's ``test=`` checks judge the answers in `answers_file` (check.oracle_labkit)."""
    from labkit.grade.notebook import python_source

    nb = json.loads(notebook)
    checker = str(checker_file())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if reference:
        factory = f"oracle_labkit({export_path!r}, {answers_file!r})"
    else:
        factory = f"exporting_labkit({export_path!r})"
    for cell, (role, _) in zip(code, code_roles):
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if role in ("check", "hidden"):
            body = python_source(src) if reference else answer_only(python_source(src), kernel_oracles)
            cell["source"] = _ARMED.format(path=checker, factory=factory, source=body)
        cell["outputs"], cell["execution_count"] = [], None
    return json.dumps(nb)


def _kill(procs) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def _read_lines(path: Path, limit: int = 16 * 2**20) -> list[dict]:
    out = []
    try:
        with open(path, "rb") as f:
            text = f.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


def _mid_cell(events: list[dict]) -> bool:
    """True when the last cell that started has not ended (so a vanished kernel died in that cell)."""
    started = [e["cell"] for e in events if e.get("event") == "start"]
    ended = {e["cell"] for e in events if e.get("event") == "end"}
    return bool(started) and started[-1] not in ended


def _env(base: str, threads: int, sandboxed: bool) -> dict:
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "LABKIT_CACHE_DIR", "LABKIT_DATA_DIR")
    env = {k: v for k, v in os.environ.items() if k in keep} if sandboxed else {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "LABKIT_GRADE")) and k != "PYTHONSTARTUP"}
    if sandboxed:     # the calibration cache: read-only copies of the host's files, in the work folder
        env["LABKIT_CACHE_DIR"] = f"{base}/{_CACHE}"
        env["HOME"] = base
    env.update({EVENTS_ENV: f"{base}/.labkit/events.jsonl", "IPYTHONDIR": f"{base}/.ipython", "MPLBACKEND": "Agg",
                "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, str(max(1, threads)))
    return env


_CACHE = ".cache/labkit"
_ANSWERS = ".labkit-answers.json"      # a reference run's input: submission key -> question -> exported value


def _calibrations() -> list[Path]:
    """The host's calibration files (labkit.calibration's cache; read here, not imported: grade/ stays apart),
    so a sandboxed lab 00 does not recalibrate in every kernel."""
    folder = os.environ.get("LABKIT_CACHE_DIR")
    if not folder:
        try:
            import platformdirs

            folder = platformdirs.user_cache_dir("labkit")
        except ImportError:
            return []
    try:
        return [f for f in Path(folder).glob("calibration-*.json") if f.is_file() and f.stat().st_size < 2**20]
    except OSError:
        return []


def run_notebook(notebook: str, code_roles, limits: Limits, lab_files: dict | None = None,
                 name: str = "submission.ipynb", sandbox: str = "bwrap", reference: bool = False,
                 answers: dict | None = None, kernel_oracles=()) -> RunResult:
    """Execute a prepared notebook (JSON text) with nbval under `limits`, in `sandbox` ("bwrap", or "none" for
    --unsafe-no-sandbox); see the module docstring. A Ray worker without a sandbox refuses (SandboxUnavailable).
    `answers` (reference runs only): submission key -> question -> the value its kernel exported, for the
    ``test=`` checks to judge.

    A run in which not one instructor check reported and nothing was stopped (a kernel that failed to start on
    a loaded machine, seen once in CI) is run once more, so a transient failure does not cost a student marks.
    """
    if sandbox != UNSAFE:
        from labkit.grade.sandbox import mode

        sandbox = mode()        # raises here, on this machine, when bwrap cannot start
    result = _run_once(notebook, code_roles, limits, lab_files, name, sandbox, reference, answers, kernel_oracles)
    if not result.exports and result.stopped is None and any(role == "check" for role, _ in code_roles):
        result = _run_once(notebook, code_roles, limits, lab_files, name, sandbox, reference, answers, kernel_oracles)
    return result


def _run_once(notebook, code_roles, limits: Limits, lab_files, name, sandbox, reference, answers,
              kernel_oracles=()) -> RunResult:
    tmp = Path(tempfile.mkdtemp(prefix="labkit-grade-"))
    t0 = time.monotonic()
    sandboxed = sandbox != UNSAFE
    base = WORK if sandboxed else str(tmp)
    try:
        files = {}
        for rel, data in (lab_files or {}).items():
            dest = tmp / "in" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            files[rel] = str(dest)
        if sandboxed:
            for f in _calibrations():
                files[f"{_CACHE}/{f.name}"] = str(f)
        out = {}
        for key in ("exports.jsonl", "events.jsonl", "pytest.txt"):
            path = tmp / ".labkit" / key
            path.parent.mkdir(exist_ok=True)
            path.touch()
            path.chmod(0o666)                 # the run's own user id writes them (the sandbox binds only these)
            out[key] = path
            files[f".labkit/{key}"] = str(path)
        nb_path = tmp / "in" / name
        nb_path.parent.mkdir(exist_ok=True)
        if answers:       # a reference run's test= checks judge these (read-only in the sandbox)
            (tmp / "in" / _ANSWERS).write_text(json.dumps(answers), encoding="utf-8")
            files[_ANSWERS] = str(tmp / "in" / _ANSWERS)
        with _ARM_LOCK:
            armed = arm(notebook, code_roles, f"{base}/.labkit/exports.jsonl", reference,
                        f"{base}/{_ANSWERS}" if answers else None, kernel_oracles)
        nb_path.write_text(armed, encoding="utf-8")
        (tmp / "in" / "pytest.ini").write_text("[pytest]\naddopts =\n", encoding="utf-8")
        files[name], files["pytest.ini"] = str(nb_path), str(tmp / "in" / "pytest.ini")
        for p in (tmp, tmp / "in", *(tmp / "in").rglob("*")):
            p.chmod(0o755 if p.is_dir() else 0o644)
        cmd = [sys.executable, "-c", _PYTEST_MAIN, name, "--nbval-lax", "--nbval-current-env",
               f"--nbval-cell-timeout={limits.cell_timeout_s:g}", "--nbval-kernel-startup-timeout=60",
               "-p", "nbval.plugin", "-p", "labkit.grade.plugin", "-p", "no:cacheprovider",
               "-q", "--color=no", "-c", "pytest.ini", "--rootdir", base, "--confcutdir", base]
        if sandboxed:
            cmd, cwd = Box(limits.disk_mb, limits.max_procs).argv(cmd, str(tmp), files), tmp
        else:
            for rel, host in files.items():      # the same layout, in the temporary folder
                dest = tmp / rel
                if not dest.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(host, dest)
            cwd = tmp
        with open(out["pytest.txt"], "ab") as sink:
            proc = subprocess.Popen(cmd, cwd=cwd, env=_env(base, limits.threads, sandboxed), stdout=sink,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            stopped, peak, kernels, gone_at = _watch(proc, limits, out["events.jsonl"], t0)
        exports = tuple(_read_lines(out["exports.jsonl"], _MAX_EXPORT_BYTES))
        with open(out["pytest.txt"], "rb") as f:
            f.seek(max(0, out["pytest.txt"].stat().st_size - _TAIL_BYTES))
            tail = f.read().decode("utf-8", errors="replace")
        return RunResult(exports, tuple(_read_lines(out["events.jsonl"])), stopped, time.monotonic() - t0,
                         peak / 2**20, tail, sandbox)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _watch(proc: subprocess.Popen, limits: Limits, events: Path, t0: float):
    """Poll the process tree until pytest exits; kill it for memory, time or a kernel that died mid-cell."""
    root = psutil.Process(proc.pid)
    cap = limits.memory_mb * 2**20
    stopped, peak, kernels, gone_at = None, 0, set(), None
    seen: dict[int, psutil.Process] = {}
    cpu = CellCPU(limits.cell_cpu_s) if limits.cell_cpu_s else None
    while proc.poll() is None:
        procs = _tree(root)
        seen.update((p.pid, p) for p in procs[1:])
        rss, alive = 0, set()
        for p in procs:
            try:
                if p.status() == psutil.STATUS_ZOMBIE:    # a dead kernel nobody has reaped yet
                    continue
                rss += p.memory_info().rss
                alive.add(p.pid)
                if p.pid not in kernels and p.pid != root.pid and "ipykernel" in " ".join(p.cmdline()):
                    kernels.add(p.pid)
            except psutil.Error:
                pass
        if rss > cap:             # RSS counts shared pages (torch's libraries, Ray's object store) once per
            rss = pss_bytes(alive)     # process; the proportional set size charges each page once in all
        peak = max(peak, rss)
        elapsed = time.monotonic() - t0
        if rss > cap:
            stopped = f"killed: memory over the cap of {limits.memory_mb:g} MiB"
        elif elapsed > limits.timeout_s:
            stopped = f"killed: notebook time limit of {limits.timeout_s:g} s reached"
        elif kernels and not kernels & alive:
            # the kernel is gone while pytest still runs: normal at the end, a crash if a cell was running
            gone_at = gone_at or time.monotonic()
            if time.monotonic() - gone_at > 1.0 and _mid_cell(_read_lines(events)):
                stopped = "killed: the kernel died while a cell was running"
        if cpu is not None and not stopped:
            live = kernels & alive
            mine = [p for p in procs if p.pid in live]
            stopped = cpu.poll(_read_lines(events), mine, {q.pid: q for k in mine for q in _tree(k)}.values())
        if stopped:
            _kill(_tree(root))
            break
        time.sleep(_POLL_S)
    proc.wait()
    _kill([p for p in seen.values() if p.is_running()])   # whatever the notebook left behind (psutil checks
    return stopped, peak, kernels, gone_at                # the start time, so a reused pid is never hit)
