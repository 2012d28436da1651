"""lk.measure against a fake clock (exact oracles: numpy.percentile, call counts) and one real sleep."""

import importlib
import time

import numpy as np
import pytest

import labkit as lk

measure_module = importlib.import_module("labkit.measure")


class FakeClock:
    """A clock that only moves when the timed function runs: each call advances it by the next duration."""

    def __init__(self, durations_ns):
        self.now = 0
        self.durations = list(durations_ns)
        self.calls = 0

    def clock(self):
        return self.now

    def fn(self, *args, **kwargs):
        self.now += self.durations[self.calls % len(self.durations)]
        self.calls += 1


@pytest.fixture
def fake(monkeypatch):
    def make(durations_ns):
        clock = FakeClock(durations_ns)
        monkeypatch.setattr(measure_module, "_clock_ns", clock.clock)
        return clock
    return make


def test_percentiles_match_numpy_exactly(fake):
    rng = np.random.default_rng(0)
    durations = [int(v) for v in rng.integers(50_000, 5_000_000, size=57)]  # 50 µs .. 5 ms, all "slow"
    clock = fake(durations)
    m = lk.measure(clock.fn, warmup=0, repeat=57, progress=False)
    x = np.array(durations) / 1e9
    assert m.samples_s == tuple(x)
    for q, got in ((50, m.p50_s), (95, m.p95_s), (99, m.p99_s)):
        assert got == pytest.approx(np.percentile(x, q), rel=1e-12)
    q1, q3 = np.percentile(x, [25, 75])
    assert m.iqr_s == pytest.approx(q3 - q1, rel=1e-12)
    assert m.mean_s == pytest.approx(x.mean(), rel=1e-12)
    assert m.std_s == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert m.min_s == x.min()
    assert m.outliers == int(np.sum(x > q3 + 1.5 * (q3 - q1)))
    assert (m.n, m.warmup, m.inner_loops) == (57, 0, 1)


def test_outliers_counted_on_the_upper_side(fake):
    clock = fake([100_000] * 19 + [10_000_000])  # one 10 ms spike among 100 µs calls
    m = lk.measure(clock.fn, warmup=0, repeat=20, progress=False)
    assert m.outliers == 1
    assert m.p50_s == pytest.approx(100e-6)
    assert m.mean_s > m.p50_s * 4  # the mean is dragged by the spike; the median is not


def test_warmup_calls_are_not_recorded(fake):
    # the three warm-up calls are very slow; the recorded ones must not contain them
    clock = fake([9_000_000, 8_000_000, 7_000_000] + [100_000] * 10)
    m = lk.measure(clock.fn, warmup=3, repeat=10, progress=False)
    assert clock.calls == 13
    assert m.n == 10 and m.warmup == 3
    assert max(m.samples_s) == pytest.approx(100e-6)


def test_adaptive_stops_after_min_time_with_at_least_five_samples(fake):
    clock = fake([10_000_000])  # 10 ms a call
    m = lk.measure(clock.fn, warmup=1, min_time_s=0.2, max_time_s=10, progress=False)
    assert m.n == 20  # 20 x 10 ms = 0.2 s
    clock = fake([100_000_000])  # 100 ms a call: min_time met after 2, but 5 samples are required
    m = lk.measure(clock.fn, warmup=1, min_time_s=0.2, max_time_s=10, progress=False)
    assert m.n == 5


def test_adaptive_is_capped_by_max_time_and_sample_count(fake):
    clock = fake([1_000_000_000])  # 1 s a call, max 2.5 s -> 3 samples even though 5 are wanted
    m = lk.measure(clock.fn, warmup=0, min_time_s=0.2, max_time_s=2.5, progress=False)
    assert m.n == 3
    clock = fake([25_000])  # 25 µs a call, not batched; 10 000 samples = 0.25 s < min_time 1 s
    m = lk.measure(clock.fn, warmup=1, min_time_s=1.0, max_time_s=5, progress=False)
    assert m.n == 10_000


def test_fast_functions_are_batched_and_divided(fake):
    clock = fake([1_000])  # 1 µs a call
    m = lk.measure(clock.fn, warmup=3, repeat=7, progress=False)
    assert m.inner_loops > 1
    assert clock.calls == 3 + 7 * m.inner_loops
    assert m.n == 7
    assert m.samples_s == pytest.approx([1e-6] * 7)
    # slow functions are not batched
    clock = fake([30_000])
    assert lk.measure(clock.fn, warmup=3, repeat=3, progress=False).inner_loops == 1
    # an explicit inner_loops is honoured
    clock = fake([1_000])
    m = lk.measure(clock.fn, warmup=0, repeat=4, inner_loops=10, progress=False)
    assert (m.inner_loops, clock.calls) == (10, 40)


def test_real_fast_function_is_batched():
    calls = []
    m = lk.measure(calls.append, 1, warmup=2, repeat=3, progress=False)
    assert m.inner_loops > 1
    assert len(calls) == 2 + 3 * m.inner_loops
    # p50 is per call, not per batch of inner_loops calls: far below one 1 ms sleep measured in the same run
    # (a ratio within one run, never a fixed threshold on a shared machine)
    import time

    slow = lk.measure(time.sleep, 1e-3, warmup=1, repeat=3, progress=False)
    assert m.p50_s < slow.p50_s / 20


def test_args_and_kwargs_are_passed(fake):
    seen = []
    m = lk.measure(lambda a, b=0: seen.append((a, b)), 1, b=2, warmup=1, repeat=2, inner_loops=1,
                   progress=False)
    assert seen == [(1, 2)] * 3 and m.n == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(fn=42), "callable"),
        (dict(warmup=-1), "warmup"),
        (dict(warmup=1.5), "warmup"),
        (dict(repeat=0), "repeat"),
        (dict(repeat=2.0), "repeat"),
        (dict(min_time_s=-1), "min_time_s"),
        (dict(min_time_s=5, max_time_s=1), "max_time_s"),
        (dict(progress="yes"), "progress"),
        (dict(inner_loops=0), "inner_loops"),
    ],
)
def test_bad_input_says_what_is_allowed(kwargs, match):
    fn = kwargs.pop("fn", lambda: None)
    with pytest.raises(ValueError, match=match):
        lk.measure(fn, **kwargs)


def test_real_sleep_is_a_lower_bound():
    m = lk.measure(time.sleep, 0.002, warmup=1, repeat=5, progress=False)
    assert m.p50_s >= 0.002
    assert m.min_s >= 0.002
    assert m.inner_loops == 1


def test_repr_to_frame_and_throughput():
    m = lk.Measurement.from_samples([1e-3, 2e-3, 3e-3], warmup=2)
    text = repr(m)
    assert "p50=2 ms" in text and "n=3" in text and "outliers=0" in text
    df = m.to_frame("a")
    assert list(df.index) == ["a"] and df.loc["a", "p50_s"] == pytest.approx(2e-3)
    assert m.throughput_per_s() == pytest.approx(500.0)
    assert m.throughput_per_s(batch=32) == pytest.approx(16000.0)
    with pytest.raises(ValueError, match="batch"):
        m.throughput_per_s(batch=0)
    with pytest.raises(ValueError, match="non-empty"):
        lk.Measurement.from_samples([])


def test_progress_bar_forced_on(fake, capsys):
    clock = fake([100_000])
    m = lk.measure(clock.fn, warmup=0, repeat=3, progress=True)
    assert m.n == 3
    err = capsys.readouterr().err                     # the tqdm bar: named after the function, 3 samples
    assert "measure fn" in err and "/3 " in err and "sample" in err
    lk.measure(clock.fn, warmup=0, repeat=3, progress=False)
    assert capsys.readouterr().err == ""              # and no bar when turned off


def test_measure_stays_callable_after_importing_the_module():
    # `import labkit.measure` binds the module name on the package; lk.measure must still time things
    import labkit.measure  # noqa: F401

    m = lk.measure(lambda: None, warmup=1, repeat=2, progress=False)
    assert isinstance(m, lk.Measurement) and m.n == 2


def test_measure_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, labkit as lk; lk.measure(lambda: 0, repeat=2, progress=False); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
