"""``labkit grade``: grade submitted notebooks into a gradebook and per-student feedback (nbval underneath).

    labkit grade --lab 00 --out OUTDIR [--workers N] [--ray ADDRESS] [--cell-timeout S] [--timeout S]
                 [--memory-mb M] [--solutions DIR] [--labs DIR] SUBMISSION...

Every submission gets a row in ``OUTDIR/gradebook.csv`` (``graded`` or ``ungradable`` with the reason) and a
file in ``OUTDIR/feedback/``. Exit 0 when grading ran, whatever the students scored; 2 for the instructor's
own mistakes (unknown lab, no submissions, a path that does not exist).

What the defences do and do not do (see GRADING.md): restored check cells call a checker loaded fresh from
``labkit/check.py`` and bound to a secret token, so redefining ``lk.check``, patching ``labkit.grade.check`` or
``numpy``, editing, deleting or moving check cells, or calling ``lk.check`` from one's own cells changes
nothing. It is not a sandbox: notebook code runs with the instructor's rights and can write the log file
directly, patch builtins or the import system, or read the token from memory. Grade in a container or a
throw-away account if that matters.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from labkit.grade.gradebook import Grade, hints_of, score, ungradable, write_feedback, write_gradebook
from labkit.grade.restore import Lab, Ungradable, load_lab, prepare
from labkit.grade.runner import Limits, RunResult, run_notebook
from labkit.paths import repo_root

_MAX_LAB_FILE_BYTES = 50 * 2**20

__all__ = ["grade", "cli", "GradeReport", "Grade", "Lab", "Limits", "RunResult", "load_lab", "prepare",
           "run_notebook"]


@dataclass(frozen=True)
class GradeReport:
    """The result of ``grade``: one Grade per submission, and where the gradebook was written."""

    grades: tuple
    gradebook: str
    wall_s: float


def submissions(paths) -> list[tuple[str, Path]]:
    """(name, path) for every notebook named or found (recursively) in the given files and folders."""
    found: list[tuple[str, Path]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.is_file() and f.suffix == ".ipynb" and not any(part.startswith(".") for part in rel.parts):
                    found.append((rel.as_posix(), f))
        elif p.exists():
            found.append((p.name, p))
        else:
            raise FileNotFoundError(f"no such file or folder: {raw}")
    names: dict[str, int] = {}
    unique = []
    for name, f in found:          # the same name from two folders: number the later ones
        names[name] = names.get(name, 0) + 1
        unique.append((name if names[name] == 1 else f"{name}#{names[name]}", f))
    return unique


def _lab_files(labs_dir: Path, lab: Lab) -> dict:
    """The lab folder's non-notebook files (data a lab reads), to copy next to each run."""
    files, total = {}, 0
    if not labs_dir.is_dir():
        return files
    for f in sorted(labs_dir.rglob("*")):
        rel = f.relative_to(labs_dir)
        if f.is_file() and f.suffix != ".ipynb" and not any(p.startswith(".") for p in rel.parts):
            total += f.stat().st_size
            if total > _MAX_LAB_FILE_BYTES:
                raise ValueError(f"the lab folder {labs_dir} holds more than 50 MiB of files; grade from a "
                                 "folder with only what the lab needs (--labs DIR).")
            files[rel.as_posix()] = f.read_bytes()
    return files


def _progress(total: int):
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="grading", unit="nb", file=sys.stderr, leave=False)
    except ImportError:  # pragma: no cover
        return None


def _ray_runner(address: str, workers: int):
    from labkit.cluster import ray_cluster

    def run_all(jobs, bar):
        with ray_cluster(num_cpus=workers, address=address) as ray:
            task = ray.remote(num_cpus=1, max_retries=0)(run_notebook)
            refs = {task.remote(*args): key for key, args in jobs}
            done = {}
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        done[refs[ref]] = ray.get(ref)
                    except Exception as err:  # a worker that died: the submission still gets a row
                        done[refs[ref]] = err
                    if bar:
                        bar.update(1)
            return done

    return run_all


def _thread_runner(workers: int):
    def run_all(jobs, bar):
        done = {}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_notebook, *args): key for key, args in jobs}
            for fut in as_completed(futures):
                try:
                    done[futures[fut]] = fut.result()
                except Exception as err:
                    done[futures[fut]] = err
                if bar:
                    bar.update(1)
        return done

    return run_all


def grade(lab: str, paths, out, *, workers: int = 1, ray: str | None = None, cell_timeout_s: float | None = None,
          timeout_s: float | None = None, memory_mb: float | None = None, solutions=None, labs=None,
          progress: bool = True) -> GradeReport:
    """Grade the notebooks in `paths` for lab `lab`; write ``out/gradebook.csv`` and ``out/feedback/``.

    >>> from labkit.grade.batch import grade
    >>> grade("00", ["submissions/"], "graded/", workers=2).grades[0].status  # doctest: +SKIP
    'graded'
    """
    import time

    t0 = time.monotonic()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}.")
    the_lab = load_lab(lab, Path(solutions or repo_root() / "solutions"))
    subs = submissions(paths)
    if not subs:
        raise ValueError("no submissions: give notebook files or folders that contain .ipynb files.")
    limits = Limits(cell_timeout_s or the_lab.cell_timeout_s, timeout_s or the_lab.timeout_s,
                    memory_mb or the_lab.memory_mb, threads=max(1, (os.cpu_count() or 1) // workers))
    lab_files = _lab_files(Path(labs or repo_root() / "labs"), the_lab)
    nb_name = Path(the_lab.path).name
    rows: dict[str, Grade] = {}
    prepared, jobs = {}, []
    for name, path in subs:
        try:
            prepared[name] = prepare(path, the_lab)
        except Ungradable as err:
            rows[name] = ungradable(name, str(err), the_lab)
            continue
        except Exception as err:  # a grader bug must not stop the batch: the row says what happened
            rows[name] = ungradable(name, f"the grader failed to read it ({type(err).__name__}: {err})", the_lab)
            continue
        jobs.append((name, (prepared[name].notebook, prepared[name].code_roles, limits, lab_files, nb_name)))
    bar = _progress(len(jobs)) if progress and jobs else None
    run_all = _ray_runner(ray, workers) if ray else _thread_runner(workers)
    try:
        results = run_all(jobs, bar) if jobs else {}
    finally:
        if bar:
            bar.close()
    for name, result in results.items():
        if isinstance(result, RunResult):
            rows[name] = score(name, the_lab, prepared[name], result, hints=hints_of(dict(subs)[name]))
        else:
            rows[name] = Grade(name, "graded", 0.0, the_lab.max_score,
                               f"the grader could not run it ({type(result).__name__}: {result})",
                               {q: 0.0 for q in the_lab.questions}, {})
    grades = tuple(rows[name] for name, _ in subs)
    book = write_gradebook(grades, the_lab, out)
    write_feedback(grades, the_lab, out)
    return GradeReport(grades, str(book), time.monotonic() - t0)


def cli(argv: list[str]) -> int:
    """``labkit grade ...`` (see the module docstring); returns the exit code."""
    parser = argparse.ArgumentParser(prog="labkit grade", description="Grade submitted lab notebooks.")
    parser.add_argument("--lab", required=True, help="lab number, e.g. 00")
    parser.add_argument("--out", required=True, help="folder for gradebook.csv and feedback/")
    parser.add_argument("--workers", type=int, default=1, help="submissions run at once on this machine")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run on a Ray cluster: 'local' starts one here, 'auto' or an address joins one")
    parser.add_argument("--cell-timeout", type=float, default=None, help="seconds per cell (default: lab's)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per notebook (default: lab's)")
    parser.add_argument("--memory-mb", type=float, default=None, help="RSS cap per notebook (default: lab's)")
    parser.add_argument("--solutions", default=None, help="folder of solution notebooks (default: solutions/)")
    parser.add_argument("--labs", default=None, help="folder of the student labs (default: labs/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("submissions", nargs="*", metavar="SUBMISSION", help="notebook files or folders")
    args = parser.parse_args(argv)
    if not args.submissions:
        print("labkit grade: no submissions given (notebook files or folders).", file=sys.stderr)
        return 2
    try:
        report = grade(args.lab, args.submissions, args.out, workers=args.workers, ray=args.ray,
                       cell_timeout_s=args.cell_timeout, timeout_s=args.timeout, memory_mb=args.memory_mb,
                       solutions=args.solutions, labs=args.labs, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as err:
        print(f"labkit grade: {err}", file=sys.stderr)
        return 2
    graded = sum(g.status == "graded" for g in report.grades)
    print(f"labkit grade: {graded} graded, {len(report.grades) - graded} ungradable in {report.wall_s:.1f} s "
          f"-> {report.gradebook}")
    return 0
