"""lk.plot.break_even and lk.plot.fusions (lab 04): the marked crossing is where the drawn lines really cross
(found from the lines' own data) and equals lk.compile.break_even_calls; stacked bars add up to the node counts."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import labkit as lk  # noqa: E402
from labkit.measure import Measurement  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def lines(ax):
    """(eager line, compiled line, break-even marker or None), told apart by their data, not their labels."""
    straight = [ln for ln in ax.lines if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == 0]
    eager = next(ln for ln in straight if ln.get_ydata()[0] == 0)
    compiled = next(ln for ln in straight if ln.get_ydata()[0] > 0)
    marker = [ln for ln in ax.lines if ln.get_gid() == "break-even"]
    return eager, compiled, (marker[0] if marker else None)


def crossing(eager, compiled):
    """Where two straight lines from x=0 meet, from their drawn end points (None when they do not)."""
    (x0, x1), (e0, e1), (c0, c1) = eager.get_xdata(), eager.get_ydata(), compiled.get_ydata()
    slope_e, slope_c = (e1 - e0) / (x1 - x0), (c1 - c0) / (x1 - x0)
    return (c0 - e0) / (slope_e - slope_c) if slope_e > slope_c else None


@pytest.mark.parametrize("timings", [(2.0, 3e-3, 1e-3), (25.0, 1.2e-3, 0.55e-3), (0.5, 2e-4, 1.99e-4)])
def test_marked_crossing_is_where_the_lines_cross_and_equals_break_even_calls(timings):
    n = lk.compile.break_even_calls(*timings)
    ax = lk.plot.break_even(timings)
    eager, compiled, marker = lines(ax)
    assert marker is not None
    assert marker.get_xdata()[0] == pytest.approx(n, rel=1e-9)
    assert crossing(eager, compiled) == pytest.approx(n, rel=1e-9)
    assert f"{n:,.0f} calls" in ax.get_title()
    assert any(t.get_text() == f"{n:,.0f} calls" for t in ax.texts)
    assert ax.get_xlim()[1] == pytest.approx(2 * n)              # default axis: twice the break-even


def test_torch_compile_result_is_read_from_its_medians():
    eager = Measurement.from_samples([4e-3, 4e-3, 5e-3])          # p50 4 ms
    compiled = Measurement.from_samples([1e-3, 1e-3, 2e-3])       # p50 1 ms
    tc = lk.compile.TorchCompile(requested_backend="inductor", backend="inductor", mode=None, fallback="",
                                 compile_s=6.0, compiled=compiled, eager=eager, max_abs_diff=0.0)
    ax = lk.plot.break_even(tc, calls=5000)
    _, _, marker = lines(ax)
    assert marker.get_xdata()[0] == pytest.approx(tc.break_even_calls) == pytest.approx(2000)
    assert ax.get_xlim() == (0, 5000)
    assert "inductor" in ax.get_title()
    assert ax.get_ylabel() == "cumulative time (s)"               # 20 s eager at 5000 calls


def test_never_faster_says_so_and_marks_nothing():
    ax = lk.plot.break_even((1.0, 1e-3, 1.5e-3))
    eager, compiled, marker = lines(ax)
    assert marker is None and crossing(eager, compiled) is None
    assert "never pays off" in ax.get_title()
    assert lk.compile.break_even_calls(1.0, 1e-3, 1.5e-3) == math.inf


def test_crossing_beyond_the_requested_axis_is_said_in_the_title():
    ax = lk.plot.break_even((2.0, 3e-3, 1e-3), calls=100)
    assert "beyond this axis" in ax.get_title()
    assert ax.get_xlim() == (0, 100)
    assert ax.get_ylabel() == "cumulative time (s)"               # the compiled line starts at 2 s


def test_short_times_in_milliseconds():
    ax = lk.plot.break_even((0.01, 1e-3, 5e-4))                   # 20 calls; 30 ms at the end of the axis
    eager, compiled, marker = lines(ax)
    assert ax.get_ylabel() == "cumulative time (ms)"
    assert compiled.get_ydata()[0] == pytest.approx(10.0)         # 0.01 s drawn as 10 ms
    assert marker.get_xdata()[0] == pytest.approx(20) and marker.get_ydata()[0] == pytest.approx(20.0)


@pytest.mark.parametrize("bad, match", [
    ((1.0, 2.0), "triple"), ("fast", "TorchCompile"), ((1.0, -1e-3, 1e-3), "eager_s"),
    ((float("nan"), 1e-3, 1e-4), "compile_s"), (None, "TorchCompile")])
def test_break_even_bad_result(bad, match):
    with pytest.raises(ValueError, match=match):
        lk.plot.break_even(bad)


@pytest.mark.parametrize("calls", [0, -5, float("inf"), "many", True])
def test_break_even_bad_calls(calls):
    with pytest.raises(ValueError, match="calls .*must be a positive finite number"):
        lk.plot.break_even((2.0, 3e-3, 1e-3), calls=calls)


def fake_levels():
    counts = {"disabled": {"Conv": 2, "BatchNormalization": 2, "Relu": 2, "Gemm": 1},
              "basic": {"Conv": 2, "Relu": 2, "Gemm": 1},
              "extended": {"FusedConv (microsoft)": 2, "Gemm": 1}}
    m = Measurement.from_samples([1e-4, 2e-4])
    return lk.compile.OrtLevels(levels=tuple(counts), counts=counts, latency={lv: m for lv in counts},
                                max_abs_diff={lv: 0.0 for lv in counts}, reference="torch", threads=1)


def test_fusions_stacks_every_op_type_per_level():
    levels = fake_levels()
    ax = lk.plot.fusions(levels)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["disabled", "basic", "extended"]
    assert [t.get_text() for t in ax.texts] == ["7", "5", "3"]
    heights = {}                                   # (level index, op) -> bar height, from the drawn patches
    for container in ax.containers:
        for i, bar in enumerate(container.patches):
            heights[(i, container.get_label())] = bar.get_height()
    for i, lv in enumerate(levels.levels):
        drawn = {op: h for (j, op), h in heights.items() if j == i and h > 0}
        assert drawn == levels.counts[lv]
        tops = [bar.get_y() + bar.get_height() for c in ax.containers for k, bar in enumerate(c.patches) if k == i]
        assert max(tops) == levels.nodes(lv)


def test_fusions_of_a_real_run():
    r = lk.compile.ort_levels(lk.zoo.build("mlp"), lk.zoo.example("mlp"), min_time_s=0.005, max_time_s=0.05)
    ax = lk.plot.fusions(r)
    assert [int(t.get_text()) for t in ax.texts] == [r.nodes(lv) for lv in r.levels]
    assert {c.get_label() for c in ax.containers} == {op for c in r.counts.values() for op in c}


def test_fusions_bad_input():
    with pytest.raises(ValueError, match="OrtLevels"):
        lk.plot.fusions({"disabled": {"Conv": 1}})
