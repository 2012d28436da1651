"""Training loops for compression: fine-tune a pruned model, train a student alone, distil a teacher (lab 03).

- :func:`finetune`: a few epochs on a copy; weights that are exactly zero stay zero (the mask is re-applied
  after every step), so a pruned model stays pruned while the others recover the accuracy pruning cost.
- :func:`train`: a model trained alone on hard labels (cross-entropy): the baseline a distilled student must
  beat.
- :func:`distill`: Hinton et al. (2015) knowledge distillation: the student also matches the teacher's
  softened output distribution, which carries more than the label ("this 7 looks a bit like a 1").
- :func:`kd_loss`: that loss, ``alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE``.
- :func:`student_cnn`: a narrow version of the zoo's cnn to distil into.

Every loop is deterministic for a given ``seed`` (weights, shuffling) and leaves the caller's global RNG alone.
Adam, no weight decay, minibatches drawn from a seeded permutation each epoch.
"""

from __future__ import annotations

from labkit.args import Int, Number, check, check_positive
from labkit.compress.report import Compressed, check_data, report


def student_cnn(widths=(4, 8, 16), seed: int = 0):
    """A narrow cnn (3 x conv3x3-BN-ReLU-maxpool, then Linear) for 1x32x32 digits, seeded weights (lab 03).

    The zoo's cnn is the same design with ``widths=(16, 32, 64)``; the default student has ~1/8 of its
    parameters.

    >>> import labkit as lk
    >>> sum(p.numel() for p in lk.compress.student_cnn().parameters())
    4102
    """
    if not (isinstance(widths, (tuple, list)) and len(widths) == 3):
        raise ValueError(f"widths must be three channel counts, e.g. (4, 8, 16), got {widths!r}.")
    for i, w in enumerate(widths):
        check(f"widths[{i}]", w, Int(low=1))
    check("seed", seed, Int(low=0))
    import torch
    from torch import nn

    def block(cin, cout):
        return [nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()),
                nn.MaxPool2d(2)]

    class StudentCNN(nn.Module):
        def __init__(self):
            super().__init__()
            a, b, c = widths
            self.features = nn.Sequential(*block(1, a), *block(a, b), *block(b, c))  # (B, c, 4, 4)
            self.flatten = nn.Flatten()                                              # (B, 16 c)
            self.fc = nn.Linear(c * 16, 10)

        def forward(self, x):                        # x: (B, 1, 32, 32)
            return self.fc(self.flatten(self.features(x)))

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return StudentCNN().eval()


def kd_loss(student_logits, teacher_logits, labels, temperature: float = 4.0, alpha: float = 0.9):
    """Knowledge-distillation loss (Hinton et al. 2015), averaged over the batch (lab 03).

    ``alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * cross_entropy(student, y)``.
    The ``T^2`` keeps the soft term's gradients the same size whatever the temperature.

    >>> import torch, labkit as lk
    >>> logits = torch.tensor([[2.0, 0.0, -1.0]])
    >>> float(lk.compress.kd_loss(logits, logits, torch.tensor([0]), alpha=1.0))   # same outputs: KL is 0
    0.0
    """
    temperature = check_positive("temperature", temperature)
    alpha = check("alpha (the weight of the soft term)", alpha, Number(low=0, high=1))
    import torch.nn.functional as F

    t = float(temperature)
    soft = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * t * t * soft + (1 - alpha) * hard


def _fit(model, train, loss_fn, *, epochs, lr, batch, seed, masks=(), progress=True, desc="train"):
    """Train `model` in place with Adam on minibatches of a seeded permutation; loss_fn(logits, y, idx)."""
    import torch
    from tqdm.auto import tqdm

    x, y = train
    n = len(x)
    steps = [(i, min(i + batch, n)) for i in range(0, n, batch) if min(i + batch, n) - i >= 2]  # BN needs 2
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(), torch.enable_grad():
        torch.manual_seed(seed)                          # dropout and the like, if a model has any
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        with tqdm(total=epochs * len(steps), desc=desc, disable=not progress) as bar:
            for _ in range(epochs):
                order = torch.randperm(n, generator=generator)
                for lo, hi in steps:
                    idx = order[lo:hi]
                    loss = loss_fn(model(x[idx]), y[idx], idx)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    with torch.no_grad():
                        for param, mask in masks:        # pruned weights stay exactly zero
                            param.mul_(mask)
                    bar.update()
                    bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval()


def _check_loop(train, data, epochs, lr, batch, seed):
    x, y = check_data(train)
    check_data(data)
    check("epochs", epochs, Int(low=1))
    check("lr", lr, Number(low=0, low_open=True))
    check("batch", batch, Int(low=2))
    check("seed", seed, Int(low=0))
    if batch > len(x):
        raise ValueError(f"batch must be at most the number of training rows ({len(x)}), got {batch}.")
    return x, y


def finetune(model, train, data, *, epochs: int = 1, lr: float = 1e-3, batch: int = 64, seed: int = 0,
             progress: bool = True, name: str | None = None) -> Compressed:
    """Fine-tune a copy of `model` on ``train = (x, y)``; its zero weights stay zero; report on ``data`` (lab 03).

    After pruning, a short fine-tune lets the remaining weights take over the work of the removed ones. Every
    Conv/Linear weight that is exactly zero is masked after each optimiser step, so the sparsity is kept.

    >>> import labkit as lk
    >>> model, _ = lk.zoo.load("cnn")
    >>> train, test = lk.data.for_model("cnn", "train"), lk.data.for_model("cnn", "test")
    >>> pruned, _ = lk.compress.prune_magnitude(model, 0.9, test)
    >>> tuned, rep = lk.compress.finetune(pruned, (train[0][:256], train[1][:256]), test, progress=False)
    >>> lk.compress.sparsity(tuned) == lk.compress.sparsity(pruned)
    True
    """
    import copy

    import torch.nn.functional as F

    from labkit.compress.prune import select_layers

    _check_loop(train, data, epochs, lr, batch, seed)
    tuned = copy.deepcopy(model)
    masks = [(m.weight, (m.weight != 0).to(m.weight.dtype)) for _, m in select_layers(tuned, None)
             if bool((m.weight == 0).any())]
    _fit(tuned, train, lambda logits, y, idx: F.cross_entropy(logits, y), epochs=epochs, lr=lr, batch=batch,
         seed=seed, masks=masks, progress=progress, desc="fine-tune")
    label = name or f"{type(model).__name__} fine-tuned ({epochs} epoch{'s' if epochs > 1 else ''})"
    return Compressed(tuned, report(tuned, data, name=label))


def train(model, train, data, *, epochs: int = 3, lr: float = 3e-3, batch: int = 64, seed: int = 0,
          progress: bool = True, name: str | None = None) -> Compressed:
    """Train a copy of `model` alone on hard labels (cross-entropy); report on ``data`` (lab 03).

    The baseline for :func:`distill`: same student, same data, same epochs, same seed, no teacher.

    >>> import labkit as lk
    >>> x, y = lk.data.for_model("cnn", "train")
    >>> alone, rep = lk.compress.train(lk.compress.student_cnn(), (x[:256], y[:256]), lk.data.for_model("cnn"),
    ...                                epochs=1, progress=False)
    >>> 0.0 <= rep.accuracy <= 1.0
    True
    """
    import copy

    import torch.nn.functional as F

    _check_loop(train, data, epochs, lr, batch, seed)
    trained = copy.deepcopy(model)
    _fit(trained, train, lambda logits, y, idx: F.cross_entropy(logits, y), epochs=epochs, lr=lr, batch=batch,
         seed=seed, progress=progress, desc="train alone")
    label = name or f"{type(model).__name__} trained alone"
    return Compressed(trained, report(trained, data, name=label))


def distill(teacher, student, train, data, *, epochs: int = 3, temperature: float = 4.0, alpha: float = 0.9,
            lr: float = 3e-3, batch: int = 64, seed: int = 0, progress: bool = True, loss=None,
            name: str | None = None) -> Compressed:
    """Train a copy of `student` to match `teacher`'s softened outputs and the labels (:func:`kd_loss`) (lab 03).

    The teacher is fixed (eval mode): its logits on ``train``'s inputs are computed once. ``loss`` replaces
    :func:`kd_loss` with your own ``loss(student_logits, teacher_logits, labels, temperature, alpha)`` (a
    differentiable scalar tensor; lab 03 has you write it). Returns the student and its report on ``data``.

    >>> import labkit as lk
    >>> teacher, _ = lk.zoo.load("cnn")
    >>> x, y = lk.data.for_model("cnn", "train")
    >>> kd, rep = lk.compress.distill(teacher, lk.compress.student_cnn(), (x[:256], y[:256]), lk.data.for_model("cnn"),
    ...                               epochs=1, progress=False)
    >>> rep.params
    4102
    """
    import copy

    import torch

    x, _ = _check_loop(train, data, epochs, lr, batch, seed)
    if loss is None:
        loss = kd_loss
    elif not callable(loss):
        raise ValueError(f"loss must be None (kd_loss) or a function (student_logits, teacher_logits, labels, "
                         f"temperature, alpha) -> a scalar tensor, got {type(loss).__name__}.")
    kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), temperature, alpha)  # checks
    teacher.eval()
    with torch.no_grad():
        teacher_logits = torch.cat([teacher(x[i:i + 512]) for i in range(0, len(x), 512)])
        probe = copy.deepcopy(student).eval()(x[:2])
    if probe.shape[1:] != teacher_logits.shape[1:]:
        raise ValueError(f"student and teacher must output the same number of classes, got "
                         f"{tuple(probe.shape[1:])} and {tuple(teacher_logits.shape[1:])}.")
    kd = copy.deepcopy(student)
    _fit(kd, train, lambda logits, y, idx: loss(logits, teacher_logits[idx], y, temperature, alpha),
         epochs=epochs, lr=lr, batch=batch, seed=seed, progress=progress, desc="distil")
    label = name or f"{type(student).__name__} distilled (T={temperature:g}, alpha={alpha:g})"
    return Compressed(kd, report(kd, data, name=label))
