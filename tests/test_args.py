"""Declarative argument checks (labkit.args): one vocabulary, one wording, numpy scalars accepted wherever a
Python one is — checked through the learner's public functions, not only through the rules."""

import math

import numpy as np
import pytest
import torch

import labkit as lk
from labkit.args import Bool, Int, Number, OneOf, Optional, check, check_int, checked

# ------------------------------------------------------------------------------------------------- the rules

@pytest.mark.parametrize("value", [4, np.int64(4), np.int32(4), np.uint8(4)])
def test_int_accepts_python_and_numpy_integers_and_returns_a_plain_int(value):
    out = check("batch", value, Int(low=1))
    assert out == 4 and type(out) is int
    assert type(check_int("epochs", value, 1)) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), 4.0, np.float64(4.0), "4", None, 0, -1])
def test_int_rejects_bools_floats_strings_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"^batch must be an int >= 1, got .*\.$"):
        check("batch", value, Int(low=1))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "1", None, np.float64("nan")])
def test_number_is_finite_and_never_a_bool(value):
    with pytest.raises(ValueError, match="must be a finite number"):
        check("x", value, Number())


def test_number_bounds_and_their_wording():
    assert check("u", np.float32(0.5), Number(low=0, high=1)) == 0.5
    assert type(check("u", np.int64(1), Number(low=0, high=1))) is float
    with pytest.raises(ValueError, match=r"^u must be a finite number in \(0, 1\], got 0\.$"):
        check("u", 0, Number(low=0, high=1, low_open=True))
    with pytest.raises(ValueError, match=r"^f must be a finite number in \[0, 1\), got 1\.$"):
        check("f", 1, Number(low=0, high=1, high_open=True))
    with pytest.raises(ValueError, match=r"^lr must be a positive finite number, got -1\.$"):
        check("lr", -1, Number(low=0, low_open=True))
    with pytest.raises(ValueError, match=r"^k must be an int in \[2, 16\], got 17\.$"):
        check("k", 17, Int(low=2, high=16))


def test_bool_accepts_numpy_bools_but_not_ints():
    assert check("fold", np.bool_(False), Bool()) is False
    assert check("fold", True, Bool()) is True
    for bad in (1, 0, "yes", None):
        with pytest.raises(ValueError, match=r"^fold must be True or False, got "):
            check("fold", bad, Bool())
    assert check("progress", None, Optional(Bool())) is None


def test_one_of_lists_near_matches():
    with pytest.raises(ValueError, match=r"unknown objective 'latncy'. Did you mean 'latency'\?"):
        check("objective", "latncy", OneOf(["latency", "energy", "cost"]))


def test_checked_normalises_by_name_and_refuses_unknown_names():
    @checked(n=Int(low=1), rate=Number(low=0))
    def f(n, rate=1.0):
        return n, rate

    assert f(np.int64(3), rate=np.float32(2.0)) == (3, 2.0) and type(f(np.int64(3))[0]) is int
    with pytest.raises(ValueError, match="rate must be a finite number >= 0"):
        f(1, rate=-1)
    with pytest.raises(TypeError, match="does not take"):
        checked(m=Int())(f)


def test_a_nested_path_names_the_field():
    spec = {"pools": [{"replicas": 2}, {"replicas": 0}]}
    with pytest.raises(ValueError, match=r"^pools\[1\]\.replicas must be an int >= 1, got 0\.$"):
        for i, pool in enumerate(spec["pools"]):
            check(f"pools[{i}].replicas", pool["replicas"], Int(low=1))


# ------------------------------------------------------------------------ public functions, numpy scalars

@pytest.fixture(scope="module")
def cnn_profile():
    return lk.profile(lk.zoo.build("cnn"), lk.zoo.example("cnn"))


def test_numpy_integers_work_wherever_ints_do(cnn_profile):
    # the issue: check_int rejected numpy.int64(4) while lk.estimate accepted it
    four = np.int64(4)
    assert lk.estimate(cnn_profile, "l4", batch=four) == lk.estimate(cnn_profile, "l4", batch=4)
    assert cnn_profile.at_batch(four) == cnn_profile.at_batch(4)
    kw = dict(edge="raspberry-pi-5", cloud="l4", link="wifi")
    assert lk.partition(cnn_profile, batch=four, **kw).latency_s == lk.partition(cnn_profile, batch=4, **kw).latency_s
    assert lk.systolic.array_cycles(four, np.int32(128), 128, np.int64(128), 128) == \
        lk.systolic.array_cycles(4, 128, 128, 128, 128)
    assert lk.systolic.utilization(four, 128, 128, 128, 128) == lk.systolic.utilization(4, 128, 128, 128, 128)
    assert tuple(lk.zoo.example("mlp", batch=np.int64(3), seed=np.int64(1)).shape)[0] == 3
    assert len(lk.data.tokens("test", n=np.int64(5))[0]) == 5
    m = lk.measure(lambda: None, warmup=np.int64(0), repeat=np.int64(5), progress=np.bool_(False))
    assert m.n == 5
    x = torch.linspace(-1, 1, 11)
    assert torch.equal(lk.compress.fake_quant(x, bits=np.int64(4)).codes, lk.compress.fake_quant(x, bits=4).codes)
    r = lk.systolic.simulate(np.ones((3, 2), int), np.ones((2, 2), int), rows=np.int64(2), cols=np.int64(2))
    assert r.cycles == lk.systolic.array_cycles(3, 2, 2, 2, 2)


BAD_BATCH = r"^batch( \([^)]*\))? must be (None or )?an int >= 1, got 0\.$"


@pytest.mark.parametrize("call", [
    lambda p: lk.estimate(p, "l4", batch=0),
    lambda p: lk.partition(p, "raspberry-pi-5", "l4", "wifi", batch=0),
    lambda p: p.at_batch(0),
    lambda p: lk.zoo.example("mlp", batch=0),
    lambda p: lk.measure(lambda: None, repeat=3, warmup=0).throughput_per_s(batch=0),
], ids=["estimate", "partition", "at_batch", "zoo.example", "throughput_per_s"])
def test_one_wording_for_a_bad_batch_everywhere(cnn_profile, call):
    with pytest.raises(ValueError, match=BAD_BATCH):
        call(cnn_profile)


@pytest.mark.parametrize("bad", [True, 2.0, np.float64(2.0), "2"])
def test_bools_and_floats_are_not_batches(cnn_profile, bad):
    with pytest.raises(ValueError, match="batch must be an int >= 1"):
        lk.estimate(cnn_profile, "l4", batch=bad)
    with pytest.raises(ValueError, match="batch must be"):
        lk.partition(cnn_profile, "raspberry-pi-5", "l4", "wifi", batch=bad)
