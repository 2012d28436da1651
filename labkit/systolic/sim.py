"""A cycle-level simulator of a weight-stationary systolic array you can watch — lab 05.

What moves where (the same convention as labkit.systolic's derivation). ``out[M, N] = A[M, K] @ B[K, N]``
on an R×C grid of multiply-accumulate cells (PEs), weight-stationary, **K along the rows, N along the
columns**:

* Folds. B is cut into R×C tiles, zero-padded where a tile overhangs B: ``ceil(K/R) * ceil(N/C)`` folds,
  run one after another. Loading a tile costs no cycles: it is double-buffered behind the previous fold
  (as on a TPU). The next fold starts once the previous one has drained (folds do not overlap).
* Activations. Row m of A enters array row i at the left edge at fold cycle ``m + i`` (skewed by one cycle
  per row) and moves one PE to the right every cycle.
* Partial sums. PE (i, j) adds ``a * w[i, j]`` to the partial sum arriving from PE (i-1, j) and passes it
  down one row per cycle. The skew keeps them in step: the activation of row m meets the partial sum of row m.
* Outputs. The partial sum of (m, j) leaves the bottom of column j after PE (R-1, j), at fold cycle
  ``m + (R-1) + j``; accumulators below the array add the partial sums of the K-folds.

A fold ends when all M×C output lanes have left the bottom row: the simulator counts the cycles, it does not
use the formula. That count, ``M + R + C - 2`` per fold, is what labkit.systolic derives and what the tests check.

A PE does a *useful* MAC in a cycle when it holds a real row of A and a real weight (not padding); the mean
over cycles of the fraction of useful PEs is ``M*K*N / (R*C*cycles)``, the model's utilisation.

>>> import numpy as np, labkit as lk
>>> A, B = np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4)
>>> r = lk.systolic.simulate(A, B, rows=2, cols=2)
>>> bool((r.out == A @ B).all()), r.cycles, r.folds          # 4 folds of 2 + 2 + 2 - 2 cycles
(True, 16, 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labkit.args import Int, check

# frame codes: what each PE did in a cycle
IDLE, USEFUL, PADDING = 0, 1, 2
# refuse runs above this many PE-cycles (R * C * cycles): the simulator is for small arrays and matrices
MAX_PE_CYCLES = 20_000_000


@dataclass(frozen=True, eq=False)
class SimResult:
    """What ``simulate`` returns: the product, the cycle count and what every PE did in every cycle (lab 05).

    ``frames[t, i, j]`` is 0 (idle), 1 (a useful MAC) or 2 (a MAC on a padded zero weight: the array is busy
    but the work is wasted); ``frames_m[t, i, j]`` is the row of A that PE (i, j) holds in cycle t, or -1.
    Both are None unless ``simulate(..., record=True)``. ``fold_of_cycle[t]`` is the fold running in cycle t.
    """

    out: np.ndarray               # [M, N], equals A @ B
    cycles: int                   # total cycles, all folds
    busy_per_cycle: np.ndarray    # [cycles] fraction of the R*C PEs doing a useful MAC, in [0, 1]
    frames: np.ndarray | None     # [cycles, R, C] int8 codes IDLE / USEFUL / PADDING, or None
    frames_m: np.ndarray | None   # [cycles, R, C] row of A held by each PE (-1: none), or None
    fold_of_cycle: np.ndarray     # [cycles] fold index, 0 .. folds-1
    M: int
    K: int
    N: int
    rows: int
    cols: int
    folds: int
    fold_cycles: tuple[int, ...] = field(default=())   # cycles of each fold, in order

    @property
    def utilization(self) -> float:
        """Useful MACs / (rows * cols * cycles): the mean of ``busy_per_cycle``, in (0, 1]."""
        return float(self.busy_per_cycle.mean())

    @property
    def useful_macs(self) -> int:
        """MACs that computed a real product: ``M * K * N``, counted from the simulation."""
        return int(round(float(self.busy_per_cycle.sum()) * self.rows * self.cols))

    def __repr__(self) -> str:
        return (f"SimResult(M={self.M}, K={self.K}, N={self.N} on {self.rows}x{self.cols}: {self.folds} folds, "
                f"{self.cycles} cycles, utilization={self.utilization:.3f})")


def _matrix(name: str, a) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as err:   # ragged lists and the like
        raise ValueError(f"{name} must be a 2-D numeric matrix (numpy array or nested list): {err}") from err
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got shape {arr.shape}.")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold ints or floats, got dtype {arr.dtype}; allowed: integer and float "
                         "dtypes (ints are multiplied exactly in int64, floats in float64).")
    return arr


def _run_fold(a_tile, w_tile, real, M, record):
    """One fold: stream all M rows of ``a_tile`` [M, R] through the array holding ``w_tile`` [R, C].

    ``real`` [R, C] is True where the tile holds a real weight (not padding). Returns the output lanes
    (rows m, columns j, partial sums) of the lanes that left the bottom row, the useful-PE count of every
    cycle, the frames (empty unless `record`) and the fold's cycle count, as simulated.
    """
    R, C = w_tile.shape
    act = np.zeros((R, C), dtype=a_tile.dtype)    # activation held by each PE
    act_m = np.full((R, C), -1)                   # its row of A, -1 when the PE holds nothing
    psum = np.zeros((R, C), dtype=a_tile.dtype)   # partial sum leaving each PE downwards
    rows_idx = np.arange(R)
    out_m, out_j, out_v = [], [], []
    useful, frames, frames_m = [], [], []
    left = M * C                                  # output lanes still to leave the bottom row
    t = 0
    while left:
        prev_m = act_m.copy()                     # rows held last cycle: their partial sums arrive now
        # activations move one PE right; the left edge takes row m = t - i of A into array row i (the skew)
        act[:, 1:] = act[:, :-1]
        act_m[:, 1:] = act_m[:, :-1]
        m_in = t - rows_idx
        ok = (m_in >= 0) & (m_in < M)
        act_m[:, 0] = np.where(ok, m_in, -1)
        act[:, 0] = np.where(ok, a_tile[np.clip(m_in, 0, M - 1), rows_idx], 0)
        # the skew keeps rows in step: the partial sum from PE (i-1, j) belongs to the row now at PE (i, j)
        if not np.array_equal(prev_m[:-1], act_m[1:]):
            raise RuntimeError(f"skew broken at cycle {t}: partial sums of rows {prev_m[:-1]} meet {act_m[1:]}")
        # partial sums move one PE down and each PE adds its product (idle PEs hold 0 and pass 0)
        above = np.zeros_like(psum)
        above[1:] = psum[:-1]
        psum = above + act * w_tile
        holding = act_m >= 0
        # the bottom row hands finished lanes to the accumulators
        done = np.flatnonzero(holding[R - 1])
        if done.size:
            out_m.append(act_m[R - 1, done])
            out_j.append(done)
            out_v.append(psum[R - 1, done])
            left -= done.size
        useful.append(int(np.count_nonzero(holding & real)))
        if record:
            frames.append(np.where(holding, np.where(real, USEFUL, PADDING), IDLE).astype(np.int8))
            frames_m.append(act_m.copy())
        t += 1
    return (np.concatenate(out_m), np.concatenate(out_j), np.concatenate(out_v)), useful, frames, frames_m, t


def simulate(A, B, rows: int = 4, cols: int = 4, record: bool = False) -> SimResult:
    """Multiply ``A[M,K] @ B[K,N]`` on a ``rows × cols`` weight-stationary systolic array, cycle by cycle (lab 05).

    Returns a SimResult: ``out`` (equals ``A @ B``: exact for ints, float64 for floats), ``cycles`` (equals
    ``lk.systolic.array_cycles(M, K, N, rows, cols)``), ``busy_per_cycle`` (fraction of PEs doing a useful
    MAC each cycle) and, with ``record=True``, ``frames`` of the PE grid for a heatmap or an animation.
    Weight loading is double-buffered (free); folds run back to back. Small sizes only
    (rows * cols * cycles ≤ 2e7); use ``lk.systolic.array_cycles`` for real layer shapes.

    >>> import numpy as np, labkit as lk
    >>> r = lk.systolic.simulate(np.ones((3, 2), int), np.ones((2, 2), int), rows=2, cols=2, record=True)
    >>> r.cycles, r.busy_per_cycle.tolist()          # 3 rows stream through: fill, full, drain
    (5, [0.25, 0.75, 1.0, 0.75, 0.25])
    """
    A, B = _matrix("A", A), _matrix("B", B)
    R, C = check("rows", rows, Int(low=1)), check("cols", cols, Int(low=1))
    M, K = A.shape
    if B.shape[0] != K:
        raise ValueError(f"A is {M}x{K} and B is {B.shape[0]}x{B.shape[1]}: A's columns ({K}) must equal "
                         f"B's rows ({B.shape[0]}) for A @ B.")
    N = B.shape[1]
    kf, nf = -(-K // R), -(-N // C)
    # the simulator's own work bound, from the shapes (not from the cycle formula it is meant to check)
    pe_cycles = kf * nf * (M + R + C) * R * C
    if pe_cycles > MAX_PE_CYCLES:
        raise ValueError(f"{M}x{K} @ {K}x{N} on {R}x{C} is about {pe_cycles:.2g} PE-cycles; the simulator "
                         f"allows {MAX_PE_CYCLES:.0e}. Use smaller matrices or lk.systolic.array_cycles "
                         "for real layer shapes.")
    is_int = np.issubdtype(A.dtype, np.integer) and np.issubdtype(B.dtype, np.integer)
    dt = np.int64 if is_int else np.float64
    A, B = A.astype(dt), B.astype(dt)

    out = np.zeros((M, N), dtype=dt)
    useful, frames, frames_m, fold_of, fold_cycles = [], [], [], [], []
    fold = 0
    for k0 in range(0, K, R):
        for n0 in range(0, N, C):
            kr, nr = min(R, K - k0), min(N - n0, C)        # the real part of this tile
            w_tile = np.zeros((R, C), dtype=dt)            # zero padding where the tile overhangs B
            w_tile[:kr, :nr] = B[k0:k0 + kr, n0:n0 + nr]
            real = np.zeros((R, C), dtype=bool)
            real[:kr, :nr] = True
            a_tile = np.zeros((M, R), dtype=dt)            # A's columns k0 .. k0+R-1, zero past K
            a_tile[:, :kr] = A[:, k0:k0 + kr]
            (m, j, v), u, f, fm, t = _run_fold(a_tile, w_tile, real, M, record)
            keep = j < nr                                  # padded columns' lanes go nowhere
            np.add.at(out, (m[keep], n0 + j[keep]), v[keep])   # accumulators add the K-folds
            useful += u
            frames += f
            frames_m += fm
            fold_of += [fold] * t
            fold_cycles.append(t)
            fold += 1
    cycles = sum(fold_cycles)
    return SimResult(
        out=out, cycles=cycles, busy_per_cycle=np.asarray(useful, dtype=float) / (R * C),
        frames=np.stack(frames) if record else None, frames_m=np.stack(frames_m) if record else None,
        fold_of_cycle=np.asarray(fold_of), M=M, K=K, N=N, rows=R, cols=C, folds=fold,
        fold_cycles=tuple(fold_cycles),
    )
