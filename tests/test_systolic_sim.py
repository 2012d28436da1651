"""The cycle-level systolic simulator (lk.systolic.simulate) against A @ B, the analytical model and brute force."""

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labkit as lk

matplotlib.use("Agg")

shapes = st.integers(1, 20)
arrays = st.integers(1, 8)


@settings(max_examples=120, deadline=None)
@given(M=shapes, K=shapes, N=shapes, R=arrays, C=arrays, seed=st.integers(0, 2**16))
def test_simulator_multiplies_and_agrees_with_the_model(M, K, N, R, C, seed):
    rng = np.random.default_rng(seed)
    A = rng.integers(-9, 10, size=(M, K))
    B = rng.integers(-9, 10, size=(K, N))
    r = lk.systolic.simulate(A, B, rows=R, cols=C)
    # the product, exactly (ints): an independent oracle is numpy's own matmul
    np.testing.assert_array_equal(r.out, A @ B)
    assert r.out.dtype == np.int64
    # cycles: the analytical model used by lk.estimate, and its parts
    assert r.cycles == lk.systolic.array_cycles(M, K, N, R, C)
    assert r.folds == lk.systolic.folds(K, N, R, C) == len(r.fold_cycles)
    assert set(r.fold_cycles) == {M + R + C - 2}
    # utilisation per cycle in [0, 1]; its mean is the model's utilisation; every real MAC happened once
    assert r.busy_per_cycle.shape == (r.cycles,)
    assert r.busy_per_cycle.min() >= 0.0 and r.busy_per_cycle.max() <= 1.0
    assert r.utilization == pytest.approx(lk.systolic.utilization(M, K, N, R, C), rel=1e-12)
    assert r.useful_macs == M * K * N


@settings(max_examples=25, deadline=None)
@given(M=shapes, K=shapes, N=shapes, R=arrays, C=arrays, seed=st.integers(0, 2**16))
def test_floats_and_frames_agree_with_brute_force_positions(M, K, N, R, C, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    r = lk.systolic.simulate(A, B, rows=R, cols=C, record=True)
    np.testing.assert_allclose(r.out, A @ B, rtol=1e-12, atol=1e-12)
    assert r.frames.shape == r.frames_m.shape == (r.cycles, R, C)
    # brute force over every (fold, m, i, j): PE (i, j) holds row m of A at fold cycle m + i + j
    expect_m = np.full((r.cycles, R, C), -1)
    expect_code = np.zeros((r.cycles, R, C), dtype=np.int8)
    start = 0
    for k0 in range(0, K, R):
        for n0 in range(0, N, C):
            for m in range(M):
                for i in range(R):
                    for j in range(C):
                        t = start + m + i + j
                        expect_m[t, i, j] = m
                        expect_code[t, i, j] = 1 if (k0 + i < K and n0 + j < N) else 2
            start += M + R + C - 2
    np.testing.assert_array_equal(r.frames_m, expect_m)
    np.testing.assert_array_equal(r.frames, expect_code)
    # busy_per_cycle is the fraction of green (useful) PEs in each frame
    np.testing.assert_allclose(r.busy_per_cycle, (r.frames == 1).mean(axis=(1, 2)))
    assert list(np.bincount(r.fold_of_cycle)) == list(r.fold_cycles)


def test_one_fold_fill_and_drain_by_hand():
    # 3 rows through a 2x2 array of ones: PEs light up along the anti-diagonal, 1, 3, 4, 3, 1 of them
    r = lk.systolic.simulate(np.ones((3, 2), int), np.ones((2, 2), int), rows=2, cols=2, record=True)
    assert r.cycles == 3 + 2 + 2 - 2
    assert (r.busy_per_cycle * 4).tolist() == [1, 3, 4, 3, 1]
    assert r.frames_m[0].tolist() == [[0, -1], [-1, -1]]
    assert r.frames_m[2].tolist() == [[2, 1], [1, 0]]


def test_padding_shows_as_wasted_macs():
    # K=3, N=3 on a 4x4 array: the 4th row and column of every tile multiply zeros
    r = lk.systolic.simulate(np.ones((5, 3)), np.ones((3, 3)), rows=4, cols=4, record=True)
    wasted = int((r.frames == 2).sum())
    useful = int((r.frames == 1).sum())
    assert useful == 5 * 3 * 3
    assert wasted == 5 * (16 - 9)          # each of the 5 rows of A visits every PE once
    assert r.utilization == pytest.approx(lk.systolic.padding_utilization(3, 3, 4, 4)
                                          * lk.systolic.streaming_utilization(5, 4, 4))


def test_mixed_int_float_and_lists():
    r = lk.systolic.simulate([[1, 2], [3, 4]], np.array([[0.5], [0.25]]), rows=3, cols=3)
    np.testing.assert_allclose(r.out, [[1.0], [2.5]])
    assert r.out.dtype == np.float64
    assert r.frames is None and r.frames_m is None           # record=False keeps no frames
    assert "cycles" in repr(r) and "utilization" in repr(r)


@pytest.mark.parametrize("A, B, kwargs, match", [
    (np.ones((2, 3)), np.ones((2, 3)), {}, "columns"),
    (np.ones(3), np.ones((3, 2)), {}, "2-D"),
    ([[1, 2], [3]], np.ones((2, 2)), {}, "2-D"),
    (np.ones((0, 3)), np.ones((3, 2)), {}, "non-empty"),
    (np.ones((2, 2), bool), np.ones((2, 2)), {}, "ints or floats"),
    (np.ones((2, 2), complex), np.ones((2, 2)), {}, "ints or floats"),
    (np.array([["a", "b"]]), np.ones((2, 2)), {}, "ints or floats"),
    (np.ones((2, 2)), np.ones((2, 2)), {"rows": 0}, "must be an int >= 1"),
    (np.ones((2, 2)), np.ones((2, 2)), {"cols": 2.5}, "must be an int >= 1"),
    (np.ones((2, 2)), np.ones((2, 2)), {"rows": True}, "must be an int >= 1"),
    (np.ones((4096, 512)), np.ones((512, 512)), {"rows": 128, "cols": 128}, "array_cycles"),
])
def test_bad_input_raises_a_clear_error(A, B, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lk.systolic.simulate(A, B, **kwargs)


def test_pictures():
    r = lk.systolic.simulate(np.arange(12).reshape(4, 3), np.ones((3, 5)), rows=3, cols=3, record=True)
    fig = lk.systolic.plot_frames(r, cycles=[0, 3, 7])
    assert sum(ax.images != [] for ax in fig.axes) == 3
    ax = lk.systolic.plot_busy(r)
    assert len(ax.lines) >= 2
    with pytest.raises(ValueError, match="cycles"):
        lk.systolic.plot_frames(r, cycles=[r.cycles])
    with pytest.raises(ValueError, match="record=True"):
        lk.systolic.plot_frames(lk.systolic.simulate(np.ones((2, 2)), np.ones((2, 2))))
    w = lk.systolic.slider(r)
    assert w.children[0].max == r.cycles - 1
    matplotlib.pyplot.close("all")


def test_unknown_attribute_lists_what_exists():
    with pytest.raises(AttributeError, match="simulate"):
        lk.systolic.simulat  # noqa: B018
