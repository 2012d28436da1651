"""`labkit grade` against adversarial submissions, generated here from the fixture lab (so they can't go stale).

The fixture lab (tests/fixtures/grading/solutions/90_fixture.ipynb) is pure Python + numpy: 4 checks,
2 + 3 + 1 (hidden) + 1 = 7 points. All submissions are graded in ONE batch with --workers 2, and a few again
through Ray on a local cluster started once per test session.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import nbformat
import psutil
import pytest

import labkit as lk  # noqa: F401  (the learner's import; grading itself is labkit.grade.batch)
from labkit.grade.batch import cli as grade_cli
from labkit.grade.build import build
from labkit.grade.restore import load_lab, prepare
from labkit.grade.runner import Limits, run_notebook

pytestmark = pytest.mark.xdist_group("grading")


def _sandbox_or_skip():
    """The adversarial batch runs only in the sandbox (a fork bomb or disk fill must never run unconfined);
    on CI a missing sandbox is a failure, not a skip (.ci/run installs bubblewrap)."""
    from labkit.grade.sandbox import SandboxUnavailable, mode

    try:
        mode()
    except SandboxUnavailable as err:
        if __import__("os").environ.get("CI"):
            raise
        pytest.skip(str(err))

FIXTURE = Path(__file__).parent / "fixtures" / "grading" / "solutions"
RIGHT = {"q1-answer": "total = sum(range(10))",
         "q2-answer": "def scale(x, k):\n    return x * k",
         "q3-answer": "spread = float(data.max() - data.min())"}
WRONG = {"q1-answer": "total = 44",
         "q2-answer": "def scale(x, k):\n    return x + k",
         "q3-answer": "spread = 100.0"}


def _answer(nb, **sources):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("id") in sources:
            cell.source = sources[cell.id]
    return nb


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def _submissions(student, solution, root: Path) -> dict:
    """name -> notebook (NotebookNode) or raw bytes; and name -> (expected status, expected points per q)."""
    s = {}
    right = _answer(student, **RIGHT)
    s["solution"] = solution
    s["untouched"] = student
    s["wrong"] = _answer(student, **WRONG)
    s["half_right"] = _answer(student, **{**WRONG, "q1-answer": RIGHT["q1-answer"], "q3-answer": RIGHT["q3-answer"]})
    nb = _answer(student, **{**WRONG, "q3-answer": RIGHT["q3-answer"]})
    _cell(nb, "q1-check").source = 'lk.check("90.q1", lambda: 45, expected=45, points=2)'
    _cell(nb, "q2-check").source = 'print("✔ 90.q2 — 3/3 points")'
    s["check_edited_to_pass"] = nb
    nb = copy.deepcopy(right)
    nb.cells = [c for c in nb.cells if c.get("id") not in ("q1-check", "q3-check")]
    s["check_deleted"] = nb
    nb = _answer(student, **{**RIGHT, "q1-answer": (
        "total = 0\n"
        "lk.check = lambda *a, **k: print('✔ passed')\n"
        "import labkit.grade.check\n"
        "labkit.grade.check.check = lk.check\n"
        "np.allclose = lambda *a, **k: True\n"
        "class Liar(int):\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    __hash__ = int.__hash__"), "q3-answer": "spread = Liar(0)"})
    forge = nbformat.v4.new_code_cell(
        "import importlib, labkit.grade.check as c\nimportlib.reload(c)\n"
        "getattr(c, 'check')('90.q1', lambda: 45, expected=45, points=2)")
    nb.cells.insert(nb.cells.index(_cell(nb, "q1-answer")) + 1, forge)
    s["redefines_check"] = nb
    s["infinite_loop"] = _answer(student, **{**RIGHT, "q2-answer": "while True:\n    pass\n" + RIGHT["q2-answer"]})
    s["uninterruptible"] = _answer(student, **{**RIGHT, "q3-answer": (    # a busy loop that swallows the interrupt
        "while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass")})
    s["kills_kernel"] = _answer(student, **{**RIGHT, "q2-answer": "import os\nos._exit(1)"})
    s["calls_exit"] = _answer(student, **{**RIGHT, "q3-answer": "exit()"})
    nb = copy.deepcopy(right)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)  # {ORPHAN}'])"))
    s["leaves_a_process"] = nb
    s.update(_attacks(student, solution, root))
    s["memory_bomb"] = _answer(student, **{**RIGHT, "q3-answer": (
        "blocks = []\nwhile True:\n    blocks.append(b'x' * (64 * 2**20))  # 64 MiB, touched")})
    nb = _answer(student, **{**RIGHT, "q1-answer": RIGHT["q1-answer"] + (
        "\nfor i in range(50_000):\n    print('spam', i, 'x' * 60)")})
    _cell(nb, "q1-answer").outputs = [nbformat.v4.new_output("stream", name="stdout", text="y" * 20_000_000)]
    s["huge_output"] = nb
    s["invalid_json"] = b'{"cells": [ {"cell_type": "code", '
    other = copy.deepcopy(right)
    other.metadata["labkit"]["lab"] = "91"
    s["other_lab"] = other
    s["unrelated"] = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    s["empty"] = b""
    nb = copy.deepcopy(right)
    q1c = _cell(nb, "q1-check")
    nb.cells.remove(q1c)
    nb.cells.append(q1c)                                   # moved to the end
    dup = copy.deepcopy(_cell(nb, "q2-check"))
    dup.id = "my-copy"
    nb.cells.insert(nb.cells.index(_cell(nb, "q3-answer")), dup)   # duplicated further down
    nb.cells.insert(nb.cells.index(_cell(nb, "q2-answer")) + 1,
                    nbformat.v4.new_code_cell("scratch = scale(data, 2.0).sum()  # trying things"))
    s["moved_duplicated"] = nb
    nb = json.loads(nbformat.writes(right))
    nb["nbformat_minor"] = 4
    for c in nb["cells"]:
        c.pop("id", None)
    s["no_cell_ids"] = json.dumps(nb).encode()
    nb = copy.deepcopy(right)       # revealed two hints of 90.q2 with lk.hint (the outputs record it)
    _cell(nb, "q2-answer").outputs = [nbformat.v4.new_output(
        "display_data", data={"text/plain": "Hint 1/1 for 90.q2: ..."},
        metadata={"labkit": {"hint": "90.q2", "level": 2}})]
    s["used_hints"] = nb
    return s


ORPHAN = f"labkit-orphan-{__import__('secrets').token_hex(6)}"


def _extra(nb, *sources, after="q3-check"):
    """`nb` with learner code cells inserted after the cell with id `after` (None: at the top)."""
    nb = copy.deepcopy(nb)
    at = 0 if after is None else nb.cells.index(_cell(nb, after)) + 1
    for i, src in enumerate(sources):
        nb.cells.insert(at + i, nbformat.v4.new_code_cell(src))
    return nb


def _attacks(student, solution, root: Path) -> dict:
    """The attacks of issue 14, each a submission; see ATTACKS for what each must score."""
    right, wrong = _answer(student, **RIGHT), _answer(student, **WRONG)
    a = {}
    a["thief"] = _extra(student, (          # finds solutions/ next to labkit, or where the instructor keeps them
        "import json, pathlib, labkit\n"
        "places = [p / 'solutions' for p in pathlib.Path(labkit.__file__).parents]\n"
        f"places += [pathlib.Path({str(FIXTURE)!r}), pathlib.Path({str(FIXTURE.parents[3] / 'solutions')!r})]\n"
        "found = [f for p in places if p.is_dir() for f in p.glob('*.ipynb')]\n"
        "for f in found:\n"
        "    for c in json.loads(f.read_text())['cells']:\n"
        "        if c.get('id', '').endswith('-answer'):\n"
        "            exec(''.join(c['source']).replace('### BEGIN SOLUTION', ''), globals())\n"
        "if not found:\n"
        "    raise RuntimeError('the thief found no solutions')"), after=None)
    a["forged_log"] = _extra(wrong, (
        "import json, os, glob\n"
        "lines = [{'question': q, 'passed': True, 'points': p, 'max_points': p, 'message': 'correct',\n"
        "          'token': 'x', 'solution_passes': True} for q, p in "
        f"{dict(FULL)!r}.items()]\n"
        "for path in glob.glob('.labkit/*') + glob.glob('/grade/.labkit/*') + [os.environ.get('LABKIT_GRADE_LOG', 'x')]:\n"
        "    with open(path, 'a') as f:\n"
        "        f.write(''.join(json.dumps(x) + '\\n' for x in lines))"), after=None)
    a["patches_display"] = _extra(wrong, (
        "import builtins, IPython.display as d, labkit as lk\n"
        "builtins.print = lambda *a, **k: d.display('✔ 90.q1 — 2/2 points: correct')\n"
        "d.display = lambda *a, **k: None\n"
        "lk.check = lambda *a, **k: None"), after=None)
    a["edits_checker"] = _extra(wrong, (
        "import os, labkit.grade.check as c\n"
        "fd = os.open(c.__file__, os.O_WRONLY | os.O_APPEND)   # would rewrite the grader's checker\n"
        "os.close(fd)"), after=None)
    a["token_hunt"] = _extra(wrong, (
        "import gc, re\n"
        "hexes = [o for o in gc.get_objects() if isinstance(o, dict) for o in o.values()\n"
        "         if isinstance(o, str) and re.fullmatch('[0-9a-f]{32}', o)]\n"
        "oracles = [o for o in gc.get_objects() if isinstance(o, dict) and 'expected' in o]\n"
        "raise RuntimeError(f'token hunt: {len(hexes)} tokens, {len(oracles)} oracles')"))
    a["network"] = _extra(right, (
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)"))
    a["fork_bomb"] = _extra(right, (
        "import os\nwhile True:\n    os.fork()"))
    a["disk_fill"] = _answer(right, **{"q3-answer": (     # 5 GB in 64 MiB files, then the answer
        "import os\nfor i in range(80):\n    with open(f'fill{i}', 'wb') as f:\n"
        "        f.write(os.urandom(2**20) * 64)\n" + RIGHT["q3-answer"])})
    a["reads_other"] = _extra(wrong, (
        "import glob, json\n"
        f"nb = json.load(open({str(root / 'submissions' / 'solution.ipynb')!r}))\n"
        "exec(next(''.join(c['source']) for c in nb['cells'] if c.get('id') == 'q1-answer'))"), after="q1-answer")
    a["settrace"] = _extra(wrong, (
        "import sys, threading\n"
        "seen = []\n"
        "def spy(frame, event, arg):\n"
        "    for k, v in list(frame.f_locals.items()):\n"
        "        if k in ('expected', 'want', 'between', 'token') and type(v) in (int, float, list, str):\n"
        "            seen.append(v)\n"
        "            if type(v) is int:\n"
        "                frame.f_globals['total'] = v   # answer with the oracle\n"
        "    return spy\n"
        "sys.settrace(spy)\nthreading.settrace(spy)"), after="q1-answer")
    a["settrace"] = _extra(a["settrace"], "raise RuntimeError(f'spy saw the answer: {45 in seen or [-2.0] * 3 in seen}')")
    return a


FULL = {"90.q1": 2, "90.q2": 3, "90.q2h": 1, "90.q3": 1}
ZERO = dict.fromkeys(FULL, 0)
EXPECTED = {   # name -> (status, points per question, words the detail must contain)
    "solution": ("graded", FULL, "all cells ran"),
    "untouched": ("graded", ZERO, "NotImplementedError"),
    "wrong": ("graded", ZERO, ""),
    "half_right": ("graded", {**ZERO, "90.q1": 2, "90.q3": 1}, ""),
    "check_edited_to_pass": ("graded", {**ZERO, "90.q3": 1}, "edited check cell restored: 90.q1, 90.q2"),
    "check_deleted": ("graded", FULL, "deleted check cell restored: 90.q1, 90.q3"),
    "redefines_check": ("graded", {**ZERO, "90.q2": 3, "90.q2h": 1}, ""),
    "infinite_loop": ("graded", {**ZERO, "90.q1": 2, "90.q3": 1},
                      "answer 90.q2: interrupted: over the CPU-time limit of a cell"),
    "uninterruptible": ("graded", {**FULL, "90.q3": 0}, "ignored the interrupt) in answer 90.q3; checks that did not run: 90.q3"),
    "kills_kernel": ("graded", {**ZERO, "90.q1": 2}, "kernel died"),
    "calls_exit": ("graded", {**FULL, "90.q3": 0}, ""),
    "leaves_a_process": ("graded", FULL, "all cells ran"),
    "memory_bomb": ("graded", {**FULL, "90.q3": 0}, "memory"),
    "huge_output": ("graded", FULL, ""),   # if the print loop ever used 6 CPU seconds: interrupted, same points
    "invalid_json": ("ungradable", ZERO, "not valid JSON"),
    "other_lab": ("ungradable", ZERO, "lab 91"),
    "unrelated": ("ungradable", ZERO, "no cell of lab 90"),
    "empty": ("ungradable", ZERO, "empty file"),
    "moved_duplicated": ("graded", FULL, ""),
    "no_cell_ids": ("graded", FULL, "all cells ran"),
    "used_hints": ("graded", FULL, "all cells ran"),
}
ATTACKS = {   # issue 14: what an honest grader gives each; the words prove the sandbox stopped it
    "thief": ("graded", ZERO, "the thief found no solutions"),
    "forged_log": ("graded", ZERO, ""),
    "patches_display": ("graded", ZERO, ""),
    "edits_checker": ("graded", ZERO, "labkit/grade/check.py'"),   # read-only (or not ours): refused
    "token_hunt": ("graded", ZERO, "token hunt: 0 tokens, 0 oracles"),
    "network": ("graded", FULL, "Network is unreachable"),
    "fork_bomb": ("graded", FULL, ""),
    "disk_fill": ("graded", {**FULL, "90.q3": 0}, "No space left on device"),
    "reads_other": ("graded", ZERO, "No such file or directory"),
    "settrace": ("graded", ZERO, "spy saw the answer: False"),
}
EXPECTED.update(ATTACKS)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The fixture lab built into a temporary labs/ folder, and the adversarial submissions written out."""
    root = tmp_path_factory.mktemp("grading")
    labs = root / "labs"
    build(FIXTURE, labs)
    student = nbformat.read(labs / "90_fixture.ipynb", as_version=4)
    solution = nbformat.read(FIXTURE / "90_fixture.ipynb", as_version=4)
    subs = root / "submissions"
    subs.mkdir()
    for name, nb in _submissions(student, solution, root).items():
        data = nb if isinstance(nb, bytes) else nbformat.writes(nb).encode()
        (subs / f"{name}.ipynb").write_bytes(data)
    assert {p.stem for p in subs.iterdir()} == set(EXPECTED)
    return {"root": root, "labs": labs, "subs": subs}


def _read_book(out: Path) -> dict:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


# Busy loops are stopped by CPU time (6 CPU seconds a cell: the same on an idle or a loaded machine), so no
# submission here depends on a wall-clock limit: those are ceilings that only stop a hang.
LIMITS = ["--cell-cpu", "6", "--cell-timeout", "300", "--timeout", "900"]


def _grade(lab, out, *extra, subs=None):
    argv = ["--lab", "90", "--out", str(out), "--solutions", str(FIXTURE), "--labs", str(lab["labs"]),
            *LIMITS, "--memory-mb", "600", "--disk-mb", "200", "--quiet", *extra]
    return grade_cli(argv + [str(p) for p in (subs or [lab["subs"]])])


@pytest.fixture(scope="module")
def batch(lab):
    _sandbox_or_skip()
    out = lab["root"] / "graded"
    assert _grade(lab, out, "--workers", "2") == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_adversarial_submission_is_graded_correctly(batch, name):
    row = _read_book(batch)[f"{name}.ipynb"]
    status, points, words = EXPECTED[name]
    assert row["status"] == status, row["detail"]
    got = {q: float(row[f"q:{q}"]) for q in FULL}
    assert got == {q: float(v) for q, v in points.items()}, row["detail"]
    assert float(row["score"]) == sum(points.values())
    assert float(row["max_score"]) == 7
    assert words in row["detail"]
    assert row["sandbox"] == ("bwrap" if status == "graded" else "")
    assert (batch / "feedback" / f"{name}.md").is_file()


@pytest.mark.slow
def test_processes_left_behind_are_killed(lab, batch):
    left = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if ORPHAN in " ".join(p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(p.pid)
        except psutil.Error:
            pass
    assert not left


@pytest.mark.slow
def test_gradebook_columns_and_feedback(batch):
    with open(batch / "gradebook.csv", newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == ["submission", "status", "score", "max_score", "detail", "sandbox",
                      "q:90.q1", "q:90.q2", "q:90.q2h", "q:90.q3", "hints:90.q1", "hints:90.q2", "hints:90.q3"]
    book = _read_book(batch)
    assert book["used_hints.ipynb"]["hints:90.q2"] == "2" and book["used_hints.ipynb"]["hints:90.q1"] == "0"
    assert book["solution.ipynb"]["hints:90.q2"] == "0"
    assert "(2 hints used)" in (batch / "feedback" / "used_hints.md").read_text(encoding="utf-8")
    assert len(_read_book(batch)) == len(EXPECTED)
    text = (batch / "feedback" / "half_right.md").read_text(encoding="utf-8")
    assert "Score: 3 / 7" in text
    assert "| 90.q2 | ✘ | 0/3 |" in text and "Hint: multiply each element by k" in text
    assert "| 90.q1 | ✔ | 2/2 | correct |" in text
    # the feedback never contains the expected answer of a failed exact check
    wrong = (batch / "feedback" / "wrong.md").read_text(encoding="utf-8")
    assert "45" not in wrong.replace("90.q", "")


@pytest.mark.slow
def test_ray_grades_the_same(lab, batch, ray_session):
    names = ["solution", "half_right", "redefines_check", "kills_kernel", "empty"]
    out = lab["root"] / "graded-ray"
    assert _grade(lab, out, "--ray", "auto", "--workers", "2",
                  subs=[lab["subs"] / f"{n}.ipynb" for n in names]) == 0
    local, remote = _read_book(batch), _read_book(out)
    for n in names:
        key = f"{n}.ipynb"
        assert {k: v for k, v in remote[key].items() if k != "detail"} == \
               {k: v for k, v in local[key].items() if k != "detail"}


def _run_fixture(lab, solution, limits):
    tmp = Path(__import__("tempfile").mkdtemp())
    try:
        (tmp / "s.ipynb").write_text(nbformat.writes(solution), encoding="utf-8")
        prepared = prepare(tmp / "s.ipynb", lab)
        return run_notebook(prepared.notebook, prepared.code_roles, limits)
    finally:
        shutil.rmtree(tmp)


def test_notebook_time_limit_kills_and_keeps_the_log():
    lab = load_lab("90", FIXTURE)
    solution = nbformat.read(FIXTURE / "90_fixture.ipynb", as_version=4)
    # the notebook limit is derived from the whole solution timed here, now: on a loaded machine both grow, so
    # the check before the sleep always has time to report (a fixed 8 s failed when the kernel started slowly)
    reference = _run_fixture(lab, solution, Limits(600, 900, 600))
    assert reference.stopped is None and len(reference.exports) == 4
    limit_s = 2 * reference.wall_s + 5
    run = _run_fixture(lab, _answer(solution, **{"q2-answer": "import time\ntime.sleep(3600)"}),
                       Limits(600, limit_s, 600))
    assert run.stopped and "time limit" in run.stopped
    assert [c["question"] for c in run.exports] == ["90.q1"]     # the check before the sleep was exported
    # killed, not finished: far less than the hour the cell sleeps (a ceiling for a hang, not a speed test)
    assert run.wall_s < 600


def test_instructor_mistakes_exit_nonzero(tmp_path, capsys):
    assert grade_cli(["--lab", "42", "--out", str(tmp_path), "--solutions", str(FIXTURE), str(tmp_path)]) == 2
    assert "unknown lab" in capsys.readouterr().err
    assert grade_cli(["--lab", "90", "--out", str(tmp_path), "--solutions", str(FIXTURE)]) == 2
    empty = tmp_path / "none"
    empty.mkdir()
    assert grade_cli(["--lab", "90", "--out", str(tmp_path), "--solutions", str(FIXTURE), str(empty)]) == 2
    assert "no submissions" in capsys.readouterr().err


def test_restore_puts_hidden_cell_after_its_answer_and_keeps_scratch(tmp_path):
    lab = load_lab("90", FIXTURE)
    labs = tmp_path / "labs"
    build(FIXTURE, labs)
    nb = nbformat.read(labs / "90_fixture.ipynb", as_version=4)
    nb = _answer(nb, **RIGHT)
    nb.cells.insert(nb.cells.index(_cell(nb, "q2-answer")) + 1, nbformat.v4.new_code_cell("mine = 1"))
    nbformat.write(nb, tmp_path / "s.ipynb")
    prepared = prepare(tmp_path / "s.ipynb", lab)
    roles = [r for r, _ in prepared.code_roles]
    assert roles == ["given", "answer", "check", "answer", "extra", "check", "hidden", "answer", "check"]
    sources = ["".join(c["source"]) for c in json.loads(prepared.notebook)["cells"] if c["cell_type"] == "code"]
    assert sources[4] == "mine = 1" and "90.q2h" in sources[6]


def test_no_sandbox_refuses_unless_unsafe(lab, tmp_path, monkeypatch, capsys):
    import labkit.grade.sandbox as sandbox

    monkeypatch.setattr(sandbox, "_probe", lambda: "bwrap failed (exit 1): no user namespaces here")
    sub = [lab["subs"] / "solution.ipynb"]
    assert _grade(lab, tmp_path / "refused", subs=sub) == 2
    err = capsys.readouterr().err
    assert "no sandbox can start" in err and "no user namespaces here" in err and "--unsafe-no-sandbox" in err
    assert not (tmp_path / "refused" / "gradebook.csv").exists()
    assert _grade(lab, tmp_path / "unsafe", "--unsafe-no-sandbox", "--workers", "2", subs=sub) == 0
    row = _read_book(tmp_path / "unsafe")["solution.ipynb"]
    assert (row["sandbox"], row["score"]) == ("none", "7")


def test_cell_cpu_limit_interrupts_a_busy_loop_but_not_a_slow_cell():
    # CPU seconds, not wall seconds: q1's answer sleeps 3 s (no CPU) under a 1.5 CPU-second limit and scores;
    # q2's busy loop is interrupted and scores 0, and q3 still runs. No wall-clock limit is near.
    _sandbox_or_skip()
    lab = load_lab("90", FIXTURE)
    solution = nbformat.read(FIXTURE / "90_fixture.ipynb", as_version=4)
    nb = _answer(solution, **{"q1-answer": "import time\ntime.sleep(3)\n" + RIGHT["q1-answer"],
                              "q2-answer": "while True:\n    pass"})
    run = _run_fixture(lab, nb, Limits(600, 900, 600, cell_cpu_s=1.5))
    assert run.stopped is None, run.output_tail
    assert [c["question"] for c in run.exports] == ["90.q1", "90.q2", "90.q2h", "90.q3"]
    errors = [e["error"] for e in run.events if e.get("event") == "end" and e.get("error")]
    assert "interrupted: over the CPU-time limit of a cell" in errors
    assert run.wall_s < 600            # a ceiling for a hang, not a speed test


class _FakeProc:
    def __init__(self, pid, cpu=0.0):
        self.pid, self.cpu, self.signals = pid, cpu, []

    def cpu_times(self):
        from types import SimpleNamespace

        return SimpleNamespace(user=self.cpu * 0.75, system=self.cpu * 0.25, children_user=0.0, children_system=0.0)

    def send_signal(self, sig):
        self.signals.append(sig)


def test_cell_cpu_counts_from_the_start_of_each_cell():
    # the accounting alone, on fake processes: a cell's budget starts when it starts; over the limit the kernel
    # gets one SIGINT; over twice the limit the run is to be killed; the next cell starts afresh
    import signal

    from labkit.grade.cell_cpu import CellCPU

    kernel, child = _FakeProc(10, cpu=50.0), _FakeProc(11, cpu=0.0)
    limit = CellCPU(2.0)
    start = lambda *cells: [{"cell": c, "event": "start"} for c in cells]  # noqa: E731
    end = lambda *cells: [{"cell": c, "event": "end"} for c in cells]      # noqa: E731
    poll = lambda events: limit.poll(events, [kernel], [kernel, child])    # noqa: E731
    assert poll([]) is None
    assert poll(start(0)) is None                   # cell 0 starts at 50 CPU s: its base
    kernel.cpu, child.cpu = 51.0, 1.0               # 2.0 s used: at the limit, not over
    assert poll(start(0)) is None and kernel.signals == []
    child.cpu = 1.5                                 # the kernel's children count: 2.5 s
    assert poll(start(0)) is None and kernel.signals == [signal.SIGINT]
    kernel.cpu = 52.5                               # 4.0 s: twice the limit, not over it
    assert poll(start(0)) is None and kernel.signals == [signal.SIGINT]
    kernel.cpu = 52.6
    assert "twice its CPU-time limit of 2 s" in poll(start(0))
    events = start(0) + end(0) + start(1)           # cell 1: a fresh budget from 54.1 s
    assert poll(events) is None
    kernel.cpu = 54.5
    assert poll(events) is None and kernel.signals == [signal.SIGINT]
    assert poll(events + end(1)) is None            # nothing runs: nothing counts
    kernel.cpu = 100.0
    assert poll(events + end(1)) is None and kernel.signals == [signal.SIGINT]
    # a kernel first seen while a cell runs: its start-up CPU is not charged to that cell
    late = CellCPU(2.0)
    assert late.poll(start(0), [], []) is None
    assert late.poll(start(0), [kernel], [kernel]) is None and len(kernel.signals) == 1   # 100 s so far: the base
    kernel.cpu = 101.0
    assert late.poll(start(0), [kernel], [kernel]) is None and len(kernel.signals) == 1
