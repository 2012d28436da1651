"""lk.estimate's edges and the calibrated cost model, against hand-computed rooflines (issue 15's mutation run).

Fast (no torch): devices and layers are built here, every expected number is written out as arithmetic on
the numbers given, never through labkit's own formulas. Each test names the boundary it pins: ties between the
compute and memory terms, zero-work layers, the power clamp, exact memory fits, the tier and fresh-output
thresholds, a calibrated "call" fit. bench/mutation_budget.toml runs it against each mutant of
labkit/estimate/model.py and of the cost model in labkit/targets/devices.py.
"""

import math
from types import SimpleNamespace

import pytest

import labkit as lk
from labkit import systolic
from labkit.estimate import layer_time, peak_flops
from labkit.estimate.model import carbon_factor
from labkit.targets import OpFit
from labkit.targets.fitted import call_s, fit_for, fresh_output_s, tier_bytes_per_s


def dev(**kw):
    """peak 1 TFLOP/s fp32, 2 TFLOP/s bf16; 100 GB/s; eff 1 / 1; no overhead; 10-110 W; $3.60/h; fr."""
    base = dict(name="oracle", kind="cloud-gpu", vendor="test", peak_flops={"fp32": 1e12, "bf16": 2e12},
                mem_bw_bytes_per_s=1e11, mem_bytes=1e12, idle_w=10.0, peak_w=110.0, price_usd_per_hour=3.6,
                region="fr", eff_compute=1.0, eff_mem=1.0, overhead_s=0.0)
    base.update(kw)
    return lk.Device(**base)


def layer(name="l", flops=0, w=0, i=0, o=0, op="mul", op_class="elementwise", gemm=None, shape=()):
    return lk.Layer(name, op, op_class, ("input",), macs=0, flops=flops, params=w, weight_elems=w,
                    input_elems=i, output_elems=o, output_shape=shape or (max(o, 1),), gemm=gemm)


def prof(*layers, batch=1, name="toy"):
    return lk.Profile(name, "torch", batch, "fp32", tuple(layers), params=sum(lay.params for lay in layers),
                      input_elems=layers[0].input_elems if layers else 0,
                      output_elems=layers[-1].output_elems if layers else 0)


# ---- the roofline of one layer ------------------------------------------------------------------------------

def test_a_tie_between_compute_and_memory_is_memory_bound():
    # 400 B at 100 GB/s = 4 ns; 4000 FLOP at 1 TFLOP/s = 4 ns: equal terms, the documented bound is "memory"
    t, bound = layer_time(layer(flops=4000, i=50, o=50), dev(), "fp32")
    assert (t, bound) == (pytest.approx(4e-9), "memory")
    t, bound = layer_time(layer(flops=4001, i=50, o=50), dev(), "fp32")
    assert bound == "compute"


def test_layer_time_defaults_to_fp32_and_counts_each_tensor():
    lay = layer(flops=10, w=3, i=5, o=7)
    # default dtype fp32: (3 + 5 + 7) x 4 B = 60 B at 100 GB/s = 0.6 ns > 10 FLOP at 1 TFLOP/s = 0.01 ns
    assert layer_time(lay, dev()) == (pytest.approx(6e-10), "memory")
    # bf16: 2 B each, and the bf16 peak; overhead added once
    assert layer_time(lay, dev(overhead_s=1e-6), "bf16")[0] == pytest.approx(1e-6 + 30 / 1e11)
    # int8 rounds each tensor down on its own: int(3 x 1) ... ; at 0.5 B (int4) 3 -> 1, 5 -> 2, 7 -> 3 = 6 B
    d = dev(peak_flops={"fp32": 1e12, "int4": 4e12})
    assert lk.estimate(prof(lay), d, "int4").layers[0].bytes == 1 + 2 + 3


def test_zero_byte_and_zero_flop_layers():
    # a layer with work but no bytes: compute only (no 1 s, no division by zero)
    t, bound = layer_time(layer(flops=2_000_000), dev(overhead_s=1e-6), "fp32")
    assert (t, bound) == (pytest.approx(1e-6 + 2e-6), "compute")
    # no flops: memory only
    t, bound = layer_time(layer(i=1000, o=1000), dev(overhead_s=0.0), "fp32")
    assert (t, bound) == (pytest.approx(8000 / 1e11), "memory")


def test_efficiencies_scale_the_roofs():
    d = dev(eff_compute=0.25, eff_mem=0.5)
    assert layer_time(layer(flops=10**9), d, "fp32")[0] == pytest.approx(1e9 / 2.5e11)
    assert layer_time(layer(i=10**6, o=10**6), d, "fp32")[0] == pytest.approx(8e6 / 5e10)


def test_a_model_that_takes_no_time():
    # every term zero: no division by zero anywhere; infinite throughput; no energy, cost or carbon
    e = lk.estimate(prof(layer("a"), layer("b")), dev())
    assert e.latency_s == 0.0 and e.energy_j == 0.0 and e.cost_usd == 0.0 and e.carbon_g == 0.0
    assert e.throughput_per_s == math.inf and e.compute_bound_fraction == 0.0
    assert [lay.bound for lay in e.layers] == ["memory", "memory"]
    assert e.layers[0].flops_per_s == 0.0 and e.layers[0].intensity == 0.0


def test_systolic_array_edges():
    tpu = dev(name="tpu", kind="tpu", array=(4, 4))
    # one row of M (a batch-1 linear) still goes through the array
    one = layer(flops=2 * 1 * 4 * 4, w=16, i=4, o=4, op="linear", op_class="matmul", gemm=(1, 1, 4, 4))
    lay = lk.estimate(prof(one), tpu).layers[0]
    assert lay.array_utilization == pytest.approx(systolic.utilization(1, 4, 4, 4, 4))
    assert 0 < lay.array_utilization < 1
    # a GEMM with an empty dimension has no utilisation; a layer without a GEMM neither
    for gemm in ((1, 0, 4, 4), (1, 4, 0, 4), (1, 4, 4, 0)):            # M, K or N empty
        empty = layer(flops=0, i=4, o=4, op="linear", op_class="matmul", gemm=gemm)
        assert lk.estimate(prof(empty), tpu).layers[0].array_utilization is None, gemm
    assert lk.estimate(prof(layer(flops=8, i=4, o=4)), tpu).layers[0].array_utilization is None
    # a full tile (4 x 4 x 4 on a 4 x 4 array) runs at the array's own utilisation, compute-bound
    full = layer(flops=2 * 4**3 * 10**6, i=16, o=16, w=16, op="linear", op_class="matmul", gemm=(1, 4, 4, 4))
    u = systolic.utilization(4, 4, 4, 4, 4)
    assert layer_time(full, tpu, "fp32")[0] == pytest.approx(full.flops / (1e12 * u))


# ---- energy, cost, carbon --------------------------------------------------------------------------------------

def test_energy_of_a_memory_bound_layer():
    # 1e6 B in 10 µs at 100 GB/s: use of the bandwidth = 1 at eff_mem 1, 0.5 at eff_mem 0.5 (twice as long)
    lay = layer(i=125_000, o=125_000)
    full = lk.estimate(prof(lay), dev()).layers[0]
    assert full.energy_j == pytest.approx(110.0 * 1e-5)
    half = lk.estimate(prof(lay), dev(eff_mem=0.5)).layers[0]
    assert half.latency_s == pytest.approx(2e-5)
    assert half.energy_j == pytest.approx(10.0 * 2e-5 + 100.0 * 0.5 * 2e-5)


def test_energy_of_a_compute_bound_layer_at_another_dtype():
    # bf16 peak 2 TFLOP/s at eff 0.5: 1e9 FLOP take 1 ms at half the bf16 peak -> 10 + 100 x 0.5 = 60 W
    e = lk.estimate(prof(layer(flops=10**9)), dev(eff_compute=0.5), "bf16").layers[0]
    assert e.latency_s == pytest.approx(1e-3)
    assert e.energy_j == pytest.approx(60.0 * 1e-3)


def test_overhead_time_is_idle_power():
    # a layer that is all overhead: 1 ms at idle power (its work is nothing)
    e = lk.estimate(prof(layer(flops=1)), dev(overhead_s=1e-3))
    assert e.energy_j == pytest.approx(10.0 * (1e-3 + 1e-12) + 100.0 * 1e-12, rel=1e-6)
    assert e.energy_j < 10.0 * 1.01e-3


def test_cost_carbon_and_per_sample_figures():
    p = prof(layer(flops=10**9), batch=4)
    e = lk.estimate(p, dev(price_usd_per_hour=7.2), utilization=0.25)
    t = 1e-3                                                    # 1e9 FLOP at 1 TFLOP/s
    assert e.cost_usd == pytest.approx(7.2 / 3600 * t * 4)      # a quarter used: four times the bill
    assert e.cost_usd_per_1m == pytest.approx(e.cost_usd / 4 * 1e6)
    assert e.energy_j_per_sample == pytest.approx(110.0 * t / 4)
    assert e.throughput_per_s == pytest.approx(4 / t)
    assert e.utilization == 0.25 and e.batch == 4 and e.model == "toy" and e.device == "oracle"


def test_carbon_factor_regions_and_its_error(monkeypatch):
    d = dev(region="fr")
    # grams per joule: g/kWh / 3.6e6 J/kWh x PUE
    assert carbon_factor(d, None) == ("fr", pytest.approx(lk.carbon.intensity("fr") * lk.carbon.pue(d) / 3.6e6,
                                                          rel=1e-12))
    assert carbon_factor(d, "de")[0] == "de"
    assert carbon_factor(dev(region=None), None)[0] == "world"
    with pytest.raises(ValueError, match="nowhere"):
        carbon_factor(d, "nowhere")
    from labkit import carbon

    real = carbon.intensity

    def no_world(region):
        if region == "world":
            raise ValueError("no such region 'world'")
        return real(region)

    monkeypatch.setattr(carbon, "intensity", no_world)
    with pytest.raises(ValueError, match=r"device 'oracle' has no grid region and there is no 'world' default; "
                                         r"pass region="):
        carbon_factor(dev(region=None), None)
    with pytest.raises(ValueError, match="no such region 'world'"):   # asked for by name: the plain error
        carbon_factor(dev(region=None), "world")
    assert carbon_factor(dev(region=None), "fr")[0] == "fr"


# ---- arguments and memory ------------------------------------------------------------------------------------

def test_memory_fit_counts_every_layers_weights_and_the_largest_activation():
    a, b = layer("a", w=1000, i=10, o=20), layer("b", w=2000, i=20, o=5)
    need = (1000 + 2000) * 4 + (10 + 20) * 4                  # 12,120 B
    assert lk.estimate(prof(a, b), dev(mem_bytes=need)).latency_s > 0
    with pytest.raises(ValueError, match="needs 1.21e-05 GB"):
        lk.estimate(prof(a, b), dev(mem_bytes=need - 1))
    # the largest activation is the largest, not the last
    c = layer("c", i=100, o=100)
    need = 3000 * 4 + 200 * 4
    with pytest.raises(ValueError, match="needs"):
        lk.estimate(prof(c, a, b), dev(mem_bytes=need - 1))
    assert lk.estimate(prof(c, a, b), dev(mem_bytes=need)).latency_s >= 0


def test_arguments():
    p = prof(layer(flops=10))
    with pytest.raises(ValueError, match="has no layers"):
        lk.estimate(prof(), dev())
    with pytest.raises(ValueError, match="Profile"):
        lk.estimate(SimpleNamespace(layers=p.layers), dev())           # layers but no batch
    with pytest.raises(ValueError, match="Profile"):
        lk.estimate(SimpleNamespace(batch=1), dev())                    # batch but no layers
    assert lk.estimate(p, dev(), batch=1).batch == 1                       # batch 1 is allowed
    assert lk.estimate(p, dev(), utilization=1).utilization == 1.0
    assert lk.estimate(p, dev(), utilization=1e-9).cost_usd > 0
    assert lk.estimate(p, "h100-sxm", "bf16").device == "h100-sxm"          # a catalog name
    with pytest.raises(ValueError, match=r"device 'oracle' has no int8 peak; it supports: fp32, bf16\. "
                                         r"Pass dtype= one of those\."):
        lk.estimate(p, dev(), "int8")
    assert peak_flops(dev(), "bf16") == 2e12 and isinstance(peak_flops(dev(), "fp32"), float)


# ---- calibrated devices: the cost model (labkit.targets.devices) ----------------------------------------------

def test_op_fit_time_and_terms_by_hand():
    fit = OpFit(startup_s=1e-6, flops_per_s=1e9, bytes_per_s=1e8)
    # 1e6 FLOP = 1 ms; 2e4 B = 0.2 ms: overlapped, the larger; in sequence, the sum
    assert fit.terms(1e6, 2e4) == (pytest.approx(1e-3), pytest.approx(2e-4))
    assert fit.time_s(1e6, 2e4) == pytest.approx(1e-6 + 1e-3)
    seq = OpFit(1e-6, 1e9, 1e8, overlap=False, kernel_call_s=1e-7)
    assert seq.time_s(1e6, 2e4) == pytest.approx(1e-6 + 1.2e-3)
    assert seq.time_s(1e6, 2e4, calls=30) == pytest.approx(1e-6 + 1.2e-3 + 3e-6)
    # a slower memory tier caps the bytes rate; a faster one does not raise it
    assert fit.terms(0, 2e4, cap_bytes_per_s=1e7) == (0.0, pytest.approx(2e-3))
    assert fit.terms(0, 2e4, cap_bytes_per_s=1e9) == (0.0, pytest.approx(2e-4))
    assert fit.time_s(0, 0) == 1e-6                                  # nothing to do: the start-up alone
    assert OpFit(0, 1e9, 1e8).terms(5, 0) == (pytest.approx(5e-9), 0.0)



def test_op_fit_prices_each_gemm_shape_term_by_its_own_count():
    # distinct powers of ten so a dropped, swapped or subtracted term shows in the sum
    fit = OpFit(1e-6, 1e9, 1e8, overlap=False, kernel_call_s=1e-7, weight_s=1e-9, small_gemm_weight_s=1e-10,
                small_image_gemm_weight_s=1e-11)
    base = 1e-6 + 1e-3 + 2e-4
    assert fit.time_s(1e6, 2e4) == pytest.approx(base, rel=1e-12)     # no counts given: none of the terms
    assert fit.time_s(1e6, 2e4, weights=1000) == pytest.approx(base + 1e-6, rel=1e-12)
    assert fit.time_s(1e6, 2e4, small_weights=1000) == pytest.approx(base + 1e-7, rel=1e-12)
    assert fit.time_s(1e6, 2e4, image_weights=1000) == pytest.approx(base + 1e-8, rel=1e-12)
    assert fit.time_s(1e6, 2e4, calls=3, weights=1000, small_weights=1000, image_weights=1000) == pytest.approx(
        base + 3e-7 + 1e-6 + 1e-7 + 1e-8, rel=1e-12)

def test_tier_bandwidth_at_and_between_its_sizes():
    tiers = ((1e6, 100e9), (1e8, 10e9), (1e10, 1e9))
    assert tier_bytes_per_s(tiers, 999_999) == math.inf              # in cache: no cap
    assert tier_bytes_per_s(tiers, 1e6) == pytest.approx(100e9)     # at the first size: its rate
    assert tier_bytes_per_s(tiers, 1e7) == pytest.approx(55e9)      # halfway on log size
    assert tier_bytes_per_s(tiers, 1e8) == pytest.approx(10e9)
    assert tier_bytes_per_s(tiers, 1e9) == pytest.approx(5.5e9)     # halfway in the second segment
    assert tier_bytes_per_s(tiers, 1e12) == pytest.approx(1e9)      # beyond the last: the last
    assert tier_bytes_per_s((), 1e12) == math.inf
    assert tier_bytes_per_s(((1e6, 5e9),), 1e9) == 5e9
    assert tier_bytes_per_s(((1e6, 5e9),), 1e6) == 5e9                # one tier, at its size


def test_fresh_output_from_its_threshold():
    assert fresh_output_s((1000, 2e-9), 999) == 0.0
    assert fresh_output_s((1000, 2e-9), 1000) == pytest.approx(2e-6)    # at the threshold: mapped fresh
    assert fresh_output_s((1000, 2e-9), 5000) == pytest.approx(1e-5)
    assert fresh_output_s(None, 1e9) == 0.0 and fresh_output_s((), 1e9) == 0.0


def test_fit_for_and_call():
    own, cls, call = OpFit(1, 1, 1), OpFit(2, 1, 1), OpFit(3e-5, 1, 1)
    fits = {"pool/maxpool": own, "pool": cls, "call": call}
    assert fit_for(fits, "pool", "maxpool") is own
    assert fit_for(fits, "pool", "avgpool") is cls
    assert fit_for(fits, "matmul", "linear") is None
    assert fit_for(None, "pool", "maxpool") is None and fit_for({}, "pool", "maxpool") is None
    assert call_s(fits) == 3e-5 and call_s({"pool": cls}) == 0.0 and call_s(None) == 0.0


def test_calibrated_layer_with_tiers_fresh_outputs_and_a_call():
    fit = OpFit(startup_s=1e-5, flops_per_s=1e9, bytes_per_s=1e10)
    d = dev(kind="local", name="local", fits={"elementwise": fit, "call": OpFit(2e-4, 1, 1)},
            mem_tiers=((1e5, 1e9),), fresh_output=(4e5, 1e-9))
    lay = layer(flops=1000, i=100_000, o=100_000)                # 800 kB: past the tier, capped at 1 GB/s
    e = lk.estimate(prof(lay), d)
    t_layer = 1e-5 + max(1000 / 1e9, 8e5 / 1e9) + 4e5 * 1e-9     # + the fresh 400 kB output, at its threshold
    assert e.layers[0].latency_s == pytest.approx(t_layer)
    assert e.layers[0].bound == "memory"
    assert e.latency_s == pytest.approx(t_layer + 2e-4)            # the model call, once
    assert e.energy_j == pytest.approx(e.layers[0].energy_j + 10.0 * 2e-4)
    assert e.compute_bound_fraction == 0.0
    # at bf16 the same fit: only the bytes term changes (400 kB, past the tier), and the output is 200 kB (no faults)
    b = lk.estimate(prof(lay), d, "bf16").layers[0]
    assert b.latency_s == pytest.approx(1e-5 + 4e5 / 1e9)
    # compute-bound under the fit: 1e6 FLOP = 1 ms > 8 µs of bytes
    c = lk.estimate(prof(layer(flops=10**6, i=100, o=100)), d)
    assert c.layers[0].bound == "compute"
    assert c.compute_bound_fraction == pytest.approx(1.01e-3 / 1.21e-3)   # the call counts in the total only


def test_a_calibrated_tie_is_memory_bound():
    # 1000 FLOP at 1 GFLOP/s = 1 µs; 100 B at 100 MB/s = 1 µs: equal, so "memory"; one more FLOP: "compute"
    d = dev(kind="local", name="local", fits={"elementwise": OpFit(0.0, 1e9, 1e8)})
    assert layer_time(layer(flops=1000, i=12, o=13), d, "fp32") == (pytest.approx(1e-6), "memory")
    assert layer_time(layer(flops=1001, i=12, o=13), d, "fp32")[1] == "compute"


def test_a_profile_like_object_without_a_name():
    # estimate reads a Profile by its fields: an object with layers, batch and at_batch is estimated, named ""
    p = prof(layer(flops=10**6))
    duck = SimpleNamespace(layers=p.layers, batch=1, at_batch=lambda batch: p)
    e = lk.estimate(duck, dev())
    assert e.model == "" and e.latency_s == pytest.approx(1e-6)


def test_messages_name_what_was_given():
    with pytest.raises(ValueError, match=r"estimate takes a Profile \(from lk.profile\(model, example\)\), got list\."):
        lk.estimate([1, 2], dev())
    with pytest.raises(ValueError, match=r"^profile 'empty' has no layers to estimate\.$"):
        lk.estimate(prof(name="empty"), dev())
    with pytest.raises(ValueError, match=r"^profile '' has no layers to estimate\.$"):      # no name at all
        lk.estimate(SimpleNamespace(layers=(), batch=1), dev())
    with pytest.raises(ValueError, match=r"^utilization \(the fraction of the rented machine's time doing useful "
                                         r"work\) must be"):
        lk.estimate(prof(layer(flops=1)), dev(), utilization=2)


def test_memory_message_figures_and_advice():
    # int8 weights of 1,245,000,001 B on a device of 1,235,000,001 B: "1.25 GB" and "1.24 GB" at 3 digits
    # (one byte either way of the rounding boundary, so the GB divisor is exactly 1e9)
    d = dev(peak_flops={"fp32": 1e12, "int8": 1e12}, mem_bytes=1_235_000_001)
    with pytest.raises(ValueError, match=r"^model needs 1.25 GB at int8 \(weights \+ largest activation at batch 1\), "
                                         r"device oracle has 1.24 GB; try a smaller batch, a smaller dtype \(int8\), "
                                         r"or a device with more memory\.$"):
        lk.estimate(prof(layer(w=1_245_000_001)), d, "int8")
    # weights alone (no activations) that fill the memory exactly still fit
    assert lk.estimate(prof(layer(w=1000)), dev(mem_bytes=4000)).latency_s == pytest.approx(4000 / 1e11)


def test_compute_bound_fraction_sums_every_compute_bound_layer():
    # two compute-bound layers of 1 ms and 2 ms, one memory-bound of 1 ms: 3 of 4 ms
    e = lk.estimate(prof(layer("a", flops=10**9), layer("b", flops=2 * 10**9), layer("c", i=10_000_000,
                                                                                    o=15_000_000)), dev())
    assert [lay.bound for lay in e.layers] == ["compute", "compute", "memory"]
    assert e.latency_s == pytest.approx(4e-3) and e.compute_bound_fraction == pytest.approx(0.75)
    assert [(lay.name, lay.op, lay.op_class) for lay in e.layers] == [(n, "mul", "elementwise") for n in "abc"]


def test_calibrated_bound_uses_the_capped_rate_and_op_fits_and_kernel_calls():
    # 1e5 FLOP = 100 µs at 1 GFLOP/s; 800 kB = 80 µs at the fit's 10 GB/s, but 800 µs at the 1 GB/s tier it
    # streams from: memory-bound at 800 µs (the uncapped rate would call it compute-bound)
    d = dev(kind="local", name="local", fits={"elementwise": OpFit(0.0, 1e9, 1e10)}, mem_tiers=((1e5, 1e9),))
    t, bound = layer_time(layer(flops=10**5, i=100_000, o=100_000), d, "fp32")
    assert (t, bound) == (pytest.approx(8e-4), "memory")
    # an op's own fit wins over its class's
    fits = {"pool/maxpool": OpFit(1e-3, 1e12, 1e12), "pool": OpFit(2e-3, 1e12, 1e12)}
    d = dev(kind="local", name="local", fits=fits)
    assert layer_time(layer(op="maxpool", op_class="pool"), d)[0] == pytest.approx(1e-3)
    assert layer_time(layer(op="avgpool", op_class="pool"), d)[0] == pytest.approx(2e-3)
    # a depthwise convolution pays kernel_call_s per (channel x image): 8 groups x 2 images = 16 calls
    d = dev(kind="local", name="local", fits={"dwconv": OpFit(0.0, 1e12, 1e12, kernel_call_s=1e-6)})
    dw = layer(op="conv2d", op_class="dwconv", gemm=(8, 1, 9, 1), shape=(2, 8, 1, 1), o=16)
    assert dw.kernel_calls == 16
    assert layer_time(dw, d)[0] == pytest.approx(16e-6, rel=1e-3)
