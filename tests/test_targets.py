"""The hardware catalog, links and their loaders (labs 00, 01, 05, 06).

Oracles: the TOML files read directly with tomllib, arithmetic from published unit counts and clocks,
hashlib for the checksums, a fresh interpreter for "no calibration on lk.devices()".
"""

import dataclasses
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest

import labkit as lk
from labkit.targets import KINDS

DATASETS = Path(__file__).resolve().parent.parent / "datasets"
RAW = tomllib.loads((DATASETS / "devices.toml").read_text())
RAW_LINKS = tomllib.loads((DATASETS / "links.toml").read_text())
NAMES = sorted(RAW["devices"])
YEAR = re.compile(r"\b(19|20)\d\d\b")

REQUIRED = {  # name -> kind, from the brief
    "h100-sxm": "cloud-gpu", "h200": "cloud-gpu", "a100-sxm": "cloud-gpu", "l4": "cloud-gpu", "t4": "cloud-gpu",
    "tpu-v4": "tpu", "tpu-v5e": "tpu", "tpu-v6e": "tpu", "inferentia2": "cloud-npu", "c7i-4xlarge": "cloud-cpu",
    "jetson-orin-nano": "edge-gpu", "jetson-orin-nx": "edge-gpu", "jetson-agx-orin": "edge-gpu",
    "raspberry-pi-5": "edge-cpu", "coral-edge-tpu": "npu", "apple-a17-neural-engine": "npu", "stm32h7": "mcu",
}


def toy(**kw):
    base = dict(name="toy", kind="edge-gpu", vendor="me", peak_flops={"fp32": 1e12, "fp16": 4e12},
                mem_bw_bytes_per_s=1e11, mem_bytes=8e9, idle_w=5.0, peak_w=25.0)
    base.update(kw)
    return lk.Device(**base)


# ------------------------------------------------------------------------------------------------ the data

def test_catalog_has_the_required_devices_and_at_least_18():
    assert len(NAMES) >= 18
    for name, kind in REQUIRED.items():
        assert lk.device(name).kind == kind, name


@pytest.mark.parametrize("name", NAMES)
def test_every_device_is_complete_kebab_case_and_sourced(name):
    row = RAW["devices"][name]
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), "names are lowercase kebab-case"
    assert row["kind"] in KINDS and row["vendor"]
    peaks = row.get("peak_tflops") or row.get("peak_gflops")
    assert peaks and set(peaks) <= {"fp32", "tf32", "fp16", "bf16", "fp8", "int8"}
    for field in ("mem_bw_gb_s", "idle_w", "peak_w"):
        assert field in row
    # every number present has a source, and every source names a year (its as-of date)
    numbers = [k for k in ("peak_tflops", "peak_gflops", "published_sparse_tflops", "mem_bw_gb_s", "mem_gib",
                           "mem_bytes", "idle_w", "peak_w", "price_usd_per_hour", "array") if k in row]
    sources = row["sources"]
    for key in numbers:
        assert key in sources, f"{name}: no source for {key}"
    for key, text in sources.items():
        assert YEAR.search(text), f"{name}: source for {key} has no year: {text!r}"
    if row["kind"].startswith("cloud") or row["kind"] == "tpu":
        assert row.get("region"), f"{name}: cloud parts say where they run"
    d = lk.device(name)
    assert d.sources == sources and d.notes == row.get("notes", "")


@pytest.mark.parametrize("name", NAMES)
def test_loader_converts_units_exactly(name):
    """TOML human units -> the dataclass's SI units (FLOP/s, bytes/s, bytes)."""
    row, d = RAW["devices"][name], lk.device(name)
    scale, table = (1e12, row["peak_tflops"]) if "peak_tflops" in row else (1e9, row["peak_gflops"])
    assert dict(d.peak_flops) == {k: v * scale for k, v in table.items()}
    assert d.mem_bw_bytes_per_s == row["mem_bw_gb_s"] * 1e9
    assert d.mem_bytes == (row["mem_gib"] * 2**30 if "mem_gib" in row else row["mem_bytes"])
    assert (d.idle_w, d.peak_w) == (row["idle_w"], row["peak_w"])
    assert d.price_usd_per_hour == row.get("price_usd_per_hour")
    kind_defaults = RAW["kinds"][row["kind"]]
    for f in ("eff_compute", "eff_mem", "overhead_s"):
        assert getattr(d, f) == row.get(f, kind_defaults[f])


def test_every_kind_has_defaults_with_a_reason():
    for kind in KINDS:
        k = RAW["kinds"][kind]
        assert 0 < k["eff_compute"] <= 1 and 0 < k["eff_mem"] <= 1 and k["overhead_s"] >= 0
        assert len(k["reason"]) > 20


def test_sparse_marketing_figures_are_stored_dense():
    """Where a vendor publishes sparse figures, the stored peak is at most half of them, with a note."""
    with_sparse = [n for n in NAMES if "published_sparse_tflops" in RAW["devices"][n]]
    for name in ["h100-sxm", "h200", "a100-sxm", "l4", "l40s", "jetson-orin-nano", "jetson-orin-nx",
                 "jetson-agx-orin"]:
        assert name in with_sparse, f"{name}: NVIDIA publishes sparse figures; record them"
    for name in with_sparse:
        d, sparse = lk.device(name), RAW["devices"][name]["published_sparse_tflops"]
        for dtype, tflops in sparse.items():
            assert d.peak(dtype) <= tflops * 1e12 / 2 * (1 + 1e-9), (name, dtype)
        assert "sparse" in d.notes.lower() or "sparsity" in d.notes.lower(), name
    # the Orin Nano's "67 TOPS" is sparse: stored at half
    assert lk.device("jetson-orin-nano").peak("int8") == pytest.approx(67e12 / 2)


def test_unit_sanity_against_published_and_derived_figures():
    h100, h200 = lk.device("h100-sxm"), lk.device("h200")
    assert 900e12 <= h100.peak("bf16") <= 1000e12            # ~989 TFLOP/s dense
    assert h200.mem_bw_bytes_per_s > h100.mem_bw_bytes_per_s and h200.mem_bytes > h100.mem_bytes
    assert lk.device("a100-sxm").peak("bf16") < h100.peak("bf16")
    assert lk.device("t4").peak("fp16") == 65e12
    # TPU v4: 2 TensorCores x 4 MXUs x 128x128 MACs x 2 FLOP x 1050 MHz (Jouppi et al., ISCA 2023)
    assert lk.device("tpu-v4").peak("bf16") == pytest.approx(2 * 4 * 128 * 128 * 2 * 1.05e9, rel=0.01)
    # c7i.4xlarge: 8 cores x 3.2 GHz x 64 fp32 FLOP/cycle (2 AVX-512 FMA ports x 16 lanes x 2)
    assert lk.device("c7i-4xlarge").peak("fp32") == pytest.approx(8 * 3.2e9 * 64, rel=1e-3)
    # Orin Nano (Super): 1024 CUDA cores x 2 FLOP x 1.02 GHz
    assert lk.device("jetson-orin-nano").peak("fp32") == pytest.approx(1024 * 2 * 1.02e9, rel=1e-2)
    # Raspberry Pi 5: 4 cores x 2.4 GHz x 16 fp32 FLOP/cycle; LPDDR4X-4267 x 32 bit
    pi = lk.device("raspberry-pi-5")
    assert pi.peak("fp32") == pytest.approx(4 * 2.4e9 * 16)
    assert pi.mem_bw_bytes_per_s == pytest.approx(4267e6 * 4, rel=1e-3)
    # power and bandwidth in sane ranges per kind (catches W vs mW, GB vs MB slips)
    for name in NAMES:
        d = lk.device(name)
        ridge = max(d.peak_flops.values()) / d.mem_bw_bytes_per_s   # FLOP per byte at the roofline knee
        assert 0.1 < ridge < 20000, (name, ridge)
        assert d.peak_w <= 1000 and (d.kind != "mcu" or d.peak_w < 2), name
    assert lk.device("stm32h7").mem_bytes < 2**21 < lk.device("jetson-orin-nano").mem_bytes


def test_systolic_arrays_match_published_mxu_sizes():
    assert lk.device("tpu-v4").array == (128, 128)
    assert lk.device("tpu-v5e").array == (128, 128)
    assert lk.device("tpu-v6e").array == (256, 256)
    coral = lk.device("coral-edge-tpu")
    assert coral.array == (64, 64) and coral.dtypes == ("int8",)
    assert lk.device("h100-sxm").array is None


# ------------------------------------------------------------------------------------------- lookup and API

def test_names_are_case_and_underscore_tolerant_and_aliases_work():
    assert lk.device("H100_SXM") is lk.device("h100-sxm")
    assert lk.device("  Tpu V5E ").name == "tpu-v5e"
    assert lk.device("h100").name == "h100-sxm"
    d = lk.device("l4")
    assert lk.device(d) is d


@pytest.mark.parametrize("typo, expected", [("tpu-v5", "tpu-v5e"), ("jetson-nano", "jetson-orin-nano"),
                                            ("raspberry-pi5", "raspberry-pi-5"), ("h10-sxm", "h100-sxm")])
def test_unknown_device_suggests_near_matches(typo, expected):
    with pytest.raises(ValueError, match="unknown device") as err:
        lk.device(typo)
    assert "Did you mean" in str(err.value) and repr(expected) in str(err.value)


def test_devices_table_in_human_units():
    t = lk.devices()
    assert list(t.index) == list(RAW["devices"]) and t.index.is_unique
    assert t.loc["h100-sxm", "bf16_tflops"] == 989.5 and t.loc["h100-sxm", "int8_tops"] == 1979
    assert t.loc["h100-sxm", "mem_gib"] == 80 and t.loc["h100-sxm", "mem_bw_gb_s"] == 3350
    assert math.isnan(t.loc["tpu-v4", "fp32_tflops"]) and t.loc["tpu-v6e", "array"] == (256, 256)
    for col in ("kind", "vendor", "fp32_tflops", "int8_tops", "idle_w", "peak_w", "price_usd_per_hour", "region"):
        assert col in t.columns
    edge = lk.devices(kind="edge-gpu")
    assert set(edge.index) == {"jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "apple-m4", "apple-m1-max",
                               "apple-m3-ultra"}
    with pytest.raises(ValueError, match="cloud-gpu"):
        lk.devices(kind="cloud-gpus")


def test_devices_does_not_calibrate_local(tmp_path):
    # Listing the catalog must never start a calibration: no micro-benchmark runs, no cache file appears.
    code = ("import sys, labkit as lk; lk.devices(); lk.device('h100'); lk.links(); "
            "print('labkit.calibration.microbench' in sys.modules)")
    env = {**os.environ, "LABKIT_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []


def test_peak_by_dtype():
    tpu = lk.device("tpu-v5e")
    assert tpu.peak("bfloat16") == tpu.peak("bf16") == 197e12
    with pytest.raises(ValueError, match="supports bf16, int8"):
        tpu.peak("fp32")
    with pytest.raises(ValueError, match="unknown dtype"):
        tpu.peak("fp64")


# ---------------------------------------------------------------------------------------- custom, validated

def test_custom_device_normalises_and_freezes():
    d = toy(peak_flops={"float16": 2e12}, array=[8, 16])
    assert dict(d.peak_flops) == {"fp16": 2e12} and d.array == (8, 16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.idle_w = 0
    with pytest.raises(TypeError):
        d.peak_flops["fp32"] = 1.0


@pytest.mark.parametrize("field, value, says", [
    ("mem_bw_bytes_per_s", 0, "mem_bw_bytes_per_s"), ("mem_bw_bytes_per_s", -1e9, "mem_bw_bytes_per_s"),
    ("mem_bytes", 0, "mem_bytes"), ("idle_w", -1, "idle_w"), ("peak_w", -5, "peak_w"),
    ("peak_w", 1.0, "peak_w"),  # below idle_w = 5
    ("price_usd_per_hour", -0.1, "price"), ("kind", "gpu", "cloud-gpu"), ("kind", "edge_gpu", "edge-gpu"),
    ("peak_flops", {"fp64": 1e12}, "fp32"), ("peak_flops", {"fp32": 0}, "peak_flops"),
    ("peak_flops", {"fp32": float("nan")}, "peak_flops"), ("peak_flops", {}, "at least one"),
    ("array", (128,), "rows, cols"), ("array", (0, 128), "rows, cols"), ("eff_compute", 1.5, "(0, 1]"),
    ("eff_mem", 0, "(0, 1]"), ("overhead_s", -1e-6, "overhead_s"), ("name", "", "name"),
])
def test_bad_device_values_raise_saying_what_is_allowed(field, value, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        toy(**{field: value})


# ------------------------------------------------------------------------------------------------------ links

def test_links_are_complete_sourced_and_ordered():
    for name in ("3g", "lte", "5g", "wifi", "ethernet", "datacenter"):
        row, k = RAW_LINKS["links"][name], lk.link(name)
        for key in ("uplink_bps", "downlink_bps", "rtt_s", "egress_usd_per_gb"):
            assert k.sources[key] and YEAR.search(k.sources[key]) and getattr(k, key) == row[key]
        assert "power_model" in k.sources or "energy_j_per_bit" in k.sources
        assert all(YEAR.search(text) for text in k.sources.values()), name
    up = [lk.link(n).uplink_bps for n in ("3g", "lte", "wifi", "ethernet", "datacenter")]
    assert up == sorted(up) and lk.link("5g").uplink_bps > lk.link("lte").uplink_bps
    # the uplinks used by Neurosurgeon / DADS
    assert [lk.link(n).uplink_bps for n in ("3g", "lte", "wifi")] == [1.1e6, 5.85e6, 18.88e6]


@pytest.mark.parametrize("name", ["3g", "lte", "wifi"])
def test_link_energy_per_bit_follows_the_huang_power_model(name):
    """P(mW) = alpha_u * rate(Mbit/s) + beta while sending; J/bit = P / rate."""
    pm, rate_bps = RAW_LINKS["links"][name]["power_model"], RAW_LINKS["links"][name]["uplink_bps"]
    watts = (pm["alpha_u_mw_per_mbps"] * rate_bps / 1e6 + pm["beta_mw"]) / 1e3
    assert lk.link(name).energy_j_per_bit == pytest.approx(watts / rate_bps, rel=1e-12)


def test_link_energy_ordering_and_transfer_time():
    # Huang et al.: per bit, LTE costs more than Wi-Fi and 3G more than both at these rates
    e = {n: lk.link(n).energy_j_per_bit for n in ("3g", "lte", "wifi")}
    assert e["3g"] > e["lte"] > e["wifi"]
    lte = lk.link("LTE")
    assert lte.upload_s(1e6) == pytest.approx(8e6 / 5.85e6) and lte.download_s(1e6) == pytest.approx(8e6 / 13e6)
    assert lk.link("4g") is lte and lk.link(lte) is lte
    with pytest.raises(ValueError, match="'wifi'"):
        lk.link("wfi")
    t = lk.links()
    assert t.loc["lte", "uplink_mbps"] == 5.85 and t.loc["datacenter", "egress_usd_per_gb"] == 0


@pytest.mark.parametrize("field, value", [("uplink_bps", 0), ("downlink_bps", -1.0), ("rtt_s", -0.01),
                                          ("energy_j_per_bit", -1e-9), ("egress_usd_per_gb", -0.09),
                                          ("uplink_bps", float("inf"))])
def test_bad_link_values_raise(field, value):
    base = dict(name="mine", uplink_bps=1e6, downlink_bps=1e7, rtt_s=0.05, energy_j_per_bit=1e-7,
                egress_usd_per_gb=0.09)
    lk.Link(**base)                                        # the baseline is valid
    with pytest.raises(ValueError, match=field):
        lk.Link(**{**base, field: value})


# --------------------------------------------------------------------------------- datasets folder and README

def test_readme_checksums_match_every_data_file():
    readme = (DATASETS / "README.md").read_text()
    listed = dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", readme, flags=re.M))
    files = {p.relative_to(DATASETS).as_posix(): p for p in DATASETS.rglob("*")
             if p.is_file() and p.name != "README.md" and not p.name.startswith(".")}
    assert set(listed) == set(files), "datasets/README.md must list every data file (see checksum_table())"
    for rel, path in files.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[rel], f"{rel} changed: update README.md"


def test_labkit_datasets_env_var_overrides_the_folder(tmp_path, monkeypatch):
    for name in ("devices.toml", "links.toml", "carbon.toml"):
        shutil.copy(DATASETS / name, tmp_path / name)
    text = (tmp_path / "devices.toml").read_text().replace("idle_w = 70\npeak_w = 700\nprice_usd_per_hour = 12.29",
                                                           "idle_w = 70\npeak_w = 650\nprice_usd_per_hour = 12.29")
    (tmp_path / "devices.toml").write_text(text)
    monkeypatch.setenv("LABKIT_DATASETS", str(tmp_path))
    assert lk.device("h100-sxm").peak_w == 650
    monkeypatch.setenv("LABKIT_DATASETS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="LABKIT_DATASETS"):
        lk.device("h100-sxm")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("LABKIT_DATASETS", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="devices.toml"):
        lk.devices()
    monkeypatch.delenv("LABKIT_DATASETS")
    assert lk.device("h100-sxm").peak_w == 700
