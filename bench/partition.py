"""Benchmark lk.partition on 1,000-layer models: a chain, a DAG of real-network motifs, a dense random DAG.

Not a test (no timing is asserted anywhere): prints the median time of a whole ``lk.partition`` call
(estimates included) and of the min-cut solver alone, per link, edge jetson-orin-nano, cloud h100-sxm.
Usage: ``.venv/bin/python bench/partition.py [--networkx]`` (--networkx also times networkx's max-flow
functions on the same graphs; they take seconds).
"""

from __future__ import annotations

import random
import statistics
import sys
import time

import labkit as lk
from labkit.partition import Problem as _Problem
from labkit.partition import cut as partition_cut

LINKS = ("3g", "lte", "wifi", "5g", "ethernet")


class _Builder:
    def __init__(self, seed: int):
        self.rng, self.layers = random.Random(seed), []

    def add(self, inputs, out_elems: int) -> str:
        name = f"l{len(self.layers)}"
        macs = self.rng.randrange(10**5, 10**8)
        self.layers.append(lk.Layer(name, "conv2d", "conv", tuple(inputs), macs, 2 * macs, 1000, 1000,
                                    out_elems * len(inputs), out_elems))
        return name

    def profile(self, name: str, n: int) -> lk.Profile:
        layers = tuple(self.layers[:n])
        return lk.Profile(name, "torch", 1, "fp32", layers, params=1000 * n, input_elems=150_528,
                          output_elems=layers[-1].output_elems)


def chain(n: int, seed: int = 0) -> lk.Profile:
    b = _Builder(seed)
    x = "input"
    for _ in range(n):
        x = b.add((x,), b.rng.choice([4096, 16384, 65536, 262144]))
    return b.profile(f"chain-{n}", n)


def motif_dag(n: int, seed: int = 0) -> lk.Profile:
    """ResNet blocks (skip over 5 layers), Inception blocks (2-4 branches of 1-3 layers, then a concat)
    and transformer blocks (q/k/v from one tensor, two residual adds), in random turn."""
    b = _Builder(seed)
    x = b.add(("input",), 65536)
    while len(b.layers) < n:
        kind, size = b.rng.choice(["res", "inc", "tf"]), b.rng.choice([4096, 16384, 65536])
        if kind == "res":
            a = x
            for _ in range(5):
                a = b.add((a,), size)
            x = b.add((b.add((a, x), size),), size)
        elif kind == "inc":
            outs = []
            for _ in range(b.rng.randint(2, 4)):
                br = x
                for _ in range(b.rng.randint(1, 3)):
                    br = b.add((br,), size)
                outs.append(br)
            x = b.add(tuple(outs), size * len(outs))
        else:
            h = b.add((x,), size)
            att = b.add((b.add((h,), size), b.add((h,), size), b.add((h,), size)), size)
            x = b.add((b.add((att,), size), x), size)
            h = b.add((b.add((b.add((b.add((x,), size),), 4 * size),), 4 * size),), size)
            x = b.add((h, x), size)
    return b.profile(f"motif-dag-{n}", n)


def random_dag(n: int, seed: int = 0) -> lk.Profile:
    """A harder case than real networks: 30% of the layers also read a random layer up to 8 back."""
    b = _Builder(seed)
    for v in range(n):
        inputs = ("input",) if v == 0 else (f"l{v - 1}",)
        if v >= 2 and b.rng.random() < 0.3:
            inputs += (f"l{b.rng.randrange(max(0, v - 8), v - 1)}",)
        b.add(inputs, b.rng.choice([4096, 16384, 65536, 262144]))
    return b.profile(f"random-dag-{n}", n)


def median_s(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    flows = partition_cut.FLOWS if "--networkx" in sys.argv else ("scaled-dinic", "push-relabel")
    lk.partition(chain(10), edge="jetson-orin-nano", cloud="h100-sxm", link="lte")    # imports, catalog
    for prof in (chain(1000), motif_dag(1000), random_dag(1000)):
        prob = _Problem(prof, "jetson-orin-nano", "h100-sxm")
        print(f"{prof.name} ({'chain' if prob.chain else 'DAG'}):")
        for name in LINKS:
            link = lk.link(name)
            plan = lk.partition(prof, edge="jetson-orin-nano", cloud="h100-sxm", link=link)
            full = median_s(lambda p=prof, k=link: lk.partition(p, edge="jetson-orin-nano", cloud="h100-sxm",
                                                                link=k))
            w = prob.weights(link, "latency", None)
            solver = [f"{flow} {median_s(lambda f=flow, w=w, pr=prob: partition_cut.min_cut(*w, pr.producers, flow=f), 3) * 1e3:.1f} ms"
                      for flow in flows]
            print(f"  {name:9s} lk.partition {full * 1e3:6.1f} ms ({plan.method}, {len(plan.cloud_layers):4d} cloud "
                  f"layers); min-cut alone: {', '.join(solver)}")


if __name__ == "__main__":
    main()
