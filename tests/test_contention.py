"""The calibration's contention note measures other processes' CPU time, not labkit's own (issue 12)."""

import itertools

import pytest

from labkit.calibration import contention


def _fake_clock(monkeypatch, machine, own, wall, cpus=2):
    m, o, w = iter(machine), iter(own), iter(wall)
    monkeypatch.setattr(contention, "_machine_busy_s", lambda: next(m))
    monkeypatch.setattr(contention, "_own_s", lambda: next(o))
    monkeypatch.setattr(contention.time, "perf_counter", lambda: next(w))
    monkeypatch.setattr("psutil.cpu_count", lambda: cpus)


def test_our_own_busy_cores_are_not_contention(monkeypatch):
    # 10 s on 2 CPUs, both busy the whole time, all of it us: the load average would read 2, the share is 0
    _fake_clock(monkeypatch, machine=[100.0, 120.0], own=[5.0, 25.0], wall=[0.0, 10.0])
    with contention.OtherLoad() as other:
        pass
    assert other.share == 0.0 and other.note() is None


def test_another_process_on_one_of_two_cpus_is_half_the_machine(monkeypatch):
    _fake_clock(monkeypatch, machine=[100.0, 120.0], own=[5.0, 15.0], wall=[0.0, 10.0])
    with contention.OtherLoad() as other:
        pass
    assert other.other_cpu_s == pytest.approx(10.0) and other.share == pytest.approx(0.5)
    assert "50%" in other.note()


def test_a_little_background_stays_under_the_note(monkeypatch):
    _fake_clock(monkeypatch, machine=[0.0, 3.0], own=[0.0, 1.0], wall=[0.0, 10.0])   # 2 CPU-s of 20: 10%
    with contention.OtherLoad() as other:
        pass
    assert other.share == pytest.approx(0.1) and other.note() is None


def test_real_counters_give_a_share_in_range():
    with contention.OtherLoad() as other:
        sum(itertools.islice(itertools.count(), 200_000))
    assert 0.0 <= other.share <= 1.0
