"""The Task contract: a search space, presets, data, a model and a training recipe.

A task serves two kinds of method through one contract:

* **black-box** methods call :meth:`Task.fit` ("train this config from scratch for the preset's
  epochs, validate after each epoch, keep the best-validation checkpoint");
* **gray-box** methods (STN) run their own loop from the same parts: :meth:`Task.train_batches`,
  :meth:`Task.eval_batches`, :meth:`Task.build_model`, :meth:`Task.make_optimizer`,
  :meth:`Task.training_loss` (regularisers and augmentation applied) and :meth:`Task.evaluate`
  (clean), under the same clock. A task that supports best-response methods implements
  :meth:`Task.build_network` (its architecture from a layer factory: plain layers for
  :meth:`Task.build_model`, hyper-layers for :meth:`Task.build_hyper_model`) and
  :meth:`Task.regularised_loss` (one value per example for every hyperparameter; the default
  :meth:`Task.training_loss` broadcasts a config to it).

Validation and test evaluation are always clean: ``model.eval()`` (no dropout) and no augmentation,
for every method. :meth:`Task.evaluate` is the only code path that computes them.

Lifecycle, driven by the runner: ``Task(preset, device=..., data_dir=...)`` → :meth:`prepare`
(one-time download / decode / cache; *not* charged, so the first run of a suite is not penalised)
→ :meth:`load` (charged to the run) → :meth:`warm_up` (not charged) → training.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..foundation.clock import BudgetTimer
from ..foundation.seeding import RunSeeds
from ..foundation.space import Config, SearchSpace
from ..nn.factory import HyperLayers, Layers
from .batches import Batch, Split
from .records import TrialStatus
from .training import EvalResult, FitResult, Stopped, TrainingRun

__all__ = [
    "EpochMonitor",
    "EpochReport",
    "EvalResult",
    "FitResult",
    "Preset",
    "Task",
    "TaskError",
    "TrainingRun",
]


class TaskError(ValueError):
    """A task was asked for something it does not have (unknown preset, missing data, ...)."""


@dataclass(frozen=True)
class Preset:
    """Settings fixed for every method at one scale of a task; tasks subclass to add their own.

    Attributes:
        name: ``smoke`` (seconds, for tests), ``cpu`` (minutes on a laptop) or ``paper`` (GPU).
        epochs: the cap: at most this many epochs per training run of a fixed config.
        batch_size: training batch size (an optimisation setting, never tuned).
        patience: early stopping: a trial ends (status EARLY_STOPPED) after this many consecutive
            epochs without a new best validation loss, and keeps its best checkpoint; None trains
            every trial to the cap.
        needs_cuda: the preset is only meant for a GPU (e.g. ``paper``); building the task on another
            device raises :class:`TaskError` instead of starting a run that would take days.
    """

    name: str
    epochs: int
    batch_size: int
    needs_cuda: bool = False  # refuse to build the task on another device (e.g. the paper's full-size models)
    patience: int | None = None  # epochs without a new best validation loss before a trial stops

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise TaskError(f"preset {self.name!r}: epochs must be an integer >= 1, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise TaskError(f"preset {self.name!r}: batch_size must be an integer >= 1, got {self.batch_size!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise TaskError(f"preset {self.name!r}: patience must be None or an integer >= 1, got {self.patience!r}")


@dataclass(frozen=True)
class EpochReport:
    """One completed validation of a trial, as :meth:`Task.fit` hands it to an :data:`EpochMonitor`.

    The resource of a multi-fidelity method is the epoch: ``epoch`` epochs have been trained and
    validated when the report is made.

    Attributes:
        epoch: epochs completed so far (1 after the first validation).
        val_loss: this epoch's clean validation loss.
        best_val_loss: the lowest validation loss of the trial so far: the loss of the checkpoint the
            trial keeps, and the value the method is told if the trial stops now.
        max_epochs: the preset's epoch cap (the maximum resource).
    """

    epoch: int
    val_loss: float
    best_val_loss: float
    max_epochs: int


EpochMonitor = Callable[[EpochReport], bool]
"""Asked by :meth:`Task.fit` after each validation before the epoch cap; True stops the trial (PRUNED)."""


class Task(ABC):
    """A tuning problem. Subclass, set the class attributes, implement the abstract methods.

    Class attributes:
        name: the registry name.
        space: the search space every method shares.
        presets: preset name → :class:`Preset` (or a subclass with task-specific fields).
        libraries: distributions the task depends on, recorded with their versions in every run.
    """

    name: ClassVar[str]
    space: ClassVar[SearchSpace]
    presets: ClassVar[Mapping[str, Preset]]
    libraries: ClassVar[tuple[str, ...]] = ()  # distributions whose versions go into every run record
    # Hyperparameters whose regulariser takes one value per batch (e.g. DropConnect on a fused LSTM
    # kernel): a best-response method perturbs them once per batch instead of once per example.
    batch_level_hparams: ClassVar[tuple[str, ...]] = ()
    # Hyperparameters the training loss (regularised_loss) is differentiable in, with dropout masks
    # relaxed (hpobench_stn.nn.regularizers.relaxed) and recurrent layers twice differentiable
    # (hpobench_stn.nn.implicit.twice_differentiable): what an implicit-gradient method (ift) can tune.
    # Integer hyperparameters (cutout holes, shifts) never are.
    differentiable_hparams: ClassVar[tuple[str, ...]] = ()

    def __init__(self, preset: str, *, device: torch.device | str = "cpu", data_dir: Path | None = None) -> None:
        if preset not in self.presets:
            raise TaskError(f"unknown preset {preset!r} for task {self.name!r}; known: {', '.join(self.presets)}")
        self.preset = self.presets[preset]
        self.device = torch.device(device)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        if self.preset.needs_cuda and self.device.type != "cuda":
            cpu_presets = [name for name, p in self.presets.items() if not p.needs_cuda]
            raise TaskError(
                f"preset {preset!r} of task {self.name!r} needs a CUDA device, got device {str(self.device)!r}; "
                f"use --device cuda, or one of the presets {', '.join(cpu_presets)}"
            )

    @classmethod
    def default_preset(cls) -> str:
        """The preset of a run that names none: ``cpu`` (minutes on a laptop), else ``smoke`` (seconds)."""
        for name in ("cpu", "smoke"):
            if name in cls.presets:
                return name
        raise TaskError(f"task {cls.name!r} has no 'cpu' or 'smoke' preset; name one of: {', '.join(cls.presets)}")

    # ----------------------------------------------------------------------------------------------
    # Data
    def prepare(self) -> None:  # noqa: B027 - optional hook, deliberately empty by default
        """One-time, uncharged preparation: download, verify, decode and cache. Idempotent."""

    @abstractmethod
    def load(self, seeds: RunSeeds) -> str:
        """Load the splits (charged to the run); the split may depend on ``seeds.data`` only.

        Returns a description of the data source, written into the run's metadata (name files relative
        to the data root, ``ptb/ptb.train.txt``: a record holds no absolute path of the machine).
        """

    def data_files(self) -> tuple[Path, ...]:
        """The files under the data root that this task's data were read from, valid after
        :meth:`prepare`; none (the default) for bundled or generated data. The runner records each in
        the run's metadata relative to the data root, with its size and sha256, with the clock paused."""
        return ()

    @abstractmethod
    def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """One epoch of training batches on :attr:`device`, in an order drawn from ``generator``."""

    @abstractmethod
    def eval_batches(self, split: Split) -> Iterator[Batch]:
        """The whole ``val`` or ``test`` split in a fixed order, never augmented.

        A task whose evaluation carries state across batches (an LSTM's hidden state) keeps one state
        per pass (training, validation, test, tuning), reset at the pass's first batch: its batches
        say which pass they belong to, and :meth:`eval_sums` continues that pass's state only.
        Otherwise a test evaluation would hand its state to the next hyper-step (test would steer).
        """

    # ----------------------------------------------------------------------------------------------
    # Model and objective
    @abstractmethod
    def build_model(self, config: Config, generator: torch.Generator) -> nn.Module:
        """A freshly initialised model on :attr:`device`; weights drawn from ``generator`` only."""

    @abstractmethod
    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """The preset's optimiser for ``model`` (optimisation settings are fixed by the preset)."""

    def training_loss(self, model: nn.Module, batch: Batch, config: Config) -> torch.Tensor:
        """Scalar training loss with the config's regularisers and augmentation applied.

        Default: :meth:`regularised_loss` with every row equal to ``config``. A task without a
        per-example loss (black-box methods only) overrides this instead.
        """
        return self.regularised_loss(model, batch, self.per_example_values(config, batch))

    @abstractmethod
    def eval_sums(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
        """Summed clean loss over the batch, its number of examples, and summed extra metrics."""

    # ----------------------------------------------------------------------------------------------
    # Gray-box: best-response models (STN). Optional: the defaults say the task has none.
    def build_network(self, layers: Layers, generator: torch.Generator) -> nn.Module:
        """The task's architecture with every weighted layer from ``layers``, on :attr:`device`.

        Implement it to support best-response methods, and define :meth:`build_model` as
        ``self.build_network(Layers(), generator)``. Contract: the elementary weights are drawn from
        ``generator`` the same way whatever the factory (same draws, same order), so the STN model
        starts from the baseline's weights; the hyper path is left to the method
        (:func:`hpobench_stn.nn.init_hyper_path`).
        """
        raise TaskError(f"task {self.name!r} has no best-response model (build_network is not implemented)")

    def build_hyper_model(self, n_hparams: int, generator: torch.Generator) -> nn.Module:
        """The best-response model: :meth:`build_network` with :class:`~hpobench_stn.nn.HyperLayers`.

        It is evaluated by :meth:`eval_sums` like the baseline, answering for the hyperparameters in its
        :class:`~hpobench_stn.nn.HyperInput`.
        """
        return self.build_network(HyperLayers(n_hparams), generator)

    def regularised_loss(self, model: nn.Module, batch: Batch, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Scalar training loss with one value per example for every hyperparameter of the space.

        ``values[name]`` is ``(N,)`` with ``N = examples_in(batch)`` (Ints hold integral values). With
        every row equal this is :meth:`training_loss`; a best-response method passes perturbed rows.
        The network outputs the loss reads (logits; activations a penalty reads) pass through
        :func:`hpobench_stn.nn.linearised`, the identity except under Delta-STN's linearised response step.
        """
        raise TaskError(
            f"task {self.name!r} has no per-example training loss: implement regularised_loss "
            "(or override training_loss for fixed configs only)"
        )

    def examples_in(self, batch: Batch) -> int:
        """Examples (rows of the per-example hyperparameters) in a training batch: ``batch[0].shape[0]``."""
        return int(batch[0].shape[0])

    def per_example_values(self, config: Config, batch: Batch) -> dict[str, torch.Tensor]:
        """A config broadcast to ``(N,)`` float32 tensors on :attr:`device`, for :meth:`regularised_loss`."""
        n = self.examples_in(batch)
        return {k: torch.full((n,), float(v), device=self.device) for k, v in config.items()}

    def carried_state(self, model: nn.Module) -> object:
        """What the model carries from one training batch to the next (a recurrent model's hidden state),
        for a method that runs one batch more than once (Delta-STN's two sub-steps); None by default."""
        return None

    def restore_carried_state(self, model: nn.Module, state: object) -> None:  # noqa: B027 - optional hook
        """Put back a :meth:`carried_state`, so the next forward pass starts where that one did."""

    def tuning_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """One pass over the validation split for a gray-box method's hyper-steps: clean batches that
        :meth:`eval_sums` accepts. Default: :meth:`eval_batches` ``("val")``; override for batches of the
        training size in an order drawn from ``generator``, and always in a stateful task (the tuning
        pass needs its own state, see :meth:`eval_batches`)."""
        return self.eval_batches("val")

    def best_response_defaults(self) -> Mapping[str, Any]:
        """Per-task (and per-preset) defaults of a best-response method's options (e.g. the paper's
        warm-up and hyper learning rate); the method's own defaults apply to the rest."""
        return {}

    # ----------------------------------------------------------------------------------------------
    # Provided: clean evaluation and the fixed-config training loop
    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: Split, timer: BudgetTimer | None = None) -> EvalResult | None:
        """Mean clean loss and metrics over ``split`` (eval mode, no augmentation).

        With a ``timer``, the deadline is checked before each batch; a validation cut by the deadline
        returns None (a partial validation never counts).
        """
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        metric_sums: dict[str, torch.Tensor] = {}
        n = 0
        try:
            for batch in self.eval_batches(split):
                if timer is not None and timer.expired():
                    return None
                batch_loss, batch_n, batch_metrics = self.eval_sums(model, batch)
                loss_sum += batch_loss.double()
                for key, value in batch_metrics.items():
                    metric_sums[key] = metric_sums.get(key, 0) + value.double()
                n += batch_n
        finally:
            model.train(was_training)
        if n == 0:
            raise TaskError(f"task {self.name!r}: split {split!r} is empty")
        return EvalResult(loss=float(loss_sum) / n, n=n, metrics={k: float(v) / n for k, v in metric_sums.items()})

    def warm_up(self) -> None:
        """One training step and one evaluation batch of the default config, run by the harness with
        the clock paused after :meth:`load`.

        Lazy initialisation (CUDA context, cuDNN autotuning, allocator growth, thread pools, first-call
        dispatch) costs up to seconds once per process; without this it would be billed to whichever run
        of a suite came first. Uses throwaway generators inside a forked RNG scope: no seeded stream moves.
        """
        config = self.space.default()
        with self.noise_scope(0):
            model = self.build_model(config, torch.Generator().manual_seed(0))
            optimizer = self.make_optimizer(model)
            model.train()
            batch = next(iter(self.train_batches(torch.Generator().manual_seed(0))))
            self.training_loss(model, batch, config).backward()
            self.clip_gradients(model)
            optimizer.step()
            model.eval()
            with torch.no_grad():
                self.eval_sums(model, next(iter(self.eval_batches("val"))))

    @contextmanager
    def noise_scope(self, seed: int) -> Iterator[None]:
        """Seed torch's default generators (CPU, and :attr:`device` if CUDA) inside a forked scope.

        Dropout masks and augmentation draws come from the default generators (``nn.functional``
        offers no generator argument). Inside this block they are seeded from ``seed``, so every method
        sees the same noise for the same run seed; on exit the caller's random state is restored, so
        nothing leaks out and no other GPU is touched.
        """
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device] if cuda else []):
            torch.default_generator.manual_seed(seed)
            if cuda:
                with torch.cuda.device(self.device):
                    torch.cuda.manual_seed(seed)
            yield

    def clip_gradients(self, model: nn.Module) -> None:  # noqa: B027 - optional hook
        """Called between ``backward()`` and ``step()``; override to clip (e.g. PTB's 0.25)."""

    def after_validation(self, optimizer: torch.optim.Optimizer, val_losses: list[float]) -> None:  # noqa: B027
        """Called after each epoch's validation with all validation losses so far (oldest first).

        Override for a preset's learning-rate schedule driven by validation (e.g. PTB's non-monotone
        rule: divide the learning rate by 4 when validation stops improving). Never sees test data.
        """

    def fit(
        self,
        config: Config,
        timer: BudgetTimer,
        seeds: RunSeeds,
        schedule: Callable[[int], Mapping[str, Any]] | None = None,
        monitor: EpochMonitor | None = None,
    ) -> FitResult:
        """Train ``config`` from scratch, validating after each epoch, until the preset's epoch cap
        (status COMPLETE), its patience (EARLY_STOPPED: ``preset.patience`` consecutive epochs
        without a new best validation loss) or the ``monitor`` (PRUNED), and return the
        best-validation checkpoint.

        With a ``schedule`` (step → config), training step ``s`` uses ``schedule(s)`` instead of
        ``config``: the replay of a best-response method's hyperparameter schedule on a plain model.

        With a ``monitor`` (a multi-fidelity method's), each validation before the cap that patience
        does not end is handed to it as an :class:`EpochReport`, and the trial stops (status PRUNED,
        the best checkpoint kept, its epochs counted) when it returns True. The call is charged to the
        phase ``prune``. Without one, nothing is asked and nothing is charged: a run is exactly as it
        was before the hook existed.

        The deadline is checked before every optimiser step and every validation batch; a trial that
        reaches it stops there, and the validations it completed count (status OUT_OF_BUDGET). A
        non-finite training or validation loss ends the trial as FAILED.
        """
        run = self.start(config, timer, seeds, schedule)
        patience, cap = self.preset.patience, self.preset.epochs
        for _ in range(cap):
            stopped = run.train(timer)
            if stopped is not None:
                return run.result(stopped.status, stopped.reason)
            val = run.validate(timer)
            if isinstance(val, Stopped):
                return run.result(val.status, val.reason)
            epochs, best_epoch = run.validated_epochs, run.best_epochs
            if best_epoch < epochs and patience is not None and epochs - best_epoch >= patience:
                # Early stopping, as the paper's baselines: the checkpoint kept is the best one.
                return run.result(
                    TrialStatus.EARLY_STOPPED,
                    f"patience: no new best validation loss in {patience} epochs (best at epoch {best_epoch})",
                )
            if monitor is not None and epochs < cap:
                # At the cap there is nothing left to stop: the method is told the result instead.
                with timer.phase("prune"):
                    # min(val_losses) is the kept checkpoint's loss (the history holds only finite values).
                    stop = monitor(EpochReport(epochs, val.loss, min(run.val_losses), cap))
                if stop:
                    return run.result(
                        TrialStatus.PRUNED, f"pruned by the method after epoch {epochs} (best at epoch {best_epoch})"
                    )
        return run.result(TrialStatus.COMPLETE, f"epoch cap: {run.validated_epochs} epochs")

    def start(
        self,
        config: Config,
        timer: BudgetTimer,
        seeds: RunSeeds,
        schedule: Callable[[int], Mapping[str, Any]] | None = None,
    ) -> TrainingRun:
        """A fresh model and optimiser for ``config``, to be trained in pieces (:class:`TrainingRun`):
        what :meth:`fit` runs, and what a method that pauses, resumes or copies runs (PBT) drives itself.
        Building them is charged to ``train``."""
        return TrainingRun(self, config, timer, seeds, schedule)
