"""Issue 12's probe: does this machine's second CPU keep pace? Two states of the 2-core VM, timed.

    .venv/bin/python bench/cpu_states.py [--seconds 150]

Not part of ``make bench`` or pytest. Over and over (a few samples a second) it times a small conv (32 channels,
3x3, 16x16, batch 1) with one torch thread and with two, and ResNet-18 at 64 px (labkit's held-out set) with
two, then prints each state's share of the time and the ResNet's median in each. ``labkit validate`` takes the
same conv sample during calibration and validation (labkit.calibration.cpustate).

What it showed (2026-12-04, the 2-core Zen 4 Firecracker VM of labs 00/01, nothing else running, guest steal
time 0): the VM switches, every 5 to 100 s, between two states.
- "in step": the conv takes 86-88 µs with one thread or two; ResNet-18@64 b1 9.0-9.5 ms.
- "lagging": the conv takes 87 µs with one thread but 230-250 µs with two, as if the second CPU ran at a third
  of its speed; ResNet-18@64 b1 11.3-12.1 ms (+27%). ``OMP_WAIT_POLICY=ACTIVE`` changes nothing (not a thread
  wake-up), and a one-thread op is unaffected: another tenant on the host shares the second CPU's core.
The state lasted 30-100 s at a time and covered a third to a half of the time over several minutes. A
calibration (about 40 s) and a validation (about 3 min) can each fall in either state, or straddle them: that
alone moves every two-thread torch time by a quarter, which is the size of the run-to-run swings of issue 12.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=150.0)
    args = ap.parse_args()
    import torch

    from labkit.calibration.cpustate import lags, probe_times
    from labkit.calibration.heldout import build, example
    from labkit.measure import lowest_median_s

    torch.set_num_threads(2)
    net, xn = build("resnet18@64").eval(), example("resnet18@64", 1)
    rows = []
    print(f"{'t s':>5} {'conv 1T us':>11} {'conv 2T us':>11} {'resnet18@64 2T ms':>18}  state")
    t_end = time.time() + args.seconds
    t0 = time.time()
    with torch.inference_mode():
        while time.time() < t_end:
            one, two = probe_times(0.02)
            resnet = lowest_median_s(net, xn, budget_s=0.2, rounds=1)
            state = "lagging" if lags(one, two) else "in step"
            rows.append((state, resnet))
            print(f"{time.time() - t0:5.0f} {one * 1e6:11.1f} {two * 1e6:11.1f} {resnet * 1e3:18.2f}  {state}",
                  flush=True)
    for state in ("in step", "lagging"):
        times = [r for s, r in rows if s == state]
        if times:
            print(f"{state}: {len(times) / len(rows):.0%} of {len(rows)} samples, ResNet-18@64 median "
                  f"{statistics.median(times) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
