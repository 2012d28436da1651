"""labkit validate --gpu: a real H200's stored timings against lk.estimate on the catalog's "h200".

The record (datasets/gpu-measured/) was measured by bench/gpu_measure.py on a GPU; these tests check that it is
complete, that every prediction beside it is lk.estimate's own (recomputed here from a profile taken at the
row's batch, not through gpucheck's batch-1 profiles), and that the script itself runs end to end (on the CPU,
where there is no CUDA graph to time)."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import labkit as lk

gpucheck = importlib.import_module("labkit.calibration.gpucheck")
heldout = importlib.import_module("labkit.calibration.heldout")
gptcases = importlib.import_module("labkit.calibration.gptcases")
validate_mod = importlib.import_module("labkit.calibration.validate")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def check():
    return gpucheck.gpu_check()


@pytest.fixture(scope="module")
def record():
    return json.loads(gpucheck.records()[-1].read_text())


def test_the_stored_record_is_a_complete_gpu_run(record):
    m = record["machine"]
    assert m["gpu"].startswith("NVIDIA") and m["torch"] and m["driver"] and record["date"]
    assert lk.device(record["catalog_device"]).kind == "cloud-gpu"
    have = {(r["model"], r["batch"], r["dtype"]) for r in record["rows"]}
    for name in [*lk.zoo.names(), *heldout.CASES]:
        for dtype in ("fp32", "tf32", "bf16"):
            for batch in (1, 32, 256):
                assert (name, batch, dtype) in have
    for name, batch, *_ in gptcases.cases(None, names_only=True):
        assert {(name, batch, "fp32"), (name, batch, "bf16")} <= have
    assert not [r for r in record["rows"] if "error" in r]
    assert all(isinstance(r["graph_s"], float) and r["graph_s"] > 0 for r in record["rows"])
    # the ceilings are real measurements: below the datasheet peak, above half of it
    dev = lk.device(record["catalog_device"])
    assert 0.5 * dev.mem_bw_bytes_per_s < record["ceilings"]["copy_gb_s"] * 1e9 < dev.mem_bw_bytes_per_s


def test_every_row_is_the_records_time_beside_lk_estimate(check, record):
    by_key = {(r["model"], r["batch"], r["dtype"]): r for r in record["rows"]}
    assert len(check.report.rows) == 2 * len(record["rows"])      # a graph and an eager row each
    for row in check.report.rows:
        mode, dtype = row.runtime.split()
        assert row.measured_s == by_key[(row.model, row.batch, dtype)][f"{mode}_s"]
        assert row.rel_error == pytest.approx((row.predicted_s - row.measured_s) / row.measured_s, rel=1e-12)


@pytest.mark.parametrize("name,batch,dtype", [("mlp", 256, "bf16"), ("resnet18@64", 32, "fp32"),
                                              ("mobilenet", 32, "tf32")])
def test_predictions_are_lk_estimate_at_the_rows_batch(check, name, batch, dtype):
    build, example = validate_mod._source(name)
    expected = lk.estimate(lk.profile(build(name), example(name, batch=batch)), "h200", dtype).latency_s
    got = [r.predicted_s for r in check.report.rows if (r.model, r.batch, r.runtime.split()[1]) == (name, batch, dtype)]
    assert len(got) == 2 and got == [pytest.approx(expected, rel=1e-9)] * 2


def test_the_gpts_rows_use_its_eager_prefill_and_decode_profiles(check):
    cfg = lk.zoo.load("gpt").model.config        # the record times the eager torch forward, one kernel per op
    cases = {"gpt decode ctx 64": lk.llm.decode(cfg, 64, batch=8, dtype="bf16", eager=True),
             "gpt prefill 32": lk.llm.prefill(cfg, 32, batch=1, dtype="bf16", all_logits=True, eager=True),
             "gpt recompute ctx 126": lk.llm.prefill(cfg, 127, batch=1, dtype="bf16", all_logits=True, eager=True)}
    for name, prof in cases.items():
        rows = [r for r in check.report.rows if r.model == name and r.runtime == "graph bf16"]
        assert rows and all(r.predicted_s == pytest.approx(lk.estimate(prof, "h200", "bf16").latency_s, rel=1e-9)
                            for r in rows if r.batch == prof.batch)


def test_the_table_reports_ceilings_modes_and_batches(check):
    text = check.table()
    assert "NVIDIA H200" in text and "matmul bf16" in text and "copy" in text
    for mode in ("graph", "eager"):
        for batch in (1, 32, 256):
            assert f"{mode} batch {batch:>3}" in text
    c = {c.what: c for c in check.ceilings}["copy"]
    assert c.measured_share == pytest.approx(c.measured / 4800, rel=1e-9)


def test_a_missing_record_names_the_stored_ones(capsys):
    with pytest.raises(FileNotFoundError, match="h200-2026-12-04.json"):
        gpucheck.gpu_check("no-such-record.json")
    assert validate_mod.cli(["--gpu", "no-such-record.json"]) == 2
    assert "stored records" in capsys.readouterr().err


def test_the_measuring_script_runs_without_a_gpu_and_its_record_reads_back(tmp_path):
    """bench/gpu_measure.py on the CPU (--quick), with labkit's non-torch dependencies hidden as on the GPU image."""
    out = tmp_path / "record.json"
    hide = ("import sys, runpy\nfor m in ('pydantic', 'nbformat'): sys.modules[m] = None\n"
            f"sys.argv = ['gpu_measure.py', '--device', 'cpu', '--quick', '--models', 'mlp', 'transformer', "
            f"'--budget-s', '0.01', '--out', {str(out)!r}]\n"
            f"runpy.run_path({str(ROOT / 'bench' / 'gpu_measure.py')!r}, run_name='__main__')\n")
    subprocess.run([sys.executable, "-c", hide], check=True, capture_output=True, timeout=300, cwd=tmp_path)
    got = json.loads(out.read_text())
    assert {r["model"] for r in got["rows"]} == {"mlp", "transformer", "gpt prefill 8"}
    assert len(got["rows"]) == 2 * 3 * 2 + 2                 # 2 models x 3 dtypes x batch 1, 32; the GPT at 2 dtypes
    assert all(len(r["eager_s_rounds"]) == 2 and r["eager_s"] == min(r["eager_s_rounds"]) for r in got["rows"])
    check = gpucheck.gpu_check(out)
    assert {r.runtime.split()[0] for r in check.report.rows} == {"eager"}      # no CUDA graph on a CPU
    assert len(check.failed) == len(got["rows"]) and "graph: not measured" in check.failed[0]


def test_the_readmes_words_on_gpu_error_are_true_of_the_stored_run(check):
    """README.md ("How honest is the simulator?"): about 45% in graph mode, too slow at batch 1 and too fast at
    batch 256, and most of an eager call missed. A new record that changes this must change the README."""
    graph = [r for r in check.report.rows if r.runtime.startswith("graph")]
    eager = [r for r in check.report.rows if r.runtime.startswith("eager")]
    med = validate_mod._median
    assert 0.4 <= med([abs(r.rel_error) for r in graph]) <= 0.5
    gpt = [r.rel_error for r in graph if r.model.startswith("gpt")]
    assert med(gpt) > 0.3 and check.overhead_s == pytest.approx(5e-6) and check.graph_kernel_s < 2e-6
    assert med([r.rel_error for r in graph if r.batch == 1]) > 0.2
    assert med([r.rel_error for r in graph if r.batch == 256]) < -0.2
    assert med([r.rel_error for r in eager]) < -0.5
    text = (ROOT / "README.md").read_text()
    assert "about 45% in the GPU's own time" in text and "where a kernel in a graph costs about\n1 µs" in text and "too slow at batch 1 and too fast at batch 256" in text


def test_the_scatter_plot_gives_each_mode_and_dtype_its_colour(check):
    import matplotlib.pyplot as plt

    ax = lk.plot.validation(check.report)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {label.split(",")[0] for label in labels} == {r.runtime for r in check.report.rows}
    colours = {label.split(",")[0]: tuple(c.get_edgecolor()[0]) for label, c in zip(labels, ax.collections)}
    assert len(set(colours.values())) == len(colours)
    plt.close(ax.figure)
