"""One config under training, in pieces: the loop :meth:`Task.fit` runs, and that population-based and
pause/resume methods drive themselves.

A :class:`TrainingRun` owns one model, its optimiser, its batch order and its own stream of training
noise (dropout masks, augmentation draws). Its pieces are:

* :meth:`TrainingRun.train`: optimiser steps at the run's config (or schedule), to the end of the
  current epoch or for a given number of steps (crossing epoch ends), charged to ``train``;
* :meth:`TrainingRun.validate`: a clean validation (charged to ``validate``) that keeps the
  best-validation checkpoint and applies the task's validation-driven learning-rate rule;
* :meth:`TrainingRun.state` / :meth:`TrainingRun.load_state`: take or restore what determines the rest
  of training (weights, optimiser state with its learning rate, validation history, counters), in
  memory; :meth:`TrainingState.save` / :meth:`TrainingState.load` put it on disk and back.

:meth:`Task.fit` is these pieces in a loop: a run of ``fit`` is step for step what it was before the
pieces existed (same draws, same order). Several runs may be interleaved in one process: each keeps its
noise stream apart (entering a piece restores the run's generator state, leaving it saves it), so a run
draws the same masks whether or not others trained in between.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..foundation.clock import BudgetTimer
from ..foundation.seeding import RunSeeds
from ..foundation.space import Config
from .batches import Batch
from .records import TrialStatus

if TYPE_CHECKING:
    from .task import Task

__all__ = ["EvalResult", "FitResult", "Stopped", "TrainingRun", "TrainingState"]


@dataclass(frozen=True)
class EvalResult:
    """A clean evaluation over a whole split.

    Attributes:
        loss: mean per-example loss (the quantity every method minimises on ``val``).
        n: examples (or tokens) evaluated.
        metrics: other means, e.g. ``{"accuracy": 0.93}``.
    """

    loss: float
    n: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FitResult:
    """What training one config produced.

    Attributes:
        status: COMPLETE (trained to the epoch cap), EARLY_STOPPED (by the preset's patience), PRUNED
            (stopped by the method's :data:`EpochMonitor`), FAILED or OUT_OF_BUDGET (stopped at the
            deadline).
        val: best validation over completed epochs; None if none completed or the trial FAILED.
        epochs: completed epochs.
        steps: optimiser steps taken.
        reason: why it stopped: the cap, patience (with the epoch of the best validation), the
            method's monitor, the deadline, or what FAILED.
        model: the best-validation checkpoint in eval mode (None without a validation), so the
            harness can test it with the clock paused.
        val_losses: the validation loss after each completed epoch (the trial's learning curve).
    """

    status: TrialStatus
    val: EvalResult | None
    epochs: int
    steps: int
    reason: str | None = None
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    val_losses: tuple[float, ...] = ()

    @property
    def loss(self) -> float | None:
        """The validation loss a method is told: None for a FAILED trial or one with no validation."""
        return None if self.status is TrialStatus.FAILED or self.val is None else self.val.loss


@dataclass(frozen=True)
class Stopped:
    """Why a piece of training could not go on: FAILED (non-finite loss) or OUT_OF_BUDGET (deadline)."""

    status: TrialStatus
    reason: str


@dataclass(frozen=True)
class TrainingState:
    """What determines the rest of a training run: exploit copies it, a paused trial keeps it.

    Not included: the run's batch order and noise stream (a member that copies another keeps drawing
    its own masks and batches) and its kept best checkpoint (that belongs to the run that validated it).

    Attributes:
        model: the model's ``state_dict`` (tensors cloned).
        optimizer: the optimiser's ``state_dict`` (its state and param groups, learning rate included).
        val_losses: validation losses so far, oldest first (they drive the task's learning-rate rule).
        steps: optimiser steps taken.
        epochs: complete passes over the training data.
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    val_losses: tuple[float, ...]
    steps: int
    epochs: int

    def save(self, path: Path | str) -> None:
        """Write to ``path`` with :func:`torch.save` (tensors, numbers, lists and dicts only)."""
        torch.save(
            {
                "model": self.model,
                "optimizer": self.optimizer,
                "val_losses": list(self.val_losses),
                "steps": self.steps,
                "epochs": self.epochs,
            },
            path,
        )

    @classmethod
    def load(cls, path: Path | str, map_location: torch.device | str | None = None) -> TrainingState:
        """Read a state written by :meth:`save` with ``torch.load(weights_only=True)`` (no pickled code)."""
        d = torch.load(path, map_location=map_location, weights_only=True)
        return cls(d["model"], d["optimizer"], tuple(d["val_losses"]), int(d["steps"]), int(d["epochs"]))


class _NoiseStream:
    """The default generators' state of one run (CPU, and the CUDA device if any), kept between pieces.

    ``nn.functional`` draws dropout masks from the default generators; :meth:`active` puts this run's
    state in place inside a forked scope and saves it on exit, so the caller's random state is untouched
    and interleaved runs do not share masks.
    """

    def __init__(self, device: torch.device, seed: int) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        with torch.random.fork_rng(devices=[device] if self.cuda else []):
            torch.default_generator.manual_seed(seed)
            self.cpu_state = torch.get_rng_state()
            self.cuda_state = self._seed_cuda(seed)

    def _seed_cuda(self, seed: int) -> torch.Tensor | None:
        if not self.cuda:
            return None
        with torch.cuda.device(self.device):
            torch.cuda.manual_seed(seed)
            return torch.cuda.get_rng_state(self.device)

    @contextmanager
    def active(self) -> Iterator[None]:
        with torch.random.fork_rng(devices=[self.device] if self.cuda else []):
            torch.set_rng_state(self.cpu_state)
            if self.cuda_state is not None:
                torch.cuda.set_rng_state(self.cuda_state, self.device)
            try:
                yield
            finally:
                self.cpu_state = torch.get_rng_state()
                if self.cuda:
                    self.cuda_state = torch.cuda.get_rng_state(self.device)


class TrainingRun:
    """One config (or schedule) being trained from scratch under the run's clock; see the module docstring.

    Args:
        task: the task (data loaded).
        config: the config trained; a method may change :attr:`config` between pieces (PBT's explore).
        timer: charged for building the model and optimiser (phase ``train``).
        seeds: ``init`` draws the weights, ``order`` the batch order, ``noise`` the training noise.
        schedule: step → config; when given, step ``s`` trains at ``schedule(s)`` instead of :attr:`config`.

    Attributes:
        model, optimizer: the live model and its optimiser.
        steps: optimiser steps taken. epochs: complete passes over the training data.
        val_losses: every validation loss, oldest first (finite ones only: a non-finite one stops the run).
        best: the best validation so far, None before the first; :attr:`best_epochs` the epochs trained
            when it was made.
        validated_epochs: the epochs trained at the latest validation (what a result reports).
    """

    def __init__(
        self,
        task: Task,
        config: Config,
        timer: BudgetTimer,
        seeds: RunSeeds,
        schedule: Callable[[int], Mapping[str, Any]] | None = None,
    ) -> None:
        self.task = task
        self.config = task.space.validate(config)
        self.schedule = schedule
        self.steps = self.epochs = self.validated_epochs = self.best_epochs = 0
        self.val_losses: list[float] = []
        self.best: EvalResult | None = None
        self._best_state: dict[str, torch.Tensor] | None = None
        self._order = seeds.torch("order")
        self._batches: Iterator[Batch] | None = None  # what is left of the current epoch
        self._noise = _NoiseStream(task.device, seeds.noise)
        with self._noise.active(), timer.phase("train"):
            # Inside the scope: layer constructors may draw default initialisations before build_model
            # overwrites them from the init generator; that must not move anyone else's state.
            self.model = task.build_model(self.config, seeds.torch("init"))
            self.optimizer = task.make_optimizer(self.model)

    def train(self, timer: BudgetTimer, steps: int | None = None) -> Stopped | None:
        """Optimiser steps at the run's config: to the end of the current epoch (``steps=None``), or
        ``steps`` of them, starting a new epoch (a fresh batch order) whenever one ends.

        The deadline is checked before every step. Returns None when the steps were taken, else why
        training stopped (the deadline, or a non-finite training loss).
        """
        if steps is not None and steps < 0:
            raise ValueError(f"steps must be None or >= 0, got {steps!r}")
        task, done = self.task, 0
        with self._noise.active(), timer.phase("train"):
            self.model.train()
            while steps is None or done < steps:
                if self._batches is None:
                    self._batches = iter(task.train_batches(self._order))
                batch = next(self._batches, None)
                if batch is None:  # the epoch ended
                    self._batches = None
                    self.epochs += 1
                    if steps is None:
                        break
                    continue
                if timer.expired():
                    return Stopped(TrialStatus.OUT_OF_BUDGET, "deadline reached during training")
                config = self.config if self.schedule is None else task.space.validate(self.schedule(self.steps))
                loss = task.training_loss(self.model, batch, config)
                if not torch.isfinite(loss):
                    return Stopped(TrialStatus.FAILED, f"non-finite training loss {loss.item()} at step {self.steps}")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                task.clip_gradients(self.model)
                self.optimizer.step()
                self.steps += 1
                done += 1
        return None

    def validate(self, timer: BudgetTimer) -> EvalResult | Stopped:
        """A clean validation of the current weights (phase ``validate``): keeps the best checkpoint and
        applies the task's :meth:`~hpobench_stn.Task.after_validation` rule to this run's optimiser.

        Returns the result, or why it could not count: the deadline cut it (a partial validation
        never counts) or its loss was not finite.
        """
        with timer.phase("validate"):
            val = self.task.evaluate(self.model, "val", timer)
            if val is None:
                return Stopped(TrialStatus.OUT_OF_BUDGET, "deadline reached during validation")
            self.validated_epochs = self.epochs
            self.val_losses.append(val.loss)
            if not math.isfinite(val.loss):
                return Stopped(TrialStatus.FAILED, f"non-finite validation loss {val.loss} after epoch {self.epochs}")
            if self.best is None or val.loss < self.best.loss:
                # Keep the best-validation checkpoint (model selection is part of validation).
                self.best, self.best_epochs = val, self.epochs
                self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            # The task's validation-driven learning-rate rule (e.g. PTB's non-monotone decay) on this run's
            # history: it moves only this run's optimiser, and only after a validation that counts.
            self.task.after_validation(self.optimizer, self.val_losses)
        return val

    def result(self, status: TrialStatus, reason: str | None = None) -> FitResult:
        """The run as a :class:`FitResult`: the best checkpoint loaded into :attr:`model` (eval mode),
        unless it FAILED or never validated."""
        curve = tuple(self.val_losses)
        if status is TrialStatus.FAILED or self._best_state is None:
            val = None if status is TrialStatus.FAILED else self.best
            return FitResult(status, val, self.validated_epochs, self.steps, reason, val_losses=curve)
        self.model.load_state_dict(self._best_state)
        self.model.eval()
        return FitResult(status, self.best, self.validated_epochs, self.steps, reason, self.model, curve)

    # ----------------------------------------------------------------------------------------------
    # Pause, resume, copy
    def state(self) -> TrainingState:
        """A copy of what determines the rest of training (see :class:`TrainingState`)."""
        return TrainingState(
            model={k: v.detach().clone() for k, v in self.model.state_dict().items()},
            optimizer=copy.deepcopy(self.optimizer.state_dict()),
            val_losses=tuple(self.val_losses),
            steps=self.steps,
            epochs=self.epochs,
        )

    def load_state(self, state: TrainingState) -> None:
        """Continue from ``state`` (another run's, for PBT's exploit, or this run's own, to resume).

        Weights and optimiser state are copied in (the state itself is not aliased); the batch order
        and noise stream stay this run's, and the current epoch's remaining batches are kept.
        """
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(copy.deepcopy(state.optimizer))
        self.val_losses = list(state.val_losses)
        self.steps, self.epochs = state.steps, state.epochs
