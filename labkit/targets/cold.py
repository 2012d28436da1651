"""What a layer costs more among other layers than alone, its caches gone cold (lab 00): the "switch" fit of a
calibrated device prices it, lk.estimate and the calibration's cost fit (labkit.calibration.costfit) both through
``cold_shares`` and ``cold_s``.

A layer's code and dispatch path go cold while the layers in between stream more than a core's cache
(``switches``: by the bytes since its op last ran); its weights go cold while the rest of the call runs
(``weight_shares``), and come back from the memory tier that holds the whole call where that is slower than the
fit's rate (``cold_shares``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from labkit.targets.fitted import OpFit, tier_bytes_per_s

COLD_BYTES = 2**20   # the cold-cache cost's scale in bytes (``switches``): about one core's L2 (1 MiB on the Zen 4
                     # of lab 00's machine; 0.5 MiB on Zen 2/3, 2 MiB on Sapphire Rapids). Measured there (torch, 1
                     # and 2 threads): a batchnorm or relu run after a copy of 1, 4 and 16 MiB cost 6-12, 10-29 and
                     # 40-157 µs more than alone; a layer inside ResNet-18 at 64 px, batch 1, 2.5-3.4x its time alone


def switch_s(fits: Mapping[str, OpFit] | None) -> float:
    """The fixed part of ``cold_s``: what a layer whose code and dispatch path went cold costs more, before its
    weights are fetched again; the start-up of the fit keyed ``"switch"`` on a calibrated device, 0.0 elsewhere
    (lab 00; ``labkit calibrate`` prints it).

    >>> switch_s({"switch": OpFit(4e-6, 1.0, 1.0)}), switch_s({})
    (4e-06, 0.0)
    """
    switch = fits.get("switch") if fits else None
    return switch.startup_s if switch is not None else 0.0


def cold_s(fits: Mapping[str, OpFit] | None, weight_bytes: float, code_share: float = 1.0, weight_share: float = 1.0,
           cap_bytes_per_s: float = math.inf) -> float:
    """What a layer pays when its caches went cold: `code_share` of the "switch" fit's start-up (its code and
    dispatch path, ``switches``) plus `weight_share` of its `weight_bytes` fetched again (``weight_shares``) at the
    fit's bytes rate, or at `cap_bytes_per_s` where slower: the memory tier that holds what the whole call moves
    (``cold_shares``), as weights that the rest of the call evicted come back from there; 0.0 on a device without
    the fit (lab 00).

    >>> round(cold_s({"switch": OpFit(5e-6, 1.0, 5e9)}, 2**20) * 1e6, 1)     # 5 µs + 1 MiB at 5 GB/s
    214.7
    >>> round(cold_s({"switch": OpFit(5e-6, 1.0, 5e9)}, 2**20, 0.5, 1.0, 2e9) * 1e6, 1)   # 2.5 µs + 1 MiB at 2 GB/s
    526.8
    >>> cold_s({}, 2**20)
    0.0
    """
    switch = fits.get("switch") if fits else None
    if switch is None:
        return 0.0
    return code_share * switch.startup_s + weight_share * weight_bytes / min(switch.bytes_per_s, cap_bytes_per_s)


def weight_shares(nbytes) -> list[float]:
    """For each layer of a model call, the share of its weights ``cold_s`` prices as fetched again:
    ``1 - exp(-B / COLD_BYTES)``, B the bytes all the other layers move before it runs again (calls repeat, so the
    whole rest of the call). No other layer reads its weights, so they go cold even between two layers of one op,
    whose code stays hot (``switches``). Measured on lab 00's machine (one thread): ResNet-18's last 3x3 conv, 9 MiB
    of weights, 1.15 ms alone, 1.6 ms right after a 64 MiB copy, 1.55 ms inside the model at 128 px.

    >>> [round(w, 2) for w in weight_shares([2**19, 2**20])]
    [0.63, 0.39]
    """
    nbytes = [float(b) for b in nbytes]
    total = sum(nbytes)
    return [1.0 - math.exp(-(total - b) / COLD_BYTES) for b in nbytes]


def cold_shares(ops, nbytes, tiers=()) -> tuple[list[float], list[float], float]:
    """``(switches, weight_shares, cap)`` of a model call's layers for ``cold_s``: each layer's code share, its
    weights' share, and the rate the weights come back at, at most (``tier_bytes_per_s`` of what the whole call
    moves: weights evicted by the rest of the call return from the tier that holds it). lk.estimate and the
    calibration's fit both price cold layers through this.

    >>> code, weights, cap = cold_shares(["linear", "relu"], [2**21, 2**22], [(2**20, 9e10), (2**22, 3e10)])
    >>> [round(c, 2) for c in code], [round(w, 2) for w in weights], cap        # 6 MiB a call: past the 4 MiB tier
    ([0.98, 0.86], [0.98, 0.86], 30000000000.0)
    """
    nbytes = [float(b) for b in nbytes]
    return switches(ops, nbytes), weight_shares(nbytes), tier_bytes_per_s(tiers, sum(nbytes))


def switches(ops, nbytes) -> list[float]:
    """For each layer of a model call, in order, the share of ``switch_s`` it pays (its code's part of ``cold_s``):
    ``1 - exp(-B / COLD_BYTES)``, B the bytes that the other layers run since this op last ran have moved (calls
    repeat: the first layer follows the last). `ops` are the layers' ``fit_op`` names and `nbytes` their bytes.
    One op repeated stays hot (B = 0); a layer after layers that streamed more than a core's L2 finds its code and
    dispatch path evicted. Small networks stay nearly hot, large ones pay nearly the whole ``switch_s`` at every
    layer. Its weights have their own share (``weight_shares``).

    >>> [round(w, 2) for w in switches(["linear", "relu", "linear", "relu"], [2**19, 2**20, 2**19, 2**20])]
    [0.63, 0.39, 0.63, 0.39]
    >>> switches(["relu"], [2**30]), [round(w, 2) for w in switches(["a", "b", "a"], [2**20, 0, 2**20])]
    ([0.0], [0.0, 0.86, 0.0])
    """
    ops, nbytes = list(ops), [float(b) for b in nbytes]
    if len(ops) != len(nbytes):
        raise ValueError(f"switches needs one byte count per op: got {len(ops)} ops and {len(nbytes)} byte counts.")
    n = len(ops)
    # over the call run twice, prefix[i] = bytes of the layers before position i; each layer of the second run
    # looks back to its op's last position (in this run or the one before)
    prefix = [0.0]
    for b in nbytes + nbytes:
        prefix.append(prefix[-1] + b)
    last = {op: pos for pos, op in enumerate(ops)}
    out = []
    for pos, op in enumerate(ops, start=n):
        between = prefix[pos] - prefix[last[op] + 1]
        out.append(1.0 - math.exp(-between / COLD_BYTES))
        last[op] = pos
    return out
