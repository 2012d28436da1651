"""Helpers shared by tests: Ray Serve's processes (test_deploy_serve, test_deploy_llm_serve, test_ops_live) and a
deadline for code that might loop forever (test_deploy_sim_by_hand, conftest under bench/mutate.py)."""

import contextlib
import signal


def serve_processes() -> list[int]:
    """Serve's actor processes among this test process's descendants (Ray titles them ray::Serve...)."""
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            title = " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "ServeReplica" in title or "ServeController" in title:
            found.append(p.pid)
    return found


@contextlib.contextmanager
def deadline(seconds: float = 10.0, what: str = "the block"):
    """Fail (instead of hanging) if the block runs longer than `seconds` (SIGALRM, main thread only): a loop that
    never ends is a bug in the code under test (tests/test_deploy_sim_by_hand.py) or a looping mutant
    (tests/conftest.py under bench/mutate.py)."""
    def stop(signum, frame):
        raise TimeoutError(f"{what} still running after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
