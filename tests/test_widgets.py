"""lk.widgets.partition_explorer (lab 06): the controls drive lk.partition, checked against lk.partition itself."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import labkit as lk  # noqa: E402


@pytest.fixture(scope="module")
def profile():
    return lk.profile(lk.zoo.build("resnet"), lk.zoo.example("resnet"))


def test_update_matches_partition_for_catalog_and_custom_links(profile):
    ex = lk.widgets.partition_explorer(profile, edge="stm32h7", cloud="l4", link="lte")
    assert ex.plan.link == "lte"
    plan = ex.update(link="3g")
    assert ex.values["uplink_mbps"] == pytest.approx(1.1) and ex.values["rtt_ms"] == pytest.approx(150)
    assert plan.latency_s == lk.partition(profile, edge="stm32h7", cloud="l4", link="3g").latency_s
    plan = ex.update(uplink_mbps=40.0, rtt_ms=5.0, objective="energy")
    custom = dataclasses.replace(lk.link("3g"), name="3g*", uplink_bps=40e6, rtt_s=5e-3)
    direct = lk.partition(profile, edge="stm32h7", cloud="l4", link=custom, objective="energy")
    assert plan.placement == direct.placement and plan.edge_energy_j == direct.edge_energy_j
    assert ex.link().uplink_bps == 40e6


def test_more_uplink_never_slower(profile):
    ex = lk.widgets.partition_explorer(profile, edge="stm32h7", cloud="l4", link="3g", dtype="int8")
    latencies = [ex.update(uplink_mbps=mbps, rtt_ms=10).latency_s for mbps in (0.1, 0.5, 2, 10, 100, 1000)]
    assert all(b <= a for a, b in zip(latencies, latencies[1:]))
    assert latencies[-1] < latencies[0]


def test_the_widget_controls_drive_the_plan_without_a_browser(profile):
    ex = lk.widgets.partition_explorer(profile, edge="stm32h7", cloud="l4", link="lte")
    box = ex.widget
    assert box.children
    ex._controls["link"].value = "wifi"
    assert ex.plan.link == "wifi" and ex._controls["rtt_ms"].value == pytest.approx(20)
    ex._controls["compress"].value = "int8"
    assert ex.plan.compress == "int8"
    assert "optimal" in ex._html.value
    ex._controls["cloud"].value = "tpu-v4"          # no fp32 on a TPU: shown, not raised
    assert ex.error and "tpu-v4" in ex.error and ex.values["cloud"] == "l4"


def test_bad_values_raise_and_change_nothing(profile):
    ex = lk.widgets.partition_explorer(profile, edge="raspberry-pi-5", cloud="l4")
    before = dict(ex.values)
    with pytest.raises(ValueError, match="uplink_mbps"):
        ex.update(uplink_mbps=-5)
    with pytest.raises(ValueError, match="rtt_ms"):
        ex.update(rtt_ms=1e6)
    with pytest.raises(ValueError, match="objective"):
        ex.update(objective="speed")
    with pytest.raises(ValueError, match="bandwidth|uplink_mbps"):
        ex.update(bandwidth=3)
    with pytest.raises(ValueError, match="link"):
        ex.update(link="4.5g")
    assert ex.values == before


def test_figure_has_the_plan_and_its_baselines(profile):
    ex = lk.widgets.partition_explorer(profile, edge="stm32h7", cloud="l4", link="wifi")
    fig = ex.figure()
    assert len(fig.axes[0].get_yticklabels()) == 3
    plt.close("all")
