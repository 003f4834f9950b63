"""A bilevel problem with a closed-form answer, for testing STN: the L2 coefficient of ridge regression.

Inner problem: ``w*(λ) = argmin_w mean_n (x_n·w - y_n)² + λ·||w||² = (XᵀX/n + λI)⁻¹ Xᵀy/n``.
Outer problem: ``λ* = argmin_λ mean_m (x_m·w*(λ) - y_m)²`` on a validation set, computed here exactly
(a dense grid on log λ refined by a bounded scalar minimisation) from the closed form.

The data: ``d`` standard-normal features, a true weight vector ``N(0, I)``, label noise of standard
deviation ``noise``; few training examples, so the validation optimum λ* lies well inside the range.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import nn

from hpobench_stn import Batch, Config, Float, Preset, RunSeeds, SearchSpace, Split, Task
from hpobench_stn.nn import Layers, weight_sq_norm

LOW, HIGH = 1e-3, 1e3


@dataclass(frozen=True)
class RidgePreset(Preset):
    d: int = 10
    n_train: int = 20
    n_val: int = 200
    noise: float = 1.0
    lr: float = 0.05  # Adam, full batch


class RidgeTask(Task):
    """Ridge regression with a tuned L2 coefficient; one full-batch step per epoch."""

    name = "ridge"
    space = SearchSpace({"l2": Float(LOW, HIGH, default=1.0, log=True)})
    presets: ClassVar[Mapping[str, Preset]] = {"smoke": RidgePreset("smoke", epochs=300, batch_size=20)}
    preset: RidgePreset
    problem_seed = 0  # the data is fixed; the run seed moves only the method's randomness

    def load(self, seeds: RunSeeds) -> str:
        p = self.preset
        rng = np.random.default_rng(self.problem_seed)
        w_true = rng.normal(size=p.d)
        x = rng.normal(size=(p.n_train + p.n_val, p.d))
        y = x @ w_true + p.noise * rng.normal(size=p.n_train + p.n_val)
        t = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        self.train_xy = (t[0][: p.n_train], t[1][: p.n_train])
        self.val_xy = (t[0][p.n_train :], t[1][p.n_train :])
        self._np = (x[: p.n_train], y[: p.n_train], x[p.n_train :], y[p.n_train :])
        return "synthetic ridge regression"

    # -- the exact answer ----------------------------------------------------------------------------
    def val_loss_at(self, l2: float) -> float:
        x, y, xv, yv = self._np
        n, d = x.shape
        w = np.linalg.solve(x.T @ x / n + l2 * np.eye(d), x.T @ y / n)
        return float(np.mean((xv @ w - yv) ** 2))

    def optimum(self) -> float:
        """λ* to ~1e-6 in log space."""
        grid = np.linspace(math.log(LOW), math.log(HIGH), 601)
        i = int(np.argmin([self.val_loss_at(math.exp(g)) for g in grid]))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(
            lambda g: self.val_loss_at(math.exp(g)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-8}
        )
        return math.exp(float(res.x))

    # -- the Task contract ---------------------------------------------------------------------------
    def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        yield self.train_xy

    def eval_batches(self, split: Split) -> Iterator[Batch]:
        yield self.val_xy  # no test set of its own: "test" is the validation set

    def build_model(self, config: Config, generator: torch.Generator) -> nn.Module:
        return self.build_network(Layers(), generator)

    def build_network(self, layers: Layers, generator: torch.Generator) -> nn.Module:
        model = layers.linear(self.preset.d, 1, bias=False)
        with torch.no_grad():
            model.weight.copy_(torch.zeros(model.weight.shape).normal_(0, 0.1, generator=generator))
        return model

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.preset.lr)

    def best_response_defaults(self) -> Mapping[str, Any]:
        return {"warmup_epochs": 500, "hyper_lr": 0.003}

    def regularised_loss(self, model: nn.Module, batch: Batch, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        pred: torch.Tensor = model(x).squeeze(-1)  # (N,)
        # Per example: its squared error plus its own λ times the squared norm of the weights it uses.
        return ((pred - y).pow(2) + values["l2"] * weight_sq_norm(model)).mean()

    def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
        x, y = batch
        return (model(x).squeeze(-1) - y).pow(2).sum(), x.shape[0], {}
