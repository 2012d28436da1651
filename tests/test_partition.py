"""lk.partition (lab 06): the optimum equals brute force over every valid placement, with an evaluator
written here from the issue's words (not labkit's); invariants; objectives; compression; bad input."""

import dataclasses
import itertools
import math
import random

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import labkit as lk  # noqa: E402
from labkit.partition import cut as partition_cut  # noqa: E402

BYTES = {"fp32": 4, "fp16": 2, "int8": 1}      # written out here, not read from labkit
FIELD = {"latency": "latency_s", "energy": "edge_energy_j", "cost": "cost_usd"}


# ----------------------------------------------------------------------------------- the oracle

def brute_force(profile, edge, cloud, link, dtype="fp32", compress=None, batch=None):
    """Every valid placement -> its totals, by the issue's definition, in plain loops."""
    edge, cloud, link = lk.device(edge), lk.device(cloud), lk.link(link)
    est_e, est_c = lk.estimate(profile, edge, dtype, batch), lk.estimate(profile, cloud, dtype, batch)
    t_e = {lay.name: lay.latency_s for lay in est_e.layers}
    t_c = {lay.name: lay.latency_s for lay in est_c.layers}
    j_e = {lay.name: lay.energy_j for lay in est_e.layers}
    scale = (batch or profile.batch) / profile.batch
    elems = {"input": profile.input_elems * scale, **{lay.name: lay.output_elems * scale for lay in profile.layers}}
    read = {src for lay in profile.layers for src in lay.inputs}
    outputs = [lay.name for lay in profile.layers if lay.name not in read]
    names = [lay.name for lay in profile.layers]
    out = {}
    for sides in itertools.product(("edge", "cloud"), repeat=len(names)):
        place = dict(zip(names, sides))
        if any(place[lay.name] == "edge" and src != "input" and place[src] == "cloud"
               for lay in profile.layers for src in lay.inputs):
            continue                                   # data would go back down: not valid
        sent = {src for lay in profile.layers if place[lay.name] == "cloud" for src in lay.inputs
                if src == "input" or place[src] == "edge"}
        up_b = sum(int(elems[src] * BYTES[compress or dtype]) for src in sent)
        down_b = sum(int(elems[o] * BYTES[dtype]) for o in outputs if place[o] == "cloud")
        edge_s = sum(t_e[n] for n in names if place[n] == "edge")
        cloud_s = sum(t_c[n] for n in names if place[n] == "cloud")
        used = "cloud" in sides
        wait = (8 * up_b / link.uplink_bps + 8 * down_b / link.downlink_bps + cloud_s
                + (link.rtt_s if used else 0.0))
        energy = (sum(j_e[n] for n in names if place[n] == "edge") + link.energy_j_per_bit * 8 * up_b
                  + edge.idle_w * wait)
        cost = ((cloud.price_usd_per_hour or 0) * cloud_s + (edge.price_usd_per_hour or 0) * edge_s) / 3600 \
            + link.egress_usd_per_gb * down_b / 1e9
        out[sides] = {"latency_s": edge_s + wait, "edge_energy_j": energy, "cost_usd": cost,
                      "upload_bytes": up_b, "download_bytes": down_b}
    return names, out


def check_optimal(profile, edge, cloud, link, objective="latency", **kw):
    plan = lk.partition(profile, edge=edge, cloud=cloud, link=link, objective=objective, **kw)
    names, table = brute_force(profile, edge, cloud, link, kw.get("dtype", "fp32"), kw.get("compress"),
                               kw.get("batch"))
    key = FIELD[objective]
    best = min(row[key] for row in table.values())
    assert getattr(plan, key) == pytest.approx(best, rel=1e-9, abs=1e-15)
    mine = table[tuple(plan.placement[n] for n in names)]          # the plan's placement is valid...
    for field, value in mine.items():                               # ...and costed as the oracle costs it
        assert getattr(plan, field) == pytest.approx(value, rel=1e-9, abs=1e-15), field
    n_edge = sum(1 for n in names if plan.placement[n] == "edge")
    assert plan.all_edge.latency_s == pytest.approx(table[("edge",) * len(names)]["latency_s"], rel=1e-9)
    assert plan.all_cloud.latency_s == pytest.approx(table[("cloud",) * len(names)]["latency_s"], rel=1e-9)
    return plan, n_edge


# ----------------------------------------------------------------------------------- random models

ELEMS = (8, 1000, 60_000, 500_000)


@st.composite
def models(draw, chain=False, max_layers=10):
    n = draw(st.integers(1, max_layers))
    layers = []
    for v in range(n):
        earlier = ["input"] + [f"l{i}" for i in range(v)]
        if chain:
            inputs = (earlier[-1],)
        else:
            k = draw(st.integers(1, min(3, len(earlier))))
            inputs = tuple(draw(st.lists(st.sampled_from(earlier), min_size=k, max_size=k, unique=True)))
        out = draw(st.sampled_from(ELEMS))
        macs = draw(st.sampled_from((0, 10**4, 10**6, 10**8, 10**9)))
        w = draw(st.sampled_from((0, 1000, 100_000)))
        layers.append(lk.Layer(f"l{v}", "linear", "matmul", inputs, macs, 2 * macs, w, w, out * len(inputs), out))
    inp = draw(st.sampled_from(ELEMS))
    return lk.Profile("rand", "torch", 1, "fp32", tuple(layers), params=0, input_elems=inp,
                      output_elems=layers[-1].output_elems)


@st.composite
def links(draw):
    name = draw(st.sampled_from(("3g", "lte", "wifi", "5g", "ethernet", "custom")))
    if name != "custom":
        return lk.link(name)
    up = 10 ** draw(st.floats(5, 10))
    return lk.Link("custom", uplink_bps=up, downlink_bps=up * draw(st.floats(0.5, 10)),
                   rtt_s=draw(st.floats(0, 0.3)), energy_j_per_bit=draw(st.floats(0, 1e-6)),
                   egress_usd_per_gb=draw(st.floats(0, 0.2)))


EDGES = st.sampled_from(("raspberry-pi-5", "jetson-orin-nano", "jetson-agx-orin"))
CLOUDS = st.sampled_from(("l4", "h100-sxm", "c7i-4xlarge"))
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(models(chain=True, max_layers=12), EDGES, CLOUDS, links(), st.sampled_from(tuple(FIELD)))
def test_chain_optimum_equals_brute_force(profile, edge, cloud, link, objective):
    plan, n_edge = check_optimal(profile, edge, cloud, link, objective)
    assert plan.method == "scan"
    assert plan.split_after == ("input" if n_edge == 0 else f"l{n_edge - 1}")


@SLOW
@given(models(max_layers=10), EDGES, CLOUDS, links(), st.sampled_from(tuple(FIELD)))
def test_dag_optimum_equals_brute_force(profile, edge, cloud, link, objective):
    check_optimal(profile, edge, cloud, link, objective)


@settings(max_examples=10, deadline=None)
@given(models(max_layers=12), links())
def test_twelve_layer_dags_and_compression(profile, link):
    plan, _ = check_optimal(profile, "jetson-orin-nano", "h100-sxm", link, compress="int8")
    plain = lk.partition(profile, edge="jetson-orin-nano", cloud="h100-sxm", link=link)
    assert plan.latency_s <= plain.latency_s * (1 + 1e-12)     # compressing can only help latency


@SLOW
@given(models(max_layers=8), EDGES, CLOUDS, links(), st.sampled_from(tuple(FIELD)), st.floats(1.01, 100))
def test_optimum_beats_baselines_and_more_bandwidth_never_hurts(profile, edge, cloud, link, objective, factor):
    plan = lk.partition(profile, edge=edge, cloud=cloud, link=link, objective=objective)
    key = FIELD[objective]
    assert getattr(plan, key) <= min(getattr(plan.all_edge, key), getattr(plan.all_cloud, key))
    faster = dataclasses.replace(link, uplink_bps=link.uplink_bps * factor, downlink_bps=link.downlink_bps * factor)
    plan2 = lk.partition(profile, edge=edge, cloud=cloud, link=faster)
    slow = lk.partition(profile, edge=edge, cloud=cloud, link=link)
    assert plan2.latency_s <= slow.latency_s * (1 + 1e-12)


# ----------------------------------------------------------------------------------- the solvers

def _abstract_cost(cloud_set, edge_w, cloud_w, up_w, prods):
    """The solvers' objective, by definition: inf if data goes back down, else node costs + each sent tensor once."""
    n = len(edge_w)
    if any(p >= 0 and p in cloud_set and v not in cloud_set for v in range(n) for p in prods[v]):
        return math.inf
    sent = {p for v in cloud_set for p in prods[v] if p == -1 or p not in cloud_set}
    return sum(cloud_w[v] if v in cloud_set else edge_w[v] for v in range(n)) + sum(up_w[p + 1] for p in sent)


def test_min_cut_matches_networkx_and_brute_force_on_random_problems():
    rng = random.Random(7)
    for trial in range(300):
        n = rng.randint(1, 9) if trial < 250 else rng.randint(30, 60)
        prods = [tuple(sorted({rng.randrange(-1, v) for _ in range(rng.randint(1, 3))})) for v in range(n)]
        edge_w = [rng.random() * rng.choice((0, 1, 1e-3)) for _ in range(n)]
        cloud_w = [rng.random() * rng.choice((0, 1, 1e-3)) for _ in range(n)]
        up_w = [rng.random() * 10 ** rng.uniform(-6, 2) * rng.choice((0, 1, 1)) for _ in range(n + 1)]
        problem = (edge_w, cloud_w, up_w, prods)
        got = {flow: _abstract_cost(partition_cut.min_cut(*problem, flow=flow), *problem)
               for flow in ("scaled-dinic", "push-relabel", "boykov_kolmogorov")}
        if n <= 9:
            best = min(_abstract_cost({v for v in range(n) if mask >> v & 1}, *problem) for mask in range(2**n))
        else:
            # networkx as the independent oracle (not preflow_push: with float capacities its minimum_cut
            # can return a partition that is not minimal, networkx issue #4972; seen here on one graph)
            best = got["boykov_kolmogorov"]
        for flow, value in got.items():
            assert value == pytest.approx(best, rel=1e-9, abs=1e-12), (trial, flow)


def test_chain_scan_and_min_cut_agree_on_a_torch_mlp():
    p = lk.profile(lk.zoo.build("mlp"), lk.zoo.example("mlp"))
    for link in ("3g", "wifi", "ethernet"):
        scan = lk.partition(p, edge="raspberry-pi-5", cloud="l4", link=link)
        cut = lk.partition(p, edge="raspberry-pi-5", cloud="l4", link=link, method="min-cut")
        assert (scan.method, cut.method) == ("scan", "min-cut")
        assert cut.latency_s == pytest.approx(scan.latency_s, rel=1e-12)


class Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1)
        self.c = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.a(x))
        y = y + self.c(torch.relu(self.b(y)))             # skip connection
        return self.head(y.mean(dim=(2, 3)))


class TwoBranch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 1)
        self.left, self.right = torch.nn.Conv2d(8, 4, 3, padding=1), torch.nn.Conv2d(8, 4, 1)
        self.head = torch.nn.Linear(8 * 16 * 16, 10)

    def forward(self, x):
        s = self.stem(x)
        return self.head(torch.cat([self.left(s), self.right(s)], dim=1).flatten(1))


@pytest.mark.parametrize("net", [Residual, TwoBranch])
@pytest.mark.parametrize("objective", list(FIELD))
def test_torch_dags_equal_brute_force(net, objective):
    torch.manual_seed(0)
    p = lk.profile(net().eval(), torch.zeros(1, 3, 16, 16))
    assert len(p.layers) <= 12
    for link in ("3g", "wifi", "ethernet"):
        plan, _ = check_optimal(p, "stm32h7", "l4", link, objective, dtype="int8")
        assert plan.method == "min-cut"


def test_a_tensor_read_by_several_cloud_layers_is_sent_once():
    fan = (lk.Layer("a", "linear", "matmul", ("input",), 0, 0, 0, 0, 10, 50_000),
           *(lk.Layer(f"b{i}", "linear", "matmul", ("a",), 10**9, 2 * 10**9, 0, 0, 50_000, 10) for i in range(3)),
           lk.Layer("sum", "add", "elementwise", ("b0", "b1", "b2"), 0, 20, 0, 0, 30, 10))
    p = lk.Profile("fan", "torch", 1, "fp32", fan, params=0, input_elems=10**6, output_elems=10)
    plan, _ = check_optimal(p, "raspberry-pi-5", "h100-sxm", "wifi")
    assert plan.edge_layers == ("a",)                  # big input, small "a": send a's output, once
    assert plan.upload_bytes == 50_000 * 4
    assert plan.to_frame().loc["a", "uploaded_bytes"] == 50_000 * 4


def test_objectives_pick_different_splits_and_compression_shrinks_the_upload():
    p = lk.profile(lk.zoo.build("resnet"), lk.zoo.example("resnet"))
    kw = dict(edge="stm32h7", cloud="h100-sxm", link="3g")       # a slow MCU on a slow, power-hungry radio
    lat, energy = lk.partition(p, **kw), lk.partition(p, objective="energy", **kw)
    assert lat.placement != energy.placement
    assert energy.edge_energy_j < lat.edge_energy_j and lat.latency_s < energy.latency_s
    cost = lk.partition(p, objective="cost", **kw)
    assert cost.cost_usd == 0.0 and cost.cloud_layers == ()       # owned edge hardware costs nothing here
    assert lat.all_cloud.upload_bytes == p.input_elems * 4
    squeezed = lk.partition(p, compress="int8", **kw)
    assert squeezed.all_cloud.upload_bytes == p.input_elems * 1
    assert squeezed.latency_s < lat.latency_s


def test_batch_scales_the_tensors():
    p = lk.profile(lk.zoo.build("mlp"), lk.zoo.example("mlp"))
    one = lk.partition(p, edge="raspberry-pi-5", cloud="l4", link="lte")
    four = lk.partition(p, edge="raspberry-pi-5", cloud="l4", link="lte", batch=4)
    assert four.batch == 4 and four.all_cloud.upload_bytes == 4 * one.all_cloud.upload_bytes


def test_plan_is_a_frozen_readable_record_with_a_timeline():
    p = lk.profile(lk.zoo.build("resnet"), lk.zoo.example("resnet"))
    plan = lk.partition(p, edge="stm32h7", cloud="l4", link="wifi", dtype="int8")
    assert isinstance(plan, lk.Plan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.latency_s = 0
    text = repr(plan)
    assert "stm32h7" in text and "wifi" in text and "latency" in text and len(text) < 400
    assert set(plan.placement.values()) <= {"edge", "cloud"} and len(plan.placement) == len(p.layers)
    assert list(plan.compare().index) == ["plan", "all-edge", "all-cloud"]
    assert len(plan.to_frame()) == len(p.layers)
    segs = plan.timeline
    assert segs[-1].end_s == pytest.approx(plan.latency_s, rel=1e-12)
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(segs, segs[1:]))
    assert len(lk.plot.timeline(plan, baselines=True).get_yticklabels()) == 3
    plt.close("all")


def test_timeline_draws_one_bar_per_segment():
    from labkit.partition.plan import timeline_of as _timeline

    p = lk.profile(lk.zoo.build("resnet"), lk.zoo.example("resnet"))
    plans = [lk.partition(p, edge="stm32h7", cloud="l4", link=k, dtype="int8") for k in ("3g", "wifi")]
    ax = lk.plot.timeline(plans, baselines=True)
    expected = sum(len(pl.timeline) + len(_timeline(pl.all_edge)) + len(_timeline(pl.all_cloud)) for pl in plans)
    assert len(ax.collections) == expected and len(ax.get_yticklabels()) == 6
    with pytest.raises(ValueError, match="Plan"):
        lk.plot.timeline([])
    plt.close("all")


def test_timeline_draws_the_rtt_apart_from_the_transfers():
    """Issue 13: the upload and download bars are bytes / rate only; the RTT is its own two grey halves."""
    p = lk.profile(lk.zoo.build("resnet"), lk.zoo.example("resnet"))
    link = lk.link("lte")
    plan = lk.partition(p, edge="stm32h7", cloud="l4", link=link)
    assert plan.cloud_layers                                   # the plan uses the cloud, so it pays one RTT
    dur = {}
    for seg in plan.timeline:
        dur.setdefault(seg.lane, []).append(seg.end_s - seg.start_s)
    assert dur["rtt"] == pytest.approx([0.035, 0.035], rel=1e-12)          # LTE's 70 ms, half each way
    assert dur["uplink"] == pytest.approx([8 * plan.upload_bytes / 5.85e6], rel=1e-12)
    assert dur["downlink"] == pytest.approx([8 * plan.download_bytes / 13e6], rel=1e-12)
    lanes = [seg.lane for seg in plan.timeline]
    assert lanes.index("uplink") < lanes.index("rtt") < lanes.index("cloud") < len(lanes) - 1 - lanes[::-1].index("rtt")
    edge_only = lk.partition(p, edge="raspberry-pi-5", cloud="l4", link="3g")
    assert not edge_only.cloud_layers and [s.lane for s in edge_only.timeline] == ["edge"]   # no RTT drawn
    ax = lk.plot.timeline([plan, edge_only])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("round-trip" in t for t in legend) and not any("RTT/2" in t and "upload" in t for t in legend)
    assert [t.get_text() for t in ax.get_yticklabels()][1] == "3g: latency-optimal, all-edge"
    plt.close("all")


# ----------------------------------------------------------------------------------- bad input

def test_bad_input_is_explained():
    p = lk.profile(lk.zoo.build("mlp"), lk.zoo.example("mlp"))
    kw = dict(edge="raspberry-pi-5", cloud="l4", link="lte")
    with pytest.raises(ValueError, match="latency"):
        lk.partition(p, objective="latncy", **kw)
    with pytest.raises(ValueError, match="uplink_bps"):
        lk.Link("bad", uplink_bps=-1e6, downlink_bps=1e6, rtt_s=0.01, energy_j_per_bit=0, egress_usd_per_gb=0)
    with pytest.raises(ValueError, match="uplink_bps"):
        dataclasses.replace(lk.link("lte"), uplink_bps=0)
    tiny = lk.Device("tiny", "mcu", "x", {"fp32": 1e9}, 1e9, 1000, 0.1, 0.2)
    with pytest.raises(ValueError, match="edge device 'tiny' cannot run this model"):
        lk.partition(p, edge=tiny, cloud="l4", link="lte")
    with pytest.raises(ValueError, match="Profile"):
        lk.partition("mlp", **kw)
    with pytest.raises(ValueError, match="link"):
        lk.partition(p, edge="raspberry-pi-5", cloud="l4", link=5)
    with pytest.raises(ValueError, match="wider"):
        lk.partition(p, compress="fp32", dtype="fp16", **kw)
    with pytest.raises(ValueError, match="batch"):
        lk.partition(p, batch=0, **kw)
    with pytest.raises(ValueError, match="chain"):
        lk.partition(lk.profile(Residual(), torch.zeros(1, 3, 8, 8)), method="scan", **kw)
    with pytest.raises(ValueError, match="device"):
        lk.partition(p, edge="raspbery-pi-5", cloud="l4", link="lte")
    lay = lambda name, inputs: lk.Layer(name, "relu", "elementwise", inputs, 0, 1, 0, 0, 1, 1)  # noqa: E731
    later = lk.Profile("x", "torch", 1, "fp32", (lay("a", ("b",)), lay("b", ("input",))), 0, 1, 1)
    with pytest.raises(ValueError, match="topological"):
        lk.partition(later, **kw)
    unknown = lk.Profile("x", "torch", 1, "fp32", (lay("a", ("nope",)),), 0, 1, 1)
    with pytest.raises(ValueError, match="nope"):
        lk.partition(unknown, **kw)
