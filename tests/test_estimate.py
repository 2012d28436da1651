"""lk.estimate against hand arithmetic on devices and profiles built directly (labs 01, 05, 10)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labkit as lk
from labkit import systolic
from labkit.estimate import layer_time
from labkit.targets import OpFit


def toy_device(**kw):
    """peak 1 TFLOP/s fp32, 4 TFLOP/s bf16; 100 GB/s; eff 0.5 / 0.8; 1 µs overhead; 10-110 W; $3.60/h."""
    base = dict(name="toy-gpu", kind="cloud-gpu", vendor="test", peak_flops={"fp32": 1e12, "bf16": 4e12},
                mem_bw_bytes_per_s=1e11, mem_bytes=16e9, idle_w=10.0, peak_w=110.0, price_usd_per_hour=3.6,
                region="fr", eff_compute=0.5, eff_mem=0.8, overhead_s=1e-6)
    base.update(kw)
    return lk.Device(**base)


def linear(name="fc", M=1000, K=1000, N=1000, inputs=("input",)):
    """A bias-free linear layer x[M,K] @ w[K,N]: M*K*N MACs."""
    macs = M * K * N
    return lk.Layer(name, "linear", "matmul", inputs, macs=macs, flops=2 * macs, params=K * N,
                    weight_elems=K * N, input_elems=M * K, output_elems=M * N, output_shape=(M, N),
                    gemm=(1, M, K, N))


def elementwise(name, flops, elems):
    """An op reading `elems` and writing `elems` elements, no weights."""
    return lk.Layer(name, "mul", "elementwise", ("input",), macs=0, flops=flops, params=0, weight_elems=0,
                    input_elems=elems, output_elems=elems, output_shape=(elems,))


def prof(*layers, batch=1):
    return lk.Profile("toy", "torch", batch, "fp32", tuple(layers),
                      params=sum(lay.params for lay in layers),
                      input_elems=layers[0].input_elems, output_elems=layers[-1].output_elems)


def test_hand_computed_single_layer():
    d = toy_device()
    e = lk.estimate(prof(linear()), d, "fp32")
    # flops = 2 * 1000^3 = 2e9; bytes = (1e6 weights + 1e6 in + 1e6 out) * 4 B = 1.2e7
    # compute = 2e9 / (1e12 * 0.5) = 4e-3 s; memory = 1.2e7 / (1e11 * 0.8) = 1.5e-4 s -> compute-bound
    t = 4e-3 + 1e-6                                   # + overhead
    assert e.latency_s == pytest.approx(t)
    lay = e.layers[0]
    assert (lay.bound, lay.flops, lay.bytes) == ("compute", 2_000_000_000, 12_000_000)
    # energy: u = (2e9 / t) / 1e12, so (peak - idle) * u * t = 100 W * 2e9 / 1e12 = 0.2 J; idle 10 W * t
    assert e.energy_j == pytest.approx(10 * t + 0.2)
    assert e.cost_usd == pytest.approx(3.6 * t / 3600)
    assert e.throughput_per_s == pytest.approx(1 / t)
    assert e.compute_bound_fraction == 1.0
    assert e.cost_usd_per_1m == pytest.approx(e.cost_usd * 1e6)


def test_bound_switches_at_the_ridge_point():
    d = toy_device(overhead_s=0.0)
    ridge = (1e12 * 0.5) / (1e11 * 0.8)                       # 6.25 FLOP/byte
    elems = 1_000_000
    nbytes = 2 * elems * 4                                    # read + write, fp32
    below = elementwise("below", int(0.99 * ridge * nbytes), elems)
    above = elementwise("above", int(1.01 * ridge * nbytes), elems)
    e = lk.estimate(prof(below, above), d)
    assert [lay.bound for lay in e.layers] == ["memory", "compute"]
    assert e.layers[0].latency_s == pytest.approx(nbytes / (1e11 * 0.8))       # memory roof
    assert e.layers[1].latency_s == pytest.approx(above.flops / (1e12 * 0.5))  # compute roof
    # attained FLOP/s never exceeds the roof
    for lay in e.layers:
        assert lay.flops_per_s <= min(5e11, lay.intensity * 8e10) * (1 + 1e-9)


def test_memory_op_without_flops_is_memory_bound():
    copy = lk.Layer("reshape", "reshape", "memory", ("input",), 0, 0, 0, 0, 100, 100)
    e = lk.estimate(prof(copy), toy_device())
    assert e.layers[0].bound == "memory"
    assert e.layers[0].latency_s == pytest.approx(800 / 8e10 + 1e-6)


def test_batch_rescales_work_not_weights():
    d = toy_device()
    p = prof(linear(M=4, K=256, N=512), batch=4)
    e4, e8 = lk.estimate(p, d), lk.estimate(p, d, batch=8)
    assert (e4.batch, e8.batch) == (4, 8)
    assert e8.layers[0].flops == 2 * e4.layers[0].flops
    weights = 256 * 512 * 4
    assert e8.layers[0].bytes - weights == 2 * (e4.layers[0].bytes - weights)
    assert e8.throughput_per_s == pytest.approx(8 / e8.latency_s)


def test_dtype_changes_bytes_and_unknown_dtypes_raise():
    d = toy_device()
    p = prof(linear(M=8, K=64, N=64))
    fp32, bf16 = lk.estimate(p, d, "fp32"), lk.estimate(p, d, "bfloat16")
    assert bf16.dtype == "bf16"
    assert bf16.layers[0].bytes * 2 == fp32.layers[0].bytes
    with pytest.raises(ValueError, match="fp32, bf16"):
        lk.estimate(p, d, "int8")                             # the device has no int8 peak
    with pytest.raises(ValueError, match="dtype"):
        lk.estimate(p, d, "fp13")


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 2048), K=st.integers(1, 2048), N=st.integers(1, 2048),
       dtype=st.sampled_from(["fp32", "bf16"]))
def test_energy_between_idle_and_peak_power(M, K, N, dtype):
    e = lk.estimate(prof(linear(M=M, K=K, N=N)), toy_device(), dtype)
    lay = e.layers[0]
    assert 10.0 * lay.latency_s <= lay.energy_j <= 110.0 * lay.latency_s * (1 + 1e-12)


def test_cost_utilization_and_unpriced_devices():
    p = prof(linear())
    full = lk.estimate(p, toy_device())
    half = lk.estimate(p, toy_device(), utilization=0.5)
    assert full.cost_usd == pytest.approx(3.6 * full.latency_s / 3600)
    assert half.cost_usd == pytest.approx(2 * full.cost_usd)
    owned = lk.estimate(p, toy_device(price_usd_per_hour=None, kind="edge-gpu"), region="de")
    assert owned.cost_usd == 0.0


def test_carbon_is_energy_times_pue_times_intensity():
    d = toy_device(region="fr")
    p = prof(linear())
    e = lk.estimate(p, d)
    grams_per_kwh = lk.carbon.intensity("fr")
    assert e.region == "fr"
    assert e.carbon_g == pytest.approx(e.energy_j / 3.6e6 * lk.carbon.pue(d) * grams_per_kwh)
    elsewhere = lk.estimate(p, d, region="de")                # region= overrides the device's
    assert elsewhere.carbon_g / e.carbon_g == pytest.approx(lk.carbon.intensity("de") / grams_per_kwh)


def test_memory_fit_error():
    p = prof(linear(M=1000, K=1000, N=1000))
    # weights 4 MB + largest activation (in + out) 8 MB at fp32 = 12 MB
    with pytest.raises(ValueError, match=r"needs 0.012 GB at fp32.*toy-gpu has 0.01 GB.*smaller batch"):
        lk.estimate(p, toy_device(mem_bytes=10e6))
    assert lk.estimate(p, toy_device(mem_bytes=12e6)).latency_s > 0     # exactly fits
    assert lk.estimate(p, toy_device(mem_bytes=10e6), "bf16").dtype == "bf16"   # 6 MB at bf16


@pytest.mark.parametrize("batch", [0, -1, 1.5, True, "8"])
def test_bad_batch(batch):
    with pytest.raises(ValueError, match="batch must be an int >= 1"):
        lk.estimate(prof(linear()), toy_device(), batch=batch)


@pytest.mark.parametrize("utilization", [0, -0.5, 1.5, "full", True])
def test_bad_utilization(utilization):
    with pytest.raises(ValueError, match=r"utilization .* \(0, 1\]"):
        lk.estimate(prof(linear()), toy_device(), utilization=utilization)


def test_not_a_profile():
    with pytest.raises(ValueError, match="Profile"):
        lk.estimate([1, 2, 3], toy_device())


def test_systolic_array_utilization_slows_compute():
    tpu = toy_device(name="toy-tpu", kind="tpu", array=(128, 128), overhead_s=0.0)
    M = 4096
    aligned, spilled = linear("aligned", M, 128, 128), linear("spilled", M, 129, 128)
    e = lk.estimate(prof(aligned, spilled), tpu)
    for lay, (K, N) in zip(e.layers, [(128, 128), (129, 128)]):
        u = systolic.utilization(M, K, N, 128, 128)
        assert lay.array_utilization == pytest.approx(u)
        assert lay.bound == "compute"
        assert lay.latency_s == pytest.approx(2 * M * K * N / (1e12 * 0.5 * u))
    # one extra row of K doubles the tiles: ~2x the time for 0.8% more work
    assert e.layers[1].latency_s / e.layers[0].latency_s == pytest.approx(2 * 129 / 128 * 128 / 129, rel=1e-9)
    # the same layer on a device without an array runs at the plain roof
    plain = lk.estimate(prof(aligned), toy_device(overhead_s=0.0))
    assert plain.layers[0].array_utilization is None
    assert plain.layers[0].latency_s < e.layers[0].latency_s


def test_calibrated_device_uses_fits_and_falls_back():
    fit = OpFit(startup_s=2e-5, flops_per_s=1e10, bytes_per_s=5e9)
    d = toy_device(kind="local", name="local", fits={"matmul": fit})
    fc = linear(M=8, K=100, N=100)
    relu = elementwise("relu", 800, 800)
    assert lk.estimate(prof(fc, relu), d).layers[0].latency_s == pytest.approx(
        2e-5 + max(fc.flops / 1e10, (10_000 + 800 + 800) * 4 / 5e9))
    t, bound = layer_time(relu, d, "fp32")                    # no fit for element-wise: the roofline
    assert t == pytest.approx(1e-6 + max(800 / 5e11, 1600 * 4 / 8e10))
    assert bound == "memory"


def test_totals_frame_and_repr():
    p = prof(linear("a", 64, 64, 64), elementwise("relu", 4096, 4096), linear("b", 64, 64, 10))
    e = lk.estimate(p, toy_device())
    assert e.latency_s == pytest.approx(sum(lay.latency_s for lay in e.layers))
    assert e.energy_j == pytest.approx(sum(lay.energy_j for lay in e.layers))
    frame = e.to_frame()
    assert list(frame.index) == ["a", "relu", "b"]
    assert frame["flops"].sum() == p.flops
    text = repr(e)
    assert "toy-gpu" in text and "µs" in text and "per 1M" in text
    assert math.isfinite(e.carbon_g) and e.carbon_g > 0


# ---- with the real catalog (lk.device) and profiler (lk.profile) ------------------------------------------

@pytest.fixture(scope="module")
def zoo_profiles():
    import warnings

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # the profiler warns about ops it has no MAC rule for
        for name in ("cnn", "transformer"):
            model = lk.zoo.build(name)
            out[name] = (lk.profile(model, lk.zoo.example(name, 1)), lk.profile(model, lk.zoo.example(name, 8)))
    return out


@pytest.mark.parametrize("name", ["cnn", "transformer"])
@pytest.mark.parametrize("device", ["tpu-v5e", "h100-sxm", "jetson-orin-nano"])
def test_rescaled_batch_matches_profiling_at_that_batch(zoo_profiles, name, device):
    # oracle: the profiler run on a batch-8 example; estimate rescales the batch-1 profile instead
    p1, p8 = zoo_profiles[name]
    rescaled, direct = lk.estimate(p1, device, "bf16", batch=8), lk.estimate(p8, device, "bf16")
    assert [lay.flops for lay in rescaled.layers] == [lay.flops for lay in direct.layers]
    assert [lay.bytes for lay in rescaled.layers] == [lay.bytes for lay in direct.layers]
    # the same GEMM shapes, so the same array utilisation and time (attention's batch sits in groups)
    assert [lay.array_utilization for lay in rescaled.layers] == [lay.array_utilization for lay in direct.layers]
    assert rescaled.latency_s == pytest.approx(direct.latency_s, rel=1e-12)


def test_catalog_devices_by_name(zoo_profiles):
    p, _ = zoo_profiles["cnn"]
    cloud = lk.estimate(p, "h100-sxm", "bf16")
    h100 = lk.device("h100-sxm")
    assert cloud.region == h100.region
    assert cloud.carbon_g == pytest.approx(
        cloud.energy_j / 3.6e6 * lk.carbon.pue(h100) * lk.carbon.intensity(h100.region))
    assert cloud.cost_usd == pytest.approx(h100.price_usd_per_hour * cloud.latency_s / 3600)
    edge = lk.estimate(p, "jetson-orin-nano", "fp16")       # owned, no region: world grid, no price
    assert (edge.region, edge.cost_usd) == ("world", 0.0)
    assert edge.carbon_g == pytest.approx(edge.energy_j / 3.6e6 * lk.carbon.intensity("world"))
    with pytest.raises(ValueError, match="bf16, int8"):
        lk.estimate(p, "tpu-v5e", "fp32")                     # the TPU has no fp32 peak
    assert lk.estimate(p, "coral-edge-tpu", "int8").layers[0].array_utilization is not None


@pytest.mark.parametrize("name", ["cnn", "transformer"])
@pytest.mark.parametrize("batch", [1, 64])
def test_microcontroller_memory_fit(zoo_profiles, name, batch):
    # oracle from the Profile's own byte counts: weights + the largest layer's input + output at that batch
    mcu = lk.device("stm32h7")                                # 1 MiB of SRAM
    p = zoo_profiles[name][1].with_dtype("int8")              # profiled at batch 8
    scale = batch / p.batch
    need = p.weight_bytes + max(int(lay.input_bytes * scale) + int(lay.output_bytes * scale) for lay in p.layers)
    if need > mcu.mem_bytes:
        with pytest.raises(ValueError, match=r"device stm32h7 has 0.00105 GB; try a smaller batch"):
            lk.estimate(p, mcu, "int8", batch=batch)
    else:
        assert lk.estimate(p, mcu, "int8", batch=batch).latency_s > 0


def test_estimate_stays_callable_after_importing_its_module():
    import importlib

    importlib.import_module("labkit.estimate")
    import labkit.plot  # noqa: F401  (imports labkit.estimate too)

    assert isinstance(lk.estimate(prof(linear(M=2, K=4, N=4)), toy_device()), lk.Estimate)


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 512), K=st.integers(1, 512), N=st.integers(1, 512),
       beat=st.sampled_from([0.25, 0.9, 1.0, 1.5, 4.0, 100.0]), memory=st.booleans())
def test_energy_power_is_clamped_to_the_idle_peak_range(M, K, N, beat, memory):
    # A calibrated fit can run faster than the datasheet peak (beat > 1): the use of the bound resource
    # would exceed 1, and the power must then stop at peak_w, never above it. Below the peak, power is
    # idle + (peak - idle) x use, the use being attained / peak (the closed form written out here).
    peak_flops, bw = 1e12, 1e11
    from labkit.targets import OpFit

    fit = OpFit(0.0, peak_flops * beat, 1e30) if not memory else OpFit(0.0, 1e30, bw * beat)
    d = toy_device(fits={"matmul": fit}, eff_compute=1.0, eff_mem=1.0, overhead_s=0.0)
    lay = lk.estimate(prof(linear(M=M, K=K, N=N)), d).layers[0]
    power_w = lay.energy_j / lay.latency_s
    use = min(beat, 1.0)
    assert power_w == pytest.approx(10.0 + 100.0 * use, rel=1e-9)
    assert power_w <= 110.0 * (1 + 1e-12)
