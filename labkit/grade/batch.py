"""``labkit grade``: grade submitted notebooks into a gradebook and per-student feedback (nbval underneath).

    labkit grade --lab 00 --out OUTDIR [--workers N] [--ray ADDRESS] [--cell-timeout S] [--cell-cpu S]
                 [--timeout S] [--memory-mb M] [--disk-mb D] [--solutions DIR] [--labs DIR]
                 [--unsafe-no-sandbox] SUBMISSION...

Every submission gets a row in ``OUTDIR/gradebook.csv`` (``graded`` or ``ungradable`` with the reason) and a
file in ``OUTDIR/feedback/``. Exit 0 when grading ran, whatever the students scored; 2 for the instructor's
own mistakes (unknown lab, no submissions, a path that does not exist).

Every kernel runs in a sandbox (``labkit.grade.sandbox``: bubblewrap, no network, no sight of solutions/ or
other submissions, limits on processes, memory, time and disk); without one, grading refuses unless
``--unsafe-no-sandbox`` is given, and the gradebook's ``sandbox`` column says how each row was graded. Kernels
only export answers as data; the oracles come from a reference run of the solution and the comparison happens
here (``labkit.grade.oracle``). What is still trusted: GRADING.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from labkit.grade.gradebook import Grade, hints_of, score, ungradable, write_feedback, write_gradebook
from labkit.grade.oracle import ReferenceFailed, answers_of, judge_run, oracles_of
from labkit.grade.restore import Lab, Ungradable, load_lab, prepare
from labkit.grade.runner import Limits, RunResult, run_notebook
from labkit.grade.sandbox import SandboxUnavailable, mode
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


def _calibrate_host(runtimes, threads: int) -> None:
    """Make sure this machine has the calibration a lab reads, at the kernels' thread count (part of its key):
    ``labkit calibrate --quick``, which measures nothing when one is cached. Every kernel then reads the same
    copy; without it, the reference run and each learner's run would each measure the machine, and answers built
    on ``lk.device("local")`` would never match."""
    import subprocess

    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):   # as the kernels get them
        env.setdefault(var, str(max(1, threads)))
    for runtime in runtimes:
        done = subprocess.run([sys.executable, "-c", "import sys; from labkit.cli import main; sys.exit(main())",
                               "calibrate", "--quick", "--runtime", str(runtime), "--json"],
                              capture_output=True, text=True, timeout=600, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"labkit calibrate --quick --runtime {runtime} failed before grading: "
                               f"{done.stderr.strip()[-500:]}")


def grade(lab: str, paths, out, *, workers: int = 1, ray: str | None = None, cell_timeout_s: float | None = None,
          timeout_s: float | None = None, memory_mb: float | None = None, disk_mb: float = 512, solutions=None,
          labs=None, progress: bool = True, unsafe_no_sandbox: bool = False,
          cell_cpu_s: float | None = None) -> GradeReport:
    """Grade the notebooks in `paths` for lab `lab`; write ``out/gradebook.csv`` and ``out/feedback/``.

    >>> from labkit.grade.batch import grade
    >>> grade("00", ["submissions/"], "graded/", workers=2).grades[0].status  # doctest: +SKIP
    'graded'
    """
    import time

    t0 = time.monotonic()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}.")
    sandbox = mode(unsafe_no_sandbox)       # SandboxUnavailable: refuse before anything runs
    the_lab = load_lab(lab, Path(solutions or repo_root() / "solutions"))
    subs = submissions(paths)
    if not subs:
        raise ValueError("no submissions: give notebook files or folders that contain .ipynb files.")
    limits = Limits(cell_timeout_s or the_lab.cell_timeout_s, timeout_s or the_lab.timeout_s,
                    memory_mb or the_lab.memory_mb, threads=max(1, (os.cpu_count() or 1) // workers),
                    disk_mb=disk_mb, max_procs=the_lab.max_procs, cell_cpu_s=cell_cpu_s or the_lab.cell_cpu_s)
    lab_files = _lab_files(Path(labs or repo_root() / "labs"), the_lab)
    _calibrate_host(the_lab.calibrate, limits.threads)
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
        jobs.append((name, (prepared[name].notebook, prepared[name].code_roles, limits, lab_files, nb_name,
                            sandbox, False, None, the_lab.kernel_oracles)))
    reference = prepare(the_lab.path, the_lab)     # the solution itself: where the oracles come from
    ref_args = (reference.notebook, reference.code_roles, limits, lab_files, nb_name, sandbox, True)
    bar = _progress(len(jobs) + 1) if progress and jobs else None
    run_all = _ray_runner(ray, workers) if ray else _thread_runner(workers)
    try:
        results = run_all(jobs, bar) if jobs else {}
        oracles, note, verdicts = _reference(results, the_lab, ref_args, run_all, bar) if jobs else ({}, "", {})
    finally:
        if bar:
            bar.close()
    for name, result in results.items():
        if isinstance(result, RunResult):
            result = judge_run(result, the_lab, oracles, verdicts.get(name))
            rows[name] = score(name, the_lab, prepared[name], result, hints=hints_of(dict(subs)[name]))
            if note:
                rows[name] = dataclasses.replace(rows[name], detail=f"{rows[name].detail}; {note}")
        else:
            rows[name] = Grade(name, "graded", 0.0, the_lab.max_score,
                               f"the grader could not run it ({type(result).__name__}: {result})",
                               {q: 0.0 for q in the_lab.questions}, {}, sandbox)
    grades = tuple(rows[name] for name, _ in subs)
    book = write_gradebook(grades, the_lab, out)
    write_feedback(grades, the_lab, out)
    return GradeReport(grades, str(book), time.monotonic() - t0)


_REFERENCE = "\0reference"     # the job key of the solution's reference run (no submission can be named so)


def _reference(results, lab, ref_args, run_all, bar):
    """(oracles, note, verdicts) from the solution's reference run, made after the submissions' runs so
    that it also judges every submission's ``test=`` answers (exported data, fed in): one run per batch, and the
    instructor's test functions never run in a learner's kernel. verdicts: name -> {question: verdict line}.

    Should that run fail with answers fed in (one learner's value could make a test function hang), the
    solution is run again alone, then once per submission with that submission's answers only."""
    tested = {q for q, meta in lab.questions.items() if meta.get("test") and q not in lab.kernel_oracles}
    fed = [(name, given) for name, result in results.items() if isinstance(result, RunResult) and (given := {
        q: line["value"] for q, line in answers_of(result).items() if q in tested and "value" in line})]
    names = {str(i): name for i, (name, _) in enumerate(fed)}             # the key in the run -> submission
    answers = {str(i): given for i, (_, given) in enumerate(fed)}
    ref = run_all([(_REFERENCE, (*ref_args, answers or None))], None)[_REFERENCE]
    if bar:
        bar.update(1)
    if isinstance(ref, RunResult):
        oracles, note = oracles_of(ref, lab)
        if not answers or not (note or ref.stopped):
            return oracles, note, _verdicts(ref, names)
    if not answers:
        raise ReferenceFailed(f"the reference run of the solution failed: {ref}")
    ref = run_all([(_REFERENCE, ref_args)], None)[_REFERENCE]
    if not isinstance(ref, RunResult):
        raise ReferenceFailed(f"the reference run of the solution failed: {ref}")
    oracles, note = oracles_of(ref, lab)
    alone = run_all([(key, (*ref_args, {"0": given})) for key, given in answers.items()], None)
    verdicts = {}
    for key, run in alone.items():
        if isinstance(run, RunResult):
            verdicts.update(_verdicts(run, {"0": names[key]}))
    return oracles, note, verdicts


def _verdicts(run, names: dict) -> dict:
    """name -> {question: verdict line} from a reference run's exports (``for`` is the submission's key)."""
    out = {}
    for line in run.exports:
        if "verdict" in line and line.get("for") in names:
            out.setdefault(names[line["for"]], {}).setdefault(line["question"], line)
    return out


def cli(argv: list[str]) -> int:
    """``labkit grade ...`` (see the module docstring); returns the exit code."""
    parser = argparse.ArgumentParser(prog="labkit grade", description="Grade submitted lab notebooks.")
    parser.add_argument("--lab", required=True, help="lab number, e.g. 00")
    parser.add_argument("--out", required=True, help="folder for gradebook.csv and feedback/")
    parser.add_argument("--workers", type=int, default=1, help="submissions run at once on this machine")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run on a Ray cluster: 'local' starts one here, 'auto' or an address joins one")
    parser.add_argument("--cell-timeout", type=float, default=None, help="seconds per cell (default: lab's)")
    parser.add_argument("--cell-cpu", type=float, default=None,
                        help="CPU seconds per cell, then the cell is interrupted (default: lab's, else none)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per notebook (default: lab's)")
    parser.add_argument("--memory-mb", type=float, default=None, help="memory cap per notebook, MiB of PSS (default: lab's)")
    parser.add_argument("--disk-mb", type=float, default=512, help="disk cap per notebook's sandbox (MiB)")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="grade even where no sandbox can start: submissions run with your rights")
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
                       disk_mb=args.disk_mb, solutions=args.solutions, labs=args.labs, progress=not args.quiet,
                       unsafe_no_sandbox=args.unsafe_no_sandbox, cell_cpu_s=args.cell_cpu)
    except (ValueError, FileNotFoundError, SandboxUnavailable) as err:
        print(f"labkit grade: {err}", file=sys.stderr)
        return 2
    graded = sum(g.status == "graded" for g in report.grades)
    print(f"labkit grade: {graded} graded, {len(report.grades) - graded} ungradable in {report.wall_s:.1f} s "
          f"-> {report.gradebook}")
    return 0
