"""Lab 04's break-even question (04.q5) is judged on the learner's own torch.compile timing, both ways round.

Near a speed-up of 1, two runs of the same solution can give break-even counts more than 10x apart, or a
finite count in one and "never" in the other; the grader's 10x plausibility guard for kernel oracles then
fell back to the reference run's values, and a correct solution lost 3 points (a CI dry run, 2026-12-03).
04.q5 is now a kernel-judged ``test=`` check. Here the solution's own answer and check cells run on made-up
timings (a real TorchCompile of made-up Measurements): faster than eager, about equal and slower, so both
branches are exercised without measuring anything.
"""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

import labkit as lk

ROOT = Path(__file__).resolve().parents[1]
NB = json.loads((ROOT / "solutions" / "04_compile.ipynb").read_text(encoding="utf-8"))


def _cell(marker: str) -> str:
    (src,) = [s for s in ("".join(c["source"]) for c in NB["cells"] if c["cell_type"] == "code") if marker in s]
    return src


def _timing(compile_s, eager_s, compiled_s) -> lk.compile.TorchCompile:
    """A TorchCompile of made-up timings: its speedup and break_even_calls are labkit's own."""
    m = lk.Measurement.from_samples
    return lk.compile.TorchCompile("inductor", "inductor", None, "", compile_s, compiled=m([compiled_s] * 5),
                                   eager=m([eager_s] * 5), max_abs_diff=0.0)


def _run(cells, tc, labkit=None) -> dict:
    """Run the solution's cells (found by a marker each) with `tc` made up, under `labkit` (default: one that
    records lk.check's results by question, in the namespace's "results")."""
    results = {}

    def check(question, *args, **kwargs):
        results[question] = lk.check(question, *args, **kwargs)
        return results[question]

    env = {"lk": labkit or SimpleNamespace(check=check), "math": math, "tc": tc}
    for marker in cells:
        exec(_cell(marker), env)
    return {**env, "results": results}


ANSWERS = ["def break_even(compile_s, eager_s, compiled_s)", "calls_needed = break_even("]


@pytest.mark.parametrize("eager_s, compiled_s", [(1.0e-3, 0.5e-3), (1.0e-3, 0.999e-3), (1.0e-3, 1.2e-3)])
def test_the_solution_passes_04_q5_on_its_own_timing(eager_s, compiled_s):
    env = _run([*ANSWERS, 'lk.check("04.q5",'], _timing(20.0, eager_s, compiled_s))
    assert env["results"]["04.q5"].passed, env["results"]["04.q5"].message


def test_04_q5_fails_a_wrong_answer_and_a_finite_count_where_it_never_pays_off():
    env = _run(['lk.check("04.q5",'], _timing(20.0, 1.0e-3, 1.2e-3))   # no answers defined: the check fails
    assert not env["results"]["04.q5"].passed
    matches = env["_q5_matches"]
    tc = env["tc"]
    right = (tc.speedup, "never", 1e6 * (1.0e-3 - 1.2e-3) - 20.0, "never")
    assert matches(right) is True
    assert matches((tc.speedup, 1e5, right[2], "never")) is not True          # a count where it never pays off
    assert matches((tc.speedup * (1 + 1e-5), *right[1:])) is not True        # beyond rtol 1e-6
    assert matches((None, *right[1:])) is not True                            # not a number: no exception
    assert matches(right[:3]) is not True


def test_the_grader_passes_04_q5_when_the_reference_run_measured_the_other_way_round(tmp_path):
    """The grading path: the learner's kernel finds compiling never pays off (compiled 20% slower), the
    reference run of the solution finds it pays off after 40,000 calls. Judged on the kernel's own timing."""
    from labkit.grade.check import exporting_labkit, oracle_labkit
    from labkit.grade.oracle import judge_run, oracles_of
    from labkit.grade.runner import RunResult

    def exports(path):
        return tuple(json.loads(line) for line in path.read_text().splitlines())

    kernel, reference = tmp_path / "kernel.jsonl", tmp_path / "reference.jsonl"
    for path, make_lk, tc in ((kernel, exporting_labkit, _timing(20.0, 1.0e-3, 1.2e-3)),
                              (reference, oracle_labkit, _timing(20.0, 1.0e-3, 0.5e-3))):
        _run([*ANSWERS, 'lk.check("04.q5",'], tc, make_lk(str(path), real=lk))
    lab = SimpleNamespace(questions={"04.q5": {}}, kernel_oracles=tuple(NB["metadata"]["labkit"]["kernel_oracles"]))
    oracles, _ = oracles_of(RunResult(exports(reference), (), None, 1.0, 0.0, ""), lab)
    (verdict,) = judge_run(RunResult(exports(kernel), (), None, 1.0, 0.0, ""), lab, oracles).checks
    assert verdict["passed"], verdict
