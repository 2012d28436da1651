"""The cost fit behind ``lk.device("local")``: per op class, a start-up time and two rates (lab 00).

The model is labkit.estimate's, for a model call of layers l = 1..L:

    t_call = call_s + sum_l  share_l * switch_s + wshare_l * weight_bytes_l * max(cold_s_per_byte, 1 / tier(B))
                    + sum_l  startup(l) + flops_l / flops_per_s(l) + bytes_l / min(bytes_per_s(l), tier(bytes_l))
                             + kernel_calls_l * kernel_call_s(l) + packed_weights_l * weight_s(l)
                             + small_gemm_weights_l * small_gemm_weight_s(l)
                             + small_image_gemm_weights_l * small_image_gemm_weight_s(l)

where (startup, flops_per_s, bytes_per_s) is the fit of the layer's op ("pool/maxpool") if there is one,
else of its op class ("pool") — Hockney's r∞ / n½ idea, one per kernel family — and ``call_s`` (the fit
keyed "call") is the fixed cost of calling a model once (the top module's ``__call__``, ORT's
``session.run`` with its numpy conversions); ``switch_s`` and ``cold_s_per_byte`` (the fit keyed "switch", its
start-up and its bytes rate: ``labkit.targets.cold_s``) are the most a layer costs more in a forward pass of mixed
ops than alone, its code and dispatch path cold and its weights evicted by the layers in between;
``share_l`` is how cold its code is (``labkit.targets.switches``, by the bytes moved since its op last ran: 0 for
one op repeated, as in a single-op benchmark), ``wshare_l`` how cold its weights are (by the bytes the rest of
the call moves), and ``tier(B)`` the memory tier of all B bytes the call moves, from which evicted weights
return at best (``labkit.targets.cold_shares``). The single ops pin the classes, the synthetic networks the
switch, and the wide ones among them (weights beyond the caches) its bytes rate. A layer's op is ``labkit.targets.fit_op``'s name
for it: a torch conv run as im2col + GEMM (``"conv2d:im2col"``) gets its own fit, apart from one run by oneDNN, and
so does a torch max pool whose working set spills from the core's cache (``"maxpool:spill"``). Compute and memory
*add* (OpFit.overlap = False): on this kind of CPU, small kernels do not overlap them (torch's convs, for one,
reorder their input and output to a blocked layout before and after the arithmetic); on held-out random networks
the sum predicted better than max(compute, memory) did, for both runtimes.

``tier(bytes)`` is what the memory tier holding the layer's working set delivers (``labkit.targets.
tier_bytes_per_s`` of the measured tiers): the micro-benchmarks run on cache-sized data, and a rate fitted there
cannot hold for a 200 MB activation streamed from DRAM. ``kernel_calls`` (channels x images of a depthwise
convolution; ``Layer.kernel_calls``) prices ONNX Runtime's loop of one small kernel per channel and image;
``packed_weights`` (``Layer.packed_weights``) prices a GEMM kernel packing its weights on every call (torch does,
for a linear at >= 2 rows and a conv's weight reorder; ONNX Runtime packs once per session), and
``small_gemm_weights`` a GEMM of fewer than 16 rows, where BLAS kernels run far below their rate (a 3x3 conv on
a 2x2 map at batch 1 in torch), and ``small_image_gemm_weights`` the same once per image (ONNX Runtime runs a
conv as one GEMM per image, so a 2x2 map is slow at batch 32 too). These four per-unit costs are fitted per class and are 0 for classes without such layers.

Every benchmark is a model call: a single op, or a random synthetic network of tens of layers. All the
parameters are fitted *jointly*, so a network's total time constrains every class in it at once:

- residuals are log(predicted / measured) (relative error), with a soft-L1 loss, so a benchmark spoiled by
  another process's burst of load pulls less than a clean one;
- an op's parameters are its class's times exp(delta), with a penalty PRIOR_WEIGHT * delta: an op with few
  benchmarks stays near its class, one with many goes its own way;
- bounds keep the fit physical: start-up >= ``min_startup_s`` (a tiny op measured on this machine: a
  per-op start-up cannot be below what an empty op costs), FLOP/s <= 1.5x the measured GEMM peak.
  Without them the fit can trade a start-up of 0.1 µs for a rate of 5 GFLOP/s, which fits the benchmarks
  about as well and then mispredicts models.
"""

from __future__ import annotations

from collections.abc import Mapping

from labkit.targets import OpFit, call_s, cold_s, cold_shares, fit_for, tier_bytes_per_s

PRIOR_WEIGHT = 0.3      # pull of an op's fit towards its class's, per log unit (e^1 = 2.7x)
LOSS_SCALE = 0.1        # soft-L1 switches from squared to linear beyond ~10% error
MIN_OP_LAYERS = 4       # an op gets its own fit when at least this many layers in the benchmarks use it
MIN_UNIT_S = 1e-14          # the lower bound of a per-unit cost (kernel call, packed weight): practically none
UNITS = 4                   # per-unit costs per class: kernel calls, packed weights, small-GEMM weights (per
                            # call and per image)
UNIT_FIELDS = ("kernel_call_s", "weight_s", "small_gemm_weight_s", "small_image_gemm_weight_s")


def predict(work, fits: Mapping[str, OpFit], call: bool = False, tiers=()) -> float:
    """Seconds for a list of (op_class, op, flops, bytes) layers under `fits` (each layer priced by
    ``OpFit.time_s`` of ``labkit.targets.fit_for``, its bytes capped by ``labkit.targets.tier_bytes_per_s`` of
    `tiers`, as lk.estimate does), plus ``labkit.targets.call_s`` once when ``call=True`` (a whole model call).

    >>> fits = {"conv": OpFit(1e-5, 1e10, 1e10), "call": OpFit(2e-5, 1, 1)}
    >>> round(predict([("conv", "conv2d", 10**6, 10**4)], fits, call=True) * 1e6, 3)   # 20 + 10 + 100 µs
    130.0
    """
    total = sum(fit_for(fits, c, op).time_s(f, b, tier_bytes_per_s(tiers, b), *k[:UNITS]) for c, op, f, b, *k in work)
    code, weight, cap = _shares(work, tiers)
    total += sum(cold_s(fits, _weight_bytes(w), c, s, cap) for w, c, s in zip(work, code, weight))
    return total + (call_s(fits) if call else 0.0)


def _shares(work, tiers=()) -> tuple[list[float], list[float], float]:
    """Each layer's shares of the cold cost, and the rate its weights return at most
    (``labkit.targets.cold_shares`` of its ops and bytes)."""
    return cold_shares([w[1] for w in work], [w[3] for w in work], tiers)


def _weight_bytes(w) -> float:
    """A work tuple's weight bytes (after its unit counts; 0 when left out)."""
    return float(w[4 + UNITS]) if len(w) > 4 + UNITS else 0.0


def fit(points, *, min_startup_s: float = 1e-8, max_flops_per_s: float = 1e14, with_call: bool = True,
        weights=None, overlap: bool = False, tiers=()) -> dict[str, OpFit]:
    """Fit every op class (and every op with enough layers) jointly on `points`.

    `points`: (name, work, measured_s) with work a list of (op_class, op, flops, bytes, *unit counts) per
    layer (the unit counts, ``Layer.unit_counts``, may be left out: 0); each
    point is one model call (``call_s`` counted once when `with_call`, fitted as the "call" key).
    `weights` (one per point) weigh the squared residuals; `overlap` picks max(compute, memory) over their
    sum; `tiers` cap each layer's bytes rate by the memory tier of its working set, as lk.estimate does.
    Returns {op_class: OpFit, "op_class/op": OpFit, ..., "call": OpFit(call_s, ...)}.
    """
    import numpy as np
    from scipy.optimize import least_squares

    keep = [i for i, p in enumerate(points) if p[2] > 0]
    point_w = np.sqrt(np.array([1.0 if weights is None else float(weights[i]) for i in keep]))  # on squared residuals
    points = [points[i] for i in keep]
    classes = sorted({w[0] for _, work, _ in points for w in work})
    op_layers: dict[tuple[str, str], int] = {}
    for _, work, _ in points:
        for w in work:
            op_layers[(w[0], w[1])] = op_layers.get((w[0], w[1]), 0) + 1
    ops_in = {c: [k for k in op_layers if k[0] == c] for c in classes}
    ops = sorted(k for k, n in op_layers.items() if n >= MIN_OP_LAYERS and len(ops_in[k[0]]) > 1)

    # flat arrays over every layer of every point: which point, which class, which op (-1: none)
    cls_ix = {c: i for i, c in enumerate(classes)}
    op_ix = {k: i for i, k in enumerate(ops)}
    lay_point, lay_cls, lay_op, lay_f, lay_b, lay_k = [], [], [], [], [], []
    shares = [_shares(work, tiers) for _, work, _ in points]
    n_switch = np.array([sum(code) for code, _, _ in shares])      # per point: sum of the layers' code shares,
    n_cold_bytes = np.array([sum(s * _weight_bytes(w) for s, w in zip(weight, work))   # of their weight bytes
                             for (_, weight, _), (_, work, _) in zip(shares, points)])
    cold_floor = np.array([1.0 / cap for _, _, cap in shares])     # and the tier's seconds per byte (0: no cap)
    for p, (_, work, _) in enumerate(points):
        for c, op, f, b, *k in work:
            k = k[:UNITS]
            lay_point.append(p)
            lay_cls.append(cls_ix[c])
            lay_op.append(op_ix.get((c, op), -1))
            lay_f.append(float(f))
            lay_b.append(float(b))
            lay_k.append([float(v) for v in k] + [0.0] * (UNITS - len(k)))
    lay_point, lay_cls, lay_op = np.array(lay_point, int), np.array(lay_cls, int), np.array(lay_op, int)
    lay_f, lay_b, lay_k = np.array(lay_f), np.array(lay_b), np.array(lay_k).reshape(-1, UNITS)
    has_units = np.stack([np.bincount(lay_cls, weights=lay_k[:, u], minlength=len(classes)) > 0
                          for u in range(UNITS)], axis=1)                 # (classes, units): any layer has them
    lay_cap = np.array([tier_bytes_per_s(tiers, b) for b in lay_b])
    t = np.array([p[2] for p in points], dtype=float)
    n_c, n_o = len(classes), len(ops)
    has_op = lay_op >= 0

    # parameters: [log call_s, log switch_s, log cold s per weight byte] + P per class (log startup, log flops/s,
    # log bytes/s, log of each per-unit cost) + 3 deltas per op (its class's per-unit costs are the op's)
    P = 3 + UNITS
    G = 3                                                            # the global ones: call, switch, cold bytes

    def unpack(x):
        call = x[0] if with_call else -np.inf
        cls = x[G:G + P * n_c].reshape(n_c, P)
        delta = x[G + P * n_c:].reshape(n_o, 3)
        return call, cls, delta

    def layer_params(cls, delta):
        p = cls[lay_cls].copy()
        p[has_op, :3] += delta[lay_op[has_op]]
        return np.exp(p)                                             # (layers, P)

    def layer_terms(x):
        call, cls, delta = unpack(x)
        p = layer_params(cls, delta)
        compute, memory = lay_f / p[:, 1], lay_b / np.minimum(p[:, 2], lay_cap)
        work_s = compute + memory if not overlap else np.maximum(compute, memory)
        calls_s = lay_k * p[:, 3:]                                   # (layers, UNITS)
        total = np.bincount(lay_point, weights=p[:, 0] + work_s + calls_s.sum(axis=1), minlength=len(t))
        capped = p[:, 2] >= lay_cap                   # the tier, not the fit's rate, sets the memory time
        switches_s, cold_bytes_s = np.exp(x[1]) * n_switch, np.maximum(np.exp(x[2]), cold_floor) * n_cold_bytes
        return (np.exp(call), p[:, 0], compute, memory, total + np.exp(call) + switches_s + cold_bytes_s, delta,
                calls_s, capped, switches_s, cold_bytes_s)

    def residuals(x):
        _, _, _, _, total, delta, *_ = layer_terms(x)
        return np.concatenate([point_w * np.log(total / t), PRIOR_WEIGHT * delta.ravel()])

    # the Jacobian by hand (a numerical one costs a residual per parameter): d log(total_p) / d x =
    # (d total_p / d x) / total_p, with d startup / d log startup = startup, d (f / F) / d log F = -f / F
    n_x = G + P * n_c + 3 * n_o
    rows = np.arange(len(lay_point))
    cls_cols = (G + P * lay_cls)[:, None] + np.arange(P)                                  # (layers, P)
    op_cols = (G + P * n_c + 3 * lay_op[has_op])[:, None] + np.arange(3)                  # (op layers, 3)
    flat_ix = np.concatenate([(lay_point[:, None] * n_x + cls_cols).ravel(),
                              (lay_point[has_op][:, None] * n_x + op_cols).ravel()])

    def jacobian(x):
        call_s, startup, compute, memory, total, _, calls_s, capped, switches_s, cold_bytes_s = layer_terms(x)
        d = np.zeros((len(lay_point), P))                  # d layer_s / d (log s, log F, log B, log unit costs)
        d[:, 0] = startup
        d[:, 3:] = calls_s
        if not overlap:     # a capped layer's memory time does not move with the fit's rate
            d[:, 1], d[:, 2] = -compute, np.where(capped, 0.0, -memory)
        else:
            bound_c = compute >= memory
            d[rows, np.where(bound_c, 1, 2)] = -np.where(bound_c, compute, np.where(capped, 0.0, memory))
        jac = np.zeros((len(t) + 3 * n_o, n_x))
        # scatter-add each layer's derivatives into its point's row: one bincount over (point, column)
        data = np.concatenate([d.ravel(), d[has_op, :3].ravel()])
        jac[:len(t)] = np.bincount(flat_ix, weights=data, minlength=len(t) * n_x).reshape(len(t), n_x)
        if with_call:
            jac[:len(t), 0] = call_s
        jac[:len(t), 1] = switches_s          # where the tier sets the weights' rate, the fit's does not move them
        jac[:len(t), 2] = np.where(np.exp(x[2]) > cold_floor, cold_bytes_s, 0.0)
        jac[:len(t)] *= (point_w / total)[:, None]
        jac[len(t):, G + P * n_c:] = PRIOR_WEIGHT * np.eye(3 * n_o)
        return jac

    lo_cls = np.log([min_startup_s, 1e7, 1e7] + [MIN_UNIT_S] * UNITS)
    hi_cls = np.log([1e-2, max_flops_per_s, 1e13] + [1e-3] * UNITS)
    lo = np.concatenate([np.log([1e-8, MIN_UNIT_S, MIN_UNIT_S]), np.tile(lo_cls, n_c), np.full(3 * n_o, -6.0)])
    hi = np.concatenate([np.log([1e-2, 1e-3, 1e-8]), np.tile(hi_cls, n_c), np.full(3 * n_o, 6.0)])
    best = None
    for startup, rate_frac in ((3.0, 0.3), (10.0, 0.1), (1.5, 1.0)):
        x0 = np.concatenate([[np.log(max(min(t.min(), 1e-3) * 0.5, 2e-8)), np.log(max(min_startup_s, 1e-7)),
                              np.log(1e-11)],
                             np.tile(np.log([max(min_startup_s * startup, 1e-7), max_flops_per_s / 1.5 * rate_frac,
                                             1e10 * rate_frac] + [1e-8, 1e-11, 1e-11, 1e-11]), n_c), np.zeros(3 * n_o)])
        sol = least_squares(residuals, np.clip(x0, lo + 1e-9, hi - 1e-9), bounds=(lo, hi), jac=jacobian,
                            loss="soft_l1", f_scale=LOSS_SCALE, max_nfev=200, tr_solver="lsmr")
        if best is None or sol.cost < best.cost:
            best = sol
    call, cls, delta = unpack(best.x)

    def unit_costs(i):       # a class none of whose layers has a unit (kernel calls, ...) has no such cost to report
        costs = [float(np.exp(cls[i, 3 + u])) if has_units[i, u] else 0.0 for u in range(UNITS)]
        return dict(zip(UNIT_FIELDS, costs))

    fits = {c: OpFit(*(float(v) for v in np.exp(cls[i, :3])), overlap=overlap, **unit_costs(i))
            for i, c in enumerate(classes)}
    for (c, op), i in op_ix.items():
        fits[f"{c}/{op}"] = OpFit(*(float(v) for v in np.exp(cls[cls_ix[c], :3] + delta[i])), overlap=overlap,
                                  **unit_costs(cls_ix[c]))
    if with_call:   # its rates are never used: labkit.estimate adds its start-up once per model call
        fits["call"] = OpFit(float(np.exp(call)), max_flops_per_s, 1e13, overlap=overlap)
    if n_switch.any():   # labkit.targets.cold_s: its start-up plus the weights at its bytes rate, in each layer's share
        cold_rate = float(np.exp(-best.x[2])) if n_cold_bytes.any() else 1e13
        fits["switch"] = OpFit(float(np.exp(best.x[1])), max_flops_per_s, cold_rate, overlap=overlap)
    return fits
