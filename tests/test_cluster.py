"""labkit.cluster: a local Ray start that misses Ray's fixed 30 s node-registration window is tried once more."""

import pytest

from labkit import cluster


class FakeRay:
    def __init__(self, failures, message="The current node timed out during startup. This could happen ..."):
        self.failures, self.message, self.inits, self.shutdowns = failures, message, 0, 0

    def init(self, **kwargs):
        self.inits += 1
        assert kwargs["include_dashboard"] is False and kwargs["num_cpus"] == 2
        if self.inits <= self.failures:
            raise Exception(self.message)

    def shutdown(self):
        self.shutdowns += 1


def test_a_start_timeout_is_tried_again_once(monkeypatch):
    stopped = []
    monkeypatch.setattr(cluster, "_stop_own_ray_processes", lambda: stopped.append(1))
    ray = FakeRay(failures=1)
    cluster._start_local(ray, 2, 1)
    assert (ray.inits, ray.shutdowns, len(stopped)) == (2, 1, 1)


def test_a_second_timeout_or_another_error_is_raised(monkeypatch):
    monkeypatch.setattr(cluster, "_stop_own_ray_processes", lambda: None)
    ray = FakeRay(failures=2)
    with pytest.raises(Exception, match="timed out during startup"):
        cluster._start_local(ray, 2, 1)
    assert ray.inits == cluster.START_TRIES == 2
    other = FakeRay(failures=1, message="object store too small")
    with pytest.raises(Exception, match="object store"):
        cluster._start_local(other, 2, 1)
    assert (other.inits, other.shutdowns) == (1, 0)
