"""``digits_mlp``: an MLP on scikit-learn's bundled digits, the small real task for tests and offline use.

Data: the 1,797 real 8×8 handwritten digits that ship with scikit-learn (no download). A fixed
permutation (independent of the run seed) sets aside 397 test images; the remaining 1,400 are split
into 300 training and 1,100 validation images by the run's data seed. Pixels are scaled to [0, 1].

Model: 64 → H → H → 10 with ReLU, dropout on the input and after each hidden layer; SGD with
momentum, fixed per preset. The training set is small enough that an unregularised MLP overfits,
so the hyperparameters matter: at the ``cpu`` preset (seed 0, one thread, ~0.5 s per trial) the
unregularised config reaches a best validation cross-entropy of 0.188 (94.5 % accuracy), while
``dropout_in=0.1, dropout_h1=dropout_h2=0.3, weight_decay=1e-4`` reaches 0.134 (96.3 %); too much
dropout (0.3 / 0.6 / 0.6) is worse again (0.252). Measured with ``benchmarks/digits_calibration.py``.

Hyperparameters (all change the objective or the data, so a best-response method may tune them):

==================  =============================  ======================================================
name                range                          meaning
==================  =============================  ======================================================
``dropout_in``      [0, 0.8]                       dropout on the 64 input pixels
``dropout_h1``      [0, 0.8]                       dropout after the first hidden layer
``dropout_h2``      [0, 0.8]                       dropout after the second hidden layer
``weight_decay``    [1e-6, 1e-1], log              L2 penalty ``wd/2 · ||W||²`` added to the loss
``shift``           {0, 1, 2}                      random translation by up to ``shift`` pixels (augment.)
==================  =============================  ======================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpobench_stn import (
    Batch,
    Config,
    Float,
    HParamKind,
    Int,
    Preset,
    RunSeeds,
    SearchSpace,
    Split,
    Task,
    register_task,
)
from hpobench_stn.harness.batches import shuffled_batches
from hpobench_stn.nn import Layers, linearised, weight_sq_norm
from hpobench_stn.nn.regularizers import checks_values, element_dropout

N_TEST = 397
N_TRAIN = 300
_TEST_PERMUTATION_SEED = 20190506  # fixed: the test set is the same for every run seed


@dataclass(frozen=True)
class DigitsPreset(Preset):
    hidden: int = 256  # units per hidden layer
    lr: float = 0.05  # SGD learning rate (an optimisation setting: fixed, not tuned)
    momentum: float = 0.9


class DigitsMLP(nn.Module):
    """64 → hidden → hidden → 10 with per-example dropout rates.

    ``layers`` builds the three linear layers: plain ``nn.Linear`` (the baseline) or hyper-layers
    (:class:`~hpobench_stn.nn.HyperLayers`, the STN model): one architecture for both.

    Shape:
        x: ``(N, 64)``; rates: each ``(N,)``; output: ``(N, 10)`` logits.
    """

    def __init__(self, hidden: int, layers: Layers | None = None) -> None:
        super().__init__()
        layers = layers or Layers()
        self.fc1 = layers.linear(64, hidden)
        self.fc2 = layers.linear(hidden, hidden)
        self.out = layers.linear(hidden, 10)

    def forward(self, x: torch.Tensor, p_in: torch.Tensor, p_h1: torch.Tensor, p_h2: torch.Tensor) -> torch.Tensor:
        x = element_dropout(x, p_in, self.training)
        x = element_dropout(F.relu(self.fc1(x)), p_h1, self.training)
        x = element_dropout(F.relu(self.fc2(x)), p_h2, self.training)
        logits: torch.Tensor = self.out(x)  # (N, 10)
        return logits


def random_shift(images: torch.Tensor, max_shift: torch.Tensor) -> torch.Tensor:
    """Translate each 8×8 image by a random offset in ``[-max_shift, max_shift]`` per axis, zero-filled.

    Vectorised over the batch (no Python loop over images).

    Shape:
        images: ``(N, 64)``; max_shift: ``(N,)`` integers; output: ``(N, 64)``.
    """
    n = images.shape[0]
    pad = 2  # the largest shift in the space
    grid = F.pad(images.view(n, 8, 8), (pad, pad, pad, pad))  # (N, 12, 12)
    # offsets uniform in {-s, ..., s}: floor(u * (2s+1)) - s
    span = (2 * max_shift + 1).to(images.dtype)
    dy = (torch.rand(n, device=images.device) * span).floor().long() - max_shift
    dx = (torch.rand(n, device=images.device) * span).floor().long() - max_shift
    base = torch.arange(8, device=images.device) + pad  # (8,)
    rows = (base[None, :] - dy[:, None])[:, :, None]  # (N, 8, 1)
    cols = (base[None, :] - dx[:, None])[:, None, :]  # (N, 1, 8)
    idx = torch.arange(n, device=images.device)[:, None, None]
    return grid[idx, rows, cols].reshape(n, 64)


@register_task("digits_mlp")
class DigitsTask(Task):
    """An MLP on scikit-learn's digits (see the module docstring)."""

    # The dropouts (relaxed masks) and the weight decay; not the integer shift.
    differentiable_hparams: ClassVar[tuple[str, ...]] = ("dropout_in", "dropout_h1", "dropout_h2", "weight_decay")
    space = SearchSpace(
        {
            "dropout_in": Float(0.0, 0.8, default=0.0),
            "dropout_h1": Float(0.0, 0.8, default=0.0),
            "dropout_h2": Float(0.0, 0.8, default=0.0),
            "weight_decay": Float(1e-6, 1e-1, default=1e-6, log=True),
            "shift": Int(0, 2, default=0, kind=HParamKind.AUGMENTATION),
        }
    )
    presets: ClassVar[Mapping[str, Preset]] = {
        "smoke": DigitsPreset("smoke", epochs=4, batch_size=30, hidden=64, lr=0.2),
        "cpu": DigitsPreset("cpu", epochs=60, batch_size=50, hidden=256, lr=0.05),
    }
    libraries = ("scikit-learn",)
    preset: DigitsPreset

    def prepare(self) -> None:
        # Uncharged: importing scikit-learn and reading its bundled file costs ~1 s once per process,
        # which would otherwise land on whichever run of a suite came first.
        from sklearn.datasets import load_digits

        x_all, y_all = load_digits(return_X_y=True)
        self._raw = (x_all.astype(np.float32) / 16.0, y_all.astype(np.int64))

    def load(self, seeds: RunSeeds) -> str:
        x_all, y_all = self._raw
        fixed = np.random.default_rng(_TEST_PERMUTATION_SEED).permutation(len(x_all))
        test_idx, rest = fixed[:N_TEST], fixed[N_TEST:]
        rest = seeds.numpy("data").permutation(rest)
        train_idx, val_idx = rest[:N_TRAIN], rest[N_TRAIN:]

        def to(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            return (
                torch.from_numpy(x_all[idx]).to(self.device),
                torch.from_numpy(y_all[idx]).to(self.device),
            )

        self.train_xy, self.val_xy, self.test_xy = to(train_idx), to(val_idx), to(test_idx)
        return "sklearn.datasets.load_digits (bundled, 1797 images)"

    def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        return shuffled_batches(self.train_xy, self.preset.batch_size, generator)

    def eval_batches(self, split: Split) -> Iterator[Batch]:
        x, y = self.val_xy if split == "val" else self.test_xy
        yield x, y

    def build_model(self, config: Config, generator: torch.Generator) -> nn.Module:
        return self.build_network(Layers(), generator)

    def best_response_defaults(self) -> Mapping[str, Any]:
        # Ours (the paper has no digits task): one warm-up epoch, the paper's 2:1 alternation.
        return {"warmup_epochs": 1, "hyper_lr": 0.01}

    def tuning_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        # Hyper-steps on validation batches of the training size (the whole split would cost 37 steps' work).
        return shuffled_batches(self.val_xy, self.preset.batch_size, generator)

    def build_network(self, layers: Layers, generator: torch.Generator) -> nn.Module:
        model = DigitsMLP(self.preset.hidden, layers)
        with torch.no_grad():
            for layer in (model.fc1, model.fc2, model.out):
                # Kaiming-uniform as nn.Linear does, but from the run's init generator.
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
        return model.to(self.device)

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=self.preset.lr, momentum=self.preset.momentum)

    def regularised_loss(self, model: nn.Module, batch: Batch, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        shift = values["shift"]
        if not checks_values(shift) or bool(shift.any()):  # skipping is free on the CPU only
            x = random_shift(x, shift.long())
        mlp = cast(DigitsMLP, model)
        logits = linearised(mlp(x, values["dropout_in"], values["dropout_h1"], values["dropout_h2"]))
        # Per-example weight decay on the weights each example really uses (the effective weights of a
        # hyper-layer): (N,), or a scalar for the baseline.
        l2 = sum(weight_sq_norm(layer) for layer in (mlp.fc1, mlp.fc2, mlp.out))
        return F.cross_entropy(logits, y) + (0.5 * values["weight_decay"] * l2).mean()

    def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
        x, y = batch
        zeros = torch.zeros(x.shape[0], device=x.device)
        logits = model(x, zeros, zeros, zeros)  # rates are ignored in eval mode: always clean
        loss = F.cross_entropy(logits, y, reduction="sum")
        correct = (logits.argmax(dim=1) == y).sum()
        return loss, x.shape[0], {"accuracy": correct}
