"""Token-level LLM serving (lk.deploy.serve_llm_sim, lab 09) against independent oracles: direct lk.estimate of
lk.llm prefill/decode profiles, a FIFO queue written here, token counting, and a FLOP roofline bound."""

import random

import numpy as np
import pytest

import labkit as lk

MODEL, DEV = "llama-3.1-8b", "h100-sxm"


@pytest.fixture(scope="module")
def cost():
    from labkit.deploy.llm_cost import StepCost

    return StepCost(MODEL, DEV)


def _lone_s(prompt, out):
    """prefill(n) then out - 1 decode steps at contexts n, n+1, ...: each by lk.estimate directly."""
    pre = lk.estimate(lk.llm.prefill(MODEL, prompt), DEV, "fp16").latency_s
    dec = [lk.estimate(lk.llm.decode(MODEL, prompt + i), DEV, "fp16").latency_s for i in range(out - 1)]
    return pre, pre + sum(dec)


def _work(arrivals, prompts, outs):
    return lk.deploy.Workload(arrivals, {"prompt_tokens": prompts, "output_tokens": outs})


@pytest.mark.parametrize("scheduler", ["continuous", "static"])
def test_lone_request_is_prefill_plus_decode_steps(cost, scheduler):
    prompt, out = 24, 7
    ttft, e2e = _lone_s(prompt, out)
    r = lk.deploy.serve_llm_sim(_work([1.5], [prompt], [out]), MODEL, DEV, scheduler, cost=cost)
    assert r.ttft_s[0] == pytest.approx(ttft, rel=1e-9)
    assert r.e2e_s[0] == pytest.approx(e2e, rel=1e-9)
    assert r.tpot_s[0] == pytest.approx((e2e - ttft) / (out - 1), rel=1e-9)
    assert r.steps == out and r.preemptions == 0


def test_step_cost_fit_matches_direct_estimate(cost):
    rng = random.Random(3)
    worst = 0.0
    for _ in range(12):
        dc = [rng.randint(0, 4000) for _ in range(rng.randint(0, 48))]
        pf = [(rng.randint(0, 600), rng.randint(1, 900)) for _ in range(rng.randint(0 if dc else 1, 3))]
        direct = lk.llm.step_time(MODEL, DEV, decode_contexts=dc, prefill=pf)
        worst = max(worst, abs(cost.step(dc, pf)[0] / direct - 1))
    assert worst < 0.01


def test_one_sequence_budget_degenerates_to_fifo(cost):
    prompt, out = 64, 8
    arrivals = [0.0, 0.01, 0.02, 0.5, 0.51]
    ttft, lone = _lone_s(prompt, out)
    r = lk.deploy.serve_llm_sim(_work(arrivals, [prompt] * 5, [out] * 5), MODEL, DEV, "continuous",
                                kv_tokens=prompt + out, block_tokens=1, cost=cost)
    free_at, starts, finishes = 0.0, [], []
    for a in arrivals:                                   # FIFO single server, service time = the lone request's
        start = max(a, free_at)
        free_at = start + lone
        starts.append(start)
        finishes.append(free_at)
    np.testing.assert_allclose(r.finish_s, finishes, rtol=1e-9)
    np.testing.assert_allclose(r.first_token_s, np.array(starts) + ttft, rtol=1e-9)
    assert r.preemptions == 0


def test_tokens_conserved_under_preemption(cost):
    rng = np.random.default_rng(0)
    n = 40
    prompts = rng.integers(20, 200, n)
    outs = rng.integers(1, 120, n)
    w = _work(np.sort(rng.uniform(0, 0.5, n)), prompts, outs)
    r = lk.deploy.serve_llm_sim(w, MODEL, DEV, "continuous", kv_tokens=3 * int((prompts + outs).max()),
                                cost=cost)
    assert r.preemptions > 0                              # the budget is tight enough to force recompute
    assert r.tokens_emitted == outs.sum()
    assert np.isfinite(r.finish_s).all() and (r.first_token_s <= r.finish_s).all()
    assert (r.first_token_s > r.arrival_s).all()
    assert r.tokens_processed > prompts.sum() + (outs - 1).sum()     # recomputed prompts cost extra tokens
    roomy = lk.deploy.serve_llm_sim(w, MODEL, DEV, "continuous", cost=cost)
    assert roomy.preemptions == 0
    assert roomy.tokens_processed == prompts.sum() + (outs - 1).sum()
    assert roomy.tokens_emitted == outs.sum()
    occ = r.kv_occupancy()[:, 2]
    assert occ.max() <= 1.0 and occ.max() > 0.5


def test_chunked_prefill_and_static_keep_tokens(cost):
    rng = np.random.default_rng(1)
    n = 30
    prompts, outs = rng.integers(300, 1500, n), rng.integers(1, 60, n)
    w = _work(np.sort(rng.uniform(0, 1.0, n)), prompts, outs)
    for kw in ({"scheduler": "static"}, {"chunk_tokens": 512}):
        r = lk.deploy.serve_llm_sim(w, MODEL, DEV, cost=cost, **kw)
        assert r.tokens_emitted == outs.sum() and np.isfinite(r.finish_s).all()
        assert r.tokens_processed >= prompts.sum() + (outs - 1).sum()
    static = lk.deploy.serve_llm_sim(w, MODEL, DEV, "static", cost=cost)
    cont = lk.deploy.serve_llm_sim(w, MODEL, DEV, "continuous", cost=cost)
    assert np.mean(cont.e2e_s) < np.mean(static.e2e_s)   # ragged outputs: static batches wait for the longest


def test_throughput_below_flop_roofline():
    w = lk.deploy.trace("azure-code", rate_scale=20, duration_s=6)
    r = lk.deploy.serve_llm_sim(w, MODEL, DEV, "continuous", replicas=2)
    cfg, dev = lk.llm.config(MODEL), lk.device(DEV)
    flops_per_token = 2 * (cfg.params - cfg.vocab * cfg.d_model)   # every token meets every non-embedding weight
    assert r.busy_s >= r.tokens_processed * flops_per_token / dev.peak_flops["fp16"]
    assert r.tokens_out_per_s <= 2 * dev.peak_flops["fp16"] / flops_per_token
    assert r.tokens_emitted == w.columns["output_tokens"].sum()
    assert r.cost_usd_per_1m_output > 0 and r.carbon_g_per_1m_tokens > 0


def test_bad_input_is_explained(cost):
    w = _work([0.0], [100], [10])
    with pytest.raises(ValueError, match="smaller than one sequence"):
        lk.deploy.serve_llm_sim(w, MODEL, DEV, kv_tokens=64, cost=cost)
    with pytest.raises(ValueError, match="output_tokens >= 1"):
        lk.deploy.serve_llm_sim(_work([0.0], [100], [0]), MODEL, DEV, cost=cost)
    with pytest.raises(ValueError, match="Did you mean 'static'"):
        lk.deploy.serve_llm_sim(w, MODEL, DEV, "statc", cost=cost)
    with pytest.raises(ValueError, match="prompt_tokens"):
        lk.deploy.serve_llm_sim(lk.deploy.Workload([0.0]), MODEL, DEV, cost=cost)
    with pytest.raises(ValueError, match="exceed max_batch"):
        lk.deploy.serve_llm_sim(w, MODEL, DEV, chunk_tokens=64, max_batch=64, cost=cost)
    with pytest.raises(ValueError, match="smaller than one sequence"):    # 70B in fp16 does not fit an L4
        lk.deploy.serve_llm_sim(w, "llama-3.1-70b", "l4")


def test_fast_forward_changes_nothing(cost, monkeypatch):
    from labkit.deploy import llm_engine

    rng = np.random.default_rng(2)
    n = 60
    w = _work(np.sort(rng.uniform(0, 3.0, n)), rng.integers(10, 400, n), rng.integers(1, 150, n))
    kw = dict(cost=cost, kv_tokens=6000, max_batch=16)
    fast = lk.deploy.serve_llm_sim(w, MODEL, DEV, **kw)
    monkeypatch.setattr(llm_engine, "FAST_FORWARD", False)
    slow = lk.deploy.serve_llm_sim(w, MODEL, DEV, **kw)
    assert fast.steps == slow.steps and fast.preemptions == slow.preemptions
    np.testing.assert_allclose(fast.finish_s, slow.finish_s, rtol=1e-9)
    np.testing.assert_allclose(fast.first_token_s, slow.first_token_s, rtol=1e-9)
    assert fast.step_energy_j == pytest.approx(slow.step_energy_j, rel=1e-9)


def test_fast_forward_changes_nothing_static(cost, monkeypatch):
    from labkit.deploy import llm_engine

    rng = np.random.default_rng(4)
    n = 30
    w = _work(np.sort(rng.uniform(0, 2.0, n)), rng.integers(10, 400, n), rng.integers(1, 150, n))
    fast = lk.deploy.serve_llm_sim(w, MODEL, DEV, "static", cost=cost, max_batch=8)
    monkeypatch.setattr(llm_engine, "FAST_FORWARD", False)
    slow = lk.deploy.serve_llm_sim(w, MODEL, DEV, "static", cost=cost, max_batch=8)
    assert fast.steps == slow.steps and fast.tokens_emitted == slow.tokens_emitted
    np.testing.assert_allclose(fast.finish_s, slow.finish_s, rtol=1e-9)
    np.testing.assert_allclose(fast.first_token_s, slow.first_token_s, rtol=1e-9)


def simpy_continuous(arrivals, prompts, outs, kv_tokens, max_batch, step_s=None):
    """An independent simpy model of one continuous-batching engine (block = 1 token), written from the spec:
    admit waiting requests in order while their prompt + 1 fits; a decode that does not fit preempts the newest
    running sequence, which re-prefills prompt + emitted tokens later; each step costs lk.llm.step_time (or
    ``step_s(decode_contexts, prefill)``: bench/deploy_llm.py passes the pool's fitted cost to time the model)."""
    import simpy

    if step_s is None:
        def step_s(decode_contexts, prefill):
            return lk.llm.step_time(MODEL, DEV, decode_contexts=decode_contexts, prefill=prefill)

    env = simpy.Environment()
    inbox = simpy.Store(env)
    first, finish = [None] * len(arrivals), [None] * len(arrivals)

    def source():
        for i, a in enumerate(arrivals):
            yield env.timeout(a - env.now)
            inbox.put(i)

    def engine():
        waiting, running = [], []          # running: dicts in admission order
        emitted = [0] * len(arrivals)
        while True:
            if not waiting and not running and not inbox.items:
                waiting.append((yield inbox.get()))
            while inbox.items:
                waiting.append(inbox.items.pop(0))
            used = sum(r["cached"] + (1 if r["decoding"] else 0) for r in running)
            while used > kv_tokens:                              # preempt the newest (recompute later)
                r = running.pop()
                used -= r["cached"] + (1 if r["decoding"] else 0)
                waiting.insert(0, r["i"])
            prefill = []
            while waiting and len(running) < max_batch:
                i = waiting[0]
                need = prompts[i] + emitted[i] + 1
                if used + need > kv_tokens:
                    break
                waiting.pop(0)
                used += need
                r = {"i": i, "cached": 0, "decoding": False, "target": prompts[i] + emitted[i]}
                running.append(r)
                prefill.append(r)
            decode = [r for r in running if r["decoding"]]
            dt = step_s([r["cached"] for r in decode], [(0, r["target"]) for r in prefill])
            yield env.timeout(dt)
            for r in decode + prefill:
                r["cached"] = r["cached"] + 1 if r["decoding"] else r["target"]
                r["decoding"] = True
                if emitted[r["i"]] == 0:
                    first[r["i"]] = env.now
                emitted[r["i"]] += 1
                if emitted[r["i"]] == outs[r["i"]]:
                    finish[r["i"]] = env.now
                    running.remove(r)
            if all(f is not None for f in finish):
                return

    env.process(source())
    done = env.process(engine())
    env.run(until=done)
    return np.array(first), np.array(finish)


def test_simpy_model_agrees_step_by_step(cost):
    rng = np.random.default_rng(5)
    n = 8
    arrivals = np.sort(rng.uniform(0, 0.15, n))
    prompts, outs = rng.integers(5, 20, n), rng.integers(10, 30, n)
    kv = int((prompts + outs).max()) + 12                 # tight: decodes outgrow it, forcing preemption
    first, finish = simpy_continuous(arrivals, prompts, outs, kv, max_batch=4)
    r = lk.deploy.serve_llm_sim(_work(arrivals, prompts, outs), MODEL, DEV, kv_tokens=kv, block_tokens=1,
                                max_batch=4, cost=cost)
    assert r.preemptions > 0
    np.testing.assert_allclose(r.first_token_s, first, rtol=1e-9)
    np.testing.assert_allclose(r.finish_s, finish, rtol=1e-9)


def test_disaggregated_lone_request_adds_the_kv_transfer(cost):
    prompt, out = 200, 6
    ttft, e2e = _lone_s(prompt, out)
    net = lk.link("datacenter")
    move_s = net.rtt_s / 2 + 8 * lk.llm.kv_bytes(MODEL, prompt) / net.uplink_bps
    r = lk.deploy.serve_llm_disagg(_work([0.3], [prompt], [out]), MODEL, DEV, cost=cost)
    assert r.ttft_s[0] == pytest.approx(ttft, rel=1e-9)
    assert r.e2e_s[0] == pytest.approx(e2e + move_s, rel=1e-9)
    assert r.replicas == 2 and r.tokens_emitted == out


def test_disaggregation_keeps_long_prompts_off_decode_steps(cost):
    rng = np.random.default_rng(6)
    n = 60                       # a stream of short chats with long prompts arriving among them
    prompts = np.where(rng.random(n) < 0.3, 3000, 100)
    outs = rng.integers(20, 80, n)
    w = _work(np.sort(rng.uniform(0, 2.0, n)), prompts, outs)
    both = lk.deploy.serve_llm_sim(w, MODEL, DEV, replicas=2, cost=cost)
    split = lk.deploy.serve_llm_disagg(w, MODEL, DEV, cost=cost)
    assert split.tokens_emitted == outs.sum() and np.isfinite(split.finish_s).all()
    assert split.percentiles("tpot_s")[99] < both.percentiles("tpot_s")[99]   # no prefill in decode steps
    with pytest.raises(ValueError, match="output_tokens >= 1"):
        lk.deploy.serve_llm_disagg(_work([0.0], [10], [0]), MODEL, DEV, cost=cost)


def test_energy_cost_and_goodput_of_a_lone_request(cost):
    prompt, out = 32, 5
    steps = [lk.estimate(lk.llm.prefill(MODEL, prompt), DEV, "fp16")]
    steps += [lk.estimate(lk.llm.decode(MODEL, prompt + i), DEV, "fp16") for i in range(out - 1)]
    w = lk.deploy.Workload([0.0], {"prompt_tokens": [prompt], "output_tokens": [out]}, duration_s=2.0)
    r = lk.deploy.serve_llm_sim(w, MODEL, DEV, cost=cost)
    dev = lk.device(DEV)
    busy = sum(e.latency_s for e in steps)
    assert r.step_energy_j == pytest.approx(sum(e.energy_j for e in steps), rel=1e-9)
    assert r.energy_j == pytest.approx(sum(e.energy_j for e in steps) + dev.idle_w * (2.0 - busy), rel=1e-9)
    assert r.cost_usd_per_1m_output == pytest.approx(2.0 * dev.price_usd_per_hour / 3600 / out * 1e6, rel=1e-9)
    assert r.goodput_rps(ttft_slo_s=1.0, tpot_slo_s=1.0) == pytest.approx(0.5)
    assert r.goodput_rps(ttft_slo_s=r.ttft_s[0] * 0.99, tpot_slo_s=1.0) == 0.0
    assert r.goodput_rps(ttft_slo_s=1.0, tpot_slo_s=r.tpot_s[0] * 0.99) == 0.0


def test_chunked_prefill_respects_the_token_budget(cost):
    class Recording:                      # the pool's cost, recording each step's tokens (no fast-forward)
        cfg, linear = cost.cfg, False

        def __init__(self):
            self.tokens = []

        def step(self, decode_contexts, prefill):
            self.tokens.append(len(decode_contexts) + sum(new for _, new in prefill))
            return cost.step(decode_contexts, prefill)

    rng = np.random.default_rng(7)
    n = 20
    prompts, outs = rng.integers(100, 2000, n), rng.integers(1, 40, n)
    w = _work(np.sort(rng.uniform(0, 0.5, n)), prompts, outs)
    rec = Recording()
    r = lk.deploy.serve_llm_sim(w, MODEL, DEV, chunk_tokens=256, max_batch=32, cost=rec)
    assert max(rec.tokens) <= 256 and sum(rec.tokens) == r.tokens_processed
    assert sum(rec.tokens) == prompts.sum() + (outs - 1).sum()
    rec_whole = Recording()
    lk.deploy.serve_llm_sim(w, MODEL, DEV, max_batch=32, cost=rec_whole)
    assert max(rec_whole.tokens) >= prompts.max()          # unchunked: a whole prompt in one step
