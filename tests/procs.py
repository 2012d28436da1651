"""Helpers for the tests that start Ray Serve (test_deploy_serve, test_deploy_llm_serve, test_ops_live)."""


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
