"""Issue 12's probe: what a torch linear costs when its weights went cold, against the simulator's switch term.

    .venv/bin/python bench/coldweights.py [--threads 2]

Not part of ``make bench`` or pytest. It prints two tables:

1. One ``nn.Linear`` shape called round-robin over n copies of itself (different weights, same shape), for a
   growing weight footprint. Below a few MiB every call finds its weights in the caches; beyond the last-level
   cache each call fetches and packs them again. ``penalty`` is the extra time per call over n = 1, and
   ``GB/s`` the weight bytes over that penalty.
2. ViT-Tiny at 64 px, batch 1 (labkit's held-out set): the mean ``aten::addmm`` time, from torch's profiler, of
   its 12 blocks run in turn (21 MiB of weights), of block 0 run 12 times (1.8 MiB), and of the whole model; and
   what ``lk.estimate`` on this machine's calibration charges per linear.

``labkit.targets.switches`` gives a layer's share of the cold cost by the bytes moved since its *op* last ran
(the code and dispatch path), and the weights' re-fetch goes with that share. Run against a calibration
(``labkit calibrate``) to compare.

What it showed (2026-12-04, the 2-core Zen 4 VM, 32 MiB L3): a 192x576 linear on 17 tokens cost 1-2 µs more at
1.7-6.8 MiB of weights, 18 µs at 13.5 MiB and 41-43 µs at 27-54 MiB (10-11 GB/s of weights); ViT-Tiny@64's
linears 72 µs each through its 12 blocks, 43 µs with one block repeated, where ``lk.estimate`` charged 44 µs.
A linear that follows a linear keeps its code hot, so its weights' re-fetch gets a share near 0.

Tried and not kept: the weights' share by the bytes of the whole call (``1 - exp(-B / 16 MiB)``), fitted
jointly as before and compared with the current model on one set of measurements (one calibration's points,
one validation's timings). The fitted rate went from 6.4 to 12.8 GB/s; ViT-Tiny@64 b1 went from -29.5% to
-17.1% and ResNet-18@64 b1 from -13.1% to +1.4%, but ResNet-34@96 b1 from +18.9% to +31.8% and ResNet-18@128 b1
from +4.4% to +12.8%: held-out median |error| 12.2% -> 13.3%. One rate cannot price both a linear's packing
(strided reads, ~10 GB/s) and a conv's weights; the next step is to measure the convs' re-fetch the same way.
"""

from __future__ import annotations

import argparse
import time


def _per_call_s(fn, calls: int) -> float:
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / calls


def footprint_table(torch) -> None:
    print("linear, tokens 17, called round-robin over n copies (different weights)")
    print(f"{'shape':>10} {'n':>4} {'MiB':>6} {'us/call':>8} {'penalty':>8} {'GB/s':>6}")
    for k, n_out in ((192, 576), (192, 192), (768, 192)):
        x = torch.randn(1, 17, k)
        base = None
        for n in (1, 4, 16, 32, 64, 128):
            lins = [torch.nn.Linear(k, n_out) for _ in range(n)]
            reps = max(1, 256 // n)

            def run(lins=lins, reps=reps, x=x):
                for _ in range(reps):
                    for lin in lins:
                        lin(x)

            t = _per_call_s(run, reps * n)
            base = t if base is None else base
            wbytes = 4 * k * n_out
            rate = f"{wbytes / (t - base) / 1e9:6.1f}" if t - base > 2e-6 else "     -"
            print(f"{k:>4}x{n_out:<5} {n:>4} {n * wbytes / 2**20:>6.1f} {t * 1e6:>8.1f} {(t - base) * 1e6:>8.1f} "
                  f"{rate}")


def vit_table(torch) -> None:
    from torch.profiler import ProfilerActivity, profile

    import labkit as lk
    from labkit.calibration.heldout import build, example

    model, x = build("vit_tiny@64").eval(), example("vit_tiny@64", 1)
    h = torch.randn(1, 17, 192)

    def addmm_us(fn, n=30):
        for _ in range(10):
            fn()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(n):
                fn()
        return next(e.self_cpu_time_total / e.count for e in prof.key_averages() if e.key == "aten::addmm")

    print("\nViT-Tiny@64 batch 1: mean aten::addmm (torch profiler, its overhead included)")
    print(f"  12 blocks in turn (21 MiB of weights): {addmm_us(lambda: model.blocks(h)):6.1f} us")
    same = addmm_us(lambda: [model.blocks[0](h) for _ in range(12)])
    print(f"  block 0 twelve times (1.8 MiB):         {same:6.1f} us")
    print(f"  the whole model:                        {addmm_us(lambda: model(x)):6.1f} us")
    try:
        est = lk.estimate(lk.profile(model, x), "local", "fp32")
    except Exception as exc:                       # not calibrated: say so, the measurements stand
        print(f"  lk.estimate: {exc}")
        return
    lins = [lay for lay in est.layers if lay.op == "linear"]
    mean = sum(lay.latency_s for lay in lins) / len(lins)
    print(f"  lk.estimate per linear (mean of {len(lins)}):      {mean * 1e6:6.1f} us (model {est.latency_s * 1e3:.2f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with torch.inference_mode():
        footprint_table(torch)
        vit_table(torch)


if __name__ == "__main__":
    main()
