"""The small GPT served on Ray Serve (lk.deploy.serve_llm): the engine's continuous batching makes the same greedy
tokens as lk.llm.generate (the independent oracle: one sequence, lab 08's own KV cache), every token reaches the
client, every request finishes, Serve leaves nothing behind; bad input fails before Ray starts."""

from __future__ import annotations

import time

import numpy as np
import pytest
from procs import serve_processes

import labkit as lk

PROMPTS = ["ROMEO:", "First Citizen:\nBefore we proceed any further", "KING", "O", "What say you, my lord?\n"]


@pytest.fixture(scope="module")
def gpt():
    return lk.zoo.load("gpt").model


def _greedy(gpt, prompt, n):
    return lk.llm.generate(gpt, prompt, n, temperature=0).tokens


def test_the_engine_batches_sequences_of_different_lengths_exactly_as_one_alone(gpt):
    from labkit.deploy.gpt_engine import Engine

    eng = Engine(gpt, slots=3)
    want = {i: _greedy(gpt, p, 25) for i, p in enumerate(PROMPTS[:3])}
    toks, lens = {}, {}
    for step in range(40):                      # requests join at steps 0, 0 and 6; each leaves when it is done
        live = [i for i in toks if len(toks[i]) < 25]          # running before this step: one decode each
        if live:
            for i, t in zip(live, eng.decode(live, [toks[i][-1] for i in live], [lens[i] for i in live])):
                toks[i].append(t)
                lens[i] += 1
        for i in [i for i, at in ((0, 0), (1, 0), (2, 6)) if at == step]:
            ids = lk.llm.text.encode(PROMPTS[i])
            toks[i], lens[i] = [eng.prefill(i, ids)], len(ids)
    assert {i: tuple(t) for i, t in toks.items()} == want


def test_measured_step_costs_are_positive_and_additive():
    cost = lk.deploy.measure_step_cost(max_batch=4, repeats=2)
    assert cost.decode_base_s > 0 and cost.prefill_base_s >= 0 and cost.prefill_per_token_s >= 0
    assert min(cost.decode_per_seq_s, cost.decode_per_ctx_s) >= 0
    both = cost.step([10, 20], [30])[0]
    assert both == pytest.approx(cost.step([10, 20])[0] + cost.step([], [30])[0])
    assert cost.scaled(2).step([10], [5])[0] == pytest.approx(2 * cost.step([10], [5])[0])


def test_step_cost_fit_never_goes_negative(monkeypatch):
    """Timings that tilt a plain least-squares fit into a negative prefill intercept and a negative decode slope
    (the CI failure of 2026-12-04: prefill_base_s = -0.22 ms) still fit non-negative coefficients."""
    import types

    import numpy as np

    from labkit.deploy import gpt_engine

    class Fake:
        config, slots, last = types.SimpleNamespace(context=128), 4, 0.0

        def decode(self, slots, last, lens):       # faster with more context: a plain fit's K slope < 0
            self.last = 1e-3 + 2e-4 * len(slots) - 1e-7 * len(slots) * lens[0]

        def prefill(self, slot, ids):               # steep from n=4 on: a plain fit's intercept < 0
            self.last = 1e-4 if len(ids) == 4 else 1e-4 * len(ids) - 2e-3

    fake = Fake()

    def timed(fn, repeats):
        fn()
        return fake.last

    monkeypatch.setattr(gpt_engine, "_best_time", timed)
    ns = [4, 32, 64, 126]
    plain = np.polyfit(ns, [1e-4 if n == 4 else 1e-4 * n - 2e-3 for n in ns], 1)
    assert plain[1] < 0                               # the mutant (a plain fit) would fail below
    cost = gpt_engine.fit_step_cost(fake, 4, 1)
    assert min(cost.decode_base_s, cost.decode_per_seq_s, cost.decode_per_ctx_s) >= 0
    assert cost.prefill_base_s >= 0 and cost.prefill_per_token_s > 0
    assert cost.decode_base_s > 0 and cost.fit_error > 0.5         # a poor fit is reported, not hidden


def _w(prompt_tokens, output_tokens, arrival=None):
    n = len(prompt_tokens)
    return lk.deploy.Workload(arrival if arrival is not None else [0.01 * i for i in range(n)],
                              {"prompt_tokens": prompt_tokens, "output_tokens": output_tokens})


@pytest.mark.parametrize("kwargs, prompts, match", [
    (dict(prompt_tokens=[5, 5], output_tokens=[3, 0]), None, "output_tokens >= 1"),
    (dict(prompt_tokens=[2], output_tokens=[3]), [[1, 99]], "outside the vocabulary"),
    (dict(prompt_tokens=[2], output_tokens=[3]), ["a€"], "outside the model's vocabulary"),
    (dict(prompt_tokens=[100], output_tokens=[40]), None, "context of 128"),
    (dict(prompt_tokens=[2], output_tokens=[3]), [""], "empty"),
    (dict(prompt_tokens=[2, 2], output_tokens=[3, 3]), ["ab"], "2 requests"),
])
def test_bad_input_fails_before_ray_starts(kwargs, prompts, match):
    with pytest.raises(ValueError, match=match):
        lk.deploy.serve_llm(_w(**kwargs), prompts)


def test_other_bad_input():
    with pytest.raises(ValueError, match="prompt_tokens"):
        lk.deploy.serve_llm(lk.deploy.poisson(5, 1))
    with pytest.raises(ValueError, match="smaller than one sequence"):
        lk.deploy.serve_llm(_w([50], [20]), kv_tokens=60)
    with pytest.raises(ValueError, match="max_batch"):
        lk.deploy.serve_llm(_w([5], [5]), max_batch=0)




@pytest.mark.slow
def test_served_tokens_are_generates_and_all_arrive(gpt, ray_session):
    outs = [20, 12, 30, 8, 16]
    w = _w([len(p) for p in PROMPTS], outs, arrival=[0.0, 0.0, 0.02, 0.05, 0.05])
    served = lk.deploy.serve_llm(w, PROMPTS, max_batch=3, calibrate_repeats=2)
    # the same greedy tokens as one sequence alone (lab 08's cache), though they ran batched with the others
    assert [tuple(t) for t in served.tokens] == [_greedy(gpt, p, n) for p, n in zip(PROMPTS, outs)]
    # token conservation: every token the engine emitted reached the client, once, in order
    assert [len(t) for t in served.token_s] == outs == [len(e) for e in served.emitted_s]
    assert all(np.all(np.diff(t) >= 0) and np.all(t >= e) for t, e in zip(served.token_s, served.emitted_s))
    assert np.isfinite(served.finish_s).all() and (served.ttft_s > 0).all()
    assert served.engine["steps"] >= max(outs) and served.dilation > 0 and served.serve_overhead_s >= 0
    sim = lk.deploy.serve_llm_sim(w, "gpt", "local", cost=served.in_service_cost, max_batch=3,
                                  kv_tokens=served.kv_tokens, block_tokens=1)
    table = lk.deploy.compare(sim, served)
    assert list(table.index) == ["ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "tokens_out_per_s"]
    assert int(sim.output_tokens.sum()) == int(served.output_tokens.sum()) == sum(outs)
    deadline = time.monotonic() + 30
    while serve_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert serve_processes() == [], "Serve actors outlived serve_llm()"
