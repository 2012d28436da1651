"""The analytical model of a weight-stationary systolic array (TPU MXU, Edge TPU, NPUs) — lab 05.

Convention. One GEMM is ``out[M, N] = x[M, K] @ w[K, N]`` (a linear layer: M = batch × tokens; a conv via
im2col: M = batch × H_out × W_out, K = C_in/groups × kh × kw, N = C_out/groups). The array has R rows and
C columns of multiply-accumulate cells (PEs). Weight-stationary: the array holds one K×N weight *tile*,
with **K along the rows and N along the columns**, so one tile is at most R × C weights.

Folds. A K×N weight matrix needs ``ceil(K/R) * ceil(N/C)`` tiles ("folds"). Each fold loads its tile
(double-buffered behind the previous fold, as the TPU does, so loading costs no cycles here) and streams all
M rows of x through the array. Partial sums of the K-folds are added in the accumulators below the array.

Cycles of one fold (the derivation). Row m of x enters array row k, skewed by one cycle per row, at cycle
``m + k``; it moves one column right per cycle, so PE (k, n) multiplies x[m, k] by w[k, n] at cycle
``m + k + n``. Partial sums move one row down per cycle, in step, so output (m, n) leaves the bottom of
column n after PE (R-1, n), at cycle ``m + (R-1) + n``. The last output (m = M-1, n = C-1) leaves at cycle
``M + R + C - 3``; counting from cycle 0, one fold takes

    cycles_fold = M + R + C - 2        (M streaming + R-1 fill down the rows + C-1 skew across the columns)

The skew is set by the physical array, not by how much of the tile is used, so a half-empty tile costs as
many cycles as a full one — that is the padding waste. So

    array_cycles = ceil(K/R) * ceil(N/C) * (M + R + C - 2)
    utilization  = M*K*N / (R*C*array_cycles)
                 = [K*N / (ceil(K/R)*R * ceil(N/C)*C)]   padding: the fraction of each tile that is real
                 * [M / (M + R + C - 2)]                  streaming: fill and drain amortised over M rows

Utilisation is in (0, 1]; it reaches 1 only for a 1×1 array, and approaches 1 for K, N multiples of R, C
with M ≫ R + C. This model ignores weight-load stalls (single-buffered arrays pay R more cycles per fold),
accumulator capacity, and memory bandwidth (labkit.estimate adds the memory roof on top).

>>> from labkit.systolic import array_cycles, utilization
>>> array_cycles(M=256, K=128, N=128, rows=128, cols=128)     # one fold: 256 + 254 cycles
510
>>> round(utilization(M=256, K=128, N=128, rows=128, cols=128), 3)
0.502
"""

from __future__ import annotations

from labkit.args import Int, checked

DIM = Int(low=1)   # a matrix or array dimension


@checked(K=DIM, N=DIM, rows=DIM, cols=DIM)
def folds(K: int, N: int, rows: int, cols: int) -> int:
    """How many R×C weight tiles a K×N weight matrix needs: ``ceil(K/rows) * ceil(N/cols)`` (lab 05).

    >>> folds(K=300, N=128, rows=128, cols=128)   # 3 tiles down K, 1 across N
    3
    """
    return -(-K // rows) * -(-N // cols)


@checked(M=DIM, K=DIM, N=DIM, rows=DIM, cols=DIM)
def array_cycles(M: int, K: int, N: int, rows: int, cols: int) -> int:
    """Cycles for one ``[M,K] @ [K,N]`` GEMM on a weight-stationary ``rows × cols`` array (lab 05).

    ``folds * (M + rows + cols - 2)``; the module docstring derives the count.

    >>> array_cycles(M=1, K=128, N=128, rows=128, cols=128)   # batch 1: almost all fill and drain
    255
    """
    return folds(K, N, rows, cols) * (M + rows + cols - 2)


@checked(K=DIM, N=DIM, rows=DIM, cols=DIM)
def padding_utilization(K: int, N: int, rows: int, cols: int) -> float:
    """Fraction of the loaded weight tiles that hold real weights: ``K*N / (padded K * padded N)`` (lab 05).

    >>> padding_utilization(K=129, N=128, rows=128, cols=128)   # one row spills into a second tile
    0.50390625
    """
    return (K * N) / ((-(-K // rows) * rows) * (-(-N // cols) * cols))


@checked(M=DIM, rows=DIM, cols=DIM)
def streaming_utilization(M: int, rows: int, cols: int) -> float:
    """Fraction of a fold's cycles that stream rows rather than fill or drain: ``M / (M + rows + cols - 2)``.

    >>> streaming_utilization(M=254, rows=128, cols=128)
    0.5
    """
    return M / (M + rows + cols - 2)


@checked(M=DIM, K=DIM, N=DIM, rows=DIM, cols=DIM)
def utilization(M: int, K: int, N: int, rows: int, cols: int) -> float:
    """Useful MACs / (rows*cols*cycles) for ``[M,K] @ [K,N]`` on a ``rows × cols`` array, in (0, 1] (lab 05).

    Equals ``padding_utilization(K, N, rows, cols) * streaming_utilization(M, rows, cols)``.

    >>> round(utilization(M=4096, K=256, N=256, rows=128, cols=128), 3)   # aligned and long: near 1
    0.942
    >>> round(utilization(M=4096, K=3, N=64, rows=128, cols=128), 3)      # a 3-channel first conv
    0.011
    """
    return (M * K * N) / (rows * cols * array_cycles(M, K, N, rows, cols))
