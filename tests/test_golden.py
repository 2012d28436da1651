"""Golden values: what lk.estimate and lk.partition predict for fixed zoo models on catalog devices.

The labs recompute most expected answers with the simulator at run time, so a change to the model would pass
nbval silently. These stored numbers make such a change a visible, reviewed diff: when you change the model
on purpose, regenerate them and commit the JSON with the change, saying why the numbers moved:

    PYTHONPATH=$PWD python tests/test_golden.py --regenerate

Precision: relative 1e-9 for floats (the same arithmetic in the same order; only float noise may differ
across platforms), exact for bytes, FLOPs, placements and methods.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import pytest

import labkit as lk

GOLDEN = Path(__file__).parent / "golden" / "estimate_partition.json"
REL = 1e-9
ESTIMATES = [(m, d, dt, b) for m in ("mlp", "cnn", "transformer")
             for d, dt in (("h100-sxm", "bf16"), ("jetson-orin-nano", "fp16"), ("raspberry-pi-5", "fp32"),
                           ("tpu-v5e", "bf16"))
             for b in (1, 8)]
PARTITIONS = [  # (model, edge, cloud, link, objective, batch): all-edge, all-cloud, chains and DAGs
    ("cnn", "raspberry-pi-5", "l4", "wifi", "latency", 1),
    ("cnn", "jetson-orin-nano", "h100-sxm", "lte", "energy", 1),
    ("cnn", "stm32h7", "h100-sxm", "wifi", "latency", 1),
    ("cnn", "raspberry-pi-5", "h100-sxm", "ethernet", "energy", 64),
    ("mobilenet", "raspberry-pi-5", "l4", "5g", "latency", 1),
    ("resnet", "jetson-orin-nano", "l4", "wifi", "cost", 1),
    ("resnet", "jetson-orin-nano", "h100-sxm", "datacenter", "energy", 8),
    ("transformer", "raspberry-pi-5", "h100-sxm", "ethernet", "latency", 1),
    # lab 06's microcontroller models (built below): their best plans split inside the model
    ("sensor_chain", "stm32h7", "l4", "lte", "latency", 1),
    ("sensor_chain", "stm32h7", "l4", "wifi", "latency", 1),
    ("sensor_dag", "stm32h7", "l4", "wifi", "latency", 1),
]
# Interior splits the golden file must hold (some layers on each side), with the split lab 06 teaches: the
# microcontroller runs the stem and the 4x4 pool, whose output (8 kB) is 6x smaller than the image (49 kB).
INTERIOR = {"sensor_chain|stm32h7|l4|lte|latency|1": "pool", "sensor_chain|stm32h7|l4|wifi|latency|1": "pool",
            "sensor_dag|stm32h7|l4|wifi|latency|1": None}


def _lab06_models():
    """Lab 06's sensor_net (a 12-layer chain) and SensorResNet (an 18-layer DAG), as in its setup cell."""
    from collections import OrderedDict

    from torch import nn

    layers = [("stem", nn.Conv2d(3, 8, 3, padding=1)), ("stem_relu", nn.ReLU()), ("pool", nn.MaxPool2d(4))]
    for i, c_in in enumerate([8, 56, 56], start=1):
        layers += [(f"conv{i}", nn.Conv2d(c_in, 56, 3, padding=1)), (f"relu{i}", nn.ReLU())]
    layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(56, 10))]
    chain = nn.Sequential(OrderedDict(layers)).eval()

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv_a, self.relu_a = nn.Conv2d(c, c, 3, padding=1), nn.ReLU()
            self.conv_b, self.relu = nn.Conv2d(c, c, 3, padding=1), nn.ReLU()

        def forward(self, x):
            return self.relu(x + self.conv_b(self.relu_a(self.conv_a(x))))

    class SensorResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.stem_relu, self.pool = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4)
            self.conv1, self.relu1 = nn.Conv2d(8, 24, 3, padding=1), nn.ReLU()
            self.blocks = nn.Sequential(Residual(24), Residual(24))
            self.gap, self.flatten, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10)

        def forward(self, x):
            x = self.relu1(self.conv1(self.pool(self.stem_relu(self.stem(x)))))
            return self.fc(self.flatten(self.gap(self.blocks(x))))

    return {"sensor_chain": chain, "sensor_dag": SensorResNet().eval()}


def _profiles():
    import torch

    out = {}
    lab06 = _lab06_models()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the profiler warns about ops it has no MAC rule for
        for name in sorted({m for m, *_ in ESTIMATES} | {m for m, *_ in PARTITIONS}):
            if name in lab06:
                out[name] = lk.profile(lab06[name], torch.zeros(1, 3, 64, 64), name=name)
            else:
                out[name] = lk.profile(lk.zoo.build(name), lk.zoo.example(name, 1))
    return out


def compute() -> dict:
    profiles = _profiles()
    est = {}
    for model, device, dtype, batch in ESTIMATES:
        e = lk.estimate(profiles[model], device, dtype, batch=batch)
        est[f"{model}|{device}|{dtype}|{batch}"] = {
            "latency_s": e.latency_s, "energy_j": e.energy_j, "cost_usd": e.cost_usd, "carbon_g": e.carbon_g,
            "flops": int(sum(lay.flops for lay in e.layers)), "bytes": int(sum(lay.bytes for lay in e.layers)),
            "bounds": "".join(lay.bound[0] for lay in e.layers)}
    parts = {}
    for model, edge, cloud, link, objective, batch in PARTITIONS:
        p = lk.partition(profiles[model], edge=edge, cloud=cloud, link=link, objective=objective, batch=batch)
        parts[f"{model}|{edge}|{cloud}|{link}|{objective}|{batch}"] = {
            "method": p.method, "cloud_layers": sorted(k for k, v in p.placement.items() if v == "cloud"),
            "latency_s": p.latency_s, "edge_energy_j": p.edge_energy_j, "cost_usd": p.cost_usd,
            "upload_bytes": int(p.upload_bytes), "download_bytes": int(p.download_bytes)}
    return {"_about": "regenerate: PYTHONPATH=$PWD python tests/test_golden.py --regenerate (see its docstring)",
            "estimate": est, "partition": parts}


@pytest.fixture(scope="module")
def now():
    return compute()


@pytest.fixture(scope="module")
def stored():
    return json.loads(GOLDEN.read_text())


def _same(got, want, where):
    assert type(got) is type(want) or {type(got), type(want)} <= {int, float}, where
    if isinstance(want, float):
        assert math.isclose(got, want, rel_tol=REL, abs_tol=0.0), f"{where}: {got!r} != golden {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != golden {want!r}"


@pytest.mark.parametrize("kind", ["estimate", "partition"])
def test_predictions_equal_the_golden_values(now, stored, kind):
    assert sorted(now[kind]) == sorted(stored[kind]), "cases changed: regenerate the golden file"
    for case, fields in stored[kind].items():
        assert sorted(now[kind][case]) == sorted(fields), case
        for field, want in fields.items():
            _same(now[kind][case][field], want, f"{kind} {case} {field}")


def test_the_golden_file_is_not_trivial(stored):
    # a regenerated file full of zeros or copies would pin nothing
    lat = [v["latency_s"] for v in stored["estimate"].values()]
    assert all(x > 0 for x in lat) and len(set(lat)) == len(lat)
    assert any(v["cloud_layers"] for v in stored["partition"].values())
    assert any(not v["cloud_layers"] or len(v["cloud_layers"]) < 5 for v in stored["partition"].values())


def test_the_golden_file_holds_interior_splits(stored):
    # a split inside the model (some layers on each side), not only all-edge or all-cloud plans; for the chain,
    # the cloud side is exactly the layers after the split lab 06 teaches (names from the model, not the file)
    chain = [name for name, _ in _lab06_models()["sensor_chain"].named_children()]
    for case, split in INTERIOR.items():
        cloud = stored["partition"][case]["cloud_layers"]
        assert 0 < len(cloud) < (len(chain) if split else 18), case
        if split:
            assert cloud == sorted(chain[chain.index(split) + 1:]), case


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        raise SystemExit("usage: PYTHONPATH=$PWD python tests/test_golden.py --regenerate")
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
