"""The exact edge/cloud split (labkit.partition.cut, lab 06) against brute force over every placement.

The oracle is written here from the module's contract, not from its graph construction: enumerate all 2^n
edge/cloud assignments, drop those where an edge layer reads a cloud layer's output, and price the rest as
edge work + cloud work + one upload per edge-made tensor (the input included) read by any cloud layer.
These are the tests `make mutate` runs against labkit/partition/cut.py; keep them fast.
"""

from __future__ import annotations

import itertools
import random

import pytest

from labkit.partition import cut

FLOWS = ("scaled-dinic", "push-relabel")   # ours; networkx's are compared in tests/test_partition.py


def placements(n):
    """Every assignment, as the frozenset of cloud layers."""
    for mask in range(2**n):
        yield frozenset(v for v in range(n) if mask >> v & 1)


def cost(cloud, edge_w, cloud_w, up_w, producers):
    """The contract's price of a placement; None when it sends data back down to the edge."""
    n = len(edge_w)
    for v in range(n):
        if v not in cloud and any(u in cloud for u in producers[v] if u >= 0):
            return None
    uploaded = {u for v in cloud for u in producers[v] if u < 0 or u not in cloud}
    return (sum(cloud_w[v] if v in cloud else edge_w[v] for v in range(n))
            + sum(up_w[u + 1] for u in uploaded))


def optima(problem):
    """(best cost, the optimal placements) by enumeration."""
    priced = [(c, p) for p in placements(len(problem[0])) if (c := cost(p, *problem)) is not None]
    best = min(c for c, _ in priced)
    return best, [p for c, p in priced if c <= best + 1e-9 * max(1.0, abs(best))]


def all_dags(n):
    """Every DAG on n layers in topological order: each layer reads any non-empty subset of the input and the
    layers before it (2 layers: 3 DAGs; 3 layers: 21)."""
    choices = [[tuple(s) for r in range(1, v + 2) for s in itertools.combinations(range(-1, v), r)]
               for v in range(n)]
    return [list(p) for p in itertools.product(*choices)]


def random_weights(rng, n, integer):
    def w():
        if integer:                                    # small integers: many exact ties
            return float(rng.choice((0, 0, 1, 1, 2, 3, 5)))
        return rng.choice((0.0, rng.random(), rng.random() * 100, rng.random() * 1e-3))
    return [w() for _ in range(n)], [w() for _ in range(n)], [w() for _ in range(n + 1)]


def test_the_two_layer_regression_keeps_both_layers_on_the_edge():
    # the input is read by one layer: overwriting (instead of adding to) its capacity s -> 0 once sent both
    # layers to the cloud (cost 1) when keeping both on the edge costs 0.5
    problem = ([0.0, 0.5], [1.0, 0.0], [0.0, 100.0, 0.0], [(-1,), (0,)])
    for flow in FLOWS:
        assert cut.min_cut(*problem, flow=flow) == set(), flow
    assert cost(frozenset(), *problem) == 0.5 and cost(frozenset({0, 1}), *problem) == 1.0
    assert cut.is_chain(problem[3]) and cut.chain_split(*problem[:3]) == 2


@pytest.mark.parametrize("n", [1, 2, 3])
def test_every_small_dag_matches_enumeration(n):
    rng = random.Random(n)
    for producers in all_dags(n):
        for trial in range(12 if n == 3 else 40):
            problem = (*random_weights(rng, n, integer=trial % 2 == 0), producers)
            best, winners = optima(problem)
            for flow in FLOWS:
                got = cut.min_cut(*problem, flow=flow)
                assert got in winners, (problem, flow, got, best)


def test_random_dags_up_to_ten_layers_match_enumeration():
    rng = random.Random(2026)
    for trial in range(120):
        n = rng.randint(4, 10)
        fan_in = rng.choice((1, 1, 2, 3, 4))
        producers = [tuple(sorted({rng.randrange(-1, v) for _ in range(rng.randint(1, fan_in))}))
                     for v in range(n)]
        if trial % 3 == 0:       # the input read by layer 0 only (the single-consumer input)
            producers = [(-1,)] + [tuple(u for u in p if u >= 0) or (v - 1,) for v, p in enumerate(producers)][1:]
        problem = (*random_weights(rng, n, integer=trial % 2 == 0), producers)
        best, winners = optima(problem)
        for flow in FLOWS:
            got = cut.min_cut(*problem, flow=flow)
            assert cost(got, *problem) == pytest.approx(best, rel=1e-9, abs=1e-12), (trial, flow)


def test_a_tensor_read_by_several_cloud_layers_is_uploaded_once():
    # the input feeds three layers that are all cheap in the cloud: one upload of 3 beats three of 3
    problem = ([5.0, 5.0, 5.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0], [(-1,), (-1,), (-1,)])
    for flow in FLOWS:
        assert cut.min_cut(*problem, flow=flow) == {0, 1, 2}
    assert cost(frozenset({0, 1, 2}), *problem) == 6.0
    # and a layer read twice by the same reader is uploaded once too
    # (edge only: 7; layer 1 in the cloud: 1 + one upload of 4 = 5, or 9 if it were counted twice)
    problem = ([0.0, 7.0], [10.0, 1.0], [100.0, 4.0, 0.0], [(-1,), (0, 0)])
    for flow in FLOWS:
        assert cut.min_cut(*problem, flow=flow) == {1}


def test_default_flow_breaks_ties_towards_the_edge():
    # "among several minimum cuts, ties go to the edge side": the fewest cloud layers, i.e. the intersection
    # of all optimal placements (itself optimal). Integer weights make exact ties common.
    rng = random.Random(11)
    seen_ties = 0
    for n in (2, 3):
        for producers in all_dags(n):
            for _ in range(6):
                problem = (*random_weights(rng, n, integer=True), producers)
                _, winners = optima(problem)
                seen_ties += len(winners) > 1
                assert cut.min_cut(*problem) == frozenset.intersection(*winners), problem
    assert seen_ties > 20


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_chain_split_is_the_largest_optimal_k(n):
    # "ties go to the larger k": k layers on the edge, then the rest in the cloud (lab 06 Q2 relies on it)
    rng = random.Random(n)
    producers = [(v - 1,) for v in range(n)]
    assert cut.is_chain(producers)
    for trial in range(60):
        edge_w, cloud_w, up_w = random_weights(rng, n, integer=trial % 3 != 0)
        prices = [cost(frozenset(range(k, n)), edge_w, cloud_w, up_w, producers) for k in range(n + 1)]
        best = min(prices)
        assert prices[cut.chain_split(edge_w, cloud_w, up_w)] == best
        assert cut.chain_split(edge_w, cloud_w, up_w) == max(k for k, p in enumerate(prices) if p == best)


def test_chain_split_all_ties_keep_everything_on_the_edge():
    assert cut.chain_split([0, 0, 0], [0, 0, 0], [0, 0, 0, 0]) == 3
    assert cut.chain_split([1, 1], [1, 1], [0, 0, 0]) == 2
    assert cut.chain_split([9, 9], [1, 1], [0, 0, 0]) == 0      # clear win for the cloud from the start
    assert cut.chain_split([1, 9], [9, 1], [0, 0, 5]) == 1      # the final output is never uploaded


def test_is_chain_only_for_a_straight_line():
    assert cut.is_chain([(-1,), (0,), (1,)]) and cut.is_chain([])
    for producers in ([(-1,), (-1,)], [(-1,), (0,), (0,)], [(-1,), (-1, 0)], [(0,)], [(-1,), (1,)]):
        assert not cut.is_chain(producers), producers


def test_an_unknown_flow_is_explained():
    with pytest.raises(ValueError, match="allowed: scaled-dinic, push-relabel, preflow_push, boykov_kolmogorov"):
        cut.min_cut([1], [1], [0, 0], [(-1,)], flow="dinic")


def test_wildly_different_capacities_still_find_the_optimum():
    # scaled-dinic rounds capacities to integers at a scale set by the largest: tiny ones must still count
    rng = random.Random(5)
    for _ in range(40):
        n = rng.randint(2, 6)
        producers = [tuple(sorted({rng.randrange(-1, v) for _ in range(2)})) for v in range(n)]
        scale = [10.0 ** rng.randint(-9, 9) for _ in range(3 * n + 1)]
        edge_w = [rng.random() * scale[v] for v in range(n)]
        cloud_w = [rng.random() * scale[n + v] for v in range(n)]
        up_w = [rng.random() * scale[2 * n + v] for v in range(n + 1)]
        problem = (edge_w, cloud_w, up_w, producers)
        best, _ = optima(problem)
        for flow in FLOWS:
            assert cost(cut.min_cut(*problem, flow=flow), *problem) == pytest.approx(best, rel=1e-9, abs=0)


def test_networkx_flows_agree_with_enumeration():
    # the slow cross-checks kept in min_cut (networkx), on every 2-layer DAG and a few 3-layer ones
    rng = random.Random(3)
    for producers in all_dags(2) + all_dags(3)[::5]:
        problem = (*random_weights(rng, len(producers), integer=False), producers)
        best, winners = optima(problem)
        for flow in ("boykov_kolmogorov", "edmonds_karp"):
            assert cut.min_cut(*problem, flow=flow) in winners, (problem, flow)


def test_push_relabel_tie_break():
    # push-relabel runs from the side with less terminal capacity; on exact ties it may pick either optimum,
    # but always one of them (recorded here: which side it favours is not part of the contract)
    rng = random.Random(12)
    for producers in all_dags(3):
        for _ in range(4):
            problem = (*random_weights(rng, 3, integer=True), producers)
            _, winners = optima(problem)
            assert cut.min_cut(*problem, flow="push-relabel") in winners
