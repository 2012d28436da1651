"""lk.deploy.size_llm and lab 09's plots (lk.plot.kv_occupancy, lk.plot.ttft_tpot) against independent oracles:
every replica count simulated (brute force), the catalog's hourly price by hand, percentiles recomputed from the
per-request times, and the plotted lines read back."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import labkit as lk  # noqa: E402

MODEL = "llama-3.1-8b"
TTFT_SLO, TPOT_SLO = 0.3, 0.03


@pytest.fixture(scope="module")
def work():
    return lk.deploy.trace("azure-conv", rate_scale=8, duration_s=30)     # ~1,100 requests, ~38 req/s


def _meets(r):
    return r.percentiles("ttft_s")[99] <= TTFT_SLO and r.percentiles("tpot_s")[99] <= TPOT_SLO


def test_size_llm_finds_the_smallest_count_that_brute_force_finds(work):
    s = lk.deploy.size_llm(work, MODEL, ["h100-sxm", "a100-sxm"], TTFT_SLO, TPOT_SLO, max_replicas=4)
    brute = {}
    for dev in ("h100-sxm", "a100-sxm"):
        met = [k for k in range(1, 5) if _meets(lk.deploy.serve_llm_sim(work, MODEL, dev, replicas=k))]
        brute[dev] = met[0] if met else None
    assert brute["h100-sxm"] is not None                   # the case must have a pick to be a test
    for dev, k in brute.items():
        row = s.table.loc[dev]
        assert (row["replicas"] if row["meets_slo"] else None) == k, (dev, row.to_dict(), k)
    cheapest = min((d for d in brute if brute[d]), key=lambda d: s.table.loc[d, "usd_per_1m_output"])
    assert (s.device, s.replicas) == (cheapest, brute[cheapest]) and s.meets_slo
    # the price of a million output tokens, by hand: k replicas rented for the whole run at the catalog price
    r = s.result
    dev = lk.device(s.device)
    by_hand = s.replicas * dev.price_usd_per_hour * r.duration_s / 3600 / work.columns["output_tokens"].sum() * 1e6
    assert s.usd_per_1m_output == pytest.approx(by_hand, rel=1e-12)
    assert r.duration_s >= work.duration_s and r.replicas == s.replicas
    assert s.simulations < 8                               # fewer than simulating every count on both devices
    assert "meets" in repr(s) and s.device in repr(s)


def test_size_llm_says_when_nothing_meets_and_when_the_model_does_not_fit(work):
    head = work.head(5.0)
    s = lk.deploy.size_llm(head, "llama-3.1-70b", ["l4", "h100-sxm"], ttft_slo_s=1e-4, tpot_slo_s=1e-4,
                           max_replicas=2, weight_bits=4.5)
    assert not s.meets_slo and s.device is None and np.isnan(s.usd_per_1m_output)
    assert s.table.loc["l4", "note"] == "the model does not fit"          # 70B at 4.5 bits: 39 GB of weights, 24 GB here
    assert "max_replicas" in s.table.loc["h100-sxm", "note"] and not s.table.loc["h100-sxm", "meets_slo"]
    assert "no device meets" in repr(s)


def test_size_llm_bad_input(work):
    with pytest.raises(ValueError, match="ttft_slo_s"):
        lk.deploy.size_llm(work, MODEL, "h100-sxm", ttft_slo_s=0, tpot_slo_s=0.05)
    with pytest.raises(ValueError, match="at least one device"):
        lk.deploy.size_llm(work, MODEL, [], ttft_slo_s=1, tpot_slo_s=0.05)
    with pytest.raises(ValueError, match="Did you mean '99'"):
        lk.deploy.size_llm(work, MODEL, "h100-sxm", ttft_slo_s=1, tpot_slo_s=0.05, pct=98)
    with pytest.raises(ValueError, match="Did you mean 'continuous'"):
        lk.deploy.size_llm(work, MODEL, "h100-sxm", ttft_slo_s=1, tpot_slo_s=0.05, scheduler="continous")


def test_kv_occupancy_draws_each_replicas_fill_over_time():
    w = lk.deploy.trace("azure-conv", rate_scale=4, duration_s=20)
    tight = lk.deploy.serve_llm_sim(w, MODEL, "l4", replicas=2)          # 8B on 24 GB: a few sequences fit
    roomy = lk.deploy.serve_llm_sim(w, MODEL, "h100-sxm", replicas=2)
    ax = lk.plot.kv_occupancy(tight, roomy, labels=["L4", "H100"], replica=1)
    line = ax.lines[0]
    rows = tight.kv_timeline[tight.kv_timeline[:, 1] == 1]
    np.testing.assert_allclose(line.get_xdata(), rows[:, 0])
    np.testing.assert_allclose(line.get_ydata(), rows[:, 2] / tight.kv_capacity_tokens)
    assert max(line.get_ydata()) > 0.9 and tight.preemptions > 0        # the L4's batch is capped by its KV cache
    assert max(ax.lines[1].get_ydata()) < max(line.get_ydata())
    assert f"{tight.preemptions:,} preemptions" in ax.get_legend().get_texts()[0].get_text()
    plt.close("all")
    with pytest.raises(ValueError, match="replica 2"):
        lk.plot.kv_occupancy(tight, replica=2)
    with pytest.raises(ValueError, match="labels"):
        lk.plot.kv_occupancy(tight, roomy, labels=["one"])
    with pytest.raises(ValueError, match="at least one"):
        lk.plot.kv_occupancy()


def test_ttft_tpot_plots_recomputed_percentiles_and_the_slo_corner():
    w = lk.deploy.trace("azure-code", rate_scale=2, duration_s=20)
    rs = [lk.deploy.serve_llm_sim(w, MODEL, "h100-sxm", chunk_tokens=c) for c in (None, 512, 2048)]
    names = ["whole", "512", "2048"]
    ax, rows = lk.plot.ttft_tpot(rs, labels=names, pct=90, ttft_slo_s=0.5, tpot_slo_s=0.04)
    for (label, ttft, tpot), r, name in zip(rows, rs, names):
        first = r.first_token_s - w.arrival_s
        out = w.columns["output_tokens"]
        gaps = (r.finish_s - r.first_token_s)[out > 1] / (out[out > 1] - 1)
        assert label == name
        assert ttft == pytest.approx(np.percentile(first, 90), rel=1e-12)
        assert tpot == pytest.approx(np.percentile(gaps, 90), rel=1e-12)
    pts = ax.collections[0].get_offsets()
    np.testing.assert_allclose(pts, [[t * 1e3, p * 1e3] for _, t, p in rows])
    assert sorted(t.get_text() for t in ax.texts) == sorted(names)
    assert len(ax.collections) == 2                                       # the points and the shaded SLO corner
    plt.close("all")
    with pytest.raises(ValueError, match="Did you mean"):
        lk.plot.ttft_tpot(rs, pct=95)
    with pytest.raises(ValueError, match="at least one"):
        lk.plot.ttft_tpot([])
