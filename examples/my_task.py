"""``my_task``: an MLP on scikit-learn's bundled breast-cancer data, as an example task plug-in.

Data: the 569 real tumour measurements (30 features, benign or malignant) that ship with
scikit-learn, so nothing is downloaded. A fixed permutation, the same for every run seed, sets aside
169 test examples; the run's data seed splits the other 400 into 250 training and 150 validation
examples. Features are standardised with the training split's mean and standard deviation.

Model: 30 → hidden → 1 logit with ReLU and dropout on the hidden layer, binary cross-entropy, SGD
with momentum; the width, learning rate, batch size and epochs are fixed by the preset.

Hyperparameters:

================  ======================  ===========================================================
name              range                   meaning
================  ======================  ===========================================================
``dropout``       [0, 0.9]                dropout on the hidden layer (regulariser)
``weight_decay``  [1e-5, 1], log          L2 penalty ``wd/2 · ||W||²`` added to the loss (regulariser)
``input_noise``   [0, 1]                  std of Gaussian noise added to training inputs (augmentation)
================  ======================  ===========================================================

Run it without installing anything::

    hpobench --plugin examples/my_task.py run --task my_task --method random --preset smoke \\
        --budget 10 --seed 0 --out /tmp/runs
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpobench_stn import (
    Batch,
    Config,
    Float,
    HParamKind,
    Preset,
    RunSeeds,
    SearchSpace,
    Split,
    Task,
    register_task,
    sequential_batches,
    shuffled_batches,
)

N_TEST = 169
N_TRAIN = 250  # the remaining 150 examples validate
EVAL_BATCH = 128  # evaluation batch size: the deadline is checked before each one
_TEST_PERMUTATION_SEED = 569  # fixed: the test set is the same for every run seed


@dataclass(frozen=True)
class CancerPreset(Preset):
    hidden: int = 64  # hidden units
    lr: float = 0.05  # SGD learning rate (an optimisation setting: fixed by the preset, never tuned)
    momentum: float = 0.9


class CancerMLP(nn.Module):
    """30 → hidden → 1 with ReLU and dropout; the dropout rate is an argument so the loss can set it.

    Shape:
        x: ``(N, 30)``; output: ``(N,)`` logits.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        # Built on the meta device, so constructing them draws nothing from torch's global generator;
        # build_model fills the weights from the run's init generator.
        self.fc1 = nn.Linear(30, hidden, device="meta").to_empty(device="cpu")
        self.out = nn.Linear(hidden, 1, device="meta").to_empty(device="cpu")

    def forward(self, x: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        h = F.dropout(F.relu(self.fc1(x)), dropout, self.training)  # (N, hidden); identity in eval mode
        logits: torch.Tensor = self.out(h).squeeze(1)  # (N,)
        return logits


@register_task("my_task")
class CancerTask(Task):
    """An MLP on scikit-learn's breast-cancer data (see the module docstring)."""

    space = SearchSpace(
        {
            "dropout": Float(0.0, 0.9, default=0.0),
            "weight_decay": Float(1e-5, 1.0, default=1e-5, log=True),
            "input_noise": Float(0.0, 1.0, default=0.0, kind=HParamKind.AUGMENTATION),
        }
    )
    presets: ClassVar[Mapping[str, Preset]] = {
        "smoke": CancerPreset("smoke", epochs=5, batch_size=50, hidden=32),
        "cpu": CancerPreset("cpu", epochs=100, batch_size=25, hidden=128, lr=0.02),
    }
    preset: CancerPreset

    def prepare(self) -> None:
        # Not charged. A task that downloads would fetch into self.data_dir here, once, and cache;
        # this one only imports scikit-learn and reads its bundled copy.
        from sklearn.datasets import load_breast_cancer

        x, y = load_breast_cancer(return_X_y=True)
        self._raw = (x.astype(np.float32), y.astype(np.float32))

    def load(self, seeds: RunSeeds) -> str:
        # Charged to the run (phase "data"). The split depends on the data seed only, so every
        # method with the same master seed trains and validates on the same examples.
        x, y = self._raw
        fixed = np.random.default_rng(_TEST_PERMUTATION_SEED).permutation(len(x))
        test_idx, rest = fixed[:N_TEST], fixed[N_TEST:]
        rest = seeds.numpy("data").permutation(rest)
        train_idx, val_idx = rest[:N_TRAIN], rest[N_TRAIN:]
        mean = x[train_idx].mean(axis=0)  # training statistics only: nothing leaks from val or test
        std = x[train_idx].std(axis=0) + 1e-6

        def to_device(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            features = torch.from_numpy((x[idx] - mean) / std).to(self.device)
            return features, torch.from_numpy(y[idx]).to(self.device)

        self.train_xy, self.val_xy, self.test_xy = to_device(train_idx), to_device(val_idx), to_device(test_idx)
        return "sklearn.datasets.load_breast_cancer (bundled, 569 examples)"

    def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        # The order is drawn from the run's CPU generator and applied on the device.
        return shuffled_batches(self.train_xy, self.preset.batch_size, generator)

    def eval_batches(self, split: Split) -> Iterator[Batch]:
        # A fixed order, never augmented.
        return sequential_batches(self.val_xy if split == "val" else self.test_xy, EVAL_BATCH)

    def build_model(self, config: Config, generator: torch.Generator) -> nn.Module:
        # The architecture depends on the preset only; every hyperparameter acts in training_loss.
        model = CancerMLP(self.preset.hidden)
        with torch.no_grad():
            for layer in (model.fc1, model.out):
                bound = 1.0 / math.sqrt(layer.in_features)  # nn.Linear's default range, seeded
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
        return model.to(self.device)

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=self.preset.lr, momentum=self.preset.momentum)

    def training_loss(self, model: nn.Module, batch: Batch, config: Config) -> torch.Tensor:
        x, y = batch  # (N, 30), (N,)
        mlp = cast(CancerMLP, model)
        noise = float(config["input_noise"])
        if noise > 0:
            # Augmentation, training only. Drawn from torch's default generator, which Task.fit
            # seeds from the run's noise seed inside a forked scope.
            x = x + noise * torch.randn_like(x)
        logits = mlp(x, float(config["dropout"]))  # (N,)
        l2 = mlp.fc1.weight.pow(2).sum() + mlp.out.weight.pow(2).sum()
        return F.binary_cross_entropy_with_logits(logits, y) + 0.5 * float(config["weight_decay"]) * l2

    def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
        # Called by Task.evaluate in eval mode under no_grad: no dropout, no noise, no penalty.
        x, y = batch
        logits = cast(CancerMLP, model)(x)  # (N,)
        loss = F.binary_cross_entropy_with_logits(logits, y, reduction="sum")
        correct = ((logits > 0).float() == y).sum()
        return loss, x.shape[0], {"accuracy": correct}
