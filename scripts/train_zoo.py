"""Train every lk.zoo model on its lk.data task and write the weights the labs load (issue 4).

Usage: ``.venv/bin/python scripts/train_zoo.py [name ...]`` (all models when no name is given).

Writes datasets/weights/<name>.pt (a state_dict) and datasets/weights/accuracy.json (test accuracy of each
model, measured here on ``lk.data.for_model(name, "test")``, plus training time and settings), then prints
a table. Fixed seeds: building (``lk.zoo.build(name, seed=0)``), data order and the data itself are all
seeded, so a rerun on the same torch version and CPU reproduces the weights. Runs on 2 threads.
After running, regenerate the checksum table in datasets/README.md (see that file).
"""

from __future__ import annotations

import json
import sys
import time

import torch

import labkit as lk
from labkit.targets.catalog import datasets_dir

SEED = 0
# name -> (epochs, learning rate, batch size); Adam, each well under 3 min on 2 cores
SETTINGS = {
    "mlp": (40, 1e-3, 64),
    "cnn": (12, 2e-3, 64),
    "mobilenet": (10, 3e-3, 64),
    "resnet": (6, 2e-3, 64),
    "transformer": (5, 2e-3, 64),
}


def train(name: str) -> dict:
    epochs, lr, batch = SETTINGS[name]
    x, y = lk.data.for_model(name, "train", seed=SEED)
    x_test, y_test = lk.data.for_model(name, "test", seed=SEED)
    model = lk.zoo.build(name, seed=SEED)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=epochs * -(-len(y) // batch))
    order_rng = torch.Generator().manual_seed(SEED)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=order_rng).split(batch):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    train_s = time.perf_counter() - start
    model.eval()
    path = datasets_dir() / "weights" / f"{name}.pt"
    path.parent.mkdir(exist_ok=True)
    torch.save(model.state_dict(), path)
    return {"test_accuracy": lk.data.accuracy(model, x_test, y_test), "train_accuracy": lk.data.accuracy(model, x, y),
            "test_examples": len(y_test), "train_examples": len(y), "epochs": epochs, "lr": lr, "batch": batch,
            "train_s": round(train_s, 1), "file_bytes": path.stat().st_size,
            "params": sum(p.numel() for p in model.parameters())}


def main(names: list[str]) -> None:
    torch.set_num_threads(2)
    out = datasets_dir() / "weights" / "accuracy.json"
    record = json.loads(out.read_text())["models"] if out.exists() else {}
    for name in names or lk.zoo.names():
        record[name] = train(name)
        print(f"{name:12s} done in {record[name]['train_s']:6.1f} s", flush=True)
    doc = {"about": "test accuracy of datasets/weights/<name>.pt on lk.data.for_model(name, 'test'), "
                    "written by scripts/train_zoo.py", "seed": SEED, "torch": torch.__version__,
           "models": {n: record[n] for n in lk.zoo.names() if n in record}}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\n{'model':12s} {'params':>8s} {'bytes':>9s} {'train s':>8s} {'train acc':>9s} {'test acc':>8s}")
    for n, r in doc["models"].items():
        print(f"{n:12s} {r['params']:8d} {r['file_bytes']:9d} {r['train_s']:8.1f} "
              f"{r['train_accuracy']:9.4f} {r['test_accuracy']:8.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
