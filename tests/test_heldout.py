"""Held-out architectures (labkit validate --held-out): written from their papers, checked against the published
parameter counts to the parameter, and run through the same predict-and-measure path as the zoo."""

import pytest
import torch

import labkit as lk
from labkit.calibration import heldout
from labkit.calibration.validate import ValidationReport, ValidationRow

# torchvision's model tables, the DeiT paper (via timm) and Google's BERT-mini release: independent of our code.
PUBLISHED = {"resnet18": 11_689_512, "resnet34": 21_797_672, "mobilenet_v2": 3_504_872,
             "mobilenet_v3_small": 2_542_856, "efficientnet_b0": 5_288_548, "vit_tiny": 5_717_416,
             "bert_mini": 11_170_560}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_is_the_published_one(name):
    model = heldout.build(name)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name]


@pytest.mark.parametrize("case", ["resnet18@32", "mobilenet_v3_small@32", "efficientnet_b0@32", "vit_tiny@32",
                                  "bert_mini@8"])
def test_small_cases_run_and_profile(case):
    model, x = heldout.build(case), heldout.example(case, batch=2)
    with torch.no_grad():
        y = model(x)
    assert y.shape[0] == 2
    prof = lk.profile(model, heldout.example(case, batch=1), name=case)
    # the profile sees the whole network: its parameter count is the model's
    assert prof.params == sum(p.numel() for p in model.parameters())


def test_every_listed_case_parses():
    for case in heldout.CASES:
        name, size = heldout.parse(case)
        assert name in PUBLISHED and size >= 32


@pytest.mark.parametrize("bad, match", [("resnet19@64", "resnet18"), ("vit_tiny@50", "multiple of its 16"),
                                        ("resnet18@x", "'<model>@<size>'")])
def test_bad_cases_say_what_is_allowed(bad, match):
    with pytest.raises(ValueError, match=match):
        heldout.parse(bad)


def test_report_groups_errors_by_model_class_size_and_set():
    rows = (ValidationRow("mlp", "torch", 1, 1.0, 2.0, "matmul"),                       # -50%
            ValidationRow("resnet18@64", "torch", 1, 3.0, 2.0, "conv", held_out=True),  # +50%
            ValidationRow("resnet18@128", "torch", 1, 1.5, 2.0, "conv", held_out=True))  # -25%
    report = ValidationReport(rows, "fp32", 2, 1.0)
    assert report.median_signed_error == pytest.approx(-0.25)
    by_set = report.by("set")
    assert by_set.loc["held-out", "n"] == 2 and by_set.loc["zoo", "median_signed_error"] == pytest.approx(-0.5)
    assert report.by("op_class").loc["conv", "worst_abs_error"] == pytest.approx(0.5)
    assert sorted(report.by("size").index) == [64, 128]
    with pytest.raises(ValueError, match="op_class"):
        report.by("op_clas")
