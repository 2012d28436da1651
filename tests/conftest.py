"""Shared test fixtures: one calibration cache and one Ray cluster for the whole session."""

import os
import tempfile
from pathlib import Path

import pytest

# One calibration cache for every test process (xdist workers included), apart from the learner's own cache,
# so a quick calibration made by a test never becomes what `lk.device("local")` means on this machine.
os.environ.setdefault("LABKIT_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"labkit-test-cache-{os.getuid()}"))
os.environ.setdefault("MPLBACKEND", "Agg")
# Ray's raylet can take over 40 s to register on a loaded 2-core machine (CI runs tests on both cores).
os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray cluster shared by every test that needs one (started once, always shut down)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, object_store_memory=80 * 1024**2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


# bench/mutate.py sets LABKIT_TEST_DEADLINE_S for a module whose mutants can loop forever (its budget entry's
# test_deadline_s): a test running longer fails at once instead of waiting for mutmut's CPU-time limit (minutes
# per mutant). Unset in ordinary runs: no deadline.
_DEADLINE_S = float(os.environ.get("LABKIT_TEST_DEADLINE_S") or 0)

if _DEADLINE_S > 0:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(item):
        from procs import deadline

        with deadline(_DEADLINE_S, f"{item.nodeid} (LABKIT_TEST_DEADLINE_S)"):
            yield


# `make test` runs pytest-xdist with --dist loadfile --no-loadscope-reorder: each file goes whole to one worker, in
# the order of this list. Grading every lab (test_labs.py, ~20 min of one worker in the CI dry run of 2026-12-03)
# goes first, so the other worker runs the rest of the suite beside it. Sorted by test count, as xdist does by
# default, it started ~3.5 min in, and the other worker sat idle for at least the last 7 of the 23 min. Then the
# grader's own tests, the next longest file.
_FIRST = ("test_labs.py", "test_grade.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return _FIRST.index(name) if name in _FIRST else len(_FIRST)

    items.sort(key=rank)          # stable: within a file, and among the other files, collection order stays
