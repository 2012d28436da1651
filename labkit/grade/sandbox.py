"""The sandbox every graded kernel runs in: bubblewrap (``bwrap``), a user id of its own, and resource limits.

``labkit grade`` runs each submission as ``bwrap ... python launcher pytest --nbval ...``. Inside:

- **no network** (a new network namespace: only a loopback that reaches nothing outside);
- **read-only** ``/usr``, ``/etc``, the Python installation and the venv, and from labkit's repository only
  ``pyproject.toml``, ``labkit/`` and ``datasets/`` — never ``solutions/``, the submissions, the gradebook or
  the grader's temporary folders (``/tmp`` and the work folder are fresh tmpfs mounts);
- a private **work folder** (``/grade``, a tmpfs of ``disk_mb``) holding read-only copies of this submission's
  notebook and the lab's files, and the three files the grader reads back (answers, cell events, pytest output);
- **limits**: its own process id namespace (killing the tree kills all), a user id of its own when the grader
  is root (so ``RLIMIT_NPROC`` stops a fork bomb without touching other runs), ``RLIMIT_NPROC``, ``RLIMIT_FSIZE``
  (no file larger than the disk cap), no core dumps, a tmpfs size for every writable place (a disk fill stops
  with ENOSPC at ``disk_mb``), and the runner's own watch of RSS and wall time.

``mode()`` says which sandbox this machine can start (``"bwrap"``) or raises SandboxUnavailable with the exact
error, so grading refuses; ``labkit grade --unsafe-no-sandbox`` runs without one (mode ``"none"``, also where
bwrap would work), and the gradebook records the mode of every row.

>>> Box(disk_mb=256).argv(["python", "-c", "pass"], "/tmp/x", {})[0]    # doctest: +ELLIPSIS
'...bwrap'
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from labkit.paths import PACKAGE_DIR

WORK = "/grade"                 # the work folder, as the sandboxed kernel sees it
UNSAFE = "none"                 # the mode name when --unsafe-no-sandbox was given
_UID_BASE = 200_000             # per-run user ids (root grader only): 200000 + random
DEFAULT_MAX_PROCS = 256         # processes + threads of one run (RLIMIT_NPROC); a lab's metadata may raise it


class SandboxUnavailable(RuntimeError):
    """No sandbox can start on this machine; the message says why and what to do."""


def _repo() -> Path | None:
    for folder in PACKAGE_DIR.parents:
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def _readonly_paths() -> list[str]:
    """What the kernel may read: the system, Python, the venv and labkit (package, datasets, pyproject)."""
    repo = _repo()
    paths = ["/usr", "/etc", sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    if repo is not None:
        paths += [str(repo / "pyproject.toml"), str(repo / "labkit"), str(repo / "datasets")]
    else:
        paths.append(str(PACKAGE_DIR))
    for entry in sys.path:                      # site-packages outside the venv, PYTHONPATH entries
        p = Path(entry or ".").resolve()
        if not p.is_dir() or p == Path("/"):
            continue
        if repo is not None and (p.is_relative_to(repo) or repo.is_relative_to(p)):
            continue          # in (or above) the repository: only the pieces above (never tests/, solutions/)
        paths.append(str(p))
    out, seen = [], set()
    for p in paths:
        real = os.path.realpath(p)
        if os.path.exists(real) and real not in seen:
            seen.add(real)
            out.append(real)
    return out


@dataclass(frozen=True)
class Box:
    """One sandbox: disk cap (MiB) of each writable tmpfs, and the process cap of the run's user."""

    disk_mb: float = 512
    max_procs: int = 256

    def argv(self, cmd: list[str], rundir: str, files: dict[str, str]) -> list[str]:
        """The bwrap command that runs `cmd` in ``/grade``; `files` maps names in /grade to host files
        (read-only, except those under ``.labkit/``, which the grader reads back)."""
        size = str(int(self.disk_mb * 2**20))
        root = os.geteuid() == 0
        a = [_bwrap(), "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid", "--unshare-ipc",
             "--unshare-uts", "--unshare-cgroup-try"]
        if root:      # the launcher drops to a user id of its own (it needs these two capabilities for that)
            a += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            a += ["--unshare-user", "--disable-userns"]
        for link in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(link):
                a += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                a += ["--ro-bind", link, link]
        # the fresh writable places first: a read-only path that lives under one of them (a repository or a
        # venv in /tmp, as CI clones may be) is then bound on top of it instead of being hidden by it
        a += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm",
              "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
        ro = _readonly_paths()
        parents = sorted({str(q) for p in ro for q in Path(p).parents if str(q) not in ("/", "/tmp", "/dev/shm")}
                         - set(ro), key=lambda q: q.count("/"))
        for q in parents:       # bwrap would make them 0700 (root only): the run's own user id must pass
            a += ["--perms", "0755", "--dir", q]
        for p in ro:
            a += ["--ro-bind", p, p]
        a += ["--perms", "1777", "--size", size, "--tmpfs", WORK, "--dir", f"{WORK}/.labkit"]
        subdirs = sorted({str(q) for name in files for q in Path(name).parents if str(q) not in (".", ".labkit")},
                         key=lambda q: q.count("/"))
        for d in subdirs:       # writable by the run (a lab may write next to its files), made before the binds
            a += ["--perms", "1777", "--dir", f"{WORK}/{d}"]
        for name, host in files.items():
            a += ["--bind" if name.startswith(".labkit/") else "--ro-bind", host, f"{WORK}/{name}"]
        a += ["--chdir", WORK, "--setenv", "HOME", WORK, "--setenv", "TMPDIR", "/tmp"]
        uid = _UID_BASE + secrets.randbelow(1_000_000) if root else -1
        procs = self.max_procs if root else self.max_procs + _own_processes()
        return [*a, sys.executable, "-I", "-c", _LAUNCHER, str(uid), str(procs), size, *cmd]


# Runs inside the sandbox, before the graded command: drop to the run's own user id (root grader), then the
# limits, then exec. Python -I: no site-packages of the user, no PYTHON* variables.
_LAUNCHER = """\
import os, resource, sys
uid, procs, fsize = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if uid >= 0:
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
os.execv(sys.argv[4], sys.argv[4:])
"""


def _own_processes() -> int:
    """Threads and processes of this user id (RLIMIT_NPROC counts them all, not only the sandbox's)."""
    import psutil

    n = 0
    for p in psutil.process_iter(["uids", "num_threads"]):
        try:
            if p.info["uids"] and p.info["uids"].real == os.getuid():
                n += p.info["num_threads"] or 1
        except psutil.Error:
            pass
    return n


def _bwrap() -> str:
    return shutil.which("bwrap") or "/usr/bin/bwrap"


@lru_cache(maxsize=1)
def _probe() -> str | None:
    """None when bwrap starts a sandbox like the one grading uses; else the exact error."""
    if not shutil.which("bwrap"):
        return ("bubblewrap (bwrap) is not installed: apt-get install bubblewrap (Debian/Ubuntu), "
                "dnf install bubblewrap (Fedora)")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="labkit-probe-") as tmp:
        cmd = Box(disk_mb=1).argv([sys.executable, "-I", "-c", "print('ok')"], tmp, {})
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"bwrap could not start: {err}"
    if run.returncode != 0 or run.stdout.strip() != "ok":
        return f"bwrap failed (exit {run.returncode}): {(run.stderr or run.stdout).strip()[:300]}"
    return None


def mode(unsafe: bool = False) -> str:
    """``"none"`` when `unsafe` (labkit grade's --unsafe-no-sandbox: run without one, whether or not one could
    start); else ``"bwrap"`` when the sandbox starts here, or SandboxUnavailable with the exact error.

    >>> mode() in ("bwrap",)      # doctest: +SKIP
    True
    """
    if unsafe:
        return UNSAFE
    problem = _probe()
    if problem is None:
        return "bwrap"
    raise SandboxUnavailable(
        f"no sandbox can start on this machine: {problem}. Grading runs every submission in a sandbox "
        "(no network, read-only system, no sight of solutions/). Install bubblewrap, or pass "
        "--unsafe-no-sandbox to grade with the instructor's rights (only for work you trust).")
