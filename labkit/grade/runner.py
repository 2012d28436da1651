"""Run one prepared submission through nbval in a fresh kernel, under time and memory limits.

``run_notebook`` is a pure function of its arguments (a notebook as JSON text, the lab's extra files, limits),
so the same call runs in a thread here or as a Ray task on another machine. It:

1. *arms* the instructor's check and hidden cells: each runs with an ``lk`` whose ``check`` comes from a copy of
   ``labkit/check.py`` loaded fresh for that cell, bound to a random token and the log path, so a learner who
   redefined ``lk.check`` or patched ``labkit.grade.check`` / ``numpy`` earlier changes nothing;
2. runs ``pytest --nbval-lax --nbval-current-env --nbval-cell-timeout S`` in a temporary copy of the lab folder
   (a new kernel, ``IPYTHONDIR`` empty so no startup files run), with labkit's small pytest plugin recording
   which cell started and how it ended;
3. watches the process tree every 0.1 s: over the memory cap (RSS of pytest + kernel) or the notebook time
   limit, or a kernel that died in the middle of a cell, and the whole tree is killed;
4. returns the check-log lines that carry the token, the cell events and why it stopped, if it was stopped.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from labkit.paths import checker_file

EVENTS_ENV = "LABKIT_GRADE_EVENTS"
_POLL_S = 0.1
_TAIL_BYTES = 16_000


@dataclass(frozen=True)
class Limits:
    """Per-cell and per-notebook time limits (s), memory cap (MiB of RSS) and threads per kernel."""

    cell_timeout_s: float
    timeout_s: float
    memory_mb: float
    threads: int = 1


@dataclass(frozen=True)
class RunResult:
    """What happened when a notebook ran: the trusted check results, cell events, and why it was stopped."""

    checks: tuple          # dicts from the check log carrying this run's token, in order
    events: tuple          # dicts from the pytest plugin: {"cell", "event": "start"|"end", "error"}
    stopped: str | None    # None, or why the run was killed
    wall_s: float
    peak_rss_mb: float
    output_tail: str


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
    name = "labkit_grade_checker_{token}"
    spec = u.spec_from_file_location(name, {path!r})
    mod = u.module_from_spec(spec)
    sys.modules[name] = mod   # only while it loads (dataclasses look the module up)
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    user = b.globals()
    ns = b.dict(user)
    ns["lk"] = mod.grading_labkit({token!r}, {log!r})
    b.exec(b.compile({source!r}, "<instructor cell>", "exec"), ns)
    for k, v in b.list(ns.items()):
        if k not in ("lk", "__builtins__", "__labkit_armed_cell"):
            user[k] = v
__labkit_armed_cell()
del __labkit_armed_cell
'''


def arm(notebook: str, code_roles, token: str, log_path: str) -> str:
    """The notebook with every instructor check/hidden code cell wrapped to use a fresh checker (see above)."""
    from labkit.grade.notebook import python_source

    nb = json.loads(notebook)
    checker = str(checker_file())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for cell, (role, _) in zip(code, code_roles):
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if role in ("check", "hidden"):
            cell["source"] = _ARMED.format(path=checker, token=token, log=log_path, source=python_source(src))
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


def _read_lines(path: Path) -> list[dict]:
    out = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
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


def _env(tmp: Path, log: Path, events: Path, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "LABKIT_GRADE")) and k not in ("PYTHONSTARTUP",)}
    env.update({"LABKIT_GRADE_LOG": str(log), EVENTS_ENV: str(events), "IPYTHONDIR": str(tmp / ".ipython"),
                "MPLBACKEND": "Agg", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, str(max(1, threads)))
    return env


def run_notebook(notebook: str, code_roles, limits: Limits, lab_files: dict | None = None,
                 name: str = "submission.ipynb") -> RunResult:
    """Execute a prepared notebook (JSON text) with nbval under `limits`; see the module docstring.

    A run in which not one instructor check reported and nothing was stopped (a kernel that failed to start on
    a loaded machine, seen once in CI) is run once more, so a transient failure does not cost a student marks.
    """
    result = _run_once(notebook, code_roles, limits, lab_files, name)
    if not result.checks and result.stopped is None and any(role == "check" for role, _ in code_roles):
        result = _run_once(notebook, code_roles, limits, lab_files, name)
    return result


def _run_once(notebook: str, code_roles, limits: Limits, lab_files: dict | None, name: str) -> RunResult:
    tmp = Path(tempfile.mkdtemp(prefix="labkit-grade-"))
    t0 = time.monotonic()
    try:
        for rel, data in (lab_files or {}).items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        token = secrets.token_hex(16)
        log, events, out = tmp / ".labkit-checks.jsonl", tmp / ".labkit-events.jsonl", tmp / ".labkit-pytest.txt"
        nb_path = tmp / name
        nb_path.write_text(arm(notebook, code_roles, token, str(log)), encoding="utf-8")
        (tmp / "pytest.ini").write_text("[pytest]\naddopts =\n", encoding="utf-8")
        cmd = [sys.executable, "-c", _PYTEST_MAIN, nb_path.name, "--nbval-lax", "--nbval-current-env",
               f"--nbval-cell-timeout={limits.cell_timeout_s:g}", "--nbval-kernel-startup-timeout=60",
               "-p", "nbval.plugin", "-p", "labkit.grade.plugin", "-p", "no:cacheprovider",
               "-q", "--color=no", "-c", "pytest.ini", "--rootdir", str(tmp), "--confcutdir", str(tmp)]
        with open(out, "wb") as sink:
            proc = subprocess.Popen(cmd, cwd=tmp, env=_env(tmp, log, events, limits.threads), stdout=sink,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            stopped, peak, kernels, gone_at = _watch(proc, limits, events, t0)
        checks = tuple(c for c in _read_lines(log) if c.get("token") == token)
        with open(out, "rb") as f:
            f.seek(max(0, out.stat().st_size - _TAIL_BYTES))
            tail = f.read().decode("utf-8", errors="replace")
        return RunResult(checks, tuple(_read_lines(events)), stopped, time.monotonic() - t0, peak / 2**20, tail)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _watch(proc: subprocess.Popen, limits: Limits, events: Path, t0: float):
    """Poll the process tree until pytest exits; kill it for memory, time or a kernel that died mid-cell."""
    root = psutil.Process(proc.pid)
    cap = limits.memory_mb * 2**20
    stopped, peak, kernels, gone_at = None, 0, set(), None
    seen: dict[int, psutil.Process] = {}
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
        if stopped:
            _kill(_tree(root))
            break
        time.sleep(_POLL_S)
    proc.wait()
    _kill([p for p in seen.values() if p.is_running()])   # whatever the notebook left behind (psutil checks
    return stopped, peak, kernels, gone_at                # the start time, so a reused pid is never hit)
