"""The base of the methods that drive an Optuna study through ``study.ask`` / ``study.tell``.

:class:`OptunaAskTell` holds one in-memory study per run. A subclass names its sampler; Optuna's own
``timeout`` is never used (it only checks between trials): the harness's clock ends the run. A FAILED
trial is told as ``TrialState.FAIL``.

:class:`OptunaPruningAskTell` adds a pruner, fed through the harness's epoch hook
(:meth:`AskTellMethod.report`): after each validation the running trial reports its best validation
loss so far at step = epochs trained (``trial.report``), and the pruner decides (``trial.should_prune``).
A pruned trial is told as ``TrialState.PRUNED``, and Optuna keeps its last reported value, which is
the loss of the checkpoint the harness keeps. The maximum resource is the preset's epoch cap.

The study has a fixed name: Optuna's ``HyperbandPruner`` assigns a trial to its bracket by hashing the
study name with the trial number, and the default name is a random UUID, which would make two runs
of one seed differ.

Optuna is imported inside the methods, so the core imports without it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from ..foundation.space import Config, SearchSpace
from .backends import to_optuna
from .method import AskTellMethod
from .task import EpochReport

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

__all__ = ["STUDY_NAME", "OptunaAskTell", "OptunaPruningAskTell"]

STUDY_NAME = "hpobench_stn"  # fixed: Hyperband's bracket of a trial hashes the study name (see above)


class OptunaAskTell(AskTellMethod):
    """An ask/tell method backed by one in-memory Optuna study; subclasses implement :meth:`sampler`."""

    libraries = ("optuna",)

    @abstractmethod
    def sampler(self, seed: int) -> BaseSampler:
        """The study's sampler, seeded with ``seed`` (the method's only randomness)."""

    def pruner(self) -> BasePruner:
        """The study's pruner: none here (``NopPruner``; Optuna's default would be the median rule)."""
        import optuna

        return optuna.pruners.NopPruner()

    def setup(self, space: SearchSpace, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._study = optuna.create_study(
            study_name=STUDY_NAME, direction="minimize", sampler=self.sampler(seed), pruner=self.pruner()
        )
        self._distributions = to_optuna(space)
        self._trial: Any = None  # the harness asks and tells strictly in turn: one running trial
        self._pruned = False  # whether the running trial was pruned (set by a pruning subclass)

    def ask(self) -> dict[str, Any]:
        self._trial, self._pruned = self._study.ask(self._distributions), False
        return dict(self._trial.params)

    def tell(self, config: Config, loss: float | None) -> None:
        from optuna.trial import TrialState

        trial, self._trial = self._trial, None
        if loss is None:
            self._study.tell(trial, state=TrialState.FAIL)
        elif self._pruned:
            self._study.tell(trial, state=TrialState.PRUNED)  # Optuna keeps the last reported value
        else:
            self._study.tell(trial, loss)


class OptunaPruningAskTell(OptunaAskTell):
    """An Optuna method whose pruner stops trials after a validation; subclasses implement
    :meth:`make_pruner` besides :meth:`sampler`. The maximum resource is :attr:`max_epochs`, which
    :meth:`AskTellMethod.run` sets to the preset's epoch cap before :meth:`setup` (set it yourself to
    drive the method by hand)."""

    @abstractmethod
    def make_pruner(self, max_epochs: int | None) -> BasePruner:
        """The pruner for trials of at most ``max_epochs`` epochs (the preset's cap; None: unknown)."""

    def pruner(self) -> BasePruner:
        return self.make_pruner(self.max_epochs)

    def report(self, progress: EpochReport) -> bool:
        # The best loss so far, not this epoch's: a rung compares the checkpoints the trials would keep,
        # and a pruned trial's last report is the value Optuna (and the harness) judge it by.
        self._trial.report(progress.best_val_loss, progress.epoch)
        self._pruned = bool(self._trial.should_prune())
        return self._pruned
