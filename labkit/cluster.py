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
            ray.init(num_cpus=num_cpus, object_store_memory=object_store_bytes, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
