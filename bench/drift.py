"""Calibrate lk.ops.drift (issue 20, lab 11): false alarms under no drift, a trivial shift, and the shifted digits.

Not a test: prints three tables (and writes them to bench/results/drift-calibration.json); ``bench/run.py``
calls ``rows()`` (section ``drift``).

1. False-alarm rate under NO drift, per method, n = 10^2 .. 10^6 rows in each sample: each repeat is one
   feature (a column) drawn from the same distribution in both samples (N(0, 1) for ks, wasserstein,
   jensenshannon and psi; 6 equally likely categories for chisquare). Repeats shrink as n grows (see REPEATS),
   so the rate at large n is a rough figure: its 95% interval is printed beside it, and the worst statistic of
   the repeats (the smallest p-value, the largest distance) beside the threshold says how far from alarming
   they stayed.
2. A trivial shift (the mean moved by 1% of a std): the p-value test's alarm rate climbs to 100% as n grows,
   the distances' stays 0 - what "statistically significant" is worth at 10^6 rows.
3. Detection on datasets/shifted-digits.npz (scripts/make_shifted_digits.py): reference = the zoo's digits
   training split (1,437 images, 64 pixel features), current = the 360 test images rotated, noisy or
   brightened at three severities; the share of drifted pixels by method beside the zoo mlp's and cnn's
   accuracy on the same images.

    .venv/bin/python bench/drift.py
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = ("ks", "chisquare", "wasserstein", "jensenshannon", "psi")
REPEATS = {10**2: 400, 10**3: 200, 10**4: 100, 10**5: 20, 10**6: 4}
TINY_SHIFT = 0.01                 # in standard deviations
SHIFTS = ("clean", "rotate_1", "rotate_2", "rotate_3", "noise_1", "noise_2", "noise_3",
          "bright_1", "bright_2", "bright_3")


def _samples(method, n, repeats, rng, shift=0.0):

    if method == "chisquare":
        return rng.integers(0, 6, (n, repeats)), rng.integers(0, 6, (n, repeats))
    return rng.standard_normal((n, repeats)), rng.standard_normal((n, repeats)) + shift


def _interval(k, n):
    """Wilson's 95% interval for k alarms out of n repeats."""
    z = 1.96
    p = k / n
    mid, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (mid - half) / (1 + z * z / n)), min(1.0, (mid + half) / (1 + z * z / n))


def false_alarms(shift=0.0, methods=METHODS, seed=0):
    """DataFrame: one row per (method, n): alarms, repeats, rate and its 95% interval, the worst statistic over
    the repeats (smallest p-value, largest distance) beside the threshold, seconds."""
    import numpy as np
    import pandas as pd

    import labkit as lk

    rng = np.random.default_rng([seed, int(shift * 1e6)])
    out = []
    for n, repeats in REPEATS.items():
        for m in methods:
            ref, cur = _samples(m, n, repeats, rng, shift)
            t0 = time.perf_counter()
            r = lk.ops.drift(ref, cur, method=m)
            k, stats = r.n_drifted, [f.statistic for f in r.features]
            lo, hi = _interval(k, repeats)
            worst = min(stats) if r.features[0].is_p_value else max(stats)   # closest to (or past) the threshold
            out.append({"method": m, "n": n, "alarms": k, "repeats": repeats, "rate": k / repeats,
                        "ci_low": lo, "ci_high": hi, "worst": worst, "threshold": r.features[0].threshold,
                        "s": time.perf_counter() - t0})
            del ref, cur
    return pd.DataFrame(out)


def shifted_digits():
    """DataFrame indexed by shift: drifted-pixel share by method (auto, ks, wasserstein, psi), mlp/cnn accuracy."""
    import numpy as np
    import pandas as pd
    import torch

    import labkit as lk
    from labkit.targets.catalog import datasets_dir
    from labkit.zoo.data import _resize

    data = np.load(datasets_dir() / "shifted-digits.npz")
    ref = lk.data.digits("train")[0].numpy().reshape(-1, 64)
    y = torch.from_numpy(data["y"])
    mlp, cnn = lk.zoo.load("mlp").model, lk.zoo.load("cnn").model
    rows = []
    for name in SHIFTS:
        x = torch.from_numpy(data[name])
        with torch.no_grad():
            acc_mlp = float((mlp(x.reshape(-1, 64)).argmax(1) == y).float().mean())
            acc_cnn = float((cnn(_resize(x[:, None], 32)).argmax(1) == y).float().mean())
        cur = data[name].reshape(-1, 64)
        row = {"shift": name, "mlp_accuracy": acc_mlp, "cnn_accuracy": acc_cnn}
        for m in ("auto", "ks", "wasserstein", "psi"):
            r = lk.ops.drift(ref, cur, method=m)
            row[f"{m}_share"] = r.share
            row[f"{m}_dataset_drift"] = r.drifted
        rows.append(row)
    return pd.DataFrame(rows).set_index("shift")


def run():
    t0 = time.perf_counter()
    fa = false_alarms()
    t1 = time.perf_counter()
    tiny = false_alarms(shift=TINY_SHIFT, methods=("ks", "wasserstein", "psi"))
    t2 = time.perf_counter()
    digits = shifted_digits()
    t3 = time.perf_counter()
    return fa, tiny, digits, (t1 - t0, t2 - t1, t3 - t2)


def _save(fa, tiny, digits, times):
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "drift-calibration.json").write_text(json.dumps(
        {"false_alarms": fa.to_dict("records"), "tiny_shift": tiny.to_dict("records"),
         "tiny_shift_std": TINY_SHIFT, "shifted_digits": digits.reset_index().to_dict("records"),
         "seconds": dict(zip(("false_alarms", "tiny_shift", "shifted_digits"), times))}, indent=1))


def rows() -> list[dict]:
    """Figures for bench/run.py: each section's time, the no-drift false-alarm rate per method at 10^2 and 10^6,
    the trivial shift's alarm rate at 10^6, and the accuracy drop beside the drift share on the digits."""
    fa, tiny, digits, times = run()
    _save(fa, tiny, digits, times)

    def row(what, value, unit, note=""):
        return {"what": f"drift: {what}", "value": value, "unit": unit, "budget": None, "over_budget": None,
                "note": note}

    out = [row("false alarms, 5 methods x n = 1e2..1e6", times[0], "s"),
           row(f"trivial shift ({TINY_SHIFT} std)", times[1], "s"),
           row("shifted digits (10 sets x 4 methods, mlp + cnn)", times[2], "s")]
    for _, r in fa[fa.n.isin([10**2, 10**6])].iterrows():
        out.append(row(f"no-drift false alarms, {r.method}, n={r.n:.0e}", 100 * r.rate, "%",
                       f"{r.alarms}/{r.repeats}, 95% CI {100 * r.ci_low:.0f}-{100 * r.ci_high:.0f}%; worst "
                       f"{'p' if r.method in ('ks', 'chisquare') else 'distance'} {r.worst:.3g} (threshold {r.threshold:g})"))
    for _, r in tiny[tiny.n == 10**6].iterrows():
        out.append(row(f"{TINY_SHIFT}-std shift alarms, {r.method}, n=1e6", 100 * r.rate, "%",
                       f"{r.alarms}/{r.repeats}"))
    clean = digits.loc["clean", "mlp_accuracy"]
    for name in ("rotate_2", "noise_2", "bright_2"):
        d = digits.loc[name]
        out.append(row(f"digits {name}: drifted pixels (auto)", 100 * d.auto_share, "%",
                       f"mlp accuracy {100 * d.mlp_accuracy:.1f}% ({100 * (d.mlp_accuracy - clean):+.1f} pts)"))
    return out


def main() -> int:
    import pandas as pd

    fa, tiny, digits, times = run()
    _save(fa, tiny, digits, times)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print("False-alarm rate under no drift (share of repeats flagged):")
        print(fa.pivot(index="n", columns="method", values="rate").to_string(float_format="{:.3f}".format))
        print("\nwith repeats and 95% intervals:")
        print(fa.to_string(index=False, float_format="{:.3f}".format))
        print(f"\nAlarm rate for a shift of {TINY_SHIFT} std:")
        print(tiny.pivot(index="n", columns="method", values="rate").to_string(float_format="{:.3f}".format))
        print("\nShifted digits (reference: the 1,437 training digits; share of the 64 pixels drifted):")
        print(digits.to_string(float_format="{:.3f}".format))
    print(f"\n{sum(times):.1f} s ({', '.join(f'{t:.1f}' for t in times)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
