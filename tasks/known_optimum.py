"""Bilevel problems whose answer is known in closed form, for checking that a tuning method finds it.

Two tasks, both a linear regression ``y ≈ w·x`` (``d`` standard-normal features, true weights
``N(0, I)``, label noise of standard deviation ``noise``, few training examples) with one tuned
regulariser whose validation optimum lies inside its range:

* ``ridge``: the L2 coefficient ``l2`` on ``[1e-3, 1e3]`` (log scale): training loss
  ``(x·w - y)² + l2·||w||²``. Its optimum is unbounded in spirit (the log scale has no natural end).
* ``dropout_regression``: the rate ``dropout`` on ``[0, 0.9]`` (the official STN code's dropout range)
  of inverted dropout on the inputs: training loss ``(y - w·(m⊙x)/(1-p))²`` with ``m_j ~ Bernoulli(1-p)``.
  In expectation over the mask this is ``(y - w·x)² + p/(1-p)·Σ_j w_j² x_j²``, a ridge penalty scaled by
  each feature's power, so the best response is closed-form too. A bounded rate with an interior
  optimum: the case where a method that drifts into a bound shows it.

For either, :meth:`KnownOptimumTask.val_loss_at` is the validation loss of the exact best response
``w*(h) = (XᵀX/n + D(h))⁻¹ Xᵀy/n`` (``D(h) = h·I`` for ridge, ``p/(1-p)·diag(XᵀX/n)`` for dropout) and
:meth:`KnownOptimumTask.optimum` minimises it (a dense grid on the sampling scale refined by a bounded
scalar minimisation). The data are fixed (``problem_seed``): the run seed moves only the method's
randomness, so every seed chases the same optimum.

Training is minibatch Adam (an epoch is a few steps, so epoch-based options such as STN's warm-up mean
what they mean on the real tasks); validation and test are clean (no dropout), mean squared error.

:meth:`KnownOptimumTask.verdict` reads a gradient-based method's schedule against the optimum: where the
hyperparameter sat over the last quarter of the run, how far that is from the optimum (as a fraction
of the range, on the sampling scale), and the fraction of the run it spent at a bound.
``benchmarks/known_optimum.py`` prints it for several seeds and starts; ``tests/test_known_optimum.py``
holds every gradient-based method to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import nn

from hpobench_stn import (
    Batch,
    Budget,
    Config,
    FakeClock,
    Float,
    Preset,
    RunSeeds,
    SearchSpace,
    Split,
    Task,
    get_task,
    register_task,
)
from hpobench_stn.harness.batches import shuffled_batches
from hpobench_stn.harness.records import load_log
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.harness.schedule import Schedule
from hpobench_stn.nn import HParams, HyperLinear, Layers, linearised, weight_sq_norm
from hpobench_stn.nn.regularizers import element_dropout

__all__ = [
    "BUDGET_S",
    "STARTS",
    "TICK",
    "TOLERANCE",
    "DropoutRegression",
    "KnownOptimumRun",
    "KnownOptimumTask",
    "RegressionPreset",
    "Ridge",
    "Verdict",
    "run_known_optimum",
]

TAIL = 0.75  # the verdict reads the last quarter of the schedule
STARTS = {"below": 0.05, "above": 0.8}  # start positions in the range (below: the 5 % margin's default start)
TICK = 1e-3  # fake seconds per clock read
BUDGET_S = 30.0  # fake seconds a run: ~3,300 weight steps of stn on these tasks
TOLERANCE = 0.10  # a pass: within 0.10 of the range of the optimum, at most 10 % of the run at a bound


@dataclass(frozen=True)
class Verdict:
    """A schedule read against the known optimum (positions: fractions of the range, sampling scale).

    Attributes:
        optimum: the optimal value; optimum_position: its position.
        start, final: the schedule's first and last values.
        tail_mean: the mean value over the last quarter of the run (on the sampling scale, mapped back);
            tail_position: its position.
        error: ``|tail_position - optimum_position|``.
        at_bound: the fraction of the run (weight steps) within 2.5 % of the range of either end (``BOUND_TOLERANCE``).
    """

    optimum: float
    optimum_position: float
    start: float
    final: float
    tail_mean: float
    tail_position: float
    error: float
    at_bound: float


@dataclass(frozen=True)
class RegressionPreset(Preset):
    d: int = 10  # features
    n_train: int = 20
    n_val: int = 400
    n_test: int = 400
    noise: float = 1.5  # label noise (standard deviation)
    lr: float = 0.02  # Adam learning rate of the weights


class KnownOptimumTask(Task):
    """A linear regression with one tuned regulariser and an exact validation optimum (module docstring)."""

    hparam: ClassVar[str]  # the tuned hyperparameter's name
    preset: RegressionPreset
    problem_seed: ClassVar[int] = 0  # the data are fixed: the run seed moves only the method's randomness

    def load(self, seeds: RunSeeds) -> str:
        p = self.preset
        rng = np.random.default_rng(self.problem_seed)
        w_true = rng.normal(size=p.d)
        n = p.n_train + p.n_val + p.n_test
        x = rng.normal(size=(n, p.d))
        y = x @ w_true + p.noise * rng.normal(size=n)
        cuts = (p.n_train, p.n_train + p.n_val)
        self._np = [(x[a:b], y[a:b]) for a, b in zip((0, *cuts), (*cuts, n), strict=True)]

        def to(pair: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
            return tuple(torch.as_tensor(a, dtype=torch.float32, device=self.device) for a in pair)  # type: ignore[return-value]

        self.train_xy, self.val_xy, self.test_xy = (to(pair) for pair in self._np)
        return f"synthetic linear regression (problem seed {self.problem_seed})"

    # -- the exact answer ----------------------------------------------------------------------------
    def penalty(self, h: float, x: np.ndarray) -> np.ndarray:
        """``D(h)``, ``(d, d)``: the expected training penalty's matrix at hyperparameter value ``h``."""
        raise NotImplementedError

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The training features ``(n_train, d)`` and labels ``(n_train,)`` (after :meth:`load`)."""
        x, y = self._np[0]
        return np.asarray(x), np.asarray(y)

    def best_response(self, h: float) -> np.ndarray:
        """``w*(h) = (XᵀX/n + D(h))⁻¹ Xᵀy/n``, ``(d,)``: the minimiser of the expected training loss at ``h``."""
        x, y = self._np[0]
        n = x.shape[0]
        return np.asarray(np.linalg.solve(x.T @ x / n + self.penalty(h, x), x.T @ y / n))

    def best_response_jacobian(self, h: float) -> np.ndarray:
        """``dw*/dh``, ``(d,)``, by a central difference of the closed form (relative step 1e-6, exact to
        ~1e-9: ``D(h)`` is smooth)."""
        e = 1e-6 * max(abs(h), 1e-3)
        return np.asarray((self.best_response(h + e) - self.best_response(h - e)) / (2 * e))

    def response_errors(self, model: nn.Module, hparams: HParams) -> tuple[float, float]:
        """How well a best-response model (this task's one ``HyperLinear``, centred input) fits at the
        current λ: the relative errors of its learned response ``dw/du = V·W_h`` against the exact
        best-response Jacobian ``dw*/dh · dh/du``, and of its elementary weights (the weights at Δ = 0)
        against ``w*(h)``."""
        if not isinstance(model, HyperLinear):
            raise TypeError(f"response_errors needs the task's HyperLinear model, got {type(model).__name__}")
        h = hparams.current()[self.hparam]
        p = float(torch.sigmoid(hparams.unconstrained[0]))
        span = float(hparams.high[0] - hparams.low[0])
        dh_du = (h if self.space[self.hparam].log else 1.0) * span * p * (1 - p)  # h = low + span·sigmoid(u), maybe exp
        w_star, exact = self.best_response(h), self.best_response_jacobian(h) * dh_du
        learned = (model.gate_weight[0, 0] * model.hyper_weight[0]).detach().double().numpy()
        w0 = model.weight[0].detach().double().numpy()
        return (
            float(np.linalg.norm(learned - exact) / np.linalg.norm(exact)),
            float(np.linalg.norm(w0 - w_star) / np.linalg.norm(w_star)),
        )

    def val_loss_at(self, h: float) -> float:
        """Validation MSE of the exact best response ``w*(h)``."""
        xv, yv = self._np[1]
        return float(np.mean((xv @ self.best_response(h) - yv) ** 2))

    def optimum(self) -> float:
        """The hyperparameter value minimising :meth:`val_loss_at` (to ~1e-8 on the sampling scale)."""
        dist = self.space[self.hparam]
        assert isinstance(dist, Float)
        to_value = math.exp if dist.log else (lambda s: s)
        lo, hi = (math.log(dist.low), math.log(dist.high)) if dist.log else (dist.low, dist.high)
        grid = np.linspace(lo, hi, 901)
        losses = [self.val_loss_at(to_value(float(g))) for g in grid]
        i = int(np.argmin(losses))
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(
            lambda s: self.val_loss_at(to_value(s)), bounds=(a, b), method="bounded", options={"xatol": 1e-8}
        )
        return float(to_value(float(res.x)))

    def value_at(self, position: float) -> float:
        """The hyperparameter's value at ``position`` of its range (sampling scale); inverse of ``position``."""
        dist = self.space[self.hparam]
        if dist.log:
            return math.exp(math.log(dist.low) + position * (math.log(dist.high) - math.log(dist.low)))
        return dist.low + position * (dist.high - dist.low)

    def verdict(self, schedule: Schedule) -> Verdict:
        """Where ``schedule`` (of this task's hyperparameter) sat against the optimum."""
        dist, name = self.space[self.hparam], self.hparam
        optimum = self.optimum()
        tail = schedule.mean_position(name, self.space, since=TAIL)
        tail_mean = self.value_at(tail)
        values = schedule.values[name]
        return Verdict(
            optimum=optimum,
            optimum_position=dist.position(optimum),
            start=values[0],
            final=values[-1],
            tail_mean=tail_mean,
            tail_position=tail,
            error=abs(tail - dist.position(optimum)),
            at_bound=schedule.fraction_at_bounds(self.space)[name],
        )

    # -- the Task contract ---------------------------------------------------------------------------
    def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        return shuffled_batches(self.train_xy, self.preset.batch_size, generator)

    def eval_batches(self, split: Split) -> Iterator[Batch]:
        yield self.val_xy if split == "val" else self.test_xy

    def tuning_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        return shuffled_batches(self.val_xy, self.preset.batch_size, generator)

    def build_model(self, config: Config, generator: torch.Generator) -> nn.Module:
        return self.build_network(Layers(), generator)

    def build_network(self, layers: Layers, generator: torch.Generator) -> nn.Module:
        model = layers.linear(self.preset.d, 1, bias=False)
        with torch.no_grad():
            model.weight.copy_(torch.zeros(model.weight.shape).normal_(0, 0.1, generator=generator))
        return model.to(self.device)

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.preset.lr)

    def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
        x, y = batch
        return (model(x).squeeze(-1) - y).pow(2).sum(), x.shape[0], {}


@register_task("ridge")
class Ridge(KnownOptimumTask):
    """The L2 coefficient of ridge regression (log scale); see the module docstring."""

    hparam = "l2"
    differentiable_hparams: ClassVar[tuple[str, ...]] = ("l2",)
    space = SearchSpace({"l2": Float(1e-3, 1e3, default=1e-3, log=True)})
    presets: ClassVar[Mapping[str, Preset]] = {"smoke": RegressionPreset("smoke", epochs=400, batch_size=10)}

    def penalty(self, h: float, x: np.ndarray) -> np.ndarray:
        return h * np.eye(x.shape[1])

    def regularised_loss(self, model: nn.Module, batch: Batch, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        pred = linearised(model(x)).squeeze(-1)  # (N,)
        # Per example: its squared error plus its own λ times the squared norm of the weights it uses.
        return ((pred - y).pow(2) + values["l2"] * weight_sq_norm(model)).mean()


@register_task("dropout_regression")
class DropoutRegression(KnownOptimumTask):
    """The rate of inverted dropout on the inputs, on ``[0, 0.9]``; see the module docstring."""

    hparam = "dropout"
    differentiable_hparams: ClassVar[tuple[str, ...]] = ("dropout",)
    space = SearchSpace({"dropout": Float(0.0, 0.9, default=0.0)})
    presets: ClassVar[Mapping[str, Preset]] = {"smoke": RegressionPreset("smoke", epochs=400, batch_size=10)}

    def penalty(self, h: float, x: np.ndarray) -> np.ndarray:
        return h / (1.0 - h) * np.diag(np.mean(x**2, axis=0))

    def regularised_loss(self, model: nn.Module, batch: Batch, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        pred = linearised(model(element_dropout(x, values["dropout"], model.training))).squeeze(-1)  # (N,)
        return (pred - y).pow(2).mean()


@dataclass(frozen=True)
class KnownOptimumRun:
    """One run's verdict, with σ's range over the schedule, the weight steps it ran, and its schedule."""

    verdict: Verdict
    sigma_min: float
    sigma_max: float
    steps: int
    schedule: Schedule

    def first_step_within(self, log_ratio: float) -> int | None:
        """The first weight step at which the schedule lies within a factor ``exp(log_ratio)`` of the
        optimum (``|ln h - ln h*| < log_ratio``; e.g. ``ln 1.1``), or None if it never does."""
        target = math.log(self.verdict.optimum)
        name = next(iter(self.schedule.values))
        for step, value in zip(self.schedule.steps, self.schedule.values[name], strict=True):
            if value > 0 and abs(math.log(value) - target) < log_ratio:
                return step
        return None

    @property
    def passed(self) -> bool:
        return self.verdict.error <= TOLERANCE and self.verdict.at_bound <= TOLERANCE


def run_known_optimum(
    method: str,
    task_name: str,
    start: str,
    seed: int,
    out: Path,
    options: Mapping[str, Any] | None = None,
    budget_s: float = BUDGET_S,
) -> KnownOptimumRun:
    """Run ``method`` (at ``options`` over its defaults) on a known-optimum task from the start position
    ``STARTS[start]``, under a fake clock (deterministic; the run's length in steps does not depend on
    the machine), and read its schedule against the optimum. The method must take an ``init`` option
    (the start) and log a schedule."""
    task = get_task(task_name)("smoke")
    if not isinstance(task, KnownOptimumTask):
        raise TypeError(f"{task_name!r} is not a known-optimum task")
    if start not in STARTS:
        raise ValueError(f"start must be one of {list(STARTS)}, got {start!r}")
    opts = {"init": {task.hparam: task.value_at(STARTS[start])}, **(options or {})}
    spec = RunSpec(task_name, method, "smoke", seed, Budget(budget_s), opts)
    outcome = execute(spec, out, clock=FakeClock(tick=TICK), device="cpu")
    _, _, records = load_log(outcome.run_dir)
    task.load(RunSeeds.from_master(seed))  # the data (and so the optimum) do not depend on the seed
    sigmas = [r.values.get(f"sigma/{task.hparam}", math.nan) for r in records]
    schedule = Schedule.from_records(records)
    return KnownOptimumRun(task.verdict(schedule), min(sigmas), max(sigmas), schedule.steps[-1], schedule)
