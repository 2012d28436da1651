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


# The longest units of `make test` (xdist --dist loadscope: a class, else a file, is one unit), heaviest first.
_FIRST = ("tests/test_labs.py::TestSystemsLabs", "tests/test_labs.py::TestFoundationLabs")


def pytest_collection_modifyitems(items):
    """The labs' gradings go first in the queue, one half of the syllabus to each worker (`make test` passes
    --no-loadscope-reorder); queued last, they would run on alone after everything else. The rest keeps its
    order."""
    def rank(item):
        scope = item.nodeid.rsplit("::", 1)[0]
        return _FIRST.index(scope) if scope in _FIRST else len(_FIRST)

    items.sort(key=rank)
