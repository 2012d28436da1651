"""lk.data: bundled digits and the generated token task, checked against scikit-learn's own copy of the
digits, a brute-force label count and a bilinear-upsampling identity."""

from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import labkit as lk


@pytest.fixture(scope="module")
def sk():
    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target


def test_digits_split_sizes_types_and_ranges():
    x_tr, y_tr = lk.data.digits("train")
    x_te, y_te = lk.data.digits("test")
    assert x_tr.shape == (1437, 1, 8, 8) and x_te.shape == (360, 1, 8, 8)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert float(x_tr.min()) == 0.0 and float(x_tr.max()) == 1.0
    assert set(y_tr.tolist()) == set(range(10)) == set(y_te.tolist())


def test_digits_are_a_stratified_partition_of_sklearn_digits(sk):
    images, target = sk
    x_tr, y_tr = lk.data.digits("train")
    x_te, y_te = lk.data.digits("test")
    # every (image, label) of sklearn appears exactly once across train + test
    def key(img, label):
        return (np.asarray(img).reshape(-1).tobytes(), int(label))
    ours = Counter(key(i, t) for x, y in ((x_tr, y_tr), (x_te, y_te)) for i, t in zip(x.numpy(), y.numpy()))
    theirs = Counter(key(i, t) for i, t in zip(images, target))
    assert ours == theirs
    # stratified: each class's test share is 20 % to within one example
    for c in range(10):
        n_c = int((target == c).sum())
        assert abs(int((y_te == c).sum()) - 0.2 * n_c) <= 1


def test_digits_deterministic_and_seed_changes_split():
    a, b = lk.data.digits("test"), lk.data.digits("test")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = lk.data.digits("test", seed=1)
    assert not torch.equal(a[0], c[0])


def test_digits_32_is_bilinear_upsampling_of_8():
    x8, y8 = lk.data.digits("test", size=8)
    x32, y32 = lk.data.digits("test", size=32)
    assert x32.shape == (360, 1, 32, 32) and torch.equal(y8, y32)
    assert float(x32.min()) >= 0.0 and float(x32.max()) <= 1.0
    # Half-pixel bilinear at exactly 4x samples each input pixel p at offsets -3/8, -1/8, 1/8, 3/8 (edges
    # clamped). Averaging those 4 linear interpolations gives p + (p_prev - 2p + p_next) / 8 per axis, i.e. the
    # separable filter [1/8, 3/4, 1/8] with replicate padding: the 4x4 mean of x32 must equal that filter on x8.
    pooled = F.avg_pool2d(x32, 4)                                      # (N, 1, 8, 8)
    k1 = torch.tensor([1 / 8, 3 / 4, 1 / 8])
    kernel = torch.outer(k1, k1).view(1, 1, 3, 3)
    expected = F.conv2d(F.pad(x8, (1, 1, 1, 1), mode="replicate"), kernel)
    assert torch.allclose(pooled, expected, atol=1e-6)


def test_tokens_labels_match_brute_force_count():
    x, y = lk.data.tokens("train", n=500, seed=3)
    assert x.shape == (500, 32) and x.dtype == torch.int64 and y.dtype == torch.int64
    assert int(x.min()) >= 0 and int(x.max()) < 32
    for row, label in zip(x.tolist(), y.tolist()):
        counts = Counter(t for t in row if t < 10)
        top = max(counts.values())
        assert [t for t, c in counts.items() if c == top] == [label]   # unique most-frequent digit token
    assert set(y.tolist()) == set(range(10))


def test_tokens_deterministic_and_streams_differ():
    a = lk.data.tokens("test", n=100)
    assert torch.equal(a[0], lk.data.tokens("test", n=100)[0])
    assert not torch.equal(a[0], lk.data.tokens("train", n=100)[0])
    assert not torch.equal(a[0], lk.data.tokens("test", n=100, seed=1)[0])
    assert lk.data.tokens("test")[0].shape == (2000, 32)


def test_for_model_matches_zoo_input_shapes():
    for name in lk.zoo.names():
        x, y = lk.data.for_model(name, "test")
        spec = lk.zoo.info(name)
        assert tuple(x.shape[1:]) == spec.input_shape and len(x) == len(y)
        assert str(x.dtype) == f"torch.{spec.input_dtype}"


def test_accuracy_matches_a_direct_count():
    model = lk.zoo.build("mlp")
    x, y = lk.data.for_model("mlp")
    with torch.no_grad():
        direct = (model(x).argmax(1) == y).float().mean().item()
    assert lk.data.accuracy(model, x, y, batch=7) == pytest.approx(direct, abs=1e-9)


@pytest.mark.parametrize("call, match", [
    (lambda: lk.data.digits("valid"), "split"),
    (lambda: lk.data.digits(size=16), "size"),
    (lambda: lk.data.digits(seed=-1), "seed"),
    (lambda: lk.data.tokens(n=0), "n must"),
    (lambda: lk.data.for_model("lenet"), "lenet"),
    (lambda: lk.data.accuracy(lk.zoo.build("mlp"), torch.zeros(3, 64), torch.zeros(2)), "same"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_noisy_digits_checksum_shape_and_independent_rebuild():
    """The generated split is pinned by a sha256 (a change to the generator shows here) and rebuilt from
    scikit-learn's digits with its own numpy code."""
    import hashlib

    x, y = lk.data.noisy_digits()
    assert x.shape == (1800, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert hashlib.sha256(x.numpy().tobytes()).hexdigest() == (
        "a6a470cfe92975292a2aed4cf31e75e70fa48987ce4f1cb95e1eb7cd9e7f711e")
    # independent rebuild: copy-major tiles of the test split + N(0, 0.1) from rng([0, 7]), clipped to [0, 1]
    x_te, y_te = lk.data.digits("test")
    rng = np.random.default_rng([0, 7])
    clean = np.concatenate([x_te.numpy()] * 5)
    want = np.clip(clean + rng.standard_normal(clean.shape).astype(np.float32) * np.float32(0.1), 0, 1)
    assert np.array_equal(x.numpy(), want) and torch.equal(y, torch.cat([y_te] * 5))
    noise = x.numpy() - clean
    inside = (clean > 0.2) & (clean < 0.8)                  # where clipping cannot bite (0.2 = 2 sigma)
    assert abs(float(noise[inside].std()) - 0.1) < 0.01
    # copies differ from each other; seed changes the noise; size 32 is the same bilinear upsampling as digits
    assert not torch.equal(x[:360], x[360:720])
    assert not torch.equal(lk.data.noisy_digits(seed=1)[0], x)
    x32, y32 = lk.data.noisy_digits(size=32, copies=1, sigma=0.0)
    assert torch.equal(x32, lk.data.digits("test", size=32)[0]) and torch.equal(y32, y_te)
    with pytest.raises(ValueError):
        lk.data.noisy_digits(size=16)
