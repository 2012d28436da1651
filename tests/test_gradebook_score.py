"""The grader's score counting (labkit.grade.gradebook.score) on hand-built runs, no notebook executed.

The oracle is the documented rule, applied by hand or by a second loop written here: a question earns the
points its solution declares when the *last* trusted log line for it says ``passed`` (exactly True); questions
the solution does not declare earn nothing; a check that never ran earns nothing and is named in the detail.
These are the tests `make mutate` runs against score(); keep them fast.
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.grade.gradebook import score

QUESTIONS = {"06.q1": 2.0, "06.q2": 3.0, "06.q3": 0.5}


def lab(questions=QUESTIONS):
    return SimpleNamespace(questions={q: {"points": p, "hint": f"hint {q}"} for q, p in questions.items()},
                           max_score=sum(questions.values()))


def prepared(roles=(("setup", ()), ("answer", ("06.q1",)), ("check", ("06.q1",)), ("extra", ()),
                    ("extra", ()), ("hidden", ("06.q2",))), notes=()):
    return SimpleNamespace(code_roles=tuple(roles), notes=tuple(notes))


def run(checks=(), events=(), stopped=None):
    return SimpleNamespace(checks=tuple(checks), events=tuple(events), stopped=stopped, sandbox="bwrap")


def line(q, passed, message="m"):
    return {"question": q, "passed": passed, "message": message}


def test_all_passed_is_full_marks_and_all_cells_ran():
    g = score("ann", lab(), prepared(), run([line(q, True) for q in QUESTIONS]))
    assert (g.submission, g.status, g.score, g.max_score) == ("ann", "graded", 5.5, 5.5)
    assert g.points == QUESTIONS and g.detail == "all cells ran"
    assert g.results["06.q2"] == {"passed": True, "message": "m", "hint": "hint 06.q2"}


def test_each_question_earns_its_own_points():
    g = score("bob", lab(), prepared(), run([line("06.q1", False), line("06.q2", True), line("06.q3", True)]))
    assert g.score == 3.5 and g.points == {"06.q1": 0.0, "06.q2": 3.0, "06.q3": 0.5}
    assert g.results["06.q1"]["passed"] is False


def test_the_last_line_for_a_question_counts():
    g = score("c", lab(), prepared(), run([line("06.q1", True), line("06.q1", False)] +
                                          [line(q, True) for q in ("06.q2", "06.q3")]))
    assert g.points["06.q1"] == 0.0 and g.score == 3.5
    g = score("c", lab(), prepared(), run([line("06.q1", False), line("06.q1", True)]))
    assert g.points["06.q1"] == 2.0


def test_only_exactly_true_passes_and_unknown_questions_are_ignored():
    checks = [line("06.q1", 1), line("06.q2", "True"), line("06.q3", None), line("99.q9", True),
              {"passed": True}]
    g = score("d", lab(), prepared(), run(checks))
    assert g.score == 0.0 and set(g.results) == set(QUESTIONS)
    assert "99.q9" not in g.points


def test_messages_are_cut_to_300_characters():
    g = score("e", lab(), prepared(), run([line("06.q1", False, "x" * 400)]))
    assert g.results["06.q1"]["message"] == "x" * 300
    g = score("e", lab(), prepared(), run([{"question": "06.q1", "passed": False}]))
    assert g.results["06.q1"]["message"] == ""


def test_checks_that_did_not_run_are_named():
    g = score("f", lab(), prepared(), run([line("06.q2", True)]))
    assert g.detail == "checks that did not run: 06.q1, 06.q3"
    assert g.score == 3.0 and "06.q1" not in g.results


def test_errors_are_reported_per_cell_with_its_label():
    events = [{"cell": 1, "event": "start"}, {"cell": 1, "event": "end", "error": "NameError: x"},
              {"cell": 4, "event": "start"}, {"cell": 4, "event": "end", "error": "ValueError: y"},
              {"cell": 5, "event": "end", "error": "the kernel had stopped"},
              {"cell": 9, "event": "end", "error": "beyond the notebook"},
              {"cell": 0, "event": "end", "error": None}]
    g = score("g", lab(), prepared(notes=["edited check cell restored: 06.q1"]),
              run([line(q, True) for q in QUESTIONS], events))
    assert g.detail == ("edited check cell restored: 06.q1; answer 06.q1: NameError: x; "
                        "your extra cell 2: ValueError: y")
    assert g.score == 5.5


def test_a_stopped_run_says_where_it_stopped():
    events = [{"cell": 0, "event": "start"}, {"cell": 0, "event": "end"}, {"cell": 5, "event": "start"}]
    g = score("h", lab(), prepared(), run([line("06.q1", True)], events, stopped="time limit (60 s)"))
    assert g.detail == "time limit (60 s) in hidden check 06.q2; checks that did not run: 06.q2, 06.q3"
    assert g.score == 2.0
    events = [{"cell": 0, "event": "start"}, {"cell": 0, "event": "end"}, {"cell": 3, "event": "start"}]
    g = score("h", lab(), prepared(), run([line(q, True) for q in QUESTIONS], events, stopped="dead kernel"))
    assert g.detail == "dead kernel in your extra cell 1"
    g = score("h", lab(), prepared(), run([line(q, True) for q in QUESTIONS],
                                          [{"cell": 2, "event": "start"}, {"cell": 2, "event": "end"}],
                                          stopped="dead kernel"))
    assert g.detail == "dead kernel"
    g = score("h", lab(), prepared(), run([line(q, True) for q in QUESTIONS], [{"cell": 7, "event": "start"}],
                                          stopped="dead kernel"))
    assert g.detail == "dead kernel"


def test_setup_cell_label():
    events = [{"cell": 0, "event": "end", "error": "ImportError: z"}]
    g = score("i", lab(), prepared(), run([line(q, True) for q in QUESTIONS], events))
    assert g.detail == "setup cell: ImportError: z"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([*QUESTIONS, "00.q0"]), st.sampled_from([True, False, 1, None])),
                max_size=12))
def test_score_is_the_sum_over_last_verdicts(log):
    last = {}
    for q, passed in log:                       # the rule, written out independently
        last[q] = passed
    want = sum(p for q, p in QUESTIONS.items() if last.get(q) is True)
    g = score("j", lab(), prepared(), run([line(q, p) for q, p in log]))
    assert g.score == want and g.max_score == 5.5
    assert g.points == {q: (p if last.get(q) is True else 0.0) for q, p in QUESTIONS.items()}


def test_cells_at_the_edge_of_the_notebook_and_the_last_start():
    # cell 6 is one past the last code cell (6 roles): an error or a start there names no cell
    events = [{"cell": 6, "event": "end", "error": "stray"}]
    g = score("k", lab(), prepared(), run([line(q, True) for q in QUESTIONS], events))
    assert g.detail == "all cells ran"
    events = [{"cell": 0, "event": "start"}, {"cell": 0, "event": "end"}, {"cell": 6, "event": "start"}]
    g = score("k", lab(), prepared(), run([line(q, True) for q in QUESTIONS], events, stopped="dead kernel"))
    assert g.detail == "dead kernel"
    # the *last* cell started is where it stopped, not the second one
    events = [{"cell": 0, "event": "start"}, {"cell": 0, "event": "end"}, {"cell": 1, "event": "start"},
              {"cell": 1, "event": "end"}, {"cell": 4, "event": "start"}]
    g = score("k", lab(), prepared(), run([line(q, True) for q in QUESTIONS], events, stopped="time limit"))
    assert g.detail == "time limit in your extra cell 2"


def test_the_grade_carries_the_runs_sandbox_and_the_hints_of_the_labs_questions_only():
    g = score("h", lab(), prepared(), run([line(q, True) for q in QUESTIONS]),
              hints={"06.q1": 2, "06.q3": 1, "99.q9": 4})
    assert g.sandbox == "bwrap"                                  # how the run was isolated, as the run says
    assert g.hints == {"06.q1": 2, "06.q3": 1}                   # a question not in the lab is not a column
    assert score("h", lab(), prepared(), run()).hints == {}      # no hints asked: none counted
