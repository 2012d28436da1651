"""lk.zoo.load: the shipped trained weights load, and their recorded test accuracy is re-measured here;
each weight file is small and checksummed in datasets/README.md."""

import hashlib
import json
import re

import pytest
import torch

import labkit as lk
from labkit.targets.catalog import datasets_dir

WEIGHTS = datasets_dir() / "weights"


@pytest.mark.parametrize("name", lk.zoo.names())
def test_recorded_accuracy_is_reproduced_on_the_test_split(name):
    model, recorded = lk.zoo.load(name)
    assert not model.training
    x, y = lk.data.for_model(name, "test")
    with torch.no_grad():                       # direct count, independent of lk.data.accuracy
        measured = (model(x).argmax(dim=1) == y).double().mean().item()
    assert abs(measured - recorded) <= 0.005, f"{name}: measured {measured:.4f}, recorded {recorded:.4f}"
    assert recorded >= 0.9, f"{name} is barely trained ({recorded:.3f})"


@pytest.mark.parametrize("name", lk.zoo.names())
def test_loaded_weights_are_the_file_and_not_the_fresh_init(name):
    loaded = lk.zoo.load(name)
    assert loaded.name == name
    state = torch.load(WEIGHTS / f"{name}.pt", weights_only=True)
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    fresh = lk.zoo.build(name).state_dict()
    assert any(not torch.equal(fresh[k], state[k]) for k in state if state[k].is_floating_point())


def test_weight_files_are_small_and_checksummed_in_readme():
    readme = (datasets_dir() / "README.md").read_text()
    listed = dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", readme, flags=re.M))
    record = json.loads((WEIGHTS / "accuracy.json").read_text())["models"]
    assert set(record) == {*lk.zoo.names(), "gpt"}          # gpt: the small language model of lab 08
    for name in [*lk.zoo.names(), "gpt"]:
        path = WEIGHTS / f"{name}.pt"
        assert path.stat().st_size < 5_000_000
        assert record[name]["file_bytes"] == path.stat().st_size
        assert listed[f"weights/{name}.pt"] == hashlib.sha256(path.read_bytes()).hexdigest()
    json_bytes = (WEIGHTS / "accuracy.json").read_bytes()
    assert listed["weights/accuracy.json"] == hashlib.sha256(json_bytes).hexdigest()


def test_load_unknown_name_lists_near_matches():
    with pytest.raises(ValueError, match="resnet"):
        lk.zoo.load("resnet18")


def test_load_without_weights_says_how_to_make_them(tmp_path, monkeypatch):
    from labkit.targets import catalog

    monkeypatch.setenv(catalog.ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="train_zoo"):
        lk.zoo.load("mlp")
