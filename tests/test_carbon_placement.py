"""lk.placement: devices x batches x regions by carbon, cost and latency (lab 12).

Oracles: grams = energy x PUE x grid intensity / 3.6e6 recomputed here; the Pareto front by brute force over
all pairs; the pick by a plain min over the feasible rows.
"""

import pytest
import torch

import labkit as lk

DEVICES, REGIONS = ["l4", "t4", "a100-sxm", "c7i-4xlarge"], ["eurohpc-lumi", "eurohpc-leonardo", "fr", "de", "pl"]


@pytest.fixture(scope="module")
def prof():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    return lk.profile(net, torch.zeros(1, 256))


def dominated(p, q):
    return all(a <= b for a, b in zip(q, p)) and q != p


def test_rows_front_and_pick_match_the_oracles(prof):
    plan = lk.placement(prof, DEVICES, REGIONS, latency_bound_s=3e-5, batches=(1, 4, 32))
    t = plan.to_frame()
    assert len(t) == plan.n_options == len(DEVICES) * len(REGIONS) * 3
    for _, r in t.iterrows():
        grams = r["energy_j_per_request"] * lk.carbon.pue(r["device"]) * lk.carbon.intensity(r["region"]) / 3.6e6
        assert r["carbon_g_per_1m"] == pytest.approx(grams * 1e6)
        assert r["feasible"] == (r["latency_s"] <= 3e-5)
    feas = t[t["feasible"]]
    pts = [tuple(x) for x in feas[["latency_s", "carbon_g_per_1m", "cost_usd_per_1m"]].itertuples(index=False)]
    brute = [not any(dominated(p, q) for q in pts) for p in pts]
    assert list(feas["pareto"]) == brute
    assert not t[~t["feasible"]]["pareto"].any()
    assert plan.best["carbon_g_per_1m"] == feas["carbon_g_per_1m"].min()
    assert 0 < plan.n_feasible < plan.n_options              # the bound bites
    assert plan.best["region"] == "fr"                       # France's yearly grid is the cleanest listed
    assert "Pareto" in repr(plan)


def test_round_trips_trade_carbon_for_latency(prof):
    rtt = {"fr": 0.030, "eurohpc-lumi": 0.002}
    plan = lk.placement(prof, ["l4"], ["eurohpc-lumi", "fr"], latency_bound_s=0.01, rtt_s=rtt)
    t = plan.to_frame().set_index("region")
    base = lk.estimate(prof, "l4", "fp32", 1).latency_s
    assert t.loc["fr", "latency_s"] == pytest.approx(base + 0.030)
    assert not t.loc["fr", "feasible"] and plan.best["region"] == "eurohpc-lumi"
    loose = lk.placement(prof, ["l4"], ["eurohpc-lumi", "fr"], latency_bound_s=0.1, rtt_s=rtt)
    assert loose.best["region"] == "fr" and loose.n_pareto == 2


def test_pareto_mask_small_cases():
    from labkit.deploy.placement import pareto_mask

    assert pareto_mask([(1, 1), (1, 1)]) == [True, True]           # equal points do not dominate each other
    assert pareto_mask([(2, 2), (1, 1), (0, 3)]) == [False, True, True]
    assert pareto_mask([]) == []


def test_bad_input(prof):
    with pytest.raises(ValueError, match="Did you mean"):
        lk.placement(prof, ["l4"], ["frr"], latency_bound_s=1)
    with pytest.raises(ValueError, match="latency_bound_s"):
        lk.placement(prof, ["l4"], ["fr"], latency_bound_s=0)
    with pytest.raises(ValueError, match="rtt_s"):
        lk.placement(prof, ["l4"], ["fr"], latency_bound_s=1, rtt_s={"de": 0.01})
    with pytest.raises(ValueError, match="batch"):
        lk.placement(prof, ["l4"], ["fr"], latency_bound_s=1, batches=(0,))
    none = lk.placement(prof, ["l4"], ["fr"], latency_bound_s=1e-9)
    assert none.best is None and none.n_feasible == 0 and "none feasible" in repr(none)
