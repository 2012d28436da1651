"""The systolic-array model against a cycle-by-cycle simulation of a weight-stationary array (lab 05)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import systolic


def simulate(x, w, R, C):
    """Brute force: run x[M,K] @ w[K,N] on an R x C weight-stationary array, one register step per cycle.

    Enumerates the folds (K tiles along rows, N tiles along columns) explicitly. In a fold, row m of x enters
    array row i at cycle m + i, activations move right and partial sums move down one PE per cycle; a fold
    ends when the last of its C output lanes has left the bottom row. Returns (out[M,N], total cycles).
    """
    M, K = x.shape
    N = w.shape[1]
    out = np.zeros((M, N), dtype=np.int64)
    total = 0
    for k0 in range(0, K, R):
        for n0 in range(0, N, C):
            tile = np.zeros((R, C), dtype=np.int64)          # zero padding where the tile overhangs w
            sub = w[k0:k0 + R, n0:n0 + C]
            tile[:sub.shape[0], :sub.shape[1]] = sub
            act = [[None] * C for _ in range(R)]             # (m, value) held by each PE, or None
            psum = [[None] * C for _ in range(R)]
            left = M * C                                     # outputs still to leave the array
            t = 0
            while left:
                new_act = [[None] * C for _ in range(R)]
                new_psum = [[None] * C for _ in range(R)]
                for i in range(R):
                    for j in range(C):
                        if j == 0:
                            m = t - i                        # skewed feed at the left edge
                            a = (m, int(x[m, k0 + i]) if k0 + i < K else 0) if 0 <= m < M else None
                        else:
                            a = act[i][j - 1]
                        new_act[i][j] = a
                        if a is None:
                            continue
                        above = psum[i - 1][j] if i else (a[0], 0)
                        assert above is not None and above[0] == a[0]   # the skew keeps rows in step
                        new_psum[i][j] = (a[0], above[1] + a[1] * int(tile[i, j]))
                for j in range(C):
                    done = new_psum[R - 1][j]
                    if done is not None:
                        left -= 1
                        if n0 + j < N:
                            out[done[0], n0 + j] += done[1]
                act, psum = new_act, new_psum
                t += 1
            total += t
    return out, total


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 5), K=st.integers(1, 7), N=st.integers(1, 7), R=st.integers(1, 4), C=st.integers(1, 4))
def test_cycles_match_a_cycle_by_cycle_simulation(M, K, N, R, C):
    rng = np.random.default_rng(M * 1000 + K * 100 + N * 10 + R + C)
    x = rng.integers(-5, 6, size=(M, K))
    w = rng.integers(-5, 6, size=(K, N))
    out, cycles = simulate(x, w, R, C)
    np.testing.assert_array_equal(out, x @ w)                # the simulated array really multiplies
    assert systolic.array_cycles(M, K, N, R, C) == cycles
    assert systolic.utilization(M, K, N, R, C) == pytest.approx(M * K * N / (R * C * cycles))


dims = st.integers(1, 600)
arrays = st.sampled_from([1, 2, 4, 8, 16, 64, 128, 256])


@settings(max_examples=200, deadline=None)
@given(M=dims, K=dims, N=dims, R=arrays, C=arrays)
def test_utilization_properties(M, K, N, R, C):
    u = systolic.utilization(M, K, N, R, C)
    assert 0.0 < u <= 1.0
    # 1 only on a 1x1 array; any larger array pays fill/drain cycles
    assert (u == 1.0) == (R == 1 and C == 1)
    # no schedule beats perfect use of every cell
    assert systolic.array_cycles(M, K, N, R, C) >= math.ceil(M * K * N / (R * C))
    # the two factors of the docstring
    pad = systolic.padding_utilization(K, N, R, C)
    assert u == pytest.approx(pad * systolic.streaming_utilization(M, R, C))
    # more rows streamed through the same tiles: strictly better (a 1x1 array is always at 1)
    longer = systolic.utilization(M + 1, K, N, R, C)
    assert longer > u if R + C > 2 else longer == u


@settings(max_examples=200, deadline=None)
@given(M=dims, K1=dims, N1=dims, K2=dims, N2=dims, R=arrays, C=arrays)
def test_utilization_is_monotone_in_padding_waste(M, K1, N1, K2, N2, R, C):
    # at the same M, the shape that wastes less of its tiles uses the array better
    p1, p2 = systolic.padding_utilization(K1, N1, R, C), systolic.padding_utilization(K2, N2, R, C)
    u1, u2 = systolic.utilization(M, K1, N1, R, C), systolic.utilization(M, K2, N2, R, C)
    if p1 > p2 * (1 + 1e-12):
        assert u1 > u2
    elif p2 > p1 * (1 + 1e-12):
        assert u2 > u1


def test_one_row_past_the_array_halves_utilization():
    aligned = systolic.utilization(4096, 128, 128, 128, 128)
    spilled = systolic.utilization(4096, 129, 128, 128, 128)
    assert spilled / aligned == pytest.approx(129 / 256)


def test_aligned_and_long_approaches_one():
    assert systolic.utilization(10**7, 256, 256, 128, 128) > 0.9999
    assert systolic.utilization(10**7, 256, 256, 128, 128) < 1.0


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_bad_dimensions_raise(bad):
    with pytest.raises(ValueError, match="must be an int >= 1"):
        systolic.array_cycles(bad, 4, 4, 2, 2)
    with pytest.raises(ValueError, match="must be an int >= 1"):
        systolic.utilization(4, 4, 4, bad, 2)
