"""Pruning: zero the smallest weights (unstructured) or remove whole channels (structured) (lab 03).

Unstructured (magnitude) pruning sets the smallest-|w| weights of Conv/Linear layers to zero. The model keeps
its shapes, so a dense kernel does exactly the same work and the file on disk is the same size: sparsity is not
speed unless a sparse kernel or sparse hardware (e.g. 2:4 sparse tensor cores) skips the zeros. Structured
pruning removes whole output channels (and the input channels of the layers that read them, their batch-norm
entries, the columns of a Linear after a flatten, the channels tied by a residual add); what is left is a
smaller *dense* model: fewer parameters, fewer MACs, a smaller file, and faster on any hardware.

- :func:`prune_magnitude`, :func:`sparsity`: unstructured, global or per layer (torch.nn.utils.prune).
- :func:`sensitivity` -> :class:`Sensitivity`: prune one layer at a time, see which layer hurts accuracy most.
- :func:`prune_channels`: structured, L1 norm of each filter (Li et al. 2017), dependencies by torch-pruning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from labkit.args import Number, check, unknown_name
from labkit.compress.report import Compressed, check_data, report

SCOPES = ("global", "layer")

def _prunable_types():
    from torch import nn

    return (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_layers(model) -> list[str]:
    """Names of the Conv/Linear layers of `model`, in definition order: what pruning can touch (lab 03).

    >>> import labkit as lk
    >>> lk.compress.prunable_layers(lk.zoo.build("cnn"))
    ['features.0.0', 'features.2.0', 'features.4.0', 'fc']
    """
    if not hasattr(model, "named_modules"):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    types = _prunable_types()
    return [name for name, m in model.named_modules() if isinstance(m, types)]


def select_layers(model, layers) -> list[tuple[str, object]]:
    """[(name, module)] of the named prunable (Conv/Linear) layers, all when `layers` is None; unknown names list
    the near matches. lk.compress's pruning and fine-tuning use it (lab 03).

    >>> import labkit as lk
    >>> [name for name, _ in select_layers(lk.zoo.build("mlp"), None)]
    ['fc1', 'fc2', 'fc3']
    """
    names = prunable_layers(model)
    if layers is None:
        chosen = names
    else:
        if isinstance(layers, str):
            layers = [layers]
        chosen = list(layers)
        if not chosen:
            raise ValueError(f"layers must be None (all) or a non-empty list of layer names from {names}.")
        for name in chosen:
            if name not in names:
                raise unknown_name("prunable layer (Conv/Linear)", name, names)
    modules = dict(model.named_modules())
    return [(name, modules[name]) for name in chosen]


def _check_fraction(what: str, value, *, closed: bool = False) -> float:
    return check(what, value, Number(low=0, high=1, high_open=not closed))


def sparsity(model, layers=None) -> float:
    """Fraction of the weights of Conv/Linear layers (all, or `layers`) that are exactly zero (lab 03).

    Biases and batch-norm parameters are not counted: magnitude pruning never touches them.

    >>> import labkit as lk
    >>> lk.compress.sparsity(lk.zoo.build("cnn"))
    0.0
    """
    total = zeros = 0
    for _, module in select_layers(model, layers):
        total += module.weight.numel()
        zeros += int((module.weight == 0).sum())
    return zeros / total if total else 0.0


def _magnitude(model, amount: float, scope: str, layers):
    """A deep copy of `model` with `amount` of its weights zeroed by |w| (no report): the work of the scan."""
    import copy

    import torch
    from torch.nn.utils import prune

    pruned = copy.deepcopy(model)
    chosen = select_layers(pruned, layers)
    params = [(module, "weight") for _, module in chosen]
    with torch.no_grad():
        if scope == "global":          # one threshold over all chosen layers: L1Unstructured on the union
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
        else:                          # the same fraction of every chosen layer, each with its own threshold
            for module, pname in params:
                prune.l1_unstructured(module, pname, amount=amount)
        for module, pname in params:   # bake the mask in: a plain module whose weight has zeros
            prune.remove(module, pname)
    return pruned.eval()


def prune_magnitude(model, sparsity: float, data, *, scope: str = "global", layers=None,
                    name: str | None = None) -> Compressed:
    """Zero the smallest-|w| weights of the Conv/Linear layers of a copy of `model` (lab 03).

    ``sparsity`` is the fraction of weights to zero: ``round(sparsity * n)`` of them. ``scope="global"``
    ranks all chosen layers' weights together (one threshold; big layers lose more), ``"layer"`` prunes that
    fraction from each layer separately. ``layers`` limits pruning to some layers (names from
    :func:`prunable_layers`; default all). The copy is a plain model (masks removed) with the same shapes as
    the original: same file size, same dense work. Returns :class:`Compressed` (model and Report on ``data``).

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("cnn")
    >>> pruned, rep = lk.compress.prune_magnitude(model, 0.5, lk.data.for_model("cnn"), scope="layer")
    >>> lk.compress.sparsity(pruned), rep.size_bytes == lk.compress.size_bytes(model)
    (0.5, True)
    """
    amount = _check_fraction("sparsity", sparsity, closed=True)
    if scope not in SCOPES:
        raise unknown_name("scope", scope, SCOPES)
    check_data(data)
    pruned = _magnitude(model, amount, scope, layers)
    label = name or f"{type(model).__name__} {100 * amount:.0f}% unstructured ({scope})"
    return Compressed(pruned, report(pruned, data, name=label))


@dataclass(frozen=True)
class Sensitivity:
    """Accuracy when one layer at a time is magnitude-pruned to each sparsity (lab 03).

    ``rows`` are ``(layer, sparsity, accuracy)``; ``baseline_accuracy`` is the unpruned model's.

    >>> s = Sensitivity("toy", 0.9, ("a", "b"), (0.5,), (("a", 0.5, 0.8), ("b", 0.5, 0.2)))
    >>> s.most_sensitive(), s.accuracy("a", 0.5)
    ('b', 0.8)
    """

    model: str
    baseline_accuracy: float
    layers: tuple[str, ...]
    sparsities: tuple[float, ...]
    rows: tuple[tuple[str, float, float], ...]

    def accuracy(self, layer: str, sparsity: float) -> float:
        """The accuracy measured with `layer` alone pruned to `sparsity`."""
        for lay, s, acc in self.rows:
            if lay == layer and math.isclose(s, sparsity):
                return acc
        if layer not in self.layers:
            raise unknown_name("layer", layer, self.layers)
        raise ValueError(f"sparsity {sparsity!r} was not scanned; scanned: {list(self.sparsities)}.")

    def most_sensitive(self, sparsity: float | None = None) -> str:
        """The layer whose pruning costs most accuracy: lowest accuracy at `sparsity`, or (None) lowest mean
        accuracy over all scanned sparsities."""
        if sparsity is not None:
            return min(self.layers, key=lambda lay: self.accuracy(lay, sparsity))
        return min(self.layers, key=lambda lay: sum(self.accuracy(lay, s) for s in self.sparsities))

    def to_frame(self):
        """One row per layer, one column per sparsity, accuracy in the cells."""
        import pandas as pd

        frame = pd.DataFrame(self.rows, columns=["layer", "sparsity", "accuracy"])
        return frame.pivot(index="layer", columns="sparsity", values="accuracy").loc[list(self.layers)]

    def __repr__(self) -> str:
        return (f"Sensitivity({self.model!r}: {len(self.layers)} layers x {len(self.sparsities)} sparsities, "
                f"baseline {100 * self.baseline_accuracy:.2f}%, most sensitive {self.most_sensitive()!r})")


def sensitivity(model, data, sparsities=(0.3, 0.5, 0.7, 0.9), layers=None, progress: bool = True) -> Sensitivity:
    """Prune one layer at a time to each sparsity and measure accuracy on ``data = (x, y)`` (lab 03).

    The other layers stay dense, so a drop is that layer's alone: a layer whose accuracy falls early is
    sensitive (prune it less), a flat one is robust (prune it more). ``lk.plot.sensitivity`` draws it.

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("cnn")
    >>> scan = lk.compress.sensitivity(model, lk.data.for_model("cnn"), sparsities=(0.5,), progress=False)
    >>> scan.layers
    ('features.0.0', 'features.2.0', 'features.4.0', 'fc')
    """
    x, y = check_data(data)
    if isinstance(sparsities, (int, float)):
        sparsities = (sparsities,)
    sparsities = tuple(_check_fraction("each sparsity", s, closed=True) for s in sparsities)
    if not sparsities:
        raise ValueError("sparsities must be a non-empty list of fractions in [0, 1], e.g. (0.3, 0.5, 0.7, 0.9).")
    names = [name for name, _ in select_layers(model, layers)]
    from tqdm.auto import tqdm

    from labkit.zoo.data import accuracy

    rows = []
    with tqdm(total=len(names) * len(sparsities), desc="sensitivity", disable=not progress) as bar:
        for name in names:
            for s in sparsities:
                pruned = _magnitude(model, s, "layer", [name])
                rows.append((name, s, float(accuracy(pruned, x, y))))
                bar.update()
    base = float(accuracy(model, x, y))
    return Sensitivity(type(model).__name__, base, tuple(names), sparsities, tuple(rows))


def _filter_l1_importance():
    """torch-pruning importance: per channel, the L1 norm of the filters that produce it (summed over the
    Conv/Linear layers tied to it, e.g. by a residual add). Reading layers' input slices and BN do not count."""
    import torch
    import torch_pruning as tp
    from torch_pruning.pruner import function

    class FilterL1(tp.importance.Importance):
        @torch.no_grad()
        def __call__(self, group):
            total = None
            for i, (dep, idxs) in enumerate(group):
                layer, fn = dep.layer, dep.pruning_fn
                if fn not in (function.prune_conv_out_channels, function.prune_linear_out_channels):
                    continue
                if getattr(layer, "transposed", False):
                    continue
                root = group[i].root_idxs
                if any(r is None for r in root):
                    continue
                local = layer.weight.data[idxs].flatten(1).abs().sum(1)      # (channels,)
                if total is None:
                    total = torch.zeros(len(group[0].root_idxs))
                total.scatter_add_(0, torch.tensor(root), local.float())
            return total

    return FilterL1()


def _chosen_importance(keep, amount: float):
    """torch-pruning importance from a selector: 1 for the channels ``keep(weight, amount)`` keeps, 0 for the
    rest, so the pruner drops exactly the others. The selector sees a detached copy of the weight of the layer
    whose output channels the group cuts (its first layer, when a residual add ties several)."""
    import torch
    import torch_pruning as tp

    class Chosen(tp.importance.Importance):
        @torch.no_grad()
        def __call__(self, group):
            weight = group[0].dep.target.module.weight.detach().clone()
            n = len(group[0].root_idxs)
            want = int(n * (1 - amount))
            chosen = [int(i) for i in keep(weight, amount)]
            if len(chosen) != want or len(set(chosen)) != want or not all(0 <= i < n for i in chosen):
                raise ValueError(f"keep must return {want} distinct channel indices in [0, {n}) for a layer of {n} "
                                 f"output channels at amount {amount:g} (int(n * (1 - amount))), got {chosen}.")
            importance = torch.zeros(n)
            importance[chosen] = 1.0
            return importance

    return Chosen()


def prune_channels(model, amount: float, data, *, example=None, layers=None, keep=None,
                   name: str | None = None) -> Compressed:
    """Remove ``amount`` of the output channels of each Conv/Linear layer of a copy: a smaller dense model (lab 03).

    In each layer, ``int(n * (1 - amount))`` of its ``n`` output channels are kept: those whose filters have
    the largest L1 norm. torch-pruning traces the model on ``example`` (default: ``data``'s first row) and
    removes what depends on a dropped channel: the batch-norm entries, the next layer's input channels, a
    Linear's columns after a flatten, and, for a residual add, the same channel in every branch. The last
    layer (the classifier) keeps its outputs. ``layers`` limits which layers lose output channels. ``keep``
    replaces the L1 rule with your own selector: ``keep(weight, amount)`` returns the indices of the
    ``int(n * (1 - amount))`` output channels to keep (lab 03 has you write the L1 one).

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("cnn")
    >>> small, rep = lk.compress.prune_channels(model, 0.5, lk.data.for_model("cnn"))
    >>> [small.features[i][0].out_channels for i in (0, 2, 4)]
    [8, 16, 32]
    >>> small.fc.in_features, rep.params < 33658
    (512, True)
    """
    amount = _check_fraction("amount", amount)
    x, _ = check_data(data)
    if keep is not None and not callable(keep):
        raise ValueError(f"keep must be None (the L1 rule) or a function (weight, amount) -> indices to keep, got "
                         f"{type(keep).__name__}.")
    import copy
    import warnings

    import torch
    import torch_pruning as tp

    small = copy.deepcopy(model).eval()
    all_layers = select_layers(small, None)
    keep_names = {n for n, _ in select_layers(small, layers)}
    last = all_layers[-1][1]
    ignored = [m for n, m in all_layers if n not in keep_names or m is last]
    if example is None:
        example = x[:1]
    with torch.no_grad():
        expected_shape = tuple(model(example).shape)
    importance = _filter_l1_importance() if keep is None else _chosen_importance(keep, amount)
    with warnings.catch_warnings(), torch.enable_grad():     # torch-pruning traces with autograd
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MetaPruner(small, example, importance=importance, pruning_ratio=amount,
                                      ignored_layers=ignored, global_pruning=False)
        pruner.step()
    with torch.no_grad():
        shape = tuple(small(example).shape)
    if shape != expected_shape:
        raise ValueError(f"pruning changed the model's output shape from {expected_shape} to {shape}; pass "
                         f"layers= to leave the output layers alone.")
    label = name or f"{type(model).__name__} {100 * amount:.0f}% channels removed"
    return Compressed(small.eval(), report(small, data, name=label))
