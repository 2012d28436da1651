"""lk.compress pruning (lab 03) against oracles: brute-force magnitude ranks, a hand-built channel-pruned cnn."""

import copy

import pytest
import torch

import labkit as lk

CNN_LAYERS = ["features.0.0", "features.2.0", "features.4.0", "fc"]


@pytest.fixture(scope="module")
def cnn():
    return lk.zoo.load("cnn").model


@pytest.fixture(scope="module")
def test_data():
    x, y = lk.data.for_model("cnn", "test")
    return x[:120], y[:120]


def _weights(model):
    modules = dict(model.named_modules())
    return {name: modules[name].weight.detach().clone() for name in CNN_LAYERS}


def test_prunable_layers(cnn):
    assert lk.compress.prunable_layers(cnn) == CNN_LAYERS


def test_layer_scope_zeros_exactly_the_smallest_weights_of_each_layer(cnn, test_data):
    before = _weights(cnn)
    pruned, rep = lk.compress.prune_magnitude(cnn, 0.7, test_data, scope="layer")
    after = _weights(pruned)
    for name in CNN_LAYERS:
        w, v = before[name].flatten(), after[name].flatten()
        k = round(0.7 * w.numel())
        smallest = set(torch.argsort(w.abs())[:k].tolist())          # brute force: the k smallest |w|
        assert set(torch.nonzero(v == 0).flatten().tolist()) == smallest, name
        kept = v != 0
        assert torch.equal(v[kept], w[kept]), name                   # the rest untouched
    assert _weights(cnn)["fc"].count_nonzero() == before["fc"].numel()   # the original is not modified
    total = sum(w.numel() for w in before.values())
    assert lk.compress.sparsity(pruned) == pytest.approx(sum(round(0.7 * w.numel()) for w in before.values())
                                                         / total, abs=1e-12)
    assert rep.size_bytes == lk.compress.size_bytes(cnn)             # dense storage: same file size
    assert rep.params == sum(p.numel() for p in cnn.parameters())
    assert not any(hasattr(m, "weight_mask") for m in pruned.modules())  # masks baked in: a plain model


def test_global_scope_one_threshold_over_all_layers(cnn, test_data):
    before = _weights(cnn)
    pruned, _ = lk.compress.prune_magnitude(cnn, 0.8, test_data)
    after = _weights(pruned)
    all_w = torch.cat([w.flatten() for w in before.values()])
    zero = torch.cat([v.flatten() == 0 for v in after.values()])
    assert int(zero.sum()) == round(0.8 * all_w.numel())
    assert all_w[zero].abs().max() <= all_w[~zero].abs().min()       # everything pruned is below everything kept
    per_layer = [lk.compress.sparsity(pruned, [name]) for name in CNN_LAYERS]
    assert max(per_layer) - min(per_layer) > 0.05                   # global: layers end at different sparsities


def test_only_the_named_layers_are_pruned(cnn, test_data):
    pruned, _ = lk.compress.prune_magnitude(cnn, 0.5, test_data, layers=["features.2.0"])
    assert lk.compress.sparsity(pruned, "features.2.0") == 0.5
    for name in ("features.0.0", "features.4.0", "fc"):
        assert torch.equal(_weights(pruned)[name], _weights(cnn)[name])


def test_prune_magnitude_validates(cnn, test_data):
    with pytest.raises(ValueError, match=r"sparsity must be a finite number in \[0, 1\]"):
        lk.compress.prune_magnitude(cnn, 1.5, test_data)
    with pytest.raises(ValueError, match="unknown scope 'globl'.*'global'"):
        lk.compress.prune_magnitude(cnn, 0.5, test_data, scope="globl")
    with pytest.raises(ValueError, match="unknown prunable layer.*'features.2.1'.*Did you mean.*'features.2.0'"):
        lk.compress.prune_magnitude(cnn, 0.5, test_data, layers=["features.2.1"])
    with pytest.raises(ValueError, match="data must be a pair"):
        lk.compress.prune_magnitude(cnn, 0.5, None)


def test_sensitivity_scan_matches_pruning_each_layer_by_hand(cnn, test_data):
    x, y = test_data
    scan = lk.compress.sensitivity(cnn, test_data, sparsities=(0.0, 0.6, 0.95), progress=False)
    assert scan.layers == tuple(CNN_LAYERS) and len(scan.rows) == 12
    assert scan.baseline_accuracy == lk.data.accuracy(cnn, x, y)
    for name in ("features.0.0", "fc"):
        for s in (0.0, 0.95):                                      # oracle: prune one layer by kthvalue, by hand
            model = copy.deepcopy(cnn)
            w = dict(model.named_modules())[name].weight
            k = round(s * w.numel())
            if k:
                threshold = w.detach().abs().flatten().kthvalue(k).values
                with torch.no_grad():
                    w[w.abs() <= threshold] = 0
            assert scan.accuracy(name, s) == lk.data.accuracy(model, x, y), (name, s)
    frame = scan.to_frame()
    assert list(frame.index) == CNN_LAYERS and list(frame.columns) == [0.0, 0.6, 0.95]
    assert scan.most_sensitive() == frame.mean(axis=1).idxmin()
    assert scan.most_sensitive(0.95) == frame[0.95].idxmin()
    assert "most sensitive" in repr(scan)
    with pytest.raises(ValueError, match="sparsity 0.5 was not scanned"):
        scan.accuracy("fc", 0.5)
    with pytest.raises(ValueError, match="unknown layer"):
        scan.accuracy("fc2", 0.6)


def test_plot_sensitivity_draws_the_scan(cnn, test_data):
    import matplotlib

    matplotlib.use("Agg")
    scan = lk.compress.sensitivity(cnn, test_data, sparsities=(0.5, 0.9), layers=["fc", "features.0.0"],
                                   progress=False)
    ax = lk.plot.sensitivity(scan)
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.lines}
    assert lines["fc"] == [100 * scan.accuracy("fc", 0.5), 100 * scan.accuracy("fc", 0.9)]
    assert len(lines) == 3                                         # two layers + the unpruned accuracy
    with pytest.raises(ValueError, match="scan must be the Sensitivity"):
        lk.plot.sensitivity([1, 2])


def _hand_pruned_cnn(model, amount):
    """The cnn with, per conv, the int(n * (1 - amount)) filters of largest L1 norm kept, built by hand."""
    from torch import nn

    small = copy.deepcopy(model)
    prev = torch.arange(1)                                          # the input's one channel
    for i in (0, 2, 4):
        conv, bn = model.features[i][0], model.features[i][1]
        n = conv.out_channels
        keep = torch.sort(torch.topk(conv.weight.abs().sum((1, 2, 3)), int(n * (1 - amount))).indices).values
        new = nn.Conv2d(len(prev), len(keep), 3, 1, 1, bias=False)
        new.weight.data = conv.weight.data[keep][:, prev].clone()
        nbn = nn.BatchNorm2d(len(keep)).eval()
        for attr in ("weight", "bias", "running_mean", "running_var"):
            getattr(nbn, attr).data = getattr(bn, attr).data[keep].clone()
        small.features[i][0], small.features[i][1] = new, nbn
        prev = keep
    cols = (prev[:, None] * 16 + torch.arange(16)[None, :]).flatten()  # flatten: channel c -> columns 16c..16c+15
    fc = nn.Linear(len(cols), 10)
    fc.weight.data, fc.bias.data = model.fc.weight.data[:, cols].clone(), model.fc.bias.data.clone()
    small.fc = fc
    return small.eval()


def test_prune_channels_equals_a_hand_built_smaller_cnn(cnn, test_data):
    x, _ = test_data
    small, rep = lk.compress.prune_channels(cnn, 0.5, test_data)
    oracle = _hand_pruned_cnn(cnn, 0.5)
    with torch.no_grad():
        assert torch.allclose(small(x), oracle(x), atol=1e-5)
    assert rep.params == sum(p.numel() for p in oracle.parameters()) < sum(p.numel() for p in cnn.parameters())
    assert rep.size_bytes < 0.5 * lk.compress.size_bytes(cnn)
    assert lk.profile(small, x[:1]).macs < 0.4 * lk.profile(cnn, x[:1]).macs  # inner convs lose in and out
    assert [small.features[i][0].out_channels for i in (0, 2, 4)] == [8, 16, 32]
    assert cnn.features[0][0].out_channels == 16                    # the original is untouched


def test_prune_channels_amount_rounding_and_layers(cnn, test_data):
    with torch.no_grad():                                           # as in a notebook with grad disabled
        small, _ = lk.compress.prune_channels(cnn, 0.3, test_data, layers=["features.2.0"])
    assert [small.features[i][0].out_channels for i in (0, 2, 4)] == [16, int(32 * 0.7), 64]
    assert small.fc.in_features == 64 * 16
    with pytest.raises(ValueError, match=r"amount must be a finite number in \[0, 1\)"):
        lk.compress.prune_channels(cnn, 1.0, test_data)


def test_prune_channels_with_a_keep_selector(cnn, test_data):
    """keep= replaces the L1 rule (lab 03 passes the learner's): an L1 selector written out reproduces the
    default; another selector keeps exactly the channels it names; a wrong count is refused."""
    x, _ = test_data
    seen = []

    def l1(weight, amount):
        seen.append(tuple(weight.shape))
        n = weight.shape[0]
        return sorted(weight.abs().flatten(1).sum(1).argsort(descending=True)[:int(n * (1 - amount))].tolist())

    small = lk.compress.prune_channels(cnn, 0.5, test_data).model
    mine = lk.compress.prune_channels(cnn, 0.5, test_data, keep=l1).model
    assert sorted(seen) == sorted(tuple(cnn.features[i][0].weight.shape) for i in (0, 2, 4))   # not the fc
    with torch.no_grad():
        assert torch.allclose(small(x), mine(x), atol=1e-5)
    first = lk.compress.prune_channels(cnn, 0.25, test_data, keep=lambda w, a: range(int(len(w) * (1 - a)))).model
    assert torch.equal(first.features[0][0].weight, cnn.features[0][0].weight[:12])
    assert torch.equal(first.features[2][0].weight, cnn.features[2][0].weight[:24, :12])
    with pytest.raises(ValueError, match=r"keep must return \d+ distinct channel indices in \[0, \d+\)"):
        lk.compress.prune_channels(cnn, 0.5, test_data, keep=lambda w, a: [0, 1, 2])
    with pytest.raises(ValueError, match="keep must be None"):
        lk.compress.prune_channels(cnn, 0.5, test_data, keep=[0, 1])


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_prune_channels_follows_residual_adds(name):
    model = lk.zoo.load(name).model
    x, y = lk.data.for_model(name, "test")
    data = (x[:64], y[:64])
    small, rep = lk.compress.prune_channels(model, 0.5, data)
    with torch.no_grad():
        assert small(x[:4]).shape == (4, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    small_convs = [m for m in small.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(small_convs)
    for big, little in zip(convs, small_convs):                     # every conv keeps half its filters
        assert little.out_channels == int(big.out_channels * 0.5)
    assert rep.params < 0.4 * sum(p.numel() for p in model.parameters())
