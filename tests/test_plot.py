"""lk.plot.roofline draws one roof per device and one point per layer with FLOPs (lab 00)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import labkit as lk  # noqa: E402


def device(name, peak, bw, **kw):
    base = dict(name=name, kind="cloud-gpu", vendor="test", peak_flops={"fp32": peak}, mem_bw_bytes_per_s=bw,
                mem_bytes=16e9, idle_w=10.0, peak_w=100.0, region="fr", eff_compute=0.5, eff_mem=0.8)
    base.update(kw)
    return lk.Device(**base)


def toy_profile():
    def layer(name, op_class, macs, flops, w, i, o):
        return lk.Layer(name, name, op_class, ("input",), macs, flops, w, w, i, o)

    layers = (
        layer("conv", "conv", 10**6, 2 * 10**6, 1000, 3000, 8000),
        layer("relu", "elementwise", 0, 8000, 0, 8000, 8000),
        layer("view", "memory", 0, 0, 0, 8000, 8000),        # no FLOPs: not on a log plot
        layer("fc", "matmul", 80_000, 160_000, 80_000, 8000, 10),
    )
    return lk.Profile("toy", "torch", 1, "fp32", layers, params=81_000, input_elems=3000, output_elems=10)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def n_points(ax):
    return sum(len(c.get_offsets()) for c in ax.collections)


def test_one_device(tmp_path):
    d = device("toy-gpu", 1e12, 1e11)
    ax = lk.plot.roofline(toy_profile(), d)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.lines) == 2                  # the roof and its ridge marker
    assert n_points(ax) == 3                   # conv, relu, fc; the view has no FLOPs
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "toy-gpu" in ax.get_title() and "fp32" in ax.get_title()
    assert "FLOP/byte" in ax.get_xlabel() and "FLOP/s" in ax.get_ylabel()
    # the ridge marker sits where the two roofs meet: (0.5e12 / 0.8e11, 0.5e12)
    ridge = ax.lines[1]
    assert ridge.get_xdata()[0] == pytest.approx(6.25)
    assert ridge.get_ydata()[0] == pytest.approx(5e11)
    # every layer sits on or under its roof
    roof = ax.lines[0]
    for coll in ax.collections:
        for x, y in coll.get_offsets():
            assert y <= min(5e11, x * 8e10) * (1 + 1e-9)
    assert roof.get_ydata().max() == pytest.approx(5e11)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"conv", "elementwise", "matmul"} <= set(legend)
    out = tmp_path / "roofline.png"
    ax.figure.savefig(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_several_devices_on_given_axes():
    devices = [device("edge", 1e11, 1e10, kind="edge-gpu"), device("laptop", 5e11, 5e10),
               device("cloud", 1e14, 2e12)]
    _, ax = plt.subplots()
    out = lk.plot.roofline(toy_profile(), devices, ax=ax)
    assert out is ax
    assert len(ax.lines) == 6                  # roof + ridge marker per device
    assert n_points(ax) == 3 * 3
    # op classes appear once each in the legend, devices once each
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    roofs = [text for text in legend if " roof " in text]
    assert sorted(text for text in legend if text not in roofs) == ["conv", "elementwise", "matmul"]
    assert [text.split()[0] for text in roofs] == ["edge", "laptop", "cloud"]


def test_no_devices_raises():
    with pytest.raises(ValueError, match="at least one device"):
        lk.plot.roofline(toy_profile(), [])


def test_catalog_names_and_a_profiled_model():
    import torch

    p = lk.profile(torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU()), torch.zeros(4, 64))
    ax = lk.plot.roofline(p, ["raspberry-pi-5", "jetson-orin-nano", "h100-sxm"], dtype="fp32")
    with_flops = sum(1 for lay in p.layers if lay.flops > 0)
    assert len(ax.lines) == 6 and n_points(ax) == 3 * with_flops
    assert "raspberry-pi-5 vs jetson-orin-nano vs h100-sxm" in ax.get_title()


def test_blocks_group_layers_by_their_block_and_keep_sandwiched_adds():
    from labkit.plot.layers import blocks

    names = ["stem.0", "stem.1", "layer1.0.conv", "add", "layer1.0.relu", "add_1", "layer2.conv", "pool", "fc"]
    # add sits inside layer1; add_1 sits between layer1 and layer2, so it stands alone, as do pool and fc
    assert blocks(names) == [("stem.0", 0, 1), ("stem.1", 1, 2), ("layer1.0", 2, 5), ("add_1", 5, 6),
                             ("layer2.conv", 6, 7), ("pool", 7, 8), ("fc", 8, 9)]


def test_layer_work_draws_one_bar_and_one_byte_tick_per_layer_with_flops():
    p = toy_profile()
    ax = lk.plot.layer_work(p)
    work = [lay for lay in p.layers if lay.flops > 0]                 # conv, relu, fc: the view does no FLOPs
    assert [b.get_height() for b in ax.patches if b.get_height() > 0][:3] == [lay.flops for lay in work]
    ticks = ax.lines[0]
    # 4 bytes (fp32) x (weight + input + output elements), by hand
    assert list(ticks.get_ydata()) == [4 * 12_000, 4 * 16_000, 4 * 88_010]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv", "relu", "fc"]
    assert all(t.get_fontsize() >= 8 for t in ax.get_xticklabels())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["conv FLOPs", "elementwise FLOPs", "matmul FLOPs", "bytes moved"]


def test_layer_work_labels_few_ticks_on_a_long_model():
    names = [f"block{i}.op" for i in range(60)]
    layers = tuple(lk.Layer(n, n, "conv", ("input",), 10, 20, 4, 4, 8, 8) for n in names)
    p = lk.Profile("long", "torch", 1, "fp32", layers, params=60, input_elems=2, output_elems=2)
    ax = lk.plot.layer_work(p)
    assert len(ax.get_xticklabels()) <= 21 and "every" in ax.get_xlabel()
