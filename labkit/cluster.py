"""The one place labkit starts or joins Ray: grading, the Ray Serve twin and federated clients all go through it.

Ray is started small and quiet (explicit ``num_cpus``, a small object store, no dashboard) and a cluster that
labkit started is always shut down when the block ends; a cluster it joined (``address=``) is left running.

>>> from labkit.cluster import ray_cluster
>>> callable(ray_cluster)
True
"""

from __future__ import annotations

import contextlib
import os

from labkit.args import check_int

# Ray keeps its object store in /dev/shm; 80 MB holds every array labkit passes around and keeps Binder's 2 GB safe.
OBJECT_STORE_BYTES = 80 * 1024**2


@contextlib.contextmanager
def ray_cluster(num_cpus: int = 2, address: str | None = None, object_store_bytes: int = OBJECT_STORE_BYTES):
    """Yield the ``ray`` module with a cluster running: a local one started here, or the one at ``address``.

    A local cluster started here is shut down on exit (even on error); one already running in this process, or
    one joined at ``address``, is left as it was. Used by labs 07, 09, 10 and 11 and by ``labkit grade``.

    >>> with ray_cluster(num_cpus=1) as ray:          # doctest: +SKIP
    ...     ray.get(ray.remote(lambda: 42).remote())
    42
    """
    num_cpus = check_int("num_cpus", num_cpus, 1)
    import ray

    started = not ray.is_initialized()
    if started:
        # A loaded 2-core machine can take tens of seconds to register the raylet.
        os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")
        if address in (None, "local"):
            _start_local(ray, num_cpus, object_store_bytes)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


START_TRIES = 2   # Ray 2.60 gives a new node a fixed 30 s to register with its GCS; a loaded machine can miss it


def _start_local(ray, num_cpus: int, object_store_bytes: int) -> None:
    """ray.init of a small local cluster, tried again once when the node misses Ray's fixed 30 s registration
    window ("timed out during startup", seen with two Ray labs graded at once on 2 cores); the half-started
    node's processes are stopped before the second try."""
    for attempt in range(START_TRIES):
        try:
            ray.init(num_cpus=num_cpus, object_store_memory=object_store_bytes, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
            return
        except Exception as err:
            if "timed out during startup" not in str(err) or attempt == START_TRIES - 1:
                raise
            ray.shutdown()
            _stop_own_ray_processes()


def _stop_own_ray_processes() -> None:
    """Kill this process's Ray children (GCS, raylet, agents) left by a start that failed."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            if "/ray/" in " ".join(child.cmdline()):   # gcs_server, raylet and the agents live under ray/
                child.kill()
        except psutil.Error:
            pass
