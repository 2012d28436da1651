"""One owner per formula: Profile.at_batch (batch scaling), OpFit.time_s (a calibrated layer's time),
labkit.targets.call_s (the per-call cost), labkit.targets.switches (what each layer pays of the cold-cache cost
among mixed ops). Each is checked against an independent oracle, and the modules that
used to carry their own copy (estimate, partition, the calibration's fit) against the owner."""

import dataclasses
import math
import random

import pytest

import labkit as lk
from labkit.calibration import costfit
from labkit.profile.core import OP_CLASSES
from labkit.targets import OpFit, call_s, cold_s, cold_shares, fit_for, switch_s, switches, tier_bytes_per_s
from labkit.targets.cold import COLD_BYTES

FIELDS = ("macs", "flops", "params", "weight_elems", "input_elems", "output_elems", "output_shape", "gemm", "op",
          "op_class", "inputs")


@pytest.mark.parametrize("name", ["cnn", "mlp", "transformer"])
def test_at_batch_equals_profiling_at_that_batch(name):
    # the oracle: the profiler itself, run at the bigger batch
    model = lk.zoo.build(name)
    small = lk.profile(model, lk.zoo.example(name, batch=2))
    big = lk.profile(model, lk.zoo.example(name, batch=6))
    scaled = small.at_batch(6)
    assert scaled.batch == 6 and small.batch == 2                       # the original is unchanged
    assert (scaled.input_elems, scaled.output_elems, scaled.params) == (big.input_elems, big.output_elems, big.params)
    assert [lay.name for lay in scaled.layers] == [lay.name for lay in big.layers]
    for got, want in zip(scaled.layers, big.layers):
        for field in FIELDS:
            assert getattr(got, field) == getattr(want, field), (name, got.name, field)
    assert scaled.flops == big.flops and scaled.weight_bytes == big.weight_bytes
    assert small.at_batch(2) is small


def test_at_batch_rounds_a_fraction_and_keeps_layers_frozen():
    p = lk.profile(lk.zoo.build("mlp"), lk.zoo.example("mlp", batch=4))
    three = p.at_batch(3)
    for a, b in zip(p.layers, three.layers):
        assert b.flops == round(a.flops * 3 / 4) and b.weight_elems == a.weight_elems
    with pytest.raises(dataclasses.FrozenInstanceError):
        three.layers[0].flops = 1                                        # still a frozen Layer
    assert isinstance(three.layers[0], lk.Layer) and three.layers[0].bytes > 0


@pytest.mark.parametrize("overlap", [True, False])
def test_opfit_time_s_closed_form(overlap):
    fit = OpFit(startup_s=3e-6, flops_per_s=2e9, bytes_per_s=5e8, overlap=overlap)
    for flops, nbytes in ((0, 0), (4e6, 1e3), (1e3, 4e6), (2e6, 8e5)):
        c, m = flops / 2e9, nbytes / 5e8
        assert fit.time_s(flops, nbytes) == pytest.approx(3e-6 + (max(c, m) if overlap else c + m), rel=1e-12)


def test_fit_for_prefers_the_op_and_call_s_defaults_to_zero():
    fits = {"pool": OpFit(1e-6, 1e9, 1e9), "pool/maxpool": OpFit(2e-6, 1e9, 1e9), "call": OpFit(7e-6, 1, 1)}
    assert fit_for(fits, "pool", "maxpool").startup_s == 2e-6
    assert fit_for(fits, "pool", "avgpool").startup_s == 1e-6
    assert fit_for(fits, "conv", "conv2d") is None and fit_for(None, "pool", "maxpool") is None
    assert call_s(fits) == 7e-6 and call_s({}) == 0.0 and call_s(None) == 0.0


def test_switches_against_a_brute_force_reuse_distance():
    # oracle: walk back from each layer, around the loop of repeated calls, to the last run of its op, adding up
    # the bytes of the layers on the way
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 30)
        ops = [rng.choice("abcdefg"[: rng.randint(1, 7)]) for _ in range(n)]
        nbytes = [rng.choice((0, 1, 2**10, 2**16, 2**20, 2**24)) * rng.random() for _ in range(n)]
        want = []
        for i, op in enumerate(ops):
            between, j = 0.0, i - 1
            while ops[j % n] != op:
                between += nbytes[j % n]
                j -= 1
            want.append(1.0 - math.exp(-between / COLD_BYTES))
        assert switches(ops, nbytes) == pytest.approx(want, abs=1e-12), ops
    with pytest.raises(ValueError, match="one byte count per op"):
        switches(["a", "b"], [1.0])
    assert switch_s({"switch": OpFit(3e-6, 1, 1)}) == 3e-6 and switch_s({}) == 0.0 and switch_s(None) == 0.0


def _calibrated(name="fitted", **fits):
    return lk.Device(name, "edge-cpu", "test", {"fp32": 1e11}, mem_bw_bytes_per_s=1e10, mem_bytes=8e9, idle_w=2.0,
                     peak_w=10.0, fits=fits)


def test_estimate_and_the_calibration_price_a_layer_with_the_same_owner():
    fits = {c: OpFit(1e-6 * (i + 1), 1e9 * (i + 1), 2e9, overlap=bool(i % 2)) for i, c in enumerate(OP_CLASSES)}
    fits["call"], fits["switch"] = OpFit(4e-5, 1.0, 1.0), OpFit(3e-6, 1.0, 5e9)   # cold: 3 µs + weights at 5 GB/s
    dev = _calibrated(**fits)
    prof = lk.profile(lk.zoo.build("cnn"), lk.zoo.example("cnn", batch=2))
    for batch in (2, 8):
        est = lk.estimate(prof, dev, batch=batch)
        at = prof.at_batch(batch)
        cold = switches([lay.op for lay in at.layers], [lay.bytes for lay in at.layers])
        assert 0 < sum(cold) < len(cold)
        total = sum(lay.bytes for lay in at.layers)
        for lay, le, w in zip(at.layers, est.layers, cold):       # by hand, from the owners
            weights_cold = 1.0 - math.exp(-(total - lay.bytes) / COLD_BYTES)     # the rest of the call ran since
            want = fits[lay.op_class].time_s(lay.flops, lay.bytes) + 3e-6 * w + lay.weight_bytes / 5e9 * weights_cold
            assert le.latency_s == pytest.approx(want, rel=1e-12)
        assert est.latency_s == pytest.approx(sum(le.latency_s for le in est.layers) + 4e-5, rel=1e-12)
        assert any(w and lay.weight_bytes for lay, w in zip(at.layers, cold))  # the bytes term is exercised
        work = [(lay.op_class, lay.op, lay.flops, lay.bytes, *lay.unit_counts, lay.weight_bytes) for lay in at.layers]
        assert costfit.predict(work, fits, call=True) == pytest.approx(est.latency_s, rel=1e-12)


def test_partition_pays_the_call_cost_once_per_side_used():
    dev = _calibrated(**{c: OpFit(1e-6, 1e9, 2e9) for c in OP_CLASSES}, call=OpFit(3e-3, 1.0, 1.0))
    prof = lk.profile(lk.zoo.build("cnn"), lk.zoo.example("cnn"))
    plan = lk.partition(prof, edge=dev, cloud="l4", link="wifi")
    assert plan.all_edge.edge_compute_s == pytest.approx(lk.estimate(prof, dev).latency_s, rel=1e-12)
    assert plan.all_edge.edge_compute_s == pytest.approx(
        sum(le.latency_s for le in lk.estimate(prof, dev).layers) + 3e-3, rel=1e-12)
    assert plan.all_cloud.edge_compute_s == 0.0


def test_weights_that_the_rest_of_the_call_evicts_return_from_its_memory_tier():
    # the zoo's ResNet moves 4.9 MiB a call at batch 1; on a device whose caches end at 1 MiB that comes from the
    # 4 MiB tier or beyond, so each weight comes back at that tier's rate, not the fitted one (labkit.targets.cold_s)
    fits = {c: OpFit(1e-6, 1e10, 1e10) for c in OP_CLASSES}
    fits["switch"] = OpFit(5e-6, 1.0, 1.8e11)
    tiers = ((2**20, 9.3e10), (4 * 2**20, 4.8e10), (16 * 2**20, 4.3e10))
    prof = lk.profile(lk.zoo.build("resnet"), lk.zoo.example("resnet", batch=1))
    at = prof.at_batch(1)
    ops, nbytes = [lay.op for lay in at.layers], [lay.bytes for lay in at.layers]
    code, weights, cap = cold_shares(ops, nbytes, tiers)
    assert code == switches(ops, nbytes) and cap == tier_bytes_per_s(tiers, sum(nbytes))
    small = lk.estimate(prof, _calibrated(**fits)).latency_s
    big = lk.estimate(prof, lk.Device("t", "edge-cpu", "test", {"fp32": 1e11}, mem_bw_bytes_per_s=1e10,
                                      mem_bytes=8e9, idle_w=2.0, peak_w=10.0, fits=fits, mem_tiers=tiers)).latency_s
    rate = min(1.8e11, cap)
    extra = sum(w * lay.weight_bytes * (1 / rate - 1 / 1.8e11) for lay, w in zip(at.layers, weights))
    tiers_on_layers = sum(fits[lay.op_class].time_s(lay.flops, lay.bytes, tier_bytes_per_s(tiers, lay.bytes))
                          - fits[lay.op_class].time_s(lay.flops, lay.bytes) for lay in at.layers)
    assert 4.3e10 < cap < 4.8e10 and extra > 0                # the call's tier binds: the weights pay more
    assert big - small == pytest.approx(extra + tiers_on_layers, rel=1e-9)
    work = [(lay.op_class, lay.op, lay.flops, lay.bytes, *lay.unit_counts, lay.weight_bytes) for lay in at.layers]
    assert costfit.predict(work, fits, call=False, tiers=tiers) == pytest.approx(big, rel=1e-12)
    assert cold_s(fits, 2**20, 0.0, 1.0, 1e9) == pytest.approx(2**20 / 1e9)     # the slower of the two rates
    assert cold_s(fits, 2**20, 1.0, 0.0) == pytest.approx(5e-6)                  # code only
